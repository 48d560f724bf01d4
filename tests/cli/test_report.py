"""drst report: tables recomputed here with pandas/numpy from the same synthetic run
files; images exist, are valid non-empty PNGs; bad lines are reported; usage errors."""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import pandas as pd

DRST = os.environ["DRST_BIN"]
tmp = tempfile.mkdtemp(prefix="drst_report_")
run = os.path.join(tmp, "run")
os.makedirs(run)
fails = []


def check(cond, msg):
    if not cond:
        fails.append(msg)
        print("FAIL:", msg)


# ---- a synthetic run: 3 consumers, drift at record 600, swap at 700 ----
rng = np.random.default_rng(7)
N = 1500
t0 = 1.7e9
ts = t0 + np.sort(rng.uniform(0, 30, N))
truth = 2000 + 800 * np.sin(np.arange(N) / 80.0) + rng.normal(0, 30, N)
base = truth * (1 + rng.normal(0, 0.04, N))
base[600:] *= 0.8                      # the static model goes stale after the drift
adapt = base.copy()
adapt[700:] = truth[700:] * (1 + rng.normal(0, 0.03, N - 700))
lat = rng.lognormal(-7, 0.5, N)
part = np.arange(N) % 3
version = np.where(np.arange(N) < 700, 1, 2)
for c in range(3):
    m = part == c
    df = pd.DataFrame({"ts": ts[m], "partition": part[m], "offset": np.arange(m.sum()),
                       "truth": truth[m], "baseline": base[m], "adaptive": adapt[m],
                       "version": version[m], "latency_s": lat[m]})
    df.to_csv(os.path.join(run, f"trace_consumer-{c}.csv"), index=False, float_format="%.10g")
# one bad line in a trace file
with open(os.path.join(run, "trace_consumer-0.csv"), "a") as f:
    f.write("1,2,3\n")

rec = np.arange(100, N + 1, 50)
score = np.where(rec < 600, 0.05, 0.35) + rng.uniform(0, 0.02, len(rec))
trig = np.zeros(len(rec), int)
trig[np.argmax(rec >= 650)] = 1
tier = np.where(score > 0.3, "B", np.where(score > 0.2, "A", "-"))
pd.DataFrame({"records": rec, "score": score, "tier": tier, "triggered": trig}).to_csv(
    os.path.join(run, "drift.csv"), index=False)
with open(os.path.join(run, "events.csv"), "w") as f:
    f.write("ts,records,kind,version,detail\n")
    f.write(f"{t0 + 12:.3f},650,trigger,1,tier B\n")
    f.write(f"{t0 + 13:.3f},650,retrain_start,1,\n")
    f.write(f"{t0 + 14:.3f},700,publish,2,model_20261123T000000\n")
    f.write(f"{t0 + 14.1:.3f},700,swap,2,\"from 1, to 2\"\n")
res = []
for comp, rate in [("process", 0.9), ("consumer_0 it's", 0.3), ("monitor", 0.05)]:
    for k in range(31):
        res.append((t0 + k, comp, round(rate * k, 2), 50_000_000 + k * 100_000))
pd.DataFrame(res, columns=["t", "component", "cpu_s", "rss_bytes"]).to_csv(
    os.path.join(run, "resources.csv"), index=False)
with open(os.path.join(run, "metrics.jsonl"), "w") as f:
    f.write(json.dumps({"ts": t0 + 1, "metrics": {"drst_records_total": 10}}) + "\n")
    f.write("{not json\n")
    f.write(json.dumps({"ts": t0 + 30, "metrics": {"drst_records_total": 1500,
                                                   'drst_swaps_total{path="adaptive"}': 1}}) + "\n")
with open(os.path.join(run, "run.json"), "w") as f:
    json.dump({"thresholds": {"A": 0.2, "B": 0.3, "C": 0.5}}, f)

out = os.path.join(tmp, "report", "nested")
p = subprocess.run([DRST, "report", "--in", run, "--out", out, "--window", "200"],
                   capture_output=True, text=True, timeout=60)
check(p.returncode == 0, f"report rc {p.returncode}: {p.stderr}")
check("rejected" in p.stderr, "bad trace/jsonl lines not reported: " + p.stderr)
md = open(os.path.join(out, "report.md")).read()

# ---- independent reference ----
d = pd.concat([pd.read_csv(os.path.join(run, f"trace_consumer-{c}.csv")) for c in range(3)])
d = d.dropna(subset=["ts", "truth"]).sort_values(["ts", "partition", "offset"])
check(len(d) == N, "reference row count")


def acc(pred, t, tau):
    return float(((pred - t).abs() <= tau * t.abs()).mean())


def row(label):
    m = re.search(r"^\| " + re.escape(label) + r" \| ([^|]+) \| ([^|]+) \|$", md, re.M)
    check(m is not None, f"no table row '{label}'")
    return (float(m.group(1)), float(m.group(2))) if m else (np.nan, np.nan)


for tau in [0.05, 0.1, 0.2]:
    b, a = row(f"acc@{tau:g}")
    check(abs(b - acc(d.baseline, d.truth, tau)) < 5e-5, f"baseline acc@{tau}: {b}")
    check(abs(a - acc(d.adaptive, d.truth, tau)) < 5e-5, f"adaptive acc@{tau}: {a}")
    last = d.tail(200)
    b, a = row(f"acc@{tau:g}, last 200 records")
    check(abs(b - acc(last.baseline, last.truth, tau)) < 5e-5, f"last-window baseline {tau}")
    check(abs(a - acc(last.adaptive, last.truth, tau)) < 5e-5, f"last-window adaptive {tau}")
