"""Initialisation schemes, the zero-init teaching case, full-batch gradient descent and L-BFGS."""

import warnings

import numpy as np
import pytest
from conftest import make_problem

import nncore
import reference as ref


@pytest.mark.parametrize("init,expected_std", [
    ("he_normal", lambda fi, fo: np.sqrt(2 / fi)),
    ("glorot_normal", lambda fi, fo: np.sqrt(2 / (fi + fo))),
    ("normal", lambda fi, fo: 0.05),
])
def test_gaussian_schemes_draw_iid_normal_weights_and_zero_biases(init, expected_std):
    net = nncore.Network([400, 300, 200], init=init, init_std=0.05, random_state=0)
    for W, b in zip(net.coefs, net.intercepts):
        std = expected_std(*W.shape)
        assert abs(W.mean()) < 4 * std / np.sqrt(W.size)
        assert W.std() == pytest.approx(std, rel=0.02)
        assert np.all(b == 0)
    again = nncore.Network([400, 300, 200], init=init, init_std=0.05, random_state=0)
    np.testing.assert_array_equal(again.params, net.params)


def test_pytorch_uniform_draws_weights_and_biases_within_one_over_sqrt_fan_in():
    net = nncore.Network([400, 300, 200], init="pytorch_uniform", random_state=0)
    for W, b in zip(net.coefs, net.intercepts):
        bound = 1 / np.sqrt(W.shape[0])
        for block in (W, b):
            assert np.abs(block).max() <= bound
            assert np.abs(block).max() > 0.99 * bound  # the whole interval is used ...
            assert block.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)  # ... uniformly
    again = nncore.Network([400, 300, 200], init="pytorch_uniform", random_state=0)
    np.testing.assert_array_equal(again.params, net.params)


def test_glorot_uniform_matches_scikit_learn_for_every_layer_and_dtype():
    from sklearn.neural_network import MLPRegressor

    X, y = np.random.default_rng(0).normal(size=(20, 6)), np.zeros(20)
    for dtype in (np.float64, np.float32):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # one step at learning rate ~0 leaves scikit-learn's initial weights visible
            sk = MLPRegressor(hidden_layer_sizes=(5, 4), solver="sgd", learning_rate_init=1e-300,
                              momentum=0, max_iter=1, random_state=7, batch_size=20)
            sk.fit(X.astype(dtype), y.astype(dtype))
        net = nncore.Network([6, 5, 4, 1], "relu", dtype=dtype, random_state=7)
        for mine, theirs in zip(net.coefs + net.intercepts, sk.coefs_ + sk.intercepts_):
            np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("act", ["tanh", "logistic", "gelu"])
def test_zero_init_trains_but_hidden_units_stay_identical(act):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    Y = np.column_stack([np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2], np.cos(X[:, 3])])
    sizes = [4, 16, 16, 2]
    net = nncore.Network(sizes, act, init="zeros")
    assert np.all(net.params == 0)
    losses = nncore.train(net, X, Y, epochs=40, learning_rate=0.01, batch_size=8,
                          optimizer=nncore.Adam(), random_state=0)
    assert np.all(np.isfinite(losses))
    assert np.any(net.params != 0)  # it did train ...
    # ... but every hidden layer acts as a single unit: identical in exact arithmetic; in floating
    # point up to the rounding of the matrix kernel, whose summation order may differ between
    # columns handled by different register tiles (Eigen's AVX2 double kernel: ~1e-13 here).
    def same(a, b):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * max(np.abs(b).max(), 1.0))

    for t in range(len(net.coefs) - 1):
        W, b, W_next = net.coefs[t], net.intercepts[t], net.coefs[t + 1]
        same(W, np.repeat(W[:, :1], W.shape[1], axis=1))
        same(b, np.full_like(b, b[0]))
        same(W_next, np.repeat(W_next[:1], W_next.shape[0], axis=0))
    # and so it learns visibly worse than the same network from a random start
    random_start = nncore.Network(sizes, act, init="glorot_normal", random_state=0)
    random_losses = nncore.train(random_start, X, Y, epochs=40, learning_rate=0.01, batch_size=8,
                                 optimizer=nncore.Adam(), random_state=0)
    assert random_losses[-1] < 0.5 * losses[-1]


def test_full_batch_gradient_descent_is_one_step_per_epoch():
    sizes, X, Y, _ = make_problem("logistic", 1, n=15)
    net = nncore.Network(sizes, "tanh", "logistic", alpha=0.01, random_state=0)
    Ws, bs = ref.unpack(net.params, sizes)
    losses = nncore.train(net, X, Y, epochs=4, learning_rate=0.3, batch_size=None)
    expected = []
    for _ in range(4):
        value, dWs, dbs = ref.gradients(Ws, bs, X, Y, "tanh", "logistic", alpha=0.01)
        expected.append(value)
        Ws, bs = ref.sgd_step(Ws, bs, dWs, dbs, 0.3)
    np.testing.assert_allclose(losses, expected, rtol=1e-12)
    np.testing.assert_allclose(net.params, ref.pack(Ws, bs), rtol=1e-12, atol=1e-15)


def test_lbfgs_matches_scikit_learn_lbfgs():
    """The same objective, gradient, start and scipy call: the same answer."""
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = MLPRegressor(hidden_layer_sizes=(8,), activation="tanh", solver="lbfgs",
                          alpha=1e-3, max_iter=40, random_state=3).fit(X, y)
    net = nncore.Network([4, 8, 1], "tanh", alpha=1e-3, random_state=3)
    result = nncore.lbfgs(net, X, y, max_iter=40)
    assert result.n_iter == sk.n_iter_
    assert result.loss == pytest.approx(sk.loss_, rel=1e-8)
    for mine, theirs in zip(net.coefs + net.intercepts, sk.coefs_ + sk.intercepts_):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-8)


def test_lbfgs_respects_max_fun_and_sets_batchnorm_statistics():
    sizes, X, Y, _ = make_problem("squared_error", 1, n=30)
    net = nncore.Network(sizes, "relu", batch_norm=True, random_state=0)
    result = nncore.lbfgs(net, X, Y, max_iter=500, max_fun=7)
    assert result.n_fun <= 8 and not result.converged
    P0 = X @ net.coefs[0] + net.intercepts[0]
    np.testing.assert_allclose(net.running_means[0], P0.mean(axis=0), rtol=1e-10)


def test_sgd_beats_full_batch_gd_per_epoch_on_the_same_budget():
    """The lecture's computational point: an epoch of small minibatches makes far more progress
    than one full-batch step that costs the same."""
    sizes, X, Y, _ = make_problem("squared_error", 1, n=200)
    sgd = nncore.Network(sizes, "tanh", random_state=0)
    gd = sgd.copy()
    sgd_losses = nncore.train(sgd, X, Y, epochs=5, learning_rate=0.05, batch_size=10,
                              random_state=0)
    gd_losses = nncore.train(gd, X, Y, epochs=5, learning_rate=0.05, batch_size=None)
    assert sgd.loss(X, Y) < gd.loss(X, Y)
    assert sgd_losses[-1] < gd_losses[-1]
