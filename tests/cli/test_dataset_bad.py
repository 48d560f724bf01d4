#!/usr/bin/env python3
"""Bad input for drst dataset build/pcm/inspect, one case per documented
rule: missing bundle, unreadable file, directory with no recognised files,
binary garbage, a 10 MB line, empty files, merge-conflict lines,
<not counted>, --strict exit code, dead-letter contents, usage errors; and
`dataset inspect` (text and --json) against pandas."""
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

DRST = os.environ.get("DRST_BIN", "build/drst")
DATA = os.environ.get("DRST_DATA", "../shared/data")

PERF = """# started on Mon Jul 17 22:29:23 2023

     1.000100000,100,,instructions,0.00%,1,100.00,,
     1.000100000,<not counted>,,cycles,0.00%,0,0.00,,
     2.000200000,200,,instructions,0.00%,1,100.00,,
     2.000200000,20,,cycles,0.00%,1,100.00,,
<<<<<<< HEAD
     3.000300000,300,,instructions,0.00%,1,100.00,,
=======
     3.000300000,30x,,cycles,0.00%,1,100.00,,
>>>>>>> other
     3.000300000,31,,cycles,0.00%,1,100.00,,
"""
TX = "Time,Device,Direction,PacketRate,Mbit\n1,d,TX,1,10.5\n2,d,TX,1,bad\n3,d,TX,1,30.5\n4,d,TX,1,40.5\n"
RX = "1,d,RX,1,9.5\n2,d,RX,1,19.5\n"
LAT = "1 5000\n2 7000\n3 9000\n"


def run(args):
    return subprocess.run([DRST] + args, capture_output=True, text=True)


