"""history_, callbacks, progress and the extra schedules of the estimators."""

import csv
import math

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

import nncore
from nncore.callbacks import CSVLogger, EarlyStopping, ReduceLROnPlateau

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)[:600]
y = y[:600]


def classifier(**kwargs):
    params = dict(hidden_layer_sizes=(32,), max_iter=8, random_state=0, solver="sgd",
                  learning_rate_init=0.05)
    return nncore.MLPClassifier(**{**params, **kwargs})


def test_history_records_every_epoch():
    clf = classifier().fit(X, y)
    assert len(clf.history_) == clf.n_iter_ == 8
    first, last = clf.history_[0], clf.history_[-1]
    assert set(first) == {"epoch", "loss", "val_loss", "val_score", "learning_rate",
                          "grad_norm", "param_norm", "seconds"}
    assert [r["epoch"] for r in clf.history_] == list(range(1, 9))
    assert [r["loss"] for r in clf.history_] == clf.loss_curve_
    assert first["val_loss"] is None and first["val_score"] is None  # no validation split
    assert last["learning_rate"] == 0.05 and last["grad_norm"] > 0 and last["seconds"] > 0
    assert last["param_norm"] == pytest.approx(np.linalg.norm(clf.network_.params))
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(clf.history_)
    assert list(frame["epoch"]) == list(range(1, 9))


def test_history_has_validation_loss_and_score_with_early_stopping():
    clf = classifier(early_stopping=True, max_iter=30).fit(X, y)
    scores = [r["val_score"] for r in clf.history_]
    assert scores == clf.validation_scores_
    assert all(r["val_loss"] > 0 for r in clf.history_)
    assert clf.history_[-1]["val_loss"] < clf.history_[0]["val_loss"]


def test_history_continues_across_partial_fit():
    clf = classifier()
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.arange(10))
    assert [r["epoch"] for r in clf.history_] == [1, 2, 3]


def test_a_callback_sees_each_record_and_can_stop():
    seen = []

    def stop_after_three(estimator, record):
        seen.append(record["epoch"])
        return record["epoch"] == 3

    clf = classifier(callbacks=[stop_after_three]).fit(X, y)
    assert seen == [1, 2, 3] and clf.n_iter_ == 3


def test_early_stopping_callback_on_validation_loss_restores_best_weights():
    stopper = EarlyStopping(monitor="val_loss", patience=3)
    clf = classifier(callbacks=[stopper], learning_rate_init=0.5, max_iter=60).fit(X, y)
    assert clf.n_iter_ < 60
    losses = [r["val_loss"] for r in clf.history_]
    best = int(np.argmin(losses))
    assert stopper.best_epoch == best + 1
    assert clf.n_iter_ == best + 1 + 3  # stopped after `patience` epochs without improvement
    # the restored weights are the best epoch's: their norm is the one recorded then
    assert np.linalg.norm(clf.network_.params) == pytest.approx(
        clf.history_[best]["param_norm"], rel=1e-12)


def test_reduce_lr_on_plateau_lowers_the_step_size():
    reducer = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0)
    clf = classifier(callbacks=[reducer], max_iter=5).fit(X, y)
    rates = [r["learning_rate"] for r in clf.history_]
    assert rates == [0.05, 0.05, 0.025, 0.0125, 0.00625]


def test_csv_logger_writes_every_epoch(tmp_path):
    path = tmp_path / "log.csv"
    classifier(callbacks=[CSVLogger(path)], early_stopping=True, max_iter=4).fit(X, y)
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert all(math.isfinite(float(r["val_score"])) for r in rows)


def test_callbacks_are_checked():
    with pytest.raises(TypeError, match="callbacks must be callables"):
        classifier(callbacks=[42]).fit(X, y)
    with pytest.raises(ValueError, match="monitor must be"):
        EarlyStopping(monitor="accuracy")


