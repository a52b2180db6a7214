"""`nncore train`: an MLPClassifier or MLPRegressor fitted on a CSV file or a bundled data set
held in memory, split into train / validation / test, with a line per epoch and a table of the
three splits' metrics at the end (`--stream`: see stream.py)."""

from __future__ import annotations

import argparse
import math

from ._arguments import (HelpFormatter, check_target_goes_with_csv, data_options, fraction,
                         model_options, positive_int)
from ._data import categorical, load_dataset, split_rows
from ._fitting import LastEpoch, check_outputs, fit_to_end, model, save, save_and_plot
from ._output import epoch_line, say


def add_parser(subparsers) -> None:
    t = subparsers.add_parser("train", help="train an MLP on a CSV file or a bundled data set",
                              formatter_class=HelpFormatter)
    data_options(t, streaming=True)
    model_options(t)
    t.add_argument("--stream", action="store_true",
                   help="train over the files without loading them: partitions shuffled, rows "
                        "shuffled within --buffer-rows, the last file held out for validation")
    t.add_argument("--buffer-rows", type=positive_int, default=50_000,
                   help="--stream: rows held in memory at once")
    t.add_argument("--validation", type=fraction, default=0.15,
                   help="fraction of the training rows held out for validation")
    t.add_argument("--test-size", type=fraction, default=0.25,
                   help="fraction of the rows held out for the test score")
    t.add_argument("--seed", type=int, default=0,
                   help="seeds the splits, the initial weights and the batch order")
    t.add_argument("--threads", type=positive_int, default=None,
                   help="threads for large matrix products (default: OMP_NUM_THREADS, else all "
                        "usable CPUs)")
    t.add_argument("--save", metavar="MODEL.npz", help="write the model and its preprocessing")
    t.add_argument("--plot", metavar="CURVES.png", help="write the training curves as PNG")
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=False,
                   help="a tqdm progress bar instead of one line per epoch (default: off)")


def run(args) -> int:
    if args.stream:
        from .stream import run as run_stream

        return run_stream(args)
    if args.parquet:
        raise ValueError("--parquet goes with --stream")
    check_target_goes_with_csv(args)
    return _train_in_memory(args)


def _train_in_memory(args) -> int:
    from ..callbacks import Callback
    from ..estimators import MLPClassifier, MLPRegressor
    from ..tabular import Preprocessing, check_complete

    check_outputs(args)
    frame, y, task, description, notes = load_dataset(args)
    if args.impute is None:
        check_complete(frame)  # over every row, before any split
    classification = task == "classification"
    train_rows, val_rows, test_rows = split_rows(len(y), y, args, classification)
    preprocessing = Preprocessing.fit(frame.iloc[train_rows], standardize=args.standardize,
                                      impute=args.impute, categorical=categorical(args))
    X = {name: preprocessing.transform(frame.iloc[rows])
         for name, rows in (("train", train_rows), ("validation", val_rows), ("test", test_rows))}
    Y = {"train": y[train_rows], "validation": y[val_rows], "test": y[test_rows]}
    y_scale = (float(Y["train"].mean()), float(Y["train"].std()) or 1.0) \
        if not classification and args.standardize else (0.0, 1.0)

    def fit_target(values):
        return values if classification else (values - y_scale[0]) / y_scale[1]

    cls = MLPClassifier if classification else MLPRegressor
    progress = args.progress

    class _Monitor(Callback):
        """Scores the command's own validation rows after each epoch, fills the record's
        val_loss / val_score (so history_ and the plot carry them) and prints a line."""

        def __call__(self, estimator, record):
            if len(val_rows):
                y_val = fit_target(Y["validation"])
                record["val_loss"] = estimator.mean_loss(X["validation"], y_val)
                record["val_score"] = estimator.score(X["validation"], y_val)
            if not progress:
                say(epoch_line(record, args.epochs))

    last_epoch = LastEpoch()
    estimator = model(args, cls, random_state=args.seed, n_threads=args.threads,
                      progress=progress, callbacks=[last_epoch, _Monitor()])
    for note in notes:
        say(f"note: {note}")
    say(f"nncore: {description}, {task}; {len(train_rows)} train / {len(val_rows)} validation "
        f"/ {len(test_rows)} test rows, {X['train'].shape[1]} inputs")
    if args.solver != "lbfgs" and args.batch_size > len(train_rows):
        say(f"note: --batch-size {args.batch_size} is more than the {len(train_rows)} training "
            f"rows: each epoch is one batch of {len(train_rows)}")
    say(f"model: {cls.__name__}(hidden={','.join(map(str, args.hidden))}, "
        f"activation={args.activation}, solver={args.solver}, learning_rate={args.learning_rate:g}"
        f" [{args.schedule}], batch_size={args.batch_size}, epochs={args.epochs}"
        f"{', batch_norm' if args.batch_norm else ''})")
    status = fit_to_end(args, estimator, last_epoch,
                        lambda: estimator.fit(X["train"], fit_target(Y["train"])),
                        lambda: save(args, estimator, preprocessing.spec, task, y_scale),
                        ignored=("Got `batch_size`",))  # the note above said it
    if status is not None:
        return status
    say(_metrics_table(estimator, X, Y, classification, y_scale))
    save_and_plot(args, estimator, preprocessing.spec, task, y_scale)
    return 0


def _metrics_table(estimator, X, Y, classification, y_scale) -> str:
    from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score

    header = ("loss", "accuracy") if classification else ("RMSE", "R^2")
    lines = [f"{'':12s}{header[0]:>12s}{header[1]:>12s}"]
    for split in ("train", "validation", "test"):
        if len(Y[split]) == 0:
            continue
        if classification:
            proba = estimator.predict_proba(X[split])
            loss = log_loss(Y[split], proba, labels=estimator.classes_)
            lines.append(f"{split:12s}{loss:12.4f}"
                         f"{accuracy_score(Y[split], estimator.predict(X[split])):12.4f}")
        else:
            pred = estimator.predict(X[split]) * y_scale[1] + y_scale[0]
            rmse = math.sqrt(mean_squared_error(Y[split], pred))
            r2 = r2_score(Y[split], pred) if len(Y[split]) > 1 else math.nan
            lines.append(f"{split:12s}{rmse:12.4f}{r2:12.4f}")
    return "\n".join(lines)
