"""How long the lab's full batch-size experiment takes (protocol A, both data sets, 5 batch sizes,
3 seeds, every measurement), side by side with the PyTorch script of the same protocol
(bench/lab_torch.py), run one after the other on a quiet machine:

    python bench/lab_speed.py [--peak GFLOPS] [--skip-torch]

1. nncore, one job (one core);  2. PyTorch, one thread;  3. nncore, --n-jobs 2.
Prints wall, training and measuring seconds of each, the PyTorch / nncore ratios, and the
floor: the float64 arithmetic of the training runs (from the steps each run took) at the given
single-core peak (e.g. the rate of a loop of independent FMAs), per core used."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
SIZES = {"digits": (1257, 64, 10), "noisy-binary": (2000, 20, 1)}  # training rows, inputs, outputs


def training_flops(runs: pd.DataFrame) -> float:
    """Multiply-adds × 2 of the training runs: a step of B rows costs B·(forward + backward);
    minibatch runs also evaluate the full training loss once per epoch (forward over n rows)."""
    total = 0.0
    for _, run in runs.iterrows():
        n, d, k = SIZES[run["dataset"]]
        forward = d * 64 + 64 * 64 + 64 * k
        backward = forward + 64 * 64 + 64 * k  # weight gradients, input gradients of layers 2-3
        if run["batch_size"] == "full":
            total += run["steps"] * n * (forward + backward)
        else:
            b = int(run["batch_size"])
            epochs = run["steps"] / math.ceil(n / b)
            total += run["steps"] * b * (forward + backward) + epochs * n * forward
    return 2.0 * total


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def nncore_run(out: Path, n_jobs: int) -> dict:
    wall = timed([sys.executable, "-m", "nncore", "lab", "batch-size", "--n-jobs", str(n_jobs),
                  "--no-progress", "--out", str(out)])
    runs = pd.read_csv(out / "runs.csv", dtype={"batch_size": str})
    return {"wall": wall, "train": runs["train_seconds"].sum(),
            "measure": runs["measure_seconds"].sum(), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peak", type=float, default=None,
                        help="single-core float64 peak in GFLOP/s, for the floor")
    parser.add_argument("--skip-torch", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one = nncore_run(tmp / "one", 1)
        print(f"nncore, 1 job:  wall {one['wall']:.1f} s (training {one['train']:.1f} s, "
              f"measuring {one['measure']:.1f} s)", flush=True)
        if not args.skip_torch:
            wall = timed([sys.executable, str(HERE / "lab_torch.py"), "--json",
                          str(tmp / "torch.json")])
            torch = json.loads((tmp / "torch.json").read_text())
            print(f"PyTorch, 1 thread: wall {wall:.1f} s (training "
                  f"{torch['train_seconds']:.1f} s, measuring {torch['measure_seconds']:.1f} s)")
            print(f"PyTorch / nncore: wall {wall / one['wall']:.2f}x, training "
                  f"{torch['train_seconds'] / one['train']:.2f}x, measuring "
                  f"{torch['measure_seconds'] / one['measure']:.2f}x", flush=True)
        two = nncore_run(tmp / "two", 2)
        print(f"nncore, --n-jobs 2: wall {two['wall']:.1f} s (training {two['train']:.1f} s, "
              f"measuring {two['measure']:.1f} s of CPU time)")
        flops = training_flops(one["runs"])
        print(f"training arithmetic: {flops / 1e12:.2f} TFLOP "
              f"({flops / one['train'] / 1e9:.1f} GFLOP/s achieved on one core)")
        if args.peak:
            floor = flops / (args.peak * 1e9)
            print(f"floor at {args.peak:g} GFLOP/s: {floor:.1f} s on one core, {floor / 2:.1f} s "
                  f"on two; nncore is {one['train'] / floor:.2f}x the floor on one core, "
                  f"{two['wall'] / (floor / 2):.2f}x on two (wall)")


if __name__ == "__main__":
    main()
