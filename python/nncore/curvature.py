"""Curvature of the training objective at a trained network: exact Hessian-vector products and the
sharpness measures built on them (top eigenvalues, trace, ε-sharpness, spectral density).

Every function takes a model — an `nncore.Network` or a fitted `MLPClassifier`/`MLPRegressor`
(its `network_`; y goes through the estimator's own label encoding) — and data (X, y,
sample_weight). What is measured is the objective whose gradient training follows, on the data
given as one batch:

    J(θ) = scale · (Σ_i w_i ℓ_i(θ) + α/2 Σ_t ‖W_t‖²),   scale = 1/Σw ('mean') or n/Σw ('sum')

with batch norm in training mode (its batch statistics, and so J, depend on θ; running statistics
are not used or touched). H·v is exact: one forward and one backward pass of the R-operator in
the core, never a difference of gradients. With `chunk_size`, products, gradients and losses are
summed over row chunks with the whole set's scale and the L2 term added once — exactly J without
batch norm; with batch norm each chunk normalises with its own statistics, a ghost-batch
objective.

Measuring changes nothing: parameters, gradients, batch-norm statistics and optimiser state stay
bit-identical (perturbed points are evaluated on a private copy of the network). Results are new
arrays."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.utils import check_random_state

from ._docs import with_shared_docs
from ._validation import check_int, check_param
from .network import Network, PreparedData


# ---- the objective of one model on one data set ---------------------------------------------
_BLOCK = 16  # vectors per shared pass (Hutchinson probes, Hessian columns)


# The data parameters every measure takes, documented once (see nncore._docs).
_PARAMETERS = {
    "model": """\
model : Network, MLPClassifier or MLPRegressor
    The model measured: a network, or a fitted estimator (its ``network_``).""",
    "X": """\
X : array-like or sparse matrix of shape (n_samples, n_features)
    The rows of the objective, taken as one batch (sparse rows are made dense).""",
    "y": """\
y : array-like
    Their targets; an estimator's go through its own label encoding.""",
    "sample_weight": """\
sample_weight : array-like of shape (n_samples,) or None
    Weights of the rows; None weighs every row 1.""",
    "chunk_size": """\
chunk_size : int or None
    Sum products, gradients and losses over chunks of this many rows (with the whole set's
    normaliser and the L2 term once); None takes all rows at once. Exact without batch
    norm; with batch norm each chunk normalises with its own statistics.""",
}


class Objective:
    """J(θ) of `model` on (X, y, sample_weight), its gradient and exact H·v, at the network's
    parameters or at any other θ (evaluated on a copy of the network)."""

    def __init__(self, model, X, y, sample_weight=None, *, chunk_size: int | None = None):
        # Every measure here needs value, gradient and H·v of one function. Two of
        # scikit-learn's conventions, which the estimators train with, split them: a classifier
        # reports the log-loss of probabilities clipped to [eps, 1 − eps] while its gradient is
        # the unclipped one (far from θ the two differ by orders of magnitude), and a multi-output
        # regressor trains on n_outputs times the gradient of the loss it reports. On a copy,
        # both are switched off: the stable, unclipped objective and its own gradient.
        network = network_of(model)
        multi_output_sum = network.sum_output_gradient and network.loss_name == "squared_error"
        if network.loss_clip_epsilon or multi_output_sum:
            network = network.copy()
            network.loss_clip_epsilon = 0.0
            network.sum_output_gradient = False
        self.network = network
        data = model.prepare(X, y, sample_weight)
        self.n_params = self.network.n_params
        self.dtype = self.network.dtype
        self.scale = self.network.objective_scale(data)
        if chunk_size is not None:
            chunk_size = check_int(chunk_size, "chunk_size")
            if self.network.batch_norm and chunk_size < 2:
                raise ValueError("chunk_size must be >= 2 with batch norm (batch statistics)")
        n = data.n_samples
        step = n if chunk_size is None else chunk_size
        self.chunks = [PreparedData(data.X[i:i + step], data.Y[i:i + step],
                                    None if data.sample_weight is None
                                    else data.sample_weight[i:i + step])
                       for i in range(0, n, step)]
        if self.network.batch_norm and self.chunks[-1].n_samples < 2:
            self.chunks[-2:] = [_concatenate(self.chunks[-2:])]  # no chunk of one row
        self.hvp_count = 0
        self._scratch = None

    def _at(self, theta) -> Network:
        """The network with parameters theta: the network itself for None (only read), else the
        private copy."""
        return self.network if theta is None else self.network_at(theta)

    def network_at(self, theta) -> Network:
        """The private copy of the network with parameters theta (the model is never changed)."""
        if self._scratch is None:
            self._scratch = self.network.copy()
        self._scratch.params[:] = theta
        return self._scratch

    def hvp(self, v, theta=None) -> np.ndarray:
        """H v (float64)."""
        return self.hvp_many(np.asarray(v)[None, :], theta)[0]

    def hvp_many(self, V, theta=None) -> np.ndarray:
        """H Vᵀ for the k rows of V (k, n_params), float64: one shared pass at θ per chunk."""
        net = self._at(theta)
        total = None
        for i, chunk in enumerate(self.chunks):
            _, HV = net.hessian_vector_products(chunk, V, scale=self.scale, with_penalty=i == 0)
            total = HV.astype(np.float64) if total is None else total + HV
        self.hvp_count += len(V)
        return total

    def value(self, theta=None) -> float:
        """J at theta (default: the network's parameters)."""
        net = self._at(theta)
        total = 0.0
        for chunk in self.chunks:
            loss_sum, penalty = net.objective_terms(chunk)
            total += loss_sum
        return (total + penalty) * self.scale

    def value_and_grad(self, theta=None):
        """(J, ∇J) at theta (default: the network's parameters), ∇J a new float64 array. Runs on
        the private copy, so the network's own gradient buffer is not touched."""
        net = self.network_at(self.network.params if theta is None else theta)
        alpha = net.alpha
        value, grad = 0.0, np.zeros(self.n_params)
        try:
            for i, chunk in enumerate(self.chunks):
                net.alpha = alpha if i == 0 else 0.0  # the L2 term once
                chunk_value, chunk_grad = net.loss_and_grad(chunk)
                ratio = self.scale / net.objective_scale(chunk)  # to the whole set's scale
                value += chunk_value * ratio
                grad += chunk_grad * ratio
        finally:
            net.alpha = alpha
        return value, grad

    def operator(self):
        """H as a scipy.sparse.linalg.LinearOperator (float64, symmetric)."""
        from scipy.sparse.linalg import LinearOperator

        return LinearOperator((self.n_params, self.n_params), matvec=self.hvp, rmatvec=self.hvp,
                              dtype=np.float64)


