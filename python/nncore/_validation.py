"""Input checks that run before any C++ does, and the one table of hyperparameter ranges: each bad
input becomes a ValueError or TypeError whose message names the argument, what was expected and
what was received."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

_DTYPES = {"float32": np.float32, "float64": np.float64}


def check_dtype(dtype) -> type:
    """The numpy scalar type for 'float32'/'float64' (or those numpy types)."""
    try:
        name = np.dtype(dtype).name
    except TypeError as exc:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from exc
    if name not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return _DTYPES[name]


def check_poisson_targets(y, name: str = "y") -> None:
    """The Poisson deviance is defined for counts and rates, y >= 0 (scikit-learn would train
    on negative targets without a word)."""
    lowest = np.min(y)
    if lowest < 0:
        raise ValueError(f"{name} for the poisson loss must be >= 0, got minimum {lowest:g}")


def check_choice(value, name: str, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(value, name: str, *, minimum: float = 0.0, inclusive: bool = False) -> float:
    """A finite real number > minimum (>= minimum when inclusive)."""
    bound = f"{'>=' if inclusive else '>'} {minimum:g}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite number {bound}, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < minimum or (value == minimum and not inclusive):
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


class Bound(NamedTuple):
    """The allowed range of one hyperparameter: numbers of `kind` (numbers.Integral or
    numbers.Real) from `low` to `high` (None: unbounded), `closed` as scikit-learn's Interval
    says it ('left', 'right', 'both', 'neither')."""

    kind: type
    low: float
    high: float | None
    closed: str

    def check(self, value, name: str):
        """value as an int or float inside the range, or TypeError/ValueError naming `name`."""
        low_closed = self.closed in ("left", "both")
        if self.kind is numbers.Integral:
            value = check_int(value, name, minimum=int(self.low) + (0 if low_closed else 1))
        else:
            value = check_float(value, name, minimum=self.low, inclusive=low_closed)
        if self.high is not None:
            high_closed = self.closed in ("right", "both")
            if value > self.high or (value == self.high and not high_closed):
                raise ValueError(f"{name} must be in {self.describe()}, got {value!r}")
        return value

    def describe(self) -> str:
        left = "[" if self.closed in ("left", "both") else "("
        right = "]" if self.closed in ("right", "both") else ")"
        return f"{left}{self.low:g}, {'inf' if self.high is None else f'{self.high:g}'}{right}"

    def interval(self):
        """The same range as scikit-learn's parameter-validation Interval."""
        from sklearn.utils._param_validation import Interval

        return Interval(self.kind, self.low, self.high, closed=self.closed)


_Int, _Real = numbers.Integral, numbers.Real
# Every hyperparameter range, in one place: Network, the optimisers, the schedules and the
# estimators all check against this table (the estimators under scikit-learn's names, see
# estimators.py). The core keeps its own checks only where a bad value would break its maths.
BOUNDS = {
    "alpha": Bound(_Real, 0, None, "left"),
    "learning_rate": Bound(_Real, 0, None, "neither"),  # η, scikit-learn's learning_rate_init
    "momentum": Bound(_Real, 0, 1, "both"),
    "beta_1": Bound(_Real, 0, 1, "left"),
    "beta_2": Bound(_Real, 0, 1, "left"),
    "epsilon": Bound(_Real, 0, None, "neither"),
    "weight_decay": Bound(_Real, 0, None, "left"),
    "power_t": Bound(_Real, 0, None, "left"),
    "tol": Bound(_Real, 0, None, "left"),
    "n_iter_no_change": Bound(_Int, 1, None, "left"),
    "gamma": Bound(_Real, 0, 1, "right"),  # step/exponential decay factor (lr_decay)
    "step_size": Bound(_Int, 1, None, "left"),  # epochs per step (lr_step_size)
    "total_epochs": Bound(_Int, 1, None, "left"),  # cosine's horizon (max_iter)
    "min_learning_rate": Bound(_Real, 0, None, "left"),
    "warmup_epochs": Bound(_Int, 0, None, "left"),
    "epochs": Bound(_Int, 1, None, "left"),
    "batch_size": Bound(_Int, 1, None, "left"),
    "max_fun": Bound(_Int, 1, None, "left"),
    "validation_fraction": Bound(_Real, 0, 1, "left"),
    "n_threads": Bound(_Int, 1, None, "left"),
    "init_std": Bound(_Real, 0, None, "neither"),
    "dropout": Bound(_Real, 0, 1, "left"),  # a rate: 1 would drop every unit
}


