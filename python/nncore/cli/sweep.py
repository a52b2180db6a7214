"""`nncore sweep`: an MLP fitted for every setting of a grid and every seed — here, in local
processes or on Dask — into one table, with the best settings printed and a heat map drawn."""

from __future__ import annotations

import argparse
import math
import os
import sys

from ._arguments import (HelpFormatter, data_options, fraction, hidden_sizes, model_options,
                         positive_int)
from ._data import categorical, load_dataset
from ._fitting import model
from ._output import check_writable, say

_SWEEP_DESCRIPTION = """\
Fits MLPClassifier (or MLPRegressor) for every setting of --grid and every seed,
each fit with its preprocessing fitted on its own training rows, and scores it on a validation
split (or --cv folds). Prints the best settings with their spread over seeds; writes the table
(one row per setting and seed) and a heat map. Fits run here, in --n-jobs processes, or on Dask
(--scheduler). A diverging fit is a row of the table, not an error."""


def add_parser(subparsers) -> None:
    sw = subparsers.add_parser("sweep",
                               help="fit every setting of a grid over seeds, locally or on Dask",
                               formatter_class=HelpFormatter, description=_SWEEP_DESCRIPTION)
    data_options(sw)
    model_options(sw)
    sw.add_argument("--grid", nargs="+", required=True, metavar="NAME=V1,V2,...",
                    help="parameters of MLPClassifier/MLPRegressor and their values, e.g. "
                         "learning_rate_init=1e-3,1e-2 batch_size=8,32 hidden_layer_sizes=64,64-32")
    sw.add_argument("--seeds", type=positive_int, default=3, help="seeds 0..N-1 per setting")
    sw.add_argument("--cv", type=positive_int, default=None,
                    help="K-fold cross-validation instead of one validation split")
    sw.add_argument("--validation", type=fraction, default=0.2,
                    help="fraction of the rows held out for the validation score")
    sw.add_argument("--n-jobs", type=positive_int, default=1,
                    help="fits in parallel local processes, each on one thread")
    sw.add_argument("--scheduler", default=None,
                    help="run every fit as a Dask task: local:N (a local cluster of N "
                         "single-threaded workers, for this run) or tcp://HOST:PORT")
    sw.add_argument("--out", default="sweep.csv", metavar="TABLE.csv",
                    help="the table, one row per setting and seed")
    sw.add_argument("--heatmap", default=None, metavar="PNG",
                    help="validation score over two swept parameters (default: next to --out, "
                         "when two or more are swept)")
    sw.add_argument("--axes", default=None, metavar="X,Y",
                    help="the two parameters of the heat map (default: the first two of --grid)")
    sw.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                    help="a tqdm bar over the fits")


def _grid_value(name: str, text: str):
    if name.endswith("hidden_layer_sizes"):
        return hidden_sizes(text.replace("-", ","))
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def _parse_grid(items) -> dict:
    grid = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name or not values:
            raise ValueError(f"--grid takes NAME=V1,V2,..., got {item!r}")
        if name in grid:
            raise ValueError(f"--grid names {name!r} twice")
        grid[name] = [_grid_value(name, v) for v in values.split(",") if v]
    return grid


def run(args) -> int:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from .. import build_info
    from .._version import __version__
    from ..cluster import check_scheduler
    from ..estimators import MLPClassifier, MLPRegressor
    from ..plot import sweep_heatmap
    from ..sweeps import best_settings, sweep
    from ..tabular import TablePreprocessor, check_complete

    grid = _parse_grid(args.grid)
    check_writable(args.out, "--out")
    check_scheduler(args.scheduler)
    swept = list(grid)
    axes = args.axes.split(",") if args.axes else swept[:2]
    if (args.axes or len(swept) >= 2) and (len(axes) != 2 or any(a not in swept for a in axes)):
        raise ValueError(f"--axes names two swept parameters (of {', '.join(swept)}), got "
                         f"{args.axes!r}")
    picture = args.heatmap or (os.path.splitext(args.out)[0] + ".png" if len(swept) >= 2
                               else None)
    if picture:
        check_writable(picture, "--heatmap")
    frame, y, task, description, notes = load_dataset(args)
    if args.impute is None:
        check_complete(frame)
    classification = task == "classification"
    categorical_columns = categorical(args)
    cls = MLPClassifier if classification else MLPRegressor
    estimator = Pipeline([("prep", TablePreprocessor(args.standardize, args.impute,
                                                     categorical_columns)),
                          ("mlp", model(args, cls))])
    if not classification and args.standardize:
        estimator = TransformedTargetRegressor(regressor=estimator, transformer=StandardScaler())
    for note in notes:
        say(f"note: {note}")
    n_fits = args.seeds * math.prod(len(v) for v in grid.values()) * (args.cv or 1)
    where = (f"Dask ({args.scheduler})" if args.scheduler else
             f"{args.n_jobs} local processes" if args.n_jobs > 1 else "this process")
    say(f"nncore sweep: {description}, {task}, {len(y)} rows; {n_fits} fits in {where}")
    table = sweep(estimator, grid, frame, y, seeds=args.seeds, cv=args.cv,
                  validation_fraction=args.validation, scheduler=args.scheduler,
                  n_jobs=args.n_jobs, progress=args.progress)
    wall = table.attrs["wall_seconds"]
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(f"# nncore {__version__}; build_info {build_info()}\n")
        f.write(f"# command: nncore {' '.join(args.argv)}\n")
        table.to_csv(f, index=False)
    score = "accuracy" if classification else "R²"
    if not len(table):
        say(f"nncore sweep: interrupted before any fit finished; wrote the empty table to "
             f"{args.out}", file=sys.stderr)
        return 130
    best = best_settings(table)
    say(f"\nbest settings (validation {score}: mean ± standard deviation over {args.seeds} "
         f"seed(s)):")
    for row in best.head(5).to_dict("records"):
        setting = ", ".join(f"{name}={row[name]}" for name in swept)
        failed = f"  [{row['diverged']} diverged]" if row["diverged"] else ""
        spread = 0.0 if math.isnan(row["val_score_std"]) else row["val_score_std"]
        say(f"  {row['val_score_mean']:.4f} ± {spread:.4f}  {setting}{failed}")
    if picture:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, ax = plt.subplots(figsize=(6, 4.5))
        sweep_heatmap(table, axes[0], axes[1], ax=ax)
        ax.set_title(f"validation {score}, mean over seeds")
        figure.savefig(picture, dpi=90, bbox_inches="tight")
        plt.close(figure)
    fits = len(table) * (args.cv or 1)
    say(f"\n{fits} fits in {wall:.1f} s ({fits / wall * 60:.0f} per minute); wrote {args.out}"
         + (f" and {picture}" if picture else ""))
    if table.attrs["interrupted"]:
        say(f"nncore sweep: interrupted; the table holds the {fits} fit(s) finished before "
             f"Ctrl-C", file=sys.stderr)
        return 130
    return 0
