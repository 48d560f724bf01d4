"""A real Prometheus server scrapes drst's /metrics (libmicrohttpd endpoint) and its query
API returns drst's series with the values the helper set. Also checks /healthz and 404.

Needs the Debian `prometheus` package (scripts/deps.sh test); skips (77) without it."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

helper = os.path.join(os.environ.get("DRST_TESTBIN", ""), "obs_helper")
prom = shutil.which("prometheus")
if not prom:
    print("skip: prometheus not installed (apt-get install prometheus)")
    sys.exit(77)
if not os.path.exists(helper):
    print(f"FAIL: {helper} not built")
    sys.exit(1)

tmp = tempfile.mkdtemp(prefix="drst_prom_")
procs = []
fails = []


def check(cond, msg):
    if not cond:
        fails.append(msg)
        print("FAIL:", msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(url, timeout=3):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


try:
    h = subprocess.Popen([helper, "serve", "127.0.0.1:0", "40"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    procs.append(h)
    line = h.stdout.readline().split()
    assert line and line[0] == "PORT", f"helper said {line}"
    port = int(line[1])
    base = f"http://127.0.0.1:{port}"

    st, body = get(base + "/healthz")
    check(st == 200 and body.startswith("ok"), f"/healthz: {st} {body!r}")
    st, _ = get(base + "/nope")
    check(st == 404, f"/nope: {st}")
    st, body = get(base + "/metrics")
    check(st == 200 and "# TYPE drst_test_records_total counter" in body, "/metrics body")

    pport = free_port()
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: drst\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{port}']\n")
    pl = open(os.path.join(tmp, "prometheus.log"), "w")
    p = subprocess.Popen([prom, f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/tsdb",
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

    want = ["drst_test_records_total", "drst_test_accuracy", "drst_test_info",
            "drst_test_latency_seconds_count"]
    deadline = time.time() + 25
    res = {}
    while time.time() < deadline:
        res = {q: query(q) for q in want}
        if all(res.values()):
            break
        time.sleep(0.5)
    for q in want:
        check(bool(res.get(q)), f"Prometheus has no series {q}")
    if all(res.values()):
        recs = {(r["metric"]["partition"], r["metric"]["path"]): float(r["value"][1])
                for r in res["drst_test_records_total"]}
        check(set(recs) == {("0", "adaptive"), ("1", "baseline")}, f"labels {recs}")
        check(all(v > 0 for v in recs.values()), f"counter values {recs}")
        acc = res["drst_test_accuracy"][0]
        check(float(acc["value"][1]) == 0.875 and acc["metric"]["tau"] == "0.1"
              and acc["metric"]["job"] == "drst", f"gauge {acc}")
        info = res["drst_test_info"][0]["metric"]["note"]
        check(info == 'a "quoted" \\ value\nline2', f"escaped label decoded as {info!r}")
        # Every observation was 0.003 s: the 0.005 bucket holds them all, 0.0025 none.
        le5 = query('drst_test_latency_seconds_bucket{le="0.005"}')
        le25 = query('drst_test_latency_seconds_bucket{le="0.0025"}')
        cnt = query("drst_test_latency_seconds_count")
        check(float(le25[0]["value"][1]) == 0, "0.0025 bucket not empty")
        # bucket and count come from the same scrape
        check(float(le5[0]["value"][1]) == float(cnt[0]["value"][1]), "0.005 bucket != count")
        up = query('up{job="drst"}')
        check(up and float(up[0]["value"][1]) == 1, f"up: {up}")
finally:
    for pr in procs:
        pr.terminate()
    for pr in procs:
        try:
            pr.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pr.kill()
    shutil.rmtree(tmp, ignore_errors=True)

if fails:
    sys.exit(1)
print("ok")
