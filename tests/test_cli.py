"""The `nncore` command, run as a user runs it: in a subprocess."""

import csv
import re
import subprocess
import sys

import numpy as np
import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "nncore", *args], capture_output=True,
                          text=True, timeout=120)


def table(stdout):
    """The final metrics table: {split: (first metric, second metric)}."""
    rows = re.findall(r"^(train|validation|test) +(-?[0-9.]+) +(-?[0-9.]+)$", stdout, re.M)
    return {split: (float(a), float(b)) for split, a, b in rows}


def test_train_default_dataset_prints_losses_and_metrics():
    result = run("train", "--epochs", "5", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "breast_cancer" in result.stdout
    losses = [float(v) for v in re.findall(r"epoch +\d+/5 +loss ([0-9.]+)", result.stdout)]
    assert len(losses) == 5 and losses[-1] < losses[0]
    metrics = table(result.stdout)
    assert set(metrics) == {"train", "validation", "test"}
    assert metrics["test"][1] > 0.9  # accuracy


@pytest.mark.parametrize("dataset", ["digits", "iris", "wine", "diabetes"])
def test_train_other_datasets(dataset):
    result = run("train", "--dataset", dataset, "--epochs", "3", "--hidden", "16,8",
                 "--solver", "momentum", "--learning-rate", "0.01", "--schedule", "cosine",
                 "--batch-norm", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert set(table(result.stdout)) == {"train", "validation", "test"}
    assert ("R^2" in result.stdout) == (dataset == "diabetes")


def test_train_with_dropout():
    result = run("train", "--dataset", "digits", "--epochs", "2", "--hidden", "32",
                 "--dropout", "0.3", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert set(table(result.stdout)) == {"train", "validation", "test"}
    for bad in ("1", "-0.1", "x"):
        result = run("train", "--dropout", bad)
        assert result.returncode == 2 and "--dropout: must be a number in [0, 1)" in result.stderr
    result = run("train", "--dropout", "0.2", "--solver", "lbfgs", "--epochs", "2")
    assert result.returncode != 0 and "dropout" in result.stderr


def write_csv(path, n=240, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["age", "color", "size", "label", "price"])
        for _ in range(n):
            age, color, size = rng.normal(40, 10), rng.choice(["red", "green", "blue"]), rng.normal()
            label = "yes" if (age > 40) ^ (color == "red") else "no"
            price = 3 * size + (color == "blue") + rng.normal(0, 0.1)
            writer.writerow([f"{age:.2f}", color, f"{size:.3f}", label, f"{price:.3f}"])


def test_csv_classification_with_categorical_columns_save_and_predict(tmp_path):
    data = tmp_path / "data.csv"
    write_csv(data)
    model = tmp_path / "model.npz"
    result = run("train", "--csv", str(data), "--target", "label", "--epochs", "60",
                 "--learning-rate", "0.01", "--save", str(model), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "classification" in result.stdout and "6 inputs" in result.stdout  # 3 numeric + 3 colours
    assert table(result.stdout)["test"][1] > 0.9
    new = tmp_path / "new.csv"
    with open(data) as f, open(new, "w") as g:
        for line in list(f)[:6]:
            g.write(",".join(line.strip().split(",")[:3] + [line.strip().split(",")[4]]) + "\n")
    out = tmp_path / "pred.csv"
    result = run("predict", "--model", str(model), str(new), "--output", str(out))
    assert result.returncode == 0, result.stderr
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and set(rows[0]) == {"prediction", "proba_no", "proba_yes"}
    for row in rows:
        assert abs(float(row["proba_no"]) + float(row["proba_yes"]) - 1) < 1e-5


def test_csv_regression_and_plot(tmp_path):
    data = tmp_path / "data.csv"
    write_csv(data)
    plot = tmp_path / "curves.png"
    result = run("train", "--csv", str(data), "--target", "price", "--epochs", "40",
                 "--learning-rate", "0.01", "--plot", str(plot), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "regression" in result.stdout
    assert table(result.stdout)["test"][1] > 0.8  # R^2
    assert plot.stat().st_size > 5000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_progress_bar_on_request():
    result = run("train", "--epochs", "3", "--progress")
    assert result.returncode == 0
    assert "3/3" in result.stderr and "epoch   1/3" not in result.stdout


def test_bad_arguments_exit_with_usage_error():
    for args in (["train", "--epochs", "0"], ["train", "--hidden", "3,x"],
                 ["train", "--learning-rate", "-1"], ["train", "--dataset", "mnist"], [],
                 ["train", "--validation", "1.5"], ["predict", "data.csv"]):
        result = run(*args)
        assert result.returncode == 2, args
        assert "error" in result.stderr


def test_bad_files_are_clear_errors(tmp_path):
    missing = run("train", "--csv", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "No such file" in missing.stderr
    data = tmp_path / "data.csv"
    write_csv(data)
    wrong_target = run("train", "--csv", str(data), "--target", "colour")
    assert wrong_target.returncode == 2 and "is not a column" in wrong_target.stderr
    not_a_model = run("predict", "--model", str(data), str(data))
    assert not_a_model.returncode == 2 and "is not an nncore model file" in not_a_model.stderr
    assert "a CSV file? the model comes first" in not_a_model.stderr
    assert "allow_pickle" not in not_a_model.stderr  # NumPy's advice to load it unsafely
    no_model = run("predict", "--model", str(tmp_path / "nope.npz"), str(data))
    assert no_model.returncode == 2
    assert no_model.stderr.strip() == f"nncore predict: error: no model file " \
                                      f"{str(tmp_path / 'nope.npz')!r}"


def test_divergence_is_reported_not_crashed():
    result = run("train", "--epochs", "50", "--solver", "sgd", "--learning-rate", "1e12",
                 "--no-progress")
    assert result.returncode == 1
    assert "diverged" in result.stderr


# ---- messy files, written by pandas as users' files are -------------------------------------------
pd = pytest.importorskip("pandas")


def wine_frame():
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame = data.data.copy()
    frame["cultivar"] = np.array(["barolo", "grignolino", "barbera"])[data.target]
    return frame


def test_missing_numeric_values_are_an_error_naming_the_column_not_a_category(tmp_path):
    frame = wine_frame()
    frame.loc[[3, 10, 20, 30, 40], "alcohol"] = np.nan  # pandas writes NaN as an empty cell
    path = tmp_path / "wine.csv"
    frame.to_csv(path, index=False)
    result = run("train", "--csv", str(path), "--target", "cultivar", "--epochs", "2")
    assert result.returncode == 2
    assert "column 'alcohol' has 5 missing value(s)" in result.stderr
    assert "row" in result.stderr and "--impute" in result.stderr
    imputed = run("train", "--csv", str(path), "--target", "cultivar", "--epochs", "2",
                  "--impute", "median")
    assert imputed.returncode == 0, imputed.stderr
    assert "13 inputs" in imputed.stdout  # numeric, not one level per distinct number


def test_decimal_commas_are_reported_or_read_with_decimal(tmp_path):
    frame = wine_frame()
    path = tmp_path / "wine.csv"
    frame.to_csv(path, index=False, sep=";", decimal=",")
    wrong = run("train", "--csv", str(path), "--target", "cultivar", "--sep", ";", "--epochs", "2")
    assert wrong.returncode == 2
    assert "is numeric except for" in wrong.stderr and "--decimal" in wrong.stderr
    right = run("train", "--csv", str(path), "--target", "cultivar", "--sep", ";",
                "--decimal", ",", "--epochs", "2")
    assert right.returncode == 0, right.stderr
    assert "13 inputs" in right.stdout


def test_empty_target_cells_are_an_error_or_dropped_never_a_class(tmp_path):
    frame = wine_frame()
    frame.loc[[5, 6, 7], "cultivar"] = None
    path = tmp_path / "wine.csv"
    frame.to_csv(path, index=False)
    result = run("train", "--csv", str(path), "--target", "cultivar", "--epochs", "2")
    assert result.returncode == 2
    assert "target 'cultivar' is empty in 3 row(s)" in result.stderr
    model = tmp_path / "m.npz"
    dropped = run("train", "--csv", str(path), "--target", "cultivar", "--epochs", "2",
                  "--drop-missing-target", "--save", str(model))
    assert dropped.returncode == 0, dropped.stderr
    assert "dropped 3 row(s) with an empty target" in dropped.stdout
    predicted = run("predict", "--model", str(model), str(path))
    header = predicted.stdout.splitlines()[0].split(",")
    assert header == ["prediction", "proba_barbera", "proba_barolo", "proba_grignolino"]


def test_predict_names_missing_columns_missing_values_and_counts_unseen_categories(tmp_path):
    data = tmp_path / "data.csv"
    write_csv(data)
    model = tmp_path / "model.npz"
    assert run("train", "--csv", str(data), "--target", "label", "--epochs", "2", "--save",
               str(model)).returncode == 0
    frame = pd.read_csv(data).drop(columns="label").head(6)
    frame.loc[[1, 4], "color"] = "purple"
    new = tmp_path / "new.csv"
    frame.to_csv(new, index=False)
    result = run("predict", "--model", str(model), str(new))
    assert result.returncode == 0, result.stderr
    assert "column 'color': 2 row(s) with categories not seen in training" in result.stderr
    assert len(result.stdout.splitlines()) == 7
    frame.loc[2, "size"] = np.nan
    frame.to_csv(new, index=False)
    result = run("predict", "--model", str(model), str(new))
    assert result.returncode == 2 and "column 'size' has a missing value in row 3" in result.stderr
    frame.drop(columns="age").to_csv(new, index=False)
    result = run("predict", "--model", str(model), str(new))
    assert result.returncode == 2 and "no column 'age'" in result.stderr


def test_too_few_rows_and_bad_output_paths_fail_before_training(tmp_path):
    frame = wine_frame().iloc[[0, 70, 150]]  # one row of each class
    path = tmp_path / "tiny.csv"
    frame.to_csv(path, index=False)
    result = run("train", "--csv", str(path), "--target", "cultivar", "--epochs", "2")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "too few" in result.stderr
    # One class in every row: said before training (it trained every epoch, then failed).
    wine_frame().head(30).to_csv(path, index=False)
    result = run("train", "--csv", str(path), "--target", "cultivar", "--epochs", "2")
    assert result.returncode == 2 and "epoch" not in result.stdout
    assert "holds one class ('barolo') in every row: classification needs two or more" in \
        result.stderr
    data = tmp_path / "data.csv"
    write_csv(data)
    for option in ("--save", "--plot"):
        result = run("train", "--csv", str(data), "--target", "label", "--epochs", "2", option,
                     str(tmp_path / "no-such-folder" / "x"))
        assert result.returncode == 2 and "does not exist" in result.stderr
        assert "epoch" not in result.stdout  # nothing trained


def test_diverged_run_prints_short_numbers_and_saves_nothing(tmp_path):
    model = tmp_path / "m.npz"
    result = run("train", "--epochs", "50", "--solver", "sgd", "--learning-rate", "1e12",
                 "--save", str(model))
    assert result.returncode == 1 and "diverged" in result.stderr
    assert max(len(word) for word in result.stdout.split()) < 40  # %g, no 240-digit losses
    assert not model.exists()


def test_output_piped_into_head_ends_quietly_after_saving(tmp_path):
    model = tmp_path / "m.npz"
    command = (f"{sys.executable} -m nncore train --epochs 40 --save {model} | head -n 2")
    result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120)
    assert "Broken pipe" not in result.stderr and "Traceback" not in result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert model.exists()  # training went on and the model was written


def test_help_shows_defaults_and_version():
    result = run("train", "--help")
    assert "(default: 0.001)" in result.stdout and "(default: 30)" in result.stdout
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("nncore ")


def test_models_saved_before_pandas_reading_still_predict(tmp_path):
    """A model file written by the earlier command line (its preprocessing document has no fill
    values and no CSV options) predicts as before."""
    import nncore

    data = tmp_path / "data.csv"
    write_csv(data)
    model = tmp_path / "model.npz"
    assert run("train", "--csv", str(data), "--target", "label", "--epochs", "2", "--save",
               str(model)).returncode == 0
    est, meta = nncore.load(model, with_metadata=True)
    for feature in meta["cli"]["preprocessing"]["features"]:
        feature.pop("fill")
    del meta["cli"]["csv"], meta["cli"]["preprocessing"]["impute"]
    old = tmp_path / "old.npz"
    est.save(old, metadata=meta)
    new = run("predict", "--model", str(model), str(data)).stdout
    assert run("predict", "--model", str(old), str(data)).stdout == new


@pytest.mark.parametrize("target", ["label", "price"])
def test_a_saved_model_loads_as_one_that_predicts_on_raw_rows(tmp_path, target):
    """`nncore.load` of a `train --save` file gave the bare estimator, which predicted on the raw
    rows in standardised units (35% agreement with `nncore predict` on iris; a regressor in
    standardised target units). It now gives a TabularModel: raw rows in, `nncore predict`'s
    answers out, targets in their own units; saved again, it loads the same."""
    import pandas as pd

    import nncore
    from nncore.tabular import TabularModel

    data = tmp_path / "data.csv"
    write_csv(data)
    model_path = tmp_path / "model.npz"
    result = run("train", "--csv", str(data), "--target", target, "--epochs", "20",
                 "--save", str(model_path), "--no-progress")
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(data).drop(columns=[target])
    new = tmp_path / "new.csv"
    frame.to_csv(new, index=False)
    out = tmp_path / "pred.csv"
    assert run("predict", "--model", str(model_path), str(new), "--output",
               str(out)).returncode == 0
    expected = pd.read_csv(out)

    model = nncore.load(model_path)
    assert isinstance(model, TabularModel)
    for loaded in (model, _resaved(model, tmp_path)):
        got = loaded.predict(frame)
        if target == "label":
            np.testing.assert_array_equal(got, expected["prediction"].to_numpy())
            proba = loaded.predict_proba(frame)
            np.testing.assert_allclose(proba, expected[["proba_no", "proba_yes"]], rtol=1e-5)
            assert list(loaded.classes_) == ["no", "yes"]  # the estimator's attributes read through
        else:
            np.testing.assert_allclose(got, expected["prediction"], rtol=1e-8)
            assert abs(np.mean(got) - pd.read_csv(data)["price"].mean()) < 1.0  # own units
            with pytest.raises(AttributeError, match="for classifiers"):
                loaded.predict_proba(frame)
    np.testing.assert_array_equal(model.predict(new), model.predict(frame))  # a CSV path too


def _resaved(model, tmp_path):
    import nncore

    path = tmp_path / "again.npz"
    model.save(path)
    return nncore.load(path)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_streamed_model_saved_and_loaded_keeps_its_preprocessing(tmp_path):
    """fit_stream's preprocessing_ was lost by save() (pickle kept it)."""
    import pandas as pd

    import nncore
    from nncore.streaming import transform_rows

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(5, 3, 600), "colour": rng.choice(["r", "g"], 600),
                          "label": rng.choice(["x", "y"], 600)})
    frame.to_csv(tmp_path / "part.csv", index=False)
    model = nncore.fit_stream(nncore.MLPClassifier((8,), max_iter=2, random_state=0),
                              str(tmp_path / "part.csv"), target="label", buffer_rows=128)
    model.save(tmp_path / "m.npz")
    loaded = nncore.load(tmp_path / "m.npz")
    rows = frame.drop(columns="label")
    np.testing.assert_array_equal(loaded.predict(rows), model.predict(transform_rows(model, rows)))
    assert loaded.estimator.preprocessing_.spec == model.preprocessing_.spec


def test_imputation_covers_every_column_not_only_those_missing_in_training(tmp_path):
    """--impute fitted a fill only for columns with missing training cells: a missing value
    only in the validation or test rows, or in new rows of a column complete in training, failed
    ("the model was trained without imputation for it")."""
    import pandas as pd

    from nncore.tabular import Preprocessing

    data = tmp_path / "data.csv"
    write_csv(data)
    frame = pd.read_csv(data)
    frame.loc[frame.index[-5:], "age"] = np.nan  # the last rows only: never all in training
    frame.to_csv(data, index=False)
    model = tmp_path / "model.npz"
    result = run("train", "--csv", str(data), "--target", "label", "--epochs", "3",
                 "--impute", "median", "--save", str(model), "--no-progress")
    assert result.returncode == 0, result.stderr
    new = tmp_path / "new.csv"
    rows = frame.drop(columns="label").head(4).copy()
    rows.loc[rows.index[0], "size"] = np.nan
    rows.loc[rows.index[1], "color"] = np.nan
    rows.to_csv(new, index=False)
    predicted = run("predict", "--model", str(model), str(new))
    assert predicted.returncode == 0, predicted.stderr
    assert len(predicted.stdout.strip().splitlines()) == 5
    complete = frame.dropna()
    spec = Preprocessing.fit(complete.drop(columns="label"), impute="median").spec
    assert all(f["fill"] is not None for f in spec["features"])


def test_an_infinite_cell_is_named_by_column_and_row(tmp_path):
    """An `inf` cell named neither column nor row (a NaN did)."""
    import pandas as pd

    data = tmp_path / "data.csv"
    write_csv(data)
    frame = pd.read_csv(data)
    frame["age"] = frame["age"].astype(object)
    frame.loc[3, "age"] = "inf"
    frame.to_csv(data, index=False)
    result = run("train", "--csv", str(data), "--target", "label", "--epochs", "2")
    assert result.returncode != 0
    assert "column 'age' has 1 infinite value(s) (row 4)" in result.stderr


def test_task_auto_says_what_it_chose_for_an_integer_target(tmp_path):
    """`--task auto` silently treated 30 integer classes as regression: it now states the rule."""
    rng = np.random.default_rng(0)
    for classes, task in ((30, "regression"), (3, "classification")):
        path = tmp_path / f"data{classes}.csv"
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["a", "b", "y"])
            for i in range(300):
                writer.writerow([f"{rng.normal():.3f}", f"{rng.normal():.3f}", i % classes])
        result = run("train", "--csv", str(path), "--epochs", "1", "--no-progress")
        assert result.returncode == 0, result.stderr
        other = "classification" if task == "regression" else "regression"
        assert (f"--task auto chose {task}: the target holds {classes} distinct integer values"
                in result.stdout + result.stderr)
        assert f"pass --task {other} otherwise" in result.stdout + result.stderr
