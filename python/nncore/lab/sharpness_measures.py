"""sharpness-measures — does the sharpness of a minimum predict its generalisation gap, and which
sharpness? Dinh et al. (2017) showed that rescaling one ReLU layer by a and the next by 1/a
changes no prediction yet moves the Hessian's top eigenvalue at will; magnitude-aware measures
(adaptive sharpness, Kwon et al. 2021; PAC-Bayes σ′, Jiang et al. 2020) are built not to move.

Two parts. Over runs — the batch-size experiment's protocol (batch sizes × seeds × data sets,
every run trained to the same training loss), trained here or read back from a finished run's
folder (``from_dir``: its runs.csv and params.npz) — each measure against the generalisation gap
(test loss − training loss) and the test error, as Kendall's τ over the runs of a data set with a
seeded bootstrap interval (measures.csv). Then one trained model rescaled, layer 1 by a and
layer 2 by 1/a for a from 0.1 to 10: predictions and losses unchanged, and every measure's value
(reparametrization.csv)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .. import curvature
from .._docs import with_shared_docs
from . import batch_size as _batch_size
from ._datasets import HIDDEN, load_datasets
from ._execute import Run
from ._lab import EXPERIMENT_PARAMETERS, Lab
from ._report import spread_table
from ._run import RunResult, evaluate

# One line for `nncore lab --help`.
DESCRIPTION = ("eight sharpness measures vs the generalisation gap (Kendall τ), and a rescaling "
               "that changes no prediction")
# The claim in the lecture's words (a report page shows it).
_CLAIMED = ("flat minima generalise better: the sharpness of a minimum predicts its "
            "generalisation gap")
CLAIM = (f"{_CLAIMED[0].upper()}{_CLAIMED[1:]}. Dinh et al. 2017, arXiv:1703.04933; Kwon et al. "
         f"2021, arXiv:2102.11600; Jiang et al. 2020, arXiv:1912.02178.")

MEASURES = ("top_eigenvalue", "trace", "eps_sharpness", "slice_rise", "adaptive_sharpness",
            "pac_bayes_sigma", "pac_bayes_mag_sigma", "param_norm")
# The sign of τ the claim predicts: +1 where a larger value means sharper, -1 for the noise
# scales σ and σ′ (a larger σ is a flatter minimum).
EXPECTED_SIGN = {name: -1 if name.startswith("pac_bayes") else 1 for name in MEASURES}
TARGETS = {"loss_gap": "test loss − training loss", "test_error": "1 − test accuracy"}
RHO, ETA = 0.5, 1e-3  # adaptive sharpness: the ball's radius and floor
THRESHOLD, EPSILON = 0.1, 1e-3  # PAC-Bayes: the allowed mean loss rise, σ′'s floor
SCALES = tuple(np.geomspace(0.1, 10.0, 9))  # the rescaling's a
QUICK_SCALES = (0.1, 1.0, 10.0)
BOOTSTRAP = 2000  # resamples of the runs for τ's interval
MOVED = 0.1  # a measure moved when its largest value over the scales exceeds its smallest by 10%


def new_measures(network, dataset, *, seed: int, quick: bool = False) -> dict:
    """Adaptive sharpness and the two PAC-Bayes noise scales of the training objective."""
    X, Y = dataset.X_train, dataset.targets(dataset.y_train)
    n_draws = 5 if quick else 20
    adaptive = curvature.adaptive_sharpness(network, X, Y, rho=RHO, eta=ETA,
                                            max_iter=5 if quick else 20, random_state=seed)
    sigma = curvature.pac_bayes_sigma(network, X, Y, threshold=THRESHOLD, n_draws=n_draws,
                                      tol=0.02, random_state=seed)
    prime = curvature.pac_bayes_sigma(network, X, Y, threshold=THRESHOLD, n_draws=n_draws,
                                      tol=0.02, magnitude_aware=True, epsilon=EPSILON,
                                      random_state=seed)
    return {"adaptive_sharpness": adaptive.sharpness, "pac_bayes_sigma": sigma.sigma,
            "pac_bayes_mag_sigma": prime.sigma}


def measure_all(network, dataset, *, seed: int, quick: bool = False) -> dict:
    """Every measure of MEASURES at the network's parameters."""
    numbers, _ = _batch_size.measure(network, dataset, seed=seed, quick=quick)
    numbers.update(new_measures(network, dataset, seed=seed, quick=quick))
    return {name: numbers[name] for name in MEASURES}


