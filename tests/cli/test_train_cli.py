#!/usr/bin/env python3
"""drst train / eval / models end to end: eval metrics checked against numpy
on eval's own predictions, the store layout and pointers, promote/rollback,
corrupt releases, bad inputs (non-numeric cells, NaN/Inf, missing target,
one row, constant features) and --help."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

BIN = os.environ.get("DRST_BIN", "drst")
fails = 0


def check(ok, msg):
    global fails
    print(("ok   " if ok else "FAIL ") + msg)
    if not ok:
        fails += 1


def run(*args, ok=True):
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        print(p.stdout, p.stderr)
        raise SystemExit(f"FAIL drst {' '.join(args)} exited {p.returncode}")
    return p


rng = np.random.default_rng(7)
n = 400
a, b, c = rng.uniform(0, 10, n), rng.uniform(-2, 2, n), rng.normal(0, 1, n)
df = pd.DataFrame({"input_rate": a * 100, "output_rate": 50 + 3 * a - 2 * b + 0.5 * c + rng.normal(0, 2, n),
                   "latency": rng.uniform(0, 1, n), "a": a, "b": b, "c": c})

with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "d.csv")
    df.to_csv(data)  # with the unnamed pandas index column
    store = os.path.join(tmp, "store")

    # help teaches every option with an example
    for cmd in ("train", "eval", "models"):
        p = run(cmd, "--help")
        check("example" in p.stdout and "--store" in p.stdout, f"{cmd} --help has options and an example")
    check(run("train", "--bogus", ok=False).returncode == 2, "unknown option is a usage error (2)")
    check(run("train", "--data", data, ok=False).returncode == 2, "train without --store/--output is a usage error")

    # first training publishes baseline and latest; the key is printed
    p = run("train", "--data", data, "--model", "ridge", "--store", store)
    k1 = p.stdout.strip()
    check(k1.startswith("models/model_") and os.path.exists(os.path.join(store, k1)), f"train prints the key {k1}")
    lat = open(os.path.join(store, "models/latest")).read().split("\n")
    check(lat[0] == k1 and lat[1].startswith("models/metrics_") and lat[2] == "", "latest is a two-line pointer")
    check(open(os.path.join(store, "models/baseline")).read().split("\n")[0] == k1, "first training sets the baseline")
    met = json.load(open(os.path.join(store, lat[1])))
    check(met["family"] == "ridge" and met["features"] == ["a", "b", "c"], f"metrics json: {met['features']}")
    check("acc@0.2" in met["validation"], "metrics json holds validation metrics")

    # eval --json against numpy on eval's own predictions
    pred = os.path.join(tmp, "pred.csv")
    p = run("eval", "--store", store, "--model", "latest", "--data", data, "--json", "--predictions", pred)
    j = json.loads(p.stdout)
    pr = pd.read_csv(pred)
    y, yh = df["output_rate"].to_numpy(), pr["yhat"].to_numpy()
    e = np.abs(yh - y) / np.maximum(np.abs(y), 1e-9)
    ref = {"acc@0.05": np.mean(e <= 0.05), "acc@0.1": np.mean(e <= 0.1), "acc@0.2": np.mean(e <= 0.2),
           "mae": np.mean(np.abs(yh - y)), "rmse": np.sqrt(np.mean((yh - y) ** 2)),
           "p50": np.quantile(e, 0.5), "p90": np.quantile(e, 0.9), "p99": np.quantile(e, 0.99)}
    for k, v in ref.items():
        check(abs(j[k] - v) <= 1e-8 * max(1, abs(v)), f"eval {k} {j[k]:.6g} == numpy {v:.6g}")
    check(j["rows"] == n, "eval rows")
    # a linear target: ridge predictions vs least squares
    X = np.c_[np.ones(n), a, b, c]
    check(np.max(np.abs(yh - X @ np.linalg.lstsq(X, y, rcond=None)[0])) < 0.5, "ridge close to least squares")

    # more releases; baseline stays; list/show/promote/rollback
    k2 = run("train", "--data", data, "--model", "tree", "--store", store).stdout.strip()
    k3 = run("train", "--data", data, "--model", "mlp", "--epochs", "20", "--store", store).stdout.strip()
    check(open(os.path.join(store, "models/baseline")).read().split("\n")[0] == k1, "later trainings keep the baseline")
    lst = run("models", "list", "--store", store).stdout
    check(all(k in lst for k in (k1, k2, k3)) and "latest" in lst and "baseline" in lst, "models list shows releases and pointers")
    check("mlp" in run("models", "show", "latest", "--store", store).stdout, "models show latest")
    run("models", "rollback", "--store", store)
    check(open(os.path.join(store, "models/latest")).read().split("\n")[0] == k2, "rollback restores the previous release")
    run("models", "promote", k3, "--store", store)
    check(open(os.path.join(store, "models/latest")).read().split("\n")[0] == k3, "promote moves latest")
    run("models", "rollback", "--store", store)
    run("models", "rollback", "--store", store)
    check(open(os.path.join(store, "models/latest")).read().split("\n")[0] == k1, "two rollbacks go two releases back")
    check(run("models", "rollback", "--store", store, ok=False).returncode == 1, "nothing left to roll back: exit 1")
    hist = open(os.path.join(store, "models/history")).read().splitlines()
    check(len(hist) == 8, f"history logs every pointer move ({len(hist)} lines)")

    # a corrupt release is refused with a clear error
    raw = bytearray(open(os.path.join(store, k2), "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    bad = os.path.join(tmp, "bad.drst")
    open(bad, "wb").write(raw)
    p = run("eval", "--model-file", bad, "--data", data, ok=False)
    check(p.returncode == 1 and "checksum" in p.stderr, "corrupt model refused: " + p.stderr.strip()[:80])
    open(bad, "wb").write(raw[:100])
    p = run("eval", "--model-file", bad, "--data", data, ok=False)
    check(p.returncode == 1 and "length" in p.stderr, "truncated model refused: " + p.stderr.strip()[:80])
    # schema mismatch: data without a feature column
    p = run("eval", "--store", store, "--data", os.path.join(tmp, "nob.csv") if df.drop(columns=["b"]).to_csv(os.path.join(tmp, "nob.csv")) is None else "", ok=False)
    check(p.returncode == 1 and "'b'" in p.stderr, "missing feature column refused: " + p.stderr.strip()[:80])

    # bad inputs: clear errors or reported drops, never a crash or NaN model
    def bad_csv(name, text):
        path = os.path.join(tmp, name)
        open(path, "w").write(text)
        return path

    txt = "a,b,output_rate\n1,2,3\n2,x,5\n3,nan,7\n4,inf,9\n5,1,11\n6,3,13\n7,2,15\n8,1,17\n9,0,19\n10,5,21\n"
    for fam in ("mlp", "ridge", "tree", "gbdt"):
        out = os.path.join(tmp, f"bad_{fam}.drst")
        p = run("train", "--data", bad_csv("cells.csv", txt), "--model", fam, "--output", out, "--epochs", "5", "--trees", "5", ok=False)
        check(p.returncode == 0 and "3 row(s)" in p.stderr, f"{fam}: non-numeric/NaN/Inf rows dropped and reported")
        if p.returncode == 0:
            pp = run("eval", "--model-file", out, "--data", bad_csv("cells.csv", txt), "--json")
            check(json.loads(pp.stdout)["mae"] is not None, f"{fam}: model predicts finite values")
    p = run("train", "--data", bad_csv("notarget.csv", "a,b\n1,2\n3,4\n"), "--output", os.path.join(tmp, "x"), ok=False)
    check(p.returncode == 1 and "output_rate" in p.stderr, "missing target: " + p.stderr.strip()[:70])
    p = run("train", "--data", bad_csv("one.csv", "a,output_rate\n1,2\n"), "--output", os.path.join(tmp, "x"), ok=False)
    check(p.returncode == 1 and "row" in p.stderr, "single row: " + p.stderr.strip().splitlines()[-1][:70])
    p = run("train", "--data", bad_csv("const.csv", "a,b,output_rate\n1,2,3\n1,2,4\n1,2,5\n1,2,6\n"), "--output", os.path.join(tmp, "x"), ok=False)
    check(p.returncode == 1 and "constant" in p.stderr, "all-constant features: " + p.stderr.strip().splitlines()[-1][:70])
    p = run("train", "--data", bad_csv("empty.csv", ""), "--output", os.path.join(tmp, "x"), ok=False)
    check(p.returncode == 1, "empty file: exit 1")
    check(not os.path.exists(os.path.join(tmp, "x")), "no model file written on failure")

sys.exit(1 if fails else 0)
