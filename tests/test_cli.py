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
    assert not_a_model.returncode == 2 and "not a readable nncore model" in not_a_model.stderr


def test_divergence_is_reported_not_crashed():
    result = run("train", "--epochs", "50", "--solver", "sgd", "--learning-rate", "1e12",
                 "--no-progress")
    assert result.returncode == 1
    assert "diverged" in result.stderr
