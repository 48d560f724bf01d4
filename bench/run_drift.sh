#!/usr/bin/env bash
# Drift monitor benchmark: feature-updates per second of drst's "jsd" detector
# (incremental histograms, JSD every S records) against a straightforward
# DRST-style Python/numpy monitor (np.histogram of the whole window per
# feature at every stride point + scipy jensenshannon), same F/B/W/S, both
# pinned to one core, in the same run. Target: >= 10 M feature-updates/s.
# Env: DRST_BENCH_BIN (dir holding bench_drift), DRST_PYTHON,
#      DRIFT_F (60) DRIFT_B (64) DRIFT_W (300) DRIFT_S (50)
#      DRIFT_N (records for drst, 1000000) DRIFT_PY_N (records for Python, 20000)
set -eu
bin=${DRST_BENCH_BIN:-$(dirname "$0")/../build/bench}/bench_drift
py=${DRST_PYTHON:-/usr/bin/python3}
F=${DRIFT_F:-60}; B=${DRIFT_B:-64}; W=${DRIFT_W:-300}; S=${DRIFT_S:-50}
N=${DRIFT_N:-1000000}; PN=${DRIFT_PY_N:-20000}
[ -x "$bin" ] || { echo "run_drift: $bin not built" >&2; exit 1; }
pin=""
command -v taskset >/dev/null && pin="taskset -c 0"
echo "load before: $(uptime)"
out=$($pin "$bin" "$F" "$B" "$W" "$S" "$N" 5)
echo "$out"
drst=$(echo "$out" | sed -n 's/^jsd_feature_updates_per_s //p')
pyout=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $pin "$py" - "$F" "$B" "$W" "$S" "$PN" <<'PY'
import sys, time
import numpy as np
from scipy.spatial.distance import jensenshannon
F, B, W, S, N = (int(a) for a in sys.argv[1:6])
rng = np.random.default_rng(2024)
base = rng.standard_normal((2000, F))
x = rng.standard_normal((N, F))
x[N // 2:] += 1.0
lo, hi = base.min(axis=0), base.max(axis=0)
m = 0.05 * (hi - lo)
edges = [np.linspace(lo[f] - m[f], hi[f] + m[f], B + 1) for f in range(F)]
bh = [np.histogram(base[:, f], bins=edges[f])[0] + 0.01 for f in range(F)]

def run():
    evals = 0
    t0 = time.perf_counter()
    for i in range(W, N + 1, S):
        win = x[i - W:i]
        s = 0.0
        for f in range(F):
            # DRST clips to the baseline range, so out-of-range values count
            col = np.clip(win[:, f], edges[f][0], edges[f][-1])
            q = np.histogram(col, bins=edges[f])[0] + 0.01
            s += jensenshannon(bh[f], q, base=2) ** 2
        evals += 1
    return time.perf_counter() - t0, evals

run()  # warm-up
ts = []
for _ in range(3):
    t, evals = run()
    ts.append(t)
t = sorted(ts)[1]
recs = N - W
print("python: records %d evaluations %d seconds_median %.4f" % (recs, evals, t))
print("python_feature_updates_per_s %.0f" % (recs * F / t))
PY
)
echo "$pyout"
pyr=$(echo "$pyout" | sed -n 's/^python_feature_updates_per_s //p')
awk -v a="$drst" -v b="$pyr" 'BEGIN { printf "ratio drst/python (feature-updates/s): %.1fx\n", a / b;
  printf "target >= 10000000 feature-updates/s: %s\n", (a >= 1e7 ? "met" : "MISSED") }'
echo "load after: $(uptime)"
