"""Each build of the core side by side on this CPU, and against a build made for this machine.

    python bench/targets.py                        # every built target this CPU runs
    python bench/targets.py --native /tmp/native   # also a site folder holding a build made with
                                                   # NNCORE_ARCH=native (pip install --target)
    python bench/targets.py --workloads medium --dtypes float64 --rounds 5 --json out.json

One installation holds a build of the core per x86-64 level; `NNCORE_CPU` forces one. For each
workload of bench/compare.py (squared loss, SGD with momentum, Network.train_epoch, one thread
unless --threads), each dtype and each build, a worker process times epochs (the median of 4
after a warm-up); the builds run in turn, round after round, so that the machine's drift falls
on all of them alike. The table gives each build's median over rounds, its ratio to the build
the loader picks here (> 1: slower than the pick), and the per-round spread of that ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from compare import WORKLOADS, epochs_nncore  # noqa: E402


def worker(name, dtype, threads):
    import nncore

    times = list(epochs_nncore(name, "squared", "sgd", threads, 5, dtype))[1:]
    info = nncore.build_info()
    print(json.dumps({"seconds": statistics.median(times), "target": info["cpu_target"],
                      "march": info["march"]}))


def measure(build, name, dtype, threads, native):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    env.pop("NNCORE_CPU", None)
    if build == "native":
        env["PYTHONPATH"] = native + os.pathsep + env.get("PYTHONPATH", "")
    elif build != "picked":
        env["NNCORE_CPU"] = build
    done = subprocess.run([sys.executable, __file__, "--worker", name, dtype, str(threads)],
                          env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{build} {name} {dtype}: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS),
                        default=["tiny", "small", "medium", "large"])
    parser.add_argument("--dtypes", nargs="+", choices=["float32", "float64"],
                        default=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--native", help="a site folder with a NNCORE_ARCH=native build")
    parser.add_argument("--json")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker[0], args.worker[1], int(args.worker[2]))

    import nncore
    from nncore import _cpu, _targets

    probe = _cpu.probe()
    info = nncore.build_info()
    picked = info["cpu_target"]
    builds = [t for t in info["cpu_targets"] if t in _targets.runnable(probe)]
    if args.native:
        builds.append("native")
    print(f"# {probe['vendor']} family {probe['family']:#x} model {probe['model']}; the loader "
          f"picks {picked}; builds: {', '.join(builds)}; {args.threads} thread(s)")
    results = []
    for name in args.workloads:
        for dtype in args.dtypes:
            rounds = {b: [] for b in builds}
            for _ in range(args.rounds):
                for b in builds:
                    rounds[b].append(measure(b, name, dtype, args.threads, args.native)["seconds"])
            results.append({"workload": name, "dtype": dtype, "seconds": rounds})
    print("\n| workload | dtype | " + " | ".join(f"{b} (× {picked})" for b in builds) + " |")
    print("|---|---|" + "---|" * len(builds))
    for r in results:
        ref = r["seconds"][picked]
        cells = []
        for b in builds:
            ratios = [t / p for t, p in zip(r["seconds"][b], ref)]
            cells.append(f"{statistics.median(r['seconds'][b]) * 1e3:.1f} ms "
                         f"({statistics.median(ratios):.2f}, {min(ratios):.2f}–{max(ratios):.2f})")
        print(f"| {r['workload']} | {r['dtype']} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": probe, "picked": picked, "threads": args.threads,
                       "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
