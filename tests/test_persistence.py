"""Saving to .npz and loading back: exact, continuable, safe against bad files."""

import json
import warnings
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris

import nncore

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def fitted(kind="classifier", **kwargs):
    if kind == "classifier":
        X, y = load_iris(return_X_y=True)
        y = np.array(["setosa", "versicolor", "virginica"])[y]  # string labels
        est = nncore.MLPClassifier(hidden_layer_sizes=(8, 6), max_iter=20, random_state=0,
                                   **kwargs)
    else:
        X, y = load_diabetes(return_X_y=True)
        y = (y - y.mean()) / y.std()
        est = nncore.MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0, **kwargs)
    return est.fit(X, y), X, y


@pytest.mark.parametrize("kind,kwargs", [
    ("classifier", {}),
    ("classifier", {"solver": "sgd", "batch_norm": True, "dtype": "float32"}),
    ("classifier", {"solver": "adamw", "early_stopping": True, "learning_rate": "adaptive"}),
    ("regressor", {"solver": "momentum", "learning_rate": "invscaling"}),
    ("regressor", {"solver": "lbfgs"}),
])
def test_round_trip_is_exact_and_training_continues(tmp_path, kind, kwargs):
    est, X, y = fitted(kind, **kwargs)
    path = tmp_path / "model.npz"
    est.save(path)
    loaded = nncore.load(path)
    assert type(loaded) is type(est)
    assert loaded.get_params() == est.get_params()
    predict = "predict_proba" if kind == "classifier" else "predict"
    np.testing.assert_array_equal(getattr(loaded, predict)(X), getattr(est, predict)(X))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    for a, b in zip(loaded.coefs_ + loaded.intercepts_, est.coefs_ + est.intercepts_):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    for attr in ("n_iter_", "t_", "loss_", "loss_curve_", "history_", "out_activation_"):
        if hasattr(est, attr):
            assert getattr(loaded, attr) == getattr(est, attr), attr
    if kind == "classifier":
        np.testing.assert_array_equal(loaded.classes_, est.classes_)
    if est.solver != "lbfgs" and not est.early_stopping:
        est.partial_fit(X, y)
        loaded.partial_fit(X, y)
        for a, b in zip(loaded.coefs_, est.coefs_):
            np.testing.assert_array_equal(a, b)  # optimiser and schedule state came along


def test_feature_names_and_metadata_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    data = load_iris(as_frame=True)
    est = nncore.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    est.fit(data.data, data.target)
    est.save(tmp_path / "m.npz", metadata={"note": "iris", "scale": [1.0, 2.0]})
    loaded, meta = nncore.load(tmp_path / "m.npz", with_metadata=True)
    np.testing.assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)
    assert meta == {"note": "iris", "scale": [1.0, 2.0]}
    history = pd.DataFrame(loaded.history_)
    assert list(history.columns) == list(nncore.callbacks.RECORD_FIELDS)
    pd.testing.assert_frame_equal(history, pd.DataFrame(est.history_))


def test_loading_needs_no_pickle(tmp_path):
    est, X, _ = fitted()
    est.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        assert all(data[k].dtype.kind != "O" for k in data.files)


def test_truncated_file_is_a_clear_error(tmp_path):
    est, _, _ = fitted()
    path = tmp_path / "m.npz"
    est.save(path)
    raw = path.read_bytes()
    for cut in (10, len(raw) // 2, len(raw) - 5):
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="not a readable nncore model file|cannot load"):
            nncore.load(path)


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for key, value in changes.items():
        if callable(value):
            arrays[key] = value(arrays[key])
        elif value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez(path, **arrays)


def _meta(change):
    def edit(meta):
        doc = json.loads(meta.tobytes().decode("utf-8"))
        change(doc)
        return np.frombuffer(json.dumps(doc).encode("utf-8"), np.uint8)
    return edit


@pytest.mark.parametrize("changes,message", [
    (dict(params=lambda p: p[:-3]), "params has shape"),
    (dict(params=lambda p: np.full_like(p, np.nan)), "non-finite"),
    (dict(meta=None), "corrupt or was modified"),
    (dict(meta=np.array("{not json")), "corrupt or was modified"),
    (dict(meta=_meta(lambda d: d.update(format="something-else"))), "no nncore model header"),
    (dict(meta=_meta(lambda d: d.update(format_version=99))), "upgrade nncore"),
    (dict(meta=_meta(lambda d: d.update({"class": "os.system"}))), "unknown estimator class"),
    (dict(meta=_meta(lambda d: d["network"].update(layer_sizes=[4, 9, 3]))), "shape"),
    (dict(meta=_meta(lambda d: d["fitted"].update(__class__=1))), "unexpected fitted attribute"),
    (dict(meta=_meta(lambda d: d["params"].update(alpha=-1))), "alpha"),
    (dict(classes=None), "corrupt or was modified"),
])
def test_tampered_file_is_a_clear_error(tmp_path, changes, message):
    est, _, _ = fitted()
    path = tmp_path / "m.npz"
    est.save(path)
    _rewrite(path, **changes)
    with pytest.raises(ValueError, match=message):
        nncore.load(path)


