"""The estimators as users use them: data sets, pipelines, inputs, persistence, misuse."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sk
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nncore

# Short fits that stop at max_iter are the point of most tests here.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

DATASETS = {
    "breast_cancer": (load_breast_cancer, "classifier"),
    "digits": (load_digits, "classifier"),
    "wine": (load_wine, "classifier"),
    "diabetes": (load_diabetes, "regressor"),
}


@pytest.mark.parametrize("name", DATASETS)
def test_bundled_datasets_score_at_least_scikit_learn(name):
    """Pipeline(StandardScaler, MLP) with default hyperparameters, averaged over seeds."""
    loader, kind = DATASETS[name]
    X, y = loader(return_X_y=True)
    ours_cls, theirs_cls = ((nncore.MLPClassifier, sk.MLPClassifier) if kind == "classifier"
                            else (nncore.MLPRegressor, sk.MLPRegressor))
    extra = {} if kind == "classifier" else {"max_iter": 1000}  # diabetes' raw targets are ~150
    scores = {"ours": [], "theirs": []}
    for seed in range(3):
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=seed)
        for key, cls in (("ours", ours_cls), ("theirs", theirs_cls)):
            model = make_pipeline(StandardScaler(), cls(random_state=seed, **extra))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_tr, y_tr)
            scores[key].append(model.score(X_te, y_te))
    ours, theirs = np.mean(scores["ours"]), np.mean(scores["theirs"])
    assert ours >= theirs - 1e-9, scores


def test_float32_stays_float32_and_float64_can_be_forced():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    clf = nncore.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        assert all(c.dtype == np.float32 for c in clf.coefs_ + clf.intercepts_)
        assert clf.predict_proba(X).dtype == np.float32
        forced = nncore.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0,
                                      dtype="float64").fit(X, y)
    assert forced.coefs_[0].dtype == np.float64


@pytest.mark.parametrize("fit_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("predict_dtype", [np.float32, np.float64, np.int64])
def test_outputs_have_scikit_learns_dtype(fit_dtype, predict_dtype):
    """A model's outputs come back in the dtype scikit-learn's would have: X's values times the
    weights (a float32 model on float64 X gave float32 probabilities before)."""
    from sklearn.neural_network import MLPClassifier as SkClassifier
    from sklearn.neural_network import MLPRegressor as SkRegressor

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(fit_dtype)
    X_new = (X * 3).astype(predict_dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for ours, theirs in [(nncore.MLPClassifier, SkClassifier),
                             (nncore.MLPRegressor, SkRegressor)]:
            a = ours(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
            b = theirs(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
            assert a.predict(X_new).dtype == b.predict(X_new).dtype
            if ours is nncore.MLPClassifier:
                assert a.predict_proba(X_new).dtype == b.predict_proba(X_new).dtype
                assert a.predict_log_proba(X_new).dtype == b.predict_log_proba(X_new).dtype


def test_pandas_input_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    data = load_wine(as_frame=True)
    X = (data.data - data.data.mean()) / data.data.std()
    clf = nncore.MLPClassifier(hidden_layer_sizes=(10,), max_iter=300, random_state=0)
    clf.fit(X, data.target)
    np.testing.assert_array_equal(clf.feature_names_in_, data.data.columns)
    assert clf.n_features_in_ == 13
    assert clf.score(X, data.target) > 0.95
    with pytest.warns(UserWarning, match="feature names"):
        from_array = clf.predict(X.to_numpy())
    np.testing.assert_array_equal(clf.predict(X), from_array)  # the same model either way
    np.testing.assert_array_equal(clf.classes_, np.unique(data.target))


def test_sparse_input_gives_the_dense_result():
    X, y = load_digits(return_X_y=True)
    X = X[:300] / 16
    y = y[:300]
    kwargs = dict(hidden_layer_sizes=(16,), max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = nncore.MLPClassifier(**kwargs).fit(X, y)
        sparse = nncore.MLPClassifier(**kwargs).fit(sp.csr_matrix(X), y)
    # Sparse rows take the first layer's sparse path: the same sums as the dense product, but
    # an AVX2 or portable build's GEMM may order them otherwise (equal on AVX-512 builds).
    for a, b in zip(dense.coefs_, sparse.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dense.predict_proba(X), sparse.predict_proba(sp.csr_matrix(X)),
                               rtol=1e-10, atol=1e-13)


def test_multilabel_and_multioutput():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] > 0.5]).astype(int)
    clf = nncore.MLPClassifier(hidden_layer_sizes=(16,), max_iter=500, random_state=0).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    assert clf.predict(X).shape == (120, 3) and clf.predict_proba(X).shape == (120, 3)
    assert clf.score(X, Y) > 0.8
    reg = nncore.MLPRegressor(hidden_layer_sizes=(16,), max_iter=500, random_state=0)
    reg.fit(X, np.column_stack([X[:, 0], X[:, 1] * 2]))
    assert reg.predict(X).shape == (120, 2)
    assert reg.score(X, np.column_stack([X[:, 0], X[:, 1] * 2])) > 0.9


def test_poisson_regression_predicts_positive_means():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0] + 0.3))
    reg = nncore.MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=300,
                              random_state=0, solver="lbfgs").fit(X, y)
    assert reg.out_activation_ == "exp"
    assert np.all(reg.predict(X) > 0)
    with pytest.raises(ValueError, match="poisson loss must be >= 0"):
        nncore.MLPRegressor(loss="poisson").fit(X, -np.abs(y) - 1.0)


def test_pickle_round_trip_and_training_continues():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = nncore.MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", random_state=0)
    clf.partial_fit(X, y, classes=[0, 1])
    clf.partial_fit(X, y)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))
    for est in (clf, clone):
        est.partial_fit(X, y)
    for a, b in zip(clf.coefs_ + clf.intercepts_, clone.coefs_ + clone.intercepts_):
        np.testing.assert_array_equal(a, b)  # the optimiser's momentum came along
    assert clone.n_iter_ == clf.n_iter_ and clone.t_ == clf.t_


def test_divergence_stops_with_a_clear_error_and_keeps_finite_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * 1e3
    y = rng.normal(size=200) * 1e3
    reg = nncore.MLPRegressor(solver="sgd", learning_rate_init=10.0, max_iter=50,
                              random_state=0)
    with pytest.raises(nncore.DivergenceError, match="MLPRegressor diverged in epoch"):
        reg.fit(X, y)
    with pytest.raises(ValueError):  # also what scikit-learn raises for non-finite weights
        reg.fit(X, y)
    assert all(np.isfinite(c).all() for c in reg.coefs_ + reg.intercepts_)
    assert np.isfinite(reg.predict(X)).all()
    assert len(reg.loss_curve_) == reg.n_iter_


def test_coefs_are_views_and_assignable():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = nncore.MLPClassifier(hidden_layer_sizes=(5,), max_iter=300, random_state=0).fit(X, y)
    clf.coefs_[1] = np.zeros_like(clf.coefs_[1])  # item assignment, as with scikit-learn
    clf.intercepts_[1][:] = [5.0, 0.0, 0.0]  # in-place change of a view
    assert np.all(clf.predict(X) == clf.classes_[0])
    with pytest.raises(ValueError, match="expected an array of shape"):
        clf.coefs_[0] = np.zeros((2, 2))
    assert not hasattr(nncore.MLPClassifier(), "coefs_")


def test_partial_fit_misuse_raises_as_scikit_learn():
    X, y = load_wine(return_X_y=True)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        nncore.MLPClassifier().partial_fit(X, y)
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        nncore.MLPClassifier(solver="lbfgs").partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        nncore.MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="validation set is too small"):
        nncore.MLPClassifier(early_stopping=True, validation_fraction=0.01).fit(X[:30], y[:30])
    with pytest.raises(ValueError, match="alpha"):
        nncore.MLPClassifier(alpha=-1).fit(X, y)
    with pytest.raises(ValueError, match="solver"):
        nncore.MLPRegressor(solver="newton").fit(X, y)
    with pytest.warns(UserWarning, match="It is going to be clipped"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            nncore.MLPClassifier(batch_size=1000, max_iter=2).fit(X, y)


def test_warm_start_continues_from_the_fitted_weights():
    X, y = load_diabetes(return_X_y=True)
    y = (y - y.mean()) / y.std()
    reg = nncore.MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", max_iter=5,
                              warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
        first = reg.loss_curve_[-1]
        reg.fit(X, y)
    assert len(reg.loss_curve_) == 10 and reg.loss_curve_[5] < reg.loss_curve_[0]
    assert reg.loss_curve_[-1] < first


def test_extras_batch_norm_adamw_and_schedules_with_adam():
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X / 16, y, random_state=0)
    clf = nncore.MLPClassifier(hidden_layer_sizes=(64,), solver="adamw", batch_norm=True,
                               init="he_normal", schedule="invscaling",
                               learning_rate_init=0.05, power_t=0.25, max_iter=30,
                               random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_tr, y_tr)
    assert clf.score(X_te, y_te) > 0.9
    assert clf.network_.batch_norm and clf.schedule_.learning_rate < 0.05


@pytest.mark.parametrize("ours,theirs", [(nncore.MLPClassifier, sk.MLPClassifier),
                                         (nncore.MLPRegressor, sk.MLPRegressor)])
def test_every_scikit_learn_parameter_with_the_same_default(ours, theirs):
    import inspect

    mine = inspect.signature(ours.__init__).parameters
    for name, param in inspect.signature(theirs.__init__).parameters.items():
        assert name in mine, name
        assert mine[name].default == param.default, name
        assert mine[name].kind == param.kind, name  # positional stays positional
    extras = set(mine) - set(inspect.signature(theirs.__init__).parameters)
    assert extras == {"weight_decay", "batch_norm", "dropout", "init", "dtype", "loss_reduction",
                      "lr_decay", "lr_step_size", "warmup_epochs", "min_learning_rate",
                      "callbacks", "progress", "n_threads", "schedule"} | (
        {"class_weight", "stratify"} if ours is nncore.MLPClassifier
        else {"mean_output_gradient"})
    assert all(mine[name].kind == inspect.Parameter.KEYWORD_ONLY for name in extras)


def test_verbose_prints_scikit_learn_lines(capsys):
    X, y = load_wine(return_X_y=True)
    nncore.MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, verbose=True,
                         random_state=0).fit(StandardScaler().fit_transform(X), y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Iteration 1, loss = ") and len(lines) == 2


@pytest.mark.parametrize("params, ignored", [
    ({"solver": "adam", "weight_decay": 0.5}, "weight_decay"),
    ({"solver": "lbfgs", "schedule": "cosine"}, "schedule"),
    ({"schedule": "cosine", "lr_decay": 0.5}, "lr_decay"),
    ({"schedule": "exponential", "lr_step_size": 3}, "lr_step_size"),
    ({"schedule": "step", "min_learning_rate": 1e-5}, "min_learning_rate"),
    ({"solver": "lbfgs", "warmup_epochs": 2}, "warmup_epochs"),
])
def test_an_extra_this_fit_does_not_read_is_named(params, ignored):
    """nncore's extras set where the fit ignores them gave bit-identical fits without a word."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = nncore.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning, match=f"{ignored}=.* ignores it"):
            model.fit(X, y)


def test_extras_that_are_read_do_not_warn():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    for params in ({"solver": "adamw", "weight_decay": 0.5},
                   {"schedule": "step", "lr_decay": 0.5, "lr_step_size": 2},
                   {"schedule": "cosine", "min_learning_rate": 1e-5, "warmup_epochs": 1},
                   {"solver": "sgd", "learning_rate": "adaptive"}, {}):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warnings.simplefilter("ignore", ConvergenceWarning)
            nncore.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0,
                                 **params).fit(X, y)
