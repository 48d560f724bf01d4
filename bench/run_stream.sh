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
    t = time.process_time(); s = 0.0  # CPU seconds, like drst
    for _ in range(reps):
        for l in lines:
            r = json.loads(l); s += r["features"][next(iter(r["features"]))]
    best = max(best, reps * len(lines) / (time.process_time() - t))
print("%.0f" % best)
EOF
}

for nf in 60 12; do
  out=$("$BENCH" inproc "$csv" $nf "$N" "$tmp/pool$nf.jsonl") || exit 1
  echo "$out" | grep -v '^RESULT'
  json=$(echo "$out" | awk '/^RESULT inproc_json_1t/ {print $3}')
  py=$(pyloads "$tmp/pool$nf.jsonl" 200000)
  awk -v d="$json" -v p="$py" -v nf=$nf 'BEGIN { printf "  Python json.loads (1 thread)      %11.0f per CPU-second (%d features, same records) -> drst JSON 1 thread per CPU-s = %.1fx\n", p, nf, d / p }'
done

# ---- Kafka through drst broker on loopback ----
# The mock cluster keeps only a few MB per partition, so each consumer is
# subscribed first and the producer streams while it reads (producer ->
# consumer, like the in-process figures). One topic per consumer.
"$DRST_BIN" broker --topic bench1 --partitions 3 --topic bench2 --partitions 3 > "$tmp/addr" 2>/dev/null &
bpid=$!
for _ in $(seq 100); do [ -s "$tmp/addr" ] && break; sleep 0.05; done
bs=$(head -1 "$tmp/addr")
waitready() {
  for _ in $(seq 600); do [ -e "$tmp/ready" ] && return 0; sleep 0.05; done
  echo "  consumer never got an assignment"; return 1
}
echo "Kafka via drst broker ($bs), 3 partitions, $KN records of 12 features, producer streaming:"
rm -f "$tmp/ready"
BENCH_READY=$tmp/ready "$BENCH" kafka-consume "$bs" bench1 drst-bench "$csv" 12 > "$tmp/drst.out" &
cpid=$!
waitready || exit 1
"$BENCH" kafka-produce "$bs" bench1 "$csv" 12 "$KN" | sed 's/^/  /' || exit 1
wait $cpid || exit 1
grep -v '^RESULT' "$tmp/drst.out" | sed 's/^/  /'
drate=$(awk '/^RESULT kafka_drst/ {print $3}' "$tmp/drst.out")
cat > "$tmp/pyconsumer.py" <<'EOF'
import json, sys, time
from confluent_kafka import Consumer
def ready(c, parts):
    open(sys.argv[3], "w").close()
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[4] if len(sys.argv) > 4 else "py-bench",
              "auto.offset.reset": "earliest", "enable.auto.commit": False,
              "fetch.wait.max.ms": 10, "queued.min.messages": 200000})
c.subscribe([sys.argv[2]], on_assign=ready)
ended, n, t0, s = set(), 0, None, 0.0
while len(ended) < 3:
    msgs = c.consume(num_messages=1000, timeout=0.005)
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
    c.commit(asynchronous=True)  # like drst: async per batch
t1 = time.perf_counter()
c.close()
print("%.0f %d %.2f" % (n / (t1 - t0), n, t1 - t0))
EOF
# Same topic for both consumers: pre-filled with what the mock retains
# (~4 MB per partition), then each reads it from the beginning in its own
# group, best of 3.
PN=${STREAM_KAFKA_PREFILL:-24000}
"$BENCH" kafka-produce "$bs" bench2 "$csv" 12 "$PN" > /dev/null || exit 1
best_d=0; best_p=0
for r in 1 2 3; do
  d=$("$BENCH" kafka-consume "$bs" bench2 drst-r$r "$csv" 12 | awk '/^RESULT/ {print $3}')
  p=$("$PY" "$tmp/pyconsumer.py" "$bs" bench2 "$tmp/ready.$r" py-r$r)
  echo "  run $r: drst $d records/s; python $p (records/s records seconds)"
  best_d=$(awk -v a="$best_d" -v b="$d" 'BEGIN { print (b > a ? b : a) }')
  best_p=$(awk -v a="$best_p" -v b="${p%% *}" 'BEGIN { print (b > a ? b : a) }')
done
awk -v d="$best_d" -v p="$best_p" -v n="$PN" 'BEGIN { printf "  same topic, %d records, best of 3: drst %.0f records/s, Python confluent-kafka + json.loads %.0f records/s -> drst = %.1fx\n", n, d, p, d / p }'
echo "load after: $(uptime)"