def _concatenate(chunks) -> PreparedData:
    weights = [c.sample_weight for c in chunks]
    return PreparedData(np.concatenate([c.X for c in chunks]), np.concatenate([c.Y for c in chunks]),
                        None if weights[0] is None else np.concatenate(weights))


def network_of(model) -> Network:
    """The Network behind `model`: itself, or a fitted estimator's `network_`."""
    if isinstance(model, Network):
        return model
    network = getattr(model, "network_", None)
    if not isinstance(network, Network):
        raise TypeError(f"model must be an nncore.Network or a fitted nncore estimator, got "
                        f"{type(model).__name__}")
    return network


# ---- products and the Hessian -----------------------------------------------------------------
@with_shared_docs(**_PARAMETERS)
def hvp(model, X, y, v, *, sample_weight=None, chunk_size=None) -> np.ndarray:
    """H·v, exactly, for the objective of a model on (X, y).

    Parameters
    ----------
    {model}
    {X}
    {y}
    v : array-like of shape (n_params,)
        The direction, in the layout of ``Network.params``.
    {sample_weight}
    {chunk_size}

    Returns
    -------
    ndarray of shape (n_params,)
        H·v, a new float64 array.
    """
    return Objective(model, X, y, sample_weight, chunk_size=chunk_size).hvp(_vector(model, v))


@with_shared_docs(**_PARAMETERS)
def hessian_operator(model, X, y, *, sample_weight=None, chunk_size=None):
    """The Hessian as a scipy ``LinearOperator``: ``eigsh``, ``cg``, … work on it.

    Parameters
    ----------
    {model}
    {X}
    {y}
    {sample_weight}
    {chunk_size}

    Returns
    -------
    scipy.sparse.linalg.LinearOperator
        A symmetric (n_params, n_params) float64 operator whose products are exact H·v.
    """
    return Objective(model, X, y, sample_weight, chunk_size=chunk_size).operator()


@with_shared_docs(**_PARAMETERS)
def hessian(model, X, y, *, sample_weight=None) -> np.ndarray:
    """The full Hessian, column by column: for small models, tests and teaching.

    Parameters
    ----------
    {model}
    {X}
    {y}
    {sample_weight}

    Returns
    -------
    ndarray of shape (n_params, n_params)
        The Hessian, float64.
    """
    objective = Objective(model, X, y, sample_weight)
    n = objective.n_params
    if n > 5000:
        raise ValueError(f"hessian() builds all {n}² entries; use hessian_operator for a model "
                         f"this size")
    H = np.empty((n, n))
    for start in range(0, n, _BLOCK):
        columns = np.eye(n, min(_BLOCK, n - start), -start).T  # e_start, e_start+1, ...
        H[:, start:start + len(columns)] = objective.hvp_many(columns).T
    return H


