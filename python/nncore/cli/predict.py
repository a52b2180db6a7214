"""`nncore predict`: a model saved by `nncore train --save` applied to the rows of a CSV file,
the predictions (and class probabilities) written as CSV."""

from __future__ import annotations

import sys

from ._arguments import HelpFormatter, csv_options
from ._output import check_writable, say, silence


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("predict", help="predict with a model saved by `nncore train --save`",
                              formatter_class=HelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("data", help="a CSV file with the training columns (the target may be absent)")
    p.add_argument("--output", help="CSV file to write (default: standard output)")
    csv_options(p, defaults_from_model=True)


def run(args) -> int:
    import csv

    from ..persistence import load
    from ..tabular import TabularModel

    if args.output:
        check_writable(args.output, "--output")
    model = load(args.model)  # its errors name the file and what is wrong with it
    if not isinstance(model, TabularModel):
        raise ValueError(f"{args.model} was not written by `nncore train --save`: it carries no "
                         f"preprocessing; use nncore.load() from Python instead")
    frame = model.read_csv(args.data, sep=args.sep, decimal=args.decimal, encoding=args.encoding)
    unseen: dict = {}
    X = model.transform(frame, unseen=unseen)
    for column, counts in unseen.items():
        listed = ", ".join(f"{v!r} ×{c}" for v, c in list(counts.items())[:5])
        say(f"note: column {column!r}: {sum(counts.values())} row(s) with categories not seen "
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
        silence(sys.stdout)
        return 0
    finally:
        if args.output:
            out.close()
    if args.output:
        say(f"wrote {n} predictions to {args.output}")
    return 0
