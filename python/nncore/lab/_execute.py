"""Running the lab's independent fits: a `Run` — a module-level function called as
function(dataset, **arguments) returning a `RunResult` (a flat row of numbers for runs.csv, plus
arrays such as curves or parameters the experiment reads afterwards) — and `execute`, which runs
them here, in processes or on Dask, the dearest first, keeping the finished ones when Ctrl-C stops
the rest. Each run is seeded and single-threaded, so the same seeds give the same table whatever
n_jobs is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ._run import train_run


@dataclass
class Run:
    """One independent fit: function(datasets[dataset], **arguments), identified in the table by
    `settings` (dataset, seed and the experiment's own columns). `cost` is a rough relative
    duration: the dearest runs start first, so parallel workers finish together."""

    settings: dict
    function: Callable
    arguments: dict = field(default_factory=dict)
    cost: float = 1.0


def _run_one(datasets, function, name, arguments):
    return function(datasets[name], **arguments)


def execute(runs: list[Run], datasets: dict, *, n_jobs: int = 1, progress: bool = True,
            client=None):
    """Run every Run — in this process, in `n_jobs` processes (joblib) or as Dask tasks of
    `client` — with a tqdm bar over the fits, the dearest first. Returns ({index: RunResult} of
    the runs that finished, interrupted): Ctrl-C stops the remaining runs and keeps the finished
    ones."""
    from ..cluster import run_tasks

    order = sorted(range(len(runs)), key=lambda i: -runs[i].cost)
    tasks = [(run.function, run.settings["dataset"], run.arguments) for run in runs]
    return run_tasks(_run_one, tasks, shared=datasets, n_jobs=n_jobs, client=client,
                     progress=progress, order=order)



def setting_runs(datasets, seeds: int, column: str, settings: dict, function=None) -> list[Run]:
    """One run per data set × seed × setting: settings maps each value of `column` to the
    arguments of train_run (or of `function`)."""
    function = function or train_run
    return [Run({"dataset": d.name, "seed": seed, column: value}, function,
                dict(arguments, seed=seed), d.n_train * arguments.get("epochs", 1))
            for d in datasets for seed in range(seeds) for value, arguments in settings.items()]