@with_shared_docs(**_PARAMETERS)
def gradient(model, X, y, *, sample_weight=None, chunk_size=None):
    """The objective and its gradient at the model's parameters: is this a minimum at all?

    Parameters
    ----------
    {model}
    {X}
    {y}
    {sample_weight}
    {chunk_size}

    Returns
    -------
    loss : float
        J at the model's parameters.
    grad : ndarray of shape (n_params,)
        ∇J, a new float64 array.
    """
    return Objective(model, X, y, sample_weight, chunk_size=chunk_size).value_and_grad()


def _vector(model, v, name: str = "v") -> np.ndarray:
    n = network_of(model).n_params
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (the parameter count), got {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} must be finite")
    return v


# ---- Lanczos ------------------------------------------------------------------------------------
class _Lanczos:
    """Lanczos with full reorthogonalisation, resumable: after m steps Q (n, m) is orthonormal,
    T = tridiag(betas, alphas, betas) = Qᵀ H Q, and `residual` = β_m, the norm of what H q_m
    leaves outside the basis (a Ritz pair (θ, Q s) then has ‖H Q s − θ Q s‖ = β_m |s_m|). When
    the Krylov space is exhausted (β ≈ 0) and an rng is given, it goes on from a random vector
    orthogonal to Q (β = 0 there: T block diagonal, still Qᵀ H Q)."""

    def __init__(self, matvec, start, rng=None):
        self.matvec, self.rng = matvec, rng
        self.n = start.size
        self.Q = np.zeros((self.n, 0))
        self.alphas, self.betas = [], []
        self.residual = 0.0
        self.next = start / np.linalg.norm(start)

    @property
    def size(self) -> int:
        return len(self.alphas)

    def extend(self, steps: int) -> None:
        steps = max(0, min(steps, self.n - self.size))
        Q = np.zeros((self.n, self.size + steps))
        Q[:, :self.size] = self.Q
        for _ in range(steps):
            if self.next is None:
                break
            j = self.size
            q = self.next
            Q[:, j] = q
            w = self.matvec(q)
            alpha = float(q @ w)
            w -= alpha * q
            if j > 0:
                w -= self.betas[-1] * Q[:, j - 1]
            basis = Q[:, :j + 1]
            w -= basis @ (basis.T @ w)  # full reorthogonalisation; twice is enough
            w -= basis @ (basis.T @ w)
            self.alphas.append(alpha)
            beta = float(np.linalg.norm(w))
            self.residual = beta
            self.next = w / beta if beta > 1e-10 * max(1.0, abs(alpha)) else None
            if j + 1 < self.n:
                if self.next is None and self.rng is not None:
                    w = self.rng.standard_normal(self.n)
                    w -= basis @ (basis.T @ w)
                    w -= basis @ (basis.T @ w)
                    self.next, beta = w / np.linalg.norm(w), 0.0
                if self.next is not None:
                    self.betas.append(beta)
        self.Q = Q[:, :self.size]

    def ritz(self):
        """(θ, S): T's eigenvalues (ascending) and eigenvectors."""
        m = self.size
        b = self.betas[:m - 1]
        return np.linalg.eigh(np.diag(self.alphas) + np.diag(b, 1) + np.diag(b, -1))


class Eigenpairs(NamedTuple):
    """What :func:`top_eigenvalues` reports.

    Parameters
    ----------
    eigenvalues : ndarray of shape (k,)
        The eigenvalues, ordered by ``which``.
    eigenvectors : ndarray of shape (n_params, k)
        Their unit eigenvectors, as columns.
    n_iter : int
        Lanczos steps taken, which is the number of Hessian-vector products.
    converged : bool
        Whether every Ritz residual ‖H x − λ x‖ is at most tol · max(1, abs(λ)).
    residuals : ndarray of shape (k,)
        Those residuals.
    """

    eigenvalues: np.ndarray  # (k,), ordered by `which`
    eigenvectors: np.ndarray  # (n_params, k), unit columns
    n_iter: int  # Lanczos steps = Hessian-vector products
    converged: bool  # every Ritz residual ‖H x − λ x‖ ≤ tol · max(1, |λ|)
    residuals: np.ndarray  # (k,) those residuals


_WHICH = ("LM", "LA", "SA")


