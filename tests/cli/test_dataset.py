#!/usr/bin/env python3
"""drst dataset build (perf branch) against an independent pandas
implementation of the rules of docs/dataset.md, cell by cell:
 - the four shared perf samples (../shared/data/drst/raw/perf-samples);
 - synthetic multi-interval bundles generated here (random VNF names,
   events, lengths, header/no-header rx/tx, us/ms latency, <not counted>,
   comments, merge-conflict lines);
 - tests/data/dataset/drst12: DRST's 5 VNFs x 12 events, whose header must
   equal ../shared/data/drst/combined.csv's (without its index column).
The reference below reads the raw files with pandas and plain Python; it
shares no code with drst."""
import glob
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

DRST = os.environ.get("DRST_BIN", "build/drst")
DATA = os.environ.get("DRST_DATA", "../shared/data")
TESTDATA = os.environ.get("DRST_TESTDATA", "tests/data")
DEFAULT_ORDER = ["firewall", "nf_router", "ndpi_stats", "payload_scan", "bridge"]
KNOWN = {"tx_stats.csv", "rx_stats.csv", "latency.csv", "latency_old.csv", "nf_out.csv"}
MARKERS = ("<<<<<<<", "=======", ">>>>>>>", "|||||||")

# ---------------------------------------------------------------- reference


def num(s):
    """float(s) or None; same accepted syntax as strtod for these files."""
    try:
        return float(s.strip())
    except (ValueError, AttributeError):
        return None


def is_event(s):
    s = s.strip()
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9_.:/\-=,@]*", s))


def is_perf(path):
    with open(path, "rb") as f:
        text = f.read().decode("latin-1")
    seen = 0
    for line in text.split("\n"):
        t = line.strip()
        if not t:
            continue
        seen += 1
        if seen > 64:
            break
        if t.startswith("# started on"):
            return True
        if t.startswith("#"):
            continue
        f = line.rstrip("\r").split(",")
        if len(f) >= 4 and num(f[0]) is not None and is_event(f[3]):
            return True
    return False


def read_perf(path):
    """-> (list of events in first-appearance order, DataFrame rows=intervals)."""
    names = ["time", "value", "unit", "event"] + ["x%d" % i for i in range(60)]
    df = pd.read_csv(path, header=None, names=names, dtype=str, comment="#",
                     skip_blank_lines=True, keep_default_na=False, engine="python",
                     encoding="latin-1")
    df = df[~df["time"].str.strip().str[:7].isin(MARKERS)]
    df = df[df["event"].notna() & (df["event"] != "")]
    df["t"] = pd.to_numeric(df["time"].str.strip(), errors="coerce")
    nc = df["value"].str.strip().isin(["<not counted>", "<not supported>"])
    df["v"] = pd.to_numeric(df["value"].str.strip(), errors="coerce")
    df = df[df["t"].notna() & (df["v"].notna() | nc)]
    df.loc[nc, "v"] = np.nan
    df["event"] = df["event"].str.strip()
    df = df[df["event"].map(is_event)]
    df["iv"] = (df["t"] != df["t"].shift()).cumsum() - 1
    df = df.drop_duplicates(subset=["iv", "event"], keep="first")
    events = list(dict.fromkeys(df["event"]))
    wide = df.pivot(index="iv", columns="event", values="v")
    wide = wide.reindex(columns=events)
    return events, wide


def read_rate(path):
    with open(path, encoding="latin-1") as f:
        first = ""
        for line in f:
            if line.strip() and not line.strip().startswith("#"):
                first = line
                break
    has_header = num(first.split(",")[0]) is None
    if has_header:
        df = pd.read_csv(path, dtype=str, skipinitialspace=True, comment="#")
        df.columns = [c.strip() for c in df.columns]
        col = "Mbit" if "Mbit" in df.columns else "PacketRate"
        s = df[col]
    else:
        df = pd.read_csv(path, header=None, dtype=str, names=range(64), comment="#",
                         engine="python")
        s = df[4]
    v = pd.to_numeric(s.str.strip(), errors="coerce")
    return list(v.dropna())


def read_latency(path):
    vals = []
    with open(path, encoding="latin-1") as f:
        for line in f:
            t = line.strip()
            if not t or t.startswith("#") or t[:7] in MARKERS:
                continue
            parts = [p for p in re.split(r"[ \t,]+", t) if p]
            if len(parts) not in (1, 2):
                continue
            if len(parts) == 2 and num(parts[0]) is None:
                continue
            v = num(parts[-1])
            if v is None or not math.isfinite(v):
                continue
            vals.append(v)
    if vals and float(np.median(vals)) > 1000:
        vals = [v / 1000.0 for v in vals]
    return vals


def order_key(order):
    def key(name):
        return (order.index(name) if name in order else len(order), name)
    return key


