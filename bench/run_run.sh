#!/usr/bin/env bash
# The whole loop on DRST's data: `drst run` (defaults: measured retrain lag) against
# the named peer, scikit-learn's HistGradientBoostingRegressor retrained every 25
# records on combined.csv + every stream record so far (prequential), in the same
# run: adaptive acc@0.2/acc@0.05 and wall time of both, and their ratios.
# Env: DRST_BIN, DRST_DATA, DRST_PYTHON. Prints figures; never gates.
set -eu
drst=${DRST_BIN:-$(dirname "$0")/../build/drst}
data=${DRST_DATA:-$(dirname "$0")/../../shared/data}
py=${DRST_PYTHON:-/usr/bin/python3}
train=$data/drst/combined.csv
stream=$data/drst/stage2_resource_stimulus_A-B-C.csv
[ -x "$drst" ] || { echo "run_run: $drst not built" >&2; exit 1; }
[ -f "$train" ] && [ -f "$stream" ] || { echo "run_run: DRST data not found under $data (skipped)"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "load before: $(uptime)"
t0=$(date +%s.%N)
"$drst" run --train "$train" --stream "$stream" --out "$tmp/run" --json --no-report --quiet \
  2>/dev/null > "$tmp/drst.json"
t1=$(date +%s.%N)
"$py" - "$train" "$stream" "$tmp/drst.json" "$(echo "$t1 - $t0" | bc)" <<'PY'
import json, sys, time
import numpy as np, pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
train, stream, dj, dwall = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
d = json.load(open(dj))
A = pd.read_csv(train); S = pd.read_csv(stream)
feats = [c for c in A.columns if c not in ("output_rate", "input_rate", "latency") and not c.startswith("Unnamed")]
A = A.dropna(subset=feats + ["output_rate"])
t0 = time.time()
X0, y0 = A[feats].to_numpy(), A["output_rate"].to_numpy()
Xs, ys = S[feats].to_numpy(), S["output_rate"].to_numpy()
pred = np.empty(len(S)); m = None
for i in range(len(S)):
    if i % 25 == 0:
        m = HistGradientBoostingRegressor(random_state=42).fit(np.vstack([X0, Xs[:i]]), np.concatenate([y0, ys[:i]]))
    pred[i] = m.predict(Xs[i:i + 1])[0]
pw = time.time() - t0
e = np.abs(pred - ys) / np.maximum(np.abs(ys), 1e-9)
p20, p05 = float(np.mean(e <= 0.2)), float(np.mean(e <= 0.05))
print(f"drst run (defaults):       adaptive acc@0.2 {d['adaptive.acc@0.2']:.4f} acc@0.05 {d['adaptive.acc@0.05']:.4f}  "
      f"retrains {d['retrains']}  K {d['retrain_lag_min']}..{d['retrain_lag_max']}  wall {dwall:.1f} s")
print(f"sklearn HGB every 25 rec:  adaptive acc@0.2 {p20:.4f} acc@0.05 {p05:.4f}  retrains {len(S) // 25 + 1}  K 1  wall {pw:.1f} s")
print(f"ratio drst/sklearn:        acc@0.2 {d['adaptive.acc@0.2'] / p20:.3f}  acc@0.05 {d['adaptive.acc@0.05'] / p05:.3f}  wall {dwall / pw:.3f}")
PY
echo "load after: $(uptime)"
