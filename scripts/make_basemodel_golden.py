#!/usr/bin/python3
"""Reference values for the rmkit basemodel elastic-net selector, from scikit-learn.

Writes tests/data/basemodel/enet_golden.json: a fixed small problem (seeded), the coefficients of
the selector pipeline (StandardScaler -> PolynomialFeatures(include_bias=False) -> StandardScaler ->
ElasticNet) for several (alpha, l1_ratio, degree), and the grid point that K-fold CV with given folds
selects (lowest mean fold MSE, ties to the first grid point in the order degree ascending, alpha
descending, l1_ratio ascending). The C++ test tests/basemodel/test_basemodel_enet.cpp compares
against this file, so CI needs no Python.

    /usr/bin/python3 scripts/make_basemodel_golden.py   # Debian: apt-get install python3-sklearn
"""
import json
import os
import warnings

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "basemodel", "enet_golden.json")
MAX_ITER = 2_000_000
RIDGE_ITER = 200_000


def fit(X, y, degree, alpha, l1_ratio):
    # scikit-learn's duality gap degenerates to the primal objective when l1_ratio = 0 (it scales the
    # dual point by l1_reg / ||X^T R||_inf = 0), so a ridge fit never reports convergence: run it a
    # fixed number of sweeps and check it against the closed-form ridge solution instead.
    ridge = l1_ratio == 0
    p = make_pipeline(StandardScaler(), PolynomialFeatures(degree, include_bias=False), StandardScaler(),
                      ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-14, max_iter=RIDGE_ITER if ridge else MAX_ITER))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the l1_ratio=0 advice
        warnings.simplefilter("ignore" if ridge else "error", ConvergenceWarning)
        p.fit(X, y)
    if ridge:
        Z = p[:-1].transform(X)
        Zc, yc = Z - Z.mean(0), y - y.mean()
        exact = np.linalg.solve(Zc.T @ Zc / len(y) + alpha * np.eye(Z.shape[1]), Zc.T @ yc / len(y))
        assert np.max(np.abs(exact - p[-1].coef_)) < 1e-9 * max(1.0, np.max(np.abs(exact))), (degree, alpha)
    else:
        assert p[-1].n_iter_ < MAX_ITER
    return p


def main():
    rng = np.random.RandomState(20250515)
    n, names = 30, ["a", "b", "c"]
    X = rng.normal(size=(n, 3)) * [1.0, 3.0, 0.5] + [0.0, 50.0, 2.0]
    z = (X - X.mean(0)) / X.std(0)
    y = 70 + 4 * z[:, 0] - 2 * z[:, 1] + 1.5 * z[:, 0] * z[:, 2] + 0.8 * z[:, 1] ** 2 + rng.normal(scale=1.0, size=n)
    fits = []
    for degree, alpha, l1 in [(1, 0.1, 0.5), (1, 0.01, 1.0), (2, 0.1, 0.25), (2, 0.01, 0.75), (2, 0.001, 0.0),
                              (3, 0.1, 1.0), (3, 0.01, 0.5), (3, 0.001, 0.25)]:
        p = fit(X, y, degree, alpha, l1)
        fits.append({"degree": degree, "alpha": alpha, "l1_ratio": l1,
                     "terms": [t.replace("x0", "a").replace("x1", "b").replace("x2", "c")
                               for t in p[1].get_feature_names_out()],
                     "intercept": float(p[-1].intercept_), "coef": [float(c) for c in p[-1].coef_],
                     "predictions": [float(v) for v in p.predict(X)]})
    folds = [i % 5 for i in range(n)]
    grid = [(d, a, l) for d in (1, 2, 3) for a in (0.1, 0.01, 0.001, 0.0001) for l in (0, 0.25, 0.5, 0.75, 1)]
    mse = []
    for d, a, l in grid:
        errs = []
        for f in range(5):
            tr = [i for i in range(n) if folds[i] != f]
            te = [i for i in range(n) if folds[i] == f]
            p = fit(X[tr], y[tr], d, a, l)
            errs.append(float(np.mean((p.predict(X[te]) - y[te]) ** 2)))
        mse.append(float(np.mean(errs)))
    best = int(np.argmin(mse))  # the first minimum = the first in grid order
    out = {"generator": "scripts/make_basemodel_golden.py", "sklearn": sklearn.__version__,
           "features": names, "X": X.tolist(), "y": y.tolist(), "fits": fits,
           "cv": {"folds": folds, "grid": [{"degree": d, "alpha": a, "l1_ratio": l} for d, a, l in grid],
                  "mse": mse, "best": best}}
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", OUT, "best", grid[best], "mse", mse[best])


def shared_correlations():
    """Correlations of a few benchmarks with the RewardBench score on the shared tables (scipy)."""
    import csv
    import scipy
    import scipy.stats as st
    assets = os.environ.get("RMKIT_ASSETS", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "assets"))

    def read(name):
        with open(os.path.join(assets, "basemodel", name)) as f:
            return {r["model"]: r for r in csv.DictReader(l for l in f if not l.startswith("#"))}

    rm, v2, v1 = read("rm_scores_regression.csv"), read("open_llm_leaderboard_v2.csv"), read("open_llm_leaderboard_v1.csv")
    out = {"generator": "scripts/make_basemodel_golden.py", "scipy": scipy.__version__, "target": "score", "features": {}}
    for table, feats in ((v2, ["ifeval", "bbh", "mmlu_pro"]), (v1, ["mmlu"])):
        names = [n for n in rm if n in table]  # pairwise complete, in the score table's order
        for f in feats:
            x = [float(table[n][f]) for n in names]
            y = [float(rm[n]["score"]) for n in names]
            r, s, k = st.pearsonr(x, y), st.spearmanr(x, y), st.kendalltau(x, y)
            out["features"][f] = {"n": len(names), "pearson": float(r[0]), "pearson_p": float(r[1]),
                                  "spearman": float(s[0]), "spearman_p": float(s[1]), "kendall": float(k[0])}
    path = os.path.join(os.path.dirname(OUT), "shared_correlations_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    shared_correlations()
    main()
