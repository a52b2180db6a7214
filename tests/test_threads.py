"""Threads: results that do not depend on the thread count, a default that follows the limits
around it (OMP_NUM_THREADS, threadpoolctl, joblib's workers), and one model shared by threads —
predictions in parallel, training beside them seen a whole epoch at a time."""

import os
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
import threadpoolctl
from sklearn.exceptions import ConvergenceWarning

import nncore

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _train(sizes, dtype, threads, batch, X, y, **kwargs):
    net = nncore.Network(sizes, "relu", dtype=dtype, random_state=0, n_threads=threads, **kwargs)
    nncore.train(net, X, y, epochs=2, batch_size=batch, learning_rate=1e-3, random_state=0)
    return net


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes, batch", [
    ([300, 256, 256, 1], 300),   # every product split over threads
    ([37, 515, 131, 3], 301),    # widths off every block and panel edge
])
def test_the_thread_count_changes_no_bit(dtype, sizes, batch):
    """Each element of a product is summed in one order whatever the column blocks, and every
    other pass is elementwise or combined in a fixed order: training, prediction and the loss give
    the same bits on 1, 2 and 3 threads (3 > cores on CI: more threads than cores too)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(900, sizes[0]))
    y = rng.normal(size=(900, sizes[-1]))
    nets = [_train(sizes, dtype, t, batch, X, y) for t in (1, 2, 3)]
    assert [net.n_threads for net in nets] == [1, 2, 3]
    for net in nets[1:]:
        np.testing.assert_array_equal(net.params, nets[0].params)
        np.testing.assert_array_equal(net.forward(X), nets[0].forward(X))
        assert net.loss(X, y) == nets[0].loss(X, y)
    again = _train(sizes, dtype, 2, batch, X, y)
    np.testing.assert_array_equal(again.params, nets[0].params)


def test_batch_norm_and_dropout_fits_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1024, 64))
    y = rng.normal(size=1024)
    nets = [_train([64, 512, 512, 1], "float64", t, 512, X, y, batch_norm=True,
                   dropout=(0.2, 0.5)) for t in (1, 2)]
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    np.testing.assert_array_equal(nets[0]._core.batchnorm_state, nets[1]._core.batchnorm_state)
    np.testing.assert_array_equal(nets[0].forward(X, training=True),
                                  nets[1].forward(X, training=True))


def test_the_default_follows_threadpoolctl_and_an_explicit_count_wins():
    limit = nncore.thread_limit()
    assert limit >= 1
    net, fixed = nncore.Network([4, 8, 1]), nncore.Network([4, 8, 1], n_threads=3)
    assert net.n_threads == limit and net.n_threads_requested is None
    entries = [e for e in threadpoolctl.threadpool_info() if e["internal_api"] == "nncore"]
    assert len(entries) == 1 and entries[0]["num_threads"] == limit
    assert entries[0]["user_api"] == "openmp"
    with threadpoolctl.threadpool_limits(limits=1):
        assert nncore.thread_limit() == 1
        assert net.n_threads == 1  # read at each call, not when the network was made
        assert fixed.n_threads == 3
        entry = next(e for e in threadpoolctl.threadpool_info() if e["internal_api"] == "nncore")
        assert entry["num_threads"] == 1
        est = nncore.MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
        est.fit(np.ones((20, 4)), np.arange(20.0))
        assert est.network_.n_threads == 1
    assert nncore.thread_limit() == limit and net.n_threads == limit
    with threadpoolctl.threadpool_limits(limits=2, user_api="openmp"):
        assert nncore.thread_limit() == 2
    # a pickled default stays "the default" on the machine that loads it
    import pickle

    assert pickle.loads(pickle.dumps(net)).n_threads_requested is None
    assert pickle.loads(pickle.dumps(fixed)).n_threads_requested == 3


@pytest.mark.parametrize("value, expected", [("1", 1), ("3", 3), ("2,1", 2), ("x", None),
                                             ("0", None)])
def test_omp_num_threads_sets_the_default(value, expected):
    """OMP_NUM_THREADS as OpenMP reads it (its first entry); a value that is not a positive integer
    is ignored: every usable CPU."""
    code = "import nncore; print(nncore.thread_limit(), nncore._core.usable_cpus())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS=value), check=True).stdout.split()
    limit, cpus = int(out[0]), int(out[1])
    assert limit == (expected if expected is not None else cpus)


def _threads_in_fit(estimator, X, y):
    """A scorer that reports the thread count the fitted model's network runs on."""
    return float(estimator.network_.n_threads)


