"""Callbacks for the estimators' `callbacks=[...]`.

After every epoch each callback is called as ``callback(estimator, record)`` with that epoch's
`history_` record (a dict: epoch, loss, val_loss, val_score, learning_rate, grad_norm, param_norm,
seconds); a truthy return value ends training cleanly after that epoch. A plain function works;
the classes here also get ``on_train_begin(estimator)`` and ``on_train_end(estimator)``, and
declare ``needs_validation`` when they read val_* entries — the estimator then holds out
`validation_fraction` of the data (drawn as scikit-learn draws its early-stopping split) even
without `early_stopping=True`."""

from __future__ import annotations

import csv
import math
import os

from ._validation import check_float, check_int
from .training import RECORD_FIELDS


class Callback:
    """Base class of the ready-made callbacks; subclasses override what they need.

    An instance is called after every epoch as ``callback(estimator, record)``; a truthy return
    ends training after that epoch. ``needs_validation = True`` makes the estimator hold out
    validation rows for it.
    """

    needs_validation = False

    def __repr__(self) -> str:
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in names if hasattr(self, n))
        return f"{type(self).__name__}({args})"

    def on_train_begin(self, estimator) -> None:
        """Called when a training run (a fit, or the first of a run's partial_fit calls) begins.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being trained.
        """

    def __call__(self, estimator, record: dict):
        return None

    def on_train_end(self, estimator) -> None:
        """Called when the training run ends.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being trained.
        """


def _check_monitor(monitor: str) -> str:
    if monitor not in ("loss", "val_loss", "val_score"):
        raise ValueError(f"monitor must be 'loss', 'val_loss' or 'val_score', got {monitor!r}")
    return monitor


class _Plateau(Callback):
    """Tracks whether `monitor` improved by more than min_delta (scores up, losses down)."""

    def __init__(self, monitor: str, min_delta: float, patience: int):
        self.monitor = _check_monitor(monitor)
        self.min_delta = check_float(min_delta, "min_delta", inclusive=True)
        self.patience = check_int(patience, "patience")
        self.needs_validation = monitor.startswith("val_")

    def on_train_begin(self, estimator):
        self.best = math.inf
        self.wait = 0

    def _improved(self, record) -> bool:
        value = record[self.monitor]
        if value is None or not math.isfinite(value):
            return False
        value = -value if self.monitor == "val_score" else value  # lower is better from here
        if value < self.best - self.min_delta:
            self.best = value
            self.wait = 0
            return True
        self.wait += 1
        return False


class EarlyStopping(_Plateau):
    """Stop training when a monitored value has stopped improving.

    Parameters
    ----------
    monitor : {'loss', 'val_loss', 'val_score'}
        The record entry watched: losses must fall, the score must rise. The ``val_`` entries
        make the estimator hold out validation rows.
    patience : int
        Epochs in a row without improvement that end training.
    min_delta : float
        The smallest change that counts as an improvement.
    restore_best_weights : bool
        Whether training ends with the weights (and batch-norm statistics) of the best epoch.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 restore_best_weights: bool = True):
        super().__init__(monitor, min_delta, patience)
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, estimator):
        super().on_train_begin(estimator)
        self.best_epoch = None
        self.best_state = None

    def __call__(self, estimator, record):
        if self._improved(record):
            self.best_epoch = record["epoch"]
            if self.restore_best_weights:
                self.best_state = estimator.network_.state()
        return self.wait >= self.patience

    def on_train_end(self, estimator):
        if self.restore_best_weights and self.best_state is not None:
            estimator.network_.load_state(self.best_state)


class ReduceLROnPlateau(_Plateau):
    """Cut the step size when a monitored value has stopped improving.

    After ``patience`` epochs without improvement the schedule's base step size is multiplied
    by ``factor`` (never below ``min_learning_rate``), and the count starts again.

    Parameters
    ----------
    monitor : {'loss', 'val_loss', 'val_score'}
        The record entry watched: losses must fall, the score must rise.
    factor : float
        The multiplier, in (0, 1).
    patience : int
        Epochs in a row without improvement before a cut.
    min_delta : float
        The smallest change that counts as an improvement.
    min_learning_rate : float
        The step size is never cut below this.
    """

    def __init__(self, monitor: str = "loss", factor: float = 0.5, patience: int = 5,
                 min_delta: float = 0.0, min_learning_rate: float = 0.0):
        super().__init__(monitor, min_delta, patience)
        self.factor = check_float(factor, "factor")
        if not self.factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        self.min_learning_rate = check_float(min_learning_rate, "min_learning_rate",
                                             inclusive=True)

    def __call__(self, estimator, record):
        self._improved(record)
        if self.wait >= self.patience:
            schedule = estimator.schedule_
            target = max(schedule.base_learning_rate * self.factor, self.min_learning_rate)
            if target > 0:
                schedule.set_base_learning_rate(target)
            self.wait = 0
        return False


class CSVLogger(Callback):
    """Write every epoch's record to a CSV file.

    The logger's first run starts the file; the ``partial_fit`` calls and warm-started fits
    that follow append to it (a header is written when the file is new).

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    append : bool
        Whether the first run appends to an existing file instead of starting a new one.
    """

    def __init__(self, path, append: bool = False):
        self.path = os.fspath(path)
        self.append = bool(append)

    def on_train_begin(self, estimator):
        # One logger follows one training run: after its first call (a fit, or the first
        # partial_fit) it appends, so every partial_fit of the run lands in one file.
        append = self.append or getattr(self, "_started", False)
        self._started = True
        exists = append and os.path.exists(self.path) and os.path.getsize(self.path) > 0
        with open(self.path, "a" if append else "w", newline="") as f:
            if not exists:
                csv.DictWriter(f, fieldnames=RECORD_FIELDS).writeheader()

    def __call__(self, estimator, record):
        # Opened per record: a partial_fit run has no end the logger could close a file at.
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=RECORD_FIELDS).writerow(
                {k: ("" if record.get(k) is None else record[k]) for k in RECORD_FIELDS})

    def __getstate__(self):  # whether it has started is the run's, not the configuration's
        return {"path": self.path, "append": self.append}
