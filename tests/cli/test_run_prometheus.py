"""A real Prometheus server (Debian `prometheus`) scrapes a running, paced
`drst run --tps ... --metrics-addr 127.0.0.1:0` and its query API returns drst's series
(records, accuracy, drift score, model version, queue depth, consumer lag, retrain
durations). /healthz answers 200 while the run is healthy. Skips (77) without prometheus."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

DRST = os.environ["DRST_BIN"]
prom = shutil.which("prometheus")
if not prom:
    print("skip: prometheus not installed (apt-get install prometheus)")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="drst_run_prom_")
procs = []
fails = []


def check(cond, msg):
    if not cond:
        fails.append(msg)
        print("FAIL:", msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, timeout=3):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def out(name):
    return os.path.join(tmp, name)


for args in (["--scenario", "sweep", "--rows", "400", "--seed", "1", "-o", out("train.csv")],
             ["--scenario", "contention", "--rows", "600", "--seed", "3", "-o", out("stream.csv")]):
    subprocess.run([DRST, "simulate", *args], check=True, capture_output=True, timeout=60)

try:
    errf = open(out("run.err"), "w")
    run = subprocess.Popen([DRST, "run", "--train", out("train.csv"), "--stream", out("stream.csv"),
                            "--tps", "40", "--model", "ridge", "--families", "ridge",
                            "--window", "60", "--stride", "20", "--metrics-addr", "127.0.0.1:0",
                            "--out", out("run"), "--json", "--no-report"],
                           stdout=subprocess.PIPE, stderr=errf, text=True)
    procs.append(run)
    port = None
    deadline = time.time() + 60
    while time.time() < deadline and port is None and run.poll() is None:
        with open(out("run.err")) as f:
            m = re.search(r"metrics on port (\d+)", f.read())
        if m:
            port = int(m.group(1))
        else:
            time.sleep(0.1)
    assert port, "drst run did not say its metrics port: " + open(out("run.err")).read()
    st, body = get(f"http://127.0.0.1:{port}/healthz")
    check(st == 200 and body.startswith("ok"), f"/healthz: {st} {body!r}")

    pport = free_port()
    with open(out("prometheus.yml"), "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: drst\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{port}']\n")
    pl = open(out("prometheus.log"), "w")
    p = subprocess.Popen([prom, f"--config.file={out('prometheus.yml')}",
                          f"--storage.tsdb.path={tmp}/tsdb",
                          f"--web.listen-address=127.0.0.1:{pport}", "--log.level=warn"],
                         stdout=pl, stderr=subprocess.STDOUT)
    procs.append(p)
    api = f"http://127.0.0.1:{pport}/api/v1/query?query="

    def query(q):
        try:
            st, body = get(api + urllib.parse.quote(q))
        except OSError:
            return None
        if st != 200:
            return None
        return json.loads(body)["data"]["result"]

    want = ['drst_records_total{component="infer"}', 'drst_accuracy{path="adaptive",tau="0.2"}',
            "drst_model_version", "drst_queue_depth", "drst_consumer_lag", "drst_drift_score",
            "drst_errors_total", "drst_dead_letters_total", "drst_swaps_total",
            "drst_retrain_duration_seconds_count"]
    res = {}
    deadline = time.time() + 40
    while time.time() < deadline:
        res = {q: query(q) for q in want}
        inf = res[want[0]]
        # wait until a scrape saw records flowing
        if all(res.values()) and inf and float(inf[0]["value"][1]) > 0:
            break
        time.sleep(0.5)
    for q in want:
        check(bool(res.get(q)), f"Prometheus has no series {q}")
    if res.get(want[0]):
        check(float(res[want[0]][0]["value"][1]) > 0, "records_total not > 0 in Prometheus")
        check(res[want[0]][0]["metric"].get("job") == "drst", "job label")
    if res.get("drst_queue_depth"):
        parts = sorted(r["metric"]["partition"] for r in res["drst_queue_depth"])
        check(parts == ["0", "1", "2"], f"queue depth partitions {parts}")
    acc = res.get(want[1])
    if acc:
        v = float(acc[0]["value"][1])
        check(0 <= v <= 1, f"accuracy gauge {v}")
    up = query('up{job="drst"}')
    check(up and float(up[0]["value"][1]) == 1, f"up: {up}")

    stdout, _ = run.communicate(timeout=120)
    check(run.returncode == 0, f"drst run exit {run.returncode}: {open(out('run.err')).read()[-1500:]}")
    j = json.loads(stdout.strip().splitlines()[-1])
    check(j["records"] == 600 and j["clock"] == "wall", f"summary {j}")
finally:
    for pr in procs:
        if pr.poll() is None:
            pr.terminate()
            try:
                pr.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pr.kill()

if fails:
    print(f"{len(fails)} failure(s); files in {tmp}")
    sys.exit(1)
print("ok: Prometheus scraped drst run's series")
