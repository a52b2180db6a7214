"""The one epoch driver every training path uses — `run_epochs` yields one record per epoch — and
the two training functions of the object API built on it and on the core: `train` (whole epochs,
any optimiser and schedule) and `lbfgs` (scipy's L-BFGS-B on the full-batch objective, as
scikit-learn's solver='lbfgs' does).

A record is a dict with the keys of RECORD_FIELDS: epoch (counted from `first_epoch`), loss (the
epoch's mean training loss), val_loss and val_score (on held-out data, None without), the
learning rate used, grad_norm (mean over the steps of the minibatch gradient's 2-norm),
param_norm (‖θ‖₂ after the epoch) and seconds (wall time of the epoch and its evaluation)."""

from __future__ import annotations

import time
from typing import Callable, Iterator, NamedTuple

import numpy as np
from sklearn.utils import check_random_state

from ._validation import check_int, check_param
from .network import DivergenceError, EpochStats, Network, PreparedData
from .optim import Optimizer, Schedule, check_optimizer

RECORD_FIELDS = ("epoch", "loss", "val_loss", "val_score", "learning_rate", "grad_norm",
                 "param_norm", "seconds")


def epoch_record(epoch, loss, val_loss, val_score, learning_rate, grad_norm, param_norm,
                 seconds) -> dict:
    """One epoch's record: the fields of RECORD_FIELDS, in order."""
    return dict(zip(RECORD_FIELDS, (epoch, loss, val_loss, val_score, learning_rate, grad_norm,
                                    param_norm, seconds)))


class Validation(NamedTuple):
    """Held-out data scored after every epoch: `data` prepared for the network (its mean loss
    becomes val_loss) and `score`, a function giving val_score."""

    data: PreparedData
    score: Callable[[], float]


def norm(v) -> float:
    """‖v‖₂ without overflow for huge entries."""
    scale = float(np.max(np.abs(v))) if v.size else 0.0
    if scale == 0.0 or not np.isfinite(scale):
        return scale
    return scale * float(np.linalg.norm(v / scale))


