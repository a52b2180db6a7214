"""The object API: views into the slabs, initialisation, reproducibility, divergence."""

import numpy as np
import pytest
from conftest import make_problem

import nncore


def test_params_and_grads_are_views_not_copies():
    net = nncore.Network([3, 4, 2], "tanh", random_state=0)
    assert net.params.flags.writeable and net.grads.flags.writeable
    for W, b, dW, db in zip(net.coefs, net.intercepts, net.coef_grads, net.intercept_grads):
        assert np.shares_memory(W, net.params) and np.shares_memory(b, net.params)
        assert np.shares_memory(dW, net.grads) and np.shares_memory(db, net.grads)
    assert [W.shape for W in net.coefs] == [(3, 4), (4, 2)]
    assert [b.shape for b in net.intercepts] == [(4,), (2,)]
    assert net.params.size == net.n_params == 3 * 4 + 4 + 4 * 2 + 2
    # The property returns a view of the same buffer every time.
    assert np.shares_memory(net._core.params, net.params)

    X = np.ones((1, 3))
    net.params[:] = 0.0
    np.testing.assert_array_equal(net.forward(X), [[0.0, 0.0]])
    net.intercepts[1][:] = [1.5, -2.0]  # writing a view changes the network
    np.testing.assert_array_equal(net.forward(X), [[1.5, -2.0]])


def test_loss_and_grad_returns_the_gradient_buffer():
    sizes, X, Y, _ = make_problem("squared_error", 1)
    net = nncore.Network(sizes, "relu", random_state=0)
    _, grads = net.loss_and_grad(X, Y)
    assert np.shares_memory(grads, net.grads)
    before = net.params.copy()
    net.sgd_step(0.5)
    np.testing.assert_allclose(net.params, before - 0.5 * grads, rtol=1e-15)


