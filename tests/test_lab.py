"""The lab: every experiment's quick form runs and reports what it promises; protocol A's runs end
below the target or are flagged; the same seeds give the same table (also in parallel); Ctrl-C
keeps the finished runs; a diverging run is a result."""

import json
import math

import numpy as np
import pandas as pd
import pytest

import nncore
from nncore import lab
from nncore.cli import main
from nncore.lab import _datasets, _execute, _lab, _run
from nncore.lab.zero_init import distinct_units
from nncore.lab.batch_size import MEASURED, fit_and_measure

SECONDS = ("seconds", "seconds_to_target", "train_seconds", "measure_seconds",
           "tracking_seconds", "tracking_share")

# The setting column of each experiment and the columns every runs.csv must have.
SETTING = {"zero-init": "init", "scaling": "setting", "batch-size": "batch_size",
           "step-size": "schedule", "optimizers": "optimizer", "batch-norm": "setting",
           "edge-of-stability": "learning_rate"}


def timeless(frame):
    return frame.drop(columns=[c for c in SECONDS if c in frame.columns])


@pytest.mark.parametrize("name", list(lab.EXPERIMENTS))
def test_every_experiment_quick_writes_its_table_files_and_conclusion(name, tmp_path):
    out = tmp_path / "out" / "nested"  # created if needed
    result = lab.EXPERIMENTS[name](seeds=2, quick=True, out=out, progress=False)
    runs = pd.read_csv(out / "runs.csv")
    assert {"dataset", "seed", SETTING[name], "train_loss", "test_accuracy"} <= set(runs.columns)
    assert set(runs["seed"]) == {0, 1}
    assert len(runs) == len(result.runs) > 0
    assert np.isfinite(runs["train_loss"]).all()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["nncore_version"] == nncore.__version__
    assert meta["build_info"] == nncore.build_info()
    assert meta["seeds"] == [0, 1] and meta["wall_seconds"] > 0 and meta["cpu"]
    assert list(out.glob("*.png")), "no figure written"
    report = result.report()
    assert "±" in report  # mean and spread over seeds
    assert "The lecture's claim" in report
    assert any(verdict in report for verdict in ("held", "did not hold"))


def test_batch_size_protocol_a_ends_below_the_target_or_flags_the_run():
    dataset = _datasets.load_dataset("digits")
    rows = {}
    for b, cap in ((None, 2000), (128, 2000), (8, 150)):  # batch 8 hits this cap first
        result = fit_and_measure(dataset, seed=0, batch_size=b, protocol="loss",
                                 learning_rate=0.1, target=0.05, max_steps=cap, epochs=1,
                                 quick=True)
        rows[b] = result.row
        network = dataset.network((64, 64))
        network.params[:] = result.arrays["params"]
        # the recorded loss is the returned network's full training loss
        assert network.mean_loss(dataset.X_train, dataset.targets(dataset.y_train)) == \
            pytest.approx(result.row["train_loss"], rel=1e-12)
        assert result.row["steps"] <= cap
        assert set(MEASURED) <= set(result.row)
    assert rows[None]["reached_target"] and rows[None]["train_loss"] < 0.05
    assert rows[128]["reached_target"] and rows[128]["train_loss"] < 0.05
    assert not rows[8]["reached_target"] and rows[8]["train_loss"] >= 0.05
    # full batch stops at the first step whose loss is below target: one step fewer is above it
    network = dataset.network((64, 64), activation="relu", init="pytorch_uniform", alpha=0.0,
                              random_state=0)
    losses = nncore.train(network, dataset.X_train, dataset.targets(dataset.y_train),
                          epochs=rows[None]["steps"], learning_rate=0.1, batch_size=None,
                          shuffle=False)
    assert min(losses) >= 0.05
    assert rows[None]["train_loss"] < 0.05


def test_batch_size_flags_missed_runs_and_keeps_them_out_of_the_comparison():
    result = lab.batch_size(seeds=1, quick=True, progress=False, max_steps=150,
                            batch_sizes=(8, None))
    runs = result.runs
    assert (runs["reached_target"] == (runs["train_loss"] < 0.05)).all()
    missed = runs[~runs["reached_target"]]
    assert len(missed) >= 1
    assert any("missed the target" in c for c in result.conclusions)


