"""The `nncore` command. `nncore train` fits an MLP with the C++ core on one of scikit-learn's
bundled data sets, printing the training loss per epoch and the test score."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .network import ACTIVATIONS, DivergenceError, Network
from .training import train

# name -> (loader, task)
_DATASETS = {
    "breast_cancer": ("load_breast_cancer", "binary"),
    "digits": ("load_digits", "multiclass"),
    "iris": ("load_iris", "multiclass"),
    "wine": ("load_wine", "multiclass"),
    "diabetes": ("load_diabetes", "regression"),
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _hidden_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}")
    return sizes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nncore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an MLP on a bundled data set")
    t.add_argument("--dataset", choices=sorted(_DATASETS), default="breast_cancer")
    t.add_argument("--hidden", type=_hidden_sizes, default=[32], help="e.g. 64,32 (default 32)")
    t.add_argument("--activation", choices=ACTIVATIONS, default="relu")
    t.add_argument("--epochs", type=_positive_int, default=30)
    t.add_argument("--batch-size", type=_positive_int, default=32)
    t.add_argument("--learning-rate", type=_positive_float, default=0.05)
    t.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty (default 1e-4)")
    t.add_argument("--test-size", type=float, default=0.25)
    t.add_argument("--seed", type=int, default=0)
    return parser


def _standardize(train: np.ndarray, *others: np.ndarray):
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1.0
    return [(a - mean) / std for a in (train, *others)]


def _train_command(args) -> int:
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    loader, task = _DATASETS[args.dataset]
    X, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=args.test_size, random_state=args.seed,
        stratify=None if task == "regression" else y,
    )
    X_tr, X_te = _standardize(X_tr, X_te)
    if task == "regression":
        y_mean, y_std = y_tr.mean(), y_tr.std()
        targets, loss, n_outputs = (y_tr - y_mean) / y_std, "squared_error", 1
    elif task == "binary":
        targets, loss, n_outputs = y_tr, "logistic", 1
    else:
        targets, loss, n_outputs = y_tr, "softmax", int(y.max()) + 1

    net = Network([X.shape[1], *args.hidden, n_outputs], args.activation, loss,
                  alpha=args.alpha, random_state=args.seed)
    print(f"nncore: {args.dataset} ({X_tr.shape[0]} train / {X_te.shape[0]} test rows, "
          f"{X.shape[1]} features), {net}")

    def report(epoch, loss_value):
        print(f"epoch {epoch + 1:3d}/{args.epochs}  loss {loss_value:.6f}")

    start = time.perf_counter()
    try:
        train(net, X_tr, targets, epochs=args.epochs, learning_rate=args.learning_rate,
              batch_size=args.batch_size, random_state=args.seed, callback=report)
    except DivergenceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start

    if task == "regression":
        pred = net.predict(X_te)[:, 0] * y_std + y_mean
        r2 = 1.0 - np.sum((y_te - pred) ** 2) / np.sum((y_te - y_te.mean()) ** 2)
        print(f"test R^2 {r2:.4f}   ({seconds:.3f} s training)")
    else:
        proba = net.predict(X_te)
        pred = (proba[:, 0] >= 0.5).astype(int) if task == "binary" else proba.argmax(axis=1)
        print(f"test accuracy {np.mean(pred == y_te):.4f}   ({seconds:.3f} s training)")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "train":
        return _train_command(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
