"""Batch normalisation against the reference, which writes PyTorch's documented BatchNorm1d
formulas (ε = 1e-5, momentum 0.1, biased variance to normalise, unbiased in the running average)."""

import itertools

import numpy as np
import pytest
from conftest import DTYPES, RTOL, assert_close, make_problem

import nncore
import reference as ref


def bn_network(act="tanh", loss="squared_error", depth=3, dtype=np.float64, n=9, seed=0):
    sizes, X, Y, w = make_problem(loss, depth, n=n, seed=seed)
    net = nncore.Network(sizes, act, loss, alpha=0.1, dtype=dtype, batch_norm=True,
                         random_state=seed)
    rng = np.random.default_rng(seed + 1)
    for gamma, beta in zip(net.bn_gammas, net.bn_betas):  # away from the trivial γ=1, β=0
        gamma[:] = rng.uniform(0.5, 1.5, gamma.size)
        beta[:] = rng.normal(0, 0.3, beta.size)
    return net, X.astype(dtype), Y.astype(dtype), w.astype(dtype)


def reference_params(net):
    f64 = lambda views: [v.astype(np.float64) for v in views]  # noqa: E731
    return (f64(net.coefs), f64(net.intercepts),
            (f64(net.bn_gammas), f64(net.bn_betas)),
            (f64(net.running_means), f64(net.running_vars)))


def test_layout_and_initial_state():
    net = nncore.Network([3, 5, 4, 2], batch_norm=True, random_state=0)
    assert [g.shape for g in net.bn_gammas] == [(5,), (4,)]  # hidden layers only
    assert net.n_params == (3 * 5 + 5 + 2 * 5) + (5 * 4 + 4 + 2 * 4) + (4 * 2 + 2)
    for gamma, beta, mean, var in zip(net.bn_gammas, net.bn_betas, net.running_means,
                                      net.running_vars):
        assert np.all(gamma == 1) and np.all(beta == 0)
        assert np.all(mean == 0) and np.all(var == 1)
        assert np.shares_memory(gamma, net.params)


def test_hand_computed_values():
    """One feature, batch [1, 2, 3]: mean 2, biased variance 2/3."""
    net = nncore.Network([1, 1, 1], "identity", batch_norm=True)
    net.coefs[0][:] = 1.0
    net.intercepts[0][:] = 0.0
    net.bn_gammas[0][:] = 2.0
    net.bn_betas[0][:] = 0.5
    net.coefs[1][:] = 1.0
    net.intercepts[1][:] = 0.0
    X = np.array([[1.0], [2.0], [3.0]])
    expected = 2.0 * (X - 2.0) / np.sqrt(2.0 / 3.0 + 1e-5) + 0.5
    np.testing.assert_allclose(net.forward(X, training=True), expected, rtol=1e-14)
    net.loss_and_grad(X, np.zeros(3), update_running_stats=True)
    np.testing.assert_allclose(net.running_means[0], [0.1 * 2.0], rtol=1e-14)
    np.testing.assert_allclose(net.running_vars[0], [0.9 + 0.1 * 1.0], rtol=1e-14)  # unbiased 1
    mean, var = net.running_means[0][0], net.running_vars[0][0]
    np.testing.assert_allclose(net.forward(X), 2.0 * (X - mean) / np.sqrt(var + 1e-5) + 0.5,
                               rtol=1e-14)


@pytest.mark.parametrize("act,depth,dtype",
                         list(itertools.product(["relu", "tanh", "gelu", "identity"], [1, 3],
                                                DTYPES)))
def test_forward_and_gradients_match_reference(act, depth, dtype):
    net, X, Y, w = bn_network(act, "logistic", depth, dtype)
    Ws, bs, bn, running = reference_params(net)
    X64, Y64, w64 = X.astype(float), Y.astype(float), w.astype(float)
    rtol = RTOL[dtype]
    assert_close(net.forward(X, training=True), ref.forward(Ws, bs, X64, act, bn)[1][-1], rtol)
    assert_close(net.forward(X), ref.forward(Ws, bs, X64, act, bn, running)[1][-1], rtol)

    expected, dWs, dbs, dgammas, dbetas = ref.gradients(Ws, bs, X64, Y64, act, "logistic",
                                                        alpha=0.1, w=w64, bn=bn)
    value, grads = net.loss_and_grad(X, Y, w)
    assert_close(value, expected, rtol, "objective")
    assert_close(net.loss(X, Y, w), expected, rtol, "loss(training=True)")
    # The whole slab at once, so entries that vanish analytically (the dense bias before batch
    # norm, and β before a second batch norm with identity activations) are judged against the
    # gradient's scale, not against their own rounding noise.
    by_kind = {"weight": dWs, "bias": dbs, "bn_gamma": dgammas, "bn_beta": dbetas}
    expected_slab = np.concatenate([np.ravel(by_kind[kind][layer])
                                    for kind, layer, *_ in net._core.layout()])
    assert_close(grads, expected_slab, rtol, "gradient slab")
    for t in range(len(Ws) - 1):  # the bias before batch norm cancels out
        assert np.abs(net.intercept_grads[t]).max() < 1e3 * np.finfo(dtype).eps * np.abs(grads).max()


