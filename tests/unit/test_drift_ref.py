# Independent references for tests/unit/test_drift.c (numpy + scipy), run by
# that test with /usr/bin/python3 ($DRST_PYTHON). Not a test on its own.
import sys
import numpy as np


def jsd(d):
    from scipy.spatial.distance import jensenshannon
    meta = np.loadtxt(d + "/meta.txt", ndmin=1)
    F, B, alpha = int(meta[0]), int(meta[1]), float(meta[2])
    exp = np.loadtxt(d + "/exp.txt", ndmin=2)
    base = np.loadtxt(d + "/base.txt", ndmin=2)
    win = np.loadtxt(d + "/win.txt", ndmin=2)
    worst = 0.0
    for f in range(F):
        lo, invw, ours = exp[f, 0], exp[f, 1], exp[f, 2]
        bc_ours, wc_ours = exp[f, 3:3 + B], exp[f, 3 + B:3 + 2 * B]

        def hist(col):
            col = col[~np.isnan(col)]
            t = (col - lo) * invw
            idx = np.where(t >= 0, np.minimum(np.floor(np.where(t >= 0, t, 0)), B - 1), 0).astype(int)
            return np.bincount(idx, minlength=B).astype(float)

        bc, wc = hist(base[:, f]), hist(win[:, f])
        if not np.array_equal(bc, bc_ours) or not np.array_equal(wc, wc_ours):
            print("FAIL feature %d: histograms differ\n base %s\n ours %s\n win %s\n ours %s"
                  % (f, bc, bc_ours, wc, wc_ours))
            return 1
        if bc.sum() == 0 or wc.sum() == 0:
            ref = 0.0
        else:
            ref = jensenshannon(bc + alpha, wc + alpha, base=2) ** 2
        worst = max(worst, abs(ref - ours))
        print("feature %d: scipy %.12f ours %.12f" % (f, ref, ours))
        if abs(ref - ours) > 1e-9:
            print("FAIL feature %d: scipy %.15g ours %.15g" % (f, ref, ours))
            return 1
    print("PASS max |diff| %.3g" % worst)
    return 0


def ph(path, delta, lam, minn):
    x = np.loadtxt(path, ndmin=1)
    n = 0; mean = 0.0; m = 0.0; mn = 0.0
    out = []
    for t, v in enumerate(x, 1):
        n += 1
        mean += (v - mean) / n
        m += v - mean - delta
        mn = min(mn, m)
        if n >= minn and m - mn > lam:
            out.append(t)
            n = 0; mean = 0.0; m = 0.0; mn = 0.0
    print(" ".join(str(t) for t in out) if out else "none")
    return 0


def adwin(path, delta, minsub, clock):
    # Exact ADWIN: every split point of the whole window, same bound.
    x = np.loadtxt(path, ndmin=1)
    for t in range(1, len(x) + 1):
        if t % clock:
            continue
        w = x[:t]
        n = float(t)
        if t < 2 * minsub or t < 3:
            continue
        var = w.var()
        dd = np.log(2.0 * np.log(n) / delta)
        k = np.arange(minsub, t - minsub + 1)
        c = np.cumsum(w)
        s0 = c[k - 1]
        n0 = k.astype(float)
        n1 = n - n0
        u0 = s0 / n0
        u1 = (c[-1] - s0) / n1
        kk = 1.0 / n0 + 1.0 / n1
        eps = np.sqrt(2.0 * var * kk * dd) + 2.0 / 3.0 * dd * kk
        if np.any(np.abs(u0 - u1) > eps):
            print(t)
            return 0
    print("none")
    return 0


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "jsd":
        sys.exit(jsd(a[2]))
    if a[1] == "ph":
        sys.exit(ph(a[2], float(a[3]), float(a[4]), int(a[5])))
    if a[1] == "adwin":
        sys.exit(adwin(a[2], float(a[3]), int(a[4]), int(a[5])))
    sys.exit(2)
