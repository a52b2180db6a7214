"""edge-of-stability — full-batch gradient descent at step size η cannot settle where the loss is
sharper than 2/η (Cohen, Kaur, Li, Kolter and Talwalkar, ICLR 2021). On a quadratic, GD
multiplies the error along an eigenvector of eigenvalue λ by (1 − ηλ) each step, which grows
when λ > 2/η; on a network the top Hessian eigenvalue λmax first rises during training
("progressive sharpening") until it reaches about 2/η, then hovers there while the loss keeps
falling, non-monotonically.

Every run: plain full-batch GD at a constant step size (`run_epochs` with batch_size=None: one
step per epoch), float64, no L2 term, on a fixed subset of a built-in data set, with the squared
loss on one-hot targets and with cross-entropy. λmax is tracked every few steps by Lanczos on
exact Hessian-vector products, warm-started from the previous eigenvector (a few products per
measurement instead of twenty); now and then a cold start from a random vector checks it.
Measured per run: the plateau (median λmax over the last third of the steps) against 2/η."""

from __future__ import annotations

import math
import time

import numpy as np

from .. import curvature
from .._docs import with_shared_docs
from ..network import DivergenceError, Network
from ..optim import Schedule
from ..training import run_epochs
from ._datasets import load_datasets
from ._execute import Run
from ._lab import EXPERIMENT_PARAMETERS, Lab
from ._report import panels, spread_table, verdict
from ._run import RunResult

# One line for `nncore lab --help`.
DESCRIPTION = "full-batch GD (2×64 tanh): the top Hessian eigenvalue rises to 2/η and stays"

# The claim, in the lecture's words (a report page shows it).
CLAIM = ("Full-batch gradient descent at step size η cannot settle where the loss is sharper "
         "than 2/η: the top Hessian eigenvalue rises during training until it reaches about 2/η "
         "and hovers there while the loss keeps falling, non-monotonically.")

LOSSES = ("squared_error", "cross_entropy")  # cross_entropy: 'logistic' or 'softmax' by classes
# 2/η = 8, 6.7 and 5: above the initial λmax (about 4 here), so each run must sharpen to reach
# its edge, and reached within the steps (η = 0.25, the slowest, at about step 900)
LEARNING_RATES = (0.25, 0.3, 0.4)
HIDDEN = (64, 64)
ACTIVATION = "tanh"
N_ROWS = 1000  # the fixed subset: the first rows of the (shuffled, stratified) training part
STEPS = 2000
EVERY = 25  # λmax every this many steps
COLD_EVERY = 20  # a cold-start check every this many measurements
PLATEAU_FROM = 2 / 3  # the plateau: median λmax over the steps after this fraction of the run
WITHIN = 0.10  # the claim holds when the plateau is within ±10% of 2/η
TOL = 1e-3  # Lanczos: relative residual of the Ritz pair


def loss_name(dataset, loss: str) -> str:
    """nncore's loss name: squared_error, or cross-entropy as logistic (two classes) or softmax."""
    return "squared_error" if loss == "squared_error" else dataset.loss


def problem(dataset, loss: str, n_rows: int):
    """(X, Y, X_test, Y_test, outputs) of a loss: one-hot targets for the squared loss (one
    output per class), the Dataset's own for cross-entropy."""
    X, y = dataset.X_train[:n_rows], dataset.y_train[:n_rows]
    if loss == "squared_error":
        eye = np.eye(dataset.n_classes)
        return X, eye[y], dataset.X_test, eye[dataset.y_test], dataset.n_classes
    outputs = 1 if dataset.n_classes == 2 else dataset.n_classes
    return X, dataset.targets(y), dataset.X_test, dataset.targets(dataset.y_test), outputs


def _accuracy(network, X, y) -> float:
    scores = network.forward(X)
    predicted = (scores[:, 0] >= 0).astype(int) if scores.shape[1] == 1 else scores.argmax(1)
    return float(np.mean(predicted == y))


