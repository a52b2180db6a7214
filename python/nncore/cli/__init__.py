"""The `nncore` command.

    nncore train [--dataset breast_cancer | --csv data.csv --target column] [options]
    nncore predict --model model.npz data.csv [--output predictions.csv]
    nncore sweep --grid learning_rate_init=1e-3,1e-2 batch_size=8,32 [data and model options]
    nncore lab zero-init|scaling|batch-size|step-size|optimizers|batch-norm [options]
    nncore lab all [--quick] [--out DIR]  |  nncore lab report DIR
    nncore serve model.npz [--port 8000]

`train` fits an MLPClassifier or MLPRegressor on a CSV file (read by pandas) or one of
scikit-learn's bundled data sets: numeric columns are standardised (unless --no-standardize),
text columns one-hot encoded, missing values an error unless --impute says how to fill them; the
data are split into train / validation / test; the loss is printed per epoch and a table of
train / validation / test metrics at the end. `--save` writes the model and its preprocessing
statistics to one .npz file that `predict` reads back. `sweep` fits a grid of settings over seeds
(locally or on Dask) into one table; `lab` runs one of the lecture's claims as an experiment
(`lab all` every one of them, and writes their report page DIR/index.html); `serve` answers
predictions over HTTP for a saved model.
"""

from __future__ import annotations

import argparse
import sys

from .._parameters import ParameterError
from . import lab, predict, serve, sweep, train
from ._arguments import PARAMETER_FLAGS, HelpFormatter

# The subcommands in the order the help lists them, each module with add_parser and run.
_COMMANDS = {"train": train, "sweep": sweep, "lab": lab, "predict": predict, "serve": serve}


def build_parser() -> argparse.ArgumentParser:
    """The `nncore` command's argument parser (the documentation's command-line page reads it)."""
    from .._version import __version__

    parser = argparse.ArgumentParser(prog="nncore", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"nncore {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in _COMMANDS.values():
        command.add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return _COMMANDS[args.command].run(args)
    except (ValueError, OSError, ImportError) as exc:
        message = exc.spelled(PARAMETER_FLAGS) if isinstance(exc, ParameterError) else exc
        print(f"nncore {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside a fit (loading, scoring, writing, plotting)
        print(f"nncore {args.command}: interrupted", file=sys.stderr)
        return 130


__all__ = ["build_parser", "main"]
