"""drst flows vs tcptrace -l -r -n: retransmissions and RTT per direction.

Tolerances (see docs/flows.md, "Agreement with tcptrace"):
  - retransmitted data packets: |drst - tcptrace| <= max(1, 5 % of tcptrace),
    drst's being retransmitted + out-of-order. tcptrace marks a segment
    retransmitted when any of its bytes is already in its per-connection
    segment list; drst takes every segment (with payload, SYN or FIN) that
    starts below the highest sequence number sent (32 bits per direction
    instead of a list) and calls it out-of-order rather than retransmitted
    when it comes sooner than the direction's minimum RTT after the previous
    one. The sum and tcptrace's count differ for a segment that fills a hole
    left by a packet the capture never saw, and for a reordered one.
  - RTT samples: drst times one segment per direction at a time and keeps a
    sample only when an ACK ends exactly at it, which is one of tcptrace's
    samples, so drst's count is <= tcptrace's (+2 for handshake edge cases).
  - RTT, for directions with >= 10 samples in both: drst's average lies
    in tcptrace's [min, max], widened by 0.05 ms (tcptrace prints 0.1 ms);
    and where tcptrace's average is >= 0.2 ms (two print steps),
    |drst - tcptrace| <= 0.05 ms + 25 % of tcptrace (drst averages a
    subset of tcptrace's samples: about one per round trip). Below that
    (veth captures: RTTs of microseconds) the printed average is 0.0 or
    0.1, and which segments each tool times decides it: with segmentation
    offload on, a veth capture gave tcptrace 0.1 ms and drst 0.005-0.027 ms
    (an ACK held back for the next segment lengthens tcptrace's samples,
    not drst's, whose sample needs an ACK ending exactly at the timed
    segment), and on a loaded machine drst 0.145-0.253 ms vs tcptrace
    0.0-0.1 ms; there only the range is checked.
Captures: every file in $DRST_DATA/pcap with TCP connections (the netns
test runs this file on captures it makes, as DRST_DATA), plus any in
$DRST_FLOWS_EXTRA (optional).
"""
import io
import ipaddress
import os
import re
import subprocess
import sys

import pandas as pd

BIN = os.environ.get("DRST_BIN")
DATA = os.environ.get("DRST_DATA", "")
PCAPS = os.path.join(DATA, "pcap")
if not os.path.isdir(PCAPS):
    print(f"skip: {PCAPS} not found (shared data absent)")
    sys.exit(77)

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def tcptrace(pcap):
    r = subprocess.run(["tcptrace", "-l", "-r", "-n", pcap], capture_output=True, text=True)
    conns = []
    cur = None
    for line in r.stdout.splitlines():
        m = re.match(r"\s*host \w+:\s+(\S+):(\d+)$", line)
        if m:
            if cur is None or len(cur["hosts"]) == 2:
                cur = {"hosts": [], "vals": {}}
                conns.append(cur)
            cur["hosts"].append((ipaddress.ip_address(m.group(1)).compressed, int(m.group(2))))
            continue
        if cur is None:
            continue
        for key, pat in (("retx", r"rexmt data pkts:\s+(\d+)\s+rexmt data pkts:\s+(\d+)"),
                         ("n", r"RTT samples:\s+(\d+)\s+RTT samples:\s+(\d+)"),
                         ("avg", r"RTT avg:\s+([\d.]+) ms\s+RTT avg:\s+([\d.]+) ms"),
                         ("min", r"RTT min:\s+([\d.]+) ms\s+RTT min:\s+([\d.]+) ms"),
                         ("max", r"RTT max:\s+([\d.]+) ms\s+RTT max:\s+([\d.]+) ms")):
            m = re.match(r"\s*" + pat, line)
            if m and key not in cur["vals"]:
                cur["vals"][key] = (float(m.group(1)), float(m.group(2)))
    return conns