@with_shared_docs(**_PARAMETERS)
def top_eigenvalues(model, X, y, k: int = 1, *, which: str = "LM", sample_weight=None,
                    tol: float = 1e-6, max_iter: int = 300, chunk_size=None,
                    random_state=None, v0=None) -> Eigenpairs:
    """The k extreme eigenvalues of the Hessian and their eigenvectors, by Lanczos.

    Lanczos with full reorthogonalisation: the Krylov space grows until every wanted Ritz pair
    has a residual of at most tol · max(1, abs(λ)) (checked every few steps, at no cost:
    ‖H x − λ x‖ = β_m abs(s_m)) or ``max_iter`` products were spent.

    A start vector ``v0`` near the wanted eigenvector — the previous one, when the top
    eigenvalue is tracked along training — makes the Ritz pair converge in a few products: with
    it, convergence is checked after every step from the ``k + 2``-th on (the check costs an
    eigendecomposition of a small tridiagonal matrix, not a product).

    Parameters
    ----------
    {model}
    {X}
    {y}
    k : int
        How many eigenvalues.
    which : {'LM', 'LA', 'SA'}
        Largest in magnitude, algebraically largest, or algebraically smallest (negative
        curvature, which a non-convex loss has).
    {sample_weight}
    tol : float
        The relative residual at which a Ritz pair counts as converged.
    max_iter : int
        The most Hessian-vector products, at least ``k``.
    {chunk_size}
    random_state : None, int or numpy RandomState
        Seeds the starting vector (when ``v0`` is None) and the restarts of an exhausted
        Krylov space.
    v0 : array-like of shape (n_params,) or None
        The starting vector (any non-zero norm), in the layout of ``Network.params``: a warm
        start, e.g. the previous call's ``eigenvectors[:, 0]``; None draws a random one. For
        k > 1 it still starts one Krylov space, from this vector.

    Returns
    -------
    Eigenpairs
        Eigenvalues, eigenvectors, products used, convergence and residuals.
    """
    objective = Objective(model, X, y, sample_weight, chunk_size=chunk_size)
    n = objective.n_params
    k = check_int(k, "k")
    if k > n:
        raise ValueError(f"k must be <= the parameter count {n}, got {k}")
    if which not in _WHICH:
        raise ValueError(f"which must be one of {', '.join(map(repr, _WHICH))}, got {which!r}")
    tol = check_param(tol, "tol")
    max_iter = check_int(max_iter, "max_iter")
    if max_iter < k:
        raise ValueError(f"max_iter must be >= k: {max_iter} Lanczos steps give at most "
                         f"{max_iter} eigenvalues, and k={k} were asked for")
    rng = check_random_state(random_state)
    warm = v0 is not None
    if warm:
        start = _vector(objective.network, v0, "v0")
        if not np.linalg.norm(start) > 0:
            raise ValueError("v0 must not be the zero vector")
    else:
        start = rng.standard_normal(n)
    lanczos = _Lanczos(objective.hvp, start, rng)
    # Cold: a first block of 20 steps, grown by half each time. Warm: the Ritz pair is expected
    # within a few steps, so check after each one (the check is free next to a product).
    steps = min(n, k + 2 if warm else max(2 * k + 8, 20), max_iter)
    while True:
        lanczos.extend(steps - lanczos.size)
        theta, S = lanczos.ritz()
        order = {"LM": np.argsort(-np.abs(theta)), "LA": np.argsort(-theta),
                 "SA": np.argsort(theta)}[which][:k]
        exhausted = lanczos.size == n or lanczos.next is None  # Ritz pairs are eigenpairs
        residuals = np.zeros(k) if exhausted else np.abs(lanczos.residual * S[-1, order])
        converged = bool(np.all(residuals <= tol * np.maximum(1.0, np.abs(theta[order]))))
        if converged or exhausted or lanczos.size >= max_iter:
            break
        steps = min(n, max_iter, lanczos.size + 1 if warm else int(lanczos.size * 1.5) + 1)
    vectors = lanczos.Q @ S[:, order]
    vectors /= np.linalg.norm(vectors, axis=0)
    return Eigenpairs(theta[order], vectors, objective.hvp_count, converged, residuals)


# ---- trace ------------------------------------------------------------------------------------------
class TraceEstimate(NamedTuple):
    """What :func:`hessian_trace` reports.

    Parameters
    ----------
    trace : float
        The mean of zᵀHz over the probes.
    std_error : float
        The standard deviation of the probes' values divided by √n_probes.
    n_probes : int
        How many probes.
    samples : ndarray of shape (n_probes,)
        Each probe's zᵀHz.
    """

    trace: float  # mean of zᵀHz over the probes
    std_error: float  # standard deviation of the probes / √n_probes
    n_probes: int
    samples: np.ndarray  # each probe's zᵀHz


