"""nncore against the tools users have, side by side on this machine.

    python bench/compare.py            # every workload, loss, optimiser, at 1 and 2 threads
    python bench/compare.py --quick    # tiny and small, squared loss, SGD+momentum, 1 thread
    python bench/compare.py --json results.json
    python bench/compare.py --dtype float64 --workloads tiny small medium --losses squared \
        --optimizers sgd --threads 1     # scikit-learn's default dtype, a chosen subset

Workloads (float32 unless --dtype float64, synthetic data, fixed seed, Linear+ReLU hidden layers,
one output):
tiny 8192×16 (32,32) batch 32; small 16384×64 (128,128) batch 64; medium 16384×256 (512,512)
batch 256; large 8192×784 (1024,1024) batch 512; each with squared and binary logistic loss,
each with SGD+momentum 0.9 and with Adam. An epoch is a fresh permutation, every minibatch,
forward, loss, backward, update. Every tool runs in its own process with its thread count set
(nncore n_threads, torch.set_num_threads, OPENBLAS/OMP/MKL_NUM_THREADS). nncore runs three ways:
the object API (Network.train_epoch), the estimator's partial_fit (one epoch per call) and the
estimator's fit (epochs timed end to end by a callback), and the ratio of the last two (what
partial_fit's per-call checks cost; bench/partial_fit.py measures it alone). The table shows the median epoch, GFLOP/s of the work actually needed (6·n·Σ fan_in·fan_out minus the input layer's
input gradient, 2·n·d·h1), each peer's time / nncore's, the machine's float32 GEMM ceiling
(best of NumPy's and Eigen's 1024³ product, same thread count), and nncore's peak RSS above the
data itself. PyTorch is optional: without it its column says so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

WORKLOADS = {  # name: (n, d, hidden, batch)
    "tiny": (8192, 16, (32, 32), 32),
    "small": (16384, 64, (128, 128), 64),
    "medium": (16384, 256, (512, 512), 256),
    "large": (8192, 784, (1024, 1024), 512),
}
TOOLS = ("nncore", "nncore-estimator", "nncore-fit", "pytorch", "scikit-learn", "numpy")
LR = {"sgd": 1e-3, "adam": 1e-4}


def flops(name):
    n, d, hidden, _ = WORKLOADS[name]
    sizes = [d, *hidden, 1]
    return 6 * n * sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) - 2 * n * d * hidden[0]


def data(name, loss, dtype="float32"):
    import numpy as np

    n, d, _, _ = WORKLOADS[name]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=d).astype(np.float32) / np.sqrt(d)
    y = (X @ w).astype(np.float32)
    if loss == "logistic":
        y = (y > 0).astype(np.float32)
    return X.astype(dtype), y.astype(dtype)


# ---- one tool, one configuration: runs in a worker process ------------------------------------
def epochs_nncore(name, loss, opt, threads, repeats, dtype="float32"):
    import nncore

    X, y = data(name, loss, dtype)
    n, d, hidden, batch = WORKLOADS[name]
    net = nncore.Network([d, *hidden, 1], "relu", "logistic" if loss == "logistic" else
                         "squared_error", dtype=dtype, random_state=0, n_threads=threads)
    optimizer = nncore.SGD(momentum=0.9) if opt == "sgd" else nncore.Adam()
    for epoch in range(repeats):
        start = time.perf_counter()
        net.train_epoch(X, y, batch_size=batch, learning_rate=LR[opt], seed=epoch,
                        optimizer=optimizer)
        yield time.perf_counter() - start


def _estimator(module, name, loss, opt, threads, **kwargs):
    n, d, hidden, batch = WORKLOADS[name]
    if module == "nncore":
        import nncore as lib

        extra = {"n_threads": threads}
    else:
        import sklearn.neural_network as lib

        extra = {}
    cls = lib.MLPClassifier if loss == "logistic" else lib.MLPRegressor
    return cls(hidden_layer_sizes=hidden, solver=opt, momentum=0.9, nesterovs_momentum=False,
               batch_size=batch, learning_rate_init=LR[opt], random_state=0, alpha=0.0,
               **extra, **kwargs)


def epochs_estimator(module, name, loss, opt, threads, repeats, dtype="float32"):
    """partial_fit: one epoch per call."""
    import warnings

    X, y = data(name, loss, dtype)
    est = _estimator(module, name, loss, opt, threads)
    kwargs = {"classes": [0.0, 1.0]} if loss == "logistic" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats):
            start = time.perf_counter()
            est.partial_fit(X, y, **kwargs)
            yield time.perf_counter() - start


def epochs_fit(name, loss, opt, threads, repeats, dtype="float32"):
    """nncore's fit: the epochs of one call, timed between epoch ends by a callback (so the
    estimator's per-epoch bookkeeping counts; the first epoch is not timed)."""
    import warnings

    X, y = data(name, loss, dtype)
    ends = []
    est = _estimator("nncore", name, loss, opt, threads, max_iter=repeats + 1, tol=0.0,
                     n_iter_no_change=float("inf"),
                     callbacks=[lambda est, record: ends.append(time.perf_counter())])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    yield from (b - a for a, b in zip(ends[:-1], ends[1:]))


