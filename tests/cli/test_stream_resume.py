"""A `drst consume` group member killed with SIGKILL mid-stream and
restarted resumes from the committed offsets: counted against what kcat
reads from the topic, zero records are lost (duplicates are allowed, at
most the batch in flight). Also: two groups each see every record, and a
second member run alone after the first finished finds nothing left
uncommitted."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    from confluent_kafka import Producer
except ImportError:
    Producer = None

DRST = os.environ.get("DRST_BIN", "drst")
N = 3000


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(77)


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def seqs(path):
    """Sequence numbers of the complete JSON lines in a consumer's output."""
    out = []
    with open(path) as f:
        for line in f:
            try:
                r = json.loads(line)["record"]
            except (ValueError, KeyError):
                continue  # a line cut by SIGKILL: it was not committed either
            if not r.get("eos"):
                out.append(r["seq"])
    return out


def consume(bs, group, out, extra=()):
    return subprocess.Popen([DRST, "consume", "--topic", "k", "--group", group, "--bootstrap", bs,
                             "--from-beginning", "--meta", "--idle-ms", "8000",
                             "-X", "session.timeout.ms=3000", "-X", "heartbeat.interval.ms=500",
                             "-X", "max.partition.fetch.bytes=2000", *extra],
                            stdout=open(out, "w"), stderr=subprocess.PIPE)


def main():
    if not shutil.which("kcat"):
        skip("kcat not installed")
    if Producer is None:
        skip("python3-confluent-kafka not installed")
    tmp = tempfile.mkdtemp(prefix="drst_resume_")
    addr = os.path.join(tmp, "addr")
    broker = subprocess.Popen([DRST, "broker", "--topic", "k", "--partitions", "3"],
                              stdout=open(addr, "w"), stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            line = open(addr).readline()
            if line.endswith("\n"):
                break
            time.sleep(0.05)
        bs = line.strip()
        # Run 1 joins group g; python-confluent-kafka (a producer we did not
        # write) then writes N records and 3 sentinels, slowly enough that
        # run 1 is killed with SIGKILL part-way through.
        out1 = os.path.join(tmp, "run1.jsonl")
        c = consume(bs, "g", out1)
        prod = Producer({"bootstrap.servers": bs, "linger.ms": 1})
        killed = False
        for i, start in enumerate(range(0, N, 30)):
            for q in range(start, start + 30):
                prod.produce("k", json.dumps({"seq": q, "features": {"x": q}}).encode(),
                             partition=q % 3)
            prod.flush(30)
            if i == 0:  # wait for run 1 to join and print its first records
                deadline = time.time() + 30
                while time.time() < deadline and not seqs(out1):
                    time.sleep(0.02)
            time.sleep(0.01)
            if not killed and len(seqs(out1)) >= N // 4:
                c.send_signal(signal.SIGKILL)
                c.wait()
                killed = True
        for p in range(3):
            prod.produce("k", json.dumps({"eos": True, "partition": p}).encode(), partition=p)
        if prod.flush(30) != 0:
            fail("python producer could not deliver everything")
        del prod
        if not killed:
            c.send_signal(signal.SIGKILL)
            c.wait()
        # What is on the topic, read by kcat.
        kc = subprocess.run(["kcat", "-C", "-b", bs, "-t", "k", "-e", "-q"], capture_output=True,
                            check=True, timeout=60)
        on_topic = sorted(json.loads(l)["seq"] for l in kc.stdout.decode().splitlines()
                          if "seq" in l)
        if on_topic != list(range(N)):
            fail("kcat sees %d records on the topic" % len(on_topic))
        first = seqs(out1)
        if not 0 < len(first) < N:
            fail("run 1 printed %d records before the kill; expected part of %d" % (len(first), N))
        # Run 2: same group, resumes from the committed offsets.
        out2 = os.path.join(tmp, "run2.jsonl")
        c = consume(bs, "g", out2)
        _, err = c.communicate(timeout=120)
        if c.returncode != 0:
            fail("run 2 failed: " + err.decode())
        second = seqs(out2)
        union = set(first) | set(second)
        lost = N - len(union)
        dup = len(first) + len(second) - len(union)
        print("killed after %d records; restart printed %d; lost %d; duplicates %d"
              % (len(first), len(second), lost, dup))
        if lost:
            fail("%d records lost across SIGKILL" % lost)
        if len(second) >= N:
            fail("restart re-read everything: commits were not kept")
        if b"3 sentinel(s)" not in err:
            fail("run 2 did not stop on the sentinels: " + err.decode())

        # Nothing left uncommitted: another member of g finds no record.
        out3 = os.path.join(tmp, "run3.jsonl")
        c = consume(bs, "g", out3, ["--idle-ms", "3000"])
        c.communicate(timeout=60)
        if seqs(out3):
            fail("%d records were left uncommitted" % len(seqs(out3)))

        # A second group sees every record once.
        out4 = os.path.join(tmp, "run4.jsonl")
        c = consume(bs, "other", out4)
        c.communicate(timeout=120)
        if sorted(seqs(out4)) != list(range(N)):
            fail("group 'other' saw %d records" % len(seqs(out4)))
        print("resume after SIGKILL, no uncommitted left, second group complete: ok")
    finally:
        broker.terminate()
        broker.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