@with_shared_docs(**_PARAMETERS)
def hessian_trace(model, X, y, *, n_probes: int = 50, sample_weight=None, chunk_size=None,
                  random_state=None) -> TraceEstimate:
    """The trace of the Hessian by Hutchinson's estimator, with its standard error.

    The probes z are Rademacher vectors, for which the expectation of zᵀHz is tr H.

    Parameters
    ----------
    {model}
    {X}
    {y}
    n_probes : int
        How many probes.
    {sample_weight}
    {chunk_size}
    random_state : None, int or numpy RandomState
        Seeds the probes.

    Returns
    -------
    TraceEstimate
        The estimate, its standard error and every probe's value.
    """
    objective = Objective(model, X, y, sample_weight, chunk_size=chunk_size)
    n_probes = check_int(n_probes, "n_probes", minimum=2)
    rng = check_random_state(random_state)
    samples = np.empty(n_probes)
    for start in range(0, n_probes, _BLOCK):  # probes in blocks: one shared pass at θ each
        Z = rng.choice((-1.0, 1.0), size=(min(_BLOCK, n_probes - start), objective.n_params))
        samples[start:start + len(Z)] = np.einsum("ij,ij->i", Z, objective.hvp_many(Z))
    return TraceEstimate(float(samples.mean()), float(samples.std(ddof=1) / np.sqrt(n_probes)),
                         n_probes, samples)


# ---- ε-sharpness ------------------------------------------------------------------------------------
class Sharpness(NamedTuple):
    """What :func:`eps_sharpness` reports.

    Parameters
    ----------
    sharpness : float
        100 (max_δ J(θ+δ) − J(θ)) / (1 + J(θ)).
    loss : float
        J(θ).
    max_loss : float
        J(θ + δ*), the largest value found in the box.
    delta : ndarray of shape (n_params,)
        δ*, inside the box abs(δ_i) ≤ ε(abs(θ_i) + 1).
    n_iter : int
        Iterations made.
    method : str
        The method used.
    """

    sharpness: float  # 100 (max_δ J(θ+δ) − J(θ)) / (1 + J(θ))
    loss: float  # J(θ)
    max_loss: float  # J(θ + δ*), the largest value found in the box
    delta: np.ndarray  # δ*, inside |δ_i| ≤ ε(|θ_i| + 1)
    n_iter: int
    method: str


@with_shared_docs(**_PARAMETERS)
def eps_sharpness(model, X, y, *, epsilon: float = 1e-3, method: str = "ascent",
                  max_iter: int | None = None, sample_weight=None, chunk_size=None,
                  random_state=None) -> Sharpness:
    """Keskar et al.'s ε-sharpness.

    100 (max J(θ+δ) − J(θ)) / (1 + J(θ)), the maximum over the box
    abs(δ_i) ≤ ε (abs(θ_i) + 1).

    Parameters
    ----------
    {model}
    {X}
    {y}
    epsilon : float
        ε, the relative size of the box.
    method : {'ascent', 'l-bfgs-b'}
        ``'ascent'``: projected sign-gradient ascent from a random corner of the box at a
        quarter of its size, δ ← clip(δ + τ_k b ⊙ sign ∇J(θ+δ), −b, b) with b = ε(abs(θ)+1) and
        τ_k = 0.5·0.95^k, the best point seen kept (so never below δ = 0). ``'l-bfgs-b'``: the
        paper's procedure, scipy's L-BFGS-B on −J from δ = 0 within the box — at a minimum its
        first gradient is about 0, so it stops far below the maximum.
    max_iter : int or None
        Ascent steps or L-BFGS-B iterations; None takes 100 for ``'ascent'`` and 10 for
        ``'l-bfgs-b'``.
    {sample_weight}
    {chunk_size}
    random_state : None, int or numpy RandomState
        Seeds the ascent's starting corner.

    Returns
    -------
    Sharpness
        The sharpness, J at both ends, the maximiser δ and the iterations made.
    """
    objective = Objective(model, X, y, sample_weight, chunk_size=chunk_size)
    epsilon = check_param(epsilon, "epsilon")
    if method not in ("ascent", "l-bfgs-b"):
        raise ValueError(f"method must be 'ascent' or 'l-bfgs-b', got {method!r}")
    max_iter = check_int(100 if method == "ascent" and max_iter is None else
                         10 if max_iter is None else max_iter, "max_iter")
    theta = objective.network.params.astype(np.float64)
    bound = epsilon * (np.abs(theta) + 1.0)
    base = objective.value()
    best_value, best_delta = base, np.zeros_like(theta)
    if method == "ascent":
        rng = check_random_state(random_state)
        delta = 0.25 * bound * rng.choice((-1.0, 1.0), size=theta.size)
        n_iter = 0
        for k in range(max_iter):
            value, grad = objective.value_and_grad(theta + delta)
            n_iter += 1
            if value > best_value:
                best_value, best_delta = value, delta.copy()
            delta = np.clip(delta + 0.5 * 0.95**k * bound * np.sign(grad), -bound, bound)
        value = objective.value(theta + delta)
        if value > best_value:
            best_value, best_delta = value, delta.copy()
    else:
        from scipy.optimize import minimize

        def negative(delta):
            value, grad = objective.value_and_grad(theta + delta)
            return -value, -grad

        result = minimize(negative, np.zeros_like(theta), jac=True, method="L-BFGS-B",
                          bounds=list(zip(-bound, bound)), options={"maxiter": max_iter})
        n_iter = int(result.nit)
        delta = np.clip(result.x, -bound, bound)
        value = objective.value(theta + delta)
        if value > best_value:
            best_value, best_delta = value, delta
    return Sharpness(100.0 * (best_value - base) / (1.0 + base), base, best_value, best_delta,
                     n_iter, method)