def _network(dataset, params):
    network = dataset.network(HIDDEN, activation="relu", alpha=0.0)
    network.params[:] = params
    return network


def _gaps(row: dict) -> dict:
    return {"loss_gap": row["test_loss"] - row["train_loss"],
            "test_error": 1.0 - row["test_accuracy"]}


def fit_and_measure(dataset, *, seed, quick, **protocol) -> RunResult:
    """One run of the batch-size protocol, measured with every measure (a lab runner task)."""
    result = _batch_size.fit_and_measure(dataset, seed=seed, quick=quick, **protocol)
    row = dict(result.row)
    if not row["diverged"]:
        network = _network(dataset, result.arrays["params"])
        row.update(new_measures(network, dataset, seed=seed, quick=quick))
    row.update(_gaps(row))
    return RunResult(row, {"params": result.arrays["params"]})


def remeasure(dataset, *, params, seed, quick, row) -> RunResult:
    """A finished run read back (its parameters and runs.csv row), measured again with every
    measure (a lab runner task)."""
    row = {key: value for key, value in row.items() if key not in MEASURES}
    if row.get("diverged") is True or str(row.get("diverged")) == "True":
        return RunResult(row, {"params": np.asarray(params)})  # nothing to measure
    network = _network(dataset, params)
    row.update(evaluate(dataset, network))
    row.update(measure_all(network, dataset, seed=seed, quick=quick))
    row.update(_gaps(row))
    return RunResult(row, {"params": np.asarray(params)})


def rescaled(network, a: float):
    """A copy computing the same function: the first layer's weights and biases times a, the
    second layer's weights over a (ReLU is positively homogeneous: relu(a z) = a relu(z))."""
    other = network.copy()
    other.coefs[0][:] *= a
    other.intercepts[0][:] *= a
    other.coefs[1][:] /= a
    return other


def reparametrization(network, dataset, scales, *, quick: bool = False):
    """One row per a: the largest change of any output (training and test rows), both losses,
    and every measure (seed 0) of the rescaled network."""
    import pandas as pd

    X = np.vstack([dataset.X_train, dataset.X_test])
    reference = network.forward(X)
    rows = []
    for a in scales:
        other = rescaled(network, float(a))
        scores = evaluate(dataset, other)
        rows.append({"scale": float(a),
                     "max_prediction_change": float(np.abs(other.forward(X) - reference).max()),
                     "train_loss": scores["train_loss"], "test_loss": scores["test_loss"],
                     **measure_all(other, dataset, seed=0, quick=quick)})
    return pd.DataFrame(rows)


