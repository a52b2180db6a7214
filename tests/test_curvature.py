"""nncore.curvature and nncore.landscape: exact H·v against finite differences of the core's
gradients and against the full Hessian, eigenvalues against numpy's eigh, the trace within its
standard error, the convex case against its closed form, ε-sharpness in its box, slices through
J(θ), and measuring that changes nothing.

Tolerances reached (relative to the largest entry, over every activation × loss × batch norm):
H·v against central differences of the gradient (h = 1e-5, float64) at most 4e-8, median 1e-9
(the difference's own O(h²) and rounding), asserted at 1e-6; float32 against float64 at the same
parameters at most 1.5e-5, asserted at 1e-4; the full Hessian's asymmetry at most 8e-16,
asserted at 1e-12."""

import itertools
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris

import nncore
from nncore import curvature, landscape

RNG = np.random.default_rng(0)


def problem(activation, loss, batch_norm, *, dtype=np.float64, n=7, seed=0, alpha=0.3):
    rng = np.random.default_rng(seed)
    d, K = 3, 3 if loss == "softmax" else 2
    X = rng.normal(size=(n, d))
    if loss == "squared_error":
        Y = rng.normal(size=(n, K))
    elif loss == "logistic":
        Y = (rng.random((n, K)) > 0.5).astype(float)
    elif loss == "softmax":
        Y = np.eye(K)[rng.integers(0, K, n)]
    else:
        Y = rng.integers(0, 5, (n, K)).astype(float)
    net = nncore.Network([d, 4, 3, K], activation, loss, alpha=alpha, batch_norm=batch_norm,
                         dtype=dtype, random_state=seed)
    net.params[:] += (0.1 * rng.normal(size=net.n_params)).astype(dtype)
    return net, X, Y, rng.random(n) + 0.5


def central_difference_hvp(net, X, Y, w, v, h=1e-5):
    start = net.params.copy()
    try:
        net.params[:] = start + h * v
        plus = net.loss_and_grad(X, Y, w)[1].copy()
        net.params[:] = start - h * v
        minus = net.loss_and_grad(X, Y, w)[1].copy()
    finally:
        net.params[:] = start
    return (plus - minus) / (2 * h)


CASES = list(itertools.product(nncore.ACTIVATIONS, nncore.LOSSES, [False, True]))


@pytest.mark.parametrize("activation,loss,batch_norm", CASES)
def test_hvp_matches_central_differences_of_the_gradient(activation, loss, batch_norm):
    net, X, Y, w = problem(activation, loss, batch_norm)
    v = RNG.normal(size=net.n_params)
    hv = curvature.hvp(net, X, Y, v, sample_weight=w)
    fd = central_difference_hvp(net, X, Y, w, v)
    np.testing.assert_allclose(hv, fd, rtol=0, atol=1e-6 * max(1.0, np.abs(fd).max()))


@pytest.mark.parametrize("activation,loss,batch_norm",
                         [c for c in CASES if c[0] in ("relu", "gelu", "logistic")])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_full_hessian_is_symmetric_and_its_columns_are_the_products(activation, loss,
                                                                     batch_norm, reduction):
    net, X, Y, w = problem(activation, loss, batch_norm, seed=3)
    net.loss_reduction = reduction
    H = curvature.hessian(net, X, Y, sample_weight=w)
    scale = max(1.0, np.abs(H).max())
    np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-12 * scale)
    v = RNG.normal(size=net.n_params)
    np.testing.assert_allclose(H @ v, curvature.hvp(net, X, Y, v, sample_weight=w), rtol=0,
                               atol=1e-12 * scale * np.abs(v).sum())
    fd = central_difference_hvp(net, X, Y, w, v)
    np.testing.assert_allclose(H @ v, fd, rtol=0, atol=1e-6 * max(1.0, np.abs(fd).max()))


def test_batch_norm_bias_gives_exact_zero_curvature():
    """A bias feeding a batch-normalised layer cancels in the normalisation: its Hessian rows
    are exactly zero."""
    net, X, Y, w = problem("tanh", "squared_error", True, n=9)
    H = curvature.hessian(net, X, Y, sample_weight=w)
    hidden_biases = [(o, c) for kind, layer, o, _, c in net.layout()
                     if kind == "bias" and layer < len(net.layer_sizes) - 2]
    for offset, width in hidden_biases:
        assert np.abs(H[offset:offset + width]).max() < 1e-12


