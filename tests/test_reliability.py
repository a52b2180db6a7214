"""Reliability of the estimators: bad input leaves a fitted model unchanged, divergence keeps the
last finite state, Ctrl-C stops a fit within a fraction of a second, threads and processes."""

import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris

import nncore

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X_iris, y_iris = load_iris(return_X_y=True)
X_iris = (X_iris - X_iris.mean(0)) / X_iris.std(0)


def fitted_classifier(**kwargs):
    return nncore.MLPClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=0, solver="sgd",
                                **kwargs).fit(X_iris, y_iris)


def state(est):
    return ([c.copy() for c in est.coefs_ + est.intercepts_], est.n_iter_, list(est.loss_curve_),
            est.classes_.copy(), est.n_features_in_)


def assert_unchanged(before, after):
    for a, b in zip(before[0], after[0]):
        np.testing.assert_array_equal(a, b)
    assert before[1:3] == after[1:3] and before[4] == after[4]
    np.testing.assert_array_equal(before[3], after[3])


X_nan = X_iris.copy()
X_nan[3, 1] = np.nan
X_inf = X_iris.copy()
X_inf[0, 0] = np.inf
X_obj = X_iris.astype(object)
X_obj[2, 2] = "abc"

# (id, call on a fitted classifier, exception, message fragment)
ESTIMATOR_CASES = [
    ("fit-nan-X", lambda e: e.fit(X_nan, y_iris), ValueError, "NaN"),
    ("fit-inf-X", lambda e: e.fit(X_inf, y_iris), ValueError, "infinity"),
    ("fit-nan-y", lambda e: nncore.MLPRegressor().fit(X_iris, np.full(150, np.nan)), ValueError,
     "NaN"),
    ("fit-1d-X", lambda e: e.fit(X_iris[:, 0], y_iris), ValueError, "Expected 2D array"),
    ("fit-3d-X", lambda e: e.fit(X_iris[None], y_iris), ValueError, "dim 3"),
    ("fit-empty", lambda e: e.fit(X_iris[:0], y_iris[:0]), ValueError, "0 sample"),
    ("fit-rows-mismatch", lambda e: e.fit(X_iris, y_iris[:-1]), ValueError, "inconsistent"),
    ("fit-object-X", lambda e: e.fit(X_obj, y_iris), ValueError, "could not convert"),
    ("fit-complex-X", lambda e: e.fit(X_iris + 1j, y_iris), ValueError, "Complex data"),
    ("fit-string-regression-y",
     lambda e: nncore.MLPRegressor().fit(X_iris, np.array(["a", "b", "c"])[y_iris]),
     TypeError, "y must contain numbers, got dtype <U1"),
    ("partial-fit-new-class", lambda e: e.partial_fit(X_iris[:3], [0, 1, 7]), ValueError,
     "classes not in"),
    ("partial-fit-wrong-width", lambda e: e.partial_fit(X_iris[:, :3], y_iris), ValueError,
     "features"),
    ("predict-wrong-width", lambda e: e.predict(X_iris[:, :3]), ValueError,
     "X has 3 features, but MLPClassifier is expecting 4"),
    ("predict-nan", lambda e: e.predict_proba(X_nan), ValueError, "NaN"),
    ("predict-empty", lambda e: e.predict(X_iris[:0]), ValueError, "0 sample"),
    ("validation-too-small", lambda e: nncore.MLPClassifier(
        early_stopping=True, validation_fraction=0.05).fit(X_iris[:20], y_iris[:20]),
     ValueError, "validation set is too small"),
    ("float32-overflow", lambda e: nncore.MLPRegressor(dtype="float32").fit(
        np.full((5, 2), 1e300), np.ones(5)), ValueError, "too large for float32"),
]
HYPERPARAMETER_CASES = [
    ("hidden_layer_sizes", 0), ("hidden_layer_sizes", (4, -1)), ("alpha", -1.0),
    ("learning_rate_init", 0.0), ("learning_rate_init", -0.1), ("batch_size", 0),
    ("batch_size", "big"), ("max_iter", 0), ("momentum", 1.5), ("momentum", -0.1),
    ("beta_1", 1.0), ("beta_2", -0.1), ("epsilon", 0.0), ("epsilon", -1e-8),
    ("validation_fraction", 1.0), ("n_iter_no_change", 0), ("tol", -1.0), ("power_t", -0.5),
    ("max_fun", 0), ("solver", "newton"), ("activation", "swish"), ("learning_rate", "fast"),
    ("weight_decay", -0.01), ("init", "orthogonal"), ("dtype", "float16"),
    ("loss_reduction", "max"), ("lr_decay", 0.0), ("lr_step_size", 0), ("warmup_epochs", -1),
    ("shuffle", "yes"),
]


