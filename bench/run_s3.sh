#!/usr/bin/env bash
# S3 store figures against s3rver on loopback (scripts/s3-test-server.sh):
#  1. release-to-swap latency, publish -> a consumer on another handle serves
#     the new model (hot-swap guard polling every 2 ms), S3 backend vs the
#     local directory backend (the named peer), measured in the same run;
#  2. the long fault: server stopped for 30 s (DRST_S3_OUTAGE_S) during
#     writes, put latency during the outage, drain time after the restart.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
bin="${DRST_BENCH_BIN:-$src/build/bench}"
n="${DRST_S3_RELEASES:-10}"
outage="${DRST_S3_OUTAGE_S:-30}"
tmp=$(mktemp -d /tmp/drst-s3bench-XXXXXX)
trap 'bash "$src/scripts/s3-test-server.sh" stop "$tmp/srv"; rm -rf "$tmp"' EXIT
endpoint=$(bash "$src/scripts/s3-test-server.sh" start "$tmp/srv") || { echo "s3rver unavailable: skipped"; exit 0; }
port=$(cat "$tmp/srv/s3rver.port")
export HOME="$tmp" DRST_SRC="$src" DRST_BENCH_TMP="$tmp" DRST_S3_ENDPOINT="$endpoint"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 DRST_S3_BACKOFF_MAX_MS=1000
echo "machine load: $(uptime)"
echo "s3rver $endpoint, $n releases each"
s3=$("$bin/bench_s3" swap s3://drst/bench "$n") || { echo "$s3"; echo "s3 swap bench failed"; exit 1; }
echo "$s3" | grep -v RESULT
loc=$("$bin/bench_s3" swap "$tmp/localstore" "$n") || { echo "$loc"; echo "local swap bench failed"; exit 1; }
echo "$loc" | grep -v RESULT
a=$(echo "$s3" | sed -n 's/RESULT median_ms=//p'); b=$(echo "$loc" | sed -n 's/RESULT median_ms=//p')
awk -v a="$a" -v b="$b" 'BEGIN{ if (b > 0) printf "ratio s3/local (median release-to-swap): %.1fx\n", a / b }'
echo "machine load: $(uptime)"
"$bin/bench_s3" outage s3://drst/outage "$outage" "$tmp/srv" "$port"
echo "machine load: $(uptime)"
