"""`drst broker --port N`: a fixed bootstrap address on loopback.

librdkafka 2.0.2's mock brokers only bind ephemeral ports; with --port drst
binds 127.0.0.1:N itself and relays each connection to mock broker 1. This
test checks it with clients we did not write:
  1. the first line printed is exactly 127.0.0.1:N;
  2. kcat -L through 127.0.0.1:N sees topic t with 3 partitions, and brokers
     advertised on loopback ports other than N (what --help documents);
  3. kcat -P produces JSON records through 127.0.0.1:N; `drst consume
     --bootstrap 127.0.0.1:N` and `kcat -C` both read back every one, equal in
     count and content to what the test wrote;
  4. a second broker on the same port fails with exit 1 and a message naming
     the address and "in use"; a bad --port is a usage error (exit 2);
  5. SIGTERM ends the broker with exit 0; the same port can be used again at
     once, and SIGINT ends that one with exit 0.
Loopback only.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DRST = os.environ.get("DRST_BIN", "drst")
N = 300
NP = 3


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(77)


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_broker(tmp, port, name, *extra):
    out_path = os.path.join(tmp, name + ".out")
    err_path = os.path.join(tmp, name + ".err")
    out, err = open(out_path, "w"), open(err_path, "w")
    proc = subprocess.Popen([DRST, "broker", "--port", str(port)] + list(extra), stdout=out,
                            stderr=err)
    out.close()
    err.close()
    for _ in range(400):
        with open(out_path) as f:
            line = f.readline()
        if line.endswith("\n"):
            return proc, line.strip()
        if proc.poll() is not None:
            with open(err_path) as f:
                fail("drst broker exited with %d: %s" % (proc.returncode, f.read()))
        time.sleep(0.05)
    proc.kill()
    fail("drst broker printed no address")


def stop(proc, sig, what):
    proc.send_signal(sig)
    try:
        rc = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        fail("%s: broker still running 10 s after the signal" % what)
    if rc != 0:
        fail("%s: broker exited with %d, expected 0" % (what, rc))


def check_metadata(bs, port):
    res = subprocess.run(["kcat", "-L", "-b", bs, "-t", "t"], capture_output=True, timeout=30)
    if res.returncode != 0:
        fail("kcat -L through %s failed: %s" % (bs, res.stderr.decode()))
    text = res.stdout.decode()
    if 'topic "t" with %d partitions' % NP not in text:
        fail("kcat -L does not show t with %d partitions:\n%s" % (NP, text))
    brokers = [l.split(" at ")[1].split()[0] for l in text.splitlines()
               if l.strip().startswith("broker ") and " at " in l]
    if not brokers or any(not b.startswith("127.0.0.1:") or b == bs for b in brokers):
        fail("advertised brokers %s: expected 127.0.0.1:<ephemeral> != %s" % (brokers, bs))
    print("metadata via %s: t has %d partitions, brokers %s: ok" % (bs, NP, brokers))


def produce(bs):
    sent = {}
    lines = []
    for seq in range(N):
        r = {"seq": seq, "ts": 1700000000.25 + seq, "send_ts": 1700000000.5 + seq,
             "features": {"x": seq * 0.5, "y": -seq, "z": 1e-6 * seq}, "label": seq / 3}
        sent[seq] = r
        lines.append(json.dumps(r))
    subprocess.run(["kcat", "-P", "-b", bs, "-t", "t"], input="\n".join(lines).encode() + b"\n",
                   check=True, timeout=60)
    # one end-of-stream sentinel per partition, so that drst consume stops
    for p in range(NP):
        subprocess.run(["kcat", "-P", "-b", bs, "-t", "t", "-p", str(p)],
                       input=(json.dumps({"eos": True, "partition": p}) + "\n").encode(),
                       check=True, timeout=60)
    return sent, set(lines)


def consume_drst(bs, sent):
    res = subprocess.run([DRST, "consume", "--topic", "t", "--group", "gp", "--bootstrap", bs,
                          "--from-beginning", "--idle-ms", "20000", "--meta"],
                         capture_output=True, timeout=120)
    if res.returncode != 0:
        fail("drst consume --bootstrap %s failed (%d): %s" % (bs, res.returncode,
                                                               res.stderr.decode()))
    got, eos, parts = {}, set(), set()
    for line in res.stdout.decode().splitlines():
        m = json.loads(line)
        r = m["record"]
        if r.get("eos"):
            eos.add((m["partition"], r["partition"]))
            continue
        if r["seq"] in got:
            fail("drst consume printed seq %d twice" % r["seq"])
        got[r["seq"]] = r
        parts.add(m["partition"])
    if len(got) != N:
        fail("drst consume read %d records, kcat wrote %d" % (len(got), N))
    bad = [k for k in sent if got.get(k) != sent[k]]
    if bad:
        fail("drst consume: %d records differ, e.g. seq %d: %s != %s" % (
            len(bad), bad[0], got.get(bad[0]), sent[bad[0]]))
    if eos != {(p, p) for p in range(NP)}:
        fail("drst consume sentinels: %s" % sorted(eos))
    if not parts <= set(range(NP)):
        fail("records from partitions %s" % sorted(parts))
    print("kcat -P -> drst consume via %s: %d records equal, %d sentinels: ok" % (bs, N, NP))


def consume_kcat(bs, lines):
    res = subprocess.run(["kcat", "-C", "-b", bs, "-t", "t", "-e", "-q", "-f", "%p\t%s\n"],
                         capture_output=True, timeout=60)
    if res.returncode != 0:
        fail("kcat -C through %s failed: %s" % (bs, res.stderr.decode()))
    data, nsent = [], 0
    for l in res.stdout.decode().splitlines():
        p, payload = l.split("\t", 1)
        if json.loads(payload).get("eos"):
            nsent += 1
            continue
        data.append(payload)
    if len(data) != N or set(data) != lines:
        fail("kcat -C read %d records (%d distinct matching), wrote %d" % (
            len(data), len(set(data) & lines), N))
    if nsent != NP:
        fail("kcat -C read %d sentinels, expected %d" % (nsent, NP))
    print("kcat -P -> kcat -C via %s: %d records byte-identical: ok" % (bs, N))


def check_in_use(port):
    res = subprocess.run([DRST, "broker", "--port", str(port)], capture_output=True, timeout=30)
    err = res.stderr.decode()
    if res.returncode != 1:
        fail("second broker on port %d: exit %d, expected 1 (%s)" % (port, res.returncode, err))
    if "127.0.0.1:%d" % port not in err or "in use" not in err:
        fail("port-in-use message does not name the address and the cause: %r" % err)
    if res.stdout:
        fail("a failed broker printed a bootstrap address: %r" % res.stdout)
    print("port in use: exit 1, %r: ok" % err.strip())
    res = subprocess.run([DRST, "broker", "--port", "70000"], capture_output=True, timeout=30)
    if res.returncode != 2:
        fail("--port 70000: exit %d, expected 2" % res.returncode)


def main():
    if not shutil.which("kcat"):
        skip("kcat not installed (Debian package kcat)")
    hl = subprocess.run([DRST, "broker", "--help"], capture_output=True, timeout=30)
    if hl.returncode != 0 or b"DEVELOPMENT AND TESTS ONLY" not in hl.stdout \
            or b"--port N" not in hl.stdout:
        fail("drst broker --help does not document --port and the dev/test scope")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc, line = start_broker(tmp, port, "b1", "--topic", "t", "--partitions", str(NP))
        try:
            bs = "127.0.0.1:%d" % port
            if line != bs:
                fail("first line %r, expected %r" % (line, bs))
            check_metadata(bs, port)
            sent, lines = produce(bs)
            consume_drst(bs, sent)
            consume_kcat(bs, lines)
            check_in_use(port)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        stop(proc, signal.SIGTERM, "SIGTERM")
        print("SIGTERM: broker exited 0")
        # the port is free again at once (connections in TIME_WAIT do not block it)
        proc, line = start_broker(tmp, port, "b2")
        if line != "127.0.0.1:%d" % port:
            proc.kill()
            fail("restarted broker printed %r" % line)
        stop(proc, signal.SIGINT, "SIGINT")
        print("restart on the same port, SIGINT: broker exited 0")
    print("ok")


if __name__ == "__main__":
    main()
