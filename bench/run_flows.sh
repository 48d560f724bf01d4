#!/usr/bin/env bash
# drst flows vs tcptrace and tshark on a >= 2 M-packet capture built here:
# 60 copies of the lossy iperf capture, each with its addresses rewritten
# (tcprewrite --seed=N) and its time shifted by 5 s x N (editcap -t), joined
# with mergecap -a. Prints packets/s (wall clock and per CPU-second, since
# this machine is shared: see the uptime line), peak RSS, and the ratios.
# Never fails on speed.
set -u
BIN=${DRST_BIN:-$(dirname "$0")/../build/drst}
BENCH=${DRST_BENCH_BIN:-$(dirname "$BIN")/bench}
DATA=${DRST_DATA:-$(dirname "$0")/../../shared/data}
src="$DATA/pcap/iperf-8flows-loss1pct.pcap"
copies=${FLOWS_BENCH_COPIES:-60}
[ -f "$src" ] || { echo "run_flows: $src not found, skipped"; exit 0; }
for t in tcprewrite editcap mergecap tcptrace tshark; do
    command -v $t >/dev/null || { echo "run_flows: $t not installed, skipped"; exit 0; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for i in $(seq 1 "$copies"); do
    tcprewrite --seed="$i" --infile="$src" --outfile="$tmp/c.pcap" 2>/dev/null || exit 1
    editcap -t $((i * 5)) "$tmp/c.pcap" "$tmp/s$i.pcap" || exit 1
done
mergecap -a -F pcap -w "$tmp/big.pcap" $(for i in $(seq 1 "$copies"); do echo "$tmp/s$i.pcap"; done)
rm -f "$tmp"/s*.pcap "$tmp/c.pcap"
npk=$(capinfos -c -M "$tmp/big.pcap" | awk '/Number of packets/ {print $NF}')
echo "capture: $npk packets, $(du -m "$tmp/big.pcap" | cut -f1) MB, $((copies * 9)) TCP connections"
cat "$tmp/big.pcap" >/dev/null # page cache warm for everyone

# measure NAME CMD...: median of 3 runs (after one warm-up for fast tools)
# of wall seconds, CPU seconds (user+sys) and peak RSS
measure() {
    local name=$1 runs=$2
    shift 2
    : >"$tmp/m"
    [ "$runs" -gt 1 ] && "$@" >/dev/null 2>&1
    for _ in $(seq 1 "$runs"); do
        # bash's time for millisecond wall/CPU (/usr/bin/time prints 10 ms
        # steps, 8 % of a 0.13 s run), /usr/bin/time for the peak RSS
        local TIMEFORMAT="%3R %3U %3S"
        { time /usr/bin/time -f "%M" -o "$tmp/rss" "$@" >/dev/null 2>"$tmp/err"; } 2>"$tmp/t" || {
            echo "$name failed: $(tail -2 "$tmp/err")"; return; }
        echo "$(cat "$tmp/t") $(cat "$tmp/rss")" |
            awk '{printf "%s %.3f %s\n", $1, $2 + $3, $4}' >>"$tmp/m"
    done
    read -r wall cpu rss < <(sort -n "$tmp/m" | awk -v n="$runs" 'NR == int((n + 1) / 2)')
    local mpw mpc
    mpw=$(awk -v p="$npk" -v t="$wall" 'BEGIN { printf "%.2f", (t > 0 ? p / t / 1e6 : 0) }')
    mpc=$(awk -v p="$npk" -v t="$cpu" 'BEGIN { printf "%.2f", (t > 0 ? p / t / 1e6 : 0) }')
    printf "%-28s %7ss wall %7ss cpu  %6s Mpps wall %6s Mpps/cpu-s  RSS %6d MB\n" \
        "$name" "$wall" "$cpu" "$mpw" "$mpc" $((rss / 1024))
    echo "$name $wall $cpu $rss" >>"$tmp/results"
}

# Single-threaded runs are pinned to one CPU, the same for every tool: the
# vCPUs of a shared VM need not be equally fast (on the 2-core development
# VM one ran both drst and tcptrace ~1.4x slower than the other), and an
# unpinned run lands on either.
cpu=${FLOWS_BENCH_CPU:-$(taskset -pc $$ 2>/dev/null | sed 's/.*: *//; s/[-,].*//')}
pin=()
if command -v taskset >/dev/null && [ -n "$cpu" ]; then
    pin=(taskset -c "$cpu")
    echo "single-threaded runs pinned to CPU $cpu (FLOWS_BENCH_CPU=N to choose); 2 workers unpinned"
fi

uptime
measure "drst flows --workers 1" 3 "${pin[@]}" "$BIN" flows -q -r "$tmp/big.pcap" -o /dev/null --workers 1
measure "drst flows --workers 2" 3 "$BIN" flows -q -r "$tmp/big.pcap" -o /dev/null --workers 2
measure "tcptrace -n (basic)" 3 "${pin[@]}" tcptrace -n "$tmp/big.pcap"
measure "tcptrace -l -r -n" 3 "${pin[@]}" tcptrace -l -r -n "$tmp/big.pcap"
measure "tshark -q -z conv,tcp" 1 "${pin[@]}" tshark -q -n -r "$tmp/big.pcap" -z conv,tcp
uptime

awk '
  /^drst flows --workers 1/ { d1w = $(NF-2); d1c = $(NF-1) }
  /^drst flows --workers 2/ { d2w = $(NF-2) }
  /^tcptrace -n/ { tbw = $(NF-2); tbc = $(NF-1) }
  /^tcptrace -l/ { tlw = $(NF-2); tlc = $(NF-1) }
  /^tshark/ { tsw = $(NF-2); tsc = $(NF-1) }
  END {
    printf "ratios (drst 1 worker vs peer, wall | cpu): tcptrace basic %.1fx | %.1fx, ", tbw/d1w, tbc/d1c
    printf "tcptrace -l -r %.1fx | %.1fx, tshark conv,tcp %.0fx | %.0fx\n", tlw/d1w, tlc/d1c, tsw/d1w, tsc/d1c
    printf "2 workers vs 1 (wall): %.2fx\n", d1w/d2w
  }' "$tmp/results"

if [ -x "$BENCH/bench_flow" ]; then
    "$BENCH/bench_flow" 5000000 2
fi
uptime
