"""Same parameters, same model: hundreds of random hyperparameter combinations, each fitted by
scikit-learn and by nncore with the same random_state, must give the same fit.

Every case draws (from its own seed) a task — regression, multi-output regression, Poisson,
binary, multiclass, multilabel — and scikit-learn parameters: solver, activation, schedule,
batch size, momentum, alpha, shuffle, early stopping, warm start (a second fit), partial_fit
calls after the fit, sample weights and the input dtype. Compared: n_iter_, t_, loss_curve_, validation_scores_, the weights and
the predictions.

How close is "the same": both libraries run the same formulas in a different order of floating-
point operations, so float64 runs agree to ~1e-12 at first and the difference grows with every
step by the conditioning of the run. A long run on a steep or saturated loss can amplify it
until the curves part (they stay equal for the first epochs, then drift): such a case is
accepted only if its first epochs agree to the tight tolerance, and it is reported, not hidden —
`test_drift_is_rare` counts them. float32 runs are compared to float32 precision.
"""

import warnings

import numpy as np
import pytest
import sklearn.neural_network as sk
from sklearn.exceptions import ConvergenceWarning

import nncore

N_CASES = 240
TASKS = ("regression", "multi_output", "poisson", "binary", "multiclass", "multilabel")
DRIFTED: dict[int, str] = {}


def case_params(case):
    """(task, constructor parameters, fit options) of one case, drawn from its seed."""
    rng = np.random.default_rng(1000 + case)
    pick = lambda options: options[rng.integers(len(options))]  # noqa: E731
    task = TASKS[case % len(TASKS)]
    solver = pick(["sgd", "sgd", "adam", "adam", "lbfgs"])
    params = dict(
        hidden_layer_sizes=pick([(5,), (7, 4), (3, 6, 4)]),
        activation=pick(["identity", "logistic", "tanh", "relu"]),
        solver=solver,
        alpha=pick([0.0, 1e-4, 0.01, 0.3]),
        batch_size=pick(["auto", 1, 7, 16, 64]),
        learning_rate=pick(["constant", "invscaling", "adaptive"]),
        learning_rate_init=pick([0.001, 0.01, 0.05]),
        power_t=pick([0.25, 0.5]),
        max_iter=int(rng.integers(2, 9)),
        shuffle=bool(rng.integers(2)),
        random_state=int(rng.integers(1000)),
        tol=pick([1e-4, 1e-2]),
        momentum=pick([0.0, 0.5, 0.9]),
        nesterovs_momentum=bool(rng.integers(2)),
        early_stopping=bool(rng.integers(3) == 0) and solver != "lbfgs",
        validation_fraction=pick([0.1, 0.25]),
        n_iter_no_change=pick([1, 2, 10]),
        warm_start=bool(rng.integers(4) == 0),
    )
    if task == "poisson":
        params["loss"] = "poisson"
        params["learning_rate_init"] = min(params["learning_rate_init"], 0.01)
    options = dict(
        dtype=pick([np.float64, np.float64, np.float32]),
        sample_weight=bool(rng.integers(4) == 0),
        n_samples=int(rng.integers(40, 90)),
        data_seed=int(rng.integers(1000)),
        partial_fit=bool(rng.integers(4) == 0) and solver != "lbfgs",
    )
    return task, params, options


def case_data(task, n, seed, dtype):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    score = X[:, 0] - 0.5 * X[:, 1] * X[:, 2] + 0.3 * rng.normal(size=n)
    if task == "regression":
        y = score
    elif task == "multi_output":
        y = np.column_stack([score, X[:, 3] - X[:, 4], 0.5 * score + X[:, 1]])
    elif task == "poisson":
        y = rng.poisson(np.exp(0.5 * np.tanh(score))).astype(float)
    elif task == "binary":
        y = (score > 0).astype(int)
    elif task == "multiclass":
        y = np.digitize(score, [-0.7, 0.0, 0.7])
    else:
        y = np.column_stack([score > 0, X[:, 3] > 0.3, X[:, 4] < 0]).astype(int)
    return X.astype(dtype), y


