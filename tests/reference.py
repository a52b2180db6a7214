"""The NumPy reference MLP: the maths of DESIGN.md §2 written plainly in float64.

Everything here is deliberately simple (Python loops over layers, textbook formulas) so it can be
read against the lecture; the C++ core must agree with it to tight tolerances.

Conventions: X (n, d) samples in rows; layer t: P_t = A_{t-1} @ W_t + b_t, A_t = g(P_t), with the
output layer linear; W_t has shape (fan_in, fan_out). Parameters are lists Ws, bs.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf, expit, logsumexp, xlogy

LEAKY_SLOPE = 0.01


# ---- activations: g and g' side by side -----------------------------------------------------
def activation(name: str, p: np.ndarray) -> np.ndarray:
    if name == "identity":
        return p
    if name == "relu":
        return np.maximum(p, 0.0)
    if name == "logistic":
        return expit(p)
    if name == "tanh":
        return np.tanh(p)
    if name == "leaky_relu":
        return np.where(p > 0, p, LEAKY_SLOPE * p)
    if name == "softplus":
        return np.logaddexp(0.0, p)
    if name == "gelu":
        return 0.5 * p * (1.0 + erf(p / np.sqrt(2.0)))
    raise ValueError(name)


def activation_derivative(name: str, p: np.ndarray) -> np.ndarray:
    if name == "identity":
        return np.ones_like(p)
    if name == "relu":
        return (p > 0).astype(float)
    if name == "logistic":
        s = expit(p)
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - np.tanh(p) ** 2
    if name == "leaky_relu":
        return np.where(p > 0, 1.0, LEAKY_SLOPE)
    if name == "softplus":
        return expit(p)
    if name == "gelu":
        cdf = 0.5 * (1.0 + erf(p / np.sqrt(2.0)))
        pdf = np.exp(-0.5 * p**2) / np.sqrt(2.0 * np.pi)
        return cdf + p * pdf
    raise ValueError(name)


# ---- losses on raw scores F (n, K): per-sample value and ∂ℓ_i/∂f_i side by side ---------------
def per_sample_loss(name: str, F: np.ndarray, Y: np.ndarray) -> np.ndarray:
    K = F.shape[1]
    if name == "squared_error":  # ½ squared error averaged over outputs
        return 0.5 * np.sum((Y - F) ** 2, axis=1) / K
    if name == "logistic":  # softplus(f) − y f, summed over outputs
        return np.sum(np.logaddexp(0.0, F) - Y * F, axis=1)
    if name == "softmax":  # cross-entropy −Σ_k y_k log softmax_k(f)
        return np.sum(Y, axis=1) * logsumexp(F, axis=1) - np.sum(Y * F, axis=1)
    if name == "poisson":  # half Poisson deviance, log link: y log(y/μ) − y + μ
        mu = np.exp(F)
        return np.sum(xlogy(Y, Y) - Y * F - Y + mu, axis=1)
    raise ValueError(name)


def per_sample_loss_grad(name: str, F: np.ndarray, Y: np.ndarray) -> np.ndarray:
    K = F.shape[1]
    if name == "squared_error":
        return (F - Y) / K
    if name == "logistic":
        return expit(F) - Y
    if name == "softmax":
        softmax = np.exp(F - logsumexp(F, axis=1, keepdims=True))
        return softmax * np.sum(Y, axis=1, keepdims=True) - Y
    if name == "poisson":
        return np.exp(F) - Y
    raise ValueError(name)


# ---- the network --------------------------------------------------------------------------
def unpack(flat: np.ndarray, layer_sizes) -> tuple[list, list]:
    """Split a parameter vector laid out W_0, b_0, W_1, b_1, ... into float64 lists."""
    Ws, bs, at = [], [], 0
    flat = np.asarray(flat, dtype=np.float64)
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        Ws.append(flat[at : at + fan_in * fan_out].reshape(fan_in, fan_out).copy())
        at += fan_in * fan_out
        bs.append(flat[at : at + fan_out].copy())
        at += fan_out
    assert at == flat.size
    return Ws, bs


def pack(Ws, bs) -> np.ndarray:
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(Ws, bs)])


def forward(Ws, bs, X, act: str):
    """Pre-activations P_t and activations A_t of every layer (A_{-1} = X is not included)."""
    pres, acts = [], []
    A = X
    for t, (W, b) in enumerate(zip(Ws, bs)):
        P = A @ W + b
        A = P if t == len(Ws) - 1 else activation(act, P)
        pres.append(P)
        acts.append(A)
    return pres, acts


def objective_scale(w: np.ndarray, reduction: str, n_total: int) -> float:
    """1/Σw for the mean objective, n/Σw for the lecture's sum."""
    return (1.0 if reduction == "mean" else float(n_total)) / float(np.sum(w))


