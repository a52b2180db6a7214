"""`nncore train --stream`: `fit_stream` over Parquet or CSV files too large for memory, the
last file held out for validation."""

from __future__ import annotations

from ._data import auto_task, categorical
from ._fitting import LastEpoch, check_outputs, fit_to_end, model, save, save_and_plot
from ._output import epoch_line, number, say


def run(args) -> int:
    import pandas as pd

    from ..callbacks import Callback
    from ..estimators import MLPClassifier, MLPRegressor
    from ..streaming import fit_stream, partitions_of

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
    check_outputs(args)
    parts = partitions_of(source, args.target)
    task = args.task
    if task == "auto":  # decided on the first partition's targets
        from ..tabular import numeric_values

        _, sample = parts.read(0)
        task = auto_task(numeric_values(pd.Series(sample), args.target))
    holdout = 1 if parts.count >= 2 and args.validation > 0 else 0

    class _Printer(Callback):
        def __call__(self, estimator, record):
            if not args.progress:
                say(epoch_line(record, args.epochs))

    cls = MLPClassifier if task == "classification" else MLPRegressor
    last_epoch = LastEpoch()
    estimator = model(args, cls, random_state=args.seed, n_threads=args.threads,
                      progress=args.progress, callbacks=[last_epoch, _Printer()])
    say(f"nncore: streaming {source} ({parts.count} partition(s), {holdout} held out for "
        f"validation), {task}, buffer {args.buffer_rows} rows")
    status = fit_to_end(
        args, estimator, last_epoch,
        lambda: fit_stream(estimator, source, target=args.target, buffer_rows=args.buffer_rows,
                           holdout=holdout, standardize=args.standardize,
                           categorical=categorical(args)),
        lambda: save(args, estimator, estimator.preprocessing_.spec, task, (0.0, 1.0)),
        warnings_as_notes=True)  # the statistics pass's notes, as train's
    if status is not None:
        return status
    last = estimator.history_[-1]
    say(f"trained on {estimator.t_ // max(estimator.n_iter_, 1)} rows per epoch; final loss "
        f"{number(last['loss'])}"
        + ("" if last["val_score"] is None else
           f", validation {'accuracy' if task == 'classification' else 'R^2'} "
           f"{last['val_score']:.4f}"))
    save_and_plot(args, estimator, estimator.preprocessing_.spec, task, (0.0, 1.0))
    return 0