def epochs_numpy(name, loss, opt, threads, repeats, dtype="float32"):
    import numpy as np

    X, y = data(name, loss, dtype)
    y = y[:, None]
    n, d, hidden, batch = WORKLOADS[name]
    sizes = [d, *hidden, 1]
    rng = np.random.default_rng(0)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(6 / (a + b))
        params += [rng.uniform(-bound, bound, (a, b)).astype(dtype), np.zeros(b, dtype)]
    state = [np.zeros_like(p) for p in params] + [np.zeros_like(p) for p in params]
    t = 0
    for epoch in range(repeats):
        start = time.perf_counter()
        order = rng.permutation(n)
        for s in range(0, n, batch):
            idx = order[s : s + batch]
            acts = [X[idx]]
            for i in range(0, len(params), 2):
                p = acts[-1] @ params[i] + params[i + 1]
                acts.append(np.maximum(p, 0, out=p) if i < len(params) - 2 else p)
            f = acts[-1]
            delta = (1 / (1 + np.exp(-f)) - y[idx]) if loss == "logistic" else f - y[idx]
            delta /= X.dtype.type(len(idx))
            grads = [None] * len(params)
            for i in range(len(params) - 2, -1, -2):
                grads[i] = acts[i // 2].T @ delta
                grads[i + 1] = delta.sum(axis=0)
                if i > 0:
                    delta = (delta @ params[i].T) * (acts[i // 2] > 0)
            t += 1
            for k, (p, g) in enumerate(zip(params, grads)):
                if opt == "sgd":
                    v = state[k]
                    v *= 0.9
                    v -= LR[opt] * g
                    p += v
                else:
                    m, v = state[k], state[len(params) + k]
                    m *= 0.9
                    m += 0.1 * g
                    v *= 0.999
                    v += 0.001 * g * g
                    lr_t = LR[opt] * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
                    p -= lr_t * m / (np.sqrt(v) + 1e-8)
        yield time.perf_counter() - start


def epochs_pytorch(name, loss, opt, threads, repeats, dtype="float32"):
    """threads None: PyTorch's default (one per core)."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    X, y = data(name, loss, dtype)
    X, y = torch.from_numpy(X), torch.from_numpy(y)[:, None]
    n, d, hidden, batch = WORKLOADS[name]
    sizes = [d, *hidden, 1]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(X.dtype)
    criterion = torch.nn.BCEWithLogitsLoss() if loss == "logistic" else torch.nn.MSELoss()
    optimizer = (torch.optim.SGD(model.parameters(), lr=LR[opt], momentum=0.9) if opt == "sgd"
                 else torch.optim.Adam(model.parameters(), lr=LR[opt]))
    for _ in range(repeats):
        start = time.perf_counter()
        for idx in torch.randperm(n).split(batch):
            optimizer.zero_grad(set_to_none=True)
            criterion(model(X[idx]), y[idx]).backward()
            optimizer.step()
        yield time.perf_counter() - start


def gemm_ceiling(threads, dtype="float32"):
    """Best 1024³ GEMM of NumPy and of nncore's core in `dtype`, GFLOP/s."""
    import numpy as np

    import nncore

    a = np.random.default_rng(0).normal(size=(1024, 1024)).astype(dtype)
    best_numpy = min(_timed(lambda: a @ a) for _ in range(7))
    net = nncore.Network([1024, 1024], "identity", dtype=dtype, n_threads=threads)
    best_eigen = min(_timed(lambda: net._core.forward(a)) for _ in range(7))
    return 2 * 1024**3 / min(best_numpy, best_eigen) / 1e9


def _timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def worker(args):
    import resource

    import numpy as np

    tool, name, loss, opt, threads, dtype = args.worker
    threads = int(threads)
    # the median of 5 timed epochs (the first is a warm-up) for every tool: this shared machine
    # has bursts of noise that a median of 3 does not absorb
    repeats = 6
    if tool == "ceiling":
        print(json.dumps({"gflops": gemm_ceiling(threads, dtype)}))
        return
    # Baseline: the data and the tool's imports, before any training state exists.
    X, _ = data(name, loss, dtype)
    del X
    __import__({"pytorch": "torch", "scikit-learn": "sklearn.neural_network", "numpy": "numpy"}
               .get(tool, "nncore"))
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    runner = {"nncore": epochs_nncore, "numpy": epochs_numpy, "pytorch": epochs_pytorch,
              "nncore-estimator": lambda *a: epochs_estimator("nncore", *a),
              "nncore-fit": lambda *a: epochs_fit(*a),
              "scikit-learn": lambda *a: epochs_estimator("sklearn", *a)}[tool]
    times = list(runner(name, loss, opt, threads, repeats, dtype))
    if tool != "nncore-fit":
        times = times[1:]  # fit's list starts after its first epoch already
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": statistics.median(times), "rss_mb": peak / 1024,
                      "extra_rss_mb": (peak - baseline) / 1024, "numpy": np.__version__}))