def check_param(value, name: str, *, bound: str | None = None):
    """value checked against BOUNDS[bound or name]; messages name `name`."""
    return BOUNDS[bound or name].check(value, name)


def check_dropout(rates, n_hidden: int) -> tuple[float, ...]:
    """Dropout rates, one per hidden layer: a number in [0, 1) for every hidden layer, or a
    sequence of n_hidden such numbers."""
    if isinstance(rates, numbers.Real) and not isinstance(rates, bool):
        rate = check_param(rates, "dropout")
        if rate > 0 and n_hidden == 0:
            raise ValueError(f"dropout={rate!r} needs hidden layers, and this network has none")
        return (rate,) * n_hidden
    if isinstance(rates, (str, bytes)) or not np.iterable(rates):
        raise TypeError(f"dropout must be a number in [0, 1) or a sequence of one per hidden "
                        f"layer, got {rates!r}")
    rates = list(rates)
    if len(rates) != n_hidden:
        raise ValueError(f"dropout needs one rate per hidden layer ({n_hidden}), got "
                         f"{len(rates)}: {rates!r}")
    return tuple(check_param(r.item() if isinstance(r, np.generic) else r, f"dropout[{i}]",
                             bound="dropout") for i, r in enumerate(rates))


def _as_numeric(a, name: str) -> np.ndarray:
    """np.asarray with the dtype families a loss can take; TypeError for the others."""
    if a is None:
        raise TypeError(f"{name} must be an array of numbers, got None")
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be read as an array: {exc}") from exc
    kind = arr.dtype.kind
    if kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must contain numbers only, got an object array with non-numeric "
                f"entries ({exc})"
            ) from exc
    elif kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    elif kind not in "biuf":
        raise TypeError(f"{name} must contain numbers, got dtype {arr.dtype}")
    return arr


def all_finite(arr: np.ndarray) -> bool:
    # A finite sum proves every entry finite (an inf or NaN would reach it) at a fraction of
    # an elementwise test's cost; only a sum that overflowed needs the elementwise test.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(arr.sum()):
            return True
    return bool(np.isfinite(arr).all())


def finite_as(arr: np.ndarray, name: str, dtype) -> np.ndarray:
    """arr as a C-contiguous array of dtype, all finite (no copy when it already is one)."""
    if arr.dtype.kind == "f" and not all_finite(arr):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} must be finite, got {arr[tuple(bad)]!r} at index {tuple(int(i) for i in bad)}"
        )
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    if out.dtype != arr.dtype and not all_finite(out):  # a narrowing cast can overflow
        bad = np.argwhere(~np.isfinite(out))[0]
        raise ValueError(
            f"{name} holds {arr[tuple(bad)]!r} at index {tuple(int(i) for i in bad)}, too large "
            f"for {np.dtype(dtype).name}"
        )
    return out


def check_X(X, dtype, *, n_features: int | None = None, name: str = "X"):
    """X as a finite, C-contiguous (n, d) array of dtype with n >= 1; a scipy sparse matrix
    stays sparse, as a CSR matrix of dtype with finite stored values."""
    import scipy.sparse as sp

    if sp.issparse(X):
        return _check_sparse(X, dtype, n_features, name)
    arr = _as_numeric(X, name)
    if arr.ndim != 2:
        hint = " (use X.reshape(-1, 1) for a single feature)" if arr.ndim == 1 else ""
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got {arr.ndim}-D with shape "
            f"{arr.shape}{hint}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must have at least one sample, got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one feature, got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features, but the network expects {n_features}"
        )
    return finite_as(arr, name, dtype)


