"""Tables for the command line: a CSV read by pandas and checked column by column, and its
preprocessing — imputation, standardisation, one-hot encoding — fitted with scikit-learn's
transformers and kept as a plain statistics document (JSON-ready: means, scales, categories, fill
values; no pickle) that transforms new rows the same way at train and at predict time.

Nothing is guessed silently: a column with missing values is an error naming the column, the
count and the first rows, unless an imputation strategy is given; a column that is numeric except
for a few cells (a decimal comma, a stray word) is reported as such instead of becoming a text
category; at predict time a missing column is named, a missing value names its row and column,
and categories never seen in training are counted."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._parameters import Mention, ParameterError

IMPUTE_STRATEGIES = ("mean", "median", "most_frequent")
# The imputation a message about missing values suggests.
IMPUTE = Mention("impute", "|".join(map(repr, IMPUTE_STRATEGIES)), "|".join(IMPUTE_STRATEGIES))
_SHOWN = 5  # rows or values quoted in a message


def rows_text(mask) -> str:
    """'rows 3, 8, 12, …' for the True entries of a boolean Series over a table's rows: data rows
    counted from 1 as in the file (the table's index, as read_csv numbers the rows)."""
    where = np.asarray(mask.index)[np.asarray(mask, dtype=bool)] + 1
    shown = ", ".join(str(i) for i in where[:_SHOWN])
    return f"row{'s' if len(where) > 1 else ''} {shown}{', …' if len(where) > _SHOWN else ''}"


def read_csv(path, *, sep: str = ",", decimal: str = ".", encoding: str = "utf-8"):
    """The CSV at `path` as a DataFrame (header row; empty cells and NA markers are missing)."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep=sep, decimal=decimal, encoding=encoding,
                            skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ParameterError(f"{path}: cannot be read as CSV ({first}); check {{sep}}, "
                             f"{{decimal}} and {{encoding}}",
                             {name: Mention(name) for name in ("sep", "decimal", "encoding")}) \
            from None
    if frame.shape[0] == 0:
        raise ValueError(f"{path}: needs a header row and at least one data row")
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed: ")]
    if unnamed:
        raise ValueError(f"{path}: the header has {len(unnamed)} empty column name(s) (a row "
                         f"with more fields than the header, or a trailing separator)")
    return frame


# A number as people write it in files: signs, digits grouped or not, '.' or ',' as the decimal
# mark, an exponent. Cells like these in a text column mean a number pandas could not read.
_NUMBER_LIKE = r"^\s*[-+]?(\d[\d\s.,']*)?\d([.,]\d*)?([eE][-+]?\d+)?\s*%?$"


def _finite(values: np.ndarray, column, name: str) -> np.ndarray:
    """values, after a ValueError naming the column and rows of any infinite cell ('inf' in a
    file reads as a number; a model cannot take it)."""
    infinite = np.isinf(values)
    if infinite.any():
        import pandas as pd

        mask = pd.Series(infinite, index=column.index)
        raise ValueError(f"column {name!r} has {int(infinite.sum())} infinite value(s) "
                         f"({rows_text(mask)}): fix them or drop those rows")
    return values


def numeric_values(column, name: str):
    """A column as float64 if it is numeric, else None for a text column. A column whose cells
    are mostly numbers but not all readable (a decimal comma, a stray word among numbers) raises
    ValueError quoting those cells: it must not quietly become a text category; an infinite
    cell raises one naming its column and rows."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return _finite(column.astype(np.float64).to_numpy(), column, name)
    present = column.notna()
    parsed = pd.to_numeric(column.where(present), errors="coerce")
    bad = present & parsed.isna()
    if not bad.any():
        return _finite(parsed.astype(np.float64).to_numpy(), column, name)
    number_like = present & column.astype(str).str.match(_NUMBER_LIKE)
    if number_like.sum() * 2 >= present.sum():  # mostly numbers: report the cells, never guess
        quoted = ", ".join(repr(v) for v in column[bad].unique()[:_SHOWN])
        commas = column[bad].astype(str).str.contains(",").any()
        hint = "use {decimal} for decimal commas, " if commas else ""
        raise ParameterError(
            f"column {name!r} is numeric except for {int(bad.sum())} cell(s) ({quoted} in "
            f"{rows_text(bad)}): fix them, {hint}or pass {{categorical}} to treat the column as "
            f"text", {"decimal": Mention("decimal", "','", "','"),
                      "categorical": Mention("categorical", f"[{name!r}]", name)})
    return None


def identifier_like(name, distinct: int, rows: int) -> str | None:
    """A note for a text column with mostly distinct values (an identifier, a free-text field):
    one-hot encoding gives it `distinct` inputs that generalise to no new row. None otherwise."""
    if distinct >= 20 and distinct >= rows / 2:
        return (f"column {name!r} is text with {distinct} distinct values in {rows} rows: "
                f"one-hot encoded, that is {distinct} inputs no new row will share (an "
                f"identifier? drop the column from the data)")
    return None


def text_column_notes(frame, categorical=()) -> list[str]:
    """identifier_like's notes for the text columns of a table (and those named categorical)."""
    notes = []
    for name in frame.columns:
        column = frame[name]
        if str(name) not in categorical and numeric_values(column, str(name)) is not None:
            continue
        note = identifier_like(name, int(column.dropna().nunique()), len(column))
        if note:
            notes.append(note)
    return notes


def pop_target(frame, target, where) -> tuple:
    """(name, column) of the target, taken out of `frame`: `target` (a column name, default the
    last column), or ValueError naming the columns of `where` (a file) there are."""
    name = target or str(frame.columns[-1])
    if name not in map(str, frame.columns):
        raise ValueError(f"target {name!r} is not a column of {where}; columns: "
                         f"{', '.join(map(str, frame.columns))}")
    return name, frame.pop(name)


def check_complete(frame, *, where: str = "", remedy: str = "fill them, or pass {impute}",
                   mentions: dict | None = None) -> None:
    """ValueError naming the first column with missing values — `where` it is (a file), its
    count and first rows — and what to do: `remedy`, whose {key} placeholders name the
    parameters of `mentions` (by default: fill them, or pass impute)."""
    for name in frame.columns:
        missing = frame[name].isna()
        if missing.any():
            raise ParameterError(
                f"column {name!r}{' of ' + where if where else ''} has {int(missing.sum())} "
                f"missing value(s) ({rows_text(missing)}): {remedy}",
                {"impute": IMPUTE} if mentions is None else mentions)


class Preprocessing:
    """The statistics document of one table's preprocessing and the transform it defines.

    spec = {"standardize": bool, "impute": strategy or None, "features": [feature, ...]} with a
    numeric feature {"name", "kind": "numeric", "mean", "std", "fill"} (fill None: missing
    values are an error) and a categorical one {"name", "kind": "categorical", "categories",
    "fill"}. Documents written before "fill" existed read as fill None."""

    def __init__(self, spec: dict):
        self.spec = spec

    @property
    def n_inputs(self) -> int:
        return sum(1 if f["kind"] == "numeric" else len(f["categories"])
                   for f in self.spec["features"])

    @classmethod
    def fit(cls, frame, *, standardize: bool = True, impute: str | None = None,
            categorical=()) -> "Preprocessing":
        """Fitted on the rows of `frame` (the training part): scikit-learn's SimpleImputer
        (numeric columns by `impute`, text columns by most_frequent), StandardScaler and
        OneHotEncoder's categories, kept as statistics."""
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        if impute is not None and impute not in IMPUTE_STRATEGIES:
            raise ValueError(f"impute must be one of {', '.join(IMPUTE_STRATEGIES)}, got "
                             f"{impute!r}")
        unknown = set(categorical) - set(map(str, frame.columns))
        if unknown:
            raise ParameterError(f"{{categorical}} names no column of the data: "
                                 f"{', '.join(sorted(unknown))}",
                                 {"categorical": Mention("categorical")})
        features = []
        for name in frame.columns:
            column = frame[name]
            missing = column.isna()
            if missing.all():
                raise ValueError(f"column {name!r} is empty in every row")
            numbers = None if str(name) in categorical else numeric_values(column, str(name))
            if missing.any() and impute is None:
                check_complete(frame[[name]])
            if numbers is not None:
                values = numbers.reshape(-1, 1)
                fill = None
                # With imputation every column gets its fill value, missing in the training rows
                # or not: validation, test and new rows may miss values anywhere.
                if impute is not None:
                    imputer = SimpleImputer(strategy=impute).fit(values)
                    fill = float(imputer.statistics_[0])
                    values = imputer.transform(values)
                mean, std = 0.0, 1.0
                if standardize:
                    scaler = StandardScaler().fit(values)
                    mean, std = float(scaler.mean_[0]), float(scaler.scale_[0])
                features.append({"name": str(name), "kind": "numeric", "mean": mean, "std": std,
                                 "fill": fill})
            else:
                # Text as str (numbers in a column named categorical too), missing as NaN.
                values = column.map(str).where(~missing, np.nan).to_numpy(dtype=object)
                values = values.reshape(-1, 1)
                fill = None
                if impute is not None:
                    imputer = SimpleImputer(strategy="most_frequent").fit(values)
                    fill = str(imputer.statistics_[0])
                    values = imputer.transform(values)
                encoder = OneHotEncoder(handle_unknown="ignore").fit(values.astype(str))
                features.append({"name": str(name), "kind": "categorical",
                                 "categories": [str(c) for c in encoder.categories_[0]],
                                 "fill": fill})
        return cls({"standardize": bool(standardize), "impute": impute, "features": features})

    def transform(self, frame, *, unseen: dict | None = None) -> np.ndarray:
        """The model's inputs for the rows of `frame`. Categories not seen in training encode as
        all zeros; when `unseen` is a dict, it collects {column: {value: count}} of them."""
        names = set(map(str, frame.columns))
        absent = [f["name"] for f in self.spec["features"] if f["name"] not in names]
        if absent:
            hint = ""
            if len(frame.columns) == 1 and any(sep in str(frame.columns[0]) for sep in ",;\t|"):
                hint = (f"; the rows were read as one column {str(frame.columns[0])[:60]!r}: is "
                        f"the file separated by another character than the model's? ({{sep}})")
            raise ParameterError(f"the data have no column {', '.join(map(repr, absent))}, "
                                 f"which the model needs{hint}", {"sep": Mention("sep")})
        columns = {str(c): frame[c] for c in frame.columns}
        blocks = []
        for feature in self.spec["features"]:
            name = feature["name"]
            column = columns[name]
            missing = column.isna()
            fill = feature.get("fill")
            if missing.any() and fill is None:
                first = int(np.asarray(missing.index)[missing.to_numpy()][0]) + 1
                raise ValueError(f"column {name!r} has a missing value in row {first} "
                                 f"({int(missing.sum())} in all); the model was trained without "
                                 f"imputation for it")
            if feature["kind"] == "numeric":
                numbers = numeric_values(column, name)
                if numbers is None:
                    raise ValueError(f"column {name!r} must hold numbers, as in training")
                if missing.any():
                    numbers = np.where(missing.to_numpy(), fill, numbers)
                blocks.append(((numbers - feature["mean"]) / feature["std"])[:, None])
            else:
                text = [fill if m else str(v) for v, m in zip(column.to_numpy(), missing)]
                index = {c: k for k, c in enumerate(feature["categories"])}
                onehot = np.zeros((len(text), len(index)))
                for i, value in enumerate(text):
                    k = index.get(value)
                    if k is not None:
                        onehot[i, k] = 1.0
                    elif unseen is not None:
                        counts = unseen.setdefault(name, {})
                        counts[value] = counts.get(value, 0) + 1
                blocks.append(onehot)
        return np.hstack(blocks) if blocks else np.zeros((frame.shape[0], 0))


class TablePreprocessor(TransformerMixin, BaseEstimator):
    """`Preprocessing` as a scikit-learn transformer of DataFrames, so it can be refitted inside
    every fit of a pipeline (a sweep's validation split or cross-validation folds: statistics
    from the training rows only)."""

    def __init__(self, standardize: bool = True, impute: str | None = None, categorical=()):
        self.standardize = standardize
        self.impute = impute
        self.categorical = categorical

    def fit(self, frame, y=None):
        self.preprocessing_ = Preprocessing.fit(frame, standardize=self.standardize,
                                                impute=self.impute,
                                                categorical=tuple(self.categorical))
        return self

    def transform(self, frame) -> np.ndarray:
        return self.preprocessing_.transform(frame)



class TabularModel:
    """A fitted estimator together with the preprocessing of the raw table it was trained on.

    What :func:`nncore.load` returns for a file that carries preprocessing (``nncore train
    --save``, or an estimator trained by :func:`nncore.fit_stream`), so that predictions take
    the raw rows. ``predict``, ``predict_proba`` and ``predict_log_proba`` give exactly what
    ``nncore predict`` writes, regression targets back in their own units. The estimator's other
    attributes (``classes_``, ``coefs_``, ``network_``, ...) read through.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        The fitted estimator, whose inputs are the preprocessing's output.
    preprocessing : dict
        The preprocessing statistics (see the file-format page of the documentation).
    task : {'classification', 'regression'}
        The task.
    y_scale : tuple of float
        (mean, scale) of a regression target: the estimator was trained on the standardised
        target, and predictions are mapped back.
    csv : dict or None
        The CSV dialect the model was trained on (``sep``, ``decimal``, ``encoding``); None
        reads comma-separated UTF-8 with ``.`` as the decimal mark.
    metadata : dict or None
        The user's own metadata, kept beside the command line's.
    """

    def __init__(self, estimator, preprocessing: dict, *, task: str, y_scale=(0.0, 1.0),
                 csv: dict | None = None, metadata=None):
        self.estimator = estimator
        self.preprocessing = Preprocessing(preprocessing)
        self.task = task
        self.y_scale = (float(y_scale[0]), float(y_scale[1]))
        self.csv = dict(csv or {})  # the dialect read_csv was given (its defaults otherwise)
        self.metadata = metadata  # the user's own, beside the command line's

    @classmethod
    def from_command_line_document(cls, estimator, document: dict, metadata=None):
        """The model a file's ``"cli"`` metadata entry describes.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The fitted estimator of the file.
        document : dict
            The ``"cli"`` entry (what ``command_line_document`` wrote).
        metadata : dict or None
            The user's other metadata.

        Returns
        -------
        TabularModel
            The model.
        """
        return cls(estimator, document["preprocessing"], task=document["task"],
                   y_scale=document.get("y_scale", (0.0, 1.0)), csv=document.get("csv"),
                   metadata=metadata)

    def __getattr__(self, name):
        if name in ("estimator", "__setstate__") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.estimator, name)

    def __repr__(self) -> str:
        return f"TabularModel({self.estimator!r}, task={self.task!r})"

    def read_csv(self, path, **dialect):
        """Read a CSV file in the dialect the model was trained on.

        Parameters
        ----------
        path : str or path-like
            The file.
        **dialect
            ``sep``, ``decimal`` or ``encoding``, each overriding the model's.

        Returns
        -------
        pandas.DataFrame
            The rows.
        """
        return read_csv(path, **{**self.csv, **{k: v for k, v in dialect.items() if v}})

    def transform(self, rows, *, unseen: dict | None = None) -> np.ndarray:
        """The estimator's inputs for raw rows.

        Categories not seen in training are encoded as all zeros.

        Parameters
        ----------
        rows : DataFrame, str or path-like
            Rows of the original columns, or a CSV file read in the model's dialect.
        unseen : dict or None
            When a dict, it collects ``{column: {value: count}}`` of the unseen categories.

        Returns
        -------
        ndarray
            The estimator's inputs.
        """
        frame = self.read_csv(rows) if isinstance(rows, (str, bytes)) or hasattr(
            rows, "__fspath__") else rows
        return self.preprocessing.transform(frame, unseen=unseen)

    def predict(self, rows) -> np.ndarray:
        """Predict raw rows: classes, or regression targets in their own units.

        Parameters
        ----------
        rows : DataFrame, str or path-like
            Rows of the original columns, or a CSV file read in the model's dialect.

        Returns
        -------
        ndarray
            The predictions.
        """
        return self.target_units(self.estimator.predict(self.transform(rows)))

    def target_units(self, predictions: np.ndarray) -> np.ndarray:
        """The estimator's predictions in the target's own units.

        A regressor was trained on the standardised target; a classifier's predictions are
        returned as they are.

        Parameters
        ----------
        predictions : ndarray
            The estimator's predictions.

        Returns
        -------
        ndarray
            The predictions in the target's units.
        """
        if self.task == "classification":
            return predictions
        mean, scale = self.y_scale
        return predictions * scale + mean

    def _classifier_only(self, name):
        if self.task != "classification":
            raise AttributeError(f"{name} is for classifiers; this model is a regressor")

    def predict_proba(self, rows) -> np.ndarray:
        """A classifier's class probabilities for raw rows.

        Parameters
        ----------
        rows : DataFrame, str or path-like
            Rows of the original columns, or a CSV file read in the model's dialect.

        Returns
        -------
        ndarray of shape (n_rows, n_classes)
            The probabilities, columns in the order of ``classes_``.
        """
        self._classifier_only("predict_proba")
        return self.estimator.predict_proba(self.transform(rows))

    def predict_log_proba(self, rows) -> np.ndarray:
        """The logarithm of a classifier's class probabilities for raw rows.

        Parameters
        ----------
        rows : DataFrame, str or path-like
            Rows of the original columns, or a CSV file read in the model's dialect.

        Returns
        -------
        ndarray of shape (n_rows, n_classes)
            The log-probabilities.
        """
        self._classifier_only("predict_log_proba")
        return self.estimator.predict_log_proba(self.transform(rows))

    def command_line_document(self) -> dict:
        """What the file keeps beside the estimator, as the metadata's ``"cli"`` entry.

        Returns
        -------
        dict
            The preprocessing statistics, the task, the target's scale and the CSV dialect.
        """
        return {"preprocessing": self.preprocessing.spec, "task": self.task,
                "y_scale": list(self.y_scale), "csv": dict(self.csv)}

    def save(self, path, *, metadata=None) -> None:
        """Write the model and its preprocessing; :func:`nncore.load` gives this object back.

        Parameters
        ----------
        path : str, path-like or binary file object
            Where to write.
        metadata : dict or None
            The user's metadata to store; None keeps this model's ``metadata``.
        """
        user = dict(self.metadata or {}) if metadata is None else dict(metadata)
        self.estimator.save(path, metadata={**user, "cli": self.command_line_document()})