def test_batch_size_protocol_b_is_labelled_and_gives_equal_epochs(tmp_path):
    result = lab.batch_size(seeds=1, quick=True, progress=False, protocol="epochs", epochs=2,
                            batch_sizes=(128, None), out=tmp_path)
    assert "protocol B" in result.report()
    steps = dict(zip(result.runs["batch_size"], result.runs["steps"]))
    assert steps == {"128": 2 * math.ceil(1257 / 128), "full": 2}
    assert json.loads((tmp_path / "meta.json").read_text())["options"]["protocol"] == "epochs"


def test_same_seeds_same_table_also_in_parallel(tmp_path):
    kwargs = dict(seeds=2, quick=True, progress=False, batch_sizes=(32, None), max_steps=120)
    first = lab.batch_size(**kwargs, out=tmp_path / "a")
    again = lab.batch_size(**kwargs, n_jobs=2, out=tmp_path / "b")
    pd.testing.assert_frame_equal(timeless(pd.read_csv(tmp_path / "a" / "runs.csv")),
                                  timeless(pd.read_csv(tmp_path / "b" / "runs.csv")))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a" / "interpolation.csv"),
                                  pd.read_csv(tmp_path / "b" / "interpolation.csv"))
    assert len(first.runs) == len(again.runs) == 4


def _finishes(dataset, **arguments):
    return _run.RunResult({"value": arguments["seed"]})


def _interrupts(dataset, **arguments):
    raise KeyboardInterrupt


def test_ctrl_c_stops_the_remaining_runs_and_keeps_the_finished_ones(tmp_path):
    dataset = _datasets.load_dataset("digits")
    runs = [_execute.Run({"dataset": "digits", "seed": 0}, _finishes, {"seed": 0}, cost=3),
            _execute.Run({"dataset": "digits", "seed": 1}, _interrupts, {"seed": 1}, cost=2),
            _execute.Run({"dataset": "digits", "seed": 2}, _finishes, {"seed": 2}, cost=1)]
    experiment = _lab.Lab("test", seeds=3, quick=True, out=tmp_path, n_jobs=1,
                             progress=False)
    experiment.datasets = {"digits": dataset}
    frame, results, interrupted = experiment.run(runs)
    assert interrupted and list(frame["seed"]) == [0] and list(results) == [0]
    result = experiment.finish(frame, frame, [], title="t")
    assert "Interrupted: 1 finished run(s) kept." in result.report()
    assert pd.read_csv(tmp_path / "runs.csv")["value"].tolist() == [0]
    assert json.loads((tmp_path / "meta.json").read_text())["interrupted"] is True


def test_a_diverging_run_is_a_result_not_a_crash():
    dataset = _datasets.load_dataset("digits")
    result = _run.train_run(dataset, seed=0, epochs=5, learning_rate=1e4, batch_size=32)
    assert result.row["diverged"] and result.row["diverged_epoch"] == 1
    assert np.isfinite(result.arrays["params"]).all()  # its last finite state


def test_distinct_units_counts_identical_hidden_units():
    network = nncore.Network([3, 4, 5, 2], init="zeros")
    assert distinct_units(network) == [1, 1]
    network.coefs[0][:, 1] = 1.0
    network.coefs[1][:, :] = np.arange(5.0)
    assert distinct_units(network) == [2, 5]


