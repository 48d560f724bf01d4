"""drst run over Kafka (--bootstrap, the `drst broker` development broker: librdkafka's
mock cluster) gives exactly the figures of the in-process run on the same inputs, seed
and --retrain-lag (the data clock makes them independent of the transport), and the
Kafka run's traces hold every record once. The accuracies are recomputed here from the
trace files with pandas."""
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

DRST = os.environ["DRST_BIN"]
tmp = tempfile.mkdtemp(prefix="drst_run_kafka_")
fails = []


def check(cond, msg):
    if not cond:
        fails.append(msg)
        print("FAIL:", msg)


def out(name):
    return os.path.join(tmp, name)


for args in (["--scenario", "sweep", "--rows", "400", "--seed", "1", "-o", out("train.csv")],
             ["--scenario", "contention", "--rows", "400", "--seed", "5", "-o", out("stream.csv")]):
    subprocess.run([DRST, "simulate", *args], check=True, capture_output=True, timeout=60)

common = ["--train", out("train.csv"), "--stream", out("stream.csv") + ":head=240",
          "--model", "ridge", "--families", "ridge", "--retrain-lag", "3", "--window", "40",
          "--stride", "10", "--seed", "3", "--json", "--no-report"]
broker = subprocess.Popen([DRST, "broker"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True)
try:
    boot = broker.stdout.readline().strip()
    assert boot, "drst broker printed no bootstrap address"
    res = {}
    for name, extra in (("kafka", ["--bootstrap", boot]), ("inproc", [])):
        t0 = time.time()
        p = subprocess.run([DRST, "run", *common, "--out", out(name), *extra],
                           capture_output=True, text=True, timeout=300)
        check(p.returncode == 0, f"{name}: rc {p.returncode}: {p.stderr[-1500:]}")
        res[name] = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else {}
        print(name, f"{time.time() - t0:.1f} s", json.dumps(res[name]))
finally:
    broker.terminate()
    broker.wait(timeout=10)

k, i = res.get("kafka", {}), res.get("inproc", {})
for key in ["records", "triggers", "swaps"] + \
        [f"{p}.acc@{t}" for p in ("static", "adaptive") for t in ("0.05", "0.1", "0.2")]:
    check(key in k and k.get(key) == i.get(key), f"{key}: kafka {k.get(key)} vs inproc {i.get(key)}")
tr = pd.concat([pd.read_csv(f, float_precision="round_trip")
                for f in glob.glob(os.path.join(out("kafka"), "trace*.csv"))]).sort_values("seq")
check(list(tr["seq"]) == list(range(240)), "kafka run: every record inferred exactly once")
truth = tr["truth"].to_numpy()
e = np.abs(tr["adaptive"].to_numpy() - truth) / np.maximum(np.abs(truth), 1e-9)
check(abs(float(np.mean(e <= 0.2)) - k.get("adaptive.acc@0.2", -1)) < 1e-9,
      "kafka adaptive.acc@0.2 != trace recomputation")
if fails:
    print(f"{len(fails)} failure(s); files in {tmp}")
    sys.exit(1)
print("ok: drst run over Kafka == in-process figures")