def test_not_a_zip_and_missing_file(tmp_path):
    (tmp_path / "x.npz").write_text("hello")
    with pytest.raises(ValueError, match="x.npz' is not an nncore model file: a model is the "
                                         ".npz archive .* this is text starting 'hello'"):
        nncore.load(tmp_path / "x.npz")
    (tmp_path / "noise.npz").write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match="this is binary data") as error:
        nncore.load(tmp_path / "noise.npz")
    assert "allow_pickle" not in str(error.value)
    with pytest.raises(FileNotFoundError, match="no model file .*missing.npz'$"):
        nncore.load(tmp_path / "missing.npz")
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(ValueError, match="corrupt or was modified"):
        nncore.load(tmp_path / "empty.npz")


def test_unfitted_estimator_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        nncore.MLPRegressor().save(tmp_path / "m.npz")


def test_files_written_before_the_one_loop_refactor_still_load():
    """tests/data holds models saved in file format 1 by nncore as of commit 44d4253 (a
    batch-normalised Adam classifier with string classes and early stopping; an SGD regressor
    with invscaling and metadata), with what they predicted then and the parameters one more
    partial_fit epoch gave (on an x86-64-v3 build)."""
    from pathlib import Path

    data = Path(__file__).parent / "data"
    expected = np.load(data / "format1_expected.npz")
    X, _ = load_iris(return_X_y=True)
    # Predictions computed by this build may round differently from the AVX2 build that wrote the
    # expectations (a portable build sums products in another order): equal to 1e-12.
    close = dict(rtol=1e-12, atol=1e-14)
    clf = nncore.load(data / "format1_classifier.npz")
    with np.load(data / "format1_classifier.npz") as raw:
        np.testing.assert_array_equal(clf.network_.params, raw["params"])  # loaded exactly
    np.testing.assert_allclose(clf.predict_proba(X[::10]), expected["clf_proba"], **close)
    np.testing.assert_array_equal(clf.predict(X[::10]), expected["clf_pred"])
    np.testing.assert_array_equal(clf.loss_curve_, expected["clf_loss_curve"])
    assert clf.network_.batch_norm and clf.early_stopping

    Xd, yd = load_diabetes(return_X_y=True)
    reg, meta = nncore.load(data / "format1_regressor.npz", with_metadata=True)
    assert meta == {"note": "saved before the one-loop refactor"}
    np.testing.assert_allclose(reg.predict(Xd[:80:8]), expected["reg_pred"], **close)
    assert reg.t_ == int(expected["reg_t"])
    reg.partial_fit(Xd[:80], yd[:80] / 100)  # optimiser and schedule state came along
    params = np.concatenate([c.ravel() for c in reg.coefs_ + reg.intercepts_])
    np.testing.assert_allclose(params, np.load(data / "format1_expected_next.npz")["reg_params"],
                               **close)


def test_save_and_load_take_file_objects(tmp_path):
    """nncore.load refused file objects (an upload in a web service, a blob from storage)."""
    import io

    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = nncore.MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
    buffer = io.BytesIO()
    nncore.persistence.save(clf, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(nncore.load(buffer).predict_proba(X), clf.predict_proba(X))
    clf.save(tmp_path / "m.npz")
    with open(tmp_path / "m.npz", "rb") as f:
        np.testing.assert_array_equal(nncore.load(f).predict(X), clf.predict(X))
    with pytest.raises(ValueError, match="is not an nncore model file"):
        nncore.load(io.BytesIO(b"not a model"))


def test_history_is_stored_as_arrays_and_comes_back_exactly(tmp_path):
    """A 2,000-epoch model file carried 2.2 MB of history_ as JSON in a UTF-32 string beside
    19 KB of weights; per-epoch lists are arrays now (None where a record had none)."""
    X, y = load_iris(return_X_y=True)
    est = nncore.MLPClassifier(hidden_layer_sizes=(16,), max_iter=2000, n_iter_no_change=10**6,
                               random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    # partial_fit with validation rows for some epochs: val_* partly None, partly numbers
    est.partial_fit(X, y, validation_data=(X[:20], y[:20]))
    est.partial_fit(X, y)
    path = tmp_path / "m.npz"
    est.save(path)
    weights = est.network_.params.nbytes
    assert path.stat().st_size < weights + 2002 * 8 * 9 + 20_000  # arrays, not text
    loaded = nncore.load(path)
    assert loaded.history_ == est.history_
    assert [type(r["epoch"]) for r in loaded.history_] == [int] * 2002
    assert loaded.history_[-2]["val_score"] is not None and loaded.history_[-1]["val_score"] is None
    assert loaded.loss_curve_ == est.loss_curve_
    with np.load(path) as raw:
        assert raw["meta"].dtype == np.uint8 and raw["meta"].nbytes < 20_000


def test_history_with_values_a_callback_added_stays_json(tmp_path):
    X, y = load_iris(return_X_y=True)

    def note(estimator, record):
        record["note"] = f"epoch {record['epoch']}"

    est = nncore.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, callbacks=[note],
                               random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    est.save(tmp_path / "m.npz")
    assert nncore.load(tmp_path / "m.npz").history_ == est.history_
