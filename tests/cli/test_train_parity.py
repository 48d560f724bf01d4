#!/usr/bin/env python3
"""Accuracy parity of `drst train` with scikit-learn on the same split of
DRST's combined.csv. drst writes its split (--save-split); the references are
fitted here, in the test, on exactly those rows:
  mlp   acc@0.2 >= StandardScaler + MLPRegressor((64,32)) (target standardized) - 0.01
  gbdt  acc@0.2 >= HistGradientBoostingRegressor - 0.01
  ridge predictions == StandardScaler + Ridge(alpha=1) predictions to 1e-4 relative
  knn   (k 5, mean) predictions == KNeighborsRegressor(5) on sign(x)log1p|x| divided by
        its training std, to 1e-6 relative on >= 99 % of rows (ties may order differently);
        knn (k 3, median) == the median of the same 3 neighbours, computed with numpy
Feature choice is recomputed independently: every column but the target,
input_rate, latency and the unnamed index, minus columns constant on the
training rows; rows with a missing value are the ones drst left out."""
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pandas as pd
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor, NearestNeighbors
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

warnings.filterwarnings("ignore")
BIN = os.environ.get("DRST_BIN", "drst")
DATA = os.path.join(os.environ.get("DRST_DATA", "../shared/data"), "drst", "combined.csv")
if not os.path.exists(DATA):
    print(f"skip: {DATA} not found (needs ../shared/data)")
    sys.exit(77)


def acc(p, y, tau=0.2):
    return float(np.mean(np.abs(p - y) / np.maximum(np.abs(y), 1e-9) <= tau))


fails = 0


def check(ok, msg):
    global fails
    print(("ok   " if ok else "FAIL ") + msg)
    if not ok:
        fails += 1


df = pd.read_csv(DATA)
with tempfile.TemporaryDirectory() as tmp:
    preds = {}
    split = None
    runs = {"ridge": [], "mlp": [], "gbdt": [], "knn": ["--k", "5", "--knn-agg", "mean"],
            "knn3": ["--k", "3"]}
    for name, extra in runs.items():
        fam = name.rstrip("0123456789")
        model = os.path.join(tmp, name + ".drst")
        sp = os.path.join(tmp, name + "_split.csv")
        pr = os.path.join(tmp, name + "_pred.csv")
        subprocess.run([BIN, "train", "--data", DATA, "--model", fam, "--split", "shuffled",
                        "--seed", "42", "--output", model, "--save-split", sp, "--quiet"] + extra,
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([BIN, "eval", "--model-file", model, "--data", DATA, "--predictions", pr],
                       check=True, stdout=subprocess.DEVNULL)
        s = pd.read_csv(sp)
        if split is None:
            split = s
        check(s.equals(split), f"{name}: same seed gives the same split")
        preds[name] = pd.read_csv(pr).set_index("row")["yhat"]

    tr = split.row[split.set == "train"].to_numpy()
    va = split.row[split.set == "val"].to_numpy()
    check(len(va) > 300 and len(tr) > 1000, f"split sizes train={len(tr)} val={len(va)}")
    feats = [c for c in df.columns
             if c not in ("output_rate", "input_rate", "latency") and not c.startswith("Unnamed")]
    used = df.loc[np.concatenate([tr, va])]
    check(not used[feats + ["output_rate"]].isna().any().any(), "drst used only complete rows")
    dropped = df.index.difference(used.index)
    check(df.loc[dropped, feats + ["output_rate"]].isna().any(axis=1).all(),
          f"the {len(dropped)} rows drst left out have missing values")
    keep = [c for c in feats if df.loc[tr, c].std(ddof=0) > 0]
    Xtr, Xva = df.loc[tr, keep].to_numpy(), df.loc[va, keep].to_numpy()
    ytr, yva = df.loc[tr, "output_rate"].to_numpy(), df.loc[va, "output_rate"].to_numpy()

    ridge = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(Xtr, ytr)
    ref = ridge.predict(df.loc[used.index, keep].to_numpy())
    ours = preds["ridge"].loc[used.index].to_numpy()
    rel = float(np.max(np.abs(ours - ref) / np.maximum(np.abs(ref), 1e-9)))
    check(rel <= 1e-4, f"ridge matches sklearn Ridge: max relative difference {rel:.3g}")

    mlp = TransformedTargetRegressor(
        make_pipeline(StandardScaler(), MLPRegressor((64, 32), random_state=0, max_iter=500)),
        transformer=StandardScaler()).fit(Xtr, ytr)
    a_ref, a_ours = acc(mlp.predict(Xva), yva), acc(preds["mlp"].loc[va].to_numpy(), yva)
    check(a_ours >= a_ref - 0.01, f"mlp acc@0.2 {a_ours:.4f} vs sklearn MLPRegressor {a_ref:.4f}")

    hgb = HistGradientBoostingRegressor(random_state=0).fit(Xtr, ytr)
    a_ref, a_ours = acc(hgb.predict(Xva), yva), acc(preds["gbdt"].loc[va].to_numpy(), yva)
    check(a_ours >= a_ref - 0.01,
          f"gbdt acc@0.2 {a_ours:.4f} vs sklearn HistGradientBoosting {a_ref:.4f}")

    def slog(a):
        return np.sign(a) * np.log1p(np.abs(a))

    Ltr = slog(Xtr)
    sd = Ltr.std(axis=0)
    sd[sd == 0] = 1
    Lall = slog(df.loc[used.index, keep].to_numpy()) / sd
    knn = KNeighborsRegressor(n_neighbors=5).fit(Ltr / sd, ytr)
    ref = knn.predict(Lall)
    ours = preds["knn"].loc[used.index].to_numpy()
    same = np.abs(ours - ref) <= 1e-6 * np.maximum(np.abs(ref), 1e-9)
    check(same.mean() >= 0.99,
          f"knn k=5 mean matches sklearn KNeighborsRegressor on {same.mean():.4f} of rows")
    nn = NearestNeighbors(n_neighbors=3).fit(Ltr / sd)
    _, idx = nn.kneighbors(Lall)
    ref = np.median(ytr[idx], axis=1)
    ours = preds["knn3"].loc[used.index].to_numpy()
    same = np.abs(ours - ref) <= 1e-6 * np.maximum(np.abs(ref), 1e-9)
    check(same.mean() >= 0.99,
          f"knn k=3 median matches numpy median of sklearn's 3 neighbours on {same.mean():.4f}"
          " of rows")

sys.exit(1 if fails else 0)
