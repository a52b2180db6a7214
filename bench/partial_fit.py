"""What one partial_fit call costs beside one epoch of fit, on bench/compare.py's "tiny"
workload (8,192 × 16, hidden (32, 32), batch 32, one thread, float32).

    python bench/partial_fit.py [--rounds 40 --repeats 5]

For MLPClassifier (binary labels) and MLPRegressor, solver 'adam' and 'sgd': the median
seconds of one epoch inside fit (timed between epoch ends by a callback, so fit's own per-epoch
bookkeeping counts) and of one partial_fit call over the whole set, measured alternately in one
process, and their ratio. A partial_fit call does what one epoch of fit does plus the checks
scikit-learn makes on every call (parameters, X, y, labels): the ratio is their cost."""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

import nncore

N, D, HIDDEN, BATCH = 8192, 16, (32, 32), 32


def data(classifier):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D)).astype(np.float32)
    y = (X @ (rng.normal(size=D) / np.sqrt(D))).astype(np.float32)
    return X, ((y > 0).astype(np.float32) if classifier else y)


def estimator(classifier, solver, **extra):
    cls = nncore.MLPClassifier if classifier else nncore.MLPRegressor
    return cls(hidden_layer_sizes=HIDDEN, solver=solver, batch_size=BATCH, n_threads=1,
               learning_rate_init=1e-3, random_state=0, alpha=0.0, **extra)


def fit_epochs(classifier, solver, epochs):
    X, y = data(classifier)
    ends = []
    est = estimator(classifier, solver, max_iter=epochs + 1, tol=0.0,
                    n_iter_no_change=float("inf"),
                    callbacks=[lambda est, record: ends.append(time.perf_counter())])
    est.fit(X, y)
    return [b - a for a, b in zip(ends[:-1], ends[1:])]


def partial_fit_calls(classifier, solver, calls):
    X, y = data(classifier)
    est = estimator(classifier, solver)
    kwargs = {"classes": [0.0, 1.0]} if classifier else {}
    est.partial_fit(X, y, **kwargs)  # the first call sets the model up: not timed
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        est.partial_fit(X, y)
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="epochs or calls per round")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print("| estimator | solver | fit, per epoch | partial_fit, per call | ratio |")
    print("|---|---|---|---|---|")
    for classifier in (True, False):
        for solver in ("adam", "sgd"):
            fit_times, call_times = [], []
            for _ in range(args.rounds):  # alternate often, so load changes hit both alike
                fit_times += fit_epochs(classifier, solver, args.repeats)
                call_times += partial_fit_calls(classifier, solver, args.repeats)
            fit_ms = 1e3 * statistics.median(fit_times)
            call_ms = 1e3 * statistics.median(call_times)
            name = "MLPClassifier" if classifier else "MLPRegressor"
            print(f"| {name} | {solver} | {fit_ms:.2f} ms | {call_ms:.2f} ms | "
                  f"{call_ms / fit_ms:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
