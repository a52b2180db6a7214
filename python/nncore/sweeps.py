"""Sweeps: every setting of a parameter grid × every seed, fitted independently — locally
(joblib) or as Dask tasks — into one tidy table.

    table = nncore.sweep(nncore.MLPClassifier(max_iter=50), {"learning_rate_init": [1e-3, 1e-2],
                         "batch_size": [32, 128]}, X, y, seeds=3, n_jobs=2)
    nncore.best_settings(table)   # mean ± spread of the validation score over seeds, best first

One row per setting and seed: a column per swept parameter (named as the parameter), `seed`,
`train_score`, `val_score` (the estimator's `score`: accuracy or R²), `train_loss` (the
estimator's final `loss_`), `val_loss` (its `mean_loss` on the held-out rows), `epochs`
(`n_iter_`), `fit_seconds`, `diverged` and `converged` (False where scikit-learn's
ConvergenceWarning was raised: the fit stopped at max_iter; the warning itself is not repeated). By default every fit holds out the same stratified
validation split (random_state=0); with `cv` (a number of folds or a scikit-learn splitter) each
row is the mean over the folds, with `val_score_std` and `folds`. A fit that diverges is a row
(diverged=True, scores NaN), not a failure."""

from __future__ import annotations

import time
import warnings

import numpy as np

INFO_COLUMNS = ("seed", "train_score", "val_score", "train_loss", "val_loss", "epochs",
                "fit_seconds", "diverged", "converged")


def _short(name: str) -> str:
    """A pipeline's 'mlp__learning_rate_init' is the table's 'learning_rate_init'."""
    return name.rsplit("__", 1)[-1]


def _resolve(estimator, name: str) -> str:
    """A grid's parameter name as the estimator knows it: exact, or the one nested parameter
    (a pipeline step's, a wrapped regressor's) whose name ends with it."""
    params = estimator.get_params()
    if name in params:
        return name
    nested = [p for p in params if p.endswith("__" + name)]
    if len(nested) == 1:
        return nested[0]
    raise ValueError(f"param_grid names {name!r}, which the estimator "
                     + ("has in several places: " + ", ".join(nested) if nested else
                        "does not have"))


def _set_everywhere(estimator, suffix: str, value) -> dict:
    """{param: value} for every parameter of `estimator` (pipelines included) named `suffix`."""
    return {name: value for name in estimator.get_params()
            if name == suffix or name.endswith("__" + suffix)}


def _check_settings(estimator, grid: list[dict]) -> None:
    """Every setting's hyperparameters checked before the first fit (a bad one stopped a sweep
    after the fits before it, with no table): the estimator and every estimator inside it
    (pipeline steps, wrapped regressors) validates its parameters as its fit would."""
    from sklearn.base import BaseEstimator, clone

    for setting in grid:
        model = clone(estimator).set_params(**setting)
        parts = [model] + [v for v in model.get_params().values() if isinstance(v, BaseEstimator)]
        for part in parts:
            validate = getattr(part, "_validate_params", None)
            if validate is None or not hasattr(part, "_parameter_constraints"):
                continue  # an estimator that declares no constraints checks in its fit
            try:
                validate()
            except (ValueError, TypeError) as exc:
                shown = ", ".join(f"{_short(k)}={v!r}" for k, v in setting.items())
                raise type(exc)(f"param_grid setting {shown}: {exc}") from None


