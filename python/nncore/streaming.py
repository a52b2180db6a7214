"""Training on data larger than memory: an estimator fitted over a stream of chunks, epoch after
epoch, through the same epoch driver as `fit`.

    nncore.MLPClassifier(max_iter=10).fit_stream("data/*.parquet", target="label",
                                                 buffer_rows=50_000, holdout=1)

A source is a path or glob of Parquet or CSV files (read through dask.dataframe, one partition at
a time; `target` names the label column), a Dask DataFrame, a pair (X, y) of Dask arrays (their
row blocks), or any re-iterable of (X, y) chunks (a list, or a function returning a fresh
iterator). Before training, one streaming pass fits the preprocessing — standardisation of
numeric columns, one-hot categories of text columns, the classes — into the statistics document
the command line saves for CSV input (`estimator.preprocessing_`); missing values are an error
naming the column. Every epoch is then one pass over the training partitions: in a fresh random
order, their rows shuffled within a buffer of `buffer_rows` rows (memory stays bounded by the
buffer and one partition, not by the data), each full buffer one call into C++. n_iter_,
loss_curve_, history_, schedules, n_iter_no_change, callbacks and progress count passes, as in
fit. `holdout` partitions (the last ones) are held out: they give the validation scores that
early stopping and validation-reading callbacks use. Minibatches do not cross buffers; buffers
hold a multiple of batch_size rows, so only an epoch's last batch can be short."""

from __future__ import annotations

import glob as globbing
import warnings
from typing import Callable, NamedTuple

import numpy as np

from .tabular import IMPUTE, Preprocessing, check_complete, identifier_like

INSTALL = "pip install 'nncore[dask]'"


