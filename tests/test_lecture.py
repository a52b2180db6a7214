"""The lecture's claims, checked on the core."""

import numpy as np
import pytest
from conftest import make_problem

import nncore
import reference as ref


@pytest.mark.parametrize("loss", ["squared_error", "logistic"])
def test_sum_reduction_is_the_lecture_update(loss):
    """With loss_reduction='sum', one SGD step on minibatch M of n rows is
    W ← W − γ · (n/|M|) · Σ_{i∈M} ∂ℓ_i/∂W, with per-sample gradients computed one at a time."""
    sizes, X, Y, _ = make_problem(loss, 1, n=12, d=3, seed=9)
    net = nncore.Network(sizes, "tanh", loss, loss_reduction="sum", random_state=5)
    Ws, bs = ref.unpack(net.params, sizes)
    M = np.array([7, 2, 10, 4])
    n, gamma = X.shape[0], 0.01

    per_sample = [ref.gradients(Ws, bs, X[[i]], Y[[i]], "tanh", loss) for i in M]
    grad_W = [sum(g[1][t] for g in per_sample) for t in range(len(Ws))]
    grad_b = [sum(g[2][t] for g in per_sample) for t in range(len(Ws))]
    expected_W = [W - gamma * (n / len(M)) * g for W, g in zip(Ws, grad_W)]
    expected_b = [b - gamma * (n / len(M)) * g for b, g in zip(bs, grad_b)]

    net.train_epoch(X, Y, learning_rate=gamma, batch_size=len(M), order=M)
    for t in range(len(Ws)):
        np.testing.assert_allclose(net.coefs[t], expected_W[t], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(net.intercepts[t], expected_b[t], rtol=1e-12, atol=1e-14)


def test_sum_is_n_times_mean():
    sizes, X, Y, w = make_problem("squared_error", 1)
    mean_net = nncore.Network(sizes, "relu", alpha=0.1, random_state=0)
    sum_net = nncore.Network(sizes, "relu", alpha=0.1, loss_reduction="sum", random_state=0)
    mean_value, mean_grads = mean_net.loss_and_grad(X, Y, w, n_total=50)
    sum_value, sum_grads = sum_net.loss_and_grad(X, Y, w, n_total=50)
    np.testing.assert_allclose(sum_value, 50 * mean_value, rtol=1e-13)
    np.testing.assert_allclose(sum_grads, 50 * mean_grads, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("depth", [0, 1, 3])
def test_input_gradient_is_never_computed(depth, dtype):
    """The core counts, per layer, how often it computed the gradient of that layer's input.
    The first layer's input is x: its count stays 0 while every other layer's grows."""
    sizes, X, Y, _ = make_problem("logistic", depth)
    net = nncore.Network(sizes, "relu", "logistic", dtype=dtype, random_state=0)
    assert net.input_grad_counts == [0] * (len(sizes) - 1)
    net.loss_and_grad(X, Y)
    assert net.input_grad_counts == [0] + [1] * (len(sizes) - 2)
    nncore.train(net, X, Y, epochs=2, batch_size=4, random_state=0)  # 3 steps per epoch
    assert net.input_grad_counts == [0] + [7] * (len(sizes) - 2)


def test_zero_step_size_behaviour_is_rejected_not_ignored():
    sizes, X, Y, _ = make_problem("squared_error", 1)
    net = nncore.Network(sizes, "relu", random_state=0)
    with pytest.raises(ValueError, match="learning_rate"):
        net.train_epoch(X, Y, learning_rate=0.0)


def test_sgd_learns_breast_cancer():
    """End to end: standardised inputs, small minibatches, a few epochs give a good classifier."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    net = nncore.Network([30, 32, 1], "relu", "logistic", alpha=1e-4, random_state=0)
    losses = nncore.train(net, scaler.transform(X_tr), y_tr, epochs=30, learning_rate=0.05,
                          batch_size=32, random_state=0)
    assert losses[-1] < 0.5 * losses[0]
    accuracy = np.mean((net.forward(scaler.transform(X_te))[:, 0] >= 0) == y_te)
    assert accuracy > 0.93  # scikit-learn's MLP with these settings scores 0.937 on this split