def bundle(root, name, files):
    d = os.path.join(root, name)
    os.makedirs(d)
    for fn, content in files.items():
        with open(os.path.join(d, fn), "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
    return d


def good(root, name, **over):
    files = {"nf1.csv": PERF, "tx_stats.csv": TX, "rx_stats.csv": RX, "latency.csv": LAT}
    files.update(over)
    return bundle(root, name, {k: v for k, v in files.items() if v is not None})


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
    print("ok:", msg)


def main():
    tmp = tempfile.mkdtemp(prefix="drst_bad_")
    try:
        out = os.path.join(tmp, "o.csv")
        # a good small bundle: rules for rejected lines, <not counted>, padding
        d = good(tmp, "good")
        dl = os.path.join(tmp, "dead.txt")
        p = run(["dataset", "build", d, "-o", out, "--rejects", dl])
        check(p.returncode == 0, "good bundle builds (rc %d) %s" % (p.returncode, p.stderr))
        df = pd.read_csv(out)
        check(list(df.columns) == ["input_rate", "output_rate", "latency", "nf1_instructions",
                                   "nf1_cycles"], "columns of the small bundle: %s" % list(df.columns))
        check(len(df) == 3, "one row per interval (3)")
        check(math.isnan(df["nf1_cycles"][0]), "<not counted> -> empty cell")
        check(df["nf1_cycles"][2] == 31 and df["nf1_instructions"][2] == 300,
              "rest of the file used after merge-conflict lines")
        check(list(df["input_rate"]) == [10.5, 30.5, 40.5], "non-numeric tx row rejected, rest used")
        check(math.isnan(df["output_rate"][2]), "short rx padded with an empty cell")
        check(list(df["latency"]) == [5.0, 7.0, 9.0], "latency us -> ms (median 7000 > 1000)")
        for frag in ("nf1.csv:7: rejected: merge-conflict marker", "nf1.csv:9: rejected: merge-conflict marker",
                     "nf1.csv:11: rejected: merge-conflict marker", "nf1.csv:10: rejected: non-numeric counter value",
                     "tx_stats.csv:3: rejected: non-numeric rate", "rx_stats.csv: warning: 2 values for 3 rows",
                     "5 line(s) rejected"):
            check(frag in p.stderr, "diagnostic %r" % frag)
        dead = open(dl).read().splitlines()
        check(len(dead) == 5, "dead-letter file has the 5 rejected lines")
        check(any(x.endswith("nf1.csv:7: merge-conflict marker\t<<<<<<< HEAD") for x in dead),
              "dead letter keeps file:line, reason and the original text")
        check(any("\t     3.000300000,30x,,cycles" in x for x in dead), "dead letter of a bad value")

        p = run(["dataset", "build", d, "-o", "-", "-q"])
        check(p.returncode == 0 and p.stdout.startswith("input_rate,output_rate,latency,nf1_instructions"),
              "-o - writes the CSV to stdout")
        d2 = good(tmp, "two", **{"zz.csv": PERF})
        env = dict(os.environ, DRST_VNF_ORDER="zz,nf1")
        p = subprocess.run([DRST, "dataset", "build", d2, "-o", "-", "-q"], capture_output=True,
                           text=True, env=env)
        check(p.stdout.split("\n")[0].split(",")[3:5] == ["zz_instructions", "nf1_instructions"],
              "DRST_VNF_ORDER orders the VNF columns")
        p = subprocess.run([DRST, "dataset", "build", d2, "-o", "-", "-q", "--vnf-order", "nf1"],
                           capture_output=True, text=True, env=env)
        check(p.stdout.split("\n")[0].split(",")[3:5] == ["nf1_instructions", "zz_instructions"],
              "--vnf-order beats DRST_VNF_ORDER")
        p = run(["dataset", "build", d, "-o", out, "--strict"])
        check(p.returncode == 1 and "nf1.csv:7" in p.stderr, "--strict: exit 1 naming file:line")

        # missing bundle, missing required file, unreadable file
        p = run(["dataset", "build", os.path.join(tmp, "nope"), "-o", out])
        check(p.returncode == 1 and "nope" in p.stderr, "missing bundle: exit 1, named")
        d = good(tmp, "notx", **{"tx_stats.csv": None})
        p = run(["dataset", "build", d, "-o", out])
        check(p.returncode == 1 and "missing tx_stats.csv" in p.stderr, "missing tx_stats.csv named")
        d = good(tmp, "dangling")
        os.symlink("/nonexistent/really", os.path.join(d, "ghost.csv"))
        p = run(["dataset", "build", d, "-o", out])
        check(p.returncode == 1 and "ghost.csv" in p.stderr, "unreadable file: exit 1, named")
        if os.geteuid() != 0:
            d = good(tmp, "noperm")
            os.chmod(os.path.join(d, "nf1.csv"), 0)
            p = run(["dataset", "build", d, "-o", out])
            check(p.returncode == 1 and "nf1.csv" in p.stderr, "permission denied: exit 1, named")

        # no recognised files
        d = bundle(tmp, "empty_dir", {"README.txt": "hello"})
        p = run(["dataset", "build", d, "-o", out])
        check(p.returncode == 1 and "no perf-stat VNF files" in p.stderr, "directory with no recognised files")
        p = run(["dataset", "pcm", d, "-o", out])
        check(p.returncode == 1, "pcm: directory with no recognised files -> exit 1")

        # binary garbage: as a VNF candidate (ignored with a warning) and as rx/tx/latency
        rng = random.Random(5)
        garbage = bytes(rng.randrange(256) for _ in range(200000))
        d = good(tmp, "garbage", **{"junk.csv": garbage, "rx_stats.csv": garbage, "latency.csv": garbage})
        p = run(["dataset", "build", d, "-o", out])
        check(p.returncode == 0 and "junk.csv: warning: not a perf-stat" in p.stderr,
              "binary garbage never crashes; junk.csv ignored with a warning")
        d = good(tmp, "garbage2", **{"nf1.csv": b"1.0,5,,instructions\n" + garbage})
        p = run(["dataset", "build", d, "-o", out, "-q"])
        check(p.returncode == 0, "perf file with binary garbage after a good line")
        p = run(["dataset", "pcm", bundle(tmp, "gpcm", {"x-pcm.csv": garbage, "pcm-pcie.csv": garbage}), "-o", out])
        check(p.returncode == 1 and p.returncode < 128, "pcm of binary garbage: exit 1, no crash")

        # a 10 MB line
        big = "     1.0," + "9" * (10 << 20) + ",,instructions\n"
        d = good(tmp, "bigline", **{"nf1.csv": PERF + big, "latency.csv": "1 5\n" + "7" * (10 << 20) + "\n"})
        p = run(["dataset", "build", d, "-o", out, "-q"])
        check(p.returncode == 0, "10 MB lines do not crash (rc %d)" % p.returncode)
        with open(os.path.join(tmp, "big.csv"), "w") as f:
            f.write("a,b\n1,2\n" + "x" * (10 << 20) + "\n3,4\n")
        p = run(["dataset", "inspect", os.path.join(tmp, "big.csv")])
        check(p.returncode == 0 and "big.csv:3: rejected" in p.stderr and "rows:    2" in p.stdout,
              "inspect: a 10 MB line is rejected with file:line, the rest read")

        # empty files
        d = good(tmp, "empties", **{"latency.csv": "", "latency_old.csv": "1 3.5\n2 4.5\n3 5.5\n", "other.csv": ""})
        p = run(["dataset", "build", d, "-o", out])
        df = pd.read_csv(out)
        check(p.returncode == 0 and list(df["latency"]) == [3.5, 4.5, 5.5] and
              "using latency_old.csv" in p.stderr, "empty latency.csv -> latency_old.csv (ms kept)")
        check("other.csv: warning: not a perf-stat" in p.stderr, "empty unknown .csv ignored with a warning")
        open(os.path.join(tmp, "empty.csv"), "w").close()
        p = run(["dataset", "inspect", os.path.join(tmp, "empty.csv")])
        check(p.returncode == 1 and "empty.csv" in p.stderr, "inspect of an empty file: exit 1, named")
        p = run(["dataset", "inspect", os.path.join(tmp, "none.csv")])
        check(p.returncode == 1 and "none.csv" in p.stderr, "inspect of a missing file: exit 1, named")

        # perf-samples: --strict fails on their merge-conflict lines, dead letters hold them
        samples = os.path.join(DATA, "drst", "raw", "perf-samples")
        if os.path.isdir(samples):
            dirs = sorted(os.path.join(samples, x) for x in os.listdir(samples))
            p = run(["dataset", "build"] + dirs + ["-o", out, "--strict"])
            check(p.returncode == 1 and "latency.csv:1" in p.stderr, "perf samples under --strict: exit 1")
            p = run(["dataset", "build"] + dirs + ["-o", out, "--rejects", dl])
            dead = open(dl).read().splitlines()
            check(p.returncode == 0 and len(dead) == 2 and all("<<<<<<< HEAD" in x for x in dead),
                  "perf samples: 2 dead letters, the conflict markers")
        else:
            print("note: shared perf samples absent; their strict/dead-letter checks skipped")

        # usage errors
        check(run(["dataset"]).returncode == 2, "no subcommand: exit 2")
        check(run(["dataset", "build", tmp]).returncode == 2, "build without -o: exit 2")
        check(run(["dataset", "frobnicate"]).returncode == 2, "unknown subcommand: exit 2")
        check(run(["dataset", "build", "--bogus", tmp, "-o", out]).returncode == 2, "unknown option: exit 2")
        check(run(["dataset", "pcm", tmp, "-o", out, "--utc-offset", "x"]).returncode == 2, "bad --utc-offset: exit 2")
        h = run(["dataset", "--help"])
        check(h.returncode == 0 and "--vnf-order" in h.stdout and "example" in h.stdout, "--help teaches")

        # inspect vs pandas
        csvp = os.path.join(tmp, "insp.csv")
        with open(csvp, "w") as f:
            f.write('num,withempty,text,mixed,const,allempty\n')
            rng = random.Random(3)
            for i in range(101):
                f.write("%.6f,%s,%s,%s,7,\n" % (rng.random() * 100 - 50, "" if i % 7 == 0 else str(i),
                                                "t%d" % i, "x" if i % 10 == 0 else "%d" % (i * 3)))
        p = run(["dataset", "inspect", csvp, "--json"])
        check(p.returncode == 0, "inspect --json runs")
        js = json.loads(p.stdout)
        ref = pd.read_csv(csvp, float_precision="round_trip")
        check(js["rows"] == len(ref) and js["columns"] == len(ref.columns), "inspect rows/columns")
        cs = {c["name"]: c for c in js["column_stats"]}
        for c in ref.columns:
            s = ref[c]
            raw = s.astype(str).where(s.notna(), "")
            numeric = pd.to_numeric(s, errors="coerce")
            n_empty = int(s.isna().sum())
            n_text = int((numeric.isna() & s.notna()).sum())
            check(cs[c]["empty"] == n_empty and cs[c]["non_numeric"] == n_text,
                  "inspect %s: empty %d, non-numeric %d" % (c, n_empty, n_text))
            vals = numeric.dropna()
            if len(vals):
                check(cs[c]["min"] == vals.min() and cs[c]["max"] == vals.max() and
                      cs[c]["median"] == float(np.median(vals)), "inspect %s: min/median/max" % c)
            typ = "empty" if len(vals) == 0 and n_text == 0 else "text" if len(vals) == 0 else \
                "mixed" if n_text else "numeric"
            check(cs[c]["type"] == typ, "inspect %s: type %s" % (c, typ))
            del raw
        check(js["constant_columns"] == ["const"], "inspect: constant columns")
        p = run(["dataset", "inspect", csvp])
        check(p.returncode == 0 and "constant columns: 1" in p.stdout and "mixed" in p.stdout, "inspect text output")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
