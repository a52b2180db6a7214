"""Property tests (hypothesis) over shapes, dtypes, layouts, hyperparameters and data values:
the core never crashes, returns finite numbers for finite inputs in a stable configuration,
and float32 agrees with float64."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import nncore

EXAMPLES = 300
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ACTIVATIONS = list(nncore.ACTIVATIONS)
LOSSES = list(nncore.LOSSES)


@st.composite
def problems(draw):
    n = draw(st.integers(1, 12))
    d = draw(st.integers(1, 5))
    hidden = draw(st.lists(st.integers(1, 6), min_size=0, max_size=3))
    loss = draw(st.sampled_from(LOSSES))
    k = draw(st.integers(2, 4)) if loss == "softmax" else draw(st.integers(1, 3))
    values = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=32)
    X = draw(arrays(np.float64, (n, d), elements=values))
    if loss == "squared_error":
        Y = draw(arrays(np.float64, (n, k), elements=values))
    elif loss == "logistic":
        Y = draw(arrays(np.float64, (n, k), elements=st.sampled_from([0.0, 1.0])))
    elif loss == "softmax":
        Y = np.eye(k)[draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))]
    else:
        Y = draw(arrays(np.float64, (n, k), elements=st.integers(0, 20).map(float)))
    return dict(n=n, d=d, k=k, sizes=[d, *hidden, k], loss=loss, X=X, Y=Y,
                activation=draw(st.sampled_from(ACTIVATIONS)),
                alpha=draw(st.sampled_from([0.0, 1e-4, 0.1])),
                reduction=draw(st.sampled_from(["mean", "sum"])),
                batch_norm=draw(st.booleans()) and len(hidden) > 0,
                layout=draw(st.sampled_from(["C", "F", "strided", "readonly"])),
                weights=draw(st.booleans()),
                seed=draw(st.integers(0, 2**31 - 1)))


def laid_out(a, layout):
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":
        wide = np.repeat(a, 2, axis=1)
        return wide[:, ::2]
    if layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
    return a


@FUZZ
@given(problems(), st.sampled_from([np.float32, np.float64]), st.integers(1, 12),
       st.floats(1e-4, 1e-3))
def test_core_stays_finite_and_never_crashes(p, dtype, batch_size, learning_rate):
    if p["reduction"] == "sum":
        learning_rate /= p["n"]  # the sum objective is n times the mean: a stable step is 1/n
    if p["loss"] == "poisson":
        learning_rate *= 0.01  # the log link's curvature grows like exp(f): smaller steps
    net = nncore.Network(p["sizes"], p["activation"], p["loss"], alpha=p["alpha"],
                         loss_reduction=p["reduction"], dtype=dtype, batch_norm=p["batch_norm"],
                         random_state=p["seed"] % 1000)
    X = laid_out(p["X"], p["layout"])
    w = np.linspace(0.5, 1.5, p["n"]) if p["weights"] else None
    scores = net.forward(X)
    assert np.isfinite(scores).all()
    if p["loss"] == "poisson":
        # its curvature is exp(f) itself: with inputs of 5 an initial f of 13 makes even the step
        # above overshoot to exp(3e4). Scale the step to the curvature at the start.
        learning_rate /= max(1.0, float(np.exp(np.max(scores))))
    batch_norm_needs_rows = p["batch_norm"] and p["n"] < 2
    if batch_norm_needs_rows:
        with pytest.raises(ValueError, match="at least 2 rows"):
            net.loss_and_grad(X, p["Y"], w)
        return
    value, grads = net.loss_and_grad(X, p["Y"], w)
    assert np.isfinite(value) and np.isfinite(grads).all()
    assert np.isfinite(net.loss(X, p["Y"], w))
    batch = min(batch_size, p["n"])
    if p["batch_norm"] and (batch < 2 or p["n"] % batch == 1):
        with pytest.raises(ValueError, match="minibatch of 1 row"):
            net.train_epoch(X, p["Y"], batch_size=batch_size, learning_rate=learning_rate)
        return
    before = net.params.copy()
    loss = net.train_epoch(X, p["Y"], batch_size=batch_size, learning_rate=learning_rate,
                           sample_weight=w, seed=p["seed"])
    assert np.isfinite(loss) and np.isfinite(net.params).all()
    if batch >= p["n"]:
        # One step over every row: the epoch's loss (mean units) is the objective at the start.
        start = value / (p["n"] if p["reduction"] == "sum" else 1)
        tolerance = 1e-3 if dtype == np.float32 else 1e-9
        if dtype == np.float32 and p["batch_norm"]:
            # A column constant over the batch has variance 0: float32 rounding of x − mean
            # (~1e-7 |x|) is divided by √ε ≈ 3e-3, and the two passes' gathered rows round
            # differently (hypothesis found all-5 inputs giving 0.6297 vs 0.6276: 3e-3).
            tolerance = 1e-2
        assert loss == pytest.approx(start, rel=tolerance, abs=tolerance)
    assert net.input_grad_counts[0] == 0


@FUZZ
@given(problems())
def test_float32_agrees_with_float64(p):
    nets = {t: nncore.Network(p["sizes"], p["activation"], p["loss"], alpha=p["alpha"], dtype=t,
                              batch_norm=p["batch_norm"], random_state=0)
            for t in (np.float32, np.float64)}
    nets[np.float64].params[:] = nets[np.float32].params  # the same float32-rounded start
    X = p["X"].astype(np.float32).astype(np.float64)
    f32, f64 = (nets[t].forward(X) for t in (np.float32, np.float64))
    scale = max(1.0, np.abs(f64).max())
    np.testing.assert_allclose(f32, f64, rtol=1e-3, atol=1e-3 * scale)
    if p["batch_norm"]:
        # Training-mode batch norm of a (nearly) constant feature divides by √ε ≈ 0.003 per
        # layer: gradients that cancel analytically keep float32 rounding amplified ~300× per
        # such layer, so the two precisions are compared without it (test_batchnorm.py checks
        # batch norm against the reference in both precisions on well-posed batches).
        return
    v32, g32 = nets[np.float32].loss_and_grad(X, p["Y"])
    v64, g64 = nets[np.float64].loss_and_grad(X, p["Y"])
    assert v32 == pytest.approx(v64, rel=1e-3, abs=1e-3)
    np.testing.assert_allclose(g32, g64, rtol=1e-2, atol=1e-3 * max(1.0, np.abs(g64).max()))


@FUZZ
@given(st.one_of(
    arrays(st.sampled_from([np.complex128, np.dtype("U3"), np.dtype("M8[s]")]), (3, 2)),
    arrays(np.float64, st.sampled_from([(0, 2), (3, 0), (2,), (2, 2, 2), (3, 3)])),
    arrays(np.float64, (3, 2), elements=st.sampled_from([np.nan, np.inf, -np.inf, 1.0])).filter(
        lambda a: not np.isfinite(a).all())))
def test_bad_arrays_raise_clear_errors(bad):
    net = nncore.Network([2, 3, 1], random_state=0)
    before = net.params.copy()
    with pytest.raises((ValueError, TypeError)) as info:
        net.train_epoch(bad, np.zeros(len(bad) if bad.ndim else 1))
    assert str(info.value).startswith("X ")  # y is fine: the message names X
    np.testing.assert_array_equal(net.params, before)


@settings(max_examples=60, deadline=None)
@given(st.integers(8, 40), st.integers(1, 4), st.integers(2, 4),
       st.sampled_from(["sgd", "adam", "adamw", "momentum", "lbfgs"]),
       st.sampled_from(["int", "str"]), st.integers(0, 10**6))
def test_classifier_probabilities_on_random_data(n, d, n_classes, solver, label_kind, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, n_classes, size=n)
    if label_kind == "str":
        y = np.array(["a", "b", "c", "d"])[y]
    clf = nncore.MLPClassifier(hidden_layer_sizes=(5,), solver=solver, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    proba = clf.predict_proba(X)
    # one class only: two columns all the same, as scikit-learn's MLPClassifier gives
    assert proba.shape == (n, max(2, len(clf.classes_)))
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1)
    assert set(clf.predict(X)) <= set(clf.classes_)