def test_gridsearch_and_cross_val_score_workers_run_with_joblibs_limit():
    """Under loky, joblib starts each worker with OMP_NUM_THREADS = cores // n_jobs: that is what
    every fit there runs on (cores × cores threads before)."""
    import joblib
    from sklearn.model_selection import GridSearchCV, cross_val_score

    # joblib passes the parent's OMP_NUM_THREADS on when it is set (read as nncore reads it)
    inherited = os.environ.get("OMP_NUM_THREADS", "").split(",")[0]
    expected = (int(inherited) if inherited.isdigit() and int(inherited) >= 1
                else nncore._core.usable_cpus() if "OMP_NUM_THREADS" in os.environ
                else max(joblib.cpu_count() // 2, 1))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8))
    y = (X[:, 0] > 0).astype(int)
    model = nncore.MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
    search = GridSearchCV(model, {"alpha": [1e-4, 1e-3]}, cv=2, n_jobs=2,
                          scoring=_threads_in_fit).fit(X, y)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], expected)
    scores = cross_val_score(model, X, y, cv=2, n_jobs=2, scoring=_threads_in_fit)
    np.testing.assert_array_equal(scores, expected)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 20))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    clf = nncore.MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=5, random_state=0,
                               n_threads=2).fit(X, y)
    return clf, X, y


def _in_threads(n, f):
    """f(i) on n threads at once; the exceptions they raised."""
    errors = []
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait()
            f(i)
        except Exception as exc:  # noqa: BLE001 — the test reports them
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return errors


def test_many_threads_predict_on_one_model_and_get_the_single_thread_answers(fitted):
    clf, X, y = fitted
    expected = {"predict": clf.predict(X), "predict_proba": clf.predict_proba(X),
                "predict_log_proba": clf.predict_log_proba(X), "score": clf.score(X, y),
                "forward": clf.network_.forward(X), "loss": clf.network_.loss(X, y),
                "mean_loss": clf.mean_loss(X, y)}
    calls = {"predict": lambda: clf.predict(X), "predict_proba": lambda: clf.predict_proba(X),
             "predict_log_proba": lambda: clf.predict_log_proba(X),
             "score": lambda: clf.score(X, y), "forward": lambda: clf.network_.forward(X),
             "loss": lambda: clf.network_.loss(X, y), "mean_loss": lambda: clf.mean_loss(X, y)}
    names = list(calls)
    mismatches = []

    def work(i):
        for k in range(12):
            name = names[(i + k) % len(names)]
            got = calls[name]()
            if not np.array_equal(got, expected[name]):
                mismatches.append(name)

    assert _in_threads(8, work) == []
    assert mismatches == []


