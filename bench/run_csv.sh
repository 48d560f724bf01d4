#!/usr/bin/env bash
# CSV reader benchmark: drst_table_read_csv vs pandas.read_csv (C engine) on
# the same generated numeric file (>= 100 MB), each pinned to one core, in the
# same run. Prints wall and CPU figures (CPU time is the fairer one when the
# machine is shared) and the load. Never fails because a machine was slow.
# Env: DRST_BENCH_BIN (dir holding bench_csv), DRST_PYTHON, CSV_MB (default 120),
#      CSV_RUNS (default 5 for drst; pandas does min(3, CSV_RUNS)).
set -eu
bin=${DRST_BENCH_BIN:-$(dirname "$0")/../build/bench}/bench_csv
py=${DRST_PYTHON:-/usr/bin/python3}
mb=${CSV_MB:-120}
runs=${CSV_RUNS:-5}
[ -x "$bin" ] || { echo "run_csv: $bin not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
f=$tmp/bench.csv
"$bin" gen "$f" "$mb"
size=$(stat -c %s "$f")
echo "file: $size bytes, 20 numeric columns (timestamps, integer counters, %.3f, %.17g, %.6g)"
echo "load before: $(uptime)"
pin=""
command -v taskset >/dev/null && pin="taskset -c 0"
out=$($pin "$bin" read "$f" "$runs")
echo "$out" | grep -v '^DRST_SECONDS='
read -r drst_wall drst_cpu <<<"$(echo "$out" | sed -n 's/^DRST_SECONDS=//p')"
pd=$(OMP_NUM_THREADS=1 $pin "$py" - "$f" "$runs" <<'PY'
import sys, time, statistics
import pandas as pd
path, n = sys.argv[1], max(1, min(int(sys.argv[2]), 3))
pd.read_csv(path)  # warm-up (page cache)
wall, cpu = [], []
for _ in range(n):
    t0, c0 = time.perf_counter(), time.process_time()
    df = pd.read_csv(path)  # default C engine
    wall.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
w, c = statistics.median(wall), statistics.median(cpu)
print("pandas %s read_csv: %d rows x %d cols, median of %d runs: wall %.3f s, cpu %.3f s"
      % (pd.__version__, df.shape[0], df.shape[1], n, w, c))
print("PANDAS_SECONDS=%.6f %.6f" % (w, c))
PY
)
echo "$pd" | grep -v '^PANDAS_SECONDS='
read -r pd_wall pd_cpu <<<"$(echo "$pd" | sed -n 's/^PANDAS_SECONDS=//p')"
awk -v s="$size" -v a="$drst_wall" -v b="$pd_wall" -v ac="$drst_cpu" -v bc="$pd_cpu" 'BEGIN {
  printf "wall: drst %.1f MB/s, pandas %.1f MB/s, ratio %.2fx\n", s/1e6/a, s/1e6/b, b/a
  printf "cpu:  drst %.1f MB/s, pandas %.1f MB/s, ratio %.2fx\n", s/1e6/ac, s/1e6/bc, bc/ac
  printf "targets: >= 300 MB/s on one core, >= 5x pandas.read_csv\n" }'
echo "load after: $(uptime)"