@pytest.mark.parametrize("activation,loss,batch_norm", CASES)
def test_float32_products_agree_with_float64(activation, loss, batch_norm):
    net64, X, Y, w = problem(activation, loss, batch_norm, seed=5)
    net32 = nncore.Network(net64.layer_sizes, activation, loss, alpha=0.3, dtype="float32",
                           batch_norm=batch_norm)
    net32.params[:] = net64.params
    net64.params[:] = net32.params  # the same float32-rounded point
    v = RNG.normal(size=net64.n_params).astype(np.float32).astype(np.float64)
    hv64 = curvature.hvp(net64, X, Y, v, sample_weight=w)
    hv32 = curvature.hvp(net32, X, Y, v, sample_weight=w)
    np.testing.assert_allclose(hv32, hv64, rtol=0, atol=1e-4 * max(1.0, np.abs(hv64).max()))


@pytest.mark.parametrize("loss", ["squared_error", "logistic", "poisson"])
def test_convex_case_matches_its_closed_form(loss):
    """Depth 0 is a GLM: H = X̃ᵀ D X̃ / Σw + (α/Σw) on the weights, X̃ = [X, 1], D the weighted
    second derivative of the loss (1/K for squared error; σ(1−σ); e^f)."""
    rng = np.random.default_rng(2)
    n, d = 30, 4
    X = rng.normal(size=(n, d))
    y = {"squared_error": rng.normal(size=n), "logistic": (rng.random(n) > 0.5) * 1.0,
         "poisson": rng.integers(0, 4, n) * 1.0}[loss]
    w = rng.random(n) + 0.5
    net = nncore.Network([d, 1], "identity", loss, alpha=0.7, random_state=0)
    f = net.forward(X)[:, 0]
    curv = {"squared_error": np.ones(n), "logistic": (s := 1 / (1 + np.exp(-f))) * (1 - s),
            "poisson": np.exp(f)}[loss]
    Xt = np.hstack([X, np.ones((n, 1))])
    expected = Xt.T @ (Xt * (w * curv)[:, None]) / w.sum()
    expected[:d, :d] += 0.7 / w.sum() * np.eye(d)
    H = curvature.hessian(net, X, y, sample_weight=w)
    np.testing.assert_allclose(H, expected, rtol=1e-12, atol=1e-14)


def fitted_classifier(**kwargs):
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = nncore.MLPClassifier((6,), activation="tanh", max_iter=300, random_state=0,
                                   **kwargs).fit(X, y)
    return clf, X, y


@pytest.mark.parametrize("which", ["LM", "LA", "SA"])
def test_top_eigenvalues_match_eigh_of_the_full_hessian(which):
    clf, X, y = fitted_classifier()
    H = curvature.hessian(clf, X, y)
    eig = np.linalg.eigh(H)[0]
    expected = {"LM": eig[np.argsort(-np.abs(eig))], "LA": eig[::-1], "SA": eig}[which][:3]
    result = curvature.top_eigenvalues(clf, X, y, 3, which=which, random_state=0)
    assert result.converged and result.n_iter <= H.shape[0]
    np.testing.assert_allclose(result.eigenvalues, expected, rtol=1e-6, atol=1e-9)
    for value, vector in zip(result.eigenvalues, result.eigenvectors.T):
        np.testing.assert_allclose(H @ vector, value * vector, atol=1e-5 * max(1, abs(value)))
    if which == "SA":
        assert result.eigenvalues[0] < 0  # a trained MLP is not convex: negative curvature


def test_top_eigenvalue_of_an_exhausted_krylov_space_restarts():
    """A depth-0 squared-error network has a Hessian of rank ≤ d+1 with many equal
    eigenvalues: Lanczos runs out of Krylov space and must restart to find k of them."""
    X = np.repeat(np.eye(3), 4, axis=0)
    net = nncore.Network([3, 2], "identity", "squared_error", random_state=0)
    y = np.zeros((12, 2))
    H = curvature.hessian(net, X, y)
    result = curvature.top_eigenvalues(net, X, y, 4, which="LA", random_state=1)
    np.testing.assert_allclose(result.eigenvalues, np.sort(np.linalg.eigh(H)[0])[::-1][:4],
                               atol=1e-10)