class ChunkStream:
    """The training rows as partitions read anew every epoch, cut into shuffled buffers.
    `epoch(rng)` yields one epoch's partitions as (X float array, y); `prepare(X, y)` makes a
    chunk the network takes."""

    def __init__(self, epoch: Callable, prepare: Callable, n_samples: int, buffer_rows: int):
        self.epoch = epoch
        self.prepare = prepare
        self.n_samples = n_samples
        self.buffer_rows = buffer_rows

    def chunks(self, rng, batch_size: int):
        """One epoch's chunks of a multiple of batch_size rows (the last may be shorter). rng (a
        RandomState) shuffles the partition order and the rows in the buffer; None keeps both in
        stored order."""
        size = max(batch_size, self.buffer_rows // batch_size * batch_size)
        X_parts, y_parts, held = [], [], 0
        for X, y in self.epoch(rng):
            X_parts.append(X)
            y_parts.append(y)
            held += len(X)
            while held >= size:
                X_all, y_all = self._shuffled(X_parts, y_parts, rng)
                yield self.prepare(X_all[:size], y_all[:size])
                X_parts, y_parts, held = [X_all[size:]], [y_all[size:]], held - size
        if held:
            yield self.prepare(*self._shuffled(X_parts, y_parts, rng))

    @staticmethod
    def _shuffled(X_parts, y_parts, rng):
        X_all, y_all = np.concatenate(X_parts), np.concatenate(y_parts)
        if rng is None:
            return X_all, y_all
        rows = rng.permutation(len(X_all))
        return X_all[rows], y_all[rows]


# ---- sources ------------------------------------------------------------------------------------


def _dask_dataframe():
    try:
        import dask.dataframe as dd
    except ImportError:
        raise ImportError(f"reading Parquet or CSV files as a stream needs dask: {INSTALL}") \
            from None
    return dd


class _Partitions:
    """A source as numbered partitions. iterate(indices) yields (i, X, y) for those partitions:
    in the order given when the source can read any partition (files, Dask), else in stored
    order (a function returning an iterator: read front to back every time)."""

    def __init__(self, count: int, read: Callable | None = None, sequence: Callable | None = None,
                 columns=None, files=None):
        self.count = count
        self.files = files  # the file of each partition, where there is one
        self.read = read
        self.sequence = sequence
        self.columns = columns  # the feature columns of a table; None for arrays
        self.random_access = read is not None

    def name(self, i: int) -> str:
        """How a message names partition i: its file, or its number."""
        return f"file {self.files[i]!r}" if self.files is not None else f"partition {i}"

    def iterate(self, indices):
        if self.random_access:
            for i in indices:
                yield (i, *self.read(int(i)))
            return
        wanted = set(int(i) for i in indices)
        for i, (X, y) in enumerate(self.sequence()):
            if i in wanted:
                yield i, np.asarray(X), np.asarray(y)


def partitions_of(source, target=None) -> _Partitions:
    """The partitions of any supported source (see the module docstring)."""
    files = None
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        pattern = str(source)
        files = sorted(globbing.glob(pattern))
        if not files:
            raise ValueError(f"no file matches {pattern!r}")
        dd = _dask_dataframe()
        suffixes = {f.rsplit(".", 1)[-1].lower() for f in files}
        if suffixes <= {"parquet", "pq"}:
            source = dd.read_parquet(files)
        elif suffixes <= {"csv"}:
            source = dd.read_csv(files, blocksize=None)  # one partition per file
        else:
            raise ValueError(f"{pattern!r} matches files other than .parquet or .csv: "
                             f"{', '.join(sorted(suffixes))}")
    if hasattr(source, "npartitions") and hasattr(source, "columns"):  # a Dask DataFrame
        columns = [str(c) for c in source.columns]
        if target is None or target not in columns:
            raise ValueError(f"target must name the label column, one of {', '.join(columns)}; "
                             f"got {target!r}")
        features = [c for c in source.columns if str(c) != target]

        one_per_file = files if files is not None and len(files) == source.npartitions else None

        def read(i):
            # A partition (file) without a column the first one has fails inside Dask's read
            # with a bare KeyError; say which file, and what is missing.
            where = f"file {files[i]!r}" if one_per_file is not None else f"partition {i}"
            try:
                frame = source.get_partition(i).compute()
            except KeyError as exc:
                raise ValueError(f"{where} lacks column(s) the first one has ({exc.args[0]}): "
                                 f"every file must hold the same columns") from None
            absent = [str(c) for c in [*features, target] if c not in frame.columns]
            if absent:
                raise ValueError(f"{where} has no column {', '.join(map(repr, absent))}, which "
                                 f"the first one has: every file must hold the same columns")
            return frame[features], frame[target].to_numpy()

        return _Partitions(source.npartitions, read, columns=[str(c) for c in features],
                           files=one_per_file)
    if isinstance(source, tuple) and len(source) == 2 and hasattr(source[0], "blocks"):
        X, y = source  # Dask arrays, blocked along the rows
        if X.numblocks[1:] != (1,) * (X.ndim - 1):
            raise ValueError("X must be chunked along rows only (one block across the columns)")
        if X.chunks[0] != y.chunks[0]:
            raise ValueError("X and y must have the same row blocks")
        return _Partitions(X.numblocks[0], lambda i: (np.asarray(X.blocks[i].compute()),
                                                      np.asarray(y.blocks[i].compute())))
    if target is not None:
        raise ValueError("target names a column of a table source (files or a Dask DataFrame)")
    if callable(source):
        count = sum(1 for _ in source())  # partitions are counted once, read every epoch
        return _Partitions(count, sequence=source)
    if isinstance(source, (list, tuple)):
        pieces = list(source)
        for k, piece in enumerate(pieces):
            if not isinstance(piece, (tuple, list)) or len(piece) != 2:
                raise ValueError(f"chunk {k} of the source is not an (X, y) pair")
        return _Partitions(len(pieces), lambda i: tuple(map(np.asarray, pieces[i])))
    raise TypeError("source must be a path or glob of Parquet/CSV files, a Dask DataFrame, a "
                    "pair of Dask arrays, a list of (X, y) chunks or a function returning an "
                    f"iterator of them; got {type(source).__name__} (a one-shot iterator cannot "
                    "be read again for the next epoch)")


# ---- the statistics pass --------------------------------------------------------------------------


def _table(X, columns):
    import pandas as pd

    if hasattr(X, "columns"):
        return X
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"a chunk's X must be 2-D, got shape {X.shape}")
    names = columns or [f"x{j}" for j in range(X.shape[1])]
    return pd.DataFrame(X, columns=names)


