"""drst flows vs tshark: per-flow packets and wire bytes per direction.

For every capture in $DRST_DATA/pcap, the TCP and UDP flows of `drst flows`
must match tshark exactly:
  - frames per direction: `tshark -z conv,tcp` / `conv,udp`;
  - wire bytes per direction: the sum of frame.len per (src, sport, dst,
    dport) from `tshark -T fields` (conv prints rounded "kB" figures).
IP reassembly is off in tshark (-o ip.defragment:FALSE ...): drst attributes
the first fragment of a datagram to its flow and counts later fragments
separately, which is what tshark's conversation tap sees without
reassembly. The same run checks the per-second summary (packets and bytes)
against a pandas aggregation of tshark's frame times, and that 2 workers
give the same flows as 1.
"""
import collections
import io
import os
import subprocess
import sys

import pandas as pd

BIN = os.environ.get("DRST_BIN")
DATA = os.environ.get("DRST_DATA", "")
PCAPS = os.path.join(DATA, "pcap")
if not BIN:
    print("DRST_BIN not set")
    sys.exit(1)
if not os.path.isdir(PCAPS):
    print(f"skip: {PCAPS} not found (shared data absent)")
    sys.exit(77)

# drst keys a tunnelled packet (PIM register, GRE, an ICMP error quoting a
# header) on its outer header; tshark's taps see the inner UDP/TCP header.
NOTUNNEL = "!pim && !gre && !icmp && !icmpv6"
# Flows drst reports that tshark 4.0 leaves out of its conversation table:
TSHARK_ABSENT = {
    # IPv6 payload length 0 (BIG TCP/TSO): tshark marks the TCP segment
    # malformed; drst takes the length from the wire, as both do for IPv4.
    "bigtcp-ipv6.pcap",
    # crafted frame (same socket on both ends, 262144 bytes on the wire,
    # 64 captured): tshark dissects the TCP header but has no conversation.
    "heapoverflow-tcp_print.pcap",
}
TSHARK_OPTS = ["-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"]
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def tshark(args):
    r = subprocess.run(["tshark", "-n"] + TSHARK_OPTS + args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"tshark {args}: {r.stderr}")
    return r.stdout


def drst(pcap, *extra):
    r = subprocess.run([BIN, "flows", "-q", "-r", pcap, "--idle-timeout", "3600",
                        "--active-timeout", "0", "--format", "csv"] + list(extra),
                       capture_output=True, text=True)
    return r


def ep(addr, port):
    return (addr, int(port))


def tshark_all(pcap):
    """One tshark run per capture: per-frame fields, then the conversation
    tables. Returns ({proto: {(A, B): (frames A->B, frames B->A)}},
    {proto: {(src_ep, dst_ep): [frames, bytes]}}, DataFrame of frame times)."""
    txt = tshark(["-r", pcap, "-T", "fields", "-E", "occurrence=f", "-E", "separator=|",
                  "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "udp.srcport",
                  "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport", "-e", "udp.dstport",
                  "-e", "frame.len", "-e", "frame.time_epoch", "-e", "frame.protocols",
                  "-z", f"conv,tcp,{NOTUNNEL}", "-z", f"conv,udp,{NOTUNNEL}"])
    conv = {"tcp": {}, "udp": {}}
    agg = {"tcp": collections.defaultdict(lambda: [0, 0]),
           "udp": collections.defaultdict(lambda: [0, 0])}
    times = []
    section = None
    for line in txt.splitlines():
        if line.startswith("TCP Conversations"):
            section = "tcp"
            continue
        if line.startswith("UDP Conversations"):
            section = "udp"
            continue
        if section is None:
            row = line.split("|")
            if len(row) != 11:
                continue
            times.append((row[9], int(row[8])))
            protos = row[10].split(":")
            if any(t in protos for t in ("pim", "gre", "icmp", "icmpv6")):
                continue
            for proto, sp, dp in (("tcp", row[2], row[6]), ("udp", row[3], row[7])):
                if sp:
                    k = (ep(row[0] or row[1], sp), ep(row[4] or row[5], dp))
                    agg[proto][k][0] += 1
                    agg[proto][k][1] += int(row[8])
            continue
        if "<->" not in line:
            continue
        left, right = line.split("<->")
        toks = right.split()
        # columns after B: <- frames, bytes, unit, -> frames, bytes, unit, ...
        back, fwd = int(toks[1]), int(toks[4])
        ha, pa = left.strip().rsplit(":", 1)
        hb, pb = toks[0].rsplit(":", 1)
        key = (ep(ha, pa), ep(hb, pb))
        f, bk = conv[section].get(key, (0, 0))
        conv[section][key] = (f + fwd, bk + back)
    t = pd.DataFrame(times, columns=["t", "len"])
    return conv, agg, t


