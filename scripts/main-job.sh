#!/usr/bin/env bash
# The main job (`make run`): drst doing everything it is for, in one command.
#   bash scripts/main-job.sh BUILD/drst DATA_DIR OUT_DIR
# 1. data: DRST's real data when DATA_DIR/drst holds it (train combined.csv,
#    stream the stage-2 CPU-contention file); otherwise a SYNTHETIC drift
#    scenario made by `drst simulate` (a sweep to train on, then the
#    contention scenario: CPU stressors A/B/C on chosen VNFs);
# 2. `drst run`: offline training, producer -> 3 partitions -> 3 inference
#    consumers, drift monitor, retraining and hot swap, in one process;
# 3. the report: OUT_DIR/run/report.md + PNG figures (written by drst run).
# With the raw bundles present it first rebuilds the datasets from them
# (`drst dataset build|pcm`), as the telemetry plane's part of the job.
set -eu
if [ $# -ne 3 ]; then
  echo "usage: $0 DRST_BINARY DATA_DIR OUT_DIR" >&2
  exit 2
fi
drst=$1
data=$2
out=$3
[ -x "$drst" ] || { echo "main-job: drst binary '$drst' not found; run 'make build' first" >&2; exit 1; }
mkdir -p "$out"

raw=$data/drst/raw
if [ -d "$raw/perf-samples" ] && [ -d "$raw/pcm-const-1gbps" ]; then
  echo "== telemetry: drst dataset build / pcm from the raw DRST bundles in $raw"
  "$drst" dataset build "$raw"/perf-samples/* -o "$out/dataset.csv" \
    --rejects "$out/dataset.rejects.txt" 2>&1 | tail -n 3
  "$drst" dataset pcm "$raw/pcm-const-1gbps" -o "$out/pcm.csv" \
    --rejects "$out/pcm.rejects.txt" 2>&1 | tail -n 3
  echo
fi

train=$data/drst/combined.csv
stream=$data/drst/stage2_resource_stimulus_A-B-C.csv
if [ -f "$train" ] && [ -f "$stream" ]; then
  echo "== data: DRST's real measurements ($train, then the stage-2 contention stream)"
else
  echo "== data: DRST's data not found under '$data': simulating a drift scenario instead"
  echo "   (SYNTHETIC: drst simulate; real data stays the judge of accuracy)"
  train=$out/sim-train.csv
  stream=$out/sim-stream.csv
  "$drst" simulate --scenario sweep --rows 1500 --seed 1 -o "$train"
  "$drst" simulate --scenario contention --rows 2000 --seed 2 -o "$stream"
fi
echo

rm -rf "$out/run"
echo "== drst run --train $train --stream $stream --out $out/run"
"$drst" run --train "$train" --stream "$stream" --out "$out/run" --seed 42
echo
echo "main-job: report in $out/run/report.md (figures: $out/run/*.png);"
echo "main-job: run files (traces, drift, events, resources, metrics) in $out/run/"
