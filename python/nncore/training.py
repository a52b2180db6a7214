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

from ._validation import check_param
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

    Yields
    ------
    dict
        One record per epoch: ``epoch``, ``loss``, ``val_loss``, ``val_score``,
        ``learning_rate``, ``grad_norm``, ``param_norm``, ``seconds``.

    Raises
    ------
    DivergenceError
        When a loss or an update becomes non-finite; the network keeps its last finite state.
    """
    if draw not in ("scikit-learn", "seed"):
        raise ValueError(f"draw must be 'scikit-learn' or 'seed', got {draw!r}")
    streaming = not isinstance(data, PreparedData)  # a stream of chunks (nncore.streaming)
    rng = (random_state if isinstance(random_state, np.random.RandomState)
           else check_random_state(random_state))
    monitor = monitor or (lambda record: record["loss"])
    n_samples = data.n_samples
    # Shuffled in place, epoch after epoch; a stream shuffles its partitions and rows itself
    # (and an index over all its rows is what streaming must not hold).
    sample_idx = None if streaming else np.arange(n_samples, dtype=int)
    for index in range(max_epochs):
        started = time.perf_counter()
        learning_rate = schedule.learning_rate
        if streaming:
            stats = _stream_epoch(network, data, rng if shuffle else None,
                                  learning_rate=learning_rate, batch_size=batch_size,
                                  optimizer=optimizer, continuing=index > 0)
        else:
            order = seed = None
            if shuffle and draw == "scikit-learn":
                rng.shuffle(sample_idx)  # what scikit-learn's utils.shuffle draws each epoch
                order = sample_idx
            elif shuffle:
                seed = rng
            stats = network.run_epoch(data, learning_rate=learning_rate, batch_size=batch_size,
                                      shuffle=seed is not None, seed=seed, order=order,
                                      optimizer=optimizer, continuing=index > 0)
        samples_seen += n_samples
        val_loss = val_score = None
        if validation is not None:
            val_loss, val_score = network.mean_loss(validation.data), validation.score()
        record = epoch_record(first_epoch + index, stats.loss, val_loss, val_score,
                              learning_rate, stats.grad_norm, norm(network.params), None)
        schedule.epoch_end(monitor(record), samples_seen)
        record["seconds"] = time.perf_counter() - started
        yield record
        if schedule.gave_up:
            return


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
        if schedule.gave_up:
            break  # an adaptive schedule's last epoch: training ends without the callback
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
