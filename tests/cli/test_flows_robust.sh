#!/usr/bin/env bash
# drst flows: bad input and every shared capture (under the ASan build this
# is the "no sanitizer report" test), help, usage errors, output formats.
set -u
: "${DRST_BIN:?}"
PY=${DRST_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect CODE PATTERN -- cmd...: exit code and a stderr pattern
expect() {
    local code=$1 pat=$2
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ "$rc" = "$code" ] || fail "'$*' exit $rc, want $code: $(head -3 "$tmp/err")"
    if [ -n "$pat" ] && ! grep -qE "$pat" "$tmp/err"; then
        fail "'$*' stderr lacks /$pat/: $(head -3 "$tmp/err")"
    fi
    if grep -qE 'AddressSanitizer|UndefinedBehaviorSanitizer|runtime error' "$tmp/err"; then
        fail "'$*' sanitizer report: $(grep -m3 -E 'Sanitizer|runtime error' "$tmp/err")"
    fi
}

# help and usage
"$DRST_BIN" flows --help >"$tmp/help" || fail "--help exit code"
grep -q -- '--idle-timeout' "$tmp/help" && grep -q 'example' "$tmp/help" || fail "--help lacks options/examples"
expect 2 'exactly one source' -- "$DRST_BIN" flows
expect 2 'unknown option' -- "$DRST_BIN" flows --bogus
expect 2 'needs a value' -- "$DRST_BIN" flows -r
expect 2 'workers' -- "$DRST_BIN" flows -r x --workers 0
expect 2 'idle-timeout' -- "$DRST_BIN" flows -r x --idle-timeout abc
expect 2 'csv or jsonl' -- "$DRST_BIN" flows -r x --format xml

# bad files: missing, empty, garbage, cut in a header, cut inside a packet
expect 1 "cannot open.*No such file" -- "$DRST_BIN" flows -r "$tmp/nope.pcap"
: >"$tmp/empty.pcap"
expect 1 "empty \(0 bytes\)" -- "$DRST_BIN" flows -r "$tmp/empty.pcap"
printf 'this is not a capture file at all\n' >"$tmp/text.pcap"
expect 1 "not a readable capture" -- "$DRST_BIN" flows -r "$tmp/text.pcap"
# a pcap header alone (24 bytes): valid, but no packet
$PY - "$tmp/hdr.pcap" <<'EOF'
import struct, sys
open(sys.argv[1], "wb").write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
EOF
expect 1 "holds no packet" -- "$DRST_BIN" flows -r "$tmp/hdr.pcap"
head -c 12 "$tmp/hdr.pcap" >"$tmp/cuthdr.pcap"
expect 1 "not a readable capture" -- "$DRST_BIN" flows -r "$tmp/cuthdr.pcap"
expect 1 "bad BPF filter" -- "$DRST_BIN" flows -r "$tmp/hdr.pcap" -f 'tcp and and'

