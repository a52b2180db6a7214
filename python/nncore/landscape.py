"""Loss-landscape slices: the training objective (and a test loss) along directions in parameter
space around a trained network — a chosen weight, a random filter-normalised direction, the top
Hessian eigenvector, or the segment between two solutions — in one or two dimensions.

Directions are flat vectors over the parameter slab (`Network.params`' layout). The training
curve is the objective J(θ + α d) of nncore.curvature (loss + L2 term, batch norm on the
statistics of the training rows); the test curve is the mean loss as the model predicts (batch
norm on its running statistics, no L2 term). The model itself is never changed: points are
evaluated on a copy. `nncore.plot.landscape` draws the results."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.utils import check_random_state

from ._validation import check_int
from .curvature import Objective, network_of, top_eigenvalues
from .network import Network


# ---- directions ---------------------------------------------------------------------------------
def weight_direction(model, layer: int, row: int, column: int) -> np.ndarray:
    """The unit vector of one weight, W_layer[row, column].

    Parameters
    ----------
    model : Network, MLPClassifier or MLPRegressor
        A network, or a fitted estimator (its ``network_``).
    layer : int
        The dense layer, from 0 at the input.
    row : int
        The input unit (W has shape (fan_in, fan_out)).
    column : int
        The output unit.

    Returns
    -------
    ndarray of shape (n_params,)
        The direction.
    """
    network = network_of(model)
    weights = [entry for entry in network.layout() if entry[0] == "weight"]
    layer = check_int(layer, "layer", minimum=0)
    if layer >= len(weights):
        raise ValueError(f"layer must be < {len(weights)} (the number of weight matrices), got "
                         f"{layer}")
    _, _, offset, rows, cols = weights[layer]
    if not (0 <= row < rows and 0 <= column < cols):
        raise ValueError(f"(row, column) must lie within W_{layer}'s shape ({rows}, {cols}), "
                         f"got ({row}, {column})")
    d = np.zeros(network.n_params)
    d[offset + row * cols + column] = 1.0
    return d


def random_direction(model, *, filter_normalized: bool = True, random_state=None) -> np.ndarray:
    """A Gaussian random direction, filter-normalised by default.

    Parameters
    ----------
    model : Network, MLPClassifier or MLPRegressor
        A network, or a fitted estimator (its ``network_``).
    filter_normalized : bool
        Whether to normalise as Li et al. (2018): each output unit's incoming weights — a column
        of W in nncore's (fan_in, fan_out) layout, a row in PyTorch's — rescaled to the norm of
        the same weights of θ, and biases and batch-norm parameters set to 0 (that paper's
        convention for them), so that the plot shows the weights' landscape.
    random_state : None, int or numpy RandomState
        Seeds the draw.

    Returns
    -------
    ndarray of shape (n_params,)
        The direction.
    """
    network = network_of(model)
    rng = check_random_state(random_state)
    theta = network.params.astype(np.float64)
    d = np.zeros(network.n_params)
    for kind, _, offset, rows, cols in network.layout():
        if kind != "weight":
            continue
        block = rng.standard_normal((rows, cols))
        if filter_normalized:
            W = theta[offset:offset + rows * cols].reshape(rows, cols)
            block *= np.linalg.norm(W, axis=0) / np.maximum(np.linalg.norm(block, axis=0), 1e-300)
        d[offset:offset + rows * cols] = block.ravel()
    return d


def eigen_direction(model, X, y, *, sample_weight=None, random_state=None) -> np.ndarray:
    """The unit eigenvector of the Hessian's largest-magnitude eigenvalue.

    Parameters
    ----------
    model : Network, MLPClassifier or MLPRegressor
        A network, or a fitted estimator (its ``network_``).
    X : array-like or sparse matrix of shape (n_samples, n_features)
        The training rows of the objective.
    y : array-like
        Their targets; an estimator's go through its own label encoding.
    sample_weight : array-like of shape (n_samples,) or None
        Weights of the training rows; None weighs every row 1.
    random_state : None, int or numpy RandomState
        Seeds the Lanczos start.

    Returns
    -------
    ndarray of shape (n_params,)
        The direction.
    """
    return top_eigenvalues(model, X, y, 1, sample_weight=sample_weight,
                           random_state=random_state).eigenvectors[:, 0]


def _solution(theta, name: str) -> np.ndarray:
    """A parameter vector, or the parameters of a fitted estimator or Network."""
    if isinstance(theta, Network) or hasattr(theta, "network_"):
        return network_of(theta).params.astype(np.float64)
    try:
        vector = np.asarray(theta, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a parameter vector, a fitted nncore estimator or an "
                        f"nncore.Network, got {type(theta).__name__}") from None
    if vector.ndim != 1:
        raise ValueError(f"{name} must be a 1-D parameter vector, got shape {vector.shape}")
    return vector


def between(theta_a, theta_b) -> np.ndarray:
    """The direction θ_b − θ_a between two solutions.

    With origin θ_a, α = 0 is θ_a and α = 1 is θ_b (α < 0 and α > 1 extrapolate).

    Parameters
    ----------
    theta_a : array-like, Network or fitted estimator
        The first point: a parameter vector, or a model (its parameters).
    theta_b : array-like, Network or fitted estimator
        The second point, likewise.

    Returns
    -------
    ndarray of shape (n_params,)
        θ_b − θ_a.
    """
    a, b = _solution(theta_a, "theta_a"), _solution(theta_b, "theta_b")
    if a.shape != b.shape:
        raise ValueError(f"the two solutions differ in shape: {a.shape} vs {b.shape}")
    return b - a


# ---- slices -------------------------------------------------------------------------------------
class Slice(NamedTuple):
    """A 1-D or 2-D slice of the loss landscape, as :func:`slice_1d` and :func:`slice_2d` give it.

    Parameters
    ----------
    alphas : ndarray of shape (m,)
        The steps along the first direction.
    betas : ndarray of shape (p,) or None
        The steps along the second direction; None for a 1-D slice.
    train_losses : ndarray of shape (m,) or (m, p)
        The training objective at each point.
    test_losses : ndarray or None
        The test loss at each point, or None without test data.
    origin_loss : float
        The objective at the origin (α = β = 0).
    """

    alphas: np.ndarray
    betas: np.ndarray | None
    train_losses: np.ndarray
    test_losses: np.ndarray | None
    origin_loss: float  # J at the origin (α = β = 0)


def _setup(model, X, y, sample_weight, X_test, y_test, origin):
    objective = Objective(model, X, y, sample_weight)
    origin = (objective.network.params.astype(np.float64) if origin is None
              else np.asarray(origin, dtype=np.float64))
    if origin.shape != (objective.n_params,):
        raise ValueError(f"origin must have shape ({objective.n_params},), got {origin.shape}")
    test = None
    if (X_test is None) != (y_test is None):
        raise ValueError("give both X_test and y_test, or neither")
    if X_test is not None:
        test = model.prepare(X_test, y_test)
    return objective, origin, test


def _direction(objective, d, name):
    d = np.asarray(d, dtype=np.float64)
    if d.shape != (objective.n_params,):
        raise ValueError(f"{name} must have shape ({objective.n_params},), got {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError(f"{name} must be finite")
    return d


def _evaluate(objective, test, theta):
    train = objective.value(theta)
    if test is None:
        return train, np.nan
    return train, objective.network_at(theta).mean_loss(test)


def slice_1d(model, X, y, direction, alphas=None, *, sample_weight=None, X_test=None,
             y_test=None, origin=None) -> Slice:
    """The training objective J(origin + α·direction) along a line.

    Parameters
    ----------
    model : Network, MLPClassifier or MLPRegressor
        A network, or a fitted estimator (its ``network_``).
    X : array-like or sparse matrix of shape (n_samples, n_features)
        The training rows of the objective.
    y : array-like
        Their targets; an estimator's go through its own label encoding.
    direction : array-like of shape (n_params,)
        The direction d.
    alphas : array-like or None
        The steps α; None takes 21 points in [-1, 1].
    sample_weight : array-like of shape (n_samples,) or None
        Weights of the training rows; None weighs every row 1.
    X_test : array-like or None
        Rows for a test curve: the mean loss as the model predicts (batch norm on its running
        statistics, no L2 term); None draws no test curve.
    y_test : array-like or None
        Their targets.
    origin : array-like of shape (n_params,) or None
        The point at α = 0; None is the model's parameters.

    Returns
    -------
    Slice
        The 1-D slice.
    """
    objective, origin, test = _setup(model, X, y, sample_weight, X_test, y_test, origin)
    d = _direction(objective, direction, "direction")
    alphas = np.linspace(-1, 1, 21) if alphas is None else np.asarray(alphas, dtype=np.float64)
    values = np.array([_evaluate(objective, test, origin + a * d) for a in alphas])
    return Slice(alphas, None, values[:, 0], values[:, 1] if test is not None else None,
                 objective.value(origin))


def slice_2d(model, X, y, direction_1, direction_2, alphas=None, betas=None, *,
             sample_weight=None, X_test=None, y_test=None, origin=None) -> Slice:
    """The training objective J(origin + α·d1 + β·d2) on a grid.

    Parameters
    ----------
    model : Network, MLPClassifier or MLPRegressor
        A network, or a fitted estimator (its ``network_``).
    X : array-like or sparse matrix of shape (n_samples, n_features)
        The training rows of the objective.
    y : array-like
        Their targets; an estimator's go through its own label encoding.
    direction_1 : array-like of shape (n_params,)
        The first direction d1.
    direction_2 : array-like of shape (n_params,)
        The second direction d2.
    alphas : array-like or None
        The steps α along d1; None takes 21 points in [-1, 1].
    betas : array-like or None
        The steps β along d2; None takes 21 points in [-1, 1].
    sample_weight : array-like of shape (n_samples,) or None
        Weights of the training rows; None weighs every row 1.
    X_test : array-like or None
        Rows for a test curve: the mean loss as the model predicts (batch norm on its running
        statistics, no L2 term); None draws no test curve.
    y_test : array-like or None
        Their targets.
    origin : array-like of shape (n_params,) or None
        The point at α = β = 0; None is the model's parameters.

    Returns
    -------
    Slice
        The 2-D slice.
    """
    objective, origin, test = _setup(model, X, y, sample_weight, X_test, y_test, origin)
    d1 = _direction(objective, direction_1, "direction_1")
    d2 = _direction(objective, direction_2, "direction_2")
    alphas = np.linspace(-1, 1, 21) if alphas is None else np.asarray(alphas, dtype=np.float64)
    betas = np.linspace(-1, 1, 21) if betas is None else np.asarray(betas, dtype=np.float64)
    values = np.array([[_evaluate(objective, test, origin + a * d1 + b * d2) for b in betas]
                       for a in alphas])
    return Slice(alphas, betas, values[..., 0], values[..., 1] if test is not None else None,
                 objective.value(origin))