@pytest.mark.parametrize("case", ESTIMATOR_CASES, ids=[c[0] for c in ESTIMATOR_CASES])
def test_bad_input_to_a_fitted_estimator_changes_nothing(case):
    _, call, exc, fragment = case
    est = fitted_classifier()
    before = state(est)
    with pytest.raises(exc) as info:
        call(est)
    assert fragment in str(info.value)
    assert_unchanged(before, state(est))


@pytest.mark.parametrize("name,value", HYPERPARAMETER_CASES,
                         ids=[f"{n}={v!r}" for n, v in HYPERPARAMETER_CASES])
def test_hyperparameter_out_of_range_names_it_and_changes_nothing(name, value):
    est = fitted_classifier()
    before = state(est)
    est.set_params(**{name: value})
    with pytest.raises((ValueError, TypeError)) as info:
        est.fit(X_iris, y_iris)
    message = str(info.value)
    # names it, says the range and the value (scikit-learn's wording, mirrored)
    assert f"'{name}'" in message and "Got" in message or (
        name == "hidden_layer_sizes" and "hidden_layer_sizes must be > 0, got" in message)
    assert_unchanged(before, state(est))


def test_non_contiguous_and_read_only_inputs_work():
    X_f = np.asfortranarray(X_iris)
    wide = np.repeat(X_iris, 2, axis=1)  # every column twice
    wide.flags.writeable = False
    X_strided = wide[:, ::2]  # X_iris's values through a read-only, non-contiguous view
    assert not X_strided.flags.c_contiguous and not X_strided.flags.writeable
    y_ro = y_iris.copy()
    y_ro.flags.writeable = False
    a = fitted_classifier()
    b = nncore.MLPClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=0,
                             solver="sgd").fit(X_f, y_ro)
    c = nncore.MLPClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=0,
                             solver="sgd").fit(X_strided, y_iris)
    for other in (b, c):
        np.testing.assert_array_equal(a.predict_proba(X_iris), other.predict_proba(X_iris))
    np.testing.assert_array_equal(a.predict_proba(X_strided), a.predict_proba(X_iris))
    np.testing.assert_array_equal(a.predict_proba(X_f), a.predict_proba(X_iris))


