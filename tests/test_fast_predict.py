"""Prediction without Python-side checks: what a served request takes. An input that is already
what scikit-learn's validation would pass through (a C-contiguous 2-D array of the model's dtype
and width) goes to the core directly, which checks finiteness as the rows go in; the answers are
those of the checked path bit for bit, and every error and warning is still scikit-learn's."""

import threading
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.exceptions import NotFittedError
from sklearn.neural_network import MLPClassifier as SkClassifier

import nncore

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(n=300, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, rng


def _binary(dtype=None, **kw):
    X, _ = _data()
    y = np.where(X[:, 0] + X[:, 1] ** 2 > 1, "yes", "no")
    return nncore.MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=20, random_state=0,
                                dtype=dtype, **kw).fit(X, y), X


def _multiclass(dtype=None):
    X, _ = _data()
    y = np.digitize(X[:, 0] - X[:, 2], [-0.6, 0.0, 0.7]) * 10
    return nncore.MLPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0,
                                dtype=dtype).fit(X, y), X


def _checked(X):
    """The same rows in a form that takes the checked path (a list of lists)."""
    return X.tolist()


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("make", [_binary, _multiclass])
def test_the_fast_path_answers_as_the_checked_path(make, dtype):
    model, X = make(dtype)
    X = np.ascontiguousarray(X, dtype=dtype)
    for rows in (X[:1], X[:10], X):
        proba = model.predict_proba(rows)
        _same(proba, model.predict_proba(_checked(rows)).astype(dtype))
        _same(model.predict(rows), model.predict(_checked(rows)))
        _same(model.predict_log_proba(rows), np.log(proba))
        # The label is the label binarizer's choice on these very probabilities.
        _same(model.predict(rows), model.classes_[np.argmax(proba, axis=1)])


def test_binary_probabilities_are_expit_and_its_complement():
    model, X = _binary()
    f = model.network_.predict(X, "scores")
    p = expit(f[:, 0])
    proba = model.predict_proba(X)
    np.testing.assert_array_equal(proba[:, 1], p)  # expit's own formula, to the bit
    np.testing.assert_array_equal(proba[:, 0], 1 - p)
    _same(model.predict(X), np.where(p > 0.5, "yes", "no"))


def test_softmax_probabilities_match_the_reference_formula():
    model, X = _multiclass()
    f = model.network_.predict(X, "scores")
    e = np.exp(f - f.max(axis=1, keepdims=True))
    np.testing.assert_allclose(model.predict_proba(X), e / e.sum(axis=1, keepdims=True),
                               rtol=1e-15, atol=1e-16)


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_fast_path(loss):
    X, rng = _data()
    for y in (np.abs(X[:, 0]) + 0.1, np.abs(X[:, :2]) + 0.1):
        model = nncore.MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0,
                                    loss=loss).fit(X, y)
        for rows in (X[:1], X):
            _same(model.predict(rows), model.predict(_checked(rows)))
        f = model.network_.predict(X, "scores")
        expected = np.exp(f) if loss == "poisson" else f
        np.testing.assert_allclose(model.predict(X).reshape(len(X), -1), expected, rtol=1e-15)


def test_multilabel_keeps_the_binarizer_indicators():
    X, _ = _data()
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0.3, X[:, 2] < 0]).astype(int)
    model = nncore.MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, Y)
    _same(model.predict(X), model.predict(_checked(X)))
    _same(model.predict(X), (model.predict_proba(X) > 0.5).astype(model.predict(X).dtype))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 299])
def test_non_finite_input_gets_scikit_learns_error(bad, where):
    model, X = _binary()
    sk = SkClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, model.predict(X))
    X = X.copy()
    X[where, 3] = bad
    for method in ("predict", "predict_proba"):
        with pytest.raises(ValueError) as ours:
            getattr(model, method)(X)
        with pytest.raises(ValueError) as theirs:
            getattr(sk, method)(X)
        assert str(ours.value) == str(theirs.value)


def test_non_finite_values_are_found_in_any_block_on_any_thread():
    X, _ = _data(n=5000, d=4)
    net = nncore.Network([4, 32, 1], "relu", loss="logistic", random_state=0, n_threads=2)
    assert net._core.predict(X, "proba", True) is not None
    for row in (0, 1023, 1024, 2500, 4999):
        for bad in (np.nan, np.inf):
            Xb = X.copy()
            Xb[row, row % 4] = bad
            assert net._core.predict(Xb, "proba", True) is None
            assert net._core.predict(Xb, "label", True) is None
    # Unchecked, a NaN simply flows through: the Python API checks before it calls.
    assert net._core.predict(Xb, "scores", False) is not None


