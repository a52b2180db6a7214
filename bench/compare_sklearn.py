"""Fit time and test score: nncore's estimators vs scikit-learn's, on scikit-learn's bundled data
sets, in a Pipeline with StandardScaler, default hyperparameters, interleaved in one process.

    python bench/compare_sklearn.py [--seeds 3] [--json out.json]

With the same random_state both libraries follow the same trajectory (the equivalence tests prove
it), so the scores agree and the ratio is the speed-up for the same model."""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np
import sklearn.neural_network as sk
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nncore

DATASETS = {
    "breast_cancer": (load_breast_cancer, "classifier", {}),
    "digits": (load_digits, "classifier", {}),
    "wine": (load_wine, "classifier", {}),
    "diabetes": (load_diabetes, "regressor", {"max_iter": 1000}),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    for name, (loader, kind, extra) in DATASETS.items():
        X, y = loader(return_X_y=True)
        classes = ((nncore.MLPClassifier, sk.MLPClassifier) if kind == "classifier"
                   else (nncore.MLPRegressor, sk.MLPRegressor))
        result = {"nncore": {"time": [], "score": []}, "sklearn": {"time": [], "score": []}}
        for seed in range(args.seeds):
            X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=seed)
            for key, cls in zip(("nncore", "sklearn"), classes):
                model = make_pipeline(StandardScaler(), cls(random_state=seed, **extra))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    start = time.perf_counter()
                    model.fit(X_tr, y_tr)
                    result[key]["time"].append(time.perf_counter() - start)
                result[key]["score"].append(model.score(X_te, y_te))
        row = {
            "dataset": name,
            "nncore_score": float(np.mean(result["nncore"]["score"])),
            "sklearn_score": float(np.mean(result["sklearn"]["score"])),
            "nncore_fit_s": statistics.median(result["nncore"]["time"]),
            "sklearn_fit_s": statistics.median(result["sklearn"]["time"]),
        }
        row["speedup"] = row["sklearn_fit_s"] / row["nncore_fit_s"]
        rows.append(row)
    print("| data set | score nncore | score scikit-learn | fit nncore | fit scikit-learn | "
          "scikit-learn / nncore |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['nncore_score']:.4f} | {r['sklearn_score']:.4f} | "
              f"{r['nncore_fit_s'] * 1e3:.0f} ms | {r['sklearn_fit_s'] * 1e3:.0f} ms | "
              f"{r['speedup']:.1f}× |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
