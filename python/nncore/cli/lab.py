"""`nncore lab`: one of the lecture's claims run as an experiment over seeds (see nncore.lab);
the help lists the experiments with the descriptions their modules give."""

from __future__ import annotations

import argparse
import inspect
import sys

from ._arguments import HelpFormatter, check_target_goes_with_csv, positive_float, positive_int
from ._output import say

# The options that pass to an experiment only when it takes them: option → parameter.
_EXPERIMENT_OPTIONS = {"protocol": "protocol", "learning_rate": "learning_rate",
                       "target_loss": "target", "max_steps": "max_steps", "epochs": "epochs",
                       "from_dir": "from_dir"}


def _description(descriptions: dict, architecture: str) -> str:
    # One line each: the documentation renders this text as reStructuredText, where a wrapped
    # line's deeper indent would start a block of its own.
    width = max(map(len, descriptions)) + 2
    names = "\n".join(f"  {name:{width}s}{text}" for name, text in descriptions.items())
    return (f"Each experiment trains {architecture} MLPs over seeds and prints a table of mean "
            f"and\nspread and what it concludes about the lecture's claim:\n\n{names}\n\n"
            f"Ctrl-C stops the remaining fits and keeps (and writes) the finished ones.")


def add_parser(subparsers) -> None:
    from ..lab import ARCHITECTURE, BUILT_IN, DESCRIPTIONS
    from ..lab.batch_size import MAX_STEPS

    lab = subparsers.add_parser(
        "lab", help="run one of the lecture's claims as an experiment over seeds",
        formatter_class=HelpFormatter,
        description=_description(DESCRIPTIONS, ARCHITECTURE.replace("×", "x")))
    lab.add_argument("experiment", choices=tuple(DESCRIPTIONS))
    lab.add_argument("--seeds", type=positive_int, default=3, help="seeds 0..N-1 per setting")
    lab.add_argument("--quick", action="store_true",
                     help="a few seconds: fewer settings and epochs (for tests)")
    lab.add_argument("--out", default=None,
                     help="folder for runs.csv, meta.json and the figures (created if needed; "
                          "default: lab-EXPERIMENT)")
    lab.add_argument("--n-jobs", type=positive_int, default=1,
                     help="fits run in parallel processes, each on one thread")
    lab_data = lab.add_mutually_exclusive_group()
    lab_data.add_argument("--dataset", action="append", choices=BUILT_IN, default=None,
                          help="a built-in data set (repeat for several; default: the "
                               "experiment's own)")
    lab_data.add_argument("--csv", help="a CSV file of a classification problem")
    lab.add_argument("--target", help="the class column of --csv (default: the last column)")
    lab.add_argument("--protocol", choices=("loss", "epochs"), default="loss",
                     help="batch-size: 'loss' trains every run to the same training loss "
                          "(protocol A); 'epochs' gives every batch size the same epochs (B)")
    lab.add_argument("--learning-rate", type=positive_float, default=None,
                     help="batch-size, zero-init, step-size: the (initial) learning rate "
                          "(default: the experiment's)")
    lab.add_argument("--target-loss", type=positive_float, default=None,
                     help="batch-size, scaling, optimizers: the training-loss target "
                          "(default: the experiment's)")
    lab.add_argument("--max-steps", type=positive_int, default=None,
                     help=f"batch-size, protocol A: step cap (default {MAX_STEPS})")
    lab.add_argument("--epochs", type=positive_int, default=None,
                     help="epochs (batch-size: protocol B's budget; default: the experiment's)")
    lab.add_argument("--from", dest="from_dir", default=None, metavar="DIR",
                     help="sharpness-measures: train nothing, measure the runs of this finished "
                          "batch-size or sharpness-measures --out folder (runs.csv, params.npz)")
    lab.add_argument("--scheduler", default=None,
                     help="run the fits on Dask: local:N (a local cluster of N single-threaded "
                          "worker processes, for this run) or tcp://HOST:PORT (needs "
                          "pip install 'nncore[dask]')")
    lab.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                     help="a tqdm bar over the fits")


def run(args) -> int:
    from ..lab import EXPERIMENTS

    check_target_goes_with_csv(args)
    function = EXPERIMENTS[args.experiment]
    accepted = inspect.signature(function).parameters
    options = {"seeds": args.seeds, "quick": args.quick, "n_jobs": args.n_jobs,
               "progress": args.progress, "out": args.out or f"lab-{args.experiment}",
               "datasets": args.dataset, "csv": args.csv, "target_column": args.target,
               "scheduler": args.scheduler,
               "command": " ".join(["nncore"] + args.argv)}
    for option, name in _EXPERIMENT_OPTIONS.items():
        value = getattr(args, option)
        if value is None or (option == "protocol" and value == "loss"):
            continue
        if name not in accepted:
            raise ValueError(f"--{option.replace('_', '-')} does not apply to {args.experiment}")
        options[name] = value
    result = function(**options)
    say(result.report())
    if result.interrupted:
        say(f"nncore lab: interrupted; the tables hold the {len(result.runs)} run(s) finished "
            f"before Ctrl-C", file=sys.stderr)
        return 130
    return 0