def _fit_one(shared, params: dict, seed: int) -> dict:
    """One setting and seed over every split: the row's numbers."""
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning

    from .estimators import TrainingInterrupted
    from .network import DivergenceError

    estimator, X, y, splits, one_thread = shared
    rows = []
    for train, val in splits:
        model = clone(estimator).set_params(**params)
        model.set_params(**_set_everywhere(model, "random_state", seed))
        if one_thread:
            model.set_params(**_set_everywhere(model, "n_threads", 1))
        X_train, X_val = _rows(X, train), _rows(X, val)
        started = time.perf_counter()
        row = {"diverged": False}
        with warnings.catch_warnings(record=True) as caught:  # a column, not a warning per fit
            warnings.simplefilter("always", ConvergenceWarning)
            warnings.simplefilter("always", TrainingInterrupted)  # an error under -W error too
            try:
                model.fit(X_train, y[train])
            except DivergenceError:
                row["diverged"] = True
        if any(issubclass(w.category, TrainingInterrupted) for w in caught):
            raise KeyboardInterrupt  # a fit cut short is not a row: the sweep stops here
        for warning in caught:
            if not issubclass(warning.category, ConvergenceWarning):
                warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                       warning.lineno)
        row["converged"] = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        row["fit_seconds"] = time.perf_counter() - started
        if row["diverged"]:
            rows.append({**row, "train_score": np.nan, "val_score": np.nan,
                         "train_loss": np.nan, "val_loss": np.nan, "epochs": np.nan})
            continue
        final, X_inner, y_inner = _unwrap(model, X_val, y[val])
        row.update(train_score=float(model.score(X_train, y[train])),
                   val_score=float(model.score(X_val, y[val])),
                   train_loss=float(getattr(final, "loss_", np.nan)),
                   val_loss=(float(final.mean_loss(X_inner, y_inner))
                             if hasattr(final, "mean_loss") else np.nan),
                   epochs=int(getattr(final, "n_iter_", 0)))
        rows.append(row)
    return rows


def _unwrap(model, X, y):
    """The fitted MLP inside `model` (a pipeline, a TransformedTargetRegressor, or itself), with
    X and y as it sees them — so val_loss is in the units of its own training loss."""
    if hasattr(model, "regressor_"):
        if model.transformer_ is not None:
            y = model.transformer_.transform(np.asarray(y).reshape(-1, 1)).ravel()
        model = model.regressor_
    if hasattr(model, "steps"):
        for _, step in model.steps[:-1]:
            if step not in (None, "passthrough"):
                X = step.transform(X)
        model = model.steps[-1][1]
    return model, X, y


def _rows(X, index):
    return X.iloc[index] if hasattr(X, "iloc") else X[index]


def _seed_list(seeds) -> list[int]:
    """seeds=N means 0..N-1; a sequence of non-negative integers is taken as given (distinct)."""
    from ._validation import check_int

    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return list(range(check_int(seeds, "seeds")))
    if isinstance(seeds, (str, bytes)) or not np.iterable(seeds):
        raise TypeError(f"seeds must be a count or a sequence of seeds, got {seeds!r}")
    listed = list(seeds)
    if not listed or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0
                         for s in listed):
        raise ValueError(f"seeds must be a count >= 1 or a non-empty sequence of integers >= 0, "
                         f"got {seeds!r}")
    if len(set(listed)) != len(listed):
        raise ValueError(f"seeds must be distinct, got {seeds!r}")
    return [int(s) for s in listed]


