"""The `nncore` command.

    nncore train [--dataset breast_cancer | --csv data.csv --target column] [options]
    nncore predict --model model.npz data.csv [--output predictions.csv]

`train` fits an MLPClassifier or MLPRegressor on a CSV file or one of scikit-learn's bundled data
sets: numeric columns are standardised (unless --no-standardize), other columns one-hot encoded;
the data are split into train / validation / test; the loss is printed per epoch and a table of
train / validation / test metrics at the end. `--save` writes the model and its preprocessing to
one .npz file that `predict` reads back.
"""

from __future__ import annotations

import argparse
import csv
import math
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


def _parser() -> argparse.ArgumentParser:
    from .network import ACTIVATIONS
    from .optim import SCHEDULES

    parser = argparse.ArgumentParser(prog="nncore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an MLP on a CSV file or a bundled data set")
    source = t.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=_DATASETS, default=None,
                        help="a scikit-learn bundled data set (default breast_cancer)")
    source.add_argument("--csv", help="a CSV file with a header row")
    t.add_argument("--target", help="the target column of --csv (default: the last column)")
    t.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                   help="auto: classification for text or few integer target values")
    t.add_argument("--hidden", type=_hidden_sizes, default=(32,), help="e.g. 64,32 (default 32)")
    t.add_argument("--activation", choices=ACTIVATIONS, default="relu")
    t.add_argument("--solver", choices=("sgd", "momentum", "adam", "adamw", "lbfgs"),
                   default="adam")
    t.add_argument("--learning-rate", type=_positive_float, default=1e-3)
    t.add_argument("--schedule", choices=SCHEDULES, default="constant")
    t.add_argument("--batch-size", type=_positive_int, default=32)
    t.add_argument("--epochs", type=_positive_int, default=30)
    t.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty (default 1e-4)")
    t.add_argument("--batch-norm", action="store_true", help="batch-normalise hidden layers")
    t.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="keep numeric columns as they are")
    t.add_argument("--validation", type=_fraction, default=0.15,
                   help="fraction of the training rows held out for validation (default 0.15)")
    t.add_argument("--test-size", type=_fraction, default=0.25)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=_positive_int, default=None,
                   help="threads for large matrix products (default: all usable CPUs)")
    t.add_argument("--save", metavar="MODEL.npz", help="write the model and its preprocessing")
    t.add_argument("--plot", metavar="CURVES.png", help="write the training curves as PNG")
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=False,
                   help="a tqdm progress bar instead of one line per epoch")
    p = sub.add_parser("predict", help="predict with a model saved by `nncore train --save`")
    p.add_argument("--model", required=True)
    p.add_argument("data", help="a CSV file with the training columns (the target may be absent)")
    p.add_argument("--output", help="CSV file to write (default: standard output)")
    return parser


# ---- tabular data: read, encode ---------------------------------------------------------------
def _read_csv(path: str):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise ValueError(f"{path}: needs a header row and at least one data row")
    header, body = rows[0], rows[1:]
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}, line {i}: {len(row)} fields, the header has {len(header)}")
    return header, {name: [row[j].strip() for row in body] for j, name in enumerate(header)}


def _as_numbers(values):
    try:
        return np.array([float(v) for v in values])
    except ValueError:
        return None


class Preprocessing:
    """Standardise numeric columns and one-hot encode the others; JSON round-trips."""

    def __init__(self, spec: dict):
        self.spec = spec

    @classmethod
    def fit(cls, columns: dict, standardize: bool):
        spec = {"features": [], "standardize": standardize}
        for name, values in columns.items():
            numbers = _as_numbers(values)
            if numbers is not None:
                if not np.isfinite(numbers).all():
                    raise ValueError(f"column {name!r} has missing or non-finite values")
                std = float(numbers.std()) or 1.0
                spec["features"].append({"name": name, "kind": "numeric",
                                         "mean": float(numbers.mean()) if standardize else 0.0,
                                         "std": std if standardize else 1.0})
            else:
                spec["features"].append({"name": name, "kind": "categorical",
                                         "categories": sorted(set(values))})
        return cls(spec)

    def transform(self, columns: dict) -> np.ndarray:
        blocks = []
        for feature in self.spec["features"]:
            name = feature["name"]
            if name not in columns:
                raise ValueError(f"the data have no column {name!r}, which the model needs")
            if feature["kind"] == "numeric":
                numbers = _as_numbers(columns[name])
                if numbers is None or not np.isfinite(numbers).all():
                    raise ValueError(f"column {name!r} must hold numbers only")
                blocks.append(((numbers - feature["mean"]) / feature["std"])[:, None])
            else:  # unknown categories encode as all zeros
                index = {c: k for k, c in enumerate(feature["categories"])}
                onehot = np.zeros((len(columns[name]), len(index)))
                for i, value in enumerate(columns[name]):
                    if value in index:
                        onehot[i, index[value]] = 1.0
                blocks.append(onehot)
        return np.hstack(blocks)