def measure(tool, name, loss, opt, threads, dtype="float32"):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env.pop("OPENBLAS_CORETYPE", None)  # let a current OpenBLAS pick its fastest kernel
    env.pop("OPENBLAS_L2_SIZE", None)
    result = subprocess.run([sys.executable, __file__, "--worker", tool, name, loss, opt,
                             str(threads), dtype], capture_output=True, text=True, env=env,
                            timeout=1800)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": last}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="of the data, every tool's model and the GEMM ceiling")
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS))
    parser.add_argument("--losses", nargs="+", choices=["squared", "logistic"])
    parser.add_argument("--optimizers", nargs="+", choices=["sgd", "adam"])
    parser.add_argument("--threads", nargs="+", type=int)
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    names = args.workloads or (["tiny", "small"] if args.quick else list(WORKLOADS))
    losses = args.losses or (["squared"] if args.quick else ["squared", "logistic"])
    opts = args.optimizers or (["sgd"] if args.quick else ["sgd", "adam"])
    thread_counts = args.threads or ([1] if args.quick else [1, 2])
    results = []
    for threads in thread_counts:
        ceiling = measure("ceiling", "tiny", "squared", "sgd", threads, args.dtype).get(
            "gflops", float("nan"))
        print(f"\n## {threads} thread(s); {args.dtype} GEMM ceiling {ceiling:.0f} GFLOP/s\n")
        print("| workload | loss | optimiser | nncore | GFLOP/s (% ceiling) | extra RSS | "
              + " | ".join(f"{t} (×)" for t in TOOLS[1:]) + " | partial_fit / fit |")
        print("|---" * (7 + len(TOOLS) - 1) + "|")
        for name in names:
            for loss in losses:
                for opt in opts:
                    row = {t: measure(t, name, loss, opt, threads, args.dtype) for t in TOOLS}
                    ours = row["nncore"].get("seconds")
                    cells = []
                    for t in TOOLS[1:]:
                        r = row[t]
                        cells.append("n/a" if "error" in r else
                                     f"{r['seconds'] * 1e3:.1f} ms ({r['seconds'] / ours:.2f}×)")
                    # What one partial_fit call costs beside one epoch inside fit.
                    pf, ft = row["nncore-estimator"], row["nncore-fit"]
                    cells.append("n/a" if "error" in pf or "error" in ft else
                                 f"{pf['seconds'] / ft['seconds']:.2f}×")
                    gflops = flops(name) / ours / 1e9
                    print(f"| {name} | {loss} | {opt} | {ours * 1e3:.1f} ms | {gflops:.0f} "
                          f"({100 * gflops / ceiling:.0f}%) | "
                          f"{row['nncore']['extra_rss_mb']:.1f} MB | " + " | ".join(cells) + " |",
                          flush=True)
                    results.append({"workload": name, "loss": loss, "optimizer": opt,
                                    "dtype": args.dtype,
                                    "threads": threads, "ceiling_gflops": ceiling,
                                    "nncore_gflops": gflops, **{t: row[t] for t in TOOLS}})
    if any("error" in r["pytorch"] for r in results):
        print("\npytorch: not measured (" + next(r["pytorch"]["error"] for r in results
                                              if "error" in r["pytorch"]) + ")")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
