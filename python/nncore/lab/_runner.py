"""The one runner every lab experiment shares: the data sets, one training run (`train_run`), the
independent runs executed in parallel, and the report — a table of mean ± spread over seeds, the
conclusions, `runs.csv`, `meta.json` and the figures in the output folder.

A run is a module-level function called as function(dataset, **arguments) returning a `RunResult`
(a flat row of numbers for runs.csv, plus arrays such as curves or parameters the experiment reads
afterwards). Each run is seeded and single-threaded, so the same seeds give the same table
whatever --n-jobs is."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from .._version import __version__
from ..network import DivergenceError, Network
from ..optim import Schedule, make_optimizer
from ..training import run_epochs

# ---- data sets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """A classification problem split once (the same split for every seed): float64 inputs,
    integer class labels 0..K-1."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: tuple

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def loss(self) -> str:
        return "logistic" if self.n_classes == 2 else "softmax"

    def targets(self, y) -> np.ndarray:
        """y as the network's targets: a 0/1 column for two classes, labels for softmax."""
        return y.astype(np.float64).reshape(-1, 1) if self.n_classes == 2 else y

    def network(self, hidden=(64, 64), **options) -> Network:
        """An MLP for this problem (one output for two classes, else K softmax outputs)."""
        outputs = 1 if self.n_classes == 2 else self.n_classes
        return Network([self.X_train.shape[1], *hidden, outputs], loss=self.loss,
                       dtype=np.float64, n_threads=1, **options)

    def accuracy(self, network: Network, X, y) -> float:
        scores = network.forward(X)
        predicted = (scores[:, 0] >= 0).astype(int) if self.n_classes == 2 else scores.argmax(1)
        return float(np.mean(predicted == y))


def _split(name, X, y, *, test_size, standardize=True) -> Dataset:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    classes, y = np.unique(y, return_inverse=True)
    X_train, X_test, y_train, y_test = train_test_split(
        np.asarray(X, dtype=np.float64), y, test_size=test_size, stratify=y, random_state=0)
    if standardize:
        scaler = StandardScaler().fit(X_train)  # statistics of the training part only
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    return Dataset(name, np.ascontiguousarray(X_train), y_train, np.ascontiguousarray(X_test),
                   y_test, tuple(classes.tolist()))


BUILT_IN = ("digits", "noisy-binary", "breast-cancer")


def load_dataset(name: str, *, standardize: bool = True) -> Dataset:
    """A built-in problem: 'digits' (load_digits, 70/30 split), 'noisy-binary'
    (make_classification with 5% flipped labels, 50/50 split) or 'breast-cancer' (features whose
    scales span six orders of magnitude, 70/30 split); standardised on the training part unless
    standardize=False. Splits are stratified with random_state=0."""
    import sklearn.datasets as sd

    if name == "digits":
        return _split(name, *sd.load_digits(return_X_y=True), test_size=0.3,
                      standardize=standardize)
    if name == "noisy-binary":
        X, y = sd.make_classification(n_samples=4000, n_features=20, n_informative=10,
                                      flip_y=0.05, random_state=0)
        return _split(name, X, y, test_size=0.5, standardize=standardize)
    if name == "breast-cancer":
        return _split(name, *sd.load_breast_cancer(return_X_y=True), test_size=0.3,
                      standardize=standardize)
    raise ValueError(f"unknown data set {name!r}; built in: {', '.join(BUILT_IN)}")


def load_datasets(names=None, csv=None, target=None, *, default=("digits",),
                  standardize: bool = True) -> list[Dataset]:
    """The data sets of one experiment: the CSV file when given, else the built-in `names`
    (one name or a list; `default` when None)."""
    if csv is not None:
        if names is not None:
            raise ValueError("give built-in data sets or a CSV file, not both")
        return [csv_dataset(csv, target, standardize=standardize)]
    names = list(default) if names is None else [names] if isinstance(names, str) else list(names)
    if not names:
        raise ValueError("no data set chosen")
    return [load_dataset(name, standardize=standardize) for name in dict.fromkeys(names)]


