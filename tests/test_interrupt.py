"""Ctrl-C is honest: a sweep stops and keeps only the fits that finished (the table says it was
interrupted), and the command line ends with one line and exit status 130 — whenever the SIGINT
arrives: while the package loads, while a model trains, before the first fit of a sweep ends,
in the middle of one."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import nncore


def _sigint_default():
    # A shell that starts jobs in the background hands its children SIGINT ignored, and Python
    # then raises no KeyboardInterrupt: give the command Python's default, as a terminal does.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(args, *, after_line=None, delay=0.0, cwd=None):
    """Run `nncore ARGS`, send SIGINT to its process group `delay` seconds after it prints a
    line matching `after_line` (or after it starts), and return (exit status, stdout, stderr)."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys, _nncore_launcher; sys.exit(_nncore_launcher.main())",
         *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
        preexec_fn=_sigint_default, start_new_session=True)
    seen = []
    if after_line is not None:
        for line in process.stdout:
            seen.append(line)
            if re.search(after_line, line):
                break
        else:
            process.wait(timeout=60)
            pytest.fail(f"the command ended before printing {after_line!r}:\n{''.join(seen)}"
                        f"{process.stderr.read()}")
    time.sleep(delay)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return process.returncode, "".join(seen) + out, err


def one_line(err: str) -> str:
    """The stderr of an interrupted command, less tqdm's bar: exactly one line, no traceback or
    warning."""
    lines = [line for line in re.split(r"[\r\n]", err)
             if line.strip() and not re.search(r"\d+it|fit/s|s/fit|\|", line)]
    assert "Traceback" not in err and "Warning" not in err, err
    assert len(lines) == 1, err
    return lines[0]


def test_ctrl_c_while_the_package_loads():
    rc, _, err = interrupt(["train"], delay=0.15)
    if rc == 0:  # a machine fast enough to load and train in 0.15 s: nothing to see
        pytest.skip("the command finished before the signal")
    assert rc == 130
    assert one_line(err) == "nncore: interrupted"


def test_ctrl_c_in_train_saves_the_last_finished_epoch(tmp_path):
    model_file = tmp_path / "model.npz"
    rc, out, err = interrupt(["train", "--epochs", "100000", "--save", str(model_file)],
                             after_line=r"^epoch +5/", delay=0.3)
    assert rc == 130
    line = one_line(err)
    match = re.fullmatch(r"nncore train: interrupted after epoch (\d+) of 100000; saved the "
                         r"model as of epoch (\d+) to (.+)", line)
    assert match and match[1] == match[2] and match[3] == str(model_file), line
    epochs = int(match[1])
    printed = [int(m) for m in re.findall(r"^epoch +(\d+)/", out, re.M)]
    assert epochs >= 5 and printed[-1] in (epochs - 1, epochs)
    model = nncore.load(model_file)
    assert len(model.estimator.history_) == model.estimator.n_iter_ == epochs
    X = np.zeros((2, model.estimator.n_features_in_))
    assert np.isfinite(model.estimator.predict_proba(X)).all()


def test_ctrl_c_in_train_before_the_first_epoch_saves_nothing(tmp_path):
    model_file = tmp_path / "model.npz"
    rc, _, err = interrupt(["train", "--dataset", "digits", "--hidden", "512,512",
                            "--batch-size", "1", "--save", str(model_file)],
                           after_line=r"^model:", delay=0.3)
    assert rc == 130
    assert one_line(err) == "nncore train: interrupted before the first epoch ended; nothing saved"
    assert not model_file.exists()


# Two quick fits (batch 32), then two that take minutes (batch 1): Ctrl-C a few seconds in
# lands in a fit, with the quick ones finished.
SWEEP = ["sweep", "--dataset", "digits", "--grid", "batch_size=32,1", "--epochs", "300",
         "--seeds", "2"]


@pytest.mark.parametrize("where, delay", [([], 2.5), (["--n-jobs", "2"], 0.3),
                                          (["--n-jobs", "2"], 3.0)])
def test_ctrl_c_in_a_sweep_keeps_the_finished_fits(tmp_path, where, delay):
    table_file = tmp_path / "table.csv"
    rc, out, err = interrupt(SWEEP + where + ["--out", str(table_file)],
                             after_line=r"^nncore sweep:", delay=delay)
    assert rc == 130
    line = one_line(err)
    rows = [row.split(",") for row in table_file.read_text().splitlines()[3:]]  # less header
    if rows:  # a few seconds in: the quick fits, whole (a slow machine may have none yet)
        assert line == (f"nncore sweep: interrupted; the table holds the {len(rows)} fit(s) "
                        f"finished before Ctrl-C")
        assert all(row[0] == "32" and row[6] == "300.0" for row in rows)
    else:
        assert line == (f"nncore sweep: interrupted before any fit finished; wrote the empty "
                        f"table to {table_file}")


def test_ctrl_c_in_a_sweep_on_a_local_dask_cluster(tmp_path):
    pytest.importorskip("distributed")
    table_file = tmp_path / "table.csv"
    rc, _, err = interrupt(SWEEP + ["--scheduler", "local:2", "--out", str(table_file)],
                           after_line=r"^nncore sweep:", delay=3.0)
    assert rc == 130
    assert one_line(err).startswith("nncore sweep: interrupted")


def test_sweep_in_python_does_not_count_the_interrupted_fit():
    """The fit Ctrl-C cut short is not a row (it was one, with converged=True, and the sweep
    went on with the next fit); the rows before it stay."""
    script = textwrap.dedent("""
        import os, signal
        import numpy as np, nncore
        signal.signal(signal.SIGINT, signal.default_int_handler)
        rng = np.random.default_rng(0)
        X = rng.normal(size=(400, 8))
        y = (X[:, 0] > 0).astype(int)
        epochs_seen = 0
        def ctrl_c_in_the_third_fit(estimator, record):
            global epochs_seen
            epochs_seen += 1
            if epochs_seen == 2 * 30 + 10:
                os.kill(os.getpid(), signal.SIGINT)
        est = nncore.MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, n_iter_no_change=1000,
                                   callbacks=[ctrl_c_in_the_third_fit], random_state=0)
        table = nncore.sweep(est, {"alpha": [1e-4, 1e-3, 1e-2]}, X, y, seeds=3)
        print(len(table), table.attrs["interrupted"], sorted(set(table["epochs"])))
    """)
    result = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", script],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "True", "[30.0]"], result.stdout


def test_ctrl_c_in_the_lab_keeps_the_finished_runs(tmp_path):
    rc, out, err = interrupt(["lab", "batch-size", "--dataset", "digits", "--out",
                              str(tmp_path / "lab")], delay=5.0)  # minutes of runs
    assert rc == 130
    line = one_line(err)
    assert line == "nncore lab: interrupted" or re.fullmatch(
        r"nncore lab: interrupted; the tables hold the \d+ run\(s\) finished before Ctrl-C", line)
