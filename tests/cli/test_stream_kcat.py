"""Stream interop with a Kafka client we did not write (kcat), through
`drst broker` on loopback:
  1. kcat produces JSON records (and one malformed line) that `drst consume`
     reads: every record comes out unchanged, the bad line goes to the
     dead-letter file with its reason, the sentinels stop the consumer;
  2. `drst produce` replays two dataset stages; kcat reads them back and
     every record matches the CSV rows as pandas reads them.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

DRST = os.environ.get("DRST_BIN", "drst")
DATA = os.environ.get("DRST_DATA", "../shared/data")


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(77)


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def start_broker(tmp, *topics):
    args = [DRST, "broker"]
    for t in topics:
        args += ["--topic", t, "--partitions", "3"]
    out = open(os.path.join(tmp, "broker.addr"), "w")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with open(os.path.join(tmp, "broker.addr")) as f:
            line = f.readline()
        if line.endswith("\n"):
            return proc, line.strip()
        time.sleep(0.05)
    proc.kill()
    fail("drst broker printed no address")


def kcat_produce(bs, topic, part, lines):
    data = "".join(l + "\n" for l in lines).encode()
    subprocess.run(["kcat", "-P", "-b", bs, "-t", topic, "-p", str(part)], input=data,
                   check=True, timeout=60)


def part1(bs, tmp):
    recs = {}
    for p in range(3):
        lines = []
        for i in range(100):
            seq = p * 100 + i
            r = {"seq": seq, "ts": 1700000000.5 + seq, "send_ts": 1700000001.25 + seq,
                 "features": {"f_a": seq * 0.1, "f-b": -seq, "f c": 1e-9 * seq},
                 "label": seq / 7}
            recs[seq] = r
            lines.append(json.dumps(r))
        if p == 1:
            lines.insert(50, '{"seq": 999, "features": {"f_a": "oops"}}')
        lines.append(json.dumps({"eos": True, "partition": p}))
        kcat_produce(bs, "in", p, lines)
    dlq = os.path.join(tmp, "dlq.jsonl")
    res = subprocess.run([DRST, "consume", "--topic", "in", "--group", "g1", "--bootstrap", bs,
                          "--from-beginning", "--idle-ms", "20000", "--dlq", dlq, "--meta"],
                         capture_output=True, timeout=120)
    if res.returncode != 0:
        fail("drst consume failed: " + res.stderr.decode())
    got, eos = {}, set()
    for line in res.stdout.decode().splitlines():
        m = json.loads(line)
        r = m["record"]
        if r.get("eos"):
            eos.add((m["partition"], r["partition"]))
            continue
        if r["seq"] in got:
            fail("record %d printed twice" % r["seq"])
        if m["partition"] != r["seq"] // 100:
            fail("record %d came from partition %d" % (r["seq"], m["partition"]))
        got[r["seq"]] = r
    if got != recs:
        missing = set(recs) - set(got)
        fail("kcat->drst: %d records differ, missing %s" % (
            sum(1 for k in recs if got.get(k) != recs[k]), sorted(missing)[:10]))
    if eos != {(0, 0), (1, 1), (2, 2)}:
        fail("sentinels: %s" % sorted(eos))
    with open(dlq) as f:
        dead = [json.loads(l) for l in f]
    if len(dead) != 1 or dead[0]["payload"] != '{"seq": 999, "features": {"f_a": "oops"}}' \
            or "number" not in dead[0]["reason"] or not dead[0]["source"].startswith("in/1/"):
        fail("dead letters: %s" % dead)
    if b"1 rejected" not in res.stderr:
        fail("summary does not count the rejected record: " + res.stderr.decode())
    # the same with the dead letters going to a Kafka topic, read by kcat
    res = subprocess.run([DRST, "consume", "--topic", "in", "--group", "g2", "--bootstrap", bs,
                          "--from-beginning", "--idle-ms", "20000", "--dlq-topic", "dead"],
                         capture_output=True, timeout=120)
    if res.returncode != 0:
        fail("drst consume --dlq-topic failed: " + res.stderr.decode())
    kc = subprocess.run(["kcat", "-C", "-b", bs, "-t", "dead", "-e", "-q"], capture_output=True,
                        timeout=60, check=True)
    dead = [json.loads(l) for l in kc.stdout.decode().splitlines()]
    if len(dead) != 1 or dead[0]["payload"] != '{"seq": 999, "features": {"f_a": "oops"}}':
        fail("dead-letter topic: %s" % dead)
    print("kcat -> drst: %d records, 3 sentinels, 1 dead letter (file and topic): ok" % len(got))


def part2(bs, tmp):
    import numpy as np
    import pandas as pd
    c1 = os.path.join(DATA, "drst", "combined.csv")
    c2 = os.path.join(DATA, "drst", "stage2_resource_stimulus_A-B-C.csv")
    if not (os.path.exists(c1) and os.path.exists(c2)):
        skip("no DRST data in %s" % DATA)
    res = subprocess.run([DRST, "produce", "--data", c1 + ":head=60", "--data", c2 + ":tail=40",
                          "--topic", "out", "--bootstrap", bs, "--quiet"],
                         capture_output=True, timeout=120)
    if res.returncode != 0:
        fail("drst produce failed: " + res.stderr.decode())
    kc = subprocess.run(["kcat", "-C", "-b", bs, "-t", "out", "-e", "-q", "-f", "%p\t%o\t%s\n"],
                        capture_output=True, timeout=60, check=True)
    d1 = pd.read_csv(c1, float_precision="round_trip").head(60)
    d2 = pd.read_csv(c2, float_precision="round_trip").tail(40)
    feats = [c for c in d1.columns
             if not c.startswith("Unnamed") and c not in ("input_rate", "output_rate", "latency")]
    rows = [d1.iloc[i] for i in range(len(d1))] + [d2.iloc[i] for i in range(len(d2))]
    seen, eos_at, last_off = {}, {}, {}
    for line in kc.stdout.decode().splitlines():
        p, off, payload = line.split("\t", 2)
        p, off = int(p), int(off)
        last_off[p] = max(last_off.get(p, -1), off)
        r = json.loads(payload)
        if r.get("eos"):
            eos_at[p] = off
            if r["partition"] != p:
                fail("sentinel of %d in partition %d" % (r["partition"], p))
            continue
        seen[r["seq"]] = (p, r)
    if sorted(seen) != list(range(100)):
        fail("drst->kcat: seqs %s" % sorted(seen)[:5])
    for seq, (p, r) in seen.items():
        row = rows[seq]
        if p != seq % 3:
            fail("seq %d in partition %d (rr expects %d)" % (seq, p, seq % 3))
        want = {f: float(row[f]) for f in feats if f in row.index and not np.isnan(row[f])}
        if r["features"] != want:
            bad = [f for f in want if r["features"].get(f) != want[f]]
            fail("seq %d: features differ from pandas: %s" % (seq, bad[:5]))
        if r["label"] != float(row["output_rate"]):
            fail("seq %d: label %r != %r" % (seq, r["label"], row["output_rate"]))
        if not (r["send_ts"] > 1.6e9):
            fail("seq %d: no send_ts" % seq)
    if sorted(eos_at) != [0, 1, 2] or any(eos_at[p] != last_off[p] for p in eos_at):
        fail("each partition must end with its sentinel: %s vs %s" % (eos_at, last_off))
    print("drst produce -> kcat: 100 records match pandas, 3 sentinels last: ok")


def main():
    if not shutil.which("kcat"):
        skip("kcat not installed")
    tmp = tempfile.mkdtemp(prefix="drst_kcat_")
    proc, bs = start_broker(tmp, "in", "out", "dead")
    try:
        part1(bs, tmp)
        part2(bs, tmp)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    if proc.returncode != 0:
        fail("drst broker exited with %d on SIGTERM" % proc.returncode)


if __name__ == "__main__":
    main()