def test_divergence_keeps_last_finite_state_and_partial_fit_continues():
    """Poisson counts near 20 with a step size of 1000: the first step sends exp(f) past the
    float64 range. The fit stops with a clear error, the model is back at the last parameters
    with a finite loss (here: the initial ones), and partial_fit with a sane step size carries
    on from there."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = rng.poisson(np.exp(3 + 0.3 * X[:, 0]))
    reg = nncore.MLPRegressor(loss="poisson", hidden_layer_sizes=(16,), solver="sgd",
                              learning_rate_init=1000.0, max_iter=100, random_state=0)
    with pytest.raises(nncore.DivergenceError) as info:
        reg.fit(X, y)
    assert "diverged in epoch" in str(info.value)
    assert "last state with a finite loss" in str(info.value)
    assert all(np.isfinite(c).all() for c in reg.coefs_ + reg.intercepts_)
    assert len(reg.history_) == reg.n_iter_
    assert np.isfinite(reg.predict(X)).all()
    reg.set_params(learning_rate_init=1e-3)
    losses = []
    for _ in range(20):
        reg.partial_fit(X, y)  # a fresh optimiser at the new step size, from those parameters
        losses.append(reg.loss_)
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert reg.score(X, y) > 0


def test_ctrl_c_stops_a_long_fit_quickly_and_leaves_a_usable_model():
    script = textwrap.dedent("""
        import os, signal, threading, time, warnings
        import numpy as np, nncore
        # A shell that starts jobs in the background (as some CI runners do) hands its children
        # SIGINT ignored; Python then installs no KeyboardInterrupt handler. Install it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        rng = np.random.default_rng(0)
        X = rng.normal(size=(60000, 32)).astype(np.float32)
        y = (X[:, 0] > 0).astype(int)
        est = nncore.MLPClassifier(hidden_layer_sizes=(128, 128), batch_size=32, max_iter=10000,
                                   solver="sgd", n_iter_no_change=10000, random_state=0)
        sent = {}
        def interrupt():
            time.sleep(1.5)
            sent["t"] = time.perf_counter()
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=interrupt, daemon=True).start()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X, y)
        latency = time.perf_counter() - sent["t"]
        print("latency", latency)
        print("warning", [str(w.message) for w in caught])
        print("epochs", est.n_iter_, len(est.history_), len(est.loss_curve_))
        print("usable", est.score(X[:2000], y[:2000]))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    out = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert float(out["latency"]) < 0.5
    assert "Training interrupted by user." in out["warning"]
    n_iter, n_history, n_curve = map(int, out["epochs"].split())
    assert n_iter == n_history == n_curve  # history up to the last whole epoch
    assert float(out["usable"]) > 0.5


def fit_one(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3000, 20))
    y = X[:, 0] - 2 * X[:, 1] + rng.normal(size=3000)
    est = nncore.MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=15, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return np.concatenate([c.ravel() for c in est.coefs_ + est.intercepts_])


def test_parallel_threads_give_the_sequential_results():
    sequential = [fit_one(s) for s in (1, 2)]
    results = {}
    threads = [threading.Thread(target=lambda s=s: results.__setitem__(s, fit_one(s)))
               for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s, expected in zip((1, 2), sequential):
        np.testing.assert_array_equal(results[s], expected)


def test_fits_in_joblib_worker_processes():
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=2, backend="loky")(delayed(fit_one)(s) for s in (3, 4))
    for s, got in zip((3, 4), parallel):
        np.testing.assert_array_equal(got, fit_one(s))


def test_bitwise_reproducible_run_to_run():
    np.testing.assert_array_equal(fit_one(5), fit_one(5))


def test_n_threads_is_checked():
    with pytest.raises(ValueError, match="n_threads must be an integer >= 1"):
        nncore.Network([2, 1], n_threads=0)
    with pytest.raises(ValueError, match="n_threads"):
        nncore.MLPRegressor(n_threads=0).fit(X_iris, y_iris)


def test_a_network_too_large_for_memory_says_how_much_it_needs():
    with pytest.raises(MemoryError, match=r"parameters: .* need [\d,.]+ GiB .* this machine has"):
        nncore.MLPClassifier(hidden_layer_sizes=(10**9,)).fit(X_iris, y_iris)


def test_first_step_divergence_reads_naturally():
    net = nncore.Network([4, 1], "identity", "poisson", random_state=0)
    net.params[:] = 10.0  # exp(f) overflows on the first batch
    with pytest.raises(nncore.DivergenceError, match="non-finite at the first step of this epoch"):
        net.train_epoch(X_iris * 100, np.full(150, 20.0), learning_rate=1e-3, batch_size=150)
    clf = nncore.MLPRegressor(loss="poisson", solver="sgd", learning_rate_init=1e3,
                              hidden_layer_sizes=(3,), random_state=0)
    with pytest.raises(nncore.DivergenceError) as info:
        clf.fit(X_iris * 100, np.full(150, 20.0))
    # scikit-learn's sentence first (code matching its message keeps working), then nncore's.
    sklearn_sentence = ("Solver produced non-finite parameter weights. The input data may "
                        "contain large values and need to be preprocessed. ")
    assert str(info.value).startswith(sklearn_sentence + "MLPRegressor diverged in epoch ")
    assert ": the loss or an updated parameter became non-finite" in str(info.value)
    assert "diverged" not in str(info.value).split(":", 1)[1]  # said once, not twice
