"""The lab: every experiment's quick form runs and reports what it promises; protocol A's runs end
below the target or are flagged; the same seeds give the same table (also in parallel); Ctrl-C
keeps the finished runs; a diverging run is a result."""

import importlib
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
           "step-size": "schedule", "optimizers": "optimizer", "batch-norm": "batch_norm",
           "sharpness-measures": "batch_size", "edge-of-stability": "learning_rate"}
# The experiments whose arms each run over a grid of learning rates: the columns naming an arm.
GRID_ARM = {"step-size": ["regime", "dataset", "schedule"], "optimizers": ["dataset", "optimizer"],
            "batch-norm": ["dataset", "batch_norm"]}


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
    written = json.loads((out / "report.json").read_text())  # what `nncore lab report` reads
    assert written["title"] == result.title and written["conclusions"] == result.conclusions
    assert written["table"]["rows"] == result.summary.astype(str).values.tolist()
    report = result.report()
    assert "±" in report  # mean and spread over seeds
    assert "The lecture's claim" in report
    assert any(verdict in report for verdict in ("held", "did not hold"))
    if name in GRID_ARM:  # one row per arm, learning rate and seed; the table at the best rates
        arm = GRID_ARM[name]
        assert not runs.duplicated(arm + ["learning_rate", "seed"]).any()
        assert runs.groupby(arm)["learning_rate"].nunique().min() >= 1
        assert (out / f"{name.replace('-', '_')}_rates.png").exists()
        mean_loss = runs.groupby(arm + ["learning_rate"])["train_loss"].mean()
        for row in result.summary.itertuples(index=False):
            key = tuple(getattr(row, c) for c in arm)
            # without failed runs, the best rate is the one of lowest mean final training loss
            if not runs.set_index(arm).loc[[key], "failed"].any():
                assert row.best_lr == mean_loss.loc[key].idxmin()


def test_every_experiment_states_its_claim():
    """Each experiment module states its claim itself (the page's fallback, the docstring's first
    sentence, is for experiments written without one)."""
    assert set(lab.CLAIMS) == set(lab.EXPERIMENTS)
    for name, claim in lab.CLAIMS.items():
        module = importlib.import_module(f"nncore.lab.{name.replace('-', '_')}")
        assert claim == module.CLAIM
        assert isinstance(claim, str) and claim.endswith(".") and len(claim) < 500


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


def _grid_frame():
    """Two arms over three rates, two seeds each: arm a is best at 0.1 (1.0 has a lower mean
    loss, but its seed 1 diverged: a rate with a failed run ranks after those without), arm b
    at 0.01 and 0.1 alike (a tie: the smaller rate)."""
    rows = []
    losses = {("a", 0.01): (0.5, 0.7), ("a", 0.1): (0.2, 0.3), ("a", 1.0): (0.01, 0.05),
              ("b", 0.01): (0.4, 0.4), ("b", 0.1): (0.4, 0.4), ("b", 1.0): (0.9, 0.8)}
    for (arm, rate), pair in losses.items():
        for seed, loss in enumerate(pair):
            rows.append({"dataset": "d", "seed": seed, "arm": arm, "learning_rate": rate,
                         "train_loss": loss, "initial_loss": 2.5, "test_accuracy": 1 - loss / 4,
                         "failed": (arm, rate, seed) == ("a", 1.0, 1)})
    return pd.DataFrame(rows)


def test_best_rate_selection_picks_each_arms_lowest_final_loss_rows():
    from nncore.lab import _rates

    frame = _grid_frame()
    best = _rates.best_rates(frame, ["dataset", "arm"])
    assert best == {("d", "a"): 0.1, ("d", "b"): 0.01}
    chosen = _rates.at_best_rates(frame, ["dataset", "arm"], best)
    assert sorted(zip(chosen["arm"], chosen["learning_rate"], chosen["seed"])) == \
        [("a", 0.1, 0), ("a", 0.1, 1), ("b", 0.01, 0), ("b", 0.01, 1)]
    table = _rates.best_rate_table(frame, ["dataset", "arm"], best, ["train_loss"])
    assert list(table["best_lr"]) == [0.1, 0.01]
    assert table.loc[0, "train_loss"].startswith("0.25 ± ")  # (0.2 + 0.3) / 2
    # a rate trains when no seed failed and every seed ended below half its initial loss
    assert _rates.rate_ranges(frame, ["arm"]) == {("a",): [0.01, 0.1], ("b",): [0.01, 0.1, 1.0]}
    assert _rates.describe_range([0.01, 0.1], [0.01, 0.1, 1.0]) == "0.01 to 0.1 (2 of 3 rates)"
    assert _rates.describe_range([], [0.01, 0.1]) == "none of the 2 rates"
    assert _rates.describe_range([0.1], [0.01, 0.1]) == "only 0.1 (1 of 2 rates)"
    assert _rates.describe_range([0.01, 0.03, 1.0], [0.01, 0.03, 0.1, 1.0]) == \
        "0.01 to 0.03 and 1 (3 of 4 rates)"


def test_contest_needs_a_gain_beyond_the_spread_over_seeds():
    from nncore.lab._rates import contest

    assert contest([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]) == "better"
    assert contest([1.0, 2.0, 3.0], [2.0, 2.5, 3.0]) == "tie"  # 0.5 apart, spread 1
    assert contest([0.9, 0.91], [0.8, 0.81], lower_is_better=False) == "better"
    # on a log scale a factor counts: 1e-3 against 1e-2 wins despite 1e-2's spread of 0.008
    assert contest([1e-3, 1.1e-3], [2e-3, 1.8e-2], log=True) == "better"
    assert contest([1e-3, 1.1e-3], [2e-3, 1.8e-2]) == "tie"


