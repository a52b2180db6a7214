"""scikit-learn's parameters keep scikit-learn's meaning: the five places where nncore used to
differ, each against scikit-learn, and nncore's improvements as the opt-in extras that replace
them (schedule=, stratify=, mean_output_gradient=); the network-level conventions behind them
(loss_clip_epsilon, sum_output_gradient) against plain NumPy; partial_fit's fast paths against
the scikit-learn functions they stand in for."""

import warnings

import numpy as np
import pytest
import sklearn.neural_network as sk
from scipy.special import expit, softmax
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import unique_labels

import nncore
from nncore.estimators import _labels_of


def both(cls_name, X, y, **params):
    fitted = []
    for module in (nncore, sk):
        est = getattr(module, cls_name)(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted.append(est.fit(X, y))
    return fitted


def data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    score = X[:, 0] - X[:, 1] * X[:, 2] + 0.3 * rng.normal(size=n)
    return X, score


def test_multi_output_gradient_is_scikit_learns():
    X, score = data()
    Y = np.column_stack([score, X[:, 3], score - X[:, 4]])
    ours, theirs = both("MLPRegressor", X, Y, solver="sgd", hidden_layer_sizes=(8,),
                        learning_rate_init=0.01, max_iter=5, random_state=1)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(ours.coefs_[0], theirs.coefs_[0], rtol=1e-9, atol=1e-12)
    # The opt-in: the gradient of the loss as reported (mean over the 3 outputs), which is
    # what scikit-learn's would be with a learning rate 3 times smaller.
    mean = nncore.MLPRegressor(solver="sgd", hidden_layer_sizes=(8,), learning_rate_init=0.03,
                               max_iter=5, random_state=1, momentum=0.0, alpha=0.0,
                               mean_output_gradient=True)
    sk_third = sk.MLPRegressor(solver="sgd", hidden_layer_sizes=(8,), learning_rate_init=0.01,
                               max_iter=5, random_state=1, momentum=0.0, alpha=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mean.fit(X, Y)
        sk_third.fit(X, Y)
    np.testing.assert_allclose(mean.loss_curve_, sk_third.loss_curve_, rtol=1e-9)


def test_early_stopping_stratifies_as_scikit_learn():
    X, y = load_digits(return_X_y=True)
    X = X / 16
    params = dict(hidden_layer_sizes=(16,), early_stopping=True, random_state=0, max_iter=60)
    ours, theirs = both("MLPClassifier", X, y, **params)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    # stratify=True: the multiclass split is stratified as well (a different split).
    stratified = nncore.MLPClassifier(**params, stratify=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        stratified.fit(X, y)
    assert stratified.validation_scores_[:3] != ours.validation_scores_[:3]
    # stratify=False: not even binary targets (no error for a one-member class).
    Xb, yb = X[:40], (np.arange(40) == 0).astype(int)
    with pytest.raises(ValueError, match="least populated class"):
        nncore.MLPClassifier(early_stopping=True, max_iter=2).fit(Xb, yb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        nncore.MLPClassifier(early_stopping=True, max_iter=2, stratify=False).fit(Xb, yb)


@pytest.mark.parametrize("learning_rate", ["invscaling", "adaptive"])
def test_adam_ignores_learning_rate_and_schedule_applies_it(learning_rate):
    X, score = data()
    y = (score > 0).astype(int)
    params = dict(hidden_layer_sizes=(8,), learning_rate_init=0.05, max_iter=15,
                  random_state=0, power_t=0.5)
    ours, theirs = both("MLPClassifier", X, y, learning_rate=learning_rate, **params)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        constant = nncore.MLPClassifier(**params).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, constant.loss_curve_, rtol=1e-12)
    if learning_rate == "invscaling":
        scheduled = nncore.MLPClassifier(schedule="invscaling", **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            scheduled.fit(X, y)
        assert scheduled.schedule_.learning_rate < 0.05 / 10
        assert scheduled.loss_curve_[-1] != pytest.approx(ours.loss_curve_[-1])


def test_learning_rate_takes_only_scikit_learns_values():
    with pytest.raises(ValueError, match="learning_rate"):
        nncore.MLPClassifier(learning_rate="cosine").fit([[0.0], [1.0]], [0, 1])


def test_lbfgs_upcasts_float32_as_scikit_learn():
    X, score = data()
    X32 = X.astype(np.float32)
    ours, theirs = both("MLPRegressor", X32, score, solver="lbfgs", hidden_layer_sizes=(8,),
                        max_iter=30, random_state=0)
    assert ours.coefs_[0].dtype == theirs.coefs_[0].dtype == np.float64
    assert ours.predict(X32).dtype == np.float64
    np.testing.assert_allclose(ours.predict(X32), theirs.predict(X32), rtol=2e-3, atol=2e-3)


def test_clipped_log_loss_value_as_scikit_learn():
    """A binary ReLU L-BFGS fit whose probabilities saturate: scikit-learn's loss value clips
    them at machine epsilon, which its line search and tol see."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 4)) * 4
    y = (X[:, 0] > 0).astype(int)
    ours, theirs = both("MLPClassifier", X, y, solver="lbfgs", hidden_layer_sizes=(20,),
                        max_iter=40, random_state=3, alpha=1e-5)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-7,
                               atol=1e-10)


# ---- the network-level conventions against NumPy -----------------------------------------------
@pytest.mark.parametrize("loss,K", [("logistic", 1), ("logistic", 3), ("softmax", 4)])
def test_loss_clip_epsilon_value_and_unclipped_gradient(loss, K):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)) * 30  # saturating scores
    net = nncore.Network([3, K], "identity", loss, random_state=0)
    if loss == "softmax":
        Y = np.eye(K)[rng.integers(K, size=50)]
    else:
        Y = rng.integers(2, size=(50, K)).astype(float)
    f = net.forward(X)
    eps = np.finfo(np.float64).eps
    if loss == "softmax":
        p = np.clip(softmax(f, axis=1), eps, 1 - eps)
        expected = -np.mean(np.sum(Y * np.log(p), axis=1))
    else:
        p = np.clip(expit(f), eps, 1 - eps)
        expected = -np.mean(np.sum(Y * np.log(p) + (1 - Y) * np.log(1 - p), axis=1))
    unclipped_value, unclipped_grad = net.loss_and_grad(X, Y)
    unclipped_grad = unclipped_grad.copy()
    net.loss_clip_epsilon = eps
    value, grad = net.loss_and_grad(X, Y)
    assert value == pytest.approx(expected, rel=1e-12)
    assert value < unclipped_value  # saturated rows cost at most −log eps
    np.testing.assert_array_equal(grad, unclipped_grad)
    with pytest.raises(ValueError, match="loss_clip_epsilon"):
        net.loss_clip_epsilon = 0.7


def test_sum_output_gradient_scales_the_data_gradient_and_hvp():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(30, 4)), rng.normal(size=(30, 3))
    net = nncore.Network([4, 5, 3], "tanh", "squared_error", alpha=0.1, random_state=0)
    value, grad = net.loss_and_grad(X, Y)
    grad = grad.copy()
    data = net.prepare(X, Y)
    v = rng.normal(size=net.n_params)
    _, hv, _ = net.hessian_vector_product(data, v, scale=1 / 30)
    net.alpha = 0.0
    _, data_grad = net.loss_and_grad(X, Y)
    data_grad = data_grad.copy()
    _, data_hv, _ = net.hessian_vector_product(data, v, scale=1 / 30)
    net.alpha = 0.1
    net.sum_output_gradient = True
    value_sum, grad_sum = net.loss_and_grad(X, Y)
    assert value_sum == value  # the value stays averaged over outputs
    np.testing.assert_allclose(grad_sum, grad + 2 * data_grad, rtol=1e-12, atol=1e-14)
    _, hv_sum, _ = net.hessian_vector_product(data, v, scale=1 / 30)
    np.testing.assert_allclose(hv_sum, hv + 2 * data_hv, rtol=1e-10, atol=1e-12)
    assert net.copy().sum_output_gradient


# ---- partial_fit's fast paths -------------------------------------------------------------------
@pytest.mark.parametrize("y", [
    np.array([0, 1, 1, 0]), np.array([3.0, 1.0, 2.0, 3.0]), np.array([-1, 5, 5, 9, 9]),
    np.array(["b", "a", "c", "a"], dtype=object),
])
def test_fast_label_paths_equal_scikit_learns(y):
    assert np.array_equal(_labels_of(y), unique_labels(y))
    est = nncore.MLPClassifier(hidden_layer_sizes=(3,), max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(np.zeros((len(y), 2)), y)
    np.testing.assert_array_equal(est._indicators(y, np.float32),
                                  LabelBinarizer().fit(y).transform(y).astype(np.float32))


def test_unknown_label_errors_are_unchanged():
    est = nncore.MLPClassifier(hidden_layer_sizes=(3,))
    est.partial_fit(np.zeros((4, 2)), [0, 1, 1, 0], classes=[0, 1])
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`"):
        est.partial_fit(np.zeros((2, 2)), [0, 2])
    with pytest.raises(ValueError, match="Unknown label type"):
        est.partial_fit(np.zeros((2, 2)), [0.0, 0.5])


def test_parameters_are_validated_again_after_a_change():
    X, y = np.zeros((4, 2)), [0, 1, 1, 0]
    est = nncore.MLPClassifier(hidden_layer_sizes=(3,))
    est.partial_fit(X, y, classes=[0, 1])
    est.partial_fit(X, y)
    est.set_params(alpha=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        est.partial_fit(X, y)
    est.alpha = 1e-4
    est.partial_fit(X, y)
    est.hidden_layer_sizes = [3]
    est.partial_fit(X, y)
    est.hidden_layer_sizes.append(0)  # changed in place: validated again
    with pytest.raises(ValueError):
        est.partial_fit(X, y)


def test_model_files_from_before_schedule_keep_training_as_they_did():
    """A document written before `schedule`/`stratify` existed: learning_rate then drove every
    solver (and took nncore's schedules), early stopping stratified multiclass targets."""
    X, score = data()
    y = np.digitize(score, [-0.5, 0.5])
    est = nncore.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, schedule="cosine",
                               random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    doc, arrays = est.to_document()
    for name in ("schedule", "stratify", "learning_rate"):
        doc["params"].pop(name)
    for old, solver, expected in (("cosine", "adam", ("cosine", "constant")),
                                  ("invscaling", "adam", ("invscaling", "constant")),
                                  ("invscaling", "sgd", (None, "invscaling"))):
        old_doc = {**doc, "params": {**doc["params"], "learning_rate": old, "solver": solver}}
        loaded = nncore.MLPClassifier.from_document(old_doc, arrays)
        assert (loaded.schedule, loaded.learning_rate) == expected
        assert loaded.stratify is True
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("cls_name", ["MLPClassifier", "MLPRegressor"])
def test_shared_parameters_have_scikit_learns_defaults(cls_name):
    """nncore's defaults come from the core's table (nncore._core.defaults); where scikit-learn
    has the parameter, they are its defaults."""
    ours = getattr(nncore, cls_name)().get_params()
    theirs = getattr(sk, cls_name)().get_params()
    shared = set(ours) & set(theirs)
    assert {"power_t", "tol", "beta_1", "beta_2", "epsilon", "n_iter_no_change"} <= shared
    assert {name: ours[name] for name in shared} == {name: theirs[name] for name in shared}
    from nncore import _core

    for name in ("power_t", "tol", "beta_1", "beta_2", "epsilon", "n_iter_no_change"):
        assert ours[name] == _core.defaults[name]
    assert (ours["lr_decay"], ours["lr_step_size"]) == (_core.defaults["gamma"],
                                                        _core.defaults["step_size"])