def test_trace_is_within_three_standard_errors_of_the_exact_trace():
    clf, X, y = fitted_classifier()
    exact = np.trace(curvature.hessian(clf, X, y))
    estimate = curvature.hessian_trace(clf, X, y, n_probes=200, random_state=0)
    assert estimate.samples.shape == (200,) and estimate.std_error > 0
    assert abs(estimate.trace - exact) <= 3 * estimate.std_error


@pytest.mark.parametrize("method", ["ascent", "l-bfgs-b"])
def test_eps_sharpness_stays_in_its_box_and_never_below_zero(method):
    clf, X, y = fitted_classifier()
    theta = clf.network_.params.copy()
    result = curvature.eps_sharpness(clf, X, y, epsilon=1e-2, method=method, random_state=0)
    assert result.sharpness >= 0 and result.max_loss >= result.loss
    assert np.all(np.abs(result.delta) <= 1e-2 * (np.abs(theta) + 1) * (1 + 1e-12))
    at_delta = curvature.Objective(clf, X, y).value(theta + result.delta)
    assert at_delta == pytest.approx(result.max_loss, rel=1e-12)
    assert result.sharpness == pytest.approx(
        100 * (result.max_loss - result.loss) / (1 + result.loss))


def test_projected_ascent_finds_at_least_what_ten_lbfgs_iterations_find():
    clf, X, y = fitted_classifier(solver="lbfgs")
    ascent = curvature.eps_sharpness(clf, X, y, epsilon=5e-3, random_state=0)
    lbfgs = curvature.eps_sharpness(clf, X, y, epsilon=5e-3, method="l-bfgs-b")
    assert ascent.sharpness >= lbfgs.sharpness * 0.999


def test_spectral_density_is_a_density_around_the_spectrum():
    clf, X, y = fitted_classifier()
    eig = np.linalg.eigh(curvature.hessian(clf, X, y))[0]
    result = curvature.spectral_density(clf, X, y, n_probes=3, steps=30, random_state=0)
    assert np.trapezoid(result.density, result.grid) == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(result.weights.sum(axis=1), 1.0)
    assert result.nodes.max() == pytest.approx(eig.max(), rel=1e-6)
    assert result.nodes.min() == pytest.approx(eig.min(), rel=1e-6)


def test_chunks_sum_to_the_whole_without_batch_norm_and_form_ghost_batches_with_it():
    clf, X, y = fitted_classifier()
    v = RNG.normal(size=clf.network_.n_params)
    whole = curvature.hvp(clf, X, y, v)
    np.testing.assert_allclose(curvature.hvp(clf, X, y, v, chunk_size=40), whole, atol=1e-13)
    value, grad = curvature.gradient(clf, X, y)
    chunked_value, chunked_grad = curvature.gradient(clf, X, y, chunk_size=33)
    assert chunked_value == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(chunked_grad, grad, atol=1e-14)
    bn, X, y = fitted_classifier(batch_norm=True)
    v = RNG.normal(size=bn.network_.n_params)
    ghost = curvature.hvp(bn, X, y, v, chunk_size=50)
    assert not np.allclose(ghost, curvature.hvp(bn, X, y, v))