# ---- adaptive sharpness -------------------------------------------------------------------------
class AdaptiveSharpness(NamedTuple):
    """What :func:`adaptive_sharpness` reports.

    Parameters
    ----------
    sharpness : float
        max J(θ+δ) − J(θ) over the ball ‖δ / (abs(θ) + η)‖₂ ≤ ρ: the largest rise found.
    loss : float
        J(θ).
    max_loss : float
        J(θ + δ*), the largest value found in the ball.
    delta : ndarray of shape (n_params,)
        δ*, the maximiser found.
    n_iter : int
        Ascent steps made.
    """

    sharpness: float  # J(θ + δ*) − J(θ)
    loss: float  # J(θ)
    max_loss: float  # J(θ + δ*)
    delta: np.ndarray  # δ*, inside ‖δ / (|θ| + η)‖₂ ≤ ρ
    n_iter: int


@with_shared_docs(**_PARAMETERS)
def adaptive_sharpness(model, X, y, *, rho: float = 0.5, eta: float = 1e-3,
                       max_iter: int = 20, sample_weight=None, chunk_size=None,
                       random_state=None) -> AdaptiveSharpness:
    """Adaptive sharpness (Kwon et al. 2021, ASAM): the worst rise of the objective within a
    ball scaled by the parameters' own magnitudes.

    .. math::

        S_\\rho(\\theta) = \\max_{\\lVert \\delta / (\\lvert\\theta\\rvert + \\eta)\\rVert_2
        \\le \\rho} J(\\theta + \\delta) - J(\\theta)

    (elementwise division). Written as δ = t ⊙ z with t = abs(θ) + η, the ball is ‖z‖₂ ≤ ρ.
    Rescaling a ReLU layer's weights and biases by a and the next layer's weights by 1/a
    changes neither the function nor, with η = 0, this measure: t scales exactly as θ does.
    Measured by projected normalised gradient ascent in z, from a seeded random point at half
    the radius, z ← Π(z + τ_k ρ g / ‖g‖) with g = t ⊙ ∇J(θ + t ⊙ z), τ_k = 0.5·0.95^k and Π
    the projection onto the ball; a fixed number of steps, the best point seen kept (so the
    result is never below 0, and the same seed gives the same number).

    Parameters
    ----------
    {model}
    {X}
    {y}
    rho : float
        ρ, the radius of the ball in relative units.
    eta : float
        η, a floor added to abs(θ) so that parameters at 0 can move; 0 makes the measure exactly
        invariant to the rescaling above, and parameters exactly 0 then stay fixed.
    max_iter : int
        Ascent steps (each one gradient evaluation).
    {sample_weight}
    {chunk_size}
    random_state : None, int or numpy RandomState
        Seeds the starting point.

    Returns
    -------
    AdaptiveSharpness
        The rise, J at both ends, the maximiser δ and the steps made.
    """
    objective = Objective(model, X, y, sample_weight, chunk_size=chunk_size)
    rho = check_param(rho, "rho", bound="epsilon")
    eta = check_param(eta, "eta", bound="alpha")
    max_iter = check_int(max_iter, "max_iter")
    theta = objective.network.params.astype(np.float64)
    scale = np.abs(theta) + eta
    rng = check_random_state(random_state)
    z = rng.standard_normal(theta.size)
    z *= 0.5 * rho / np.linalg.norm(z)
    base = objective.value()
    best_value, best_z = base, np.zeros_like(theta)
    for k in range(max_iter):
        value, grad = objective.value_and_grad(theta + scale * z)
        if value > best_value:
            best_value, best_z = value, z.copy()
        g = scale * grad  # the gradient with respect to z
        length = np.linalg.norm(g)
        if length == 0.0:
            break
        z = z + 0.5 * 0.95**k * rho * g / length
        z *= min(1.0, rho / np.linalg.norm(z))  # back into the ball
    value = objective.value(theta + scale * z)
    if value > best_value:
        best_value, best_z = value, z.copy()
    return AdaptiveSharpness(best_value - base, base, best_value, scale * best_z, max_iter)