def track(dataset, *, seed: int, loss: str, learning_rate: float, steps: int, every: int,
          n_rows: int, hidden=HIDDEN, activation: str = ACTIVATION) -> RunResult:
    """One run (a lab runner task): `steps` steps of full-batch GD at `learning_rate`, λmax at
    step 0 and every `every` steps, warm-started from the previous eigenvector."""
    name = loss_name(dataset, loss)
    X, Y, X_test, Y_test, outputs = problem(dataset, loss, n_rows)
    network = Network([X.shape[1], *hidden, outputs], activation, name, alpha=0.0,
                      dtype=np.float64, n_threads=1, random_state=seed)
    data = network.prepare(X, Y)
    rng = np.random.RandomState(seed)
    edge = 2.0 / learning_rate
    measured_at, eigenvalues, warm_products = [], [], []
    cold_products, cold_gaps = [], []
    vector = None
    tracking = 0.0

    def measure(step, last=False):
        nonlocal vector, tracking
        started = time.perf_counter()
        result = curvature.top_eigenvalues(network, data.X, data.Y, 1, which="LA", tol=TOL,
                                           max_iter=200, random_state=rng, v0=vector)
        if vector is not None:
            warm_products.append(result.n_iter)
        if vector is None or last or len(eigenvalues) % COLD_EVERY == 0:
            # A cold start from a random vector: the warm start must find the same eigenvalue
            # (a warm start could in principle lock onto an eigenvector no longer the top one).
            cold = result if vector is None else curvature.top_eigenvalues(
                network, data.X, data.Y, 1, which="LA", tol=TOL, max_iter=200, random_state=rng)
            cold_products.append(cold.n_iter)
            cold_gaps.append(abs(result.eigenvalues[0] - cold.eigenvalues[0])
                             / abs(cold.eigenvalues[0]))
        vector = result.eigenvectors[:, 0]
        measured_at.append(step)
        eigenvalues.append(float(result.eigenvalues[0]))
        tracking += time.perf_counter() - started

    started = time.perf_counter()
    losses, diverged = [], False
    measure(0)
    try:
        for record in run_epochs(network, data, None, Schedule("constant", learning_rate),
                                 batch_size=None, max_epochs=steps, shuffle=False):
            losses.append(record["loss"])  # at the parameters the step started from: free
            if record["epoch"] % every == 0:
                measure(record["epoch"], last=record["epoch"] == steps)
    except DivergenceError:
        diverged = True  # the network is back at its last finite state
    losses.append(network.mean_loss(data))  # after the last step
    seconds = time.perf_counter() - started
    measured_at, eigenvalues = np.array(measured_at), np.array(eigenvalues)
    late = measured_at >= PLATEAU_FROM * steps
    plateau = float(np.median(eigenvalues[late])) if late.any() else math.nan
    reached = measured_at[eigenvalues >= (1 - WITHIN) * edge]
    losses = np.array(losses)
    tail = losses[int(PLATEAU_FROM * steps):]
    row = {"edge": edge, "plateau": plateau, "plateau_ratio": plateau / edge,
           "within_10pct": bool(abs(plateau / edge - 1) <= WITHIN),
           "initial_lambda": float(eigenvalues[0]), "max_lambda": float(eigenvalues.max()),
           "final_lambda": float(eigenvalues[-1]),
           "peak_step": float(measured_at[np.argmax(eigenvalues)]),
           "reached_step": float(reached[0]) if len(reached) else math.nan,
           "rows": len(X), "steps": len(losses) - 1, "diverged": diverged,
           "initial_loss": float(losses[0]), "train_loss": float(losses[-1]),
           # the share of the plateau's steps that raised the loss: non-monotonic descent
           "loss_rises": float(np.mean(np.diff(tail) > 0)) if len(tail) > 1 else math.nan,
           "train_accuracy": _accuracy(network, X, dataset.y_train[:n_rows]),
           "test_loss": network.mean_loss(X_test, Y_test),
           "test_accuracy": _accuracy(network, X_test, dataset.y_test),
           "warm_products": float(np.mean(warm_products)) if warm_products else math.nan,
           "cold_products": float(np.mean(cold_products)),
           "warm_vs_cold": float(np.max(cold_gaps)),
           "seconds": seconds, "tracking_seconds": tracking,
           "tracking_share": tracking / seconds}
    return RunResult(row, {"measured_at": measured_at, "eigenvalues": eigenvalues,
                           "losses": losses})


