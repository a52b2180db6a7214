"""The `nncore` command.

    nncore train [--dataset breast_cancer | --csv data.csv --target column] [options]
    nncore predict --model model.npz data.csv [--output predictions.csv]
    nncore sweep --grid learning_rate_init=1e-3,1e-2 batch_size=8,32 [data and model options]
    nncore lab zero-init|scaling|batch-size|step-size|optimizers|batch-norm [options]
    nncore serve model.npz [--port 8000]

`train` fits an MLPClassifier or MLPRegressor on a CSV file (read by pandas) or one of
scikit-learn's bundled data sets: numeric columns are standardised (unless --no-standardize),
text columns one-hot encoded, missing values an error unless --impute says how to fill them; the
data are split into train / validation / test; the loss is printed per epoch and a table of
train / validation / test metrics at the end. `--save` writes the model and its preprocessing
statistics to one .npz file that `predict` reads back. `sweep` fits a grid of settings over seeds
(locally or on Dask) into one table; `lab` runs one of the lecture's claims as an experiment;
`serve` answers predictions over HTTP for a saved model.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings

import numpy as np

_DATASETS = ("breast_cancer", "diabetes", "digits", "iris", "wine")
_REGRESSION_DATASETS = ("diabetes",)


# ---- argument types ------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


def _hidden_sizes(text: str) -> tuple:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}")
    return sizes


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The description as written, and every option's default (options without one say in
    their help what happens when they are left out)."""

    def _get_help_string(self, action):
        if action.default in (None, "") or isinstance(action.default, (bool, tuple)):
            return action.help  # its help says it in words
        return super()._get_help_string(action)


def _csv_options(parser, defaults_from_model=False):
    where = " (default: as in training)" if defaults_from_model else ""
    parser.add_argument("--sep", default=None if defaults_from_model else ",",
                        help="field separator" + where)
    parser.add_argument("--decimal", default=None if defaults_from_model else ".",
                        help="decimal mark, e.g. ','" + where)
    parser.add_argument("--encoding", default=None if defaults_from_model else "utf-8",
                        help="text encoding" + where)


