#!/usr/bin/env bash
# Inference plane benchmark: one consumer pinned to one core, end to end on
# the in-process log (poll + decode + align + two MLP(64,32) predictions +
# metrics + commit), JSON and binary records, without and with a forced
# adaptive-model swap every 100 ms; against the anchor measured in the same
# run: a DRST-style Python consumer (json.loads + sklearn StandardScaler +
# torch MLP(64,32) predict, batch 1) on the same records, same core.
# Targets (issue 5): >= 500 k records/s JSON (>= 100x the anchor), >= 2 M
# records/s binary, p99 per-record latency with swaps within 2x of without.
# Figures only; never gates.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dd="${DRST_DATA:-$here/../../shared/data}/drst"
train="$dd/combined.csv"; stream="$dd/stage2_resource_stimulus_A-B-C.csv"
py="${DRST_PYTHON:-/usr/bin/python3}"
bin="${DRST_BENCH_BIN:-$here/../build/bench}/bench_infer"
[ -x "$bin" ] || bin="$(dirname "${DRST_BIN:-build/drst}")/bench/bench_infer"
# 30 passes: at ~2 M records/s the swap run then still spans >= 10 swaps.
records=${RECORDS:-100000}; passes=${PASSES:-30}; core=${CORE:-0}
if [ ! -f "$train" ] || [ ! -f "$stream" ]; then echo "run_infer: $dd not found, skipped"; exit 0; fi
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
echo "machine: $(nproc) cores; load before: $(uptime)"
pin="taskset -c $core"; command -v taskset >/dev/null || pin=""
res=""
for fmt in json binary; do
  for sw in 0 100; do
    out=$($pin "$bin" --train "$train" --stream "$stream" --records "$records" --passes "$passes" \
          --format "$fmt" --swap-ms "$sw") || { echo "bench_infer $fmt $sw failed"; exit 1; }
    echo "drst $out"
    res="$res$out"$'\n'
  done
done
anchor=$($pin "$py" - "$train" "$stream" <<'PY'
import json, sys, time, warnings
import numpy as np, pandas as pd
warnings.filterwarnings("ignore")
from sklearn.preprocessing import StandardScaler
import torch
torch.set_num_threads(1)
tr, st = pd.read_csv(sys.argv[1]).dropna(), pd.read_csv(sys.argv[2])
feats = [c for c in tr.columns if c not in ("output_rate", "input_rate", "latency") and not c.startswith("Unnamed")]
feats = [c for c in feats if tr[c].std() > 0]
sc = StandardScaler().fit(tr[feats].to_numpy())
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(len(feats), 64), torch.nn.ReLU(), torch.nn.Linear(64, 32),
                          torch.nn.ReLU(), torch.nn.Linear(32, 1)).eval()
recs = [json.dumps({"seq": i, "ts": 0.0, "send_ts": 0.0, "features": {f: float(st[f].iloc[i % len(st)]) for f in feats},
                    "label": float(st["output_rate"].iloc[i % len(st)])}) for i in range(6000)]
def consume(msgs):
    hits = 0
    for m in msgs:
        d = json.loads(m)
        x = np.array([[d["features"].get(f, np.nan) for f in feats]])
        xs = sc.transform(x)
        with torch.no_grad():
            y = float(net(torch.from_numpy(xs).float())[0, 0])
        hits += abs(y - d["label"]) <= 0.2 * abs(d["label"])
    return hits
consume(recs[:500])  # warm-up
best = None
for rep in range(3):
    t = time.perf_counter(); consume(recs); dt = time.perf_counter() - t
    best = dt if best is None or dt < best else best
print(f"{len(recs) / best:.0f}")
PY
) || { echo "anchor failed"; exit 1; }
echo "anchor python consumer (json.loads + StandardScaler + torch MLP(64,32) batch 1, one predict): $anchor records/s"
summary=$(mktemp); trap 'rm -f "$summary"' EXIT
cat > "$summary" <<'PY'
import json, sys
anchor = float(sys.argv[1])
rows = [json.loads(l) for l in sys.stdin if l.strip()]
def get(f, s):
    return next(r for r in rows if r["format"] == f and r["swap_ms"] == s)
for f, target in (("json", 500e3), ("binary", 2e6)):
    a, b = get(f, 0), get(f, 100)
    rps, pred = a["records_per_s"], a["predict_only_records_per_s"]
    met = "met" if rps >= target else "MISSED"
    cps = a["records"] / a["cpu_s"]
    print(f"{f:6s}: {rps / 1e3:6.0f} k records/s wall = {rps / anchor:5.1f}x the anchor "
          f"(target {target / 1e3:.0f} k: {met}); {cps / 1e3:.0f} k records per CPU-second of the "
          f"consumer thread (unaffected by other load); the two predictions alone: {pred / 1e3:.0f} k/s")
    r = b["lat_p99_s"] / a["lat_p99_s"]
    met = "met" if r <= 2 else "MISSED"
    print(f"        p99 per-record latency {a['lat_p99_s'] * 1e6:.0f} us without swaps, "
          f"{b['lat_p99_s'] * 1e6:.0f} us with a swap every 100 ms ({b['swaps']} swaps): "
          f"ratio {r:.2f} (target <= 2: {met}); {b['records_per_s'] / 1e3:.0f} k records/s with swaps")
a = get("binary", 0)
if "f32_max_abs_diff" in a:
    print(f"float32 serving vs double predict on the stream rows (both models): max |diff| "
          f"{a['f32_max_abs_diff']:.3g} (target units), max relative {a['f32_max_rel_diff']:.3g}; "
          f"acc@0.2 hits {a['acc20_hits_f32']} vs {a['acc20_hits_f64']}")
PY
echo "$res" | "$py" "$summary" "$anchor"
echo "load after: $(uptime)"