b, a = row("MAPE %")
check(abs(b - 100 * ((d.baseline - d.truth).abs() / d.truth.abs()).mean()) < 5e-4, "MAPE base")
check(abs(a - 100 * ((d.adaptive - d.truth).abs() / d.truth.abs()).mean()) < 5e-4, "MAPE adapt")


def one(label):
    m = re.search(r"^\| " + re.escape(label) + r" \| ([^|]+) \|$", md, re.M)
    check(m is not None, f"no row '{label}'")
    return float(m.group(1)) if m else np.nan


check(one("records") == N, "records")
check(one("drift triggers") == 1, "triggers")
check(one("model swaps") == 1, "swaps")
span = d.ts.max() - d.ts.min()
check(abs(one("throughput (records/s)") - N / span) < 0.051, "throughput")
m = re.search(r"^\| receive → prediction \| (.+) \|$", md, re.M)
check(m is not None, "latency row")
if m:
    got = [float(x) for x in m.group(1).split("|")]
    want = [np.percentile(d.latency_s, q) * 1e3 for q in (50, 95, 99)] + [d.latency_s.max() * 1e3]
    check(np.allclose(got, want, atol=5e-5), f"latency percentiles {got} vs {want}")
r = pd.read_csv(os.path.join(run, "resources.csv"))
for comp, g in r.groupby("component"):
    m = re.search(r"^\| " + re.escape(comp) + r" \| (\d+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$",
                  md, re.M)
    check(m is not None, f"resources row {comp}")
    if m:
        dc = g.cpu_s.iloc[-1] - g.cpu_s.iloc[0]
        check(int(m.group(1)) == len(g), f"{comp} samples")
        check(abs(float(m.group(2)) - dc) < 5e-4, f"{comp} cpu")
        check(abs(float(m.group(3)) - 100 * dc / (g.t.iloc[-1] - g.t.iloc[0])) < 5e-3,
              f"{comp} cpu%")
        check(abs(float(m.group(4)) - g.rss_bytes.max() / 2**20) < 0.051, f"{comp} rss")
check("| 1 | 650 | " in md and "| B |" in md, "trigger table")
check("from 1, to 2" in md, "event detail with a comma")
check('drst_swaps_total{path=\\"adaptive\\"}' in md or 'drst_swaps_total{path="adaptive"}' in md,
      "final metrics from the last valid JSONL line")

# ---- images: valid PNG with an IHDR of sane size and CRC-correct chunks ----
for img in ["predictions.png", "accuracy.png", "drift.png", "throughput.png", "resources.png"]:
    path = os.path.join(out, img)
    check(os.path.exists(path) and os.path.getsize(path) > 5000, f"{img} missing or tiny")
    if not os.path.exists(path):
        continue
    b = open(path, "rb").read()
    check(b[:8] == b"\x89PNG\r\n\x1a\n", f"{img}: not a PNG")
    w, h = struct.unpack(">II", b[16:24])
    check(600 <= w <= 2000 and 300 <= h <= 1200, f"{img}: size {w}x{h}")
    pos, types = 8, []
    while pos < len(b):
        n, = struct.unpack(">I", b[pos:pos + 4])
        typ = b[pos + 4:pos + 8]
        crc, = struct.unpack(">I", b[pos + 8 + n:pos + 12 + n])
        check(zlib.crc32(typ + b[pos + 8:pos + 8 + n]) == crc, f"{img}: bad CRC")
        types.append(typ)
        pos += 12 + n
    check(types[-1] == b"IEND", f"{img}: no IEND")
    check(f"({img})" in md, f"{img} not referenced in report.md")

# ---- without gnuplot: report still written, says so ----
out2 = os.path.join(tmp, "report2")
p = subprocess.run([DRST, "report", "--in", run, "--out", out2, "--gnuplot", "/nonexistent/gp"],
                   capture_output=True, text=True, timeout=60)
check(p.returncode == 0 and "without images" in p.stderr, "missing gnuplot: " + p.stderr)
check("Images not drawn" in open(os.path.join(out2, "report.md")).read(), "missing-gnuplot note")

# ---- errors ----
empty = os.path.join(tmp, "empty")
os.makedirs(empty)
p = subprocess.run([DRST, "report", "--out", empty], capture_output=True, text=True)
check(p.returncode == 1 and "no trace file" in p.stderr, "no trace: " + p.stderr)
p = subprocess.run([DRST, "report", "--in", run, "--out", out, "--strict"], capture_output=True,
                   text=True)
check(p.returncode == 1, "strict with a bad line should fail")
for args in [[], ["--out"], ["--out", out, "--tau", "x"], ["--out", out, "--window", "0"],
             ["--bogus"]]:
    p = subprocess.run([DRST, "report", *args], capture_output=True, text=True)
    check(p.returncode == 2, f"usage error {args}: rc {p.returncode}")

if fails:
    print(f"{len(fails)} check(s) failed; files in {tmp}")
    sys.exit(1)
print("ok")