def test_unchecked_shapes_and_types_get_scikit_learns_errors():
    model, X = _binary()
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        model.predict_proba(X[0])
    with pytest.raises(ValueError, match="X has 5 features, but MLPClassifier is expecting 6"):
        model.predict(np.ascontiguousarray(X[:, :5]))
    with pytest.raises(ValueError, match="minimum of 1 is required"):
        model.predict_proba(X[:0])
    with pytest.raises(NotFittedError):
        nncore.MLPClassifier().predict_proba(X)
    # Other layouts and dtypes take the checked path and give the same numbers.
    _same(model.predict_proba(np.asfortranarray(X)), model.predict_proba(X))
    _same(model.predict_proba(X[::2]), model.predict_proba(np.ascontiguousarray(X[::2])))
    np.testing.assert_array_equal(model.predict_proba(X.astype(np.float32)),
                                  model.predict_proba(X.astype(np.float32).astype(np.float64)))


def test_feature_names_are_checked_as_scikit_learn_checks_them():
    X, _ = _data()
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    y = (X[:, 0] > 0).astype(int)
    model = nncore.MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0).fit(frame, y)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict_proba(np.ascontiguousarray(X))
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(frame.rename(columns={"c0": "other"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_frame = model.predict_proba(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same(from_frame, model.predict_proba(np.ascontiguousarray(X)))
    # A model fitted on an array warns when names come in, fast path or not.
    plain = nncore.MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="X has feature names"):
        plain.predict(frame)


def test_assume_finite_is_honoured_like_scikit_learn():
    import sklearn

    model, X = _binary()
    X = X.copy()
    X[4, 0] = np.nan
    with sklearn.config_context(assume_finite=True):
        proba = model.predict_proba(X)  # no check: NaN flows through, as in scikit-learn
    assert np.isnan(proba[4]).all() and np.isfinite(np.delete(proba, 4, axis=0)).all()


def test_one_row_requests_from_many_threads_agree_with_one_thread():
    model, X = _binary()
    rows = [np.ascontiguousarray(X[i:i + 1]) for i in range(64)]
    expected = [model.predict_proba(r) for r in rows]
    labels = [model.predict(r) for r in rows]
    mismatches, errors = [], []

    def work(k):
        try:
            for _ in range(20):
                for i in range(k, len(rows), 3):
                    if not (np.array_equal(model.predict_proba(rows[i]), expected[i])
                            and np.array_equal(model.predict(rows[i]), labels[i])):
                        mismatches.append(i)
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k % 3,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and mismatches == []


def test_network_predict_outputs():
    X, _ = _data()
    net = nncore.Network([6, 8, 3], "tanh", loss="softmax", random_state=0)
    f = net.forward(X)
    _same(net.predict(X, "scores"), f)
    np.testing.assert_array_equal(net.predict(X, "proba"), net.predict(X))
    _same(net.predict(X, "label"), np.argmax(net.predict(X), axis=1).astype(np.int64))
    with pytest.raises(ValueError, match="output must be one of 'scores', 'response', 'proba', "
                                         "'label'"):
        net.predict(X, "probabilities")
    regression = nncore.Network([6, 4, 2], "relu", random_state=0)
    with pytest.raises(ValueError, match="class labels need a softmax or a single logistic"):
        regression.predict(X, "label")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes, loss, batch_norm", [
    ([5, 32, 1], "logistic", False), ([7, 8, 1], "squared_error", False),
    ([20, 64, 64, 1], "logistic", True), ([6, 9, 3], "softmax", False),
    ([30, 100, 2], "squared_error", False)])
def test_a_row_gets_the_same_bits_alone_as_in_any_batch(sizes, loss, batch_norm, dtype):
    """A served row is often alone; a product of one row (or one output column) summed in
    another order than the batch's would make its answer depend on its company."""
    if nncore.build_info()["double_kernel"] == "eigen":
        pytest.skip("the baseline build multiplies with Eigen's kernel, whose sums for a few rows "
                    "of a layer of width not a multiple of 4 run in another order")
    rng = np.random.default_rng(0)
    net = nncore.Network(sizes, "relu", loss=loss, random_state=0, dtype=dtype, n_threads=2,
                         batch_norm=batch_norm)
    X = rng.normal(size=(2100, sizes[0])).astype(dtype)  # several blocks, on two threads
    if batch_norm:
        net.set_batchnorm_statistics(X)
    everything = net.predict(X)
    for batch in (1, 2, 3, 10, 100):
        for start in range(0, 2100, 131):
            np.testing.assert_array_equal(net.predict(X[start:start + batch]),
                                          everything[start:start + batch])