def test_step_size_verdict_uses_each_schedules_best_rate():
    """At the shared rate 0.1 the constant schedule is best, but each schedule's own best rate
    turns the verdict: cosine at 1.0 beats constant at its best (0.1) by far more than the
    spread, so the claim holds for the training loss."""
    from nncore.lab._rates import best_rates
    from nncore.lab.step_size import ARM, _conclusions

    loss = {("constant", 0.1): 0.01, ("constant", 1.0): 2.4,
            ("cosine", 0.1): 0.05, ("cosine", 1.0): 1e-4}
    rows = [{"regime": "standard", "dataset": "d", "schedule": schedule, "learning_rate": rate,
             "seed": seed, "train_loss": value * (1 + 0.01 * seed), "loss_at_half": 2 * value,
             "initial_loss": 2.5, "failed": value >= 2.5, "test_accuracy": 0.9}
            for (schedule, rate), value in loss.items() for seed in range(3)]
    frame = pd.DataFrame(rows)
    best = best_rates(frame, ARM)
    assert best == {("standard", "d", "constant"): 0.1, ("standard", "d", "cosine"): 1.0}
    [sentence] = _conclusions(frame, best, {"standard": ((0.1, 1.0), 60)})
    assert "constant lr 0.1: loss 0.0101" in sentence and "cosine lr 1: loss 0.000101" in sentence
    assert "held for the training loss" in sentence and "did not hold for the training" \
        not in sentence
    assert "did not hold for the test accuracy (within the spread" in sentence


def test_a_run_can_go_on_past_its_target():
    dataset = _datasets.load_dataset("digits")
    stopped = _run.train_run(dataset, seed=0, epochs=6, learning_rate=0.3, target=0.3)
    full = _run.train_run(dataset, seed=0, epochs=6, learning_rate=0.3, target=0.3,
                          stop_at_target=False)
    curve = full.arrays["curve"]
    first = int(np.argmax(curve < 0.3)) + 1  # the first epoch below the target, from the curve
    assert curve[first - 1] < 0.3 <= (curve[first - 2] if first > 1 else math.inf)
    assert stopped.row["epochs_to_target"] == full.row["epochs_to_target"] == first
    assert stopped.row["epochs"] == first < full.row["epochs"] == 6
    np.testing.assert_array_equal(stopped.arrays["curve"], curve[:first])


def test_sharpness_measures_tables_rescaling_invariants_and_measuring_again(tmp_path):
    """The quick run's two tables have their columns; the rescaling (a, 1/a) of the two ReLU
    layers changes no prediction (≤ 1e-6) or loss, moves the top eigenvalue ≥ 10× and adaptive
    sharpness < 10%; --from measures the saved runs again to the same numbers."""
    from nncore.lab.sharpness_measures import MEASURES

    first = lab.sharpness_measures(seeds=2, quick=True, progress=False, out=tmp_path / "a")
    taus = pd.read_csv(tmp_path / "a" / "measures.csv")
    assert {"measure", "target", "kendall_tau", "tau_low", "tau_high"} <= set(taus.columns)
    assert set(taus["measure"]) == set(MEASURES)
    assert set(taus["target"]) == {"loss_gap", "test_error"}
    finite = taus.dropna(subset=["tau_low"])
    assert len(finite) and (finite["tau_low"] <= finite["tau_high"]).all()
    assert taus["kendall_tau"].between(-1, 1).all()
    reparam = pd.read_csv(tmp_path / "a" / "reparametrization.csv")
    assert list(reparam.columns) == ["scale", "max_prediction_change", "train_loss",
                                     "test_loss", *MEASURES]
    assert reparam["scale"].min() <= 0.1 and reparam["scale"].max() >= 10
    assert (reparam["max_prediction_change"] <= 1e-6).all()
    for loss in ("train_loss", "test_loss"):
        np.testing.assert_allclose(reparam[loss], reparam[loss].iloc[0], rtol=1e-9)
    eig, adaptive = reparam["top_eigenvalue"], reparam["adaptive_sharpness"]
    assert eig.max() / eig.min() >= 10
    assert adaptive.max() / adaptive.min() <= 1.1
    assert "sharpness-measures" in first.report() and "Kendall" in first.report()

    again = lab.sharpness_measures(seeds=2, quick=True, progress=False, out=tmp_path / "b",
                                   from_dir=tmp_path / "a")
    columns = ["train_loss", "test_loss", *MEASURES]
    np.testing.assert_allclose(again.runs[columns].to_numpy(float),
                               first.runs[columns].to_numpy(float), rtol=1e-9)
    old = tmp_path / "old"  # a run written before runs saved their parameters
    old.mkdir()
    (old / "runs.csv").write_text((tmp_path / "a" / "runs.csv").read_text())
    with pytest.raises(ValueError, match="has no params.npz"):
        lab.sharpness_measures(quick=True, progress=False, from_dir=old)


def test_kendall_tau_b_matches_scipy_and_its_interval_holds_it():
    from scipy.stats import kendalltau

    from nncore.lab.sharpness_measures import kendall, tau_b

    rng = np.random.default_rng(0)
    for n in (3, 7, 30):
        x = rng.integers(0, 4, n).astype(float)  # ties
        y = x + rng.normal(size=n)
        assert tau_b(x, y)[0] == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)
    tau, low, high = kendall(x, y, random_state=0)
    assert low <= tau <= high and (low, high) == kendall(x, y, random_state=0)[1:]
    assert math.isnan(kendall([1, 2], [2, 1])[0])


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
