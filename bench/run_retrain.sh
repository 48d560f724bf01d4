#!/usr/bin/env bash
# Retrain benchmark: wall time of drst's tier-A retrain (successive halving over
# the tier-A space on 2 threads, then full training of the best) on a 300-row
# window of DRST's stage2 A-B-C stream, against a DRST-style PyTorch retrain of
# the same window (StandardScaler + MLP, Adam, a tier-A grid of 4 settings
# scored with a few epochs on the held-back last 20 %, then the best trained
# for 100 epochs), torch on 2 threads, in the same run. Target: <= 2 s.
# Also: monitor feed throughput on one core (drst_monitor_feed, 60 features).
# Optional (BENCH_PREQ=1): the prequential figure on the whole stream.
# Env: DRST_BENCH_BIN (dir holding bench_retrain), DRST_DATA, DRST_PYTHON,
#      RETRAIN_ROWS (300) RETRAIN_REPS (3) BENCH_PREQ (0) PREQ_ARGS ("refresh=25 weight=5")
set -eu
bin=${DRST_BENCH_BIN:-$(dirname "$0")/../build/bench}/bench_retrain
py=${DRST_PYTHON:-/usr/bin/python3}
data=${DRST_DATA:-$(dirname "$0")/../../shared/data}
stage2=$data/drst/stage2_resource_stimulus_A-B-C.csv
combined=$data/drst/combined.csv
rows=${RETRAIN_ROWS:-300}
reps=${RETRAIN_REPS:-3}
[ -x "$bin" ] || { echo "run_retrain: $bin not built" >&2; exit 1; }
[ -f "$stage2" ] || { echo "run_retrain: $stage2 not found, skipped" >&2; exit 0; }
echo "load before: $(uptime)"
pin=""
command -v taskset >/dev/null && pin="taskset -c 0"
echo "monitor feed, one core (jsd window + labels ring + reservoir; target >= 10 M feature-updates/s):"
$pin "$bin" monitor features=60 records=500000
out=$("$bin" window "$stage2" rows="$rows" reps="$reps" threads=2)
echo "$out"
drst=$(echo "$out" | sed -n 's/^tierA_wall_s_median //p')
pyout=$(OMP_NUM_THREADS=2 "$py" - "$stage2" "$rows" "$reps" <<'PY'
import sys, time
import numpy as np, pandas as pd, torch
path, rows, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(2)
s = pd.read_csv(path)
feats = [c for c in s.columns if c not in ("Unnamed: 0", "input_rate", "output_rate", "latency")]
w = s.iloc[-rows:]
X = w[feats].to_numpy(np.float64); y = w["output_rate"].to_numpy(np.float64)
keep = X.std(axis=0) > 0
X = X[:, keep]
nval = int(rows * 0.2 + 0.5)

def fit(Xtr, ytr, hidden, lr, batch, epochs, seed=42):
    torch.manual_seed(seed)
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-12
    ym, ys = ytr.mean(), ytr.std() + 1e-12
    xt = torch.tensor((Xtr - mu) / sd, dtype=torch.float32)
    yt = torch.tensor((ytr - ym) / ys, dtype=torch.float32).unsqueeze(1)
    layers, d = [], xt.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(d, h), torch.nn.ReLU()]; d = h
    net = torch.nn.Sequential(*layers, torch.nn.Linear(d, 1))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    lossf = torch.nn.SmoothL1Loss()
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad(); loss = lossf(net(xt[idx]), yt[idx]); loss.backward(); opt.step()
    def pred(Xn):
        with torch.no_grad():
            return net(torch.tensor((Xn - mu) / sd, dtype=torch.float32)).squeeze(1).numpy() * ys + ym
    return pred

grid = [((64, 32), 1e-3, 32), ((64, 32), 5e-4, 16), ((128, 64), 1e-3, 32), ((128, 64), 5e-4, 16)]
times = []
for r in range(reps):
    t0 = time.perf_counter()
    Xtr, ytr, Xv, yv = X[:-nval], y[:-nval], X[-nval:], y[-nval:]
    best, bs = None, -1
    for g in grid:
        p = fit(Xtr, ytr, *g, epochs=10)
        e = np.abs(p(Xv) - yv) / np.maximum(np.abs(yv), 1e-9)
        sc = np.mean(e <= 0.2) + np.mean(e <= 0.05)
        if sc > bs: bs, best = sc, g
    p = fit(Xtr, ytr, *best, epochs=100)
    e = np.abs(p(Xv) - yv) / np.maximum(np.abs(yv), 1e-9)
    times.append(time.perf_counter() - t0)
times.sort()
print("torch_best", best)
print("torch_val_acc20 %.4f" % np.mean(e <= 0.2))
print("torch_val_acc05 %.4f" % np.mean(e <= 0.05))
print("torch_wall_s_median %.3f" % times[len(times) // 2])
PY
)
echo "$pyout"
torch=$(echo "$pyout" | sed -n 's/^torch_wall_s_median //p')
awk -v a="$drst" -v b="$torch" 'BEGIN { if (a > 0) printf "speedup drst vs torch (wall, tier-A retrain of %s rows): %.2fx\n", '"$rows"', b / a }'
if [ "${BENCH_PREQ:-0}" = 1 ]; then
    echo "prequential (${PREQ_ARGS:-refresh=25 weight=5}):"
    # shellcheck disable=SC2086
    "$bin" prequential "$combined" "$stage2" ${PREQ_ARGS:-refresh=25 weight=5}
fi
echo "load after: $(uptime)"