# Streaming reads each row once per epoch and keeps no column whole: it cannot impute.
NO_IMPUTATION = ("streaming cannot fill missing values; fill or drop them in the data first "
                 "(or train in memory: {impute})")
IN_MEMORY_IMPUTE = IMPUTE._replace(call="TablePreprocessor", command="nncore train --csv FILE")


def _check_complete(frame, where) -> None:
    """check_complete with streaming's remedy."""
    check_complete(frame, where=where, remedy=NO_IMPUTATION, mentions={"impute": IN_MEMORY_IMPUTE})


def fit_statistics(parts: _Partitions, training: list[int], *, standardize: bool,
                   classifier: bool, categorical=()):
    """One pass over the training partitions: per numeric column scikit-learn's StandardScaler
    fitted chunk by chunk (partial_fit: the merged mean and variance, the same statistics the
    command line's in-memory preprocessing takes from StandardScaler.fit), per text column its
    categories, and the classes. Returns (Preprocessing, classes or None, rows, a few rows as a
    sample)."""
    from sklearn.preprocessing import StandardScaler

    from .tabular import numeric_values

    scalers, categories, kinds, classes = {}, {}, {}, set()
    rows, sample, names = 0, None, None
    for i, X, y in parts.iterate(training):
        frame = _table(X, parts.columns)
        _check_complete(frame, parts.name(i))
        if names is None:
            names = [str(c) for c in frame.columns]
        elif [str(c) for c in frame.columns] != names:
            raise ValueError(f"partition {i} has columns {list(frame.columns)}, the first had "
                             f"{names}")
        y = np.asarray(y)
        if len(y) != len(frame):
            raise ValueError(f"partition {i}: X has {len(frame)} rows and y {len(y)}")
        if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
            raise ValueError(f"partition {i}: y holds a missing or non-finite value")
        rows += len(frame)
        if classifier:
            classes.update(np.unique(y).tolist())
        for name in names:
            column = frame[name]
            numbers = None if name in categorical else numeric_values(column, name)
            kind = "numeric" if numbers is not None else "categorical"
            if kinds.setdefault(name, kind) != kind:
                raise ValueError(f"column {name!r} holds numbers in some partitions and text in "
                                 f"others; name it in categorical= to treat it as text")
            if kind == "numeric":
                scalers.setdefault(name, StandardScaler()).partial_fit(numbers.reshape(-1, 1))
            else:
                categories.setdefault(name, set()).update(column.map(str).tolist())
        if sample is None:
            sample = (frame.iloc[:1], y[:1])
    if rows == 0:
        raise ValueError("the training partitions hold no rows")
    features = []
    for name in names:
        if kinds[name] == "numeric":
            scaler = scalers[name]
            mean, std = ((float(scaler.mean_[0]), float(scaler.scale_[0])) if standardize
                         else (0.0, 1.0))
            features.append({"name": name, "kind": "numeric", "mean": mean, "std": std,
                             "fill": None})
        else:
            features.append({"name": name, "kind": "categorical",
                             "categories": sorted(categories[name]), "fill": None})
            note = identifier_like(name, len(categories[name]), rows)
            if note:
                warnings.warn(note, UserWarning, stacklevel=3)
    preprocessing = Preprocessing({"standardize": bool(standardize), "impute": None,
                                   "features": features})
    return preprocessing, (np.array(sorted(classes)) if classifier else None), rows, sample


