"""Resource probe: its CSV agrees with /proc read here by Python.

The helper runs two threads registered as components alpha (burns 0.3 s CPU) and beta
(0.6 s), samples, prints its pid and tids, and waits; we then read
/proc/<pid>/task/<tid>/stat and /proc/<pid>/statm ourselves."""
import os
import subprocess
import sys
import tempfile

import pandas as pd

helper = os.path.join(os.environ.get("DRST_TESTBIN", ""), "obs_helper")
if not os.path.exists(helper):
    print(f"FAIL: {helper} not built")
    sys.exit(1)
tmp = tempfile.mkdtemp(prefix="drst_probe_")
csv = os.path.join(tmp, "resources.csv")
fails = []


def check(cond, msg):
    if not cond:
        fails.append(msg)
        print("FAIL:", msg)


def cpu_of(path):
    with open(path) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


p = subprocess.Popen([helper, "probe", csv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     text=True)
try:
    line = p.stdout.readline().split()
    check(line and line[0] == "READY", f"helper said {line}")
    pid, ta, tb = int(line[1]), int(line[2]), int(line[3])
    ref = {"alpha": cpu_of(f"/proc/{pid}/task/{ta}/stat"),
           "beta": cpu_of(f"/proc/{pid}/task/{tb}/stat"),
           "process": cpu_of(f"/proc/{pid}/stat")}
    with open(f"/proc/{pid}/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    d = pd.read_csv(csv)
    check(list(d.columns) == ["t", "component", "cpu_s", "rss_bytes"], f"header {d.columns}")
    check(set(d.component) >= {"alpha", "beta", "process"}, f"components {set(d.component)}")
    last = d.groupby("component").tail(1).set_index("component")
    # workers are idle once READY is printed: CPU equal to the tick
    for c in ["alpha", "beta"]:
        check(abs(last.loc[c, "cpu_s"] - ref[c]) <= 0.011,
              f"{c}: probe {last.loc[c, 'cpu_s']} vs /proc {ref[c]}")
    check(abs(last.loc["beta", "cpu_s"] - 0.6) < 0.1, "beta did not burn ~0.6 s")
    check(last.loc["process", "cpu_s"] <= ref["process"] + 0.011, "process CPU ahead of /proc")
    check(abs(last.loc["alpha", "rss_bytes"] - rss) <= 0.1 * rss, f"rss {last} vs {rss}")
    # CPU never goes backwards per component, timestamps increase
    for c, g in d.groupby("component"):
        check(g.cpu_s.is_monotonic_increasing, f"{c}: cpu_s decreases")
        check(g.t.is_monotonic_increasing, f"{c}: t decreases")
finally:
    p.stdin.write("\n")
    p.stdin.close()
    p.wait(timeout=10)
d = pd.read_csv(csv)
check(len(d) >= 6, "too few samples")
if fails:
    sys.exit(1)
print("ok")