def test_progress_bar_shows_epochs(capsys):
    classifier(progress=True, max_iter=3).fit(X, y)
    err = capsys.readouterr().err
    assert "MLPClassifier" in err and "3/3" in err and "loss=" in err


@pytest.mark.parametrize("schedule,params,expected", [
    ("step", {"lr_decay": 0.5, "lr_step_size": 2}, [0.05, 0.05, 0.025, 0.025, 0.0125]),
    ("exponential", {"lr_decay": 0.5}, [0.05 * 0.5**e for e in range(5)]),
    ("cosine", {}, [0.5 * 0.05 * (1 + math.cos(math.pi * e / 5)) for e in range(5)]),
])
def test_extra_schedules_on_the_estimator(schedule, params, expected):
    clf = classifier(schedule=schedule, max_iter=5, solver="adam", learning_rate_init=0.05,
                     **params).fit(X, y)
    np.testing.assert_allclose([r["learning_rate"] for r in clf.history_], expected, rtol=1e-12)


def test_warmup_ramps_up():
    clf = classifier(warmup_epochs=4, max_iter=5).fit(X, y)
    np.testing.assert_allclose([r["learning_rate"] for r in clf.history_],
                               [0.0125, 0.025, 0.0375, 0.05, 0.05])


# ---- no silent no-ops ---------------------------------------------------------------------------
def test_lbfgs_says_callbacks_and_progress_do_not_apply():
    with pytest.warns(UserWarning, match="solver='lbfgs' ignores them"):
        classifier(solver="lbfgs", max_iter=5, callbacks=[CSVLogger("unused.csv")]).fit(X, y)


def test_partial_fit_validates_on_data_the_caller_passes_and_flags_a_stop(tmp_path):
    clf = classifier(callbacks=[EarlyStopping(monitor="val_loss", patience=2)])
    with pytest.raises(ValueError, match="validation_data=\\(X_val, y_val\\)"):
        clf.partial_fit(X[:400], y[:400], classes=np.unique(y))
    clf = classifier(learning_rate_init=0.5,
                     callbacks=[EarlyStopping(monitor="val_loss", patience=2)])
    calls = 0
    while calls < 200:
        calls += 1
        if clf.partial_fit(X[:400], y[:400], classes=np.unique(y),
                           validation_data=(X[400:], y[400:])).training_stopped_:
            break
    assert clf.training_stopped_ and calls < 200
    record = clf.history_[-1]
    assert record["val_loss"] == pytest.approx(clf.mean_loss(X[400:], y[400:]), rel=1e-12) or \
        clf.callbacks[0].restore_best_weights
    assert all(r["val_score"] is not None for r in clf.history_)
    assert len(clf.history_) == calls  # no rows of the chunks were held out: one epoch a call
    with pytest.raises(ValueError, match="validation_data is for partial_fit"):
        classifier()._fit(X, y, validation_data=(X, y))


def test_csv_logger_appends_across_partial_fit_calls(tmp_path):
    path = tmp_path / "log.csv"
    clf = classifier(callbacks=[CSVLogger(path)])
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.unique(y))
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]


def test_progress_shows_a_bar_for_partial_fit(capsys):
    clf = classifier(progress=True)
    for _ in range(2):
        clf.partial_fit(X, y, classes=np.unique(y))
    err = capsys.readouterr().err
    assert "MLPClassifier.partial_fit" in err and "2epoch" in err.replace(" ", "")
    import pickle

    assert pickle.loads(pickle.dumps(clf)).n_iter_ == clf.n_iter_  # the bar is not pickled


def test_callbacks_have_a_readable_repr():
    assert repr(EarlyStopping(patience=3)) == ("EarlyStopping(monitor='val_loss', patience=3, "
                                               "min_delta=0.0, restore_best_weights=True)")
    assert repr(ReduceLROnPlateau()).startswith("ReduceLROnPlateau(monitor='loss', factor=0.5")
