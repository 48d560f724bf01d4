#!/usr/bin/env bash
# Runs every bench/run_*.sh in turn. Figures go to stdout; nothing here fails
# a build because a machine was slow.
set -u
here=$(cd "$(dirname "$0")" && pwd)
status=0
for b in "$here"/run_*.sh; do
  [ -e "$b" ] || continue
  echo "=== $(basename "$b")"
  bash "$b" || { echo "benchmark $(basename "$b") failed"; status=1; }
done
exit $status