def drst_flows(pcap, *extra):
    r = drst(pcap, *extra)
    if r.returncode != 0:
        fail(f"{pcap}: drst exit {r.returncode}: {r.stderr}")
        return None
    return pd.read_csv(io.StringIO(r.stdout), dtype={"client_ip": str, "server_ip": str})


checked = 0
iperf_times = None
for name in sorted(os.listdir(PCAPS)):
    if not name.endswith((".pcap", ".pcapng")):
        continue
    pcap = os.path.join(PCAPS, name)
    df = drst_flows(pcap)
    if df is None:
        continue
    ours = {}
    for _, r in df.iterrows():
        c = ep(r.client_ip, r.client_port)
        s = ep(r.server_ip, r.server_port)
        ours.setdefault(r.proto, {})
        key = (c, s)
        prev = ours[r.proto].get(key)
        val = [int(r.c2s_packets), int(r.c2s_bytes), int(r.s2c_packets), int(r.s2c_bytes)]
        ours[r.proto][key] = [x + y for x, y in zip(prev, val)] if prev else val
    convs, aggs, times = tshark_all(pcap)
    if name == "iperf-8flows-loss1pct.pcap":
        iperf_times = times
    for proto in ("tcp", "udp"):
        mine = ours.get(proto, {})
        conv = convs[proto]
        fb = aggs[proto]
        # express ours in tshark's orientation (A, B)
        for (a, b), (fwd, back) in conv.items():
            if (a, b) in mine:
                p_ab, b_ab, p_ba, b_ba = mine[(a, b)]
            elif (b, a) in mine:
                p_ba, b_ba, p_ab, b_ab = mine[(b, a)]
            else:
                fail(f"{name}: {proto} conversation {a} <-> {b} missing in drst")
                continue
            if (p_ab, p_ba) != (fwd, back):
                fail(f"{name}: {proto} {a}<->{b} frames drst {p_ab}/{p_ba} tshark {fwd}/{back}")
            want_ab = fb.get((a, b), [0, 0])[1]
            want_ba = fb.get((b, a), [0, 0])[1]
            if (b_ab, b_ba) != (want_ab, want_ba):
                fail(f"{name}: {proto} {a}<->{b} bytes drst {b_ab}/{b_ba} "
                     f"tshark {want_ab}/{want_ba}")
            checked += 1
        conv_keys = set(conv) | {(b, a) for (a, b) in conv}
        for k in mine:
            if k not in conv_keys and name not in TSHARK_ABSENT:
                fail(f"{name}: drst {proto} flow {k} unknown to tshark")
    print(f"{name}: {len(df)} flows")

# Per-second summary vs pandas over tshark's frame times and lengths, and
# 2 workers == 1 worker, on the lossy iperf capture.
iperf = os.path.join(PCAPS, "iperf-8flows-loss1pct.pcap")
if os.path.exists(iperf) and iperf_times is not None:
    summ = "/tmp/drst_flows_summary_%d.csv" % os.getpid()
    one = drst_flows(iperf, "--summary", summ)
    two = drst_flows(iperf, "--workers", "2")
    cols = ["client_ip", "client_port", "server_ip", "server_port", "c2s_packets", "c2s_bytes",
            "s2c_packets", "s2c_bytes", "c2s_retx_packets", "s2c_retx_packets",
            "c2s_rtt_count", "c2s_rtt_avg_ms", "state"]
    a = one[cols].sort_values(["client_port"]).reset_index(drop=True)
    b = two[cols].sort_values(["client_port"]).reset_index(drop=True)
    if not a.equals(b):
        fail("--workers 2 gives other flows than --workers 1")
    s = pd.read_csv(summ)
    os.unlink(summ)
    t = iperf_times
    t["sec"] = t["t"].str.split(".").str[0].astype("int64")
    ref = t.groupby("sec").agg(packets=("len", "size"), bytes=("len", "sum")).reset_index()
    s["sec"] = s["start"].round().astype("int64")
    m = ref.merge(s, on="sec", how="outer", suffixes=("_ref", ""))
    bad = m[(m.packets_ref != m.packets) | (m.bytes_ref != m.bytes)]
    if len(bad):
        fail("per-second summary differs from tshark/pandas:\n" + bad.to_string())
    if int(s.new_flows.sum()) != len(one):
        fail(f"summary new_flows {int(s.new_flows.sum())} != {len(one)} flows")
    print(f"summary: {len(s)} intervals match pandas; workers 1 == workers 2")

print(f"{checked} conversations compared")
if checked == 0:
    fail("nothing compared")
sys.exit(1 if failures else 0)