# ---- fit_stream ---------------------------------------------------------------------------------


class StreamPlan(NamedTuple):
    """What a streamed fit needs once the statistics pass is done: the training `stream`, a few
    prepared rows holding every class (`X_sample`, `y_sample`: they set the estimator up as
    fit's first pass would), the held-out partitions as (X, y) or None (`validation`), and the
    fitted `preprocessing` (the estimator's `preprocessing_`)."""

    stream: ChunkStream
    X_sample: np.ndarray
    y_sample: np.ndarray
    validation: tuple | None
    preprocessing: Preprocessing


def plan_stream(estimator, source, *, target, buffer_rows: int, holdout: int, standardize: bool,
                categorical) -> StreamPlan:
    """The statistics pass over `source` and the stream of its training partitions, for
    `estimator.fit_stream` (whose docstring says what the arguments mean)."""
    from sklearn.base import is_classifier

    from ._validation import check_int

    buffer_rows = check_int(buffer_rows, "buffer_rows")
    holdout = check_int(holdout, "holdout", minimum=0)
    parts = partitions_of(source, target)
    if holdout >= parts.count:
        raise ValueError(f"holdout={holdout} leaves no training partition of {parts.count}")
    needs = [c for c in estimator.callbacks if getattr(c, "needs_validation", False)]
    if (estimator.early_stopping or needs) and holdout == 0:
        raise ValueError("early_stopping and validation-reading callbacks need held-out rows "
                         "when streaming: pass holdout=1 (the last partition) or more")
    training = list(range(parts.count - holdout))
    classifier = is_classifier(estimator)
    preprocessing, classes, rows, sample = fit_statistics(
        parts, training, standardize=standardize, classifier=classifier,
        categorical=tuple(categorical))

    def prepared(X):
        return preprocessing.transform(_table(X, parts.columns))

    def epoch(rng):
        order = rng.permutation(training) if rng is not None else training
        for _, X, y in parts.iterate(order):
            yield prepared(X), y

    # A few rows that hold every class set the estimator up (label encoding, layer sizes).
    X_sample = np.repeat(prepared(sample[0]), len(classes) if classifier else 1, axis=0)
    y_sample = classes if classifier else sample[1]
    stream = ChunkStream(epoch, lambda X, y: estimator.prepare(X, y), rows, buffer_rows)
    validation = None
    if holdout:
        held = list(parts.iterate(range(parts.count - holdout, parts.count)))
        for i, X, _ in held:
            _check_complete(_table(X, parts.columns), parts.name(i))
        validation = (np.concatenate([prepared(X) for _, X, _ in held]),
                      np.concatenate([y for _, _, y in held]))
    return StreamPlan(stream, X_sample, y_sample, validation, preprocessing)


def fit_stream(estimator, source, **options):
    """Fit an estimator over data larger than memory: ``estimator.fit_stream(source, **options)``.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        An nncore estimator with an epoch-based solver.
    source : str, Dask collection or iterable
        The data, as :meth:`nncore.MLPClassifier.fit_stream` takes them.
    **options
        The options of :meth:`nncore.MLPClassifier.fit_stream` (``target``, ``epochs``,
        ``buffer_rows``, ``holdout``, ``standardize``, ``categorical``).

    Returns
    -------
    MLPClassifier or MLPRegressor
        The estimator, fitted, with ``preprocessing_``.
    """
    return estimator.fit_stream(source, **options)


def transform_rows(estimator, X):
    """New rows through the preprocessing a streamed fit computed, ready for ``predict``.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        An estimator fitted by :func:`nncore.fit_stream` (it has ``preprocessing_``).
    X : DataFrame or array-like
        The rows, with the training columns.

    Returns
    -------
    ndarray
        The estimator's inputs.
    """
    return estimator.preprocessing_.transform(_table(X, None))
