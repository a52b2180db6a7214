"""The `nncore` command, run as a user runs it: in a subprocess."""

import re
import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "nncore", *args], capture_output=True,
                          text=True, timeout=120)


def test_train_default_dataset_prints_losses_and_accuracy():
    result = run("train", "--epochs", "5")
    assert result.returncode == 0, result.stderr
    losses = [float(v) for v in re.findall(r"epoch +\d+/5 +loss ([0-9.]+)", result.stdout)]
    assert len(losses) == 5 and losses[-1] < losses[0]
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", result.stdout).group(1))
    assert accuracy > 0.9
    assert "breast_cancer" in result.stdout


@pytest.mark.parametrize("dataset,metric", [("digits", "accuracy"), ("iris", "accuracy"),
                                            ("wine", "accuracy"), ("diabetes", "R\\^2")])
def test_train_other_datasets(dataset, metric):
    result = run("train", "--dataset", dataset, "--epochs", "3", "--hidden", "16,8")
    assert result.returncode == 0, result.stderr
    assert re.search(rf"test {metric} -?[0-9.]+", result.stdout)


def test_bad_arguments_exit_with_usage_error():
    for args in (["train", "--epochs", "0"], ["train", "--hidden", "3,x"],
                 ["train", "--learning-rate", "-1"], ["train", "--dataset", "mnist"], []):
        result = run(*args)
        assert result.returncode == 2
        assert "error" in result.stderr


def test_divergence_is_reported_not_crashed():
    result = run("train", "--epochs", "50", "--learning-rate", "1e12")
    assert result.returncode == 1
    assert "training diverged" in result.stderr