def sweep(estimator, param_grid, X, y, *, seeds=3, cv=None,
          validation_fraction: float = 0.2, client=None, scheduler=None, n_jobs: int | None = None,
          progress: bool = False):
    """Fit an estimator for every setting of a grid and every seed, and tabulate the scores.

    Each fit is a clone of ``estimator``; fits that run beside others get ``n_threads=1`` (a
    worker runs as many tasks at once as it has threads). Ctrl-C returns the rows finished so
    far, with ``table.attrs["interrupted"] = True``.

    Parameters
    ----------
    estimator : estimator
        An nncore estimator, or a scikit-learn pipeline ending in one.
    param_grid : dict or list of dict
        Lists of values per parameter name, as ``GridSearchCV`` takes them (a pipeline's
        ``mlp__alpha`` may be written ``alpha`` when only one step has it).
    X : array-like
        The rows.
    y : array-like
        Their targets.
    seeds : int or sequence of int
        A count N for seeds 0..N-1, or the seeds themselves; each is set as every
        ``random_state`` of the estimator.
    cv : int or None
        Score over this many folds; None scores on one validation split.
    validation_fraction : float
        The share of the rows in the validation split (stratified for classifiers, the same for
        every fit).
    client : dask.distributed.Client or None
        Run the fits as tasks of this Dask client.
    scheduler : str or None
        Or a Dask scheduler: ``'local:N'`` (a LocalCluster of N single-threaded workers for this
        call) or ``'tcp://HOST:PORT'``.
    n_jobs : int or None
        Without Dask: the number of local processes (joblib); None or 1 runs in this process.
    progress : bool
        Whether to show a tqdm bar counting the fits.

    Returns
    -------
    pandas.DataFrame
        One row per setting and seed: a column per swept parameter, ``seed``, ``train_score``,
        ``val_score``, ``train_loss``, ``val_loss``, ``epochs``, ``fit_seconds``,
        ``diverged``, ``converged`` and, with ``cv``, ``val_score_std`` and ``folds``.
    """
    import pandas as pd
    from sklearn.base import is_classifier
    from sklearn.model_selection import ParameterGrid, check_cv, train_test_split

    from .cluster import connect, parallel, run_tasks

    seed_list = _seed_list(seeds)
    grid = list(ParameterGrid(param_grid))
    if not grid:
        raise ValueError("param_grid holds no setting")
    grid = [{_resolve(estimator, name): value for name, value in setting.items()}
            for setting in grid]
    _check_settings(estimator, grid)
    y = np.asarray(y)
    if len(y) != len(X):
        raise ValueError(f"X has {len(X)} rows and y {len(y)}")
    classifier = is_classifier(estimator)
    if cv is None:
        if not 0 < validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
        rows = np.arange(len(y))
        splits = [train_test_split(rows, test_size=validation_fraction, random_state=0,
                                   stratify=y if classifier else None)]
    else:
        splits = list(check_cv(cv, y, classifier=classifier).split(np.zeros((len(y), 1)), y))
    tasks = [(setting, seed) for setting in grid for seed in seed_list]
    started = time.perf_counter()
    with connect(client if client is not None else scheduler) as dask_client:
        shared = (estimator, X, y, splits, parallel(n_jobs, dask_client))
        done, interrupted = run_tasks(_fit_one, tasks, shared=shared, n_jobs=n_jobs or 1,
                                      client=dask_client, progress=progress)
    records = []
    for position in sorted(done):
        setting, seed = tasks[position]
        folds = pd.DataFrame(done[position])
        record = {_short(k): _cell(v) for k, v in setting.items()}
        record["seed"] = seed
        for column in ("train_score", "val_score", "train_loss", "val_loss", "epochs",
                       "fit_seconds"):
            record[column] = float(folds[column].mean())
        record["diverged"] = bool(folds["diverged"].any())
        record["converged"] = bool(folds["converged"].all())
        if cv is not None:
            record["val_score_std"] = float(folds["val_score"].std(ddof=1)) if len(folds) > 1 \
                else 0.0
            record["folds"] = len(folds)
        records.append(record)
    columns = [_short(k) for k in grid[0]] + list(INFO_COLUMNS)
    if cv is not None:
        columns += ["val_score_std", "folds"]
    table = pd.DataFrame(records, columns=columns)  # the columns even when no fit finished
    table.attrs.update(interrupted=interrupted, wall_seconds=time.perf_counter() - started,
                       parameters=[_short(k) for k in grid[0]])
    return table


def _cell(value):
    """Tuples (hidden_layer_sizes) print as '64-32' in the table."""
    return "-".join(map(str, value)) if isinstance(value, tuple) else value


def best_settings(table, *, score: str = "val_score"):
    """Summarise a sweep's table per setting, best first.

    Parameters
    ----------
    table : pandas.DataFrame
        What :func:`nncore.sweep` returned.
    score : str
        The column to summarise and rank by.

    Returns
    -------
    pandas.DataFrame
        One row per setting: the mean and standard deviation of ``score`` over seeds, the
        number of seeds and of diverged fits.
    """
    parameters = table.attrs.get("parameters") or [
        c for c in table.columns if c not in INFO_COLUMNS + ("val_score_std", "folds")]
    grouped = table.groupby(parameters, sort=False, dropna=False)
    summary = grouped[score].agg(["mean", "std", "count"]).rename(
        columns={"mean": f"{score}_mean", "std": f"{score}_std", "count": "seeds"})
    summary["diverged"] = grouped["diverged"].sum().astype(int)
    return summary.sort_values(f"{score}_mean", ascending=False).reset_index()