if [ -d "${DRST_DATA:-}/pcap" ]; then
    lossy="$DRST_DATA/pcap/iperf-8flows-loss1pct.pcap"
    # cut inside a packet record: flows so far are written, exit 1 with offset
    head -c 100000 "$lossy" >"$tmp/cut.pcap"
    expect 1 "truncated after packet [0-9]+ \(byte offset" -- "$DRST_BIN" flows -r "$tmp/cut.pcap" -o "$tmp/cut.csv"
    [ "$(wc -l <"$tmp/cut.csv")" -gt 1 ] || fail "truncated file: no flows written"

    # every shared capture, crafted ones included: exit 0, no sanitizer report
    for f in "$DRST_DATA"/pcap/*.pcap; do
        expect 0 '' -- "$DRST_BIN" flows -r "$f" -o "$tmp/all.csv" --summary "$tmp/all_s.csv"
        expect 0 '' -- "$DRST_BIN" flows -r "$f" --workers 2 --format jsonl -o "$tmp/all.jsonl" \
            --idle-timeout 1 --active-timeout 0.5 --max-flows 4 --interval 0.25
    done

    # 1 worker == 3 workers (flow ids aside, which carry the worker): every
    # shared capture as classic pcap (replica mode) and as pcapng (libpcap,
    # packet mode), with short timeouts so that flows split and export
    # interim records; and a cut capture (same flows, same error)
    same_workers() { # FILE: compares 1 and 3 workers
        local w
        for w in 1 3; do
            "$DRST_BIN" flows -q -r "$1" --workers $w -o "$tmp/w$w.csv" --summary "$tmp/w${w}s.csv" \
                --idle-timeout 1 --active-timeout 0.5 --interval 0.25 2>"$tmp/w$w.err"
            echo "exit $?" >>"$tmp/w$w.err"
        done
        cmp -s <(cut -d, -f2- "$tmp/w1.csv" | sort) <(cut -d, -f2- "$tmp/w3.csv" | sort) ||
            fail "$1: 3 workers give other flows than 1"
        cmp -s "$tmp/w1s.csv" "$tmp/w3s.csv" || fail "$1: 3 workers give other summaries than 1"
        cmp -s "$tmp/w1.err" "$tmp/w3.err" || fail "$1: 3 workers end otherwise than 1"
    }
    for f in "$DRST_DATA"/pcap/*.pcap "$tmp/cut.pcap"; do
        same_workers "$f"
        if command -v editcap >/dev/null && [ "$f" != "$tmp/cut.pcap" ]; then
            editcap -F pcapng "$f" "$tmp/ng.pcapng" 2>/dev/null && same_workers "$tmp/ng.pcapng"
        fi
    done
    [ "$(wc -l <"$tmp/w1.csv")" -gt 1 ] || fail "cut capture: no flows to compare"

    # dead letters: every packet counted truncated, malformed or of an
    # unsupported link type is kept in --rejects (a pcap tshark reads), with
    # 1 and 3 workers; a 30-byte snaplen copy of the lossy capture rejects
    # every TCP packet (its ports lie beyond the snaplen)
    editcap -s 30 "$lossy" "$tmp/snap30.pcap" 2>/dev/null
    for f in "$DRST_DATA"/pcap/*.pcap "$tmp/snap30.pcap"; do
        for w in 1 3; do
            "$DRST_BIN" flows -r "$f" --workers $w -o /dev/null --rejects "$tmp/rej.pcap" 2>"$tmp/rej.err" ||
                fail "$f: --rejects run failed: $(tail -2 "$tmp/rej.err")"
            want=$(sed -n 's/.*packets (\([0-9]*\) truncated, \([0-9]*\) malformed.*/\1 \2/p' "$tmp/rej.err" |
                awk '{print $1 + $2}')
            unsup=$(sed -n 's/^drst flows: \([0-9]*\) packets of an unsupported link type.*/\1/p' "$tmp/rej.err")
            want=$((want + ${unsup:-0}))
            got=$(tshark -r "$tmp/rej.pcap" 2>/dev/null | wc -l)
            [ "$got" = "$want" ] || fail "$f --workers $w: $got packets in --rejects, $want rejected"
        done
    done
    [ "$want" -gt 1000 ] || fail "snaplen-30 capture: only $want rejected packets"

    # jsonl: every line is a JSON record with features; interim records and
    # evictions appear when asked for and neither lose nor double a packet
    "$DRST_BIN" flows -q -r "$lossy" -o "$tmp/f.jsonl" --active-timeout 1 \
        --summary "$tmp/s.jsonl" || fail "jsonl run"
    "$DRST_BIN" flows -q -r "$lossy" -o "$tmp/e.jsonl" --max-flows 4 --workers 2 || fail "evict run"
    $PY - "$tmp/f.jsonl" "$tmp/s.jsonl" "$tmp/e.jsonl" <<'EOF' || fail "jsonl content"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert recs and all("features" in r and "seq" in r and "flow" in r for r in recs), "shape"
assert any(r["flow"]["interim"] > 0 for r in recs), "no interim record"
sums = [json.loads(l) for l in open(sys.argv[2])]
assert sums and all("packets" in s["features"] for s in sums), "summaries"
ev = [json.loads(l) for l in open(sys.argv[3])]
assert any(r["flow"]["state"] == "evicted" for r in ev), "no eviction"
for rs in (recs, ev):
    tot = sum(r["features"]["c2s_packets"] + r["features"]["s2c_packets"]
              for r in rs if r["flow"]["interim"] == 0)
    assert tot == 35359, tot
