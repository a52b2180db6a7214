"""ONNX export (nncore.onnx): onnxruntime's outputs against predict / predict_proba."""

import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nncore
import nncore.onnx

SKIP = "ONNX export tests need pip install 'nncore[onnx]'"
pytest.importorskip("onnx", reason=SKIP)
skl2onnx = pytest.importorskip("skl2onnx", reason=SKIP)
ort = pytest.importorskip("onnxruntime", reason=SKIP)

# float32: onnxruntime's kernels (MLAS GEMM, its exp/tanh/logistic approximations) round
# differently from nncore's by a few units of 6e-8; 1e-5 is the promised bound. float64: both sides
# are exact to ~1e-16 per operation, so 1e-12 still leaves room for summation order in the GEMMs.
TOL = {np.float32: 1e-5, np.float64: 1e-12}
TASKS = ("binary", "multiclass", "multilabel", "regression", "multioutput")


@pytest.fixture(scope="module", autouse=True)
def registered():
    nncore.onnx.register()


def make_data(task, n=64, seed=0):
    rng = np.random.default_rng(seed)
    # Offsets and scales far from 0 and 1, so batch norm's running statistics matter.
    X = rng.normal(size=(n, 4)) * [1.0, 3.0, 0.5, 2.0] + [2.0, -1.0, 0.0, 5.0]
    z = (X - X.mean(axis=0)) / X.std(axis=0)
    if task == "binary":
        y = np.where(z[:, 0] + z[:, 1] > 0, 7, -1)
    elif task == "multiclass":
        y = np.array(["ant", "bee", "cat"])[np.argmax(z[:, :3], axis=1)]
    elif task == "multilabel":
        y = (z[:, :3] > 0).astype(int)
    elif task == "regression":
        y = np.sin(z[:, 0]) + 0.5 * z[:, 1]
    elif task == "multioutput":
        y = np.column_stack([np.sin(z[:, 0]), z[:, 1] * z[:, 2], z[:, 3]])
    elif task == "poisson":
        y = rng.poisson(np.exp(0.5 * z[:, 0])).astype(float)
    return X, y


def fitted(task, activation="tanh", dtype=np.float32, batch_norm=False, **params):
    X, y = make_data(task)
    X = X.astype(dtype)
    if task == "poisson":
        params["loss"] = "poisson"
    kind = nncore.MLPClassifier if task in ("binary", "multiclass", "multilabel") else \
        nncore.MLPRegressor
    params.setdefault("hidden_layer_sizes", (6, 5))
    estimator = kind(activation=activation, batch_norm=batch_norm, max_iter=15, batch_size=16,
                     learning_rate_init=0.02, random_state=0, **params)
    with warnings.catch_warnings():  # a few epochs on purpose: small, fast, not converged
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    return estimator, X


