"""Training over a stream of chunks (nncore.fit_stream): the same model as fit where the stream is
the same data in the same order; every source kind; held-out partitions for early stopping;
statistics from one streaming pass; memory bounded by the buffer, not the data."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, make_classification

import nncore
from nncore.streaming import transform_rows

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(float), y


def test_one_partition_in_order_is_exactly_fit(digits):
    X, y = digits
    reference = nncore.MLPClassifier((16,), max_iter=4, shuffle=False, random_state=0).fit(X, y)
    streamed = nncore.fit_stream(nncore.MLPClassifier((16,), max_iter=4, shuffle=False,
                                                      random_state=0),
                                 [(X, y)], standardize=False, buffer_rows=10**6)
    assert streamed.loss_curve_ == reference.loss_curve_
    np.testing.assert_array_equal(streamed.network_.params, reference.network_.params)
    assert streamed.n_iter_ == 4 and len(streamed.history_) == 4 and streamed.t_ == 4 * len(y)


def test_fit_stream_is_the_estimators_method(digits):
    """nncore.fit_stream(est, ...) is est.fit_stream(...): the same fit, the same
    preprocessing_, set by the estimator itself."""
    X, y = digits
    chunks = [(X[i:i + 400], y[i:i + 400]) for i in range(0, len(y), 400)]
    by_function = nncore.fit_stream(nncore.MLPClassifier((8,), random_state=2), chunks,
                                    epochs=3, buffer_rows=500)
    by_method = nncore.MLPClassifier((8,), random_state=2).fit_stream(chunks, epochs=3,
                                                                       buffer_rows=500)
    assert by_method.max_iter == by_method.n_iter_ == 3
    assert by_method.loss_curve_ == by_function.loss_curve_
    np.testing.assert_array_equal(by_method.network_.params, by_function.network_.params)
    assert by_method.preprocessing_.spec == by_function.preprocessing_.spec
    with pytest.raises(ValueError, match="epoch-based solver"):
        nncore.MLPRegressor(solver="lbfgs").fit_stream([(X, y.astype(float))])


def test_epochs_count_passes_and_early_stopping_uses_the_held_out_partition(digits):
    X, y = digits
    chunks = [(X[i:i + 300], y[i:i + 300]) for i in range(0, len(y), 300)]
    seen = []
    model = nncore.MLPClassifier((32,), max_iter=40, early_stopping=True, n_iter_no_change=3,
                                 random_state=0, callbacks=[lambda est, rec: seen.append(rec)])
    nncore.fit_stream(model, chunks, buffer_rows=256, holdout=1)
    assert model.n_iter_ == len(model.loss_curve_) == len(seen) == len(model.validation_scores_)
    assert model.n_iter_ < 40  # stopped by the validation scores of the last partition
    X_val, y_val = chunks[-1]
    best = max(model.validation_scores_)
    assert model.score(transform_rows(model, X_val), y_val) == pytest.approx(best)
    assert model.t_ == model.n_iter_ * (len(y) - len(y_val))
    with pytest.raises(ValueError, match="holdout=1"):
        nncore.fit_stream(nncore.MLPClassifier(early_stopping=True), chunks)


def test_statistics_of_the_streaming_pass_equal_the_whole_tables(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(5, 3, 900), "b": rng.uniform(0, 1e4, 900),
                          "colour": rng.choice(["red", "green", "blue"], 900),
                          "label": rng.choice(["x", "y"], 900)})
    for k in range(3):
        frame.iloc[k * 300:(k + 1) * 300].to_parquet(tmp_path / f"part{k}.parquet")
    model = nncore.fit_stream(nncore.MLPClassifier((8,), max_iter=2, random_state=0),
                              str(tmp_path / "*.parquet"), target="label", buffer_rows=128)
    spec = {f["name"]: f for f in model.preprocessing_.spec["features"]}
    for column in ("a", "b"):
        assert spec[column]["mean"] == pytest.approx(frame[column].mean(), rel=1e-12)
        assert spec[column]["std"] == pytest.approx(frame[column].std(ddof=0), rel=1e-12)
    assert spec["colour"]["categories"] == ["blue", "green", "red"]
    assert list(model.classes_) == ["x", "y"]
    assert model.predict(transform_rows(model, frame.drop(columns="label"))).shape == (900,)


def test_every_source_kind_gives_the_same_model(tmp_path):
    import dask.array as da
    import dask.dataframe as dd

    X, y = make_classification(n_samples=600, n_features=5, random_state=0)
    names = [f"x{j}" for j in range(5)]
    frame = pd.DataFrame(X, columns=names).assign(y=y)
    for k in range(3):
        frame.iloc[k * 200:(k + 1) * 200].to_csv(tmp_path / f"p{k}.csv", index=False)
    chunks = [(X[k * 200:(k + 1) * 200], y[k * 200:(k + 1) * 200]) for k in range(3)]
    sources = {
        "list": (chunks, None),
        "function": (lambda: iter(chunks), None),
        "dask array": ((da.from_array(X, chunks=(200, 5)), da.from_array(y, chunks=200)), None),
        "dask dataframe": (dd.from_pandas(frame, npartitions=3), "y"),
        "csv files": (str(tmp_path / "p*.csv"), "y"),
    }
    curves = {}
    for name, (source, target) in sources.items():
        model = nncore.MLPClassifier((8,), max_iter=3, shuffle=False, random_state=0)
        curves[name] = nncore.fit_stream(model, source, target=target, buffer_rows=100).loss_curve_
    for name, curve in curves.items():
        np.testing.assert_allclose(curve, curves["list"], rtol=1e-12, err_msg=name)


def test_bad_sources_are_clear_errors(tmp_path, digits):
    X, y = digits
    with pytest.raises(TypeError, match="one-shot iterator"):
        nncore.fit_stream(nncore.MLPClassifier(), iter([(X, y)]))
    with pytest.raises(ValueError, match="no file matches"):
        nncore.fit_stream(nncore.MLPClassifier(), str(tmp_path / "*.parquet"), target="y")
    pd.DataFrame({"a": [1.0, np.nan, 3.0], "y": [0, 1, 0]}).to_parquet(tmp_path / "m.parquet")
    with pytest.raises(ValueError, match="'a'"):
        nncore.fit_stream(nncore.MLPClassifier(), str(tmp_path / "m.parquet"), target="y")
    with pytest.raises(ValueError, match="target must name"):
        nncore.fit_stream(nncore.MLPClassifier(), str(tmp_path / "m.parquet"), target="nope")
    with pytest.raises(ValueError, match="epoch-based solver"):
        nncore.fit_stream(nncore.MLPClassifier(solver="lbfgs"), [(X, y)])


MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import nncore

    def peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def fit(pattern):
        model = nncore.MLPRegressor(hidden_layer_sizes=(16,), max_iter=2, batch_size=256,
                                    random_state=0)
        return nncore.fit_stream(model, pattern, target="y", buffer_rows=int(sys.argv[3]))

    fit(sys.argv[1])  # warm-up on a small set: lazy imports, reader threads, allocator pools
    baseline = peak_mib()
    model = fit(sys.argv[2])
    print(json.dumps({"baseline": baseline, "peak": peak_mib(), "n_iter": model.n_iter_}))
""")


