"""drst flows --topic: flow records produced to Kafka (`drst broker` on
loopback) are read back with kcat, a client we did not write: one JSON record
per flow, equal to the CSV written in the same run, partition = flow id mod
partitions, and each partition ends with its end-of-stream sentinel."""
import io
import json
import os
import subprocess
import sys
import tempfile
import time

import pandas as pd

DRST = os.environ.get("DRST_BIN", "drst")
DATA = os.environ.get("DRST_DATA", "../shared/data")
PCAP = os.path.join(DATA, "pcap", "iperf-8flows-loss1pct.pcap")
if not os.path.exists(PCAP):
    print(f"SKIP: {PCAP} not found (shared data absent)")
    sys.exit(77)
if subprocess.run(["which", "kcat"], capture_output=True).returncode != 0:
    print("SKIP: kcat not installed")
    sys.exit(77)

tmp = tempfile.mkdtemp()
addr = os.path.join(tmp, "addr")
broker = subprocess.Popen([DRST, "broker", "--topic", "flows", "--partitions", "2"],
                          stdout=open(addr, "w"), stderr=subprocess.DEVNULL)
try:
    bs = ""
    for _ in range(100):
        bs = open(addr).readline()
        if bs.endswith("\n"):
            break
        time.sleep(0.05)
    bs = bs.strip()
    assert bs, "drst broker printed no address"
    csv = os.path.join(tmp, "flows.csv")
    r = subprocess.run([DRST, "flows", "-r", PCAP, "-o", csv, "--workers", "2", "--topic", "flows",
                        "--bootstrap", bs], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = subprocess.run(["kcat", "-C", "-b", bs, "-t", "flows", "-e", "-q", "-f", "%p\t%k\t%s\n"],
                         capture_output=True, text=True, timeout=60).stdout
    recs, eos = [], []
    for line in out.splitlines():
        p, k, payload = line.split("\t", 2)
        m = json.loads(payload)
        if m.get("eos"):
            eos.append((int(p), m["partition"]))
            continue
        assert int(p) == m["flow"]["id"] % 2, "partition is not flow id mod 2"
        assert k == str(m["flow"]["id"]), "key is not the flow id"
        recs.append(m)
    assert sorted(eos) == [(0, 0), (1, 1)], f"sentinels {eos}"
    df = pd.read_csv(csv)
    assert len(recs) == len(df), f"{len(recs)} records on the topic, {len(df)} in the CSV"
    by_id = {r["flow"]["id"]: r for r in recs}
    for _, row in df.iterrows():
        m = by_id[int(row.flow_id)]
        for col in ("c2s_packets", "c2s_bytes", "s2c_packets", "s2c_bytes", "c2s_retx_packets"):
            assert m["features"][col] == row[col], (col, m["features"][col], row[col])
        assert m["flow"]["client_port"] == row.client_port
    print(f"{len(recs)} flow records and 2 sentinels read back with kcat")
finally:
    broker.terminate()
    broker.wait(timeout=10)
