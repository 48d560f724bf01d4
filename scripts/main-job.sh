#!/usr/bin/env bash
# The main job (`make run`) until `drst run` exists: build the DRST datasets
# from the raw bundles in DATA_DIR and inspect them.
#   bash scripts/main-job.sh BUILD/drst DATA_DIR OUT_DIR
# Writes OUT_DIR/dataset.csv (perf branch, the four perf samples) and
# OUT_DIR/pcm.csv (PCM branch), with their rejected lines in
# OUT_DIR/*.rejects.txt, then prints `drst dataset inspect` of both.
set -eu
if [ $# -ne 3 ]; then
  echo "usage: $0 DRST_BINARY DATA_DIR OUT_DIR" >&2
  exit 2
fi
drst=$1
data=$2
out=$3
[ -x "$drst" ] || { echo "main-job: drst binary '$drst' not found; run 'make build' first" >&2; exit 1; }
raw=$data/drst/raw
if [ ! -d "$raw/perf-samples" ] || [ ! -d "$raw/pcm-const-1gbps" ]; then
  echo "main-job: DRST raw data not found under '$data' (expected $raw/perf-samples and" >&2
  echo "main-job: $raw/pcm-const-1gbps). Put the shared data folder next to the checkout" >&2
  echo "main-job: (../shared/data) or run: make run DATA=/path/to/shared/data" >&2
  exit 1
fi
mkdir -p "$out"

echo "== drst dataset build (perf branch): $raw/perf-samples/*"
"$drst" dataset build "$raw"/perf-samples/* -o "$out/dataset.csv" \
  --rejects "$out/dataset.rejects.txt"
echo
echo "== drst dataset pcm (PCM branch): $raw/pcm-const-1gbps"
"$drst" dataset pcm "$raw/pcm-const-1gbps" -o "$out/pcm.csv" --rejects "$out/pcm.rejects.txt"
echo
echo "== drst dataset inspect $out/dataset.csv"
"$drst" dataset inspect "$out/dataset.csv"
echo
echo "== drst dataset inspect $out/pcm.csv (first 40 columns; full: --json)"
"$drst" dataset inspect "$out/pcm.csv" | head -n 46
echo
echo "main-job: wrote $out/dataset.csv and $out/pcm.csv"