def _data_options(parser, impute_strategies, streaming=False):
    """What `train` and `sweep` read: a bundled data set or a CSV file, and how to prepare it."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=_DATASETS, default=None,
                        help="a scikit-learn bundled data set (default: breast_cancer)")
    source.add_argument("--csv", help="a CSV file with a header row"
                        + (" (with --stream: a glob of CSV files)" if streaming else ""))
    if streaming:
        source.add_argument("--parquet", metavar="GLOB",
                            help="Parquet files (a glob such as 'data/*.parquet'); needs --stream")
    parser.add_argument("--target", help="the target column of --csv (default: the last column)")
    _csv_options(parser)
    parser.add_argument("--impute", choices=impute_strategies, default=None,
                        help="fill missing values of numeric columns so (text columns: most "
                             "frequent); without it a missing value is an error")
    parser.add_argument("--categorical", default="",
                        help="comma-separated columns to treat as text even if they hold numbers")
    parser.add_argument("--drop-missing-target", action="store_true",
                        help="drop rows whose target is empty (else they are an error)")
    parser.add_argument("--task", choices=("auto", "classification", "regression"),
                        default="auto",
                        help="auto: classification for text or few integer target values")
    parser.add_argument("--no-standardize", dest="standardize", action="store_false",
                        help="keep numeric columns as they are (default: standardise them)")


def _model_options(parser, activations, schedules):
    """The model `train` fits and `sweep` starts from."""
    parser.add_argument("--hidden", type=_hidden_sizes, default=(32,),
                        help="hidden layer sizes, e.g. 64,32 (default: 32)")
    parser.add_argument("--activation", choices=activations, default="relu",
                        help="activation of the hidden layers")
    parser.add_argument("--solver", choices=("sgd", "momentum", "adam", "adamw", "lbfgs"),
                        default="adam", help="optimiser")
    parser.add_argument("--learning-rate", type=_positive_float, default=1e-3,
                        help="initial step size")
    parser.add_argument("--schedule", choices=schedules, default="constant",
                        help="step-size schedule over the epochs")
    parser.add_argument("--batch-size", type=_positive_int, default=32,
                        help="rows per minibatch")
    parser.add_argument("--epochs", type=_positive_int, default=30,
                        help="epochs (L-BFGS: iterations)")
    parser.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty")
    parser.add_argument("--batch-norm", action="store_true", help="batch-normalise hidden layers")
    parser.add_argument("--dropout", type=_fraction, default=0.0,
                        help="dropout rate of every hidden layer, in [0, 1); 0: none")


def build_parser() -> argparse.ArgumentParser:
    """The `nncore` command's argument parser (the documentation's command-line page reads it)."""
    from ._version import __version__
    from .network import ACTIVATIONS
    from .optim import SCHEDULES
    from .tabular import IMPUTE_STRATEGIES

    parser = argparse.ArgumentParser(prog="nncore", description=__doc__,
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"nncore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an MLP on a CSV file or a bundled data set",
                       formatter_class=_HelpFormatter)
    _data_options(t, IMPUTE_STRATEGIES, streaming=True)
    _model_options(t, ACTIVATIONS, SCHEDULES)
    t.add_argument("--stream", action="store_true",
                   help="train over the files without loading them: partitions shuffled, rows "
                        "shuffled within --buffer-rows, the last file held out for validation")
    t.add_argument("--buffer-rows", type=_positive_int, default=50_000,
                   help="--stream: rows held in memory at once")
    t.add_argument("--validation", type=_fraction, default=0.15,
                   help="fraction of the training rows held out for validation")
    t.add_argument("--test-size", type=_fraction, default=0.25,
                   help="fraction of the rows held out for the test score")
    t.add_argument("--seed", type=int, default=0,
                   help="seeds the splits, the initial weights and the batch order")
    t.add_argument("--threads", type=_positive_int, default=None,
                   help="threads for large matrix products (default: OMP_NUM_THREADS, else all "
                        "usable CPUs)")
    t.add_argument("--save", metavar="MODEL.npz", help="write the model and its preprocessing")
    t.add_argument("--plot", metavar="CURVES.png", help="write the training curves as PNG")
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=False,
                   help="a tqdm progress bar instead of one line per epoch (default: off)")
    sw = sub.add_parser("sweep", help="fit every setting of a grid over seeds, locally or on Dask",
                        formatter_class=_HelpFormatter, description=_SWEEP_DESCRIPTION)
    _data_options(sw, IMPUTE_STRATEGIES)
    _model_options(sw, ACTIVATIONS, SCHEDULES)
    sw.add_argument("--grid", nargs="+", required=True, metavar="NAME=V1,V2,...",
                    help="parameters of MLPClassifier/MLPRegressor and their values, e.g. "
                         "learning_rate_init=1e-3,1e-2 batch_size=8,32 hidden_layer_sizes=64,64-32")
    sw.add_argument("--seeds", type=_positive_int, default=3, help="seeds 0..N-1 per setting")
    sw.add_argument("--cv", type=_positive_int, default=None,
                    help="K-fold cross-validation instead of one validation split")
    sw.add_argument("--validation", type=_fraction, default=0.2,
                    help="fraction of the rows held out for the validation score")
    sw.add_argument("--n-jobs", type=_positive_int, default=1,
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
    lab = sub.add_parser("lab", help="run one of the lecture's claims as an experiment over seeds",
                         formatter_class=_HelpFormatter, description=_LAB_DESCRIPTION)
    lab.add_argument("experiment", choices=_LAB_EXPERIMENTS)
    lab.add_argument("--seeds", type=_positive_int, default=3, help="seeds 0..N-1 per setting")
    lab.add_argument("--quick", action="store_true",
                     help="a few seconds: fewer settings and epochs (for tests)")
    lab.add_argument("--out", default=None,
                     help="folder for runs.csv, meta.json and the figures (created if needed; "
                          "default: lab-EXPERIMENT)")
    lab.add_argument("--n-jobs", type=_positive_int, default=1,
                     help="fits run in parallel processes, each on one thread")
    lab_data = lab.add_mutually_exclusive_group()
    lab_data.add_argument("--dataset", action="append", choices=_LAB_DATASETS, default=None,
                          help="a built-in data set (repeat for several; default: the "
                               "experiment's own)")
    lab_data.add_argument("--csv", help="a CSV file of a classification problem")
    lab.add_argument("--target", help="the class column of --csv (default: the last column)")
    lab.add_argument("--protocol", choices=("loss", "epochs"), default="loss",
                     help="batch-size: 'loss' trains every run to the same training loss "
                          "(protocol A); 'epochs' gives every batch size the same epochs (B)")
    lab.add_argument("--learning-rate", type=_positive_float, default=None,
                     help="batch-size, zero-init, step-size: the (initial) learning rate "
                          "(default: the experiment's)")
    lab.add_argument("--target-loss", type=_positive_float, default=None,
                     help="batch-size, scaling, optimizers: the training-loss target "
                          "(default: the experiment's)")
    lab.add_argument("--max-steps", type=_positive_int, default=None,
                     help="batch-size, protocol A: step cap (default 20000)")
    lab.add_argument("--epochs", type=_positive_int, default=None,
                     help="epochs (batch-size: protocol B's budget; default: the experiment's)")
    lab.add_argument("--scheduler", default=None,
                     help="run the fits on Dask: local:N (a local cluster of N single-threaded "
                          "worker processes, for this run) or tcp://HOST:PORT (needs "
                          "pip install 'nncore[dask]')")
    lab.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                     help="a tqdm bar over the fits")
    p = sub.add_parser("predict", help="predict with a model saved by `nncore train --save`",
                       formatter_class=_HelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("data", help="a CSV file with the training columns (the target may be absent)")
    p.add_argument("--output", help="CSV file to write (default: standard output)")
    _csv_options(p, defaults_from_model=True)
    sv = sub.add_parser("serve", help="serve a saved model over HTTP (POST /predict, GET /model, "
                                      "GET /health)", formatter_class=_HelpFormatter,
                        description="Serve a model saved by `nncore train --save` or "
                                    "estimator.save() over HTTP until Ctrl-C or SIGTERM (needs "
                                    "pip install 'nncore[serve]'). POST /predict takes "
                                    '{"rows": [...]}: records of raw columns, or a numeric '
                                    "matrix for a model without preprocessing.")
    sv.add_argument("model", metavar="MODEL.npz")
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (0.0.0.0: every interface)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--workers", type=_positive_int, default=1,
                    help="processes, each with its own copy of the model")
    sv.add_argument("--max-rows", type=_positive_int, default=10_000,
                    help="most rows one request may hold (413 above)")
    sv.add_argument("--max-body-mb", type=_positive_float, default=16.0,
                    help="largest request body in MiB (413 above)")
    sv.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                    help="one log line per request")
    return parser


# ---- output that survives a closed pipe -------------------------------------------------------
def _say(*args, file=None) -> None:
    """print, except that a reader who went away (`| head`) silences further output instead of
    ending the command: training goes on and --save is still written."""
    try:
        print(*args, file=file or sys.stdout, flush=True)
    except BrokenPipeError:
        _silence(file or sys.stdout)


def _silence(stream) -> None:
    """Point a stream whose reader went away at /dev/null (Python's own flush at exit too)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def _number(value: float) -> str:
    """A loss for a table: six decimals, or %g for values that are huge (a diverging run)."""
    return f"{value:.6f}" if abs(value) < 1e6 else f"{value:.6g}"


def _check_writable(path, option):
    """Fail before training, not after, for an output path that cannot be written."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{option} {path!r} is a directory")
    if not os.path.isdir(directory):
        raise ValueError(f"{option} {path!r}: the folder {directory!r} does not exist")
    if not os.access(directory, os.W_OK) or (os.path.exists(path)
                                              and not os.access(path, os.W_OK)):
        raise ValueError(f"{option} {path!r} is not writable")


# ---- data ---------------------------------------------------------------------------------------
def _auto_task(numbers) -> str:
    """--task auto: classification for text targets (numbers None) or few integer values."""
    few_integers = (numbers is not None and np.all(numbers == np.round(numbers))
                    and len(np.unique(numbers)) <= 20)
    return "classification" if numbers is None or few_integers else "regression"


def _epoch_line(record, epochs) -> str:
    """The line `train` prints after each epoch."""
    val = ("" if record["val_score"] is None else
           f"  val_loss {_number(record['val_loss'])}  val_score {record['val_score']:.4f}")
    return f"epoch {record['epoch']:3d}/{epochs}  loss {_number(record['loss'])}{val}"


def _save(args, model, preprocessing_spec, task, y_scale) -> None:
    """train's --save: the model with its preprocessing statistics."""
    from .tabular import TabularModel

    TabularModel(model, preprocessing_spec, task=task, y_scale=y_scale,
                 csv={"sep": args.sep, "decimal": args.decimal,
                      "encoding": args.encoding}).save(args.save)


def _save_and_plot(args, model, preprocessing_spec, task, y_scale) -> None:
    """train's --save and --plot."""
    if args.save:
        _save(args, model, preprocessing_spec, task, y_scale)
        _say(f"saved {args.save}")
    if args.plot:
        if not hasattr(model, "history_"):
            _say("note: --plot needs an epoch-based solver; no plot written", file=sys.stderr)
        else:
            import matplotlib

            matplotlib.use("Agg")
            from .plot import training_summary

            training_summary(model).savefig(args.plot, dpi=110)
            _say(f"wrote {args.plot}")


class _LastEpoch:
    """A callback keeping the network as of the last finished epoch: Ctrl-C stops a fit
    mid-epoch, and --save then writes the model as of that epoch."""

    def __init__(self):
        self.state, self.epochs, self.counts = None, 0, None

    def __call__(self, estimator, record):
        self.state, self.epochs = estimator._network.state(), len(estimator.history_)
        self.counts = (estimator.n_iter_, estimator.t_)

    def restore(self, estimator) -> None:
        estimator._network.load_state(self.state)
        if len(estimator.history_) > self.epochs:  # Ctrl-C between the record and here
            del estimator.history_[self.epochs:], estimator.loss_curve_[self.epochs:]
            estimator.n_iter_, estimator.t_ = self.counts
            estimator.loss_ = estimator.history_[-1]["loss"]


def _fit_until_interrupted(fit) -> bool:
    """fit(); True when Ctrl-C stopped it (the fit's "Training interrupted by user." warning
    becomes the command's own line)."""
    from .estimators import TrainingInterrupted

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", TrainingInterrupted)
            fit()
    except TrainingInterrupted:
        return True
    return False


def _interrupted(args, model, last_epoch, save) -> int:
    """Ctrl-C stopped training: one line, saying what --save wrote; exit status 130."""
    what = f"nncore {args.command}: interrupted"
    if last_epoch.state is None:
        _say(f"{what} before the first epoch ended" + ("; nothing saved" if args.save else ""),
             file=sys.stderr)
        return 130
    last_epoch.restore(model)
    if args.save:
        save()
    _say(f"{what} after epoch {last_epoch.epochs} of {args.epochs}"
         + (f"; saved the model as of epoch {last_epoch.epochs} to {args.save}" if args.save
            else ""), file=sys.stderr)
    return 130


def _categorical(args) -> tuple:
    """The column names --categorical lists."""
    return tuple(c.strip() for c in args.categorical.split(",") if c.strip())


def _load_dataset(args):
    """(feature table, target values, task, description, notes)."""
    import pandas as pd

    if args.csv:
        from .tabular import numeric_values, pop_target, read_csv, rows_text, text_column_notes

        frame = read_csv(args.csv, sep=args.sep, decimal=args.decimal, encoding=args.encoding)
        target, y_column = pop_target(frame, args.target, args.csv)
        notes = []
        missing = y_column.isna()
        if missing.any():
            if not args.drop_missing_target:
                raise ValueError(f"target {target!r} is empty in {int(missing.sum())} row(s) "
                                 f"({rows_text(missing)}): fill them or pass "
                                 f"--drop-missing-target")
            frame, y_column = frame[~missing], y_column[~missing]  # rows keep their numbers
            notes.append(f"dropped {int(missing.sum())} row(s) with an empty target")
        numbers = numeric_values(y_column, target)
        task = _auto_task(numbers) if args.task == "auto" else args.task
        if args.task == "auto" and numbers is not None and np.all(numbers == np.round(numbers)):
            # The rule is a guess for integer targets: say what it decided and why.
            distinct = len(np.unique(numbers))
            other = "regression" if task == "classification" else "classification"
            notes.append(f"--task auto chose {task}: the target holds {distinct} distinct integer "
                         f"values ({'at most' if task == 'classification' else 'more than'} 20); "
                         f"pass --task {other} otherwise")
        if task == "regression":
            if numbers is None:
                raise ValueError(f"target {target!r} is not numeric: use --task classification")
            y = numbers
        elif numbers is not None and np.all(numbers == np.round(numbers)):
            y = numbers.astype(np.int64)
        else:
            y = y_column.map(str).to_numpy()
        if task == "classification" and len(np.unique(y)) < 2:
            raise ValueError(f"target {target!r} holds one class ({y[0]!r}) in every row: "
                             f"classification needs two or more")
        notes += text_column_notes(frame, _categorical(args))
        return frame, y, task, f"{args.csv} (target {target!r})", notes
    import sklearn.datasets

    name = args.dataset or "breast_cancer"
    bunch = getattr(sklearn.datasets, f"load_{name}")()
    names = [str(n) for n in getattr(bunch, "feature_names", range(bunch.data.shape[1]))]
    frame = pd.DataFrame(bunch.data, columns=names)
    task = "regression" if name in _REGRESSION_DATASETS else "classification"
    return frame, bunch.target, task, name, []


def _split(n, y, args, classification):
    """Row indices (train, validation, test); too few rows is one clear line."""
    from sklearn.model_selection import train_test_split

    all_rows = np.arange(n)

    def split(rows, size, what):
        labels = y[rows] if classification else None
        if classification and np.min(np.unique(labels, return_counts=True)[1]) < 2:
            labels = None  # a class with one row cannot be stratified: split at random
        try:
            return train_test_split(rows, test_size=size, random_state=args.seed, stratify=labels)
        except ValueError:
            raise ValueError(f"{len(rows)} rows are too few to hold out {size:g} of them for "
                             f"{what}: use more rows or a different --{what.split()[0]}"
                             f"{'-size' if what == 'test' else ''}") from None

    train_rows, test_rows = (split(all_rows, args.test_size, "test") if args.test_size > 0
                             else (all_rows, all_rows[:0]))
    val_rows = all_rows[:0]
    if args.validation > 0:
        train_rows, val_rows = split(train_rows, args.validation, "validation")
    if len(train_rows) < 2:
        raise ValueError(f"{n} rows are too few: only {len(train_rows)} training row(s) left "
                         f"after the splits; use more rows or smaller --test-size/--validation")
    return train_rows, val_rows, test_rows


# ---- train ------------------------------------------------------------------------------------
def _model(args, cls, **extra):
    """The estimator the model options describe (epochs are the user's: no early stop on tol)."""
    return cls(hidden_layer_sizes=args.hidden, activation=args.activation, solver=args.solver,
               learning_rate_init=args.learning_rate, schedule=args.schedule,
               batch_size=args.batch_size, max_iter=args.epochs, alpha=args.alpha,
               batch_norm=args.batch_norm, dropout=args.dropout, n_iter_no_change=np.inf,
               **extra)


def _note(message, category, *rest, **kwargs) -> None:
    """A warning shown as the command's own note line."""
    _say(f"note: {message}", file=sys.stderr)


def _stream_command(args) -> int:
    """train --stream: fit_stream over Parquet or CSV files, the last one held out."""
    import pandas as pd
    from sklearn.exceptions import ConvergenceWarning

    from .callbacks import Callback
    from .estimators import MLPClassifier, MLPRegressor
    from .network import DivergenceError
    from .streaming import fit_stream, partitions_of

    source = args.parquet or args.csv
    if not source:
        raise ValueError("--stream reads --parquet GLOB or --csv GLOB")
    if not args.target:
        raise ValueError("--stream needs --target, the label column")
    if args.impute is not None:
        raise ValueError("--impute is not available with --stream (one pass cannot find medians"
                         "); missing values are an error naming their column")
    if args.solver == "lbfgs":
        raise ValueError("--stream needs an epoch-based --solver (sgd, momentum, adam, adamw)")
    for path, option in ((args.save, "--save"), (args.plot, "--plot")):
        if path:
            _check_writable(path, option)
    parts = partitions_of(source, args.target)
    task = args.task
    if task == "auto":  # decided on the first partition's targets
        from .tabular import numeric_values

        _, sample = parts.read(0)
        task = _auto_task(numeric_values(pd.Series(sample), args.target))
    holdout = 1 if parts.count >= 2 and args.validation > 0 else 0

    class _Printer(Callback):
        def __call__(self, estimator, record):
            if not args.progress:
                _say(_epoch_line(record, args.epochs))

    cls = MLPClassifier if task == "classification" else MLPRegressor
    last_epoch = _LastEpoch()
    model = _model(args, cls, random_state=args.seed, n_threads=args.threads,
                   progress=args.progress, callbacks=[last_epoch, _Printer()])
    categorical = _categorical(args)
    _say(f"nncore: streaming {source} ({parts.count} partition(s), {holdout} held out for "
         f"validation), {task}, buffer {args.buffer_rows} rows")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.showwarning = _note  # the statistics pass's notes, as train's
            interrupted = _fit_until_interrupted(lambda: fit_stream(
                model, source, target=args.target, buffer_rows=args.buffer_rows,
                holdout=holdout, standardize=args.standardize, categorical=categorical))
    except DivergenceError as exc:
        _say(f"nncore train: error: {exc}", file=sys.stderr)
        return 1
    if interrupted:
        return _interrupted(args, model, last_epoch, lambda: _save(
            args, model, model.preprocessing_.spec, task, (0.0, 1.0)))
    last = model.history_[-1]
    _say(f"trained on {model.t_ // max(model.n_iter_, 1)} rows per epoch; final loss "
         f"{_number(last['loss'])}"
         + ("" if last["val_score"] is None else
            f", validation {'accuracy' if task == 'classification' else 'R^2'} "
            f"{last['val_score']:.4f}"))
    _save_and_plot(args, model, model.preprocessing_.spec, task, (0.0, 1.0))
    return 0


def _train_command(args) -> int:
    from sklearn.exceptions import ConvergenceWarning

    from .estimators import MLPClassifier, MLPRegressor
    from .network import DivergenceError
    from .tabular import Preprocessing, check_complete

    for path, option in ((args.save, "--save"), (args.plot, "--plot")):
        if path:
            _check_writable(path, option)
    frame, y, task, description, notes = _load_dataset(args)
    if args.impute is None:
        check_complete(frame)  # over every row, before any split
    classification = task == "classification"
    train_rows, val_rows, test_rows = _split(len(y), y, args, classification)
    categorical = _categorical(args)
    preprocessing = Preprocessing.fit(frame.iloc[train_rows], standardize=args.standardize,
                                      impute=args.impute, categorical=categorical)
    X = {name: preprocessing.transform(frame.iloc[rows])
         for name, rows in (("train", train_rows), ("validation", val_rows), ("test", test_rows))}
    Y = {"train": y[train_rows], "validation": y[val_rows], "test": y[test_rows]}
    y_scale = (float(Y["train"].mean()), float(Y["train"].std()) or 1.0) \
        if not classification and args.standardize else (0.0, 1.0)

    def fit_target(values):
        return values if classification else (values - y_scale[0]) / y_scale[1]

    cls = MLPClassifier if classification else MLPRegressor
    progress = args.progress

    from .callbacks import Callback

    class _Monitor(Callback):
        """Scores the command's own validation rows after each epoch, fills the record's
        val_loss / val_score (so history_ and the plot carry them) and prints a line."""

        def __call__(self, estimator, record):
            if len(val_rows):
                y_val = fit_target(Y["validation"])
                record["val_loss"] = estimator.mean_loss(X["validation"], y_val)
                record["val_score"] = estimator.score(X["validation"], y_val)
            if not progress:
                _say(_epoch_line(record, args.epochs))

    last_epoch = _LastEpoch()
    model = _model(args, cls, random_state=args.seed, n_threads=args.threads,
                   progress=progress, callbacks=[last_epoch, _Monitor()])
    for note in notes:
        _say(f"note: {note}")
    _say(f"nncore: {description}, {task}; {len(train_rows)} train / {len(val_rows)} validation "
         f"/ {len(test_rows)} test rows, {X['train'].shape[1]} inputs")
    if args.solver != "lbfgs" and args.batch_size > len(train_rows):
        _say(f"note: --batch-size {args.batch_size} is more than the {len(train_rows)} training "
             f"rows: each epoch is one batch of {len(train_rows)}")
    _say(f"model: {cls.__name__}(hidden={','.join(map(str, args.hidden))}, "
         f"activation={args.activation}, solver={args.solver}, learning_rate={args.learning_rate:g}"
         f" [{args.schedule}], batch_size={args.batch_size}, epochs={args.epochs}"
         f"{', batch_norm' if args.batch_norm else ''})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # epochs are the user's choice
            warnings.filterwarnings("ignore", message="Got `batch_size`")  # said above
            interrupted = _fit_until_interrupted(
                lambda: model.fit(X["train"], fit_target(Y["train"])))
    except DivergenceError as exc:
        _say(f"nncore train: error: {exc}", file=sys.stderr)
        return 1
    if interrupted:
        return _interrupted(args, model, last_epoch, lambda: _save(
            args, model, preprocessing.spec, task, y_scale))

    _say(_metrics_table(model, X, Y, classification, y_scale))
    _save_and_plot(args, model, preprocessing.spec, task, y_scale)
    return 0


def _metrics_table(model, X, Y, classification, y_scale) -> str:
    from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score

    header = ("loss", "accuracy") if classification else ("RMSE", "R^2")
    lines = [f"{'':12s}{header[0]:>12s}{header[1]:>12s}"]
    for split in ("train", "validation", "test"):
        if len(Y[split]) == 0:
            continue
        if classification:
            proba = model.predict_proba(X[split])
            loss = log_loss(Y[split], proba, labels=model.classes_)
            lines.append(f"{split:12s}{loss:12.4f}"
                         f"{accuracy_score(Y[split], model.predict(X[split])):12.4f}")
        else:
            pred = model.predict(X[split]) * y_scale[1] + y_scale[0]
            rmse = math.sqrt(mean_squared_error(Y[split], pred))
            r2 = r2_score(Y[split], pred) if len(Y[split]) > 1 else math.nan
            lines.append(f"{split:12s}{rmse:12.4f}{r2:12.4f}")
    return "\n".join(lines)


# ---- predict ----------------------------------------------------------------------------------
def _predict_command(args) -> int:
    import csv

    from .persistence import load
    from .tabular import TabularModel

    if args.output:
        _check_writable(args.output, "--output")
    model = load(args.model)  # its errors name the file and what is wrong with it
    if not isinstance(model, TabularModel):
        raise ValueError(f"{args.model} was not written by `nncore train --save`: it carries no "
                         f"preprocessing; use nncore.load() from Python instead")
    frame = model.read_csv(args.data, sep=args.sep, decimal=args.decimal, encoding=args.encoding)
    unseen: dict = {}
    X = model.transform(frame, unseen=unseen)
    for column, counts in unseen.items():
        listed = ", ".join(f"{v!r} ×{c}" for v, c in list(counts.items())[:5])
        _say(f"note: column {column!r}: {sum(counts.values())} row(s) with categories not seen "
             f"in training ({listed}), encoded as all zeros", file=sys.stderr)
    n = X.shape[0]
    out = open(args.output, "w", newline="") if args.output else sys.stdout
    try:
        writer = csv.writer(out)
        estimator = model.estimator
        if model.task == "classification":
            proba = estimator.predict_proba(X)
            writer.writerow(["prediction", *[f"proba_{c}" for c in estimator.classes_]])
            for label, row in zip(estimator.predict(X), proba):
                writer.writerow([label, *[f"{p:.6g}" for p in row]])
        else:
            writer.writerow(["prediction"])
            for value in model.target_units(estimator.predict(X)):
                writer.writerow([f"{value:.10g}"])
        out.flush()
    except BrokenPipeError:  # `| head` has what it wanted
        _silence(sys.stdout)
        return 0
    finally:
        if args.output:
            out.close()
    if args.output:
        _say(f"wrote {n} predictions to {args.output}")
    return 0


# ---- serve ------------------------------------------------------------------------------------
def _serve_command(args) -> int:
    from . import serve

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    serve.run(args.model, host=args.host, port=args.port, workers=args.workers,
              max_rows=args.max_rows, max_body_mb=args.max_body_mb, access_log=args.access_log)
    return 0


_LAB_EXPERIMENTS = ("zero-init", "scaling", "batch-size", "step-size", "optimizers", "batch-norm")
_LAB_DATASETS = ("digits", "noisy-binary", "breast-cancer")
_LAB_DESCRIPTION = """Each experiment trains 2x64 ReLU MLPs over seeds and prints a table of mean and
spread and what it concludes about the lecture's claim:
  zero-init   zeros vs Glorot vs He initialisation: loss curves, distinct hidden units
  scaling     raw vs standardised inputs: epochs and seconds to a loss target
  batch-size  batch 8..full at one learning rate, trained to the same loss: test accuracy and
              the curvature of the minimum (top eigenvalue, trace, eps-sharpness, slices)
  step-size   constant vs invscaling vs step vs cosine decay
  optimizers  SGD, momentum, Nesterov, Adam, AdamW at their usual rates
  batch-norm  with and without, up to rates where the plain network diverges
Ctrl-C stops the remaining fits and keeps (and writes) the finished ones."""


def _lab_command(args) -> int:
    import inspect

    from .lab import EXPERIMENTS

    if args.target and not args.csv:
        raise ValueError("--target goes with --csv")
    function = EXPERIMENTS[args.experiment]
    accepted = inspect.signature(function).parameters
    options = {"seeds": args.seeds, "quick": args.quick, "n_jobs": args.n_jobs,
               "progress": args.progress, "out": args.out or f"lab-{args.experiment}",
               "datasets": args.dataset, "csv": args.csv, "target_column": args.target,
               "scheduler": args.scheduler,
               "command": " ".join(["nncore"] + args.argv)}
    for option, name in (("protocol", "protocol"), ("learning_rate", "learning_rate"),
                         ("target_loss", "target"), ("max_steps", "max_steps"),
                         ("epochs", "epochs")):
        value = getattr(args, option)
        if value is None or (option == "protocol" and value == "loss"):
            continue
        if name not in accepted:
            raise ValueError(f"--{option.replace('_', '-')} does not apply to {args.experiment}")
        options[name] = value
    result = function(**options)
    _say(result.report())
    if result.interrupted:
        _say(f"nncore lab: interrupted; the tables hold the {len(result.runs)} run(s) finished "
             f"before Ctrl-C", file=sys.stderr)
        return 130
    return 0


_SWEEP_DESCRIPTION = """Fits MLPClassifier (or MLPRegressor) for every setting of --grid and every seed,
each fit with its preprocessing fitted on its own training rows, and scores it on a validation
split (or --cv folds). Prints the best settings with their spread over seeds; writes the table
(one row per setting and seed) and a heat map. Fits run here, in --n-jobs processes, or on Dask
(--scheduler). A diverging fit is a row of the table, not an error."""


def _grid_value(name: str, text: str):
    if name.endswith("hidden_layer_sizes"):
        return _hidden_sizes(text.replace("-", ","))
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


def _sweep_command(args) -> int:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from . import build_info
    from ._version import __version__
    from .cluster import check_scheduler
    from .estimators import MLPClassifier, MLPRegressor
    from .plot import sweep_heatmap
    from .sweeps import best_settings, sweep
    from .tabular import TablePreprocessor, check_complete

    grid = _parse_grid(args.grid)
    _check_writable(args.out, "--out")
    check_scheduler(args.scheduler)
    swept = list(grid)
    axes = args.axes.split(",") if args.axes else swept[:2]
    if (args.axes or len(swept) >= 2) and (len(axes) != 2 or any(a not in swept for a in axes)):
        raise ValueError(f"--axes names two swept parameters (of {', '.join(swept)}), got "
                         f"{args.axes!r}")
    picture = args.heatmap or (os.path.splitext(args.out)[0] + ".png" if len(swept) >= 2
                               else None)
    if picture:
        _check_writable(picture, "--heatmap")
    frame, y, task, description, notes = _load_dataset(args)
    if args.impute is None:
        check_complete(frame)
    classification = task == "classification"
    categorical = _categorical(args)
    cls = MLPClassifier if classification else MLPRegressor
    model = _model(args, cls)
    estimator = Pipeline([("prep", TablePreprocessor(args.standardize, args.impute, categorical)),
                          ("mlp", model)])
    if not classification and args.standardize:
        estimator = TransformedTargetRegressor(regressor=estimator, transformer=StandardScaler())
    for note in notes:
        _say(f"note: {note}")
    n_fits = args.seeds * math.prod(len(v) for v in grid.values()) * (args.cv or 1)
    where = (f"Dask ({args.scheduler})" if args.scheduler else
             f"{args.n_jobs} local processes" if args.n_jobs > 1 else "this process")
    _say(f"nncore sweep: {description}, {task}, {len(y)} rows; {n_fits} fits in {where}")
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
        _say(f"nncore sweep: interrupted before any fit finished; wrote the empty table to "
             f"{args.out}", file=sys.stderr)
        return 130
    best = best_settings(table)
    _say(f"\nbest settings (validation {score}: mean ± standard deviation over {args.seeds} "
         f"seed(s)):")
    for row in best.head(5).to_dict("records"):
        setting = ", ".join(f"{name}={row[name]}" for name in swept)
        failed = f"  [{row['diverged']} diverged]" if row["diverged"] else ""
        spread = 0.0 if math.isnan(row["val_score_std"]) else row["val_score_std"]
        _say(f"  {row['val_score_mean']:.4f} ± {spread:.4f}  {setting}{failed}")
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
    _say(f"\n{fits} fits in {wall:.1f} s ({fits / wall * 60:.0f} per minute); wrote {args.out}"
         + (f" and {picture}" if picture else ""))
    if table.attrs["interrupted"]:
        _say(f"nncore sweep: interrupted; the table holds the {fits} fit(s) finished before "
             f"Ctrl-C", file=sys.stderr)
        return 130
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        if args.command == "lab":
            return _lab_command(args)
        if args.command == "sweep":
            return _sweep_command(args)
        if args.command == "train":
            if args.stream:
                return _stream_command(args)
            if args.parquet:
                raise ValueError("--parquet goes with --stream")
            if args.target and not args.csv:
                raise ValueError("--target goes with --csv")
            return _train_command(args)
        if args.command == "serve":
            return _serve_command(args)
        return _predict_command(args)
    except (ValueError, OSError, ImportError) as exc:
        print(f"nncore {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside a fit (loading, scoring, writing, plotting)
        print(f"nncore {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