def test_a_prediction_beside_training_sees_the_weights_of_a_whole_epoch():
    """Training holds the network for a whole epoch; a prediction made meanwhile gives exactly
    the output of the weights before or after some epoch, never of a mix."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 32))
    y = rng.normal(size=4000)
    probe = X[:200]
    epochs = 6

    def fresh():
        return nncore.Network([32, 128, 128, 1], "tanh", random_state=0, n_threads=2)

    reference, outputs = fresh(), []
    outputs.append(reference.forward(probe))
    for e in range(epochs):
        reference.train_epoch(X, y, batch_size=32, learning_rate=1e-3, seed=e)
        outputs.append(reference.forward(probe))

    net, seen, done = fresh(), [], threading.Event()

    def train():
        try:
            for e in range(epochs):
                net.train_epoch(X, y, batch_size=32, learning_rate=1e-3, seed=e)
        finally:
            done.set()

    trainer = threading.Thread(target=train)
    trainer.start()
    while not done.is_set():
        seen.append(net.forward(probe))
    trainer.join()
    seen.append(net.forward(probe))
    np.testing.assert_array_equal(seen[-1], outputs[-1])
    for got in seen:
        assert any(np.array_equal(got, out) for out in outputs)


def test_estimator_predictions_beside_partial_fit_never_fail(fitted):
    clf, X, y = fitted
    import copy

    model = copy.deepcopy(clf)
    stop = threading.Event()

    def learn(i):
        if i == 0:
            for _ in range(5):
                model.partial_fit(X, y)
            stop.set()
        else:
            while not stop.is_set():
                proba = model.predict_proba(X[:500])
                assert np.isfinite(proba).all() and proba.shape == (500, 2)

    assert _in_threads(4, learn) == []


def test_a_forked_child_starts_its_own_threads():
    """Worker threads do not survive fork(): the child gets a pool of its own and trains on
    several threads with the parent's results."""
    import multiprocessing

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 300))
    y = rng.normal(size=600)
    expected = _train([300, 256, 256, 1], "float64", 2, 300, X, y).params
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads running
        with multiprocessing.get_context("fork").Pool(1) as pool:
            got = pool.apply(_train_params, ([300, 256, 256, 1], "float64", 2, 300, X, y))
    np.testing.assert_array_equal(got, expected)


def _train_params(*args):
    return _train(*args).params.copy()


def test_threads_that_each_fit_their_own_model_match_sequential_fits():
    """Several Python threads training separate networks at once (the pool is shared: a loop
    that finds it busy runs on its own thread) give the sequential results."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(600, 300))
    y = rng.normal(size=600)
    sequential = [_train([300, 256, 1], "float32", None, 200, X + i, y).params for i in range(4)]
    results = {}

    def fit(i):
        results[i] = _train([300, 256, 1], "float32", None, 200, X + i, y).params

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert _in_threads(4, fit) == []
    for i in range(4):
        np.testing.assert_array_equal(results[i], sequential[i])


def test_thread_limit_is_checked():
    with pytest.raises(ValueError, match="thread limit must be >= 1"):
        nncore._core.set_thread_limit(0)
    assert nncore.thread_limit() >= 1
    code = textwrap.dedent("""
        import nncore
        nncore._core.set_thread_limit(5)
        print(nncore.thread_limit(), nncore.Network([2, 1]).n_threads)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["5", "5"]


def test_two_threads_fitting_one_estimator_get_a_clear_error():
    """fit rebuilds the estimator's state step by step: a second fit of the same estimator from
    another thread is refused by name (an intermittent AttributeError from deep inside before),
    and the estimator is usable afterwards; separate estimators fit side by side."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 20))
    y = (X[:, 0] > 0).astype(int)
    clf = nncore.MLPClassifier(hidden_layer_sizes=(64,), max_iter=30, tol=0, random_state=0)
    started, tried, results = threading.Event(), threading.Event(), []

    def hold(est, record):  # the first fit waits in its first epoch until the second tried
        started.set()
        tried.wait(30)

    def first(i):
        if i == 0:
            clf.set_params(callbacks=[hold])
            clf.fit(X, y)
        else:
            started.wait(30)
            try:
                with pytest.raises(RuntimeError, match="already being fitted in another thread"):
                    clf.fit(X, y)
                results.append("refused")
            finally:
                tried.set()

    assert _in_threads(2, first) == []
    assert results == ["refused"]
    clf.set_params(callbacks=())
    assert clf.fit(X, y).score(X, y) > 0.9
    others = [nncore.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=i)
              for i in range(3)]
    assert _in_threads(3, lambda i: others[i].fit(X, y)) == []