def run_epochs(
    network: Network,
    data: PreparedData,
    optimizer: Optimizer | None,
    schedule: Schedule,
    *,
    batch_size: int | None,
    max_epochs: int,
    random_state=None,
    shuffle: bool = True,
    draw: str = "scikit-learn",
    validation: Validation | None = None,
    monitor: Callable[[dict], float] | None = None,
    samples_seen: int = 0,
    first_epoch: int = 1,
    max_steps: int | None = None,
    stop_below: float | None = None,
    after_divergence: str = "raise",
) -> Iterator[dict]:
    """Train a network epoch by epoch, each epoch one call into C++, yielding its record.

    The one epoch driver under :func:`train`, the estimators' ``fit`` and ``partial_fit`` and
    the command line. The driver stops after ``max_epochs``, or after the epoch in which an
    adaptive schedule gives up (``schedule.gave_up``); the caller stops it earlier by leaving
    the loop. Ctrl-C raises ``KeyboardInterrupt`` after the step in progress.

    Parameters
    ----------
    network : Network
        The network trained, in place.
    data : PreparedData or nncore.streaming.ChunkStream
        The training rows. A stream makes an epoch one pass over all its chunks — partitions in
        a fresh order and rows shuffled within a bounded buffer when shuffling — each chunk one
        call into C++; the record's loss is then the mean over every row.
    optimizer : Optimizer or None
        The update rule; None is plain SGD.
    schedule : Schedule
        Gives each epoch's step size (``schedule.learning_rate``) and advances after it.
    batch_size : int or None
        Rows per minibatch; None takes all rows as one batch.
    max_epochs : int
        The most epochs to run.
    random_state : None, int or numpy RandomState
        Seeds the row order; a RandomState is drawn from as it is.
    shuffle : bool
        Whether each epoch visits the rows in a new random order; otherwise in stored order.
    draw : {'scikit-learn', 'seed'}
        How a shuffled epoch's order is drawn: ``'scikit-learn'`` shuffles one index array in
        place per epoch as scikit-learn's MLP does (the same RandomState gives the same
        batches); ``'seed'`` draws a 64-bit seed for the core's own permutation (cheaper for
        large n).
    validation : Validation or None
        Held-out data scored after every epoch, filling ``val_loss`` and ``val_score``.
    monitor : callable or None
        ``monitor(record)`` gives the value the schedule watches; None watches the training
        loss.
    samples_seen : int
        Samples seen before this call; each epoch adds n (``'invscaling'`` reads the total).
    first_epoch : int
        The ``epoch`` number of the first record.
    max_steps : int or None
        Caps the optimiser steps of the whole run: the epoch the cap falls in takes only the
        first batches of its row order, and is the last. In-memory data only.
    stop_below : float or None
        Full-batch steps only (``batch_size=None``): a step's forward pass measures the loss
        at the parameters it starts from, so the first step that finds it below ``stop_below``
        is undone (parameters, batch-norm statistics and the optimiser's state as before it)
        and its record, whose loss is then the kept parameters', is the last one.
    after_divergence : {'raise', 'nan'}
        ``'raise'``: a non-finite loss or update raises DivergenceError. ``'nan'``: the driver
        goes on to ``max_epochs`` with the records a model of non-finite weights would give —
        loss, val_loss, grad_norm and param_norm NaN, val_score that model's score on the
        validation data — feeding the schedule as usual, while the network keeps its last
        finite state (what scikit-learn shows when its weights overflow under early stopping).

    Yields
    ------
    dict
        One record per epoch: ``epoch``, ``loss``, ``val_loss``, ``val_score``,
        ``learning_rate``, ``grad_norm``, ``param_norm``, ``seconds``.

    Raises
    ------
    DivergenceError
        When a loss or an update becomes non-finite (with ``after_divergence='raise'``); the
        network keeps its last finite state.
    """
    if draw not in ("scikit-learn", "seed"):
        raise ValueError(f"draw must be 'scikit-learn' or 'seed', got {draw!r}")
    if after_divergence not in ("raise", "nan"):
        raise ValueError(f"after_divergence must be 'raise' or 'nan', got {after_divergence!r}")
    streaming = not isinstance(data, PreparedData)  # a stream of chunks (nncore.streaming)
    if streaming and (max_steps is not None or stop_below is not None):
        raise ValueError("max_steps and stop_below need data in memory, not a stream")
    if max_steps is not None:
        max_steps = check_int(max_steps, "max_steps")
    rows_per_step = (data.n_samples if batch_size is None or streaming
                     else min(batch_size, data.n_samples))
    if stop_below is not None and rows_per_step < data.n_samples:
        raise ValueError(f"stop_below needs full-batch steps (batch_size=None), got "
                         f"batch_size={batch_size}")
    steps_per_epoch = -(-data.n_samples // rows_per_step)
    steps_taken = 0
    rng = (random_state if isinstance(random_state, np.random.RandomState)
           else check_random_state(random_state))
    monitor = monitor or (lambda record: record["loss"])
    n_samples = data.n_samples
    # Shuffled in place, epoch after epoch; a stream shuffles its partitions and rows itself
    # (and an index over all its rows is what streaming must not hold).
    sample_idx = None if streaming else np.arange(n_samples, dtype=int)
    nan_score = None  # after a divergence under after_divergence='nan': (score of NaN weights,)
    for index in range(max_epochs):
        started = time.perf_counter()
        learning_rate = schedule.learning_rate
        # The cap ends this epoch after its first `capped` steps.
        capped = (max_steps - steps_taken if max_steps is not None
                  and max_steps - steps_taken < steps_per_epoch else None)
        before = None
        if stop_below is not None:
            before = (network.state(), None if optimizer is None else
                      {k: v.copy() for k, v in optimizer.state.items()})
        stats = rows = None
        if nan_score is None:
            try:
                stats, rows = _epoch(network, data, rng if shuffle else None, draw, sample_idx,
                                     None if capped is None else capped * rows_per_step,
                                     learning_rate=learning_rate, batch_size=batch_size,
                                     optimizer=optimizer, continuing=index > 0)
            except DivergenceError:
                if after_divergence == "raise":
                    raise
                nan_score = (_score_of_nan_weights(network, validation),)
        if stats is None:  # the records a model of non-finite weights would give
            nan = float("nan")
            record = epoch_record(first_epoch + index, nan, None if validation is None else nan,
                                  nan_score[0], learning_rate, nan, nan, None)
            rows = n_samples
        elif before is not None and stats.loss < stop_below:
            network.load_state(before[0])  # the loss of `before` is below the line: keep it
            if optimizer is not None:
                optimizer.set_state(before[1], network)
            yield epoch_record(first_epoch + index, stats.loss, None, None, learning_rate,
                               stats.grad_norm, norm(network.params),
                               time.perf_counter() - started)
            return
        else:
            steps_taken += stats.steps
            val_loss = val_score = None
            if validation is not None:
                val_loss, val_score = network.mean_loss(validation.data), validation.score()
            record = epoch_record(first_epoch + index, stats.loss, val_loss, val_score,
                                  learning_rate, stats.grad_norm, norm(network.params), None)
        samples_seen += rows
        schedule.epoch_end(monitor(record), samples_seen)
        record["seconds"] = 0.0 if stats is None else time.perf_counter() - started
        yield record
        if schedule.gave_up or capped is not None:
            return


def _epoch(network, data, rng, draw, sample_idx, row_cap, **step_options):
    """One epoch of run_epochs: (EpochStats, rows it went through). rng is None without
    shuffling; row_cap ends the epoch after that many rows of its order."""
    if sample_idx is None:  # a stream (it shuffles its partitions and rows itself)
        return _stream_epoch(network, data, rng, **step_options), data.n_samples
    order = seed = None
    if rng is not None and draw == "scikit-learn":
        rng.shuffle(sample_idx)  # what scikit-learn's utils.shuffle draws each epoch
        order = sample_idx
    elif rng is not None and row_cap is not None:
        order = rng.permutation(data.n_samples)  # the core cannot stop mid-permutation
    elif rng is not None:
        seed = rng
    if row_cap is not None:
        order = (sample_idx if order is None else order)[:row_cap]
    stats = network.run_epoch(data, shuffle=seed is not None, seed=seed, order=order,
                              **step_options)
    return stats, data.n_samples if order is None else len(order)


def _score_of_nan_weights(network, validation):
    """The validation score of the network with every parameter NaN (None without validation
    data); the network keeps its parameters."""
    if validation is None:
        return None
    finite = network.params.copy()
    network.params[:] = float("nan")
    try:
        return float(validation.score())
    finally:
        network.params[:] = finite


def _stream_epoch(network, stream, rng, *, learning_rate, batch_size, optimizer,
                  continuing) -> EpochStats:
    """One pass over a stream's chunks (rows in the chunk's order: the stream shuffled them).
    Loss in mean units over all rows; grad_norm the mean over all steps."""
    rows = steps = 0
    loss_sum = grad_sum = 0.0
    for chunk in stream.chunks(rng, batch_size):
        stats = network.run_epoch(chunk, learning_rate=learning_rate, batch_size=batch_size,
                                  optimizer=optimizer, continuing=continuing or steps > 0)
        rows += chunk.n_samples
        loss_sum += stats.loss * chunk.n_samples
        steps += stats.steps
        grad_sum += stats.grad_norm * stats.steps
    if rows == 0:
        raise ValueError("the stream produced no rows in this epoch")
    return EpochStats(loss_sum / rows, steps, grad_sum / max(steps, 1))


def _check_network(network) -> Network:
    if not isinstance(network, Network):
        raise TypeError(f"network must be an nncore.Network, got {type(network).__name__}")
    return network


def train(
    network: Network,
    X,
    y,
    *,
    epochs: int = 10,
    learning_rate: float | Schedule = 1e-3,
    batch_size: int | None = 200,
    optimizer=None,
    shuffle: bool = True,
    random_state=None,
    sample_weight=None,
    callback=None,
) -> list[float]:
    """Train a network for whole epochs, each run in C++.

    Parameters
    ----------
    network : Network
        The network trained, in place.
    X : array-like, sparse matrix or PreparedData
        The training rows, checked once.
    y : array-like or None
        Their targets (not read when X is a :class:`PreparedData`).
    epochs : int
        How many epochs.
    learning_rate : float or Schedule
        A constant step size, or a :class:`Schedule` advanced after every epoch with that
        epoch's training loss (an adaptive schedule that gives up ends training).
    batch_size : int or None
        Rows per minibatch; None is full-batch gradient descent.
    optimizer : Optimizer or None
        An :class:`SGD`, :class:`Adam` or :class:`AdamW`, which keeps its state across calls;
        None is plain SGD.
    shuffle : bool
        Whether each epoch visits the rows in a new random order.
    random_state : None, int or numpy RandomState
        Seeds each epoch's permutation.
    sample_weight : array-like of shape (n_samples,) or None
        Weights of the rows; None weighs every row 1.
    callback : callable or None
        ``callback(epoch, loss)`` runs after every epoch (counted from 0) and may return True
        to stop.

    Returns
    -------
    list of float
        The mean training loss of each epoch.
    """
    _check_network(network)
    epochs = check_param(epochs, "epochs")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    if isinstance(learning_rate, Schedule):
        schedule = learning_rate
    else:
        schedule = Schedule("constant", check_param(learning_rate, "learning_rate"))
    if optimizer is not None:
        check_optimizer(optimizer).bind(network)
    data = network.prepare(X, y, sample_weight)
    losses = []
    for record in run_epochs(network, data, optimizer, schedule, batch_size=batch_size,
                             max_epochs=epochs, random_state=random_state, shuffle=shuffle,
                             draw="seed", first_epoch=0):
        losses.append(record["loss"])
        if callback is not None and callback(record["epoch"], record["loss"]):
            break
    return losses


class LBFGSResult(dict):
    """What :func:`lbfgs` reports, as a dict whose keys also read as attributes.

    Its keys are ``loss``, ``n_iter``, ``n_fun``, ``converged``, ``status`` and ``message``.
    """

    __getattr__ = dict.__getitem__


def lbfgs(network: Network, X, y=None, *, max_iter: int = 200, max_fun: int = 15000,
          tol: float = 1e-4, sample_weight=None) -> LBFGSResult:
    """Minimise the full-batch objective with scipy's L-BFGS-B, as scikit-learn's solver='lbfgs'.

    Each evaluation is one ``loss_and_grad`` of the core. The network ends at the best point
    found; with batch norm, its running statistics are set to the full data set's (the batch
    every evaluation used). A network with dropout is refused.

    Parameters
    ----------
    network : Network
        The network minimised, in place.
    X : array-like, sparse matrix or PreparedData
        The rows (with a :class:`PreparedData`, ``y`` and ``sample_weight`` are not needed).
    y : array-like or None
        Their targets.
    max_iter : int
        The most iterations (scipy's ``maxiter``).
    max_fun : int
        The most objective evaluations (scipy's ``maxfun``).
    tol : float
        scipy's ``gtol``: stop when the largest gradient component is this small.
    sample_weight : array-like of shape (n_samples,) or None
        Weights of the rows; None weighs every row 1.

    Returns
    -------
    LBFGSResult
        The final loss, iterations, evaluations and scipy's status.
    """
    from scipy.optimize import minimize

    _check_network(network)
    if any(network.dropout):
        raise ValueError(f"lbfgs minimises the full-batch objective, which has no dropout; this "
                         f"network has dropout={network.dropout}: set network.dropout = 0 or "
                         f"train it with nncore.train")
    max_iter = check_param(max_iter, "max_iter", bound="epochs")
    max_fun = check_param(max_fun, "max_fun")
    tol = check_param(tol, "tol")
    data = network.prepare(X, y, sample_weight)

    def objective(theta):
        network.params[:] = theta
        value, grads = network.loss_and_grad(data)
        if not np.isfinite(value):
            raise DivergenceError("L-BFGS reached a non-finite objective")
        return value, grads.astype(np.float64)

    start = network.params.astype(np.float64)
    result = minimize(objective, start, method="L-BFGS-B", jac=True,
                      options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol})
    network.params[:] = result.x
    if network.batch_norm:
        network.set_batchnorm_statistics(data.X)
    return LBFGSResult(loss=float(result.fun), n_iter=int(result.nit), n_fun=int(result.nfev),
                       converged=bool(result.success), status=int(result.status),
                       message=str(result.message))
