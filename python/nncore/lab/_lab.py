"""One experiment's bookkeeping (`Lab`): its output folder, its runs executed, and at the end
runs.csv, the extra tables, the figures and meta.json written and the `LabResult` made;
`compare`, the experiment that trains every setting on every data set and seed, and
`compare_rates`, the one that trains each arm over a grid of learning rates and judges it at its
best."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

from .._parameters import Mention, ParameterError
from .._version import __version__
from ._execute import Run, execute, setting_runs
from ._rates import (best_rate_curves, best_rate_table, best_rates, by_final_loss,
                     rate_figure)
from ._report import LabResult, curves_figure, spread_table


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()



# The parameters every experiment function takes, documented once: each experiment's run()
# docstring holds their {names} (see nncore._docs.with_shared_docs).
EXPERIMENT_PARAMETERS = {
    "seeds": """\
seeds : int
    How many seeds (0..seeds-1) each setting runs with.""",
    "quick": """\
quick : bool
    A few seconds' version (fewer epochs, settings and data sets), what the tests run.""",
    "out": """\
out : str, path-like or None
    A folder for ``runs.csv`` (one row per run), ``meta.json`` (nncore's version,
    ``build_info()``, CPU, command, seeds, wall time) and the PNG figures; None writes
    nothing.""",
    "n_jobs": """\
n_jobs : int
    Independent fits run in this many local processes, each single-threaded.""",
    "progress": """\
progress : bool
    Whether a tqdm bar counts the fits.""",
    "csv": """\
csv : str, path-like or None
    A CSV file of your own classification data instead of the built-in sets.""",
    "target_column": """\
target_column : str or None
    The class column of ``csv``; None takes the last column.""",
    "command": """\
command : str or None
    The command line recorded in ``meta.json``; None takes this process's arguments.""",
    "scheduler": """\
scheduler : str or None
    Run the fits on Dask: ``'local:N'`` or ``'tcp://HOST:PORT'`` (see
    :mod:`nncore.cluster`).""",
}