@with_shared_docs(**EXPERIMENT_PARAMETERS)
def run(*, seeds: int = 3, quick: bool = False, out=None, n_jobs: int = 1, progress: bool = True,
        datasets=None, csv=None, target_column=None, epochs: int = STEPS, learning_rates=None,
        every: int = EVERY, n_rows: int = N_ROWS, command=None, scheduler=None):
    """The edge-of-stability experiment: λmax along full-batch GD against 2/η.

    Plain full-batch gradient descent (one step per epoch) at several constant step sizes η,
    float64, no L2 term, a 2×64 tanh MLP on the first ``n_rows`` training rows, with the squared
    loss on one-hot targets and with cross-entropy. The top Hessian eigenvalue is measured
    every ``every`` steps by Lanczos warm-started from the previous eigenvector. The plateau is
    the median of λmax over the last third of the steps; the claim holds when it is within
    ±10% of 2/η for every step size of the squared loss.

    Parameters
    ----------
    {seeds}
    quick : bool
        A few seconds' version (fewer steps, step sizes and rows), what the tests run.
    out : str, path-like or None
        A folder for ``runs.csv`` (one row per run), ``meta.json`` (nncore's version,
        ``build_info()``, CPU, command, seeds, wall time), ``sharpness.csv`` (every λmax
        measured) and the PNG figures; None writes nothing.
    {n_jobs}
    {progress}
    datasets : str, list of str or None
        Built-in data sets (``'digits'``, ``'noisy-binary'``, ``'breast-cancer'``); None takes
        noisy-binary.
    {csv}
    {target_column}
    epochs : int
        Gradient-descent steps of every run (full batch: one step per epoch).
    learning_rates : sequence of float or None
        The step sizes η; None takes 0.25, 0.3 and 0.4 (2/η = 8, 6.7 and 5).
    every : int
        Steps between two measurements of λmax.
    n_rows : int
        The training rows used: the first ``n_rows`` of the data set's training part.
    {command}
    {scheduler}

    Returns
    -------
    LabResult
        The runs, the summary table over seeds, the conclusions and the files written;
        ``report()`` prints them.
    """
    from .._validation import check_int, check_param

    steps = check_param(epochs, "epochs")
    every = check_int(every, "every")
    n_rows = check_int(n_rows, "n_rows", minimum=2)
    rates = LEARNING_RATES if learning_rates is None else tuple(learning_rates)
    rates = tuple(check_param(r, "learning_rates entries", bound="learning_rate") for r in rates)
    if quick:
        steps, every, n_rows = min(steps, 100), min(every, 10), min(n_rows, 200)
    chosen = load_datasets(datasets, csv, target_column, default=["noisy-binary"])
    lab = Lab("edge-of-stability", seeds=seeds, quick=quick, out=out, n_jobs=n_jobs,
              progress=progress, command=command, scheduler=scheduler,
              options={"steps": steps, "every": every, "n_rows": n_rows,
                       "learning_rates": list(rates), "losses": list(LOSSES),
                       "hidden": list(HIDDEN), "activation": ACTIVATION,
                       "datasets": [d.name for d in chosen], "plateau_from": PLATEAU_FROM,
                       "lanczos_tol": TOL})
    lab.datasets = {d.name: d for d in chosen}
    runs = [Run({"dataset": d.name, "seed": seed, "loss": loss_name(d, loss),
                 "learning_rate": rate}, track,
                dict(seed=seed, loss=loss, learning_rate=rate, steps=steps, every=every,
                     n_rows=n_rows), cost=min(n_rows, d.n_train) * steps)
            for d in chosen for loss in LOSSES for rate in rates for seed in range(lab.seeds)]
    frame, results, _ = lab.run(runs)
    summary = spread_table(frame, ["dataset", "loss", "learning_rate"],
                           ["edge", "plateau", "plateau_ratio", "initial_lambda", "max_lambda",
                            "reached_step", "loss_rises", "train_loss", "test_accuracy",
                            "warm_products", "tracking_share"]) if len(frame) else frame
    sharpness = _sharpness_table(runs, results)
    title = (f"edge-of-stability — full-batch GD for {steps} steps at η = "
             f"{', '.join(f'{r:g}' for r in rates)}, 2×{HIDDEN[0]} {ACTIVATION} MLP on the first "
             f"{n_rows} training rows (all, if fewer), float64, no L2; λmax every {every} steps "
             f"(Lanczos, warm-started); plateau = median λmax over the last third")
    conclusions = _conclusions(frame) if len(frame) else []
    return lab.finish(frame, summary, conclusions, title=title,
                      tables={"sharpness": sharpness} if len(sharpness) else {},
                      figures=lambda lab_: _figures(lab_, frame, runs, results))


