"""Per-epoch training time: nncore's C++ epoch vs a NumPy loop doing the same maths vs
scikit-learn's MLPRegressor.partial_fit, interleaved in one process so machine noise hits all
three alike. Float32, squared loss, plain SGD, ReLU hidden layers, one output.

    python bench/epoch_time.py            # tiny and small workloads
    python bench/epoch_time.py --all      # also medium and large (minutes on 2 cores)
    python bench/epoch_time.py --json out.json

Prints median epoch times and the ratios peer / nncore (higher = nncore faster)."""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np

import nncore

WORKLOADS = {  # name: (n, d, hidden, batch)
    "tiny": (8192, 16, (32, 32), 32),
    "small": (16384, 64, (128, 128), 64),
    "medium": (16384, 256, (512, 512), 256),
    "large": (8192, 784, (1024, 1024), 512),
}
LR = 1e-3


def numpy_epoch(Ws, bs, X, y, batch, rng):
    """The reference loop: per minibatch forward, squared loss, backward, SGD, in float32."""
    order = rng.permutation(X.shape[0])
    for start in range(0, X.shape[0], batch):
        idx = order[start : start + batch]
        acts = [X[idx]]
        for t, (W, b) in enumerate(zip(Ws, bs)):
            p = acts[-1] @ W + b
            acts.append(np.maximum(p, 0, out=p) if t < len(Ws) - 1 else p)
        delta = (acts[-1] - y[idx]) / np.float32(len(idx))
        for t in range(len(Ws) - 1, -1, -1):
            dW = acts[t].T @ delta
            db = delta.sum(axis=0)
            if t > 0:
                delta = (delta @ Ws[t].T) * (acts[t] > 0)
            Ws[t] -= LR * dW
            bs[t] -= LR * db


def run(name, repeats):
    n, d, hidden, batch = WORKLOADS[name]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.normal(size=(n, 1)).astype(np.float32)
    sizes = [d, *hidden, 1]
    net = nncore.Network(sizes, "relu", dtype="float32", random_state=0, n_threads=1)
    Ws = [W.copy() for W in net.coefs]
    bs = [b.copy() for b in net.intercepts]

    from sklearn.neural_network import MLPRegressor

    sk = MLPRegressor(hidden_layer_sizes=hidden, solver="sgd", momentum=0.0, batch_size=batch,
                      learning_rate_init=LR, random_state=0)
    times = {"nncore": [], "numpy": [], "sklearn": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats + 1):  # the first round warms up and is dropped
            t0 = time.perf_counter()
            net.train_epoch(X, y, learning_rate=LR, batch_size=batch, seed=0)
            t1 = time.perf_counter()
            numpy_epoch(Ws, bs, X, y, batch, rng)
            t2 = time.perf_counter()
            sk.partial_fit(X, y[:, 0])
            t3 = time.perf_counter()
            times["nncore"].append(t1 - t0)
            times["numpy"].append(t2 - t1)
            times["sklearn"].append(t3 - t2)
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    flops = 6 * n * sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) - 2 * n * d * hidden[0]
    return {
        "workload": name,
        "n": n, "d": d, "hidden": list(hidden), "batch": batch,
        "median_s": med,
        "nncore_gflops": flops / med["nncore"] / 1e9,
        "ratio_numpy": med["numpy"] / med["nncore"],
        "ratio_sklearn": med["sklearn"] / med["nncore"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--all", action="store_true", help="include medium and large")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()
    names = list(WORKLOADS) if args.all else ["tiny", "small"]
    results = [run(name, args.repeats) for name in names]
    print(f"nncore {nncore.__version__}, build {nncore.build_info()}, 1 process, float32 SGD")
    print("| workload | nncore epoch | NumPy loop | scikit-learn | NumPy / nncore | "
          "scikit-learn / nncore | nncore GFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        m = r["median_s"]
        print(f"| {r['workload']} | {m['nncore'] * 1e3:.1f} ms | {m['numpy'] * 1e3:.1f} ms | "
              f"{m['sklearn'] * 1e3:.1f} ms | {r['ratio_numpy']:.1f}× | "
              f"{r['ratio_sklearn']:.1f}× | {r['nncore_gflops']:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
