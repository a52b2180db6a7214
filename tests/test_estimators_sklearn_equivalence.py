"""The drop-in claim: with the same random_state, nncore's estimators follow scikit-learn's
trajectories (float64) and pass scikit-learn's estimator checks."""

import itertools
import warnings

import numpy as np
import pytest
import sklearn.neural_network as sk
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

import nncore

SOLVERS = {
    "sgd": dict(solver="sgd", momentum=0.0),
    "momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
    "nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    "invscaling": dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.05,
                       power_t=0.3),
    "adam": dict(solver="adam", learning_rate_init=0.01),
}
TASKS = ("regression", "binary", "multiclass")
ACTIVATIONS = ("identity", "logistic", "tanh", "relu")


def task_data(task, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(57, 5))
    score = X[:, 0] - 0.5 * X[:, 1] * X[:, 2] + 0.3 * rng.normal(size=57)
    if task == "regression":
        return X, score
    if task == "binary":
        return X, (score > 0).astype(int)
    return X, np.digitize(score, [-0.7, 0.0, 0.7])  # 4 classes


def fit_both(task, params, **fit_kwargs):
    X, y = task_data(task)
    cls = (nncore.MLPRegressor, sk.MLPRegressor) if task == "regression" else (
        nncore.MLPClassifier, sk.MLPClassifier)
    fitted = []
    for estimator_class in cls:
        est = estimator_class(**{**dict(hidden_layer_sizes=(6, 4), batch_size=16, max_iter=6,
                                        random_state=11), **params})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted.append(est.fit(X, y, **fit_kwargs))
    return fitted


def assert_same_fit(ours, theirs, rtol=1e-7):
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


@pytest.mark.parametrize("solver,task,activation",
                         list(itertools.product(SOLVERS, TASKS, ACTIVATIONS)))
@pytest.mark.parametrize("shuffle", [False, True])
def test_same_trajectory_as_scikit_learn(solver, task, activation, shuffle):
    ours, theirs = fit_both(task, dict(SOLVERS[solver], activation=activation, shuffle=shuffle))
    assert ours.out_activation_ == theirs.out_activation_
    assert_same_fit(ours, theirs)
    X, _ = task_data(task, seed=1)
    np.testing.assert_allclose(ours.predict(X) if task == "regression" else
                               ours.predict_proba(X),
                               theirs.predict(X) if task == "regression" else
                               theirs.predict_proba(X), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("task", TASKS)
def test_same_trajectory_with_sample_weight_and_alpha(task):
    weights = np.random.default_rng(3).uniform(0.1, 3.0, 57)
    ours, theirs = fit_both(task, dict(solver="sgd", alpha=0.05), sample_weight=weights)
    assert_same_fit(ours, theirs)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_negative_sample_weights_as_scikit_learn_takes_them(task, solver):
    """scikit-learn accepts negative sample weights (each minibatch a weighted mean Σwℓ/Σw);
    nncore refused them."""
    weights = np.random.default_rng(4).uniform(-0.5, 3.0, 57)
    assert weights.min() < 0
    ours, theirs = fit_both(task, dict(solver=solver, alpha=0.05), sample_weight=weights)
    if solver == "lbfgs":  # scipy's line searches amplify rounding: the same fit, not bits
        np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
        assert ours.n_iter_ == theirs.n_iter_
    else:
        assert_same_fit(ours, theirs)


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_same_early_stopping_as_scikit_learn(task):
    """Same validation split (binary targets: stratified, as scikit-learn), scores, best weights."""
    ours, theirs = fit_both(task, dict(solver="sgd", early_stopping=True, n_iter_no_change=2,
                                       validation_fraction=0.2))
    assert_same_fit(ours, theirs)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-7)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=1e-9)


def test_same_adaptive_stopping_as_scikit_learn():
    ours, theirs = fit_both("regression", dict(solver="sgd", learning_rate="adaptive",
                                               learning_rate_init=0.5, n_iter_no_change=1,
                                               tol=0.5, max_iter=30))
    assert_same_fit(ours, theirs)


def test_same_lbfgs_as_scikit_learn():
    for task in TASKS:
        ours, theirs = fit_both(task, dict(solver="lbfgs", max_iter=15))
        assert ours.n_iter_ == theirs.n_iter_
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-8)
        for a, b in zip(ours.coefs_, theirs.coefs_):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_same_partial_fit_as_scikit_learn():
    X, y = task_data("multiclass")
    ours = nncore.MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", random_state=0)
    theirs = sk.MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", random_state=0)
    for _ in range(3):
        for est in (ours, theirs):
            est.partial_fit(X[:30], y[:30], classes=np.unique(y))
            est.partial_fit(X[30:], y[30:])
    assert_same_fit(ours, theirs)


SAMPLE_WEIGHT_CHECKS = ("check_sample_weight_equivalence_on_dense_data",
                        "check_sample_weight_equivalence_on_sparse_data")


@parametrize_with_checks([nncore.MLPClassifier(max_iter=100), nncore.MLPRegressor(max_iter=100)])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [
    # scikit-learn's own test suite runs these checks on its MLP with exactly these settings
    nncore.MLPClassifier(solver="lbfgs"),
    nncore.MLPRegressor(solver="sgd", tol=1e-2, random_state=42),
], ids=["classifier-lbfgs", "regressor-sgd"])
@pytest.mark.parametrize("check_name", SAMPLE_WEIGHT_CHECKS)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sample_weight_equivalence(estimator, check_name):
    import sklearn.utils.estimator_checks as checks

    getattr(checks, check_name)(type(estimator).__name__, estimator)
