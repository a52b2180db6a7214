"""The core against tests/reference.py for every activation × loss × depth × dtype."""

import itertools

import numpy as np
import pytest
from conftest import ACTIVATIONS, DEPTHS, DTYPES, LOSSES, RTOL, assert_close, make_problem

import nncore
import reference as ref

GRID = list(itertools.product(ACTIVATIONS, LOSSES, sorted(DEPTHS), DTYPES))
IDS = [f"{a}-{l}-depth{d}-{np.dtype(t).name}" for a, l, d, t in GRID]


def build(act, loss, depth, dtype, *, alpha=0.0, reduction="mean", seed=1):
    sizes, X, Y, w = make_problem(loss, depth)
    net = nncore.Network(sizes, act, loss, alpha=alpha, loss_reduction=reduction, dtype=dtype,
                         random_state=seed)
    # The reference sees exactly the values the core holds (float32-rounded where float32).
    X = X.astype(dtype)
    Y = Y.astype(dtype)
    w = w.astype(dtype)
    Ws, bs = ref.unpack(net.params, sizes)
    return net, sizes, X, Y, w, Ws, bs


@pytest.mark.parametrize("act,loss,depth,dtype", GRID, ids=IDS)
def test_forward_loss_and_gradients(act, loss, depth, dtype):
    net, sizes, X, Y, w, Ws, bs = build(act, loss, depth, dtype, alpha=0.3)
    rtol = RTOL[dtype]
    X64, Y64, w64 = (a.astype(np.float64) for a in (X, Y, w))

    scores = net.forward(X)
    assert scores.dtype == dtype and scores.shape == (X.shape[0], sizes[-1])
    assert_close(scores, ref.forward(Ws, bs, X64, act)[1][-1], rtol, "forward")

    for weights in (None, w):
        w_ref = None if weights is None else w64
        expected, dWs, dbs = ref.gradients(Ws, bs, X64, Y64, act, loss, alpha=0.3, w=w_ref)
        assert_close(net.loss(X, Y, weights), expected, rtol, "loss")
        value, grads = net.loss_and_grad(X, Y, weights)
        assert_close(value, expected, rtol, "loss from loss_and_grad")
        for t in range(len(Ws)):
            assert_close(net.coef_grads[t], dWs[t], rtol, f"dW_{t}")
            assert_close(net.intercept_grads[t], dbs[t], rtol, f"db_{t}")
        assert_close(grads, ref.pack(dWs, dbs), rtol, "whole gradient slab")


@pytest.mark.parametrize("act,loss,depth,dtype", GRID, ids=IDS)
def test_epoch_trajectory(act, loss, depth, dtype):
    """Several SGD steps (uneven last batch, weighted, penalised) follow the reference."""
    net, sizes, X, Y, w, Ws, bs = build(act, loss, depth, dtype, alpha=0.05)
    X64, Y64, w64 = (a.astype(np.float64) for a in (X, Y, w))
    rng = np.random.default_rng(7)
    lr = 0.05
    for epoch in range(3):
        order = rng.permutation(X.shape[0])
        got = net.train_epoch(X, Y, learning_rate=lr, batch_size=4, order=order, sample_weight=w)
        Ws, bs, expected = ref.train_epoch(Ws, bs, X64, Y64, act, loss, order, 4, lr, alpha=0.05,
                                           w=w64)
        assert_close(got, expected, RTOL[dtype], f"epoch {epoch} loss")
        assert_close(net.params, ref.pack(Ws, bs), RTOL[dtype], f"epoch {epoch} params")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_sequential_and_seeded_orders(dtype, reduction):
    """shuffle=False visits rows in stored order; shuffle=True visits the seeded permutation."""
    act, loss = "tanh", "squared_error"
    net, sizes, X, Y, w, Ws, bs = build(act, loss, 1, dtype, alpha=0.01, reduction=reduction)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    lr = 0.01

    net.train_epoch(X, Y, learning_rate=lr, batch_size=2, shuffle=False, sample_weight=w)
    Ws, bs, _ = ref.train_epoch(Ws, bs, X64, Y64, act, loss, np.arange(X.shape[0]), 2, lr,
                                alpha=0.01, w=w.astype(np.float64), reduction=reduction)
    assert_close(net.params, ref.pack(Ws, bs), RTOL[dtype], "shuffle=False")

    seed = 2024
    order = nncore._core.seeded_permutation(X.shape[0], nncore.network._seed_from(seed))
    assert sorted(order) == list(range(X.shape[0]))
    net.train_epoch(X, Y, learning_rate=lr, batch_size=2, shuffle=True, seed=seed)
    Ws, bs, _ = ref.train_epoch(Ws, bs, X64, Y64, act, loss, np.array(order), 2, lr, alpha=0.01,
                                reduction=reduction)
    assert_close(net.params, ref.pack(Ws, bs), RTOL[dtype], "shuffle=True")


@pytest.mark.parametrize("dtype", DTYPES)
def test_float32_and_float64_agree(dtype):
    sizes, X, Y, _ = make_problem("logistic", 3)
    nets = [nncore.Network(sizes, "gelu", "logistic", dtype=t, random_state=3) for t in DTYPES]
    nets[1].params[:] = nets[0].params  # the same (float32-rounded) starting point
    nets[0].params[:] = nets[1].params
    losses = [nncore.train(net, X, Y, epochs=5, learning_rate=0.1, batch_size=3, random_state=0)
              for net in nets]
    assert_close(losses[1], losses[0], 1e-4)
    assert_close(nets[1].params, nets[0].params, 1e-4)
