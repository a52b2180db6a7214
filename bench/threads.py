"""Threads on a machine that is not idle: nncore's default thread count beside n_threads=1,
PyTorch and scikit-learn, in one run.

    python bench/threads.py              # everything (a few minutes on 2 cores)
    python bench/threads.py --quick      # fewer repeats
    python bench/threads.py --only epoch,grid,predict

1. epoch: one partial_fit epoch of the medium workload (16384 × 256 → 512 → 512 → 1, float32,
   batch 256, SGD with momentum; and the same in float64, scikit-learn's default dtype), median of
   the timed epochs after a warm-up one, each tool in its own process with its default threads —
   on an idle machine, then with one core busy with a spinning process (as a browser, a notebook
   kernel or another fit makes it). PyTorch is optional: without it its column says so.
2. grid: GridSearchCV(n_jobs=<cores>) over 4 settings × 2 folds of a 64 → 256 → 256 classifier
   (loky worker processes, as scikit-learn users run it), nncore with its default threads and with
   n_threads=1, scikit-learn's own MLP; the second of two identical searches is timed (the first
   starts the workers).
3. predict: 1, 2, 4 and 8 Python threads calling predict_proba on one fitted 20 → 64 → 64
   classifier (20,000 rows a call) for a fixed time: calls per second in all, errors, and whether
   every answer equals the single-thread one bit for bit — the model with n_threads=1 (each call
   on one core: what the callers add) and with the default (one call already uses every core).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import epochs_estimator, epochs_pytorch  # noqa: E402

CORES = len(os.sched_getaffinity(0))
EPOCH_TOOLS = ("nncore default", "nncore n_threads=1", "pytorch default", "scikit-learn")
GRID_TOOLS = ("nncore default", "nncore n_threads=1", "scikit-learn")


# ---- 1. epochs: one tool per process ------------------------------------------------------------
def epoch_worker(tool, dtype, repeats):
    """Seconds of one partial_fit epoch (medium workload) per repeat."""
    if tool == "pytorch default":
        return epochs_pytorch("medium", "squared", "sgd", None, repeats, dtype)
    module = "sklearn" if tool == "scikit-learn" else "nncore"
    threads = 1 if tool == "nncore n_threads=1" else None
    return epochs_estimator(module, "medium", "squared", "sgd", threads, repeats, dtype)


# ---- 2. GridSearchCV(n_jobs=cores) --------------------------------------------------------------
def grid_worker(tool):
    import warnings

    import numpy as np
    from sklearn.model_selection import GridSearchCV

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 64))
    y = (X[:, :8].sum(axis=1) + rng.normal(size=4000) > 0).astype(int)
    if tool == "scikit-learn":
        from sklearn.neural_network import MLPClassifier

        model = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=10, random_state=0)
    else:
        from nncore import MLPClassifier

        model = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=10, random_state=0,
                              n_threads=1 if tool == "nncore n_threads=1" else None)
    grid = {"alpha": [1e-4, 1e-3], "learning_rate_init": [1e-3, 1e-2]}
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(2):
            start = time.perf_counter()
            GridSearchCV(model, grid, cv=2, n_jobs=CORES).fit(X, y)
            times.append(time.perf_counter() - start)
    return times[-1]


# ---- 3. prediction from many threads on one model ------------------------------------------------
def predict_worker(seconds):
    import warnings

    import numpy as np

    import nncore

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20000, 20))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nncore.MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=5,
                                     random_state=0).fit(X, y)
    expected = model.predict_proba(X)
    rows = []
    for model_threads, n in [(t, n) for t in (1, None) for n in (1, 2, 4, 8)]:
        model.set_params(n_threads=model_threads)
        model.network_.n_threads = model_threads
        calls, errors, mismatches = [0] * n, [0] * n, [0] * n
        stop = time.perf_counter() + seconds

        def run(i):
            while time.perf_counter() < stop:
                try:
                    got = model.predict_proba(X)
                except Exception:  # noqa: BLE001 — counted, as a user would see them
                    errors[i] += 1
                    continue
                calls[i] += 1
                mismatches[i] += not np.array_equal(got, expected)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        rows.append({"model": "n_threads=1" if model_threads else "default", "threads": n,
                     "calls_per_s": sum(calls) / elapsed, "errors": sum(errors),
                     "mismatches": sum(mismatches)})
    return rows


# ---- driver ------------------------------------------------------------------------------------
def _spinner():
    """A process that keeps one core busy until killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _run(args_list):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    result = subprocess.run([sys.executable, __file__, "--worker", *args_list],
                            capture_output=True, text=True, env=env, timeout=1800)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def worker(kind, *rest):
    if kind == "epoch":
        tool, dtype, repeats = rest
        times = list(epoch_worker(tool, dtype, int(repeats) + 1))[1:]
        out = {"seconds": statistics.median(times)}
    elif kind == "grid":
        out = {"seconds": grid_worker(rest[0])}
    else:
        out = {"rows": predict_worker(float(rest[0]))}
    print(json.dumps(out))