def tau_b(X, Y) -> np.ndarray:
    """Kendall's τ-b of each row pair of X and Y (k, n): (concordant − discordant pairs) /
    √(pairs untied in x · pairs untied in y); NaN where every value of a row is tied."""
    X, Y = np.atleast_2d(X), np.atleast_2d(Y)
    sx = np.sign(X[:, :, None] - X[:, None, :])  # each ordered pair counted twice: cancels
    sy = np.sign(Y[:, :, None] - Y[:, None, :])
    untied = np.sqrt(np.abs(sx).sum(axis=(1, 2)) * np.abs(sy).sum(axis=(1, 2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(untied > 0, (sx * sy).sum(axis=(1, 2)) / untied, np.nan)


def kendall(x, y, *, random_state=0, n_boot: int = BOOTSTRAP):
    """(τ-b, 2.5% and 97.5% points of τ-b over n_boot bootstrap resamples of the pairs); NaN
    with fewer than 3 pairs. Resamples where τ is undefined (all values tied) are left out."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3:
        return math.nan, math.nan, math.nan
    tau = float(tau_b(x, y)[0])
    picks = np.random.RandomState(random_state).randint(0, len(x), (n_boot, len(x)))
    boots = tau_b(x[picks], y[picks])
    boots = boots[np.isfinite(boots)]
    if not len(boots):
        return tau, math.nan, math.nan
    low, high = np.percentile(boots, [2.5, 97.5])
    return tau, float(low), float(high)


def _compared(frame):
    """The runs the correlations rest on: finished, not diverged, and at the training-loss
    target where the protocol had one."""
    keep = ~frame["diverged"].astype(bool)
    if "reached_target" in frame:
        keep &= frame["reached_target"].astype(bool)
    return keep & frame[list(MEASURES)].notna().all(axis=1)


def correlations(frame, *, random_state=0):
    """measures.csv: Kendall's τ of every measure against every target over the compared runs of
    each data set, with its bootstrap interval."""
    import pandas as pd

    rows = []
    usable = frame[_compared(frame)]
    for name, group in usable.groupby("dataset", sort=False):
        for measure in MEASURES:
            for target in TARGETS:
                tau, low, high = kendall(group[measure], group[target], random_state=random_state)
                sign = EXPECTED_SIGN[measure]
                # tracked: the whole interval on the side of 0 the claim predicts
                tracked = low > 0 if sign > 0 else high < 0
                rows.append({"dataset": name, "measure": measure, "target": target,
                             "kendall_tau": tau, "tau_low": low, "tau_high": high,
                             "runs": len(group), "expected_sign": sign,
                             "tracked": bool(tracked)})
    return pd.DataFrame(rows)


def _ratio(values) -> float:
    values = np.abs(np.asarray(values, dtype=float))
    return float(values.max() / values.min()) if values.min() > 0 else math.inf


def _tau_text(row) -> str:
    return f"τ {row.kendall_tau:+.2f} [{row.tau_low:+.2f}, {row.tau_high:+.2f}]"


def _against(row) -> bool:
    """τ's whole interval on the side of 0 opposite to the claim's prediction."""
    return row.tau_high < 0 if row.expected_sign > 0 else row.tau_low > 0


def _conclusions(frame, taus, reparam):
    out = []
    for name, group in taus.groupby("dataset", sort=False):
        for target, part in group.groupby("target", sort=False):
            tracked = [f"{r.measure} ({_tau_text(r)})" for r in part.itertuples() if r.tracked]
            against = [f"{r.measure} ({_tau_text(r)})" for r in part.itertuples()
                       if _against(r)]
            out.append(f"{name}, {target} ({TARGETS[target]}), {part['runs'].iloc[0]} runs: "
                       f"tracked — τ's 95% bootstrap interval on the predicted side of 0 — by "
                       f"{', '.join(tracked) or 'no measure'}"
                       + (f"; against the prediction (interval on the other side): "
                          f"{', '.join(against)}" if against else "") + ".")
    moved, stayed = {}, {}
    if len(reparam):
        for measure in MEASURES:
            ratio = _ratio(reparam[measure])
            (moved if ratio > 1 + MOVED else stayed)[measure] = ratio
        losses = reparam[["train_loss", "test_loss"]]

        def listed(ratios):
            return ", ".join(f"{m} {r:.3g}×" for m, r in ratios.items()) or "nothing"

        out.append(
            f"Rescaling layer 1 by a and layer 2 by 1/a (a = {reparam['scale'].min():g} … "
            f"{reparam['scale'].max():g}) changed no output by more than "
            f"{reparam['max_prediction_change'].max():.1e} and the training and test loss by at "
            f"most {float((losses - losses.iloc[[0]].to_numpy()).abs().to_numpy().max()):.1e}, "
            f"but moved (largest over smallest value) {listed(moved)}; within {MOVED:.0%} stayed "
            f"{listed(stayed)}.")
    if len(taus):
        gap = taus[taus["target"] == "loss_gap"]
        held, failed, robust = [], [], []
        for name, part in gap.groupby("dataset", sort=False):
            tracked = list(part.loc[part["tracked"], "measure"])
            (held if len(tracked) > len(MEASURES) // 2 else failed).append(
                f"{name} ({len(tracked)} of {len(MEASURES)} measures tracked the loss gap)")
            robust.append(f"{name}: {', '.join(m for m in tracked if m in stayed) or 'none'}")
        out.append(
            f"The lecture's claim ({_CLAIMED}) held on {', '.join(held) or 'no data set'} and did "
            f"not hold on {', '.join(failed) or 'no data set'}. As a property of the minimum "
            f"it did not hold for {', '.join(moved) or 'no measure'}: the rescaling moved them "
            f"without changing a prediction. Measures that tracked the loss gap and withstood "
            f"the rescaling — {'; '.join(robust)}.")
    return out


def _read_runs(from_dir):
    """(runs.csv as a DataFrame, [parameters per row], the source's meta.json options) of a
    finished batch-size or sharpness-measures run."""
    import pandas as pd

    folder = Path(from_dir)
    runs_file, params_file = folder / "runs.csv", folder / "params.npz"
    for needed in (runs_file, params_file):
        if not needed.exists():
            raise ValueError(f"{folder} has no {needed.name}: give the --out folder of a "
                             f"finished 'nncore lab batch-size' or 'sharpness-measures' run "
                             f"(runs made before they saved params.npz must be run again)")
    frame = pd.read_csv(runs_file, dtype={"batch_size": str})
    with np.load(params_file) as saved:
        params = [saved[f"run_{i}"] for i in range(len(frame))]
    meta_file = folder / "meta.json"
    options = json.loads(meta_file.read_text()).get("options", {}) if meta_file.exists() else {}
    return frame, params, options


@with_shared_docs(**EXPERIMENT_PARAMETERS)
def run(*, seeds: int = 3, quick: bool = False, out=None, n_jobs: int = 1, progress: bool = True,
        datasets=None, csv=None, target_column=None, protocol: str = "loss",
        learning_rate: float = 0.1, target: float = 1e-3, max_steps: int = _batch_size.MAX_STEPS,
        epochs: int = 100, batch_sizes=None, from_dir=None, command=None, scheduler=None):
    """The sharpness-measures experiment: which sharpness tracks the generalisation gap, and
    which a function-preserving rescaling fools.

    Runs of the batch-size protocol (trained here, or read back with ``from_dir``) are measured
    with the top Hessian eigenvalue, the trace, ε-sharpness, the slice rise, adaptive sharpness
    (ρ = 0.5, η = 1e-3), PAC-Bayes σ and σ′ (a mean rise of 0.1, ε = 1e-3) and the parameter
    norm; each against test loss − training loss and the test error as Kendall's τ per data set
    with a seeded bootstrap interval; then one model (the first data set's seed-0 full-batch
    run) is rescaled layer by layer, a from 0.1 to 10.

    Parameters
    ----------
    seeds : int
        How many seeds (0..seeds-1) each batch size runs with.
    quick : bool
        A few seconds' version (fewer steps, settings, scales and draws), what the tests run.
    out : str, path-like or None
        A folder for ``runs.csv``, ``params.npz`` (every run's parameters), ``measures.csv``,
        ``reparametrization.csv``, ``meta.json`` and the PNG figures; None writes nothing.
    {n_jobs}
    {progress}
    datasets : str, list of str or None
        Built-in data sets; None takes digits and noisy-binary (digits alone when quick).
    {csv}
    {target_column}
    protocol : {'loss', 'epochs'}
        The batch-size protocol: ``'loss'`` trains every run to ``target``; ``'epochs'`` gives
        every batch size ``epochs`` epochs.
    learning_rate : float
        The SGD step size of every run.
    target : float
        The training loss of protocol ``'loss'``.
    max_steps : int
        Protocol ``'loss'``: the most steps of a run.
    epochs : int
        Protocol ``'epochs'``: the epochs of every run.
    batch_sizes : sequence or None
        The batch sizes (None in the sequence is the full batch); None takes the batch-size
        experiment's.
    from_dir : str, path-like or None
        Train nothing: measure the runs of this finished ``batch-size`` or
        ``sharpness-measures`` folder (its ``runs.csv`` and ``params.npz``) again.
    {command}
    {scheduler}

    Returns
    -------
    LabResult
        The runs, the table of mean ± spread per data set and batch size, the τ and
        reparametrisation tables, the conclusions and the files written.
    """
    from .._validation import check_param

    if protocol not in ("loss", "epochs"):
        raise ValueError(f"protocol must be 'loss' or 'epochs', got {protocol!r}")
    learning_rate = check_param(learning_rate, "learning_rate")
    target = check_param(target, "target", bound="epsilon")
    max_steps = check_param(max_steps, "max_steps", bound="epochs")
    epochs = check_param(epochs, "epochs")
    if quick:
        max_steps, epochs, target = min(max_steps, 400), min(epochs, 5), max(target, 0.05)
    if from_dir is not None:
        source, saved_params, source_options = _read_runs(from_dir)
        names = list(dict.fromkeys(source["dataset"]))
        chosen = load_datasets(None if csv is not None else names, csv, target_column)
        options = {"from_dir": str(from_dir), "source_options": source_options}
    else:
        sizes = tuple(batch_sizes) if batch_sizes is not None else (
            _batch_size.QUICK_BATCH_SIZES if quick else _batch_size.BATCH_SIZES)
        chosen = load_datasets(datasets, csv, target_column,
                               default=["digits"] if quick else _batch_size.DATASETS)
        options = {"protocol": protocol, "learning_rate": learning_rate, "target": target,
                   "max_steps": max_steps, "epochs": epochs,
                   "batch_sizes": [_batch_size._label(b) for b in sizes]}
    options.update(datasets=[d.name for d in chosen], rho=RHO, eta=ETA, threshold=THRESHOLD,
                   epsilon=EPSILON, bootstrap=BOOTSTRAP)
    lab = Lab("sharpness-measures", seeds=seeds, quick=quick, out=out, n_jobs=n_jobs,
              progress=progress, command=command, scheduler=scheduler, options=options)
    lab.datasets = {d.name: d for d in chosen}
    runs = []
    if from_dir is not None:
        for (_, row), params in zip(source.iterrows(), saved_params):
            settings = {"dataset": row["dataset"], "seed": int(row["seed"]),
                        "batch_size": str(row["batch_size"])}
            rest = {k: v for k, v in row.items() if k not in settings}
            runs.append(Run(settings, remeasure, dict(params=params, seed=settings["seed"],
                                                      quick=quick, row=rest)))
    else:
        for dataset in chosen:
            for seed in range(lab.seeds):
                for b in sizes:
                    cost = dataset.n_train * (max_steps if b is None else max_steps / 40)
                    runs.append(Run({"dataset": dataset.name, "seed": seed,
                                     "batch_size": _batch_size._label(b)}, fit_and_measure,
                                    dict(seed=seed, batch_size=b, protocol=protocol,
                                         learning_rate=learning_rate, target=target,
                                         max_steps=max_steps, epochs=epochs, quick=quick),
                                    cost))
    frame, results, _ = lab.run(runs)
    lab.save_params(results)
    taus = correlations(frame) if len(frame) else frame
    reparam = _reparametrization(lab, frame, results, quick)
    summary = (spread_table(frame[_compared(frame)], ["dataset", "batch_size"],
                            [*TARGETS, *MEASURES]) if len(frame) else frame)
    title = (f"sharpness-measures — the claim: {_CLAIMED}. Kendall's τ of each measure against "
             f"the gap over the runs of each data set (95% bootstrap interval), and a rescaling "
             f"(a, 1/a) of two ReLU layers that changes no prediction")
    tables = {"measures": taus, "reparametrization": reparam}
    result = lab.finish(frame, summary, _conclusions(frame, taus, reparam) if len(frame) else [],
                        title=title, tables={k: v for k, v in tables.items() if len(v)},
                        shown={"Kendall's τ (measures.csv)": _tau_table(taus),
                               "The rescaling (reparametrization.csv)": reparam},
                        figures=lambda lab_: _figures(lab_, taus, reparam))
    return result


def _reparametrization(lab, frame, results, quick):
    """The rescaling of one model: the first data set's seed-0 full-batch run (else its first
    compared run)."""
    import pandas as pd

    compared = frame[_compared(frame)] if len(frame) else frame
    if not len(compared):
        return pd.DataFrame()
    first = compared[compared["dataset"] == compared["dataset"].iloc[0]]
    chosen = first[(first["seed"] == 0) & (first["batch_size"].astype(str) == "full")]
    index = (chosen if len(chosen) else first).index[0]
    row = frame.loc[index]
    dataset = lab.datasets[row["dataset"]]
    network = _network(dataset, results[sorted(results)[index]].arrays["params"])
    lab.options["reparametrized_run"] = {"dataset": row["dataset"], "seed": int(row["seed"]),
                                         "batch_size": str(row["batch_size"])}
    return reparametrization(network, dataset, QUICK_SCALES if lab.quick else SCALES,
                             quick=quick)


def _tau_table(taus):
    """measures.csv for the report: one row per data set and measure, τ [interval] per
    target."""
    import pandas as pd

    if not len(taus):
        return taus
    rows = []
    for (name, measure), part in taus.groupby(["dataset", "measure"], sort=False):
        row = {"dataset": name, "measure": measure}
        for r in part.itertuples():
            row[r.target] = (f"{r.kendall_tau:+.2f} [{r.tau_low:+.2f}, {r.tau_high:+.2f}]"
                             + (" ✓" if r.tracked else ""))
        rows.append(row)
    return pd.DataFrame(rows)


def _figures(lab, taus, reparam):
    def tau_plot(plt):
        names = list(dict.fromkeys(taus["dataset"]))
        fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.2), squeeze=False)
        for ax, name in zip(axes[0], names):
            for k, (target, marker) in enumerate(zip(TARGETS, ("o", "s"))):
                part = taus[(taus["dataset"] == name) & (taus["target"] == target)]
                y = np.arange(len(part)) + (k - 0.5) * 0.3
                ax.errorbar(part["kendall_tau"], y,
                            xerr=[part["kendall_tau"] - part["tau_low"],
                                  part["tau_high"] - part["kendall_tau"]],
                            fmt=marker, capsize=3, label=target.replace("_", " "))
            ax.set_yticks(np.arange(len(MEASURES)))
            ax.set_yticklabels([f"{m} ({'+' if EXPECTED_SIGN[m] > 0 else '−'})"
                                for m in MEASURES])
            ax.axvline(0, color="grey", lw=0.5)
            ax.set_xlim(-1.05, 1.05)
            ax.invert_yaxis()
            ax.set_xlabel("Kendall's τ with 95% bootstrap interval (predicted sign in brackets)")
            ax.set_title(name)
            ax.legend(fontsize=7)
        fig.tight_layout()
        return fig

    def reparam_plot(plt):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        base = reparam.iloc[int(np.argmin(np.abs(np.log(reparam["scale"]))))]
        for measure in MEASURES:
            ax.plot(reparam["scale"], reparam[measure] / base[measure], marker="o", label=measure)
        ax.plot(reparam["scale"], reparam["test_loss"] / base["test_loss"], "k--",
                label="test loss")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("a (layer 1 × a, layer 2 × 1/a)")
        ax.set_ylabel(f"value / value at a = {base['scale']:g}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        return fig

    if len(taus):
        lab.figure("measures.png", tau_plot)
    if len(reparam):
        lab.figure("reparametrization.png", reparam_plot)
