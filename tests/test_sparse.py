"""Sparse input stays sparse: CSR/CSC rows train and predict without being made dense — the
first layer's forward product and weight gradient run on the stored values in C++ — with the
results of the same rows given dense (and so scikit-learn's), in both dtypes."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

import nncore


def sparse_data(n=240, d=60, density=0.08, seed=0, fmt="csr"):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, random_state=seed, format=fmt,
                  data_rvs=lambda k: rng.normal(size=k))
    score = np.asarray(X @ rng.normal(size=d)).ravel()
    return X, score


def peak_bytes(function) -> int:
    """The most memory NumPy and Python held at once while function() ran, above the start."""
    import tracemalloc

    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def fit(est, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kwargs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("params", [
    dict(solver="adam"),
    dict(solver="sgd", batch_size=16, shuffle=True),
    dict(solver="sgd", shuffle=False, alpha=0.01),
    dict(solver="lbfgs"),
    dict(solver="adam", early_stopping=True),
    dict(solver="adam", batch_norm=True),
    dict(solver="adam", dropout=0.2),
])
def test_sparse_fits_as_the_same_rows_dense(dtype, params):
    X, score = sparse_data()
    y = (score > np.median(score)).astype(int)
    Xs, Xd = X.astype(dtype), X.toarray().astype(dtype)
    make = lambda: nncore.MLPClassifier(hidden_layer_sizes=(12, 7), max_iter=15,  # noqa: E731
                                        random_state=0, **params)
    a, b = fit(make(), Xs, y), fit(make(), Xd, y)
    # Batch norm divides by the batch's spread, which magnifies a last-bit difference between
    # the sparse and the dense product (the same sums, in another order).
    # Builds whose GEMM sums in another order (AVX2, portable) differ in the last bits too. In
    # float32, batch norm under Adam turns those into differences of ~1e-3 over 15 epochs (a
    # portable build): the same training, not the same bits.
    tight = (dict(rtol=2e-2, atol=2e-3) if dtype == np.float32 and params.get("batch_norm") else
             dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else
             dict(rtol=1e-8, atol=1e-10) if params.get("batch_norm") else
             dict(rtol=1e-10, atol=1e-12))
    np.testing.assert_allclose(a.loss_curve_ if params["solver"] != "lbfgs" else [a.loss_],
                               b.loss_curve_ if params["solver"] != "lbfgs" else [b.loss_],
                               **tight)
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(ca, cb, **tight)
    np.testing.assert_allclose(a.predict_proba(Xs), b.predict_proba(Xd), **tight)
    assert a.predict_proba(Xs).dtype == b.predict_proba(Xd).dtype


def test_regressor_csc_sample_weight_and_partial_fit():
    X, score = sparse_data(fmt="csc")
    w = np.random.default_rng(1).uniform(0.2, 2.0, X.shape[0])
    a = fit(nncore.MLPRegressor(hidden_layer_sizes=(10,), max_iter=10, random_state=0),
            X, score, sample_weight=w)
    b = fit(nncore.MLPRegressor(hidden_layer_sizes=(10,), max_iter=10, random_state=0),
            X.toarray(), score, sample_weight=w)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)
    a.partial_fit(X.tocsr()[:100], score[:100])
    b.partial_fit(X.toarray()[:100], score[:100])
    np.testing.assert_allclose(a.predict(X), b.predict(X.toarray()), rtol=1e-10, atol=1e-12)


def test_fit_and_predict_never_make_the_rows_dense():
    """400 × 20,000 rows with 0.1% stored: 64 MB dense, 0.1 MB sparse. Training (every solver,
    early stopping's split) and prediction stay far below the dense size (the first layer's
    weights, gradients, Adam's moments and L-BFGS's history are a few MB)."""
    n, d = 400, 20_000
    X = sp.random(n, d, density=0.001, random_state=0, format="csr")
    y = (np.arange(n) % 2 == 0).astype(int)
    dense_bytes = n * d * 8
    for params in (dict(solver="adam", early_stopping=True), dict(solver="lbfgs"),
                   dict(solver="sgd", batch_size=32)):
        est = nncore.MLPClassifier(hidden_layer_sizes=(2,), max_iter=3, random_state=0, **params)
        assert peak_bytes(lambda: fit(est, X, y)) < dense_bytes / 4, params
        assert peak_bytes(lambda: (est.predict_proba(X), est.score(X.tocsc(), y),
                                   est.mean_loss(X, y))) < dense_bytes / 4


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_network_api_on_csr_matches_dense(dtype):
    X, score = sparse_data(n=90, d=40)
    X = X.astype(dtype)
    net = nncore.Network([40, 9, 1], "tanh", "squared_error", dtype=dtype, alpha=0.1,
                         random_state=0)
    np.testing.assert_allclose(net.forward(X), net.forward(X.toarray()), rtol=1e-6)
    loss_s, grad_s = net.loss_and_grad(X, score)
    grad_s = grad_s.copy()
    loss_d, grad_d = net.loss_and_grad(X.toarray(), score)
    np.testing.assert_allclose(loss_s, loss_d, rtol=1e-6)
    np.testing.assert_allclose(grad_s, grad_d, rtol=1e-5, atol=1e-7)
    assert net.loss(X, score) == pytest.approx(net.loss(X.toarray(), score), rel=1e-6)


def test_sparse_gradient_matches_finite_differences():
    X, score = sparse_data(n=30, d=25, density=0.2)
    net = nncore.Network([25, 6, 1], "tanh", "squared_error", dtype=np.float64, alpha=0.05,
                         random_state=3)
    net.loss_and_grad(X, score)
    dW = net.coef_grads[0].copy()  # the first layer's: the sparse path's gradient
    theta = net.params.copy()
    W = net.coefs[0]
    rng = np.random.default_rng(0)
    for i, j in zip(rng.integers(0, 25, 12), rng.integers(0, 6, 12)):
        h = 1e-6
        net.params[:] = theta
        W[i, j] += h
        up = net.loss(X, score)
        W[i, j] -= 2 * h
        down = net.loss(X, score)
        assert (up - down) / (2 * h) == pytest.approx(dW[i, j], rel=1e-6, abs=1e-9)
    net.params[:] = theta


def test_bad_sparse_input_is_a_clear_error():
    X, score = sparse_data(n=20, d=10, density=0.3)
    X = X.tocsr()
    X.data[0] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        nncore.Network([10, 3, 1], "relu", "squared_error").loss(X, score)
    core = nncore.Network([10, 3, 1], "relu", "squared_error")._core
    with pytest.raises(ValueError, match="column index 10 is outside"):
        nncore._core.CsrMatrix64(np.ones(1), np.array([10]), np.array([0, 1]), 10)
    with pytest.raises(ValueError, match="indptr decreases"):
        nncore._core.CsrMatrix64(np.ones(2), np.array([0, 1]), np.array([0, 2, 1, 2]), 10)
    with pytest.raises(TypeError):
        core.forward(sp.csr_matrix(np.ones((2, 10))))  # the core takes its own view only


def test_curvature_on_sparse_input():
    X, score = sparse_data(n=80, d=30)
    y = (score > 0).astype(int)
    est = fit(nncore.MLPClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=0), X, y)
    from nncore import curvature

    sparse_top = curvature.top_eigenvalues(est, X, y, k=1, random_state=0)
    dense_top = curvature.top_eigenvalues(est, X.toarray(), y, k=1, random_state=0)
    np.testing.assert_allclose(sparse_top.eigenvalues, dense_top.eigenvalues, rtol=1e-10)