def _check_sparse(X, dtype, n_features, name):
    import scipy.sparse as sp

    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must have at least one sample and one feature, got shape "
                         f"{X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but the network expects {n_features}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got a sparse matrix of dtype {X.dtype}")
    csr = X.tocsr()  # CSC, COO, ... become CSR (a copy); a CSR matrix stays as it is
    data = finite_as(csr.data, f"{name} (its stored values)", dtype)
    if data is not csr.data:
        csr = sp.csr_matrix((data, csr.indices, csr.indptr), shape=csr.shape)
    return csr


def check_targets(y, dtype, *, n_samples: int, n_outputs: int, loss: str, name: str = "y"):
    """Targets as a finite, C-contiguous (n, K) array of dtype that the loss can take.

    A 1-D y is one output; with the softmax loss a 1-D y of integer class labels 0..K-1 is
    one-hot encoded."""
    arr = _as_numeric(y, name)
    if arr.ndim == 1 and loss == "softmax" and n_outputs > 1:
        if arr.dtype.kind not in "biu" and not (
            np.isfinite(arr).all() and np.array_equal(arr, np.round(arr))
        ):
            raise ValueError(
                f"{name} for the softmax loss must be integer class labels 0..{n_outputs - 1} "
                f"or an (n, {n_outputs}) array of class probabilities, got non-integer values"
            )
        labels = arr.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= n_outputs):
            raise ValueError(
                f"{name} class labels must lie in 0..{n_outputs - 1}, got values from "
                f"{labels.min()} to {labels.max()}"
            )
        arr = np.eye(n_outputs, dtype=dtype)[labels]
    elif arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != n_outputs:
        raise ValueError(
            f"{name} must have shape ({n_samples}, {n_outputs})"
            f"{' or (' + str(n_samples) + ',)' if n_outputs == 1 else ''}, got shape {arr.shape}"
        )
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} rows but X has {n_samples}; they must match"
        )
    arr = finite_as(arr, name, dtype)
    if loss == "logistic" and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(
            f"{name} for the logistic loss must lie in [0, 1] (labels 0/1), got values from "
            f"{arr.min():g} to {arr.max():g}"
        )
    if loss == "poisson":
        check_poisson_targets(arr, name)
    if loss == "softmax":
        row_sums = arr.sum(axis=1, dtype=np.float64)
        if arr.min() < 0 or not np.allclose(row_sums, 1.0, rtol=0, atol=1e-6):
            raise ValueError(
                f"{name} for the softmax loss must be one-hot or class-probability rows "
                f"(non-negative, summing to 1), got row sums from {row_sums.min():g} to "
                f"{row_sums.max():g} and minimum {arr.min():g}"
            )
    return arr


def check_sample_weight(sample_weight, dtype, *, n_samples: int):
    """None, or a finite (n,) array of dtype whose sum is not zero. Negative weights are taken,
    as scikit-learn takes them: each minibatch's loss and gradient are its weighted mean, Σwℓ/Σw
    (a minibatch whose weights sum to zero is skipped)."""
    if sample_weight is None:
        return None
    arr = _as_numeric(sample_weight, "sample_weight")
    if arr.ndim == 0:
        arr = np.full(n_samples, arr, dtype=dtype)
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), got shape {arr.shape}"
        )
    arr = finite_as(arr, "sample_weight", dtype)
    if arr.sum(dtype=np.float64) == 0:
        raise ValueError("sample_weight must not sum to zero: the weighted mean loss is "
                         "undefined")
    return arr


def check_order(order, *, n_samples: int) -> np.ndarray:
    """A 1-D int64 array of row indices in [0, n_samples)."""
    arr = _as_numeric(order, "order")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"order must hold integer row indices, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"order must be a non-empty 1-D array, got shape {arr.shape}")
    if arr.min() < 0 or arr.max() >= n_samples:
        raise ValueError(
            f"order must index rows 0..{n_samples - 1}, got values from {arr.min()} to {arr.max()}"
        )
    return np.ascontiguousarray(arr, dtype=np.int64)
