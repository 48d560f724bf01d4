#!/usr/bin/env python3
"""drst dataset pcm on ../shared/data/drst/raw/pcm-const-1gbps against an
independent pandas reading of the documented rules (docs/dataset.md): row
count (common window of the timestamped PCM files, one row per second),
time column (UTC epoch from the local Date+Time with the offset that best
overlaps rx/tx), and every cell of every PCM, pcm-memory, pcm-pcie, rx/tx
and latency column. Also a small hand-made bundle with a bad row."""
import csv
import io
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

DRST = os.environ.get("DRST_BIN", "build/drst")
DATA = os.environ.get("DRST_DATA", "../shared/data")
ORDER = ["firewall", "nf_router", "ndpi_stats", "payload_scan", "bridge"]


def norm(s):
    return "_".join("pct" if w == "%" else w for w in re.findall(r"[A-Za-z0-9]+|%", s))


def unique(name, used):
    k, n = 1, name
    while n in used:
        k += 1
        n = "%s_%d" % (name, k)
    used.add(n)
    return n


def read_two_row(path, prefix, used_local):
    with open(path, encoding="latin-1", newline="") as f:
        rows = list(csv.reader(io.StringIO(f.read())))
    rows = [r for r in rows if any(c.strip() for c in r)]
    groups, metrics = rows[0], rows[1]
    di, ti = metrics.index("Date"), metrics.index("Time")
    df = pd.read_csv(path, skiprows=2, header=None, dtype=str, keep_default_na=False,
                     encoding="latin-1")
    t = pd.to_datetime(df[di].str.strip() + " " + df[ti].str.strip())
    out = {}
    group = ""
    for i, m in enumerate(metrics):
        if i < len(groups) and groups[i].strip():
            group = norm(groups[i])
        if i in (di, ti) or not m.strip():
            continue
        parts = [p for p in (prefix, group, norm(m)) if p]
        name = unique("_".join(parts), used_local)
        out[name] = pd.to_numeric(df[i].str.strip().replace("", np.nan), errors="raise")
    return t, pd.DataFrame(out)


def read_pcie(path, prefix):
    blocks = []
    with open(path, encoding="latin-1") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            fields = line.split(",")
            if fields[0] == "Skt":
                metrics = [norm(x) for x in fields[1:]]
                blocks.append({})
                continue
            m = re.match(r"(.*)\((Total|Miss|Hit)\)$", fields[-1])
            kind = m.group(2)
            fields[-1] = m.group(1)
            if kind == "Hit":
                continue
            for k, v in enumerate(fields[1:]):
                blocks[-1]["%s_skt%d_%s_%s" % (prefix, int(fields[0]), metrics[k], kind.lower())] = float(v)
    return pd.DataFrame(blocks)


def read_rate(path):
    df = pd.read_csv(path)
    return df["Time"].astype(float).to_numpy(), df["Mbit"].astype(float).to_numpy()