def test_initial_weights_match_scikit_learn():
    """Glorot uniform drawn in scikit-learn's order gives scikit-learn's initial weights."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.utils import check_random_state

    for activation in ("relu", "logistic"):
        est = MLPClassifier(activation=activation)
        est._random_state = check_random_state(42)
        sizes = [7, 5, 3, 1]
        expected = [est._init_coef(a, b, np.float64) for a, b in zip(sizes[:-1], sizes[1:])]
        net = nncore.Network(sizes, activation, "logistic", random_state=42)
        for t, (W, b) in enumerate(expected):
            np.testing.assert_array_equal(net.coefs[t], W)
            np.testing.assert_array_equal(net.intercepts[t], b)


def test_same_seed_same_run_and_different_seed_different_run():
    sizes, X, Y, _ = make_problem("logistic", 1, n=40)

    def run(seed):
        net = nncore.Network(sizes, "relu", "logistic", random_state=0)
        losses = nncore.train(net, X, Y, epochs=3, batch_size=8, learning_rate=0.1,
                              random_state=seed)
        return losses, net.params.copy()

    (l1, p1), (l2, p2), (l3, p3) = run(1), run(1), run(2)
    assert l1 == l2
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, p3)


def test_training_steps_do_not_allocate_the_workspace():
    sizes, X, Y, _ = make_problem("squared_error", 1, n=50)
    net = nncore.Network(sizes, "relu", random_state=0)
    net.train_epoch(X, Y, batch_size=8)
    allocations = net.workspace_allocations
    assert allocations == 1 and net._core.capacity == 8
    nncore.train(net, X, Y, epochs=5, batch_size=8, random_state=0)
    net.train_epoch(X, Y, batch_size=3)  # smaller batches reuse the same workspace
    assert net.workspace_allocations == allocations


def test_predict_applies_the_inverse_link():
    sizes, X, _, _ = make_problem("softmax", 1)
    for loss, link in [
        ("squared_error", lambda f: f),
        ("logistic", lambda f: 1 / (1 + np.exp(-f))),
        ("softmax", lambda f: np.exp(f) / np.exp(f).sum(axis=1, keepdims=True)),
        ("poisson", np.exp),
    ]:
        net = nncore.Network(sizes, "tanh", loss, random_state=0)
        np.testing.assert_allclose(net.predict(X), link(net.forward(X)), rtol=1e-12)


def test_softmax_accepts_integer_labels():
    sizes, X, Y, _ = make_problem("softmax", 1)
    net = nncore.Network(sizes, "tanh", "softmax", random_state=0)
    assert net.loss(X, Y.argmax(axis=1)) == net.loss(X, Y)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_divergence_stops_and_keeps_last_finite_state(dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)) * 100
    y = rng.normal(size=64) * 100
    net = nncore.Network([3, 8, 1], "relu", dtype=dtype, random_state=0)
    with pytest.raises(nncore.DivergenceError, match="learning_rate=1e\\+06"):
        for _ in range(20):
            net.train_epoch(X, y, learning_rate=1e6, batch_size=4, seed=0)
    assert np.isfinite(net.params).all()
    assert np.isfinite(net.forward(X)).all()
    # The network stays usable: a sensible step size carries on from the last finite state.
    net.initialize(0)
    assert np.isfinite(net.train_epoch(X / 100, y / 100, learning_rate=1e-3))


def test_large_n_evaluation_is_chunked_and_consistent():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 5))
    net = nncore.Network([5, 7, 1], "gelu", random_state=0)
    full = net.forward(X)
    parts = np.vstack([net.forward(X[i : i + 999]) for i in range(0, 3000, 999)])
    np.testing.assert_allclose(full, parts, rtol=1e-13)


def test_non_contiguous_and_read_only_inputs_work():
    sizes, X, Y, _ = make_problem("squared_error", 1)
    net = nncore.Network(sizes, "relu", random_state=0)
    expected = net.loss(X, Y)
    Xf = np.asfortranarray(X)
    Yro = Y.copy()
    Yro.flags.writeable = False
    assert net.loss(Xf, Yro) == expected
    wide = np.hstack([X, X])[:, ::2]  # strided view
    net2 = nncore.Network([wide.shape[1], 5, 2], "relu", random_state=0)
    assert np.isfinite(net2.loss(wide, Y))


def test_repr_and_build_info():
    net = nncore.Network([2, 3, 1], "gelu", "poisson", alpha=0.5, dtype="float32")
    assert "gelu" in repr(net) and "poisson" in repr(net) and "float32" in repr(net)
    info = nncore.build_info()
    assert info["eigen"].startswith("3.4")
    assert info["float_kernel"] in ("nncore-avx512", "nncore-avx2", "eigen")
    assert info["double_kernel"] == info["float_kernel"]


def test_gil_is_released_during_an_epoch():
    """A Python thread keeps running while one long epoch runs in C++."""
    import threading

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 64))
    y = rng.normal(size=4000)
    net = nncore.Network([64, 256, 256, 1], "relu", random_state=0)
    net._core.reserve(4000)
    ticks = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1

    thread = threading.Thread(target=count)
    thread.start()
    try:
        before = ticks[0]
        net.train_epoch(X, y, batch_size=4000, learning_rate=1e-4)  # one call into C++
        net.train_epoch(X, y, batch_size=4000, learning_rate=1e-4)
        during = ticks[0] - before
    finally:
        stop.set()
        thread.join()
    assert during > 1000


def test_pickle_and_copy_round_trip_and_keep_training():
    import pickle

    sizes, X, Y, _ = make_problem("softmax", 1)
    net = nncore.Network(sizes, "gelu", "softmax", alpha=0.1, loss_reduction="sum",
                         dtype="float32", random_state=0)
    net.train_epoch(X, Y, batch_size=4, learning_rate=0.01, seed=1)
    for clone in (pickle.loads(pickle.dumps(net)), net.copy()):
        assert repr(clone) == repr(net)
        np.testing.assert_array_equal(clone.params, net.params)
        assert not np.shares_memory(clone.params, net.params)
        a = clone.train_epoch(X, Y, batch_size=4, learning_rate=0.01, seed=2)
        b = net.copy().train_epoch(X, Y, batch_size=4, learning_rate=0.01, seed=2)
        assert a == b


def test_zero_weight_batches_take_no_step():
    """A minibatch whose sample weights are all zero carries no information: no update."""
    sizes, X, Y, _ = make_problem("squared_error", 1, n=8)
    w = np.array([0, 0, 0, 0, 1, 2, 1, 1], dtype=float)
    a = nncore.Network(sizes, "tanh", random_state=0)
    b = a.copy()
    a.train_epoch(X, Y, batch_size=4, learning_rate=0.1, shuffle=False, sample_weight=w)
    b.train_epoch(X[4:], Y[4:], batch_size=4, learning_rate=0.1, shuffle=False,
                  sample_weight=w[4:])
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_gemm_path_matches_plain_eigen_products(dtype, batch_norm):
    """The preallocated-buffer GEMM path (used for every product large enough for Eigen's GEMM)
    against the plain Eigen expressions it replaces: forward, gradients, a whole epoch."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 40))
    y = rng.normal(size=(300, 3))
    fast = nncore.Network([40, 64, 48, 3], "tanh", dtype=dtype, batch_norm=batch_norm,
                          random_state=0)
    plain = fast.copy()
    plain._core.use_reference_products(True)
    rtol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(fast.forward(X), plain.forward(X), rtol=rtol, atol=rtol)
    _, g_fast = fast.loss_and_grad(X, y)
    _, g_plain = plain.loss_and_grad(X, y)
    np.testing.assert_allclose(g_fast, g_plain, rtol=rtol, atol=rtol * np.abs(g_plain).max())
    for net in (fast, plain):
        net.train_epoch(X, y, batch_size=50, learning_rate=0.01, seed=3)
    np.testing.assert_allclose(fast.params, plain.params, rtol=rtol * 10, atol=rtol * 10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("sizes, batch", [
    ([300, 530, 13, 2], 61),   # depth over one 256-step slice, columns over one 256/512 block
    ([37, 45, 33, 1], 25),     # every dimension off the 6/12-row, 8-32-column, 16-step grids
    ([17, 12, 32, 3], 12),     # exactly one tile
    ([5, 1, 7, 2], 7),         # a one-unit layer
    ([1, 9, 1, 1], 5),         # depth 1, a one-column product
])
def test_own_kernel_matches_plain_eigen_products_on_awkward_shapes(sizes, batch, n_threads,
                                                                   dtype):
    """nncore's own GEMM kernel (gemm.hpp: packed panels, transposed packing, edge tiles, depth
    slices, column blocks, a row split over threads) against Eigen's plain products, on shapes
    that hit every edge case, in both precisions."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4 * batch + 3, sizes[0]))
    y = rng.normal(size=(len(X), sizes[-1]))
    fast = nncore.Network(sizes, "relu", dtype=dtype, random_state=0, n_threads=n_threads)
    plain = fast.copy()
    plain._core.use_reference_products(True)
    tol = 1e-5 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(fast.forward(X), plain.forward(X), rtol=tol, atol=tol)
    _, g_fast = fast.loss_and_grad(X[:batch], y[:batch])
    _, g_plain = plain.loss_and_grad(X[:batch], y[:batch])
    np.testing.assert_allclose(g_fast, g_plain, rtol=tol, atol=tol * np.abs(g_plain).max())
    for net in (fast, plain):
        net.train_epoch(X, y, batch_size=batch, learning_rate=0.01, seed=3)
    np.testing.assert_allclose(fast.params, plain.params, rtol=10 * tol, atol=10 * tol)


def test_assigning_a_view_attribute_writes_through_or_raises():
    """`net.params = θ` and `net.coefs = [...]` used to replace the attribute with the plain
    array while forward kept using the old weights; now they write into the network."""
    net = nncore.Network([3, 4, 2], random_state=0)
    X = np.ones((2, 3))
    net.params = np.zeros(net.n_params)
    np.testing.assert_array_equal(net.forward(X), 0.0)
    net.coefs = [np.ones((3, 4)), np.ones((4, 2))]
    np.testing.assert_array_equal(net.forward(X), 12.0)
    net.coefs[1] = np.zeros((4, 2))  # item assignment copies into that layer's view too
    np.testing.assert_array_equal(net.forward(X), 0.0)
    net.intercepts = [np.ones(4), np.full(2, 3.0)]
    np.testing.assert_array_equal(net.forward(X), 3.0)
    assert np.shares_memory(net.params, net._core.params)
    with pytest.raises(ValueError, match=r"params must have shape \(26,\)"):
        net.params = np.zeros(3)
    with pytest.raises(ValueError, match="coefs needs 2 arrays"):
        net.coefs = [np.ones((3, 4))]
    with pytest.raises(ValueError, match=r"shape \(4, 2\)"):
        net.coefs[1] = np.ones((2, 4))
    np.testing.assert_array_equal(net.forward(X), 3.0)  # refused assignments wrote nothing


def test_submodules_are_attributes_of_the_package():
    """`nncore.onnx` (and curvature, landscape, plot, lab, cluster) without an import of their
    own: an AttributeError before."""
    import subprocess
    import sys

    code = ("import nncore; print(nncore.onnx.__name__, nncore.curvature.__name__, "
            "nncore.landscape.__name__, nncore.lab.__name__, nncore.cluster.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["nncore.onnx", "nncore.curvature", "nncore.landscape",
                                  "nncore.lab", "nncore.cluster"]
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        nncore.nonexistent


@pytest.mark.parametrize("sizes", [[3, 1], [3, 4, 2], [5, 8, 8, 3], [2, 7, 1]])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_the_parameter_count_before_building_is_the_networks(sizes, batch_norm):
    """The memory check counts parameters before a network exists; the count is the core's own
    layout (batch norm on hidden layers only), not a formula kept beside it."""
    from nncore import _core

    net = nncore.Network(sizes, batch_norm=batch_norm)
    assert _core.parameter_count(sizes, batch_norm) == net.n_params == net.params.size
    kinds = [(kind, layer, rows * cols) for kind, layer, _, rows, cols in net._core.layout()]
    assert sum(size for *_, size in kinds) == net.n_params
    assert all(layer < len(sizes) - 2 for kind, layer, _ in kinds if kind.startswith("bn_"))


def test_the_memory_check_names_the_core_count(monkeypatch):
    import os

    monkeypatch.setattr(os, "sysconf", lambda name: 1024 if name == "SC_PAGE_SIZE" else 1)
    with pytest.raises(MemoryError, match=r"make 7,049 parameters"):
        nncore.Network([10, 320, 9], batch_norm=True)  # no batch norm on the output layer


def test_network_document_round_trip_pickle_and_old_pickles():
    import pickle

    X = np.random.default_rng(0).normal(size=(40, 3))
    net = nncore.Network([3, 6, 5, 2], "tanh", loss="softmax", batch_norm=True, random_state=1,
                         dropout=0.25, n_threads=1)
    net.set_batchnorm_statistics(X)
    net.loss_clip_epsilon = 1e-7
    doc, arrays = net.to_document()
    assert sorted(arrays) == ["batchnorm_state", "params"]
    again = nncore.Network.from_document(doc, arrays)
    for other in (again, pickle.loads(pickle.dumps(net)), net.copy()):
        assert other.to_document()[0] == doc
        np.testing.assert_array_equal(other.predict(X), net.predict(X))
    assert pickle.loads(pickle.dumps(net)).n_threads_requested == 1
    # A pickle's state as written before to_document: one flat dict.
    flat = {**doc, **arrays, "n_threads": None}
    old = nncore.Network.__new__(nncore.Network)
    old.__setstate__(flat)
    assert old.to_document()[0] == doc
