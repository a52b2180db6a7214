"""Messages the user trial found unclear, each now naming what is wrong and what to do: a
missing value when streaming or in the lab (the file; no flag that command lacks), partial_fit
after a cosine schedule ran out, a prediction file read with the wrong separator."""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

import nncore


def _table(rows=60, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    frame["y"] = (frame["a"] > 0).astype(int)
    return frame


def test_fit_stream_missing_value_names_the_file_not_a_flag(tmp_path):
    pytest.importorskip("dask.dataframe")
    for k in range(3):
        frame = _table(seed=k)
        if k == 2:  # only in the held-out file: it reached the model as "trained without
            frame.loc[4, "b"] = np.nan  # imputation", a model not yet trained
        frame.to_csv(tmp_path / f"part{k}.csv", index=False)
    with pytest.raises(ValueError) as error:
        nncore.fit_stream(nncore.MLPClassifier(max_iter=1), str(tmp_path / "part*.csv"),
                          target="y", holdout=1)
    message = str(error.value)
    assert f"column 'b' of file '{tmp_path / 'part2.csv'}' has 1 missing value(s) (row 5)" \
        in message
    assert "streaming cannot fill missing values" in message
    assert "pass --impute" not in message and "trained without" not in message
    assert "(or train in memory: TablePreprocessor(impute='mean'|'median'|'most_frequent'))" \
        in message


def test_lab_csv_missing_value_names_the_file(tmp_path):
    frame = _table(200)
    frame.loc[7, "c"] = np.nan
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    from nncore.lab._datasets import csv_dataset

    with pytest.raises(ValueError, match=r"column 'c' of .*data.csv has 1 missing value\(s\) "
                                         r"\(row 8\): the lab takes complete data"):
        csv_dataset(path, "y")


def test_partial_fit_after_a_finished_cosine_schedule_says_why():
    frame = _table()
    X, y = frame[["a", "b", "c"]].to_numpy(), frame["y"].to_numpy()
    est = nncore.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, schedule="cosine",
                               random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    with pytest.raises(ValueError, match=r"the cosine schedule has run its max_iter=3 epochs "
                                         r"down to min_learning_rate=0.*min_learning_rate > 0"):
        est.partial_fit(X, y)
    est.set_params(min_learning_rate=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)  # a fresh schedule that ends at 1e-4 goes on at that rate
    est.partial_fit(X, y)
    assert est.history_[-1]["learning_rate"] == pytest.approx(1e-4)


def test_predicting_a_file_with_another_separator_hints_at_sep(tmp_path):
    frame = _table()
    frame.to_csv(tmp_path / "semicolon.csv", index=False, sep=";")
    frame.to_csv(tmp_path / "comma.csv", index=False)
    model = tmp_path / "m.npz"
    train = subprocess.run([sys.executable, "-m", "nncore", "train", "--csv",
                            str(tmp_path / "semicolon.csv"), "--sep", ";", "--target", "y",
                            "--epochs", "1", "--save", str(model)], capture_output=True,
                           text=True)
    assert train.returncode == 0, train.stderr
    result = subprocess.run([sys.executable, "-m", "nncore", "predict", "--model", str(model),
                             str(tmp_path / "comma.csv")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "the rows were read as one column 'a,b,c,y'" in result.stderr
    assert "(--sep)" in result.stderr


def test_an_identifier_like_text_column_gets_a_note(tmp_path):
    """A text column with mostly distinct values was one-hot encoded into hundreds of inputs
    without a word."""
    frame = _table(300)
    frame.insert(0, "customer", [f"C{i:05d}" for i in range(300)])
    frame["city"] = np.resize(["Oslo", "Lima", "Pune"], 300)  # a real category: no note
    path = tmp_path / "ids.csv"
    frame.to_csv(path, index=False)
    result = subprocess.run([sys.executable, "-m", "nncore", "train", "--csv", str(path),
                             "--target", "y", "--epochs", "1"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stdout.splitlines() if line.startswith("note: column")]
    assert notes == ["note: column 'customer' is text with 300 distinct values in 300 rows: "
                     "one-hot encoded, that is 300 inputs no new row will share (an identifier? "
                     "drop the column from the data)"]


def test_fit_stream_warns_of_an_identifier_like_column(tmp_path):
    pytest.importorskip("dask.dataframe")
    for k in range(2):
        frame = _table(40, seed=k)
        frame["order"] = [f"O{k}-{i}" for i in range(40)]
        frame.to_csv(tmp_path / f"part{k}.csv", index=False)
    with pytest.warns(UserWarning, match="column 'order' is text with 80 distinct values in "
                                         "80 rows"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        nncore.fit_stream(nncore.MLPClassifier(max_iter=1), str(tmp_path / "part*.csv"),
                          target="y")


def test_library_messages_name_parameters_the_command_line_its_flags(tmp_path, capsys):
    """A Python caller never typed --decimal: the library names its parameters, and the command
    line prints the same message with its flags."""
    from nncore.cli import main
    from nncore.tabular import Preprocessing, numeric_values

    frame = _table()
    frame["b"] = frame["b"].map(lambda v: f"{v:.3f}".replace(".", ","))
    with pytest.raises(ValueError, match=r"use decimal=',' for decimal commas, or pass "
                                         r"categorical=\['b'\] to treat the column as text"):
        numeric_values(frame["b"], "b")
    with pytest.raises(ValueError, match=r"^categorical names no column of the data: z$"):
        Preprocessing.fit(frame, categorical=("z",))
    path = tmp_path / "commas.csv"
    frame.to_csv(path, index=False)
    assert main(["train", "--csv", str(path), "--target", "y", "--epochs", "1"]) == 2
    assert ("use --decimal ',' for decimal commas, or pass --categorical b to treat the column "
            "as text") in capsys.readouterr().err
