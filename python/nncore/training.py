"""Training loops over the C++ core: `train` runs whole epochs (minibatch or full-batch, any
optimiser and schedule); `lbfgs` minimises the full-batch objective with scipy's L-BFGS-B using the
core's loss and gradient, as scikit-learn's solver='lbfgs' does."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from ._validation import check_float, check_int
from .network import DivergenceError, Network, _check_optimizer
from .optim import Schedule


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
    """Train `network` for `epochs` whole epochs, each run in C++.

    learning_rate is a number (constant) or a `Schedule`, advanced after every epoch with that
    epoch's training loss (an adaptive schedule that gives up ends training). batch_size=None is
    full-batch gradient descent. optimizer is an `SGD`, `Adam` or `AdamW` (plain SGD by
    default); it keeps its state across calls. Data are checked once; each epoch's permutation
    is seeded from random_state. callback(epoch, loss), if given, runs after every epoch and may
    return True to stop. Returns the per-epoch mean training losses."""
    _check_network(network)
    epochs = check_int(epochs, "epochs")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    schedule = learning_rate if isinstance(learning_rate, Schedule) else None
    if schedule is None:
        check_float(learning_rate, "learning_rate")
    if optimizer is not None:
        _check_optimizer(optimizer)._bind(network)
    X, Y, w = network._prepare(X, y, sample_weight)
    rng = check_random_state(random_state)
    losses = []
    for epoch in range(epochs):
        eta = schedule.learning_rate if schedule is not None else learning_rate
        losses.append(
            network._train_epoch_prepared(
                X, Y, w, learning_rate=eta, batch_size=batch_size, shuffle=shuffle, seed=rng,
                order=None, optimizer=optimizer, continuing=epoch > 0,
            ).loss
        )
        if schedule is not None and schedule.epoch_end(losses[-1], (epoch + 1) * X.shape[0]):
            break
        if callback is not None and callback(epoch, losses[-1]):
            break
    return losses


class LBFGSResult(dict):
    """What `lbfgs` reports: loss, n_iter, n_fun, converged, status, message (also as
    attributes)."""

    __getattr__ = dict.__getitem__


def lbfgs(network: Network, X, y, *, max_iter: int = 200, max_fun: int = 15000,
          tol: float = 1e-4, sample_weight=None) -> LBFGSResult:
    """Minimise the full-batch objective with scipy's L-BFGS-B (scikit-learn's solver='lbfgs':
    maxiter=max_iter, maxfun=max_fun, gtol=tol), each evaluation one loss_and_grad of the core.

    The network ends at the best point found; with batch norm, its running statistics are set to
    the full data set's (the batch every evaluation used)."""
    from scipy.optimize import minimize

    _check_network(network)
    max_iter = check_int(max_iter, "max_iter")
    max_fun = check_int(max_fun, "max_fun")
    tol = check_float(tol, "tol", inclusive=True)
    X, Y, w = network._prepare(X, y, sample_weight)
    scale = network._scale(X, w)
    core = network._core

    def objective(theta):
        network.params[:] = theta
        value = core.forward_backward(X, Y, w, scale, False) * scale
        if not np.isfinite(value):
            raise DivergenceError("L-BFGS reached a non-finite objective")
        return value, network.grads.astype(np.float64)

    start = network.params.astype(np.float64)
    result = minimize(objective, start, method="L-BFGS-B", jac=True,
                      options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol})
    network.params[:] = result.x
    if network.batch_norm:
        network.set_batchnorm_statistics(X)
    return LBFGSResult(loss=float(result.fun), n_iter=int(result.nit), n_fun=int(result.nfev),
                       converged=bool(result.success), status=int(result.status),
                       message=str(result.message))