class Lab:
    """One experiment's bookkeeping: start time, output folder, planned runs; `finish` writes
    runs.csv, meta.json and the figures and makes the LabResult."""

    def __init__(self, experiment: str, *, seeds: int, quick: bool, out, n_jobs: int,
                 progress: bool, command: str | None = None, options: dict | None = None,
                 scheduler=None):
        from ..cluster import check_scheduler

        from .._validation import check_int

        self.experiment = experiment
        self.seeds = check_int(seeds, "seeds")
        self.n_jobs = check_int(n_jobs, "n_jobs")
        self.quick, self.progress = bool(quick), bool(progress)
        self.out = None if out is None else Path(out)
        if self.out is not None:
            if self.out.exists() and not self.out.is_dir():
                raise ParameterError("{out} exists and is not a folder",
                                     {"out": Mention("out", repr(str(self.out)), str(self.out))})
            self.out.mkdir(parents=True, exist_ok=True)
        self.command = command or " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
        self.options = options or {}
        self.scheduler = scheduler if hasattr(scheduler, "submit") else check_scheduler(scheduler)
        self.started = time.perf_counter()
        self.datasets: dict = {}
        self.files: list = []
        self.notes: list = []
        self.interrupted = False

    def run(self, runs: list[Run]):
        """Execute the runs; returns (runs DataFrame in plan order, {index: RunResult},
        interrupted). Each row is the run's settings followed by its measured numbers."""
        import pandas as pd

        from ..cluster import connect

        with connect(self.scheduler) as client:
            done, interrupted = execute(runs, self.datasets, n_jobs=self.n_jobs,
                                        progress=self.progress, client=client)
        self.interrupted = interrupted
        rows = [{**runs[i].settings, **done[i].row} for i in sorted(done)]
        frame = pd.DataFrame(rows)
        return frame, {i: done[i] for i in sorted(done)}, interrupted

    def save_params(self, results: dict) -> None:
        """out/params.npz: each finished run's parameters as run_<row of runs.csv>, so that
        its models can be measured again later (skipped without out)."""
        if self.out is None:
            return
        import numpy as np

        np.savez_compressed(self.out / "params.npz",
                            **{f"run_{row}": results[index].arrays["params"]
                               for row, index in enumerate(sorted(results))})
        self.files.append(self.out / "params.npz")

    def figure(self, name: str, draw: Callable) -> None:
        """draw(plt) makes a figure, saved as out/name (skipped without out; without
        matplotlib, the report says what to install)."""
        if self.out is None:
            return
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            self.notes.append("figures need matplotlib: pip install 'nncore[plot]'")
            return
        figure = draw(plt)
        figure.savefig(self.out / name, dpi=90, bbox_inches="tight")
        plt.close(figure)
        self.files.append(self.out / name)

    def finish(self, frame, summary, conclusions, *, title: str, tables: dict | None = None,
               shown: dict | None = None, figures: Callable | None = None) -> LabResult:
        """Write runs.csv, the extra tables (name → DataFrame, as name.csv), the figures
        (figures(lab) calls lab.figure), meta.json and report.json (the title, the summary table,
        the `shown` tables — heading → DataFrame, printed after the summary — and the
        conclusions: what the report page shows), and print nothing: the caller prints."""
        if self.out is not None:
            frame.to_csv(self.out / "runs.csv", index=False)
            self.files.append(self.out / "runs.csv")
            for name, table in (tables or {}).items():
                table.to_csv(self.out / f"{name}.csv", index=False)
                self.files.append(self.out / f"{name}.csv")
            if figures is not None and len(frame):
                figures(self)
        wall = time.perf_counter() - self.started
        if self.out is not None:
            from .. import build_info

            meta = {"experiment": self.experiment, "nncore_version": __version__,
                    "build_info": build_info(), "cpu": _cpu(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "command": self.command,
                    "seeds": list(range(self.seeds)), "quick": self.quick,
                    "n_jobs": self.n_jobs, "options": self.options,
                    "scheduler": None if self.scheduler is None else str(self.scheduler),
                    "runs_finished": int(len(frame)), "interrupted": self.interrupted,
                    "wall_seconds": wall}
            (self.out / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
            self.files.append(self.out / "meta.json")
            self.files.append(self.out / "report.json")
        result = LabResult(self.experiment, frame, summary, list(conclusions) + self.notes,
                           self.files, self.interrupted, wall, title, dict(shown or {}))
        if self.out is not None:
            # what `nncore lab report` rebuilds the page from, without rerunning anything
            (self.out / "report.json").write_text(
                json.dumps(result.record(), indent=2, ensure_ascii=False, default=str) + "\n")
        return result



def compare(experiment: str, *, title: str, column: str, settings: dict, datasets: list,
            columns: list, conclude: Callable, seeds: int, quick: bool, out, n_jobs: int,
            progress: bool, command=None, options=None, function=None,
            scheduler=None) -> LabResult:
    """An experiment that trains every setting on every data set and seed: the table of mean ±
    spread of `columns` per data set and setting, conclude(frame) → sentences, and a figure
    `<experiment>.png` of the training-loss curves."""
    lab = Lab(experiment, seeds=seeds, quick=quick, out=out, n_jobs=n_jobs, progress=progress,
              command=command, options={**(options or {}), "settings": settings,
                                        "datasets": [d.name for d in datasets]},
              scheduler=scheduler)
    lab.datasets = {d.name: d for d in datasets}
    runs = setting_runs(datasets, lab.seeds, column, settings, function)
    frame, results, _ = lab.run(runs)
    summary = spread_table(frame, ["dataset", column], columns) if len(frame) else frame
    conclusions = conclude(frame) if len(frame) else []
    return lab.finish(frame, summary, conclusions, title=title,
                      figures=lambda lab_: lab_.figure(f"{experiment.replace('-', '_')}.png",
                                                       curves_figure(lab_, frame, runs, results,
                                                                     column)))


def compare_rates(experiment: str, *, title: str, arm: list[str], runs: list[Run],
                  datasets: list, columns: list, conclude: Callable, seeds: int, quick: bool,
                  out, n_jobs: int, progress: bool, command=None, options=None,
                  scheduler=None, score: Callable = by_final_loss,
                  extra_curves: Callable | None = None) -> LabResult:
    """An experiment whose arms (the `arm` columns of the runs' settings: the data set, maybe a
    regime, then the arm itself) each run over a grid of learning rates (`grid_runs`): the table
    holds each arm at its best rate by score (default: the final training loss),
    conclude(frame, best) → sentences with best = {arm key: rate}; figures
    `<experiment>_rates.png` (final loss and test accuracy against the rate, one line per arm)
    and `<experiment>.png` (loss curves at the best rates, plus the panels extra_curves(frame)
    returns: {title: (panel key, rate)})."""
    lab = Lab(experiment, seeds=seeds, quick=quick, out=out, n_jobs=n_jobs, progress=progress,
              command=command, options={**(options or {}),
                                        "datasets": [d.name for d in datasets]},
              scheduler=scheduler)
    lab.datasets = {d.name: d for d in datasets}
    frame, results, _ = lab.run(runs)
    best = best_rates(frame, arm, score) if len(frame) else {}
    summary = best_rate_table(frame, arm, best, columns) if len(frame) else frame
    conclusions = conclude(frame, best) if len(frame) else []
    stem = experiment.replace("-", "_")

    def figures(lab_):
        lab_.figure(f"{stem}_rates.png", rate_figure(frame, arm, best))
        lab_.figure(f"{stem}.png", best_rate_curves(
            frame, runs, results, arm, best,
            extra=extra_curves(frame) if extra_curves else None))

    return lab.finish(frame, summary, conclusions, title=title, figures=figures)