def csv_dataset(path, target=None, *, standardize: bool = True) -> Dataset:
    """A CSV file's rows as a classification problem: `target` (default: the last column) holds
    the classes; numeric columns are standardised and text columns one-hot encoded on the
    training part (70/30 stratified split); a missing value is an error naming its column."""
    from ..tabular import Preprocessing, check_complete, pop_target, read_csv

    frame = read_csv(path)
    target, labels = pop_target(frame, target, path)
    if labels.isna().any():
        raise ValueError(f"target {target!r} of {path} is empty in "
                         f"{int(labels.isna().sum())} row(s): fill or drop them first")
    check_complete(frame, where=str(path),
                   remedy="the lab takes complete data; fill or drop them first")
    classes, y = np.unique(labels.map(str).to_numpy(), return_inverse=True)
    if len(classes) < 2 or len(classes) > max(20, len(y) // 10):
        raise ValueError(f"target {target!r} has {len(classes)} distinct values; the lab needs "
                         f"class labels (2 to {max(20, len(y) // 10)} classes)")
    from sklearn.model_selection import train_test_split

    train_rows, test_rows = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y,
                                             random_state=0)
    prep = Preprocessing.fit(frame.iloc[train_rows], standardize=standardize)
    return Dataset(Path(path).stem, prep.transform(frame.iloc[train_rows]), y[train_rows],
                   prep.transform(frame.iloc[test_rows]), y[test_rows], tuple(classes.tolist()))


# ---- one training run ---------------------------------------------------------------------------


class RunResult(NamedTuple):
    row: dict  # numbers for runs.csv
    arrays: dict = {}  # curves, parameters: what the experiment's figures and later steps read


def evaluate(dataset: Dataset, network: Network) -> dict:
    """Training and test loss (the objective's data term, mean over rows) and accuracy."""
    return {"train_loss": network.mean_loss(dataset.X_train, dataset.targets(dataset.y_train)),
            "train_accuracy": dataset.accuracy(network, dataset.X_train, dataset.y_train),
            "test_loss": network.mean_loss(dataset.X_test, dataset.targets(dataset.y_test)),
            "test_accuracy": dataset.accuracy(network, dataset.X_test, dataset.y_test)}


