"""`nncore lab`: one of the lecture's claims run as an experiment over seeds (see nncore.lab),
`nncore lab all` every one of them and their report page, `nncore lab report DIR` that page
rebuilt from finished runs; the help lists the experiments with the descriptions their modules
give."""

from __future__ import annotations

import argparse
import inspect
import sys
import textwrap
from pathlib import Path

from ._arguments import HelpFormatter, check_target_goes_with_csv, positive_float, positive_int
from ._output import say

# The options that pass to an experiment only when it takes them: option → parameter.
_EXPERIMENT_OPTIONS = {"protocol": "protocol", "learning_rate": "learning_rate",
                       "target_loss": "target", "max_steps": "max_steps", "epochs": "epochs",
                       "from_dir": "from_dir"}


def _description(architecture: str) -> str:
    # Wrapped here: the formatter keeps the description as written.
    return textwrap.fill(
        f"Each experiment trains {architecture} MLPs over seeds and prints a table of mean and "
        f"spread and what it concludes about the lecture's claim; 'nncore lab EXPERIMENT "
        f"--help' lists its options. 'nncore lab all' runs every experiment into one folder and "
        f"writes its report page (index.html); 'nncore lab report DIR' rebuilds that page from "
        f"the finished runs. Ctrl-C stops the remaining fits and keeps (and writes) the "
        f"finished ones.", width=79)


class _ListFormatter(HelpFormatter):
    """Each experiment's description on its name's line: argparse sizes the name column
    without the subcommands' deeper indent, so it is widened here."""

    def __init__(self, prog):
        from ..lab import DESCRIPTIONS

        # a name fits its line when the help column is past the subcommands' indent (4), the
        # name and a gap (2)
        column = max(map(len, DESCRIPTIONS)) + 6
        super().__init__(prog, max_help_position=column + 2)
        self._action_max_length = max(self._action_max_length, column)


def _common_options(parser, *, out_help: str, out_default) -> None:
    """The options every experiment and `all` take."""
    parser.add_argument("--seeds", type=positive_int, default=3, help="seeds 0..N-1 per setting")
    parser.add_argument("--quick", action="store_true",
                        help="a few seconds: fewer settings and epochs (for tests)")
    parser.add_argument("--out", default=out_default, help=out_help)
    parser.add_argument("--n-jobs", type=positive_int, default=1,
                        help="fits run in parallel processes, each on one thread")
    parser.add_argument("--scheduler", default=None,
                        help="run the fits on Dask: local:N (a local cluster of N "
                             "single-threaded worker processes, for this run) or "
                             "tcp://HOST:PORT (needs pip install 'nncore[dask]')")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="a tqdm bar over the fits")


def _experiment_options(parser) -> None:
    """The options of one experiment: its data, and its own settings (an experiment that does
    not take one says so when it is given)."""
    from ..lab import BUILT_IN
    from ..lab.batch_size import MAX_STEPS

    _common_options(parser, out_default=None,
                    out_help="folder for runs.csv, meta.json, report.json and the figures "
                             "(created if needed; default: lab-EXPERIMENT)")
    lab_data = parser.add_mutually_exclusive_group()
    lab_data.add_argument("--dataset", action="append", choices=BUILT_IN, default=None,
                          help="a built-in data set (repeat for several; default: the "
                               "experiment's own)")
    lab_data.add_argument("--csv", help="a CSV file of a classification problem")
    parser.add_argument("--target", help="the class column of --csv (default: the last column)")
    parser.add_argument("--protocol", choices=("loss", "epochs"), default="loss",
                        help="batch-size: 'loss' trains every run to the same training loss "
                             "(protocol A); 'epochs' gives every batch size the same epochs (B)")
    parser.add_argument("--learning-rate", type=positive_float, default=None,
                        help="batch-size, zero-init: the learning rate; step-size: one initial "
                             "rate instead of its grid (default: the experiment's)")
    parser.add_argument("--target-loss", type=positive_float, default=None,
                        help="batch-size, scaling, optimizers: the training-loss target "
                             "(default: the experiment's)")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help=f"batch-size, protocol A: step cap (default {MAX_STEPS})")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="epochs (batch-size: protocol B's budget; default: the "
                             "experiment's)")
    parser.add_argument("--from", dest="from_dir", default=None, metavar="DIR",
                        help="sharpness-measures: train nothing, measure the runs of this "
                             "finished batch-size or sharpness-measures --out folder (runs.csv, "
                             "params.npz)")


def add_parser(subparsers) -> None:
    from ..lab import ARCHITECTURE, DESCRIPTIONS

    lab = subparsers.add_parser(
        "lab", help="run the lecture's claims as experiments over seeds, and their report page",
        formatter_class=_ListFormatter,
        description=_description(ARCHITECTURE.replace("×", "x")))
    experiments = lab.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True,
                                     title="experiments, and all of them with their page")
    for name, text in DESCRIPTIONS.items():
        _experiment_options(experiments.add_parser(name, help=text, description=text,
                                                   formatter_class=HelpFormatter))
    every = experiments.add_parser(
        "all", help="every experiment into --out/EXPERIMENT/, then the page --out/index.html",
        description=textwrap.fill(
            "Run every experiment (each on its default data sets) into OUT/EXPERIMENT/, then "
            "write the report page OUT/index.html: one self-contained HTML file with each "
            "claim, its figures, its table, its verdict and the run's version, CPU, seeds and "
            "time.", width=79),
        formatter_class=HelpFormatter)
    _common_options(every, out_default="lab",
                    out_help="folder of the experiments' folders and of index.html")
    report = experiments.add_parser(
        "report", help="rebuild DIR/index.html from the finished runs in DIR",
        description=textwrap.fill(
            "Rebuild the report page DIR/index.html from the finished runs in DIR/EXPERIMENT/ "
            "(their report.json, meta.json and figures), without running anything.", width=79),
        formatter_class=HelpFormatter)
    report.add_argument("folder", metavar="DIR",
                        help="the folder 'nncore lab all' wrote (or one holding experiment "
                             "folders)")


def run(args) -> int:
    from ..lab import EXPERIMENTS

    if args.experiment == "report":
        from ..lab import write_page

        say(f"Wrote {write_page(args.folder)}")
        return 0
    if args.experiment == "all":
        return _run_all(args)
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


def _run_all(args) -> int:
    from ..lab import run_all

    results = run_all(args.out, seeds=args.seeds, quick=args.quick, n_jobs=args.n_jobs,
                      progress=args.progress, scheduler=args.scheduler,
                      command=" ".join(["nncore"] + args.argv),
                      on_result=lambda name, result: say(result.report() + "\n"))
    say(f"Wrote {Path(args.out) / 'index.html'}")
    if any(result.interrupted for result in results.values()):
        say("nncore lab all: interrupted; the page holds the runs finished before Ctrl-C",
            file=sys.stderr)
        return 130
    return 0
