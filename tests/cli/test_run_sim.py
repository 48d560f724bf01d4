"""drst run on `drst simulate` data (no shared data needed): the --json summary's
accuracy figures are recomputed here with pandas from the trace files (truth, baseline,
adaptive columns) and the trace's truth is checked against the simulated CSV; the run
files of docs/formats.md exist; same seed + --retrain-lag gives the same figures;
bad arguments and unreadable inputs fail with a message and the right exit code."""
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

DRST = os.environ["DRST_BIN"]
tmp = tempfile.mkdtemp(prefix="drst_run_sim_")
fails = []
TAUS = (0.05, 0.1, 0.2)


def check(cond, msg):
    if not cond:
        fails.append(msg)
        print("FAIL:", msg)


def out(name):
    return os.path.join(tmp, name)


def drst(*args, timeout=300):
    return subprocess.run([DRST, *args], capture_output=True, text=True, timeout=timeout)


for args in (["--scenario", "sweep", "--rows", "600", "--seed", "1", "-o", out("train.csv")],
             ["--scenario", "contention", "--rows", "500", "--seed", "2", "-o", out("stream.csv")]):
    p = drst("simulate", *args)
    assert p.returncode == 0, p.stderr

# Fast families keep the test short (the whole search space is exercised on real data).
common = ["--train", out("train.csv"), "--stream", out("stream.csv") + ":tail=400",
          "--model", "ridge", "--families", "ridge,tree", "--retrain-lag", "5",
          "--window", "60", "--stride", "20", "--partitions", "3", "--consumers", "2",
          "--seed", "7", "--json"]


def run(name, *extra):
    p = drst("run", *common, "--out", out(name), *extra)
    check(p.returncode == 0, f"run {name}: rc {p.returncode}: {p.stderr[-2000:]}")
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    check(len(lines) == 1, f"run {name}: stdout is not one JSON line: {p.stdout[:500]!r}")
    return json.loads(lines[-1]) if lines else {}


j = run("a")
d = out("a")
for key in ["records", "triggers", "swaps", "wall_s", "records_per_s"] + \
        [f"{p}.acc@{t}" for p in ("static", "adaptive") for t in ("0.05", "0.1", "0.2")]:
    check(key in j, f"summary lacks '{key}'")

traces = sorted(glob.glob(os.path.join(d, "trace*.csv")))
check(len(traces) == 2, f"one trace per consumer expected, got {traces}")
tr = pd.concat([pd.read_csv(f, float_precision="round_trip") for f in traces], ignore_index=True).sort_values("seq")
check(len(tr) == 400 and j.get("records") == 400, f"records: trace {len(tr)}, json {j.get('records')}")
check(list(tr["seq"]) == list(range(400)), "every sequence number inferred exactly once")

# The truth of record i is output_rate of the stage's row i (last 400 rows of the file).
src = pd.read_csv(out("stream.csv"), float_precision="round_trip").tail(400).reset_index(drop=True)
check(np.array_equal(tr["truth"].to_numpy(), src["output_rate"].to_numpy()),
      "trace truth != simulated output_rate (in stream order)")
