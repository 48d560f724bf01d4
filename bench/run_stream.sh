#!/usr/bin/env bash
# Stream plane: records/s from producer to consumer, drst against a Python
# consumer (json.loads; python3-confluent-kafka for Kafka) in the same run.
#   1. in-process log (binary and JSON records, DRST rows of 60 and 12 features)
#      vs Python json.loads over the very same JSON records;
#   2. Kafka through `drst broker` on loopback, 3 partitions: drst consumer
#      vs a Python confluent-kafka consumer reading the same topic.
# Env: DRST_BIN, DRST_BENCH_BIN (dir of bench_stream), DRST_DATA, DRST_PYTHON,
# STREAM_N (in-process records, default 2000000), STREAM_KAFKA_N (default 300000).
set -u
here=$(cd "$(dirname "$0")" && pwd)
DRST_BIN=${DRST_BIN:-$here/../build/drst}
BENCH=${DRST_BENCH_BIN:-$here/../build/bench}/bench_stream
DATA=${DRST_DATA:-$here/../../shared/data}
PY=${DRST_PYTHON:-/usr/bin/python3}
N=${STREAM_N:-2000000}
KN=${STREAM_KAFKA_N:-300000}
csv=$DATA/drst/combined.csv
[ -f "$csv" ] || { echo "run_stream: no $csv; skipped"; exit 0; }
[ -x "$BENCH" ] || { echo "run_stream: no $BENCH (build the bench target)"; exit 1; }
tmp=$(mktemp -d)
bpid=
cleanup() { [ -n "$bpid" ] && kill "$bpid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

echo "machine: $(nproc) cores; load before: $(uptime)"

pyloads() { # python json.loads over the same records, as many as drst decoded
  "$PY" - "$1" "$2" <<'EOF'
import json, sys, time
lines = open(sys.argv[1]).read().splitlines()
n = int(sys.argv[2]); reps = max(1, n // len(lines))
best = 0
for _ in range(3):
    t = time.perf_counter(); s = 0.0
    for _ in range(reps):
        for l in lines:
            r = json.loads(l); s += r["features"][next(iter(r["features"]))]
    best = max(best, reps * len(lines) / (time.perf_counter() - t))
print("%.0f" % best)
EOF
}

for nf in 60 12; do
  out=$("$BENCH" inproc "$csv" $nf "$N" "$tmp/pool$nf.jsonl") || exit 1
  echo "$out" | grep -v '^RESULT'
  json=$(echo "$out" | awk '/^RESULT inproc_json_1t/ {print $3}')
  py=$(pyloads "$tmp/pool$nf.jsonl" 200000)
  awk -v d="$json" -v p="$py" -v nf=$nf 'BEGIN { printf "  Python json.loads  %12.0f records/s (%d features; same records) -> drst JSON 1 thread = %.1fx\n", p, nf, d / p }'
done

# ---- Kafka through drst broker on loopback ----
"$DRST_BIN" broker --topic bench --partitions 3 > "$tmp/addr" 2>/dev/null &
bpid=$!
for _ in $(seq 100); do [ -s "$tmp/addr" ] && break; sleep 0.05; done
bs=$(head -1 "$tmp/addr")
echo "Kafka via drst broker ($bs), 3 partitions, $KN records of 12 features:"
"$BENCH" kafka-produce "$bs" bench "$csv" 12 "$KN" | sed 's/^/  /' || exit 1
dr=$("$BENCH" kafka-consume "$bs" bench drst-bench "$csv" 12) || exit 1
echo "$dr" | grep -v '^RESULT' | sed 's/^/  /'
drate=$(echo "$dr" | awk '/^RESULT kafka_drst/ {print $3}')
prate=$("$PY" - "$bs" <<'EOF'
import json, sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "py-bench",
              "auto.offset.reset": "earliest", "enable.auto.commit": False,
              "fetch.wait.max.ms": 10, "queued.min.messages": 200000})
c.subscribe(["bench"])
ended, n, t0, s = set(), 0, None, 0.0
while len(ended) < 3:
    msgs = c.consume(num_messages=10000, timeout=1.0)
    if not msgs:
        continue
    if t0 is None:
        t0 = time.perf_counter()
    for m in msgs:
        if m.error():
            continue
        r = json.loads(m.value())
        if r.get("eos"):
            ended.add(m.partition())
        else:
            n += 1; s += r["features"][next(iter(r["features"]))]
    c.commit(asynchronous=False)
t1 = time.perf_counter()
c.close()
print("%.0f %d" % (n / (t1 - t0), n))
EOF
)
awk -v d="$drate" -v p="${prate% *}" -v n="${prate#* }" 'BEGIN { printf "  Python confluent-kafka + json.loads: %d records, %.0f records/s -> drst = %.1fx\n", n, p, d / p }'
echo "load after: $(uptime)"