def run(model, X):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def assert_labels(labels, estimator, X, proba, tol):
    """Labels equal predict's, except where the two largest probabilities are within tol: there
    rounding may pick either class."""
    expected = estimator.predict(X)
    if proba.shape[1] == len(estimator.classes_) and expected.ndim == 1:
        top2 = np.sort(proba, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > tol
    else:  # multilabel: each label on its own threshold
        clear = np.abs(proba - 0.5) > tol
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(np.asarray(labels)[clear], np.asarray(expected)[clear])


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("activation", nncore.ACTIVATIONS)
def test_matches_predict(activation, task, dtype, batch_norm):
    estimator, X = fitted(task, activation, dtype, batch_norm)
    if dtype == np.float64 and activation == "gelu":
        with pytest.raises(ValueError, match="gelu.*float32"):
            skl2onnx.to_onnx(estimator, X[:1], options={"zipmap": False})
        return
    tol = TOL[dtype]
    if isinstance(estimator, nncore.MLPRegressor):
        (prediction,) = run(skl2onnx.to_onnx(estimator, X[:1]), X)
        assert prediction.dtype == dtype
        expected = estimator.predict(X).reshape(len(X), -1)
        np.testing.assert_allclose(prediction, expected, rtol=tol, atol=tol)
        return
    labels, proba = run(skl2onnx.to_onnx(estimator, X[:1], options={"zipmap": False}), X)
    assert proba.dtype == dtype
    np.testing.assert_allclose(proba, estimator.predict_proba(X), rtol=tol, atol=tol)
    assert_labels(labels, estimator, X, proba, tol)


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_poisson_is_exp_of_scores(dtype, batch_norm):
    estimator, X = fitted("poisson", "relu", dtype, batch_norm)
    (prediction,) = run(skl2onnx.to_onnx(estimator, X[:1]), X)
    np.testing.assert_allclose(prediction.ravel(), estimator.predict(X), rtol=TOL[dtype],
                               atol=TOL[dtype])


@pytest.mark.parametrize("graph_dtype", [np.float32, np.float64])
def test_graph_dtype_follows_the_sample_not_the_network(graph_dtype):
    network_dtype = np.float64 if graph_dtype == np.float32 else np.float32
    estimator, X = fitted("multiclass", "softplus", network_dtype, batch_norm=True)
    labels, proba = run(skl2onnx.to_onnx(estimator, X[:1].astype(graph_dtype),
                                         options={"zipmap": False}), X.astype(graph_dtype))
    assert proba.dtype == graph_dtype
    # The weights or the network's float32 arithmetic round at float32: float32's tolerance.
    np.testing.assert_allclose(proba, estimator.predict_proba(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_string_labels_with_zipmap(task):
    estimator, X = fitted(task)
    if task == "binary":
        y = np.where(make_data(task)[1] > 0, "spam", "ham")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(X, y)
    labels, maps = run(skl2onnx.to_onnx(estimator, X[:1]), X)
    proba = estimator.predict_proba(X)
    assert labels.dtype == object and set(labels) <= set(estimator.classes_)
    assert_labels(labels, estimator, X, proba, 1e-5)
    assert list(maps[0]) == list(estimator.classes_)
    got = np.array([[row[c] for c in estimator.classes_] for row in maps])
    np.testing.assert_allclose(got, proba, rtol=1e-5, atol=1e-5)


def test_zipmap_columns():
    estimator, X = fitted("multiclass")
    outputs = run(skl2onnx.to_onnx(estimator, X[:1], options={"zipmap": "columns"}), X)
    assert len(outputs) == 1 + len(estimator.classes_)
    np.testing.assert_allclose(np.column_stack(outputs[1:]), estimator.predict_proba(X),
                               rtol=1e-5, atol=1e-5)


def test_nocl_gives_class_indices():
    estimator, X = fitted("multiclass")
    labels, maps = run(skl2onnx.to_onnx(estimator, X[:1], options={"nocl": True}), X)
    proba = estimator.predict_proba(X)
    assert labels.dtype == np.int64
    assert_labels(estimator.classes_[labels], estimator, X, proba, 1e-5)
    assert list(maps[0]) == [0, 1, 2]


def test_multilabel_with_zipmap():
    estimator, X = fitted("multilabel")
    labels, maps = run(skl2onnx.to_onnx(estimator, X[:1]), X)
    proba = estimator.predict_proba(X)
    assert labels.shape == proba.shape
    assert_labels(labels, estimator, X, proba, 1e-5)
    np.testing.assert_allclose([[row[k] for k in range(3)] for row in maps], proba,
                               rtol=1e-5, atol=1e-5)


def test_float64_refuses_zipmap_but_takes_columns():
    estimator, X = fitted("binary", dtype=np.float64)
    with pytest.raises(ValueError, match="zipmap"):
        skl2onnx.to_onnx(estimator, X[:1])
    outputs = run(skl2onnx.to_onnx(estimator, X[:1], options={"zipmap": "columns"}), X)
    np.testing.assert_allclose(np.column_stack(outputs[1:]), estimator.predict_proba(X),
                               rtol=1e-12, atol=1e-12)


def test_gelu_without_hidden_layers_exports_float64():
    estimator, X = fitted("regression", "gelu", np.float64, hidden_layer_sizes=())
    (prediction,) = run(skl2onnx.to_onnx(estimator, X[:1]), X)
    np.testing.assert_allclose(prediction.ravel(), estimator.predict(X), rtol=1e-12, atol=1e-12)


def test_integer_input_refused():
    estimator, X = fitted("regression")
    with pytest.raises(TypeError, match="float32 or float64"):
        skl2onnx.to_onnx(estimator, X[:1].astype(np.int64))


def test_in_a_pipeline():
    estimator, X = fitted("multiclass", batch_norm=True)
    pipeline = make_pipeline(StandardScaler(), estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(X, make_data("multiclass")[1])
    labels, proba = run(skl2onnx.to_onnx(pipeline, X[:1], options={"zipmap": False}), X)
    np.testing.assert_allclose(proba, pipeline.predict_proba(X), rtol=1e-5, atol=1e-5)


def test_register_twice():
    nncore.onnx.register()
    nncore.onnx.register()
    estimator, X = fitted("regression")
    (prediction,) = run(skl2onnx.to_onnx(estimator, X[:1]), X)
    np.testing.assert_allclose(prediction.ravel(), estimator.predict(X), rtol=1e-5, atol=1e-5)


def test_missing_skl2onnx_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # makes `import skl2onnx` fail
    with pytest.raises(ImportError, match=r"pip install 'nncore\[onnx\]'"):
        nncore.onnx.register()
