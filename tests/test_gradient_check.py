"""Central finite differences of the objective against the core's backpropagated gradient."""

import itertools

import numpy as np
import pytest
from conftest import ACTIVATIONS, LOSSES, make_problem

import nncore

# Central differences have O(h²) truncation and O(ε/h) rounding error; h = 1e-6 balances them
# near 1e-9 relative for these smooth objectives of O(1) scale.
STEP = 1e-6
RTOL = 1e-6


def numerical_gradient(net, X, Y, w):
    grad = np.empty(net.n_params)
    params = net.params
    for k in range(net.n_params):
        saved = params[k]
        params[k] = saved + STEP
        up = net.loss(X, Y, w)
        params[k] = saved - STEP
        down = net.loss(X, Y, w)
        params[k] = saved
        grad[k] = (up - down) / (2 * STEP)
    return grad


@pytest.mark.parametrize("act,loss", list(itertools.product(ACTIVATIONS, LOSSES)))
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_finite_differences(act, loss, reduction):
    sizes, X, Y, w = make_problem(loss, 1, n=7, d=3, seed=4)
    sizes = [3, 5, 4, sizes[-1]]  # two hidden layers: the chain rule through a hidden layer
    net = nncore.Network(sizes, act, loss, alpha=0.2, loss_reduction=reduction, random_state=0)
    _, grads = net.loss_and_grad(X, Y, w)
    analytic = grads.copy()
    numeric = numerical_gradient(net, X, Y, w)
    scale = np.abs(numeric).max()
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=RTOL * scale)


def test_gradient_check_can_fail():
    """The check above is sharp: a 1e-4 relative perturbation of one entry is detected."""
    sizes, X, Y, w = make_problem("squared_error", 1, n=7, d=3, seed=4)
    net = nncore.Network(sizes, "tanh", "squared_error", random_state=0)
    _, grads = net.loss_and_grad(X, Y, w)
    analytic = grads.copy()
    analytic[3] *= 1 + 1e-4
    numeric = numerical_gradient(net, X, Y, w)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=RTOL * np.abs(numeric).max())