def _write_parts(folder, files, rows, columns, rng):
    folder.mkdir()
    for k in range(files):
        X = rng.normal(size=(rows, columns))
        frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(columns)])
        frame["y"] = X[:, 0] - X[:, 1]
        frame.to_parquet(folder / f"part{k:02d}.parquet")
    return str(folder / "part*.parquet")


def test_memory_stays_bounded_by_the_buffer_not_the_data(tmp_path):
    rng = np.random.default_rng(0)
    rows, files, columns = 25_000, 32, 40
    small = _write_parts(tmp_path / "small", 2, rows, columns, rng)
    large = _write_parts(tmp_path / "large", files, rows, columns, rng)
    data_mib = rows * files * (columns + 1) * 8 / 2**20  # 250 MiB of float64
    buffer_rows = 10_000
    assert data_mib >= 10 * buffer_rows * (columns + 1) * 8 / 2**20
    script = tmp_path / "memory.py"
    script.write_text(MEMORY_SCRIPT)
    result = subprocess.run([sys.executable, str(script), small, large, str(buffer_rows)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    growth = measured["peak"] - measured["baseline"]
    print(f"peak RSS growth {growth:.1f} MiB for {data_mib:.0f} MiB of data")
    assert measured["n_iter"] == 2
    assert growth < data_mib / 5, (growth, data_mib)


def test_command_line_streams_parquet_files_and_saves_a_model_predict_reads(tmp_path, capsys):
    from nncore.cli import main

    X, y = make_classification(n_samples=1200, n_features=6, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(6)])
    frame["colour"] = np.where(X[:, 0] > 0, "red", "blue")
    frame["label"] = np.where(y == 1, "yes", "no")
    for k in range(4):
        frame.iloc[k * 300:(k + 1) * 300].to_parquet(tmp_path / f"p{k}.parquet")
    model_path = tmp_path / "m.npz"
    code = main(["train", "--parquet", str(tmp_path / "p*.parquet"), "--target", "label",
                 "--stream", "--epochs", "3", "--buffer-rows", "128", "--save", str(model_path),
                 "--plot", str(tmp_path / "curves.png")])
    assert code == 0
    assert (tmp_path / "curves.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "4 partition(s), 1 held out" in printed and "epoch   3/3" in printed
    assert "validation accuracy" in printed
    frame.drop(columns="label").iloc[:5].to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", "--model", str(model_path), str(tmp_path / "new.csv")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "prediction,proba_no,proba_yes"
    assert main(["train", "--parquet", str(tmp_path / "p*.parquet"), "--target", "label"]) == 2
    assert "--parquet goes with --stream" in capsys.readouterr().err


def test_a_file_without_a_column_is_named(tmp_path):
    """A Parquet file lacking a column the first one has crashed with `KeyError: "['q'] not in
    index"` from inside Dask."""
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=50), "q": rng.normal(size=50),
                  "y": rng.integers(0, 2, 50)}).to_parquet(tmp_path / "p0.parquet")
    pd.DataFrame({"a": rng.normal(size=50),
                  "y": rng.integers(0, 2, 50)}).to_parquet(tmp_path / "p1.parquet")
    with pytest.raises(ValueError, match=r"file .*p1\.parquet.* lacks column.*'q'.*same columns"):
        nncore.fit_stream(nncore.MLPClassifier((4,), max_iter=2), str(tmp_path / "*.parquet"),
                          target="y")