def objective(Ws, bs, X, Y, act, loss, alpha=0.0, w=None, reduction="mean", n_total=None):
    """scale · (Σ_i w_i ℓ_i + α/2 Σ_t ‖W_t‖²)."""
    w = np.ones(X.shape[0]) if w is None else w
    n_total = X.shape[0] if n_total is None else n_total
    F = forward(Ws, bs, X, act)[1][-1]
    raw = np.sum(w * per_sample_loss(loss, F, Y)) + 0.5 * alpha * sum(np.sum(W * W) for W in Ws)
    return objective_scale(w, reduction, n_total) * raw


def gradients(Ws, bs, X, Y, act, loss, alpha=0.0, w=None, reduction="mean", n_total=None):
    """(objective, dWs, dbs) by backpropagation written out by hand.

    The first layer's input gradient is not needed and is not computed."""
    w = np.ones(X.shape[0]) if w is None else w
    n_total = X.shape[0] if n_total is None else n_total
    scale = objective_scale(w, reduction, n_total)
    pres, acts = forward(Ws, bs, X, act)
    value = objective(Ws, bs, X, Y, act, loss, alpha, w, reduction, n_total)
    dP = scale * w[:, None] * per_sample_loss_grad(loss, acts[-1], Y)  # ∂L/∂P_{L-1}
    dWs, dbs = [None] * len(Ws), [None] * len(Ws)
    for t in range(len(Ws) - 1, -1, -1):
        A_prev = X if t == 0 else acts[t - 1]
        dWs[t] = A_prev.T @ dP + scale * alpha * Ws[t]
        dbs[t] = dP.sum(axis=0)
        if t > 0:
            dA_prev = dP @ Ws[t].T
            dP = dA_prev * activation_derivative(act, pres[t - 1])
    return value, dWs, dbs


def sgd_step(Ws, bs, dWs, dbs, learning_rate):
    """θ ← θ − η g."""
    return ([W - learning_rate * dW for W, dW in zip(Ws, dWs)],
            [b - learning_rate * db for b, db in zip(bs, dbs)])


def train_epoch(Ws, bs, X, Y, act, loss, order, batch_size, learning_rate, alpha=0.0, w=None,
                reduction="mean"):
    """One epoch of minibatch SGD visiting rows in `order`; returns (Ws, bs, mean loss) where the
    mean loss is Σ_M |M| L_M / Σ_M |M| with L_M the mean-form objective before M's step."""
    n = X.shape[0]
    w = np.ones(n) if w is None else w
    total, rows = 0.0, 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        value, dWs, dbs = gradients(Ws, bs, X[idx], Y[idx], act, loss, alpha, w[idx],
                                    reduction, n_total=n)
        mean_value = value / objective_scale(w[idx], reduction, n) / np.sum(w[idx])
        Ws, bs = sgd_step(Ws, bs, dWs, dbs, learning_rate)
        total += len(idx) * mean_value
        rows += len(idx)
    return Ws, bs, total / rows
