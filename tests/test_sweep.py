"""Sweeps and the lab on a Dask cluster: the same table locally, in local processes and as tasks
of a real LocalCluster (worker processes); a diverging fit is a row; the command writes its table
and heat map; without Dask the message says what to install."""

import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, make_regression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import nncore
from nncore.cli import main

distributed = pytest.importorskip("distributed", reason="Dask tests need pip install 'nncore[dask]'")

# The tests' own reference fits stop at max_iter on purpose (sweep itself records that as a column).
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

GRID = {"learning_rate_init": [1e-3, 1e-2], "batch_size": [32, 128]}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X)[:600], y[:600]


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


def estimator():
    return nncore.MLPClassifier((16,), max_iter=8)


def timeless(table):
    return table.drop(columns=["fit_seconds"])


def test_sweep_rows_are_the_fits_a_user_would_make(digits):
    X, y = digits
    table = nncore.sweep(estimator(), GRID, X, y, seeds=2)
    assert len(table) == 4 * 2
    assert list(table.columns[:3]) == ["batch_size", "learning_rate_init", "seed"]
    assert {"train_score", "val_score", "train_loss", "val_loss", "epochs", "fit_seconds",
            "diverged", "converged"} <= set(table.columns)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0,
                                                      stratify=y)
    row = table.iloc[5]
    model = estimator().set_params(batch_size=int(row["batch_size"]),
                                   learning_rate_init=row["learning_rate_init"],
                                   random_state=int(row["seed"])).fit(X_train, y_train)
    assert row["val_score"] == model.score(X_val, y_val)
    assert row["train_loss"] == model.loss_ and row["epochs"] == model.n_iter_
    assert row["val_loss"] == pytest.approx(model.mean_loss(X_val, y_val), rel=1e-12)
    assert not row["converged"]  # 8 epochs: scikit-learn's ConvergenceWarning, as a column
    best = nncore.best_settings(table)
    assert best["val_score_mean"].is_monotonic_decreasing and (best["seeds"] == 2).all()


def test_same_table_in_local_processes_and_on_a_local_cluster(digits, client):
    X, y = digits
    local = timeless(nncore.sweep(estimator(), GRID, X, y, seeds=2))
    pd.testing.assert_frame_equal(local, timeless(nncore.sweep(estimator(), GRID, X, y, seeds=2,
                                                               n_jobs=2)))
    pd.testing.assert_frame_equal(local, timeless(nncore.sweep(estimator(), GRID, X, y, seeds=2,
                                                               client=client)))


def test_the_lab_runs_its_fits_on_the_cluster(tmp_path, client):
    from nncore import lab

    here = lab.zero_init(seeds=2, quick=True, progress=False, out=tmp_path / "here")
    there = lab.zero_init(seeds=2, quick=True, progress=False, out=tmp_path / "there",
                          scheduler=client)
    columns = [c for c in here.runs.columns if "seconds" not in c]
    pd.testing.assert_frame_equal(here.runs[columns], there.runs[columns])


def test_cross_validation_rows_and_diverged_fits():
    X, y = make_regression(n_samples=150, n_features=5, noise=1.0, random_state=0)
    table = nncore.sweep(nncore.MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", momentum=0, max_iter=5),
                         {"learning_rate_init": [1e-3, 1e3]}, X, y / 100, seeds=1, cv=3)
    assert list(table["folds"]) == [3, 3]
    ok, diverged = table.iloc[0], table.iloc[1]
    assert not ok["diverged"] and ok["val_score_std"] > 0
    assert diverged["diverged"] and np.isnan(diverged["val_score"])


