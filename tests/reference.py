"""The NumPy reference MLP: the maths of nncore's core (docs/object-api.rst, "The mathematics")
written plainly in float64.

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


BN_EPS = 1e-5
BN_MOMENTUM = 0.1


# ---- batch normalisation, PyTorch's BatchNorm1d as documented ----------------------------------
def batchnorm_train(P, gamma, beta):
    """y = (x − E[x]) / sqrt(Var[x] + ε) · γ + β with the batch's mean and biased variance.
    Returns y and what backward needs."""
    mean = P.mean(axis=0)
    var = P.var(axis=0)  # biased (÷B)
    xhat = (P - mean) / np.sqrt(var + BN_EPS)
    return gamma * xhat + beta, (xhat, var, mean)


def batchnorm_eval(P, gamma, beta, running_mean, running_var):
    return gamma * (P - running_mean) / np.sqrt(running_var + BN_EPS) + beta


def batchnorm_running_update(running_mean, running_var, P):
    """x̂_new = (1 − momentum) x̂ + momentum x_t, with the unbiased batch variance for the variance."""
    B = P.shape[0]
    return ((1 - BN_MOMENTUM) * running_mean + BN_MOMENTUM * P.mean(axis=0),
            (1 - BN_MOMENTUM) * running_var + BN_MOMENTUM * P.var(axis=0) * B / (B - 1))


def batchnorm_backward(dY, gamma, cache):
    """Chain rule through y = γ x̂ + β, x̂ = (x − μ(x)) / sqrt(σ²(x) + ε), written out per term."""
    xhat, var, _ = cache
    B = dY.shape[0]
    dgamma = np.sum(dY * xhat, axis=0)
    dbeta = np.sum(dY, axis=0)
    dxhat = dY * gamma
    inv_std = 1.0 / np.sqrt(var + BN_EPS)
    # x̂ depends on x directly, through μ and through σ²:
    dvar = np.sum(dxhat * xhat, axis=0) * (-0.5) * inv_std**2
    dmean = -np.sum(dxhat, axis=0) * inv_std
    dP = dxhat * inv_std + dvar * 2.0 * xhat / (inv_std * B) + dmean / B
    return dP, dgamma, dbeta


# ---- the network -------------------------------------------------------------------------------
def forward(Ws, bs, X, act: str, bn=None, running=None, masks=None):
    """Pre-activations P_t and activations A_t of every layer (A_{-1} = X is not included).

    bn = (gammas, betas) normalises every hidden layer: with the batch's statistics, or with
    running = (means, vars) when given (evaluation mode). masks (one per hidden layer, None for
    no dropout there): inverted dropout, A_t = g(Z_t) ⊙ mask_t, the mask's entries 0 or 1/(1−p)."""
    pres, acts, caches = [], [], []
    A = X
    for t, (W, b) in enumerate(zip(Ws, bs)):
        P = A @ W + b
        last = t == len(Ws) - 1
        Z, cache = P, None
        if bn is not None and not last:
            gamma, beta = bn[0][t], bn[1][t]
            if running is None:
                Z, cache = batchnorm_train(P, gamma, beta)
            else:
                Z = batchnorm_eval(P, gamma, beta, running[0][t], running[1][t])
        A = Z if last else activation(act, Z)
        if masks is not None and not last and masks[t] is not None:
            A = A * masks[t]
        pres.append(Z)  # the activation's input
        acts.append(A)
        caches.append(cache)
    if bn is not None:
        return pres, acts, caches
    return pres, acts


def objective_scale(w: np.ndarray, reduction: str, n_total: int) -> float:
    """1/Σw for the mean objective, n/Σw for the lecture's sum."""
    return (1.0 if reduction == "mean" else float(n_total)) / float(np.sum(w))


def objective(Ws, bs, X, Y, act, loss, alpha=0.0, w=None, reduction="mean", n_total=None,
              bn=None, masks=None):
    """scale · (Σ_i w_i ℓ_i + α/2 Σ_t ‖W_t‖²)."""
    w = np.ones(X.shape[0]) if w is None else w
    n_total = X.shape[0] if n_total is None else n_total
    F = forward(Ws, bs, X, act, bn, masks=masks)[1][-1]
    raw = np.sum(w * per_sample_loss(loss, F, Y)) + 0.5 * alpha * sum(np.sum(W * W) for W in Ws)
    return objective_scale(w, reduction, n_total) * raw