def test_command_line_lab_on_a_csv_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    frame["colour"] = rng.choice(["red", "blue"], size=120)
    frame["label"] = np.where(frame["a"] + (frame["colour"] == "red") > 0.5, "yes", "no")
    frame.to_csv(tmp_path / "data.csv", index=False)
    out = tmp_path / "lab"
    code = main(["lab", "zero-init", "--quick", "--seeds", "1", "--no-progress", "--csv",
                 str(tmp_path / "data.csv"), "--target", "label", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "zero-init" in printed and "data" in printed
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["dataset"]) == {"data"} and len(runs) == 3
    assert json.loads((out / "meta.json").read_text())["command"].startswith("nncore lab zero-init")


def test_command_line_lab_errors_are_one_line(tmp_path, capsys):
    assert main(["lab", "scaling", "--quick", "--protocol", "epochs"]) == 2
    assert "--protocol does not apply to scaling" in capsys.readouterr().err
    pd.DataFrame({"a": [1.0, None, 3.0] * 10, "y": [0, 1] * 15}).to_csv(tmp_path / "m.csv",
                                                                        index=False)
    assert main(["lab", "zero-init", "--quick", "--csv", str(tmp_path / "m.csv"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "'a'" in capsys.readouterr().err  # the column with the missing value is named


def _batch_size_runs(eigenvalues, accuracies, reached=None):
    """A runs table of batch 8 and the full batch, one row per (batch size, seed)."""
    rows = []
    for batch, eigs in eigenvalues.items():
        for seed, (eig, acc) in enumerate(zip(eigs, accuracies[batch])):
            rows.append({"dataset": "d", "seed": seed, "batch_size": batch,
                         "top_eigenvalue": eig, "test_accuracy": acc, "test_loss": 1 - acc,
                         "diverged": False,
                         "reached_target": True if reached is None else reached[batch][seed],
                         **{c: 1.0 for c in ("steps", "train_loss", "train_accuracy", "trace",
                                             "eps_sharpness", "slice_rise", "param_norm",
                                             "train_seconds", "measure_seconds")}})
    return pd.DataFrame(rows)


def test_batch_size_verdict_judges_flatness_against_the_seed_spread_too():
    from nncore.lab.batch_size import _conclusions

    # 1.02x flatter, well inside a spread of ~3: flatness is a tie, not "held for flatness".
    tie = _batch_size_runs({"8": [7.0, 10.0, 13.2], "full": [7.2, 10.2, 13.5]},
                           {"8": [0.90, 0.91, 0.92], "full": [0.90, 0.91, 0.92]})
    [sentence] = _conclusions(tie, "loss", 0.05)
    assert "as sharp, within the spread over seeds" in sentence
    assert "did not hold: neither difference is beyond the spread over seeds" in sentence
    flat = _batch_size_runs({"8": [2.0, 2.1, 2.2], "full": [9.0, 9.1, 9.2]},
                            {"8": [0.95, 0.96, 0.97], "full": [0.90, 0.91, 0.92]})
    [sentence] = _conclusions(flat, "loss", 0.05)
    assert "a flatter minimum" in sentence and "claim (small batches" in sentence
    assert sentence.endswith("held on this data set.")
    accurate_only = _batch_size_runs({"8": [7.0, 10.0, 13.2], "full": [7.2, 10.2, 13.5]},
                                     {"8": [0.95, 0.96, 0.97], "full": [0.90, 0.91, 0.92]})
    [sentence] = _conclusions(accurate_only, "loss", 0.05)
    assert "held for accuracy only: the sharpness difference is within the spread" in sentence


def test_batch_size_table_means_are_the_sentence_means():
    """Runs that missed the target are left out of the sentence's means and of the table's
    (the table still counts them under `seeds`, and `reached` says how many reached)."""
    from nncore.lab.batch_size import _conclusions, _summary

    runs = _batch_size_runs({"8": [2.0, 4.0, 100.0], "full": [9.0, 11.0, 10.0]},
                            {"8": [0.95, 0.97, 0.10], "full": [0.90, 0.92, 0.91]},
                            reached={"8": [True, True, False], "full": [True, True, True]})
    summary = _summary(runs, "loss").set_index("batch_size")
    assert summary.loc["8", "top_eigenvalue"].startswith("3 ± ")  # (2 + 4) / 2, not 35.3
    assert summary.loc["8", "test_accuracy"].startswith("0.96 ± ")
    assert summary.loc["8", "seeds"] == 3 and summary.loc["8", "reached"] == 2
    missed, sentence = _conclusions(runs, "loss", 0.05)
    assert "1 run(s) missed the target" in missed and "table's means" in missed
    assert "top eigenvalue 3 vs 10" in sentence and "test accuracy 0.960 vs 0.910" in sentence


def test_edge_of_stability_quick_tracks_the_top_eigenvalue(tmp_path):
    from nncore.lab.edge_of_stability import LEARNING_RATES, PLATEAU_FROM

    result = lab.edge_of_stability(seeds=1, quick=True, out=tmp_path, progress=False)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert {"loss", "learning_rate", "seed", "edge", "plateau"} <= set(runs.columns)
    assert set(runs["loss"]) == {"squared_error", "logistic"}  # noisy-binary: two classes
    assert sorted(set(runs["learning_rate"])) == sorted(LEARNING_RATES)
    np.testing.assert_allclose(runs["edge"], 2 / runs["learning_rate"])
    sharpness = pd.read_csv(tmp_path / "sharpness.csv")
    steps = result.runs["steps"].iloc[0]
    for _, track in sharpness.groupby(["loss", "learning_rate", "seed"]):
        # λmax at step 0 and every few steps after, all of them positive numbers
        assert list(track["step"]) == list(range(0, steps + 1, 10))
        assert (track["top_eigenvalue"] > 0).all()
    # the plateau is the median over the last third of the measurements
    for _, row in runs.iterrows():
        track = sharpness[(sharpness["loss"] == row["loss"])
                          & (sharpness["learning_rate"] == row["learning_rate"])]
        late = track[track["step"] >= steps * PLATEAU_FROM]
        assert row["plateau"] == pytest.approx(late["top_eigenvalue"].median())
    # the warm start agrees with the cold start, in fewer products
    assert (runs["warm_vs_cold"] < 1e-2).all()
    assert (runs["warm_products"] < runs["cold_products"]).all()
    assert "2/η" in result.report() and "warm-started Lanczos" in result.report()


def test_edge_of_stability_tracked_eigenvalue_is_the_full_hessians():
    """An independent check of one measurement: the tracked λmax at the last step of a short
    run is the largest eigenvalue of the full Hessian (numpy's eigh) at the network it ends
    with, rebuilt by the same seeded steps of nncore.train."""
    from nncore import curvature
    from nncore.lab.edge_of_stability import problem, track

    dataset = _datasets.load_dataset("noisy-binary")
    result = track(dataset, seed=0, loss="squared_error", learning_rate=0.4, steps=30, every=10,
                   n_rows=60, hidden=(6, 6))
    X, Y, *_ = problem(dataset, "squared_error", 60)
    network = nncore.Network([X.shape[1], 6, 6, 2], "tanh", "squared_error", random_state=0)
    # the loss curve starts at the initial network's loss: each step's record is the loss at
    # the parameters it started from
    assert result.arrays["losses"][0] == pytest.approx(network.mean_loss(X, Y), rel=1e-12)
    assert len(result.arrays["losses"]) == 31
    nncore.train(network, X, Y, epochs=30, learning_rate=0.4, batch_size=None, shuffle=False)
    exact = np.linalg.eigvalsh(curvature.hessian(network, X, Y))[-1]
    assert list(result.arrays["measured_at"]) == [0, 10, 20, 30]
    assert result.arrays["eigenvalues"][-1] == pytest.approx(exact, rel=1e-3)
    assert result.row["train_loss"] == pytest.approx(network.mean_loss(X, Y), rel=1e-12)


def test_edge_of_stability_verdict_needs_every_step_size_within_ten_percent():
    from nncore.lab.edge_of_stability import _conclusions

    def frame(plateaus):
        rows = []
        for rate, plateau in plateaus.items():
            rows.append({"dataset": "d", "seed": 0, "loss": "squared_error",
                         "learning_rate": rate, "edge": 2 / rate, "plateau": plateau,
                         "plateau_ratio": plateau * rate / 2, "initial_lambda": 1.0,
                         "max_lambda": plateau, "final_lambda": plateau, "loss_rises": 0.2,
                         "within_10pct": abs(plateau * rate / 2 - 1) <= 0.1,
                         "diverged": False})
        return pd.DataFrame(rows)

    [held] = _conclusions(frame({0.25: 8.7, 0.4: 4.6}))  # +8.75%, -8%
    assert "(the plateau within ±10% of 2/η at every step size) held" in held
    [missed] = _conclusions(frame({0.25: 8.7, 0.4: 5.6}))  # +12% at η = 0.4
    assert "did not hold: outside for η = 0.4 (above 2/η)" in missed
    [both] = _conclusions(frame({0.25: 6.0, 0.4: 5.6}))  # -25% at η = 0.25
    assert "outside for η = 0.25 (below 2/η), η = 0.4 (above 2/η)" in both