# Partition of record i is i % 3 (round robin), offsets count up per partition.
check((tr["partition"] == tr["seq"] % 3).all(), "partition != seq % 3")
check((tr["offset"] == tr["seq"] // 3).all(), "offset != seq // 3")

# Independent recomputation of the figures from the trace columns.
truth = tr["truth"].to_numpy()
den = np.maximum(np.abs(truth), 1e-9)
for path, col in (("static", "baseline"), ("adaptive", "adaptive")):
    e = np.abs(tr[col].to_numpy() - truth) / den
    for t in TAUS:
        want = float(np.mean(e <= t))
        got = j.get(f"{path}.acc@{t:g}")
        check(got is not None and abs(got - want) < 1e-9,
              f"{path}.acc@{t:g}: json {got} vs recomputed {want}")

# Versions: the static path never changes; the adaptive version never goes back.
v = tr["version"].to_numpy()
check((np.diff(v) >= 0).all(), "adaptive version decreases along the stream")
check(j.get("swaps") == len(set(v)) - 1, f"swaps {j.get('swaps')} vs versions served {sorted(set(v))}")
ev = pd.read_csv(os.path.join(d, "events.csv"))
check((ev["kind"] == "swap").sum() == j.get("swaps"), "events.csv swap rows != swaps")
check((ev["kind"] == "trigger").sum() == j.get("triggers"), "events.csv trigger rows != triggers")
check(j.get("triggers", 0) >= 1, "the contention scenario should trigger at least one retrain")
# A release triggered at record i serves from record i + K (K = 5) exactly.
trig = ev[ev["kind"] == "trigger"]["records"].to_numpy()  # records seen = i + 1
sw = ev[ev["kind"] == "swap"]["records"].to_numpy()
for s in sw:
    check(any(s == (t - 1) + 5 for t in trig), f"swap at record {s} is not trigger + K")
    check((v[s:] > 1).all() and v[s] > v[s - 1], f"record {s} not served by the new release")
drift = pd.read_csv(os.path.join(d, "drift.csv"))
check(len(drift) > 0 and set(drift.columns) >= {"records", "score", "tier", "triggered"},
      "drift.csv rows and columns")
for f in ("resources.csv", "metrics.jsonl", "run.json", "summary.json", "report.md"):
    check(os.path.getsize(os.path.join(d, f)) > 0, f"{f} missing or empty")
for png in glob.glob(os.path.join(d, "*.png")):
    with open(png, "rb") as fh:
        check(fh.read(8) == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG")
check(len(glob.glob(os.path.join(d, "*.png"))) >= 3 or j.get("report_images") == 0,
      "report images")
with open(os.path.join(d, "metrics.jsonl")) as fh:
    last = json.loads(fh.read().splitlines()[-1])["metrics"]
check(last.get('drst_records_total{component="infer"}') == 400, f"metrics records: {last}")

# Same inputs, seed and K: the same figures.
j2 = run("b", "--no-report", "--consumers", "3")
for k in ["records", "triggers", "swaps"] + \
        [f"{p}.acc@{t}" for p in ("static", "adaptive") for t in ("0.05", "0.1", "0.2")]:
    check(j.get(k) == j2.get(k), f"not deterministic: {k} {j.get(k)} vs {j2.get(k)}")

# Bad arguments: usage error (2); unreadable input: failure (1) naming the file.
for args, rc, text in (
        (["--stream", out("stream.csv")], 2, "--train"),
        (["--train", out("train.csv")], 2, "--stream"),
        (["--train", out("train.csv"), "--stream", out("stream.csv") + ":head=x"], 2, "head"),
        (["--train", out("train.csv"), "--stream", out("stream.csv"), "--partitions", "0"], 2,
         "partitions"),
        (["--train", out("train.csv"), "--stream", out("stream.csv"), "--bogus", "1"], 2,
         "bogus"),
        (["--train", out("nope.csv"), "--stream", out("stream.csv"), "--out", out("c")], 1,
         "nope.csv"),
        (["--train", out("train.csv"), "--stream", out("missing.csv"), "--out", out("c")], 1,
         "missing.csv"),
        (["--train", out("train.csv"), "--stream", out("stream.csv"), "--target", "zz",
          "--out", out("c")], 1, "zz")):
    p = drst("run", *args)
    check(p.returncode == rc and text in p.stderr,
          f"run {args}: rc {p.returncode} (want {rc}), stderr {p.stderr[-300:]!r}")

if fails:
    print(f"{len(fails)} failure(s); files in {tmp}")
    sys.exit(1)
print("ok: drst run on simulated data,", json.dumps({k: j[k] for k in j if "acc" in k}))