def gradients(Ws, bs, X, Y, act, loss, alpha=0.0, w=None, reduction="mean", n_total=None,
              bn=None, masks=None):
    """(objective, dWs, dbs) by backpropagation written out by hand — plus (dgammas, dbetas)
    when bn is given. The first layer's input gradient is not needed and is not computed.
    masks: dropout as in `forward`, held fixed (the gradient is that of the masked network)."""
    w = np.ones(X.shape[0]) if w is None else w
    n_total = X.shape[0] if n_total is None else n_total
    scale = objective_scale(w, reduction, n_total)
    if bn is None:
        pres, acts = forward(Ws, bs, X, act, masks=masks)
        caches = [None] * len(Ws)
    else:
        pres, acts, caches = forward(Ws, bs, X, act, bn, masks=masks)
    value = objective(Ws, bs, X, Y, act, loss, alpha, w, reduction, n_total, bn, masks)
    dP = scale * w[:, None] * per_sample_loss_grad(loss, acts[-1], Y)  # ∂L/∂P_{L-1}
    dWs, dbs = [None] * len(Ws), [None] * len(Ws)
    dgammas, dbetas = [None] * (len(Ws) - 1), [None] * (len(Ws) - 1)
    for t in range(len(Ws) - 1, -1, -1):
        A_prev = X if t == 0 else acts[t - 1]
        dWs[t] = A_prev.T @ dP + scale * alpha * Ws[t]
        dbs[t] = dP.sum(axis=0)
        if t > 0:
            dA_prev = dP @ Ws[t].T
            if masks is not None and masks[t - 1] is not None:
                dA_prev = dA_prev * masks[t - 1]  # ∂L/∂g(Z_{t-1}) through A = g(Z) ⊙ mask
            dP = dA_prev * activation_derivative(act, pres[t - 1])  # ∂L/∂Z_{t-1}
            if bn is not None:
                dP, dgammas[t - 1], dbetas[t - 1] = batchnorm_backward(dP, bn[0][t - 1],
                                                                       caches[t - 1])
    if bn is not None:
        return value, dWs, dbs, dgammas, dbetas
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


# ---- optimisers: one step each, in scikit-learn's (and, for AdamW, PyTorch's) formulas ---------
def momentum_step(theta, velocity, g, learning_rate, momentum, nesterov):
    """scikit-learn's SGD: v ← μv − ηg; θ ← θ + v (Nesterov: θ ← θ + μv − ηg)."""
    velocity = momentum * velocity - learning_rate * g
    if nesterov:
        return theta + momentum * velocity - learning_rate * g, velocity
    return theta + velocity, velocity


def adam_step(theta, m, v, t, g, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
    """scikit-learn's Adam: η_t = η √(1−β2^t)/(1−β1^t); θ ← θ − η_t m/(√v + ε)."""
    t += 1
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g * g
    eta_t = learning_rate * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    return theta - eta_t * m / (np.sqrt(v) + epsilon), m, v, t


def adamw_step(theta, m, v, t, g, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
               weight_decay=0.01):
    """PyTorch's documented AdamW: θ ← θ − γλθ; m̂ = m/(1−β1^t), v̂ = v/(1−β2^t);
    θ ← θ − γ m̂/(√v̂ + ε)."""
    t += 1
    theta = theta - learning_rate * weight_decay * theta
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g * g
    m_hat = m / (1 - beta_1**t)
    v_hat = v / (1 - beta_2**t)
    return theta - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon), m, v, t


# ---- step-size schedules: the sequence of per-epoch step sizes ---------------------------------
def schedule_learning_rates(kind, learning_rate_init, losses, n_samples, *, power_t=0.5,
                            n_iter_no_change=10, tol=1e-4, step_size=10, gamma=0.1,
                            total_epochs=100, min_learning_rate=0.0, warmup_epochs=0):
    """The step size of each epoch when the epochs end with `losses` (one per epoch) on a data
    set of n_samples rows. Stops early where the adaptive schedule gives up."""
    rates, base, best, count = [], learning_rate_init, np.inf, 0
    for epoch, loss in enumerate(losses):
        e = max(epoch - warmup_epochs, 0)
        if kind == "step":
            eta = base * gamma ** (e // step_size)
        elif kind == "exponential":
            eta = base * gamma**e
        elif kind == "cosine":
            progress = min(1.0, e / total_epochs)
            eta = min_learning_rate + 0.5 * (base - min_learning_rate) * (1 + np.cos(np.pi * progress))
        else:
            eta = base
        if epoch < warmup_epochs:
            eta *= (epoch + 1) / warmup_epochs
        rates.append(eta)
        # end of the epoch: scikit-learn's bookkeeping
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
        if kind == "invscaling":
            base = learning_rate_init / ((epoch + 1) * n_samples + 1) ** power_t
        if kind == "adaptive" and count > n_iter_no_change:
            if base <= 1e-6:
                break
            base /= 5.0
            count = 0
    return rates
