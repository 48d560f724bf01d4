#!/usr/bin/env bash
# Model plane benchmark: mlp(64,32) training time against scikit-learn's
# MLPRegressor and PyTorch on the same data, architecture, epochs, batch and
# optimizer (Adam, lr 1e-3), all on one thread; then drst's single-row
# latency and batched throughput. Figures only; never gates.
set -u
here=$(cd "$(dirname "$0")" && pwd)
data="${DRST_DATA:-$here/../../shared/data}/drst/combined.csv"
py="${DRST_PYTHON:-/usr/bin/python3}"
bin="${DRST_BENCH_BIN:-$here/../build/bench}/bench_model"
[ -x "$bin" ] || bin="$(dirname "${DRST_BIN:-build/drst}")/bench/bench_model"
epochs=${EPOCHS:-200}
if [ ! -f "$data" ]; then echo "run_model: $data not found, skipped"; exit 0; fi
echo "machine: $(nproc) cores; load: $(uptime)"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
out=$("$bin" "$data" "$epochs") || { echo "bench_model failed"; exit 1; }
echo "$out"
ours=$(echo "$out" | awk '/^train_mlp_seconds/ {print $2}')
"$py" - "$data" "$epochs" "$ours" <<'PY'
import sys, time, warnings
import numpy as np, pandas as pd
warnings.filterwarnings("ignore")
data, epochs, ours = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
df = pd.read_csv(data).dropna()
feats = [c for c in df.columns if c not in ("output_rate", "input_rate", "latency") and not c.startswith("Unnamed")]
feats = [c for c in feats if df[c].std() > 0]
rng = np.random.default_rng(42)
idx = rng.permutation(len(df)); ntr = len(df) - round(0.2 * len(df))
X = df[feats].to_numpy()[idx[:ntr]]; y = df["output_rate"].to_numpy()[idx[:ntr]]
X = (X - X.mean(0)) / X.std(0); y = (y - y.mean()) / y.std()
from sklearn.neural_network import MLPRegressor
sks = []
for rep in range(3):
    t = time.perf_counter()
    MLPRegressor((64, 32), batch_size=32, max_iter=epochs, n_iter_no_change=epochs + 1, tol=0,
                 random_state=0, alpha=1e-4, learning_rate_init=1e-3).fit(X, y)
    sks.append(time.perf_counter() - t)
sk = min(sks)
print(f"sklearn_MLPRegressor_seconds {sk:.4f} (best of 3, mean {np.mean(sks):.4f}; {X.shape[1]} features, {ntr} rows, {epochs} epochs, batch 32)")
try:
    import torch
    torch.set_num_threads(1); torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 32),
                              torch.nn.ReLU(), torch.nn.Linear(32, 1)).double()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    lossf = torch.nn.SmoothL1Loss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y).unsqueeze(1)
    pts = []
    for rep in range(3):
        for p in net.parameters():
            torch.nn.init.uniform_(p, -0.1, 0.1)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
        t = time.perf_counter()
        for ep in range(epochs):
            perm = torch.randperm(ntr)
            for i in range(0, ntr, 32):
                b = perm[i:i + 32]
                opt.zero_grad(); l = lossf(net(Xt[b]), yt[b]); l.backward(); opt.step()
        pts.append(time.perf_counter() - t)
    pt = min(pts)
    print(f"pytorch_seconds {pt:.4f} (best of 3, mean {np.mean(pts):.4f}; same net, float64, Adam, SmoothL1, {epochs} epochs, batch 32)")
except ImportError:
    pt = None
    print("pytorch: not installed (python3-torch)")
print(f"ratio (best of 3 each): drst is {sk / ours:.1f}x faster than sklearn MLPRegressor (target >= 5x)")
if pt:
    print(f"ratio (best of 3 each): drst is {pt / ours:.1f}x faster than PyTorch (target >= 5x)")
PY
echo "load after: $(uptime)"
