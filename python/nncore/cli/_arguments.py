"""What the `nncore` commands share in their parsers: argument types that fail with one clear
line, the help formatter, and the option groups of the data (`train`, `sweep`), of the model and
of a CSV dialect (`train`, `sweep`, `predict`)."""

from __future__ import annotations

import argparse
import math

DATASETS = ("breast_cancer", "diabetes", "digits", "iris", "wine")

# The flags of the library's parameters: library errors (ParameterError) name parameters, and
# the commands print them as the options their users typed.
PARAMETER_FLAGS = {"sep": "--sep", "decimal": "--decimal", "encoding": "--encoding",
                   "categorical": "--categorical", "impute": "--impute", "out": "--out"}


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


def hidden_sizes(text: str) -> tuple:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}")
    return sizes


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The description as written, and every option's default (options without one say in
    their help what happens when they are left out)."""

    def _get_help_string(self, action):
        if action.default in (None, "") or isinstance(action.default, (bool, tuple)):
            return action.help  # its help says it in words
        return super()._get_help_string(action)


def csv_options(parser, defaults_from_model=False):
    where = " (default: as in training)" if defaults_from_model else ""
    parser.add_argument("--sep", default=None if defaults_from_model else ",",
                        help="field separator" + where)
    parser.add_argument("--decimal", default=None if defaults_from_model else ".",
                        help="decimal mark, e.g. ','" + where)
    parser.add_argument("--encoding", default=None if defaults_from_model else "utf-8",
                        help="text encoding" + where)


def data_options(parser, streaming=False):
    """What `train` and `sweep` read: a bundled data set or a CSV file, and how to prepare it."""
    from ..tabular import IMPUTE_STRATEGIES

    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=DATASETS, default=None,
                        help="a scikit-learn bundled data set (default: breast_cancer)")
    source.add_argument("--csv", help="a CSV file with a header row"
                        + (" (with --stream: a glob of CSV files)" if streaming else ""))
    if streaming:
        source.add_argument("--parquet", metavar="GLOB",
                            help="Parquet files (a path or a quoted glob); needs --stream")
    parser.add_argument("--target", help="the target column of --csv (default: the last column)")
    csv_options(parser)
    parser.add_argument("--impute", choices=IMPUTE_STRATEGIES, default=None,
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


def model_options(parser):
    """The model `train` fits and `sweep` starts from."""
    from ..network import ACTIVATIONS
    from ..optim import EPOCH_SOLVERS, SCHEDULES

    parser.add_argument("--hidden", type=hidden_sizes, default=(32,),
                        help="hidden layer sizes, e.g. 64,32 (default: 32)")
    parser.add_argument("--activation", choices=ACTIVATIONS, default="relu",
                        help="activation of the hidden layers")
    parser.add_argument("--solver", choices=(*EPOCH_SOLVERS, "lbfgs"),
                        default="adam", help="optimiser")
    parser.add_argument("--learning-rate", type=positive_float, default=1e-3,
                        help="initial step size")
    parser.add_argument("--schedule", choices=SCHEDULES, default="constant",
                        help="step-size schedule over the epochs")
    parser.add_argument("--batch-size", type=positive_int, default=32,
                        help="rows per minibatch")
    parser.add_argument("--epochs", type=positive_int, default=30,
                        help="epochs (L-BFGS: iterations)")
    parser.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty")
    parser.add_argument("--batch-norm", action="store_true", help="batch-normalise hidden layers")
    parser.add_argument("--dropout", type=fraction, default=0.0,
                        help="dropout rate of every hidden layer, in [0, 1); 0: none")


def check_target_goes_with_csv(args) -> None:
    """--target names a column of --csv: alone it would be silently ignored."""
    if args.target and not args.csv:
        raise ValueError("--target goes with --csv")