# ---- PAC-Bayes flatness -------------------------------------------------------------------------
class NoiseFlatness(NamedTuple):
    """What :func:`pac_bayes_sigma` reports.

    Parameters
    ----------
    sigma : float
        The largest noise scale found whose mean rise over the draws is at most the threshold.
    rise : float
        That mean rise, mean_j J(θ + u_j) − J(θ), at ``sigma``.
    loss : float
        J(θ).
    threshold : float
        The allowed rise.
    magnitude_aware : bool
        Whether the noise of each parameter was scaled by abs(θ_i) + ε.
    n_draws : int
        Monte Carlo draws, the same at every σ tried.
    n_evaluations : int
        Values of σ tried (each costs n_draws evaluations of J).
    """

    sigma: float
    rise: float
    loss: float
    threshold: float
    magnitude_aware: bool
    n_draws: int
    n_evaluations: int


@with_shared_docs(**_PARAMETERS)
def pac_bayes_sigma(model, X, y, *, threshold: float = 0.1, magnitude_aware: bool = False,
                    epsilon: float = 1e-3, n_draws: int = 20, tol: float = 0.01,
                    sample_weight=None, chunk_size=None, random_state=None) -> NoiseFlatness:
    """PAC-Bayes flatness (Jiang et al. 2020, "Fantastic generalization measures"): the largest
    Gaussian weight noise the training objective tolerates.

    .. math::

        \\sigma^* = \\max \\{\\sigma : \\mathbb{E}_{u}[J(\\theta + u)] - J(\\theta)
        \\le \\text{threshold}\\}

    with u ~ N(0, σ² I), or, magnitude-aware (σ′), u_i ~ N(0, σ′² (abs(θ_i) + ε)²). A large σ is
    a flat minimum (the PAC-Bayes bound's KL term goes as ‖θ‖²/σ²). With ε = 0 the
    magnitude-aware σ′ is exactly invariant to rescaling a ReLU layer by a and the next by 1/a;
    the plain σ is not. The expectation is the mean over ``n_draws`` fixed standard normal
    draws ξ_j (u_j = σ ξ_j or σ′ (abs(θ) + ε) ⊙ ξ_j), the same at every σ, so the rise is a
    deterministic function of σ; σ is bracketed by doubling or halving and then bisected
    geometrically until the bracket's ratio is below 1 + tol. The lower end of the bracket, at
    which the mean rise is at most the threshold, is returned.

    Parameters
    ----------
    {model}
    {X}
    {y}
    threshold : float
        The allowed rise of the expected objective.
    magnitude_aware : bool
        Scale each parameter's noise by abs(θ_i) + ε (Jiang et al.'s σ′).
    epsilon : float
        ε of the magnitude-aware noise; unused otherwise.
    n_draws : int
        Monte Carlo draws of the noise.
    tol : float
        The relative precision of σ: bisection stops when the bracket's ratio is below 1 + tol.
    {sample_weight}
    {chunk_size}
    random_state : None, int or numpy RandomState
        Seeds the draws.

    Returns
    -------
    NoiseFlatness
        σ (or σ′), the mean rise there, J(θ) and the work done.
    """
    objective = Objective(model, X, y, sample_weight, chunk_size=chunk_size)
    threshold = check_param(threshold, "threshold", bound="epsilon")
    epsilon = check_param(epsilon, "epsilon", bound="alpha")
    n_draws = check_int(n_draws, "n_draws")
    tol = check_param(tol, "tol", bound="epsilon")
    theta = objective.network.params.astype(np.float64)
    rng = check_random_state(random_state)
    draws = rng.standard_normal((n_draws, theta.size))
    if magnitude_aware:
        draws *= np.abs(theta) + epsilon
    base = objective.value()
    tried = {}

    def rise(sigma):
        if sigma not in tried:
            tried[sigma] = float(np.mean([objective.value(theta + sigma * u) for u in draws])
                                 - base)
        return tried[sigma]

    # Bracket: lo within the threshold, hi beyond it. The start is a typical relative size.
    lo, hi = 0.0, 0.01 if magnitude_aware else 0.01 * max(np.sqrt(np.mean(theta**2)), 1e-12)
    if rise(hi) <= threshold:
        while rise(hi) <= threshold:
            lo, hi = hi, 2.0 * hi
            if hi > 1e12:
                raise ValueError(f"no noise scale up to 1e12 raises the objective by "
                                 f"{threshold:g}: it does not depend on the parameters")
    else:
        lo = hi / 2.0
        while rise(lo) > threshold:
            lo, hi = lo / 2.0, lo
            if lo < 1e-300:
                raise ValueError(f"even a noise scale of 1e-300 raises the objective by more "
                                 f"than {threshold:g}")
    while hi > lo * (1.0 + tol):
        middle = np.sqrt(lo * hi)
        if rise(middle) <= threshold:
            lo = middle
        else:
            hi = middle
    return NoiseFlatness(float(lo), rise(lo), base, threshold, bool(magnitude_aware), n_draws,
                         len(tried))


