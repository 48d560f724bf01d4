#!/usr/bin/env bash
# Observability benchmark: lock-free metric updates vs a mutex-protected counter
# (the named peer) in the same run, exposition rendering, simulator rows/s.
# Env: DRST_BENCH_BIN (dir holding bench_obs). Never fails because a machine was slow.
set -eu
bin=${DRST_BENCH_BIN:-$(dirname "$0")/../build/bench}/bench_obs
[ -x "$bin" ] || { echo "run_obs: $bin not built" >&2; exit 1; }
echo "load before: $(uptime)"
"$bin"
echo "load after: $(uptime)"