print("jsonl ok:", len(recs), "records,", len(sums), "summaries,", len(ev), "with evictions")
EOF
else
    echo "note: $DRST_DATA/pcap absent, shared-capture checks skipped"
fi

# One hand-made TCP connection + one UDP datagram written under seven link
# layers (Ethernet, 802.1Q, QinQ, raw IP, Linux SLL, SLL2, BSD loopback):
# the same flows whatever the link layer (wire bytes aside).
$PY - "$tmp" <<'EOF'
import struct, sys
d = sys.argv[1]
def ip4(src, dst, proto, l4):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0,
                       bytes(src), bytes(dst)) + l4
def tcp(sp, dp, seq, ack, flags, data=b""):
    return struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 5 << 4, flags, 65535, 0, 0) + data
a, b = [10, 0, 0, 1], [10, 0, 0, 2]
pk = [ip4(a, b, 6, tcp(1000, 80, 100, 0, 0x02)),
      ip4(b, a, 6, tcp(80, 1000, 500, 101, 0x12)),
      ip4(a, b, 6, tcp(1000, 80, 101, 501, 0x10, b"x" * 100)),
      ip4(a, b, 6, tcp(1000, 80, 101, 501, 0x10, b"x" * 100)),
      ip4(b, a, 6, tcp(80, 1000, 501, 201, 0x11)),
      ip4(a, b, 6, tcp(1000, 80, 201, 502, 0x11)),
      ip4(b, a, 17, struct.pack("!HHHH", 53, 5353, 12, 0) + b"abcd")]
mac = b"\x00" * 6 + b"\x02" * 6
links = {
    "eth": (1, lambda p: mac + b"\x08\x00" + p),
    "vlan": (1, lambda p: mac + b"\x81\x00\x00\x64\x08\x00" + p),
    "qinq": (1, lambda p: mac + b"\x88\xa8\x00\x64\x81\x00\x00\x05\x08\x00" + p),
    "raw": (101, lambda p: p),
    "sll": (113, lambda p: struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, 0x0800) + p),
    "sll2": (276, lambda p: struct.pack("!HHIHBB8s", 0x0800, 0, 1, 1, 0, 6, b"\x02" * 8) + p),
    "null": (0, lambda p: struct.pack("<I", 2) + p),
}
for name, (lt, wrap) in links.items():
    with open(f"{d}/{name}.pcap", "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, lt))
        for i, p in enumerate(pk):
            fr = wrap(p)
            out.write(struct.pack("<IIII", 1000, i * 1000, len(fr), len(fr)) + fr)
EOF
for f in eth vlan qinq raw sll sll2 null; do
    "$DRST_BIN" flows -q -r "$tmp/$f.pcap" -o "$tmp/$f.csv" || fail "$f link type"
    # state, proto, ipver, endpoints, packets, payload, SYN/FIN/RST, retx (both ways)
    cut -d, -f3-5,7-10,15,17-22,31,33-36 "$tmp/$f.csv" | sort >"$tmp/$f.key"
    [ "$(wc -l <"$tmp/$f.key")" = 3 ] || fail "$f: want 2 flows: $(cat "$tmp/$f.key")"
done
grep -q '^complete,tcp,4,10.0.0.1,1000,10.0.0.2,80,4,200,1,1,0,1,100,2,0,1,1,0$' "$tmp/eth.key" ||
    fail "hand-made TCP flow: $(cat "$tmp/eth.key")"
for f in vlan qinq raw sll sll2 null; do
    cmp -s "$tmp/eth.key" "$tmp/$f.key" || fail "$f flows differ from Ethernet: $(cat "$tmp/$f.key")"
done
[ "$(cut -d, -f6 "$tmp/qinq.csv" | sort -u | tr '\n' ' ')" = "100 vlan " ] || fail "QinQ outer VLAN id"

[ "$fails" = 0 ] && echo "all flows robustness checks passed"
exit $((fails > 0))
