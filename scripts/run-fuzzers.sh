#!/usr/bin/env bash
# Runs every built fuzz_* target for a few seconds each, seeded from
# tests/fuzz/corpus/<name>/ when present. Any crash fails the run.
set -eu
build=$(cd "$1" && pwd)
seconds=${2:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
status=0
found=0
for f in "$build"/tests/fuzz_*; do
  [ -x "$f" ] || continue
  found=1
  name=$(basename "$f")
  work=$(mktemp -d)
  seeds="$here/tests/fuzz/corpus/$name"
  args=("$work")
  [ -d "$seeds" ] && args+=("$seeds")
  echo "fuzz: $name for ${seconds}s"
  if ! (cd "$work" && "$f" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
        -print_final_stats=0 "${args[@]}" >"$work/log" 2>&1); then
    echo "fuzz: $name FAILED"; tail -40 "$work/log"; status=1
  fi
  rm -rf "$work"
done
[ "$found" = 1 ] || { echo "fuzz: no fuzz targets were built" >&2; exit 1; }
exit $status