def main():
    bundle = os.path.join(DATA, "drst", "raw", "pcm-const-1gbps")
    if not os.path.isdir(bundle):
        print("SKIP: %s not found (needs ../shared/data)" % bundle)
        return 77
    tmp = tempfile.mkdtemp(prefix="drst_pcm_")
    try:
        out = os.path.join(tmp, "pcm.csv")
        p = subprocess.run([DRST, "dataset", "pcm", bundle, "-o", out, "-q"], capture_output=True,
                           text=True)
        assert p.returncode == 0, p.stderr
        ours = pd.read_csv(out, float_precision="round_trip")

        # the timestamped PCM files, in the documented order
        files = sorted(f for f in os.listdir(bundle) if f.endswith("-pcm.csv"))
        files.sort(key=lambda f: (ORDER.index(f[:-8]) if f[:-8] in ORDER else len(ORDER), f[:-8]))
        tables = []
        for f in files:
            tables.append(read_two_row(os.path.join(bundle, f), f[:-8], set()))
        tables.append(read_two_row(os.path.join(bundle, "pcm-memory.csv"), "memory", set()))
        start = max(t.min().floor("s") for t, _ in tables)
        end = min(t.max().floor("s") for t, _ in tables)
        n = int((end - start).total_seconds()) + 1
        assert len(ours) == n, "rows: drst %d, reference %d" % (len(ours), n)
        print("ok: %d rows = common window %s .. %s" % (n, start, end))

        # UTC offset: whole hours, best overlap with rx/tx epoch range, ties -> smallest |h|
        txt, txv = read_rate(os.path.join(bundle, "tx_stats.csv"))
        rxt, rxv = read_rate(os.path.join(bundle, "rx_stats.csv"))
        lo, hi = min(txt.min(), rxt.min()), max(txt.max(), rxt.max())
        s0 = (start - pd.Timestamp("1970-01-01")).total_seconds()
        e0 = (end - pd.Timestamp("1970-01-01")).total_seconds()
        best = max(range(-12, 15), key=lambda h: (min(e0 - h * 3600, hi) - max(s0 - h * 3600, lo), -abs(h), h < 0))
        times = s0 - best * 3600 + np.arange(n)
        assert np.array_equal(ours["time"].to_numpy(dtype=float), times), "time column differs"
        print("ok: time column = local PCM seconds - %d h, consecutive" % best)

        # every PCM cell: first sample of each second, empty where none
        idx = pd.date_range(start, end, freq="s")
        cells = 0
        for t, df in tables:
            df = df.copy()
            df.index = t.dt.floor("s")
            df = df[~df.index.duplicated(keep="first")].reindex(idx)
            for c in df.columns:
                a = ours[c].to_numpy(dtype=float)
                b = df[c].to_numpy(dtype=float)
                same = (a == b) | (np.isnan(a) & np.isnan(b))
                assert same.all(), "column %s differs at rows %s" % (c, np.nonzero(~same)[0][:5])
                cells += n
        pcie = read_pcie(os.path.join(bundle, "pcm-pcie.csv"), "pcie").reindex(range(n))
        for c in pcie.columns:
            a, b = ours[c].to_numpy(dtype=float), pcie[c].to_numpy(dtype=float)
            assert ((a == b) | (np.isnan(a) & np.isnan(b))).all(), "pcie column %s differs" % c
            cells += n
        # rx/tx by epoch second, latency k-th value at tx's first second + k (us -> ms)
        for col, (tt, vv) in (("input_rate", (txt, txv)), ("output_rate", (rxt, rxv))):
            s = pd.Series(vv, index=tt).groupby(level=0).first().reindex(times)
            a = ours[col].to_numpy(dtype=float)
            assert ((a == s.to_numpy()) | (np.isnan(a) & s.isna().to_numpy())).all(), col
            cells += n
        lat = pd.read_csv(os.path.join(bundle, "latency.csv"), sep=r"\s+", header=None)[1].astype(float)
        if lat.median() > 1000:
            lat = lat / 1000.0
        s = pd.Series(lat.to_numpy(), index=txt[0] + np.arange(len(lat))).reindex(times)
        a = ours["latency"].to_numpy(dtype=float)
        assert ((a == s.to_numpy()) | (np.isnan(a) & s.isna().to_numpy())).all(), "latency"
        cells += n
        assert len(ours.columns) == 4 + sum(len(df.columns) for _, df in tables) + len(pcie.columns)
        print("ok: %d columns, %d cells equal to the pandas reference" % (len(ours.columns), cells))
        # a few spot values read straight from the raw text
        row = int(np.nonzero(times == txt[10])[0][0])
        assert ours["input_rate"][row] == txv[10]
        print("ok: spot check input_rate at %d = %r" % (txt[10], txv[10]))

        # a small hand-made bundle: a bad row is rejected with file:line, the rest used
        small = os.path.join(tmp, "small")
        os.makedirs(small)
        hdr = "System,System,Socket 0,,\nDate,Time,EXEC,C0res%,\n"
        rows = ["2024-03-05,09:30:51.600,0.5,1,", "2024-03-05,09:30:52.601,0.6,2,",
                "2024-03-05,09:30:53.601,oops,3,", "2024-03-05,09:30:54.601,0.8,4,"]
        with open(os.path.join(small, "vnf-pcm.csv"), "w") as f:
            f.write(hdr + "\n".join(rows) + "\n")
        p = subprocess.run([DRST, "dataset", "pcm", small, "-o", os.path.join(tmp, "s.csv"),
                            "--utc-offset", "1"], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert "vnf-pcm.csv:5: rejected: non-numeric value in column 'vnf_Socket_0_EXEC'" in p.stderr, p.stderr
        s = pd.read_csv(os.path.join(tmp, "s.csv"))
        assert list(s.columns) == ["time", "input_rate", "output_rate", "latency",
                                   "vnf_Socket_0_EXEC", "vnf_Socket_0_C0res_pct"], list(s.columns)
        assert len(s) == 4 and math.isnan(s["vnf_Socket_0_EXEC"][2]) and s["vnf_Socket_0_EXEC"][3] == 0.8
        assert s["time"][0] == pd.Timestamp("2024-03-05 08:30:51").timestamp()
        p = subprocess.run([DRST, "dataset", "pcm", small, "-o", os.path.join(tmp, "s.csv"),
                            "--strict"], capture_output=True, text=True)
        assert p.returncode == 1, p.returncode
        print("ok: small PCM bundle (bad row, --utc-offset, --strict)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