def test_estimator_targets_go_through_its_label_encoding():
    clf, X, y = fitted_classifier()
    labels = np.array(["a", "b", "c"])[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        named = nncore.MLPClassifier((6,), activation="tanh", max_iter=300,
                                     random_state=0).fit(X, labels)
    v = RNG.normal(size=clf.network_.n_params)
    np.testing.assert_array_equal(curvature.hvp(named, X, labels, v), curvature.hvp(clf, X, y, v))
    data = clf.prepare(X, y)
    np.testing.assert_array_equal(curvature.hvp(clf.network_, data.X, data.Y, v),
                                  curvature.hvp(clf, X, y, v))


def test_hessian_operator_works_with_scipy():
    from scipy.sparse.linalg import eigsh

    clf, X, y = fitted_classifier()
    op = curvature.hessian_operator(clf, X, y)
    top = eigsh(op, k=1, which="LA", return_eigenvectors=False)[0]
    assert top == pytest.approx(np.linalg.eigh(curvature.hessian(clf, X, y))[0][-1], rel=1e-8)


def test_measuring_changes_nothing():
    clf, X, y = fitted_classifier(batch_norm=True, solver="adam")
    net = clf.network_
    before = (net.params.copy(), net.grads.copy(), net.running_means[0].copy(),
              net.running_vars[0].copy(), {k: np.copy(v) for k, v in clf._optimizer.state.items()})
    curvature.top_eigenvalues(clf, X, y, random_state=0)
    curvature.hessian_trace(clf, X, y, n_probes=3, random_state=0)
    curvature.eps_sharpness(clf, X, y, max_iter=5, random_state=0)
    curvature.gradient(clf, X, y)
    landscape.slice_1d(clf, X, y, landscape.random_direction(clf, random_state=0),
                       [-1, 0, 1], X_test=X, y_test=y)
    after = (net.params, net.grads, net.running_means[0], net.running_vars[0],
             clf._optimizer.state)
    for a, b in zip(before[:4], after[:4]):
        np.testing.assert_array_equal(a, b)
    for key in before[4]:
        np.testing.assert_array_equal(before[4][key], after[4][key])


def test_slices_pass_through_the_objective_at_zero():
    clf, X, y = fitted_classifier()
    J = curvature.gradient(clf, X, y)[0]
    d = landscape.random_direction(clf, random_state=1)
    line = landscape.slice_1d(clf, X, y, d, np.linspace(-1, 1, 5), X_test=X[:50], y_test=y[:50])
    assert line.train_losses[2] == pytest.approx(J, rel=1e-14) == line.origin_loss
    assert line.test_losses[2] == pytest.approx(clf.mean_loss(X[:50], y[:50]), rel=1e-14)
    grid = landscape.slice_2d(clf, X, y, d, landscape.weight_direction(clf, 1, 2, 0),
                              np.linspace(-1, 1, 3), np.linspace(-2, 2, 5))
    assert grid.train_losses.shape == (3, 5) and grid.test_losses is None
    assert grid.train_losses[1, 2] == pytest.approx(J, rel=1e-14)


def test_filter_normalised_direction_matches_each_unit_and_zeroes_the_rest():
    clf, X, y = fitted_classifier()
    d = landscape.random_direction(clf, random_state=0)
    net = clf.network_
    for kind, _, offset, rows, cols in net.layout():
        block = d[offset:offset + rows * cols].reshape(rows, cols)
        if kind == "weight":
            W = net.params[offset:offset + rows * cols].reshape(rows, cols)
            np.testing.assert_allclose(np.linalg.norm(block, axis=0), np.linalg.norm(W, axis=0))
        else:
            assert not block.any()


def test_segment_between_two_solutions_and_the_eigen_direction():
    a, X, y = fitted_classifier()
    b, _, _ = fitted_classifier(alpha=0.01)
    d = landscape.between(a.network_.params, b.network_.params)
    line = landscape.slice_1d(a, X, y, d, [-0.5, 0, 1, 1.5])
    assert line.train_losses[1] == pytest.approx(curvature.gradient(a, X, y)[0], rel=1e-14)
    assert line.train_losses[2] == pytest.approx(
        curvature.Objective(a, X, y).value(b.network_.params), rel=1e-14)
    e = landscape.eigen_direction(a, X, y, random_state=0)
    assert np.linalg.norm(e) == pytest.approx(1.0)


@pytest.mark.parametrize("call,message", [
    (lambda net, X, y: curvature.hvp(net, X, y, np.ones(3)), "v must have shape"),
    (lambda net, X, y: curvature.hvp(net, X, y, np.full(net.n_params, np.nan)), "finite"),
    (lambda net, X, y: curvature.top_eigenvalues(net, X, y, which="BE"), "which must be"),
    (lambda net, X, y: curvature.top_eigenvalues(net, X, y, k=10**6), "k must be"),
    (lambda net, X, y: curvature.top_eigenvalues(net, X, y, v0=np.ones(3)), "v0 must have shape"),
    (lambda net, X, y: curvature.top_eigenvalues(net, X, y, v0=np.zeros(net.n_params)),
     "v0 must not be the zero vector"),
    (lambda net, X, y: curvature.top_eigenvalues(net, X, y, v0=np.full(net.n_params, np.inf)),
     "v0 must be finite"),
    (lambda net, X, y: curvature.hessian_trace(net, X, y, n_probes=1), "n_probes"),
    (lambda net, X, y: curvature.eps_sharpness(net, X, y, method="newton"), "method must be"),
    (lambda net, X, y: curvature.hvp("net", X, y, np.ones(3)), "model must be"),
    (lambda net, X, y: landscape.weight_direction(net, 5, 0, 0), "layer must be"),
    (lambda net, X, y: landscape.slice_1d(net, X, y, np.ones(2)), "direction must have shape"),
])
def test_bad_arguments_are_clear_errors(call, message):
    net, X, Y, _ = problem("relu", "squared_error", False)
    with pytest.raises((ValueError, TypeError), match=message):
        call(net, X, Y)


def test_lbfgs_variant_stops_at_once_at_a_stationary_point_where_ascent_does_not():
    """At a converged minimum L-BFGS-B from δ = 0 sees a zero projected gradient and reports 0;
    the projected ascent, starting in the box, finds the sharpness."""
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = (y == 1) * 1.0  # versicolor against the rest: not separable, a finite minimum
    net = nncore.Network([4, 6, 1], "tanh", "logistic", alpha=1e-2, random_state=0)
    nncore.lbfgs(net, X, y, max_iter=5000, tol=1e-12)
    for _ in range(6):  # Newton's steps with the exact Hessian: quadratic convergence
        _, grad = curvature.gradient(net, X, y)
        net.params[:] -= np.linalg.solve(curvature.hessian(net, X, y), grad)
    assert np.linalg.norm(curvature.gradient(net, X, y)[1]) < 1e-7
    lbfgs = curvature.eps_sharpness(net, X, y, epsilon=1e-2, method="l-bfgs-b")
    ascent = curvature.eps_sharpness(net, X, y, epsilon=1e-2, random_state=0)
    assert lbfgs.sharpness < 1e-6 and ascent.sharpness > 100 * max(lbfgs.sharpness, 1e-8)


@pytest.mark.parametrize("activation,batch_norm", [("relu", False), ("gelu", True),
                                                   ("logistic", True)])
def test_products_of_several_vectors_equal_each_vectors_product(activation, batch_norm):
    net, X, Y, w = problem(activation, "softmax", batch_norm, n=11)
    data = net.prepare(X, Y, w)
    scale = net.objective_scale(data)
    V = RNG.normal(size=(5, net.n_params))
    _, many = net.hessian_vector_products(data, V, scale=scale)
    for v, hv in zip(V, many):
        # The same operations; a vector's alignment in V may change Eigen's rounding by 1 ulp.
        np.testing.assert_allclose(hv, net.hessian_vector_product(data, v, scale=scale)[1],
                                   rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("multiclass", [False, True])
def test_classifier_values_are_of_the_function_whose_gradient_is_measured(dtype, multiclass):
    """A classifier reports scikit-learn's clipped log-loss; far from θ that is another function
    than the one its gradient and H·v belong to. Every value curvature and landscape report is the
    stable, unclipped objective: equal to an independent NumPy one at θ + 8d, and its finite
    difference along the gradient is the gradient's slope (clipped, 0.63 against 148 before)."""
    import reference as ref

    X, y = load_iris(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(dtype)
    y = y if multiclass else (y > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = nncore.MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, alpha=1e-3,
                                   random_state=0).fit(X, y)
    net = clf.network_
    d = landscape.random_direction(clf, random_state=0)
    far = net.params.astype(np.float64) + 8 * d
    Ws, bs = ref.unpack(far, net.layer_sizes)
    Y = np.eye(3)[y] if multiclass else y[:, None].astype(float)
    expected = ref.objective(Ws, bs, X.astype(np.float64), Y, "relu",
                             "softmax" if multiclass else "logistic", alpha=1e-3)
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    line = landscape.slice_1d(clf, X, y, d, alphas=[0.0, 8.0])
    np.testing.assert_allclose(line.train_losses[1], expected, rtol=rtol)
    assert line.train_losses[1] > 5 * clf.loss_curve_[-1]  # far from θ: much larger than at θ

    objective = curvature.Objective(clf, X, y)
    value, grad = objective.value_and_grad(far)
    np.testing.assert_allclose(value, expected, rtol=rtol)
    np.testing.assert_allclose(objective.value(far), expected, rtol=rtol)
    u = grad / np.linalg.norm(grad)
    h = 1e-4 if dtype == np.float64 else 1e-2
    slope = (objective.value(far + h * u) - objective.value(far - h * u)) / (2 * h)
    np.testing.assert_allclose(slope, grad @ u, rtol=1e-5 if dtype == np.float64 else 1e-2)
    # the model itself still reports scikit-learn's clipped value, and is unchanged
    assert net.loss_clip_epsilon > 0
    sharp = curvature.eps_sharpness(clf, X, y, epsilon=0.5)
    assert sharp.loss == pytest.approx(objective.value(), rel=rtol)


def test_a_warm_start_finds_the_same_top_eigenvalue_in_fewer_products():
    """Tracking λmax along training: started from the eigenvector of 20 gradient-descent steps
    earlier, Lanczos finds the top eigenvalue that a random start and numpy's eigh of the full
    Hessian find, in fewer products; with chunk_size as without."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    Y = np.eye(3)[rng.integers(0, 3, 200)]
    net = nncore.Network([5, 12, 12, 3], "tanh", "squared_error", random_state=0)
    before = curvature.top_eigenvalues(net, X, Y, which="LA", tol=1e-8, random_state=0)
    nncore.train(net, X, Y, epochs=20, learning_rate=0.5, batch_size=None, shuffle=False)
    previous = before.eigenvectors[:, 0]
    exact = np.linalg.eigvalsh(curvature.hessian(net, X, Y))[-1]
    assert abs(exact - before.eigenvalues[0]) > 1e-3 * exact  # the eigenpair did move
    cold = curvature.top_eigenvalues(net, X, Y, which="LA", tol=1e-8, random_state=1)
    warm = curvature.top_eigenvalues(net, X, Y, which="LA", tol=1e-8, v0=previous)
    chunked = curvature.top_eigenvalues(net, X, Y, which="LA", tol=1e-8, v0=3.0 * previous,
                                        chunk_size=64)
    for result in (cold, warm, chunked):
        assert result.converged
        assert result.eigenvalues[0] == pytest.approx(exact, rel=1e-9)
    assert warm.n_iter < cold.n_iter
    assert chunked.n_iter == warm.n_iter  # v0's norm does not matter, nor do the chunks
    np.testing.assert_allclose(np.abs(warm.eigenvectors[:, 0] @ cold.eigenvectors[:, 0]), 1.0,
                               atol=1e-6)


def test_top_eigenvalues_refuses_fewer_steps_than_eigenvalues():
    """k=3 with max_iter=2 returned 2 eigenvalues without a word."""
    net, X, Y, w = problem("tanh", "squared_error", False)
    with pytest.raises(ValueError, match="max_iter must be >= k"):
        curvature.top_eigenvalues(net, X, Y, k=3, max_iter=2)
    assert len(curvature.top_eigenvalues(net, X, Y, k=3, max_iter=3).eigenvalues) == 3


def test_between_takes_models_as_well_as_vectors():
    """landscape.between(est, est) failed with "float() argument must be…"."""
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = nncore.MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
        b = nncore.MLPClassifier(hidden_layer_sizes=(5,), max_iter=30, random_state=0).fit(X, y)
    d = landscape.between(a, b)
    np.testing.assert_array_equal(d, b.network_.params - a.network_.params)
    np.testing.assert_array_equal(landscape.between(a.network_, b.network_.params), d)
    with pytest.raises(TypeError, match="theta_b must be a parameter vector, a fitted nncore"):
        landscape.between(a, object())
    with pytest.raises(ValueError, match="differ in shape"):
        landscape.between(a, np.zeros(3))


def test_curvature_names_a_short_y_and_an_unknown_label():
    """y one row short gave "cannot reshape array of size 447…"; an unknown label a one-hot
    message."""
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = nncore.MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="y has 149 rows and X 150"):
        curvature.top_eigenvalues(clf, X, y[:-1])
    bad = y.copy()
    bad[0] = 7
    with pytest.raises(ValueError, match=r"label\(s\) 7 that the model was not trained on"):
        curvature.hessian_trace(clf, X, bad)


# ---- adaptive sharpness and PAC-Bayes flatness --------------------------------------------------
def newton_minimum():
    """A tanh net at a minimum to ~1e-7 in the gradient (L-BFGS, then exact Newton steps)."""
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = (y == 1) * 1.0  # versicolor against the rest: not separable, a finite minimum
    net = nncore.Network([4, 6, 1], "tanh", "logistic", alpha=1e-2, random_state=0)
    nncore.lbfgs(net, X, y, max_iter=5000, tol=1e-12)
    for _ in range(6):
        _, grad = curvature.gradient(net, X, y)
        net.params[:] -= np.linalg.solve(curvature.hessian(net, X, y), grad)
    assert np.linalg.norm(curvature.gradient(net, X, y)[1]) < 1e-7
    return net, X, y


def relu_net(hidden=(8, 8), epochs=60):
    """A small ReLU net on iris, trained some way: not at an exact minimum."""
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    net = nncore.Network([4, *hidden, 3], "relu", "softmax", random_state=0)
    nncore.train(net, X, y, epochs=epochs, learning_rate=0.1, batch_size=16, random_state=0)
    return net, X, y


def rescaled(net, a):
    """First layer's weights and biases times a, second layer's weights over a: a ReLU net
    computes the same function."""
    other = net.copy()
    other.coefs[0][:] *= a
    other.intercepts[0][:] *= a
    other.coefs[1][:] /= a
    return other


def test_adaptive_sharpness_at_a_minimum_is_half_rho_squared_times_the_scaled_top_eigenvalue():
    """At a stationary point J(θ + t⊙z) − J(θ) = ½ zᵀ (T H T) z + O(ρ³) with T = diag(abs(θ)+η):
    the maximum over ‖z‖ ≤ ρ is ½ ρ² λ_max(T H T), computed here from the full Hessian."""
    net, X, y = newton_minimum()
    eta, rho = 1e-2, 1e-3
    t = np.abs(net.params) + eta
    H = curvature.hessian(net, X, y)
    top = np.linalg.eigh(t[:, None] * H * t[None, :])[0][-1]
    result = curvature.adaptive_sharpness(net, X, y, rho=rho, eta=eta, max_iter=100,
                                          random_state=0)
    assert result.sharpness == pytest.approx(0.5 * rho**2 * top, rel=1e-2)
    assert np.linalg.norm(result.delta / t) <= rho * (1 + 1e-12)
    assert curvature.Objective(net, X, y).value(net.params + result.delta) == pytest.approx(
        result.max_loss, rel=1e-14)
    assert result.sharpness == pytest.approx(result.max_loss - result.loss, rel=1e-12)


def test_adaptive_sharpness_is_at_least_what_a_random_search_of_its_ball_finds():
    """Away from the quadratic regime (ρ = 0.5, a ReLU net): 4000 random points of the ball's
    sphere are a lower bound on the maximum; the ascent must reach it (it finds about 5× more)."""
    net, X, y = relu_net(hidden=(5,), epochs=30)
    rho, eta = 0.5, 1e-3
    t = np.abs(net.params) + eta
    objective = curvature.Objective(net, X, y)
    base = objective.value()
    rng = np.random.default_rng(0)
    best = -np.inf
    for _ in range(4000):
        z = rng.standard_normal(net.n_params)
        best = max(best, objective.value(net.params + t * rho * z / np.linalg.norm(z)) - base)
    result = curvature.adaptive_sharpness(net, X, y, rho=rho, eta=eta, random_state=0)
    assert best > 0 and result.sharpness >= best
    assert np.linalg.norm(result.delta / t) <= rho * (1 + 1e-12)


def test_adaptive_sharpness_and_sigma_prime_ignore_a_rescaling_that_moves_the_eigenvalue():
    """Dinh et al. 2017: (a, 1/a) on two ReLU layers keeps every prediction and moves the top
    eigenvalue at will; with η = ε = 0 adaptive sharpness and σ′ stay put, σ does not."""
    net, X, y = relu_net()
    base = {"adaptive": curvature.adaptive_sharpness(net, X, y, eta=0.0, random_state=0),
            "prime": curvature.pac_bayes_sigma(net, X, y, magnitude_aware=True, epsilon=0.0,
                                               random_state=0),
            "sigma": curvature.pac_bayes_sigma(net, X, y, random_state=0),
            "eig": curvature.top_eigenvalues(net, X, y, 1, which="LA", random_state=0)}
    for a in (0.2, 5.0):
        other = rescaled(net, a)
        np.testing.assert_allclose(other.forward(X), net.forward(X), rtol=0, atol=1e-12)
        adaptive = curvature.adaptive_sharpness(other, X, y, eta=0.0, random_state=0)
        assert adaptive.sharpness == pytest.approx(base["adaptive"].sharpness, rel=1e-8)
        prime = curvature.pac_bayes_sigma(other, X, y, magnitude_aware=True, epsilon=0.0,
                                          random_state=0)
        assert prime.sigma == pytest.approx(base["prime"].sigma, rel=1e-8)
        sigma = curvature.pac_bayes_sigma(other, X, y, random_state=0).sigma
        assert not sigma == pytest.approx(base["sigma"].sigma, rel=0.2)
        eig = curvature.top_eigenvalues(other, X, y, 1, which="LA", random_state=0)
        assert eig.eigenvalues[0] > 2 * base["eig"].eigenvalues[0]


@pytest.mark.parametrize("magnitude_aware", [False, True])
def test_pac_bayes_sigma_against_a_brute_force_monte_carlo_at_and_around_it(magnitude_aware):
    """At the σ returned from 400 fixed draws, 4000 fresh draws give a mean rise equal to the
    threshold within their and the fixed draws' Monte Carlo error; at 0.9σ it is below, at 1.1σ
    above. The net's first layer is rescaled by 0.1 (the function unchanged) so that parameter
    magnitudes span three decades and σ′'s scaling by abs(θ) + ε matters."""
    net, X, y = relu_net(hidden=(6, 6), epochs=40)
    net = rescaled(net, 0.1)
    threshold, epsilon = 0.05, 1e-3
    result = curvature.pac_bayes_sigma(net, X, y, threshold=threshold, n_draws=400, tol=1e-3,
                                       magnitude_aware=magnitude_aware, epsilon=epsilon,
                                       random_state=0)
    assert result.rise <= threshold and result.magnitude_aware == magnitude_aware
    objective = curvature.Objective(net, X, y)
    scale = np.abs(net.params) + epsilon if magnitude_aware else 1.0
    rng = np.random.default_rng(1)
    draws = rng.standard_normal((4000, net.n_params)) * scale

    def rises(sigma):
        return np.array([objective.value(net.params + sigma * u) for u in draws]) - result.loss

    at = rises(result.sigma)
    error = at.std() * np.sqrt(1 / 4000 + 1 / 400)
    assert abs(at.mean() - threshold) <= 3 * error
    assert rises(0.9 * result.sigma).mean() < threshold < rises(1.1 * result.sigma).mean()


def test_new_measures_are_seeded_and_chunked_like_the_others():
    clf, X, y = fitted_classifier()
    for measure in (lambda **kw: curvature.adaptive_sharpness(clf, X, y, **kw).sharpness,
                    lambda **kw: curvature.pac_bayes_sigma(clf, X, y, n_draws=5, **kw).sigma,
                    lambda **kw: curvature.pac_bayes_sigma(clf, X, y, n_draws=5,
                                                           magnitude_aware=True, **kw).sigma):
        first = measure(random_state=3)
        assert measure(random_state=3) == first
        assert measure(random_state=3, chunk_size=40) == pytest.approx(first, rel=1e-9)


@pytest.mark.parametrize("call,message", [
    (lambda net, X, y: curvature.adaptive_sharpness(net, X, y, rho=0.0), "rho"),
    (lambda net, X, y: curvature.adaptive_sharpness(net, X, y, eta=-1.0), "eta"),
    (lambda net, X, y: curvature.pac_bayes_sigma(net, X, y, threshold=0.0), "threshold"),
    (lambda net, X, y: curvature.pac_bayes_sigma(net, X, y, n_draws=0), "n_draws"),
])
def test_new_measures_reject_bad_arguments(call, message):
    net, X, Y, _ = problem("relu", "squared_error", False)
    with pytest.raises(ValueError, match=message):
        call(net, X, Y)