def reference_build(dirs, order=DEFAULT_ORDER):
    bundles = []
    for d in dirs:
        vnfs = {}
        for p in sorted(glob.glob(os.path.join(d, "*.csv"))):
            base = os.path.basename(p)
            if base in KNOWN or "-pcm" in base or base.startswith("pcm-"):
                continue
            if is_perf(p):
                vnfs[base[:-4]] = read_perf(p)
        names = sorted(vnfs, key=order_key(order))
        lat = []
        if os.path.exists(os.path.join(d, "latency.csv")):
            lat = read_latency(os.path.join(d, "latency.csv"))
        if not lat and os.path.exists(os.path.join(d, "latency_old.csv")):
            lat = read_latency(os.path.join(d, "latency_old.csv"))
        bundles.append(dict(names=names, vnfs=vnfs, tx=read_rate(os.path.join(d, "tx_stats.csv")),
                            rx=read_rate(os.path.join(d, "rx_stats.csv")), lat=lat))
    all_vnfs = sorted({n for b in bundles for n in b["names"]}, key=order_key(order))
    events = []
    for b in bundles:
        for n in b["names"]:
            for e in b["vnfs"][n][0]:
                if e not in events:
                    events.append(e)
    cols = ["input_rate", "output_rate", "latency"]
    for e in events:
        for v in all_vnfs:
            if any(v in b["vnfs"] and e in b["vnfs"][v][0] for b in bundles):
                cols.append("%s_%s" % (v, e))
    frames = []
    for b in bundles:
        n = len(b["vnfs"][b["names"][0]][1])
        data = {c: [np.nan] * n for c in cols}

        def put(col, seq):
            seq = list(seq)[:n]
            data[col][:len(seq)] = seq
        put("input_rate", b["tx"])
        put("output_rate", b["rx"])
        put("latency", b["lat"])
        for v in b["names"]:
            evs, wide = b["vnfs"][v]
            for e in evs:
                put("%s_%s" % (v, e), wide[e].tolist())
        frames.append(pd.DataFrame(data, columns=cols))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)

# ---------------------------------------------------------------- helpers


