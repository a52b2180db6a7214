"""The data `train` and `sweep` read — a CSV file with its target column, or a scikit-learn
bundled data set — and train's split of the rows into train / validation / test."""

from __future__ import annotations

import numpy as np

_REGRESSION_DATASETS = ("diabetes",)


def auto_task(numbers) -> str:
    """--task auto: classification for text targets (numbers None) or few integer values."""
    few_integers = (numbers is not None and np.all(numbers == np.round(numbers))
                    and len(np.unique(numbers)) <= 20)
    return "classification" if numbers is None or few_integers else "regression"


def categorical(args) -> tuple:
    """The column names --categorical lists."""
    return tuple(c.strip() for c in args.categorical.split(",") if c.strip())


def load_dataset(args):
    """(feature table, target values, task, description, notes)."""
    import pandas as pd

    if args.csv:
        from ..tabular import numeric_values, pop_target, read_csv, rows_text, text_column_notes

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
        task = auto_task(numbers) if args.task == "auto" else args.task
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
        notes += text_column_notes(frame, categorical(args))
        return frame, y, task, f"{args.csv} (target {target!r})", notes
    import sklearn.datasets

    name = args.dataset or "breast_cancer"
    bunch = getattr(sklearn.datasets, f"load_{name}")()
    names = [str(n) for n in getattr(bunch, "feature_names", range(bunch.data.shape[1]))]
    frame = pd.DataFrame(bunch.data, columns=names)
    task = "regression" if name in _REGRESSION_DATASETS else "classification"
    return frame, bunch.target, task, name, []


def split_rows(n, y, args, classification):
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