# ---- spectral density -----------------------------------------------------------------------------
class SpectralDensity(NamedTuple):
    """What :func:`spectral_density` reports.

    Parameters
    ----------
    grid : ndarray
        The eigenvalue axis.
    density : ndarray
        The smoothed density on the grid (it integrates to about 1).
    nodes : ndarray of shape (n_probes, steps)
        The Ritz values of every probe's Lanczos run.
    weights : ndarray of shape (n_probes, steps)
        Their quadrature weights (each row sums to 1).
    sigma : float
        The Gaussian smoothing width used.
    """

    grid: np.ndarray  # eigenvalue axis
    density: np.ndarray  # smoothed density on the grid (integrates to ~1)
    nodes: np.ndarray  # (n_probes, steps) Ritz values of every probe's Lanczos run
    weights: np.ndarray  # (n_probes, steps) their quadrature weights (each row sums to 1)
    sigma: float  # the Gaussian smoothing width used


@with_shared_docs(**_PARAMETERS)
def spectral_density(model, X, y, *, n_probes: int = 1, steps: int = 80, sigma: float | None = None,
                     n_grid: int = 1000, sample_weight=None, chunk_size=None,
                     random_state=None) -> SpectralDensity:
    """The eigenvalue density of the Hessian by stochastic Lanczos quadrature.

    Ghorbani et al. (2019), as PyHessian offers it: per Rademacher probe, ``steps`` Lanczos
    steps; the Ritz values with weights (first entry of their eigenvector)² are a quadrature of
    the spectral measure, averaged over probes and smoothed by Gaussians.

    Parameters
    ----------
    {model}
    {X}
    {y}
    n_probes : int
        How many probes.
    steps : int
        Lanczos steps per probe (at most the parameter count).
    sigma : float or None
        The width of the Gaussians; None takes 1% of the spread of the Ritz values.
    n_grid : int
        Points of the eigenvalue axis.
    {sample_weight}
    {chunk_size}
    random_state : None, int or numpy RandomState
        Seeds the probes.

    Returns
    -------
    SpectralDensity
        The density on its grid, with every probe's nodes and weights.
    """
    objective = Objective(model, X, y, sample_weight, chunk_size=chunk_size)
    n_probes = check_int(n_probes, "n_probes")
    steps = min(check_int(steps, "steps"), objective.n_params)
    rng = check_random_state(random_state)
    nodes = np.zeros((n_probes, steps))
    weights = np.zeros((n_probes, steps))
    for p in range(n_probes):
        z = rng.choice((-1.0, 1.0), size=objective.n_params)
        lanczos = _Lanczos(objective.hvp, z)
        lanczos.extend(steps)
        theta, S = lanczos.ritz()
        nodes[p, :len(theta)] = theta
        weights[p, :len(theta)] = S[0] ** 2
    lo, hi = nodes[weights > 0].min(), nodes[weights > 0].max()
    spread = max(hi - lo, 1e-12)
    sigma = 0.01 * spread if sigma is None else check_param(sigma, "sigma", bound="epsilon")
    grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, check_int(n_grid, "n_grid", minimum=2))
    gauss = np.exp(-0.5 * ((grid[:, None] - nodes.ravel()[None, :]) / sigma) ** 2)
    density = gauss @ weights.ravel() / (n_probes * sigma * np.sqrt(2 * np.pi))
    return SpectralDensity(grid, density, nodes, weights, sigma)