def _sharpness_table(runs, results):
    """Every measurement: dataset, loss, learning_rate, seed, step, λmax, training loss there."""
    import pandas as pd

    rows = []
    for index, result in results.items():
        s = runs[index].settings
        losses = result.arrays["losses"]
        for step, value in zip(result.arrays["measured_at"], result.arrays["eigenvalues"]):
            rows.append({**s, "step": int(step), "top_eigenvalue": value,
                         "train_loss": losses[min(int(step), len(losses) - 1)]})
    return pd.DataFrame(rows)


def _conclusions(frame):
    out = []
    for name, group in frame.groupby("dataset", sort=False):
        for loss, part in group.groupby("loss", sort=False):
            means = part.groupby("learning_rate")[["edge", "plateau", "plateau_ratio",
                                                   "initial_lambda", "max_lambda",
                                                   "final_lambda", "loss_rises"]].mean()
            within = part.groupby("learning_rate")["within_10pct"].all()
            if loss == "squared_error":
                each = "; ".join(f"η={rate:g}: plateau {m.plateau:.3g} vs 2/η {m.edge:.3g} "
                                 f"({100 * (m.plateau_ratio - 1):+.1f}%), λmax from "
                                 f"{m.initial_lambda:.3g} up to {m.max_lambda:.3g}, at the end "
                                 f"{m.final_lambda:.3g}" for rate, m in means.iterrows())
                held = bool(within.all()) and not part["diverged"].any()
                out.append(f"{name}, squared loss: {each}. The lecture's claim (the plateau "
                           f"within ±10% of 2/η at every step size) {verdict(held)}"
                           + ("" if held else ": outside for " + ", ".join(
                               f"η = {r:g} ({'below' if means.plateau_ratio[r] < 1 else 'above'}"
                               f" 2/η)" for r in within.index[~within]))
                           + f"; the loss rose in {100 * part['loss_rises'].mean():.0f}% of "
                           f"the plateau's steps"
                           + (" (it falls, non-monotonically)." if part["loss_rises"].mean() > 0
                              else " (it fell monotonically)."))
            else:
                # Cross-entropy's sharpness falls late in training (the loss can go to zero by
                # growing the margins): say where λmax peaked, against 2/η, and where it ended.
                peaks = part.groupby("learning_rate")["peak_step"].mean()
                path = "; ".join(
                    f"η={rate:g}: λmax from {m.initial_lambda:.3g} to a peak of "
                    f"{m.max_lambda:.3g} ({100 * m.max_lambda / m.edge:.0f}% of 2/η = "
                    f"{m.edge:.3g}) at step {peaks[rate]:.0f}, at the end {m.final_lambda:.3g} "
                    f"({100 * m.final_lambda / m.edge:.0f}%)" for rate, m in means.iterrows())
                near = means["max_lambda"] >= (1 - WITHIN) * means["edge"]
                late_fall = means["final_lambda"] < (1 - WITHIN) * means["max_lambda"]
                out.append(f"{name}, cross-entropy ({loss}): {path}. The plateau is within ±10% "
                           f"of 2/η for {int(within.sum())} of {len(within)} step sizes; λmax "
                           f"came within 10% of 2/η for {int(near.sum())} of {len(within)} and "
                           f"ended more than 10% below its peak for {int(late_fall.sum())} of "
                           f"{len(within)} (the paper reports this late fall of sharpness for "
                           f"cross-entropy); the training loss ended at "
                           f"{part['train_loss'].mean():.2g}.")
    if "warm_products" in frame:
        out.append(f"Tracking λmax: the warm-started Lanczos took "
                   f"{frame['warm_products'].mean():.1f} products per measurement against "
                   f"{frame['cold_products'].mean():.1f} from a random start, and agreed with "
                   f"the cold start within a relative {frame['warm_vs_cold'].max():.1g} (checked "
                   f"every {COLD_EVERY} measurements and at the last); tracking took "
                   f"{100 * frame['tracking_share'].mean():.0f}% of a run's time.")
    return out


