"""The time to measure one model's curvature, against the arithmetic floor and PyTorch.

    python bench/curvature.py            # 2×64 ReLU MLP, 2,000 × 20 float64 rows, 1 thread
    python bench/curvature.py --repeats 5 --json out.json

The measurement set (the one the lab takes per model): the top Hessian eigenvalue (Lanczos), a
50-probe Hutchinson trace, ε-sharpness (projected ascent, ε = 1e-3, 20 steps) and three
21-point loss slices. Reported: each part's median time, one H·v against one gradient, the
multiply-adds each needs, and the floor — the work's floating-point operations at this core's
float64 GEMM rate (NumPy's 1024³ product, one thread). PyTorch (double backward through
autograd, the way PyHessian-style tools compute H·v) runs the same measurements where installed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
for _name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # let OpenBLAS pick its fastest kernel
    os.environ.pop(_name, None)

import numpy as np  # noqa: E402

N, D, HIDDEN = 2000, 20, (64, 64)


def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D))
    y = (X[:, :3].sum(axis=1) + 0.3 * rng.normal(size=N) > 0).astype(np.float64)
    return X, y


def multiply_adds():
    """(loss, gradient, H·v) multiply-adds for one pass over the N rows: the gradient is forward +
    weight gradients + input gradients below the first layer; H·v adds the tangent forward
    (R{in}·W, in·V_W) and the tangent backward (two more products per layer)."""
    sizes = [D, *HIDDEN, 1]
    layers = list(zip(sizes[:-1], sizes[1:]))
    fwd = sum(a * b for a, b in layers)
    below_first = sum(a * b for a, b in layers[1:])
    gradient = N * (2 * fwd + below_first)
    hvp = N * (fwd + fwd + below_first + (below_first + fwd) + 3 * below_first)
    return N * fwd, gradient, hvp


def gemm_gflops():
    a = np.random.default_rng(0).normal(size=(1024, 1024))
    best = min(_timed(lambda: a @ a) for _ in range(5))
    return 2 * 1024**3 / best / 1e9


def _timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def measure_nncore(repeats):
    import nncore
    from nncore import curvature, landscape

    X, y = problem()
    net = nncore.Network([D, *HIDDEN, 1], "relu", "logistic", random_state=0, n_threads=1)
    nncore.train(net, X, y, epochs=30, learning_rate=0.1, batch_size=32, random_state=0)
    objective = curvature.Objective(net, X, y)
    v = np.random.default_rng(1).normal(size=net.n_params)
    directions = [landscape.random_direction(net, random_state=i) for i in range(3)]
    alphas = np.linspace(-1, 1, 21)
    parts = {
        "one H·v": lambda: objective.hvp(v),
        "one gradient": lambda: objective.value_and_grad(),
        "one loss": lambda: objective.value(),
        "top eigenvalue": lambda: curvature.top_eigenvalues(net, X, y, random_state=0,
                                                            tol=1e-4),
        "trace (50 probes)": lambda: curvature.hessian_trace(net, X, y, n_probes=50,
                                                             random_state=0),
        "ε-sharpness (20 steps)": lambda: curvature.eps_sharpness(net, X, y, max_iter=20,
                                                                  random_state=0),
        "3 slices × 21": lambda: [landscape.slice_1d(net, X, y, d, alphas) for d in directions],
    }
    times = {name: statistics.median(_timed(f) for _ in range(repeats))
             for name, f in parts.items()}
    counts = {"hvp": curvature.top_eigenvalues(net, X, y, random_state=0, tol=1e-4).n_iter + 50,
              "gradient": 20, "loss": 3 * 21 + 2}
    return times, counts


def measure_pytorch(repeats):
    import torch

    torch.set_num_threads(1)
    X, y = problem()
    X, y = torch.from_numpy(X), torch.from_numpy(y)[:, None]
    model = torch.nn.Sequential(torch.nn.Linear(D, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                                torch.nn.ReLU(), torch.nn.Linear(64, 1)).double()
    params = list(model.parameters())
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def hvp(vs):
        loss = loss_fn(model(X), y)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        return torch.autograd.grad(grads, params, grad_outputs=vs)

    def gradient():
        loss = loss_fn(model(X), y)
        return torch.autograd.grad(loss, params)

    vs = [torch.randn_like(p) for p in params]

    def lanczos_top(steps=30):
        for _ in range(steps):
            hvp(vs)

    def trace():
        for _ in range(50):
            hvp([torch.randint_like(p, 2) * 2 - 1 for p in params])

    def sharpness():
        for _ in range(20):
            gradient()

    def slices():
        with torch.no_grad():
            for _ in range(63):
                loss_fn(model(X), y)

    parts = {"one H·v": lambda: hvp(vs), "one gradient": gradient, "top eigenvalue": lanczos_top,
             "trace (50 probes)": trace, "ε-sharpness (20 steps)": sharpness,
             "3 slices × 21": slices}
    return {name: statistics.median(_timed(f) for _ in range(repeats)) for name, f in parts.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    import nncore

    gflops = gemm_gflops()
    loss_madds, grad_madds, hvp_madds = multiply_adds()
    times, counts = measure_nncore(args.repeats)
    try:
        torch_times = measure_pytorch(args.repeats)
    except ImportError:
        torch_times = None
    work = 2 * (counts["hvp"] * hvp_madds + counts["gradient"] * 1.0 * grad_madds
                + counts["loss"] * loss_madds)
    floor = work / (gflops * 1e9)
    whole = sum(t for name, t in times.items() if not name.startswith("one "))
    print(f"nncore {nncore.__version__}, build {nncore.build_info()}, 1 thread, "
          f"float64 GEMM ceiling {gflops:.1f} GFLOP/s")
    print(f"{N} × {D} rows, MLP {D}-{HIDDEN[0]}-{HIDDEN[1]}-1 ReLU, logistic loss; "
          f"one gradient {grad_madds / 1e6:.1f} M multiply-adds, one H·v {hvp_madds / 1e6:.1f} M "
          f"(×{hvp_madds / grad_madds:.2f})\n")
    print("| measurement | nncore | PyTorch | PyTorch / nncore |")
    print("|---|---|---|---|")
    for name, t in times.items():
        other = None if torch_times is None else torch_times.get(name)
        cells = ("not installed", "") if torch_times is None else (
            ("—", "") if other is None else (f"{other * 1e3:.1f} ms", f"{other / t:.2f}×"))
        print(f"| {name} | {t * 1e3:.1f} ms | {cells[0]} | {cells[1]} |")
    print(f"\none H·v / one gradient: {times['one H·v'] / times['one gradient']:.2f}×; "
          f"whole set {whole:.3f} s ({counts['hvp']} H·v, {counts['gradient']} gradients, "
          f"{counts['loss']} losses = {work / 1e9:.1f} GFLOP); floor at the GEMM ceiling "
          f"{floor:.3f} s; nncore at {whole / floor:.2f}× the floor")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"times": times, "pytorch": torch_times, "gemm_gflops": gflops,
                       "floor_s": floor, "counts": counts}, f, indent=2)


if __name__ == "__main__":
    main()
