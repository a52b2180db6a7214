"""Sparse input: nncore and scikit-learn fitting and predicting the same CSR matrix, side by side.

    python bench/sparse.py                 # 2,000 × 200,000, 200 stored values a row, 3 rounds
    python bench/sparse.py --quick         # 1 round
    python bench/sparse.py --rows 2000 --cols 200000 --per-row 200 --hidden 100 --epochs 5

Each fit runs in a process of its own (the tools alternate, round after round), so its peak
resident memory is its own: reported above the memory the process held once the data existed.
Both fit MLPClassifier(hidden_layer_sizes=(hidden,), solver='adam', batch_size=200) for `epochs`
epochs from the same seed on the same rows (a binary target), float64, one thread for nncore
(scikit-learn's products use NumPy's BLAS threads; OMP/OPENBLAS_NUM_THREADS=1 here, so one
each). The floor: per step both must touch the first layer's whole weight slab (the L2 term and
Adam update every weight), so an epoch costs at least steps × (a few passes over cols × hidden
float64 values) of memory traffic — reported as the slab's size, with the arithmetic of the sparse
products (2 · stored values · hidden, forward and backward).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, warnings
import numpy as np, scipy.sparse as sp
rows, cols, per_row, hidden, epochs, tool = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
indices = np.concatenate([np.sort(rng.choice(cols, per_row, replace=False)) for _ in range(rows)])
X = sp.csr_matrix((rng.normal(size=rows * per_row), indices,
                   np.arange(0, rows * per_row + 1, per_row)), shape=(rows, cols))
y = (np.asarray(X[:, :cols // 2].sum(axis=1)).ravel() > 0).astype(int)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if tool == "nncore":
    import nncore
    est = nncore.MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=epochs, batch_size=200,
                               random_state=0, n_threads=1)
else:
    from sklearn.neural_network import MLPClassifier
    est = MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=epochs, batch_size=200,
                        random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    est.fit(X, y)
    fit = time.perf_counter() - started
started = time.perf_counter()
proba = est.predict_proba(X)
predict = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"fit": fit, "predict": predict, "peak_mb": (peak - before) / 1024,
                  "loss": float(est.loss_), "train_accuracy": float(est.score(X, y))}))
"""


def run(tool, args):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    spec = json.dumps([args.rows, args.cols, args.per_row, args.hidden, args.epochs, tool])
    out = subprocess.run([sys.executable, "-c", CHILD, spec], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--cols", type=int, default=200_000)
    parser.add_argument("--per-row", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one round")
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    results = {"nncore": [], "scikit-learn": []}
    for _ in range(rounds):
        for tool in results:
            results[tool].append(run(tool, args))
    stored = args.rows * args.per_row
    slab_mb = args.cols * args.hidden * 8 / 2**20
    steps = args.epochs * -(-args.rows // 200)
    print(f"{args.rows} × {args.cols} CSR, {args.per_row} stored values a row "
          f"({stored * 12 / 2**20:.0f} MB sparse, {args.rows * args.cols * 8 / 2**30:.1f} GB "
          f"dense), hidden {args.hidden}, {args.epochs} epochs of batch 200 ({steps} steps), "
          f"float64, {rounds} round(s)")
    print(f"first-layer weight slab {slab_mb:.0f} MB (touched by every step); sparse products "
          f"{4 * stored * args.hidden * args.epochs / 1e9:.2f} GFLOP in all")
    print(f"{'tool':14} {'fit s':>8} {'predict s':>10} {'peak MB':>9} {'final loss':>11}")
    medians = {}
    for tool, rows in results.items():
        m = {k: statistics.median(r[k] for r in rows) for k in ("fit", "predict", "peak_mb")}
        medians[tool] = m
        print(f"{tool:14} {m['fit']:8.2f} {m['predict']:10.3f} {m['peak_mb']:9.0f} "
              f"{rows[-1]['loss']:11.5f}")
    a, b = medians["nncore"], medians["scikit-learn"]
    print(f"nncore ÷ scikit-learn: fit time {a['fit'] / b['fit']:.2f}, predict time "
          f"{a['predict'] / b['predict']:.2f}, peak memory {a['peak_mb'] / b['peak_mb']:.2f}")


if __name__ == "__main__":
    main()