def run(args, ok=True):
    p = subprocess.run([DRST] + args, capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise AssertionError("drst %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
    return p


def compare(ours_path, ref, what):
    ours = pd.read_csv(ours_path, float_precision="round_trip")
    assert list(ours.columns) == list(ref.columns), "%s: columns differ:\n%s\n%s" % (
        what, list(ours.columns), list(ref.columns))
    assert ours.shape == ref.shape, "%s: shape %s vs reference %s" % (what, ours.shape, ref.shape)
    cells = 0
    for c in ref.columns:
        a = ours[c].to_numpy(dtype=float)
        b = ref[c].to_numpy(dtype=float)
        for i, (x, y) in enumerate(zip(a, b)):
            cells += 1
            if not ((math.isnan(x) and math.isnan(y)) or x == y):
                raise AssertionError("%s: row %d column %s: drst %r, reference %r" % (what, i, c, x, y))
    return cells

# ---------------------------------------------------------------- synthetic bundles


def write_bundle(d, rng, vnfs, events, nint, variant):
    os.makedirs(d)
    for k, v in enumerate(vnfs):
        n = nint + (0 if k == 0 else rng.choice([-2, -1, 0, 0, 1, 3]))
        n = max(n, 0)
        evs = [e for e in events if rng.random() > 0.15] or events[:1]
        lines = ["# started on Mon Jul 17 22:29:23 2023", ""]
        for i in range(n):
            t = "%15.9f" % (1.0004 * (i + 1) + rng.random() * 1e-4)
            for e in evs:
                r = rng.random()
                if r < 0.05:
                    val = "<not counted>"
                elif r < 0.08:
                    val = "<not supported>"
                elif r < 0.5:
                    val = str(rng.randint(0, 10**12))
                else:
                    val = "%.6f" % (rng.random() * 1000)
                lines.append("%s,%s,,%s,0.00%%,%d,100.00,%.2f,M/sec" % (t, val, e, rng.randint(1, 10**7),
                                                                      rng.random()))
            if rng.random() < 0.2:
                lines.append("# a comment")
            if rng.random() < 0.1:
                lines.append(rng.choice(["<<<<<<< HEAD", "=======", ">>>>>>> branch"]))
            if rng.random() < 0.1:
                lines.append("%s,notanumber,,%s,0.00%%,1,100.00,," % (t, evs[0]))
        eol = "\r\n" if variant % 2 else "\n"
        with open(os.path.join(d, v + ".csv"), "w", newline="") as f:
            f.write(eol.join(lines) + eol)
    ntx = nint + rng.choice([-1, 0, 2])
    for name, hdr in (("tx_stats.csv", variant % 3 != 0), ("rx_stats.csv", variant % 3 == 1)):
        with open(os.path.join(d, name), "w") as f:
            if hdr:
                cols = ["Time", "Device", "Direction", "PacketRate", "Mbit", "MbitWithFraming",
                        "TotalPackets", "TotalBytes"]
                if variant % 4 == 3:
                    cols[4] = "MbitX"  # no Mbit -> PacketRate
                f.write(",".join(cols) + "\n")
            for i in range(max(ntx, 0)):
                f.write("%d,Device: id=0,TX,%.13f,%.10f,%.10f,%d,%d\n" % (
                    1700000000 + i, rng.random() * 10, rng.random() * 5000, rng.random() * 5000, i, i))
                if rng.random() < 0.1:
                    f.write("%d,Device: id=0,TX,NaNish,oops,1,1,1\n" % i)
    lat = os.path.join(d, "latency.csv" if variant % 5 else "latency_old.csv")
    us = variant % 2 == 0
    with open(lat, "w") as f:
        if variant % 3 == 2:
            f.write("<<<<<<< HEAD\n")
        for i in range(nint + rng.choice([-1, 0, 1])):
            v = rng.randint(2000, 900000) if us else round(rng.random() * 50, 3)
            f.write(("%d %s\n" if variant % 2 else "%d,%s\n") % (i + 1, v) if variant % 4 else "%s\n" % v)


def main():
    if not os.path.exists(DRST):
        print("drst binary not found: %s" % DRST)
        return 1
    tmp = tempfile.mkdtemp(prefix="drst_dataset_")
    total = 0

    # 1. DRST's 5 VNFs x 12 events: header equals combined.csv's
    d12 = os.path.join(TESTDATA, "dataset", "drst12")
    out = os.path.join(tmp, "d12.csv")
    run(["dataset", "build", d12, "-o", out])
    total += compare(out, reference_build([d12]), "drst12")
    combined = os.path.join(DATA, "drst", "combined.csv")
    if os.path.exists(combined):
        want = list(pd.read_csv(combined, nrows=0).columns)[1:]  # drop the unnamed index
        got = list(pd.read_csv(out, nrows=0).columns)
        assert got == want, "drst12 header differs from combined.csv:\n%s\n%s" % (got, want)
        print("ok: drst12 header == combined.csv header (%d columns)" % len(got))

    # 2. synthetic multi-interval bundles, several concatenated
    rng = random.Random(20260)
    pool = ["flow_tracker", "firewall", "nf_router", "ndpi_stats", "payload_scan", "bridge", "zeta_nf",
            "alpha"]
    evpool = ["instructions", "branches", "branch-misses", "cache-misses", "cycles", "LLC-loads",
              "L1-dcache-loads", "cpu-clock", "context-switches", "page-faults"]
    for round_ in range(6):
        dirs = []
        for b in range(rng.randint(1, 3)):
            d = os.path.join(tmp, "syn%d_%d" % (round_, b))
            vnfs = rng.sample(pool, rng.randint(1, 5))
            events = rng.sample(evpool, rng.randint(1, 7))
            write_bundle(d, rng, vnfs, events, rng.randint(1, 25), round_ * 3 + b)
            dirs.append(d)
        order = None
        args = ["dataset", "build"] + dirs + ["-o", os.path.join(tmp, "syn%d.csv" % round_), "-q"]
        if round_ % 2:
            order = ["bridge", "flow_tracker", "alpha"]
            args += ["--vnf-order", ",".join(order)]
        run(args)
        ref = reference_build(dirs, order or DEFAULT_ORDER)
        total += compare(os.path.join(tmp, "syn%d.csv" % round_), ref, "synthetic round %d" % round_)
    print("ok: synthetic bundles match the pandas reference")

    # 3. the four shared perf samples
    samples = sorted(glob.glob(os.path.join(DATA, "drst", "raw", "perf-samples", "*")))
    if not samples:
        print("SKIP: shared perf samples not found under %s (needs ../shared/data)" % DATA)
        print("compared %d cells" % total)
        return 77
    out = os.path.join(tmp, "samples.csv")
    p = run(["dataset", "build"] + samples + ["-o", out])
    n = compare(out, reference_build(samples), "perf samples")
    total += n
    assert "merge-conflict marker" in p.stderr, p.stderr
    assert "line(s) rejected" in p.stderr
    print("ok: perf samples (%d bundles) match the reference, %d cells" % (len(samples), n))
    print("compared %d cells in all" % total)
    return 0


if __name__ == "__main__":
    _tmp_before = set(glob.glob(os.path.join(tempfile.gettempdir(), "drst_dataset_*")))
    try:
        rc = main()
    finally:
        for t in set(glob.glob(os.path.join(tempfile.gettempdir(), "drst_dataset_*"))) - _tmp_before:
            shutil.rmtree(t, ignore_errors=True)
    sys.exit(rc)