def train_run(dataset: Dataset, *, seed: int, epochs: int, learning_rate: float,
              batch_size: int | None = 32, optimizer: str = "plain", schedule: str = "constant",
              target: float | None = None, hidden=(64, 64), activation: str = "relu",
              init: str = "glorot_uniform", batch_norm: bool = False, alpha: float = 0.0,
              optimizer_options: dict | None = None) -> RunResult:
    """Train an MLP for up to `epochs` epochs, recording the full training loss after each
    (the curve). optimizer: 'plain' SGD or a name of make_optimizer. With `target`, training
    stops at the first epoch whose full training loss is below it (epochs_to_target and
    seconds_to_target say when; NaN if never). A diverging run is a result: diverged=True, the
    epoch it happened in, and the scores of its last finite state; failed=True when it diverged
    or ended with a training loss no lower than at the start."""
    network = dataset.network(hidden, activation=activation, init=init, batch_norm=batch_norm,
                              alpha=alpha, random_state=seed)
    data = network.prepare(dataset.X_train, dataset.targets(dataset.y_train))
    opt = None if optimizer == "plain" else make_optimizer(optimizer, **(optimizer_options or {}))
    schedule_ = Schedule(schedule, learning_rate, total_epochs=epochs,
                         step_size=max(1, epochs // 3))
    initial = network.mean_loss(data)
    curve, reached, diverged_at, seconds = [], math.nan, math.nan, 0.0
    started = time.perf_counter()
    try:
        for record in run_epochs(network, data, opt, schedule_, batch_size=batch_size,
                                 max_epochs=epochs, random_state=seed, draw="seed"):
            curve.append(network.mean_loss(data))
            if not math.isfinite(curve[-1]):
                raise DivergenceError("the training loss became non-finite")
            if target is not None and curve[-1] < target:
                reached, seconds = record["epoch"], time.perf_counter() - started
                break
    except DivergenceError:
        diverged_at = len(curve) + 1
    row = {"epochs": len(curve), "diverged": not math.isnan(diverged_at),
           "diverged_epoch": diverged_at, "seconds": time.perf_counter() - started}
    if target is not None:
        row.update(epochs_to_target=reached,
                   seconds_to_target=math.nan if math.isnan(reached) else seconds)
    row.update(evaluate(dataset, network))
    # Failed: diverged, or ended no better than it started (a rate too large for ReLU units
    # leaves them dead or sends the loss up without ever producing a non-finite number).
    row.update(initial_loss=initial,
               failed=bool(row["diverged"] or not row["train_loss"] < initial))
    return RunResult(row, {"curve": np.array(curve), "params": network.params.copy()})


# ---- running many ------------------------------------------------------------------------------


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


# ---- the report ---------------------------------------------------------------------------------


def spread_table(frame, by: list[str], columns: list[str], digits: int = 3):
    """One row per group of `by`, each column as 'mean ± standard deviation over the group's
    runs' (the runs of different seeds), plus the number of seeds."""
    import pandas as pd

    rows = []
    for key, group in frame.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["seeds"] = len(group)
        for column in columns:
            values = group[column].astype(float).dropna()
            row[column] = (_mean_spread(values, digits) if len(values) else "—")
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_spread(values, digits) -> str:
    mean = float(values.mean())
    spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return f"{mean:.{digits}g} ± {spread:.2g}"


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class LabResult:
    """What an experiment returns: the runs (one row each), the summary table (mean ± spread
    over seeds), its conclusions, the files written and whether Ctrl-C cut it short."""

    experiment: str
    runs: object  # pandas DataFrame
    summary: object  # pandas DataFrame
    conclusions: list
    files: list
    interrupted: bool
    wall_seconds: float
    title: str = ""

    def report(self) -> str:
        lines = [self.title or self.experiment, ""]
        if len(self.summary):
            lines += [self.summary.to_string(index=False),
                      "(each cell: mean ± standard deviation over the seeds' runs)", ""]
        if self.interrupted:
            lines.append(f"Interrupted: {len(self.runs)} finished run(s) kept.")
        lines += [f"- {c}" for c in self.conclusions]
        if self.files:
            lines += ["", "Wrote " + ", ".join(str(f) for f in self.files)]
        lines.append(f"Wall time {self.wall_seconds:.1f} s.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


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
                raise ValueError(f"--out {self.out} exists and is not a folder")
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

    def figure(self, name: str, draw: Callable) -> None:
        """draw(plt) makes a figure, saved as out/name (skipped without --out; without
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
               figures: Callable | None = None) -> LabResult:
        """Write runs.csv, the extra tables (name → DataFrame, as name.csv), the figures
        (figures(lab) calls lab.figure) and meta.json, and print nothing: the caller prints."""
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
        return LabResult(self.experiment, frame, summary, list(conclusions) + self.notes,
                         self.files, self.interrupted, wall, title)


# ---- experiments that compare training settings -------------------------------------------------


def setting_runs(datasets, seeds: int, column: str, settings: dict, function=None) -> list[Run]:
    """One run per data set × seed × setting: settings maps each value of `column` to the
    arguments of train_run (or of `function`)."""
    function = function or train_run
    return [Run({"dataset": d.name, "seed": seed, column: value}, function,
                dict(arguments, seed=seed), d.n_train * arguments.get("epochs", 1))
            for d in datasets for seed in range(seeds) for value, arguments in settings.items()]


def panels(plt, names, draw_panel, *, width=4.5, height=3.4):
    """A figure of one panel per data set side by side: draw_panel(ax, name) fills each."""
    fig, axes = plt.subplots(1, len(names), figsize=(width * len(names), height), squeeze=False)
    for ax, name in zip(axes[0], names):
        draw_panel(ax, name)
        ax.set_title(name)
    fig.tight_layout()
    return fig


def curves_figure(lab, frame, runs, results, column, *, ylabel="training loss", log=True):
    """Mean training-loss curve over seeds per value of `column`, one panel per data set
    (diverged runs end where they diverged)."""
    names = list(frame["dataset"].unique())

    def draw_panel(ax, name):
        grouped: dict = {}
        for index, result in results.items():
            s = runs[index].settings
            if s["dataset"] == name:
                grouped.setdefault(s[column], []).append(result.arrays["curve"])
        firsts, lows = [], []
        for value, curves in grouped.items():
            length = min(len(c) for c in curves)
            if length == 0:
                continue
            mean = np.mean([c[:length] for c in curves], axis=0)
            ax.plot(np.arange(1, length + 1), mean, label=str(value))
            firsts.append(mean[0])
            lows.append(float(np.min(mean)))
        if log:
            ax.set_yscale("log")
        if firsts and np.all(np.isfinite(firsts)):
            # a run that blew up would flatten every other curve: cut the axis at 10× the
            # typical first-epoch loss
            ax.set_ylim(0.5 * min(lows) if log else None,
                        min(ax.get_ylim()[1], 10 * float(np.median(firsts))))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)

    def draw(plt):
        return panels(plt, names, draw_panel, width=4.8, height=3.5)

    return draw


def verdict(held: bool | None) -> str:
    return {True: "held", False: "did not hold", None: "could not be judged"}[held]


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