def _load_dataset(args):
    """(feature columns as lists of strings, target values, task, description)."""
    if args.csv:
        header, columns = _read_csv(args.csv)
        target = args.target or header[-1]
        if target not in columns:
            raise ValueError(f"--target {target!r} is not a column of {args.csv}; columns: "
                             f"{', '.join(header)}")
        y_text = columns.pop(target)
        numbers = _as_numbers(y_text)
        task = args.task
        if task == "auto":
            few_integers = (numbers is not None and np.all(numbers == np.round(numbers))
                            and len(np.unique(numbers)) <= 20)
            task = "classification" if numbers is None or few_integers else "regression"
        if task == "regression":
            if numbers is None:
                raise ValueError(f"target {target!r} is not numeric: use --task classification")
            y = numbers
        else:
            y = np.array(y_text)
        return columns, y, task, f"{args.csv} (target {target!r})"
    import sklearn.datasets

    name = args.dataset or "breast_cancer"
    bunch = getattr(sklearn.datasets, f"load_{name}")()
    names = [str(n) for n in getattr(bunch, "feature_names", range(bunch.data.shape[1]))]
    columns = {n: [repr(float(v)) for v in bunch.data[:, j]] for j, n in enumerate(names)}
    task = "regression" if name in _REGRESSION_DATASETS else "classification"
    return columns, bunch.target, task, name


# ---- train ------------------------------------------------------------------------------------
def _train_command(args) -> int:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split

    from .estimators import MLPClassifier, MLPRegressor
    from .network import DivergenceError

    columns, y, task, description = _load_dataset(args)
    n = len(y)
    classification = task == "classification"
    all_rows = np.arange(n)
    stratify = y if classification else None
    train_rows, test_rows = train_test_split(all_rows, test_size=args.test_size,
                                             random_state=args.seed, stratify=stratify) \
        if args.test_size > 0 else (all_rows, all_rows[:0])
    val_rows = all_rows[:0]
    if args.validation > 0:
        train_rows, val_rows = train_test_split(
            train_rows, test_size=args.validation, random_state=args.seed,
            stratify=y[train_rows] if classification else None)
    subset = lambda rows: {k: [v[i] for i in rows] for k, v in columns.items()}  # noqa: E731
    preprocessing = Preprocessing.fit(subset(train_rows), args.standardize)
    X = {name: preprocessing.transform(subset(rows))
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
                val = ("" if record["val_score"] is None else
                       f"  val_loss {record['val_loss']:.6f}  val_score {record['val_score']:.4f}")
                print(f"epoch {record['epoch']:3d}/{args.epochs}  loss {record['loss']:.6f}{val}")

    model = cls(hidden_layer_sizes=args.hidden, activation=args.activation, solver=args.solver,
                learning_rate_init=args.learning_rate, learning_rate=args.schedule,
                batch_size=args.batch_size, max_iter=args.epochs, alpha=args.alpha,
                batch_norm=args.batch_norm, random_state=args.seed, n_iter_no_change=np.inf,
                n_threads=args.threads,
                progress=progress, callbacks=[_Monitor()])
    print(f"nncore: {description}, {task}; {len(train_rows)} train / {len(val_rows)} validation "
          f"/ {len(test_rows)} test rows, {X['train'].shape[1]} inputs")
    print(f"model: {cls.__name__}(hidden={','.join(map(str, args.hidden))}, "
          f"activation={args.activation}, solver={args.solver}, learning_rate={args.learning_rate:g}"
          f" [{args.schedule}], batch_size={args.batch_size}, epochs={args.epochs}"
          f"{', batch_norm' if args.batch_norm else ''})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # epochs are the user's choice
            model.fit(X["train"], fit_target(Y["train"]))
    except DivergenceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    print(_metrics_table(model, X, Y, classification, y_scale))
    if args.save:
        model.save(args.save, metadata={"cli": {"preprocessing": preprocessing.spec,
                                                "task": task, "y_scale": list(y_scale)}})
        print(f"saved {args.save}")
    if args.plot:
        if not hasattr(model, "history_"):
            print("note: --plot needs an epoch-based solver; no plot written", file=sys.stderr)
        else:
            import matplotlib

            matplotlib.use("Agg")
            from .plot import training_summary

            training_summary(model).savefig(args.plot, dpi=110)
            print(f"wrote {args.plot}")
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
    from .persistence import load

    model, metadata = load(args.model, with_metadata=True)
    if not isinstance(metadata, dict) or "cli" not in metadata:
        raise ValueError(f"{args.model} was not written by `nncore train --save`: it carries no "
                         f"preprocessing; use nncore.load() from Python instead")
    info = metadata["cli"]
    _, columns = _read_csv(args.data)
    X = Preprocessing(info["preprocessing"]).transform(columns)
    n = X.shape[0]
    out = open(args.output, "w", newline="") if args.output else sys.stdout
    try:
        writer = csv.writer(out)
        if info["task"] == "classification":
            proba = model.predict_proba(X)
            writer.writerow(["prediction", *[f"proba_{c}" for c in model.classes_]])
            for label, row in zip(model.predict(X), proba):
                writer.writerow([label, *[f"{p:.6g}" for p in row]])
        else:
            mean, scale = info["y_scale"]
            writer.writerow(["prediction"])
            for value in model.predict(X) * scale + mean:
                writer.writerow([f"{value:.10g}"])
    finally:
        if args.output:
            out.close()
    if args.output:
        print(f"wrote {n} predictions to {args.output}")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            if args.target and not args.csv:
                raise ValueError("--target goes with --csv")
            return _train_command(args)
        return _predict_command(args)
    except (ValueError, OSError) as exc:
        print(f"nncore {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