def drst(pcap):
    r = subprocess.run([BIN, "flows", "-q", "-r", pcap, "--idle-timeout", "3600",
                        "--active-timeout", "0", "-f", "tcp"], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{pcap}: drst exit {r.returncode}: {r.stderr}")
        return pd.DataFrame()
    return pd.read_csv(io.StringIO(r.stdout), dtype={"client_ip": str, "server_ip": str})


pcaps = [os.path.join(PCAPS, n) for n in sorted(os.listdir(PCAPS)) if n.endswith(".pcap")]
extra = os.environ.get("DRST_FLOWS_EXTRA")
if extra and os.path.isdir(extra):
    pcaps += [os.path.join(extra, n) for n in sorted(os.listdir(extra)) if n.endswith(".pcap")]

compared = rtt_compared = rtt_ranged = 0
for pcap in pcaps:
    conns = [c for c in tcptrace(pcap) if len(c["hosts"]) == 2 and "retx" in c["vals"]]
    if not conns:
        continue
    df = drst(pcap)
    flows = {}
    for _, r in df.iterrows():
        c = (ipaddress.ip_address(r.client_ip).compressed, int(r.client_port))
        s = (ipaddress.ip_address(r.server_ip).compressed, int(r.server_port))
        flows.setdefault((c, s), []).append(r)
    for c in conns:
        a, b = c["hosts"]
        if (a, b) in flows:
            rows, swap = flows[(a, b)], False
        elif (b, a) in flows:
            rows, swap = flows[(b, a)], True
        else:
            fail(f"{os.path.basename(pcap)}: tcptrace connection {a}<->{b} not in drst")
            continue
        if len(rows) != 1:
            continue  # port reuse: connections split differently; skip
        r = rows[0]
        # drst splits the segments below the highest sequence sent into
        # retransmitted and out-of-order by timing; tcptrace's "rexmt" is
        # every segment with a byte it saw before, i.e. that sum on a capture
        # without reordering (the netns captures are made at the sender)
        mine = {
            "retx": (r.c2s_retx_packets + r.c2s_ooo_packets, r.s2c_retx_packets + r.s2c_ooo_packets),
            "n": (r.c2s_rtt_count, r.s2c_rtt_count),
            "avg": (r.c2s_rtt_avg_ms, r.s2c_rtt_avg_ms),
        }
        if swap:
            mine = {k: (v[1], v[0]) for k, v in mine.items()}
        name = f"{os.path.basename(pcap)} {a[0]}:{a[1]}<->{b[0]}:{b[1]}"
        for i, d in enumerate(("a->b", "b->a")):
            tr, mr = c["vals"]["retx"][i], mine["retx"][i]
            if abs(mr - tr) > max(1, 0.05 * tr):
                fail(f"{name} {d}: retransmissions drst {mr} tcptrace {tr:.0f}")
            tn, mn = c["vals"].get("n", (0, 0))[i], mine["n"][i]
            if mn > tn + 2:
                fail(f"{name} {d}: RTT samples drst {mn} > tcptrace {tn:.0f}")
            if tn >= 10 and mn >= 10:
                ta, ma = c["vals"]["avg"][i], mine["avg"][i]
                lo, hi = c["vals"]["min"][i] - 0.05, c["vals"]["max"][i] + 0.05
                if not lo <= ma <= hi:
                    fail(f"{name} {d}: RTT avg drst {ma:.3f} ms outside tcptrace's "
                         f"range [{lo + 0.05:.1f}, {hi - 0.05:.1f}] ms")
                if ta >= 0.2:
                    if abs(ma - ta) > 0.05 + 0.25 * ta:
                        fail(f"{name} {d}: RTT avg drst {ma:.3f} ms tcptrace {ta:.1f} ms")
                    rtt_compared += 1
                else:
                    rtt_ranged += 1
            print(f"{name} {d}: retx {mr}/{tr:.0f} rtt n {mn}/{tn:.0f} "
                  f"avg {mine['avg'][i]:.3f}/{c['vals'].get('avg', (0, 0))[i]:.1f} ms")
            compared += 1

print(f"{compared} directions compared, {rtt_compared} with RTT averages, "
      f"{rtt_ranged} with sub-ms RTT ranges")
if compared == 0:
    fail("nothing compared")
sys.exit(1 if failures else 0)