def _figures(lab, frame, runs, results):
    import matplotlib

    names = list(frame["dataset"].unique())
    colours = matplotlib.colormaps["viridis"]

    def draw(plt):
        losses = list(frame["loss"].unique())
        fig, axes = plt.subplots(len(names) * len(losses), 2, squeeze=False,
                                 figsize=(10, 3.4 * len(names) * len(losses)))
        rates = sorted(frame["learning_rate"].unique())
        row = 0
        for name in names:
            for loss in losses:
                sharp_ax, loss_ax = axes[row]
                for index, result in results.items():
                    s = runs[index].settings
                    if s["dataset"] != name or s["loss"] != loss:
                        continue
                    colour = colours(rates.index(s["learning_rate"]) / max(1, len(rates) - 1)
                                     * 0.85)
                    label = f"η = {s['learning_rate']:g}" if s["seed"] == 0 else None
                    sharp_ax.plot(result.arrays["measured_at"], result.arrays["eigenvalues"],
                                  color=colour, lw=1, alpha=0.8, label=label)
                    losses_ = result.arrays["losses"]
                    loss_ax.plot(np.arange(len(losses_)), losses_, color=colour, lw=0.7,
                                 alpha=0.8, label=label)
                for rate in rates:
                    colour = colours(rates.index(rate) / max(1, len(rates) - 1) * 0.85)
                    sharp_ax.axhline(2 / rate, color=colour, ls="--", lw=1)
                sharp_ax.set_xlabel("step")
                sharp_ax.set_ylabel("top Hessian eigenvalue λmax")
                sharp_ax.set_title(f"{name}, {loss}: λmax (dashed: 2/η)")
                sharp_ax.legend(fontsize=7)
                loss_ax.set_yscale("log")
                loss_ax.set_xlabel("step")
                loss_ax.set_ylabel("training loss")
                loss_ax.set_title(f"{name}, {loss}: training loss")
                loss_ax.legend(fontsize=7)
                row += 1
        fig.tight_layout()
        return fig

    def ratio_panel(ax, name):
        part = frame[frame["dataset"] == name]
        for loss, group in part.groupby("loss", sort=False):
            stats = group.groupby("learning_rate")["plateau_ratio"].agg(["mean", "std"])
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o",
                        capsize=3, label=loss)
        ax.axhspan(1 - WITHIN, 1 + WITHIN, color="grey", alpha=0.2, label="±10%")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xlabel("step size η")
        ax.set_ylabel("plateau / (2/η)")
        ax.legend(fontsize=7)

    lab.figure("edge_of_stability.png", draw)
    lab.figure("plateau.png", lambda plt: panels(plt, names, ratio_panel))