def test_pipeline_parameters_by_their_short_names_and_bad_names():
    from sklearn.pipeline import make_pipeline

    X, y = make_regression(n_samples=120, n_features=4, noise=1.0, random_state=0)
    pipe = make_pipeline(StandardScaler(), nncore.MLPRegressor(hidden_layer_sizes=(8,), max_iter=5))
    table = nncore.sweep(pipe, {"alpha": [1e-4, 1.0]}, X, y / 100, seeds=1)
    assert list(table["alpha"]) == [1e-4, 1.0] and table["val_score"].notna().all()
    with pytest.raises(ValueError, match="does not have"):
        nncore.sweep(pipe, {"no_such": [1]}, X, y, seeds=1)
    twice = make_pipeline(StandardScaler(), StandardScaler(), nncore.MLPRegressor(max_iter=5))
    with pytest.raises(ValueError, match="several places"):
        nncore.sweep(twice, {"copy": [True]}, X, y, seeds=1)


def test_gridsearchcv_under_the_dask_joblib_backend(digits, client):
    import joblib
    from sklearn.model_selection import GridSearchCV

    X, y = digits

    def search():
        return GridSearchCV(nncore.MLPClassifier((16,), max_iter=20, random_state=0),
                            {"alpha": [1e-4, 1e-2]}, cv=2)

    here = search().fit(X, y)
    with joblib.parallel_backend("dask"):
        there = search().fit(X, y)
    np.testing.assert_array_equal(there.cv_results_["mean_test_score"],
                                  here.cv_results_["mean_test_score"])
    assert there.best_params_ == here.best_params_