@pytest.mark.parametrize("act", ["relu", "tanh", "softplus"])
def test_finite_differences_through_batchnorm(act):
    net, X, Y, w = bn_network(act, "softmax", 3, np.float64, n=7, seed=2)
    _, grads = net.loss_and_grad(X, Y, w)
    analytic = grads.copy()
    numeric = np.empty_like(analytic)
    h = 1e-6
    for k in range(net.n_params):
        saved = net.params[k]
        net.params[k] = saved + h
        up = net.loss(X, Y, w)
        net.params[k] = saved - h
        down = net.loss(X, Y, w)
        net.params[k] = saved
        numeric[k] = (up - down) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_epochs_and_running_statistics_match_reference(dtype):
    """Minibatch SGD with batch norm: parameters and running averages after two epochs."""
    act, loss = "relu", "squared_error"
    net, X, Y, w = bn_network(act, loss, 1, dtype, n=13)
    Ws, bs, (gammas, betas), (means, vars_) = reference_params(net)
    X64, Y64, w64 = X.astype(float), Y.astype(float), w.astype(float)
    rng = np.random.default_rng(5)
    lr = 0.05
    for epoch in range(2):
        order = rng.permutation(13)
        net.train_epoch(X, Y, learning_rate=lr, batch_size=5, order=order, sample_weight=w)
        for start in range(0, 13, 5):  # batches of 5, 5, 3
            idx = order[start : start + 5]
            P0 = X64[idx] @ Ws[0] + bs[0]
            means[0], vars_[0] = ref.batchnorm_running_update(means[0], vars_[0], P0)
            _, dWs, dbs, dgs, dbts = ref.gradients(Ws, bs, X64[idx], Y64[idx], act, loss,
                                                   alpha=0.1, w=w64[idx], bn=(gammas, betas))
            Ws = [W - lr * d for W, d in zip(Ws, dWs)]
            bs = [b - lr * d for b, d in zip(bs, dbs)]
            gammas = [g - lr * d for g, d in zip(gammas, dgs)]
            betas = [b - lr * d for b, d in zip(betas, dbts)]
        rtol = RTOL[dtype]
        for mine, theirs in [(net.coefs, Ws), (net.intercepts, bs), (net.bn_gammas, gammas),
                             (net.bn_betas, betas), (net.running_means, means),
                             (net.running_vars, vars_)]:
            for a, b in zip(mine, theirs):
                assert_close(a, b, rtol, f"epoch {epoch}")


def test_batch_of_one_in_training_mode_is_a_clear_error():
    net, X, Y, _ = bn_network()
    before = net.params.copy()
    with pytest.raises(ValueError, match="at least 2 rows per batch, got 1"):
        net.loss_and_grad(X[:1], Y[:1])
    with pytest.raises(ValueError, match="leaves a minibatch of 1 row"):
        net.train_epoch(X, Y, batch_size=4)  # 9 rows: 4 + 4 + 1
    with pytest.raises(ValueError, match="leaves a minibatch of 1 row"):
        net.train_epoch(X, Y, batch_size=1)
    np.testing.assert_array_equal(net.params, before)
    assert net.forward(X[:1]).shape == (1, 2)  # evaluation mode takes a single row


def test_set_batchnorm_statistics_uses_the_whole_set():
    net, X, _, _ = bn_network(n=40)
    net.set_batchnorm_statistics(X)
    P0 = X @ net.coefs[0] + net.intercepts[0]
    np.testing.assert_allclose(net.running_means[0], P0.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(net.running_vars[0], P0.var(axis=0, ddof=1), rtol=1e-12)
    # With population statistics, evaluation mode on the same set equals training mode
    # up to the unbiased/biased variance factor n/(n-1).
    assert np.allclose(net.forward(X), net.forward(X, training=True), rtol=0.05, atol=0.05)


def test_batchnorm_network_pickles_with_running_statistics():
    import pickle

    net, X, Y, _ = bn_network()
    net.train_epoch(X, Y, batch_size=3, learning_rate=0.1, seed=0)
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(clone.forward(X), net.forward(X))
    np.testing.assert_array_equal(clone.running_vars[0], net.running_vars[0])