def fit(estimator, X, y, sample_weight, warm_start, partial_fit=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's overflow on a steep run
        warnings.filterwarnings("ignore", "Got `batch_size` less than 1")  # both say it
        estimator.fit(X, y, sample_weight=sample_weight)
        if warm_start:  # a second fit continues from the first
            estimator.set_params(max_iter=3)
            estimator.fit(X, y, sample_weight=sample_weight)
        if partial_fit:  # then two partial_fit calls, on two halves
            half = len(X) // 2
            for part in (slice(0, half), slice(half, None)):
                estimator.partial_fit(X[part], y[part], sample_weight=None
                                      if sample_weight is None else sample_weight[part])
    return estimator


def compare(ours, theirs, X, classifier, rtol):
    """Raises AssertionError at the first difference beyond rtol."""
    assert ours.n_iter_ == theirs.n_iter_, (ours.n_iter_, theirs.n_iter_)
    if hasattr(theirs, "loss_curve_"):
        assert ours.t_ == theirs.t_
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol, atol=rtol)
        if theirs.validation_scores_ is not None:
            np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_,
                                       rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol, atol=rtol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.dtype == b.dtype, (a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max()))
    if classifier:
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X),
                                   rtol=rtol, atol=rtol)
    else:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=rtol,
                                   atol=rtol * max(1.0, np.abs(theirs.predict(X)).max()))


@pytest.mark.parametrize("case", range(N_CASES))
def test_same_model_as_scikit_learn(case):
    task, params, options = case_params(case)
    X, y = case_data(task, options["n_samples"], options["data_seed"], options["dtype"])
    weights = (np.random.default_rng(case).uniform(0.2, 2.0, len(X))
               if options["sample_weight"] else None)
    classifier = task in ("binary", "multiclass", "multilabel")
    classes = (nncore.MLPClassifier, sk.MLPClassifier) if classifier else (
        nncore.MLPRegressor, sk.MLPRegressor)
    theirs = classes[1](**params)
    try:
        fit(theirs, X, y, weights, params["warm_start"], options["partial_fit"])
    except ValueError as exc:  # scikit-learn's own refusal (e.g. a one-member class)
        with pytest.raises(ValueError, match=str(exc)[:40].replace("(", r"\(")
                           .replace("[", r"\[")):
            fit(classes[0](**params), X, y, weights, params["warm_start"],
                options["partial_fit"])
        return
    ours = fit(classes[0](**params), X, y, weights, params["warm_start"], options["partial_fit"])

    # float32 with lbfgs: both models end in float64, but scipy hands scikit-learn's objective
    # float32 copies of the iterate when the start is float32 (its float32 weights), so its
    # forward passes run in float32: the same model to float32 precision only.
    rtol = 2e-3 if options["dtype"] == np.float32 else 1e-7
    try:
        compare(ours, theirs, X, classifier, rtol)
    except AssertionError as full:
        # Drift: the same fit for the first epochs, then apart. Refit both for 2 epochs.
        if params["max_iter"] <= 2 or params["solver"] == "lbfgs" or options["partial_fit"]:
            raise
        short = dict(params, max_iter=2, early_stopping=False)
        ours2 = fit(classes[0](**short), X, y, weights, False)
        theirs2 = fit(classes[1](**short), X, y, weights, False)
        compare(ours2, theirs2, X, classifier, rtol)
        DRIFTED[case] = f"{task} {params}: {str(full).splitlines()[0:3]}"


def test_drift_is_rare():
    """The cases that drifted after their first epochs (run after the cases above): printed,
    and fewer than 5% of them."""
    for case, what in DRIFTED.items():
        print(f"case {case} drifted after agreeing for 2 epochs: {what}")
    assert len(DRIFTED) <= N_CASES // 20, DRIFTED