def _cell(result, reference=None):
    if "error" in result:
        return "n/a (" + result["error"][:40] + ")"
    s = result["seconds"]
    return f"{s:.2f} s" + (f" ({s / reference:.2f}×)" if reference else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="epoch,grid,predict")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker)
    import platform

    import nncore

    sections = args.only.split(",")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    print(f"# {cpu}, {CORES} cores; nncore {nncore.__version__} {nncore.build_info()}")
    repeats = "2" if args.quick else "3"
    if "epoch" in sections:
        print("\n## One partial_fit epoch, medium workload (ratio: to nncore n_threads=1, same "
              "condition)\n")
        print("| dtype | machine | " + " | ".join(EPOCH_TOOLS) + " |")
        print("|---|---|" + "---|" * len(EPOCH_TOOLS))
        for dtype in ("float32", "float64"):
            for busy in (False, True):
                spinner = _spinner() if busy else None
                try:
                    if spinner:
                        time.sleep(0.5)
                    row = {t: _run(["epoch", t, dtype, repeats]) for t in EPOCH_TOOLS}
                finally:
                    if spinner:
                        spinner.kill()
                        spinner.wait()
                ref = row["nncore n_threads=1"].get("seconds")
                print(f"| {dtype} | {'one core busy' if busy else 'idle'} | "
                      + " | ".join(_cell(row[t], ref) for t in EPOCH_TOOLS) + " |", flush=True)
    if "grid" in sections:
        print(f"\n## GridSearchCV(n_jobs={CORES}), 4 settings × 2 folds, 64 → 256 → 256 "
              "(ratio: to nncore n_threads=1)\n")
        print("| " + " | ".join(GRID_TOOLS) + " |")
        print("|" + "---|" * len(GRID_TOOLS))
        row = {t: _run(["grid", t]) for t in GRID_TOOLS}
        ref = row["nncore n_threads=1"].get("seconds")
        print("| " + " | ".join(_cell(row[t], ref) for t in GRID_TOOLS) + " |", flush=True)
    if "predict" in sections:
        print("\n## Threads sharing one fitted model: predict_proba, 20,000 rows a call, "
              "20 → 64 → 64\n")
        result = _run(["predict", "1" if args.quick else "3"])
        if "error" in result:
            print("n/a:", result["error"])
        else:
            print("| model | calling threads | calls/s | × 1 calling thread | errors | "
                  "answers differing |")
            print("|---|---|---|---|---|---|")
            base = {}
            for r in result["rows"]:
                base.setdefault(r["model"], r["calls_per_s"])
                print(f"| {r['model']} | {r['threads']} | {r['calls_per_s']:.1f} | "
                      f"{r['calls_per_s'] / base[r['model']]:.2f} | {r['errors']} | "
                      f"{r['mismatches']} |")


if __name__ == "__main__":
    main()