def test_command_line_sweep_writes_table_and_heat_map(tmp_path, capsys):
    out = tmp_path / "sweep.csv"
    code = main(["sweep", "--dataset", "iris", "--grid", "learning_rate_init=1e-2,1e-1",
                 "hidden_layer_sizes=8,8-4", "--seeds", "2", "--epochs", "5", "--no-progress",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "best settings" in printed and "±" in printed and "per minute" in printed
    text = out.read_text().splitlines()
    assert text[0].startswith(f"# nncore {nncore.__version__}; build_info")
    assert text[1].startswith("# command: nncore sweep --dataset iris")
    table = pd.read_csv(out, comment="#")
    assert len(table) == 8 and set(table["hidden_layer_sizes"].astype(str)) == {"8", "8-4"}
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_command_line_sweep_errors(tmp_path, capsys):
    assert main(["sweep", "--grid", "learning_rate_init", "--out", str(tmp_path / "a.csv")]) == 2
    assert "NAME=V1,V2" in capsys.readouterr().err
    assert main(["sweep", "--grid", "alpha=1,2", "batch_size=8,16", "--axes", "alpha,nope",
                 "--out", str(tmp_path / "a.csv")]) == 2
    assert "--axes" in capsys.readouterr().err
    assert main(["sweep", "--grid", "alpha=1", "--scheduler", "nowhere",
                 "--out", str(tmp_path / "a.csv"), "--no-progress"]) == 2
    assert "local:N" in capsys.readouterr().err


def test_without_dask_the_message_says_what_to_install(monkeypatch, digits):
    monkeypatch.setitem(sys.modules, "distributed", None)
    X, y = digits
    with pytest.raises(ImportError, match=r"pip install 'nncore\[dask\]'"):
        nncore.sweep(estimator(), GRID, X, y, seeds=1, scheduler="local:2")


def test_dask_ml_incremental_is_partial_fit_block_by_block(digits, client):
    dask_ml = pytest.importorskip("dask_ml.wrappers", reason="dask-ml is not installed")
    import dask.array as da

    X, y = digits
    wrapped = dask_ml.Incremental(nncore.MLPClassifier((16,), random_state=0),
                                  scoring="accuracy", shuffle_blocks=False)
    wrapped.fit(da.from_array(X, chunks=150), da.from_array(y, chunks=150), classes=np.unique(y))
    reference = nncore.MLPClassifier((16,), random_state=0)
    for start in range(0, len(y), 150):
        reference.partial_fit(X[start:start + 150], y[start:start + 150], classes=np.unique(y))
    np.testing.assert_array_equal(wrapped.estimator_.network_.params, reference.network_.params)


def test_a_parquet_stream_read_by_the_cluster_gives_the_local_model(tmp_path, digits, client):
    X, y = digits
    frame = pd.DataFrame(X, columns=[f"p{j}" for j in range(X.shape[1])]).assign(label=y)
    for k in range(4):
        frame.iloc[k * 150:(k + 1) * 150].to_parquet(tmp_path / f"part{k}.parquet")

    def streamed():
        model = nncore.MLPClassifier((16,), max_iter=3, random_state=0)
        return nncore.fit_stream(model, str(tmp_path / "*.parquet"), target="label",
                                 buffer_rows=100, holdout=1)

    import dask

    assert dask.base.get_scheduler() == client.get  # the workers read the partitions
    on_cluster = streamed()
    with dask.config.set(scheduler="synchronous"):
        here = streamed()
    assert on_cluster.loss_curve_ == here.loss_curve_
    np.testing.assert_array_equal(on_cluster.network_.params, here.network_.params)


def test_seeds_take_a_count_or_a_list(digits):
    """seeds= took only a count: a list of seeds reruns chosen seeds (the same rows as the count's
    for the seeds they share)."""
    X, y = digits
    grid = {"learning_rate_init": [1e-2]}
    listed = timeless(nncore.sweep(estimator(), grid, X, y, seeds=[7, 1]))
    assert list(listed["seed"]) == [7, 1]
    counted = timeless(nncore.sweep(estimator(), grid, X, y, seeds=2))
    pd.testing.assert_series_equal(listed.iloc[1], counted.iloc[1], check_names=False)
    for bad, error in [([], ValueError), ([1, 1], ValueError), ([-1], ValueError),
                       ("3", TypeError), ([1.5], ValueError), (0, ValueError)]:
        with pytest.raises(error, match="seeds"):
            nncore.sweep(estimator(), grid, X, y, seeds=bad)


def test_a_bad_setting_is_refused_before_the_first_fit(digits, monkeypatch):
    """solver=lbfgs with dropout=0.2 stopped the sweep after the fits before it, no table."""
    X, y = digits
    fits = []
    original = nncore.MLPClassifier.fit
    monkeypatch.setattr(nncore.MLPClassifier, "fit",
                        lambda self, *a, **k: fits.append(1) or original(self, *a, **k))
    with pytest.raises(ValueError, match=r"setting .*solver='lbfgs'.*dropout"):
        nncore.sweep(estimator(), {"solver": ["sgd", "lbfgs"], "dropout": [0.0, 0.2]}, X, y,
                     seeds=1)
    with pytest.raises(ValueError, match=r"setting alpha=-1.*alpha"):
        nncore.sweep(estimator(), {"alpha": [1e-4, -1]}, X, y, seeds=1)
    assert fits == []


@pytest.mark.parametrize("guarded", [False, True])
def test_local_cluster_from_a_script_without_a_main_guard_is_named(tmp_path, guarded):
    """A LocalCluster's workers import the script again: a run started at its top level would
    start again in each of them (pages of tracebacks). Said before any process starts."""
    import subprocess
    import textwrap

    call = 'nncore.sweep(nncore.MLPClassifier(max_iter=1), {"alpha": [1e-4]}, X, y, seeds=1, ' \
           'scheduler="local:1")'
    body = (f'if __name__ == "__main__":\n    from nncore.cluster import _check_main_guard\n'
            f'    _check_main_guard()\n    print("guarded: fine")\n' if guarded else
            f"{call}\n")
    script = tmp_path / "experiment.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        import nncore
        X, y = np.zeros((20, 2)), np.arange(20) % 2
    """) + body)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120)
    if guarded:
        assert result.returncode == 0 and "guarded: fine" in result.stdout, result.stderr
    else:
        assert result.returncode == 1
        assert ("RuntimeError: scheduler 'local:N' starts worker processes that import "
                "experiment.py again, and line 5 would start the run again in each of them: put "
                'the code that runs it under `if __name__ == "__main__":`') in result.stderr
        assert "bootstrapping" not in result.stderr  # no worker process was started
