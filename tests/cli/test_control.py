#!/usr/bin/env python3
"""drst monitor + drst retrain end to end on DRST's real stream.

1. drst train publishes a ridge model of combined.csv to a fresh store;
2. the stage2 A-B-C stream is written as JSON Lines by pandas (independent of
   drst produce) and drst monitor consumes it with the training data as
   baseline: it must trigger, write state/retrain/request.json (pending) and
   freeze a window; the frozen window must equal, value for value, the W
   stream rows that precede the trigger record in the CSV (checked with
   pandas, not with drst);
3. drst retrain --once handles the request: a new immutable release, the
   request marked done, the lease gone, permutation importance stored; its
   reported held-back accuracy is recomputed here from the window rows with
   numpy on predictions of `drst eval`.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import pandas as pd
except ImportError:
    print("skip: pandas/numpy missing", file=sys.stderr)
    sys.exit(77)

BIN = os.environ.get("DRST_BIN", "drst")
DATA = os.environ.get("DRST_DATA", "../shared/data")
COMBINED = os.path.join(DATA, "drst", "combined.csv")
STAGE2 = os.path.join(DATA, "drst", "stage2_resource_stimulus_A-B-C.csv")
if not (os.path.exists(COMBINED) and os.path.exists(STAGE2)):
    print("skip: %s or %s not found (../shared/data absent)" % (COMBINED, STAGE2), file=sys.stderr)
    sys.exit(77)


def run(*args, check=True):
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        print(p.stdout, p.stderr, file=sys.stderr)
        raise SystemExit("FAIL: drst %s exited %d" % (" ".join(args), p.returncode))
    return p


def main():
    tmp = tempfile.mkdtemp(prefix="drst_test_control_")
    try:
        store = os.path.join(tmp, "store")
        run("train", "--data", COMBINED, "--model", "ridge", "--store", store, "--quiet")

        # the stream, written independently of drst
        s = pd.read_csv(STAGE2)
        feats = [c for c in s.columns if c not in ("Unnamed: 0", "input_rate", "output_rate", "latency")]
        stream = os.path.join(tmp, "stream.jsonl")
        with open(stream, "w") as f:
            for i in range(len(s)):
                rec = {"seq": i, "features": {c: float(s.iat[i, s.columns.get_loc(c)]) for c in feats},
                       "label": float(s.at[i, "output_rate"])}
                f.write(json.dumps(rec) + "\n")

        W = 300
        p = run("monitor", "--store", store, "--input", stream, "--baseline", COMBINED,
                "--window", str(W), "--stride", "50", "--idle-ms", "1000")
        events = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        assert events, "no trigger on the A-B-C stream: %s" % p.stderr
        ev = events[0]
        # single shot: while the request is pending nothing else is requested
        assert len(events) == 1, "more than one request while one was pending: %s" % events
        req = json.load(open(os.path.join(store, "state/retrain/request.json")))
        assert req["status"] == "pending" and req["id"] == ev["request"], req
        assert req["tier"] == ev["tier"] and 1 <= req["tier"] <= 3
        at = req["at"]  # records seen at the trigger, the trigger record included

        # the frozen window = the W rows before and including record `at`
        win = pd.read_csv(os.path.join(store, req["window"]))
        model_feats = [c for c in win.columns if c != "output_rate"]
        n = min(at, W)  # an early (error) trigger freezes a partial window
        ref = s.iloc[at - n:at]
        assert len(win) == n, (len(win), n)
        assert np.allclose(win["output_rate"].to_numpy(), ref["output_rate"].to_numpy(), rtol=0, atol=0)
        assert np.allclose(win[model_feats].to_numpy(), ref[model_feats].to_numpy(), rtol=1e-15)
        # the evidence names drifted features with their JSD
        assert set(req["drifted"]) <= set(model_feats) and len(req["drifted"]) == req["n_drifted"]
        mon_state = json.load(open(os.path.join(store, "state/monitor.json")))
        assert mon_state["seen"] == len(s), mon_state["seen"]

        latest0 = open(os.path.join(store, "models/latest")).read().split("\n")[0]
        p = run("retrain", "--store", store, "--once", "--families", "ridge,gbdt", "--trees", "60",
                "--base", COMBINED)
        res = json.loads(p.stdout.strip().splitlines()[-1])
        req = json.load(open(os.path.join(store, "state/retrain/request.json")))
        assert req["status"] == "done" and req["attempts"] == 1, req
        assert res["release"] and os.path.exists(os.path.join(store, res["release"]))
        assert not os.path.exists(os.path.join(store, "state/locks/retrain"))
        assert res["importance"] and os.path.exists(os.path.join(store, res["importance"]))
        latest1 = open(os.path.join(store, "models/latest")).read().split("\n")[0]
        if res["latest_moved"]:
            assert latest1 == res["release"] and latest1 != latest0
        else:
            assert latest1 == latest0

        # the gate's serving-model accuracy on the held-back rows, recomputed:
        # the last 20% of the window (the serving model never saw any stream row)
        nval = int(n * 0.2 + 0.5)
        val = win.iloc[n - nval:]
        vcsv = os.path.join(tmp, "val.csv")
        val.to_csv(vcsv, index=False)
        pred = os.path.join(tmp, "pred.csv")
        run("eval", "--model", latest0, "--store", store, "--data", vcsv, "--predictions", pred,
            check=True)
        yh = pd.read_csv(pred)
        col = "yhat"
        y = val["output_rate"].to_numpy()
        e = np.abs(yh[col].to_numpy() - y) / np.maximum(np.abs(y), 1e-9)
        acc20 = float(np.mean(e <= 0.2))
        assert abs(acc20 - res["cur_acc20"]) < 1e-9, (acc20, res["cur_acc20"])

        # nothing left to do
        p = run("retrain", "--store", store, "--once")
        assert "nothing to do" in p.stderr
        print("ok: trigger at record %d tier %d (%s), retrain %s in %.2f s, gate %s" %
              (at, req["tier"], ev["source"], res["best"], res["wall_s"], res["latest_moved"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
