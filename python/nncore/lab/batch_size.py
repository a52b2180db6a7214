"""batch-size — the centre of the lecture: do the noisy steps of small minibatches settle in
wider minima, which predict better than the sharp minima full-batch gradient descent reaches?

Every run: a 2×64 ReLU MLP, float64, cross-entropy with no L2 term, plain SGD at one learning
rate for every batch size, PyTorch's nn.Linear initialisation. Protocol 'loss' (A, the default)
trains each run until its full training loss is below a target — curvature shrinks as the loss
falls, so minima are only comparable at equal training loss — and flags the runs that hit the
step cap first; protocol 'epochs' (B) gives every batch size the same number of epochs. Each
solution is then measured on the training objective: top Hessian eigenvalue, trace,
ε-sharpness, loss rise along filter-normalised random directions, parameter norm; and the
straight line from each seed's batch-8 solution to its full-batch solution is traced."""

from __future__ import annotations

import math
import time

import numpy as np

from .. import curvature, landscape
from .._docs import with_shared_docs
from ..network import DivergenceError
from ..optim import Schedule
from ..training import norm, run_epochs
from ._datasets import HIDDEN, load_datasets
from ._execute import Run
from ._lab import EXPERIMENT_PARAMETERS, Lab
from ._report import panels, spread_table
from ._run import RunResult, evaluate

# The claim, in the lecture's words (the report page quotes it).
CLAIM = ("Small batches find flatter minima that predict better: the noisy steps of small "
         "minibatches settle in wider minima, which generalise better than the sharp minima "
         "full-batch gradient descent reaches. Keskar et al. 2017, arXiv:1609.04836.")

# One line for `nncore lab --help`.
DESCRIPTION = ("batch 8..full at one rate, trained to one loss: test accuracy, curvature of the "
               "minimum")

BATCH_SIZES = (8, 32, 128, 512, None)  # None: the full batch (gradient descent)
QUICK_BATCH_SIZES = (8, 128, None)
DATASETS = ("digits", "noisy-binary")
SLICE_ALPHAS = np.linspace(-1.0, 1.0, 21)
RISE_AT = 0.2  # slice_rise: mean of L(θ ± 0.2 d) − L(θ), d filter-normalised (‖d‖ per unit = ‖θ‖)
MAX_STEPS = 20_000  # protocol A: the default cap on a run's steps
MEASURED = ("top_eigenvalue", "trace", "eps_sharpness", "slice_rise", "param_norm")


def _label(batch_size):
    return "full" if batch_size is None else str(batch_size)


def _train(network, data, *, batch_size, learning_rate, target, max_steps, seed):
    """Plain SGD at a constant rate (gradient descent for the full batch) through the epoch
    driver, at most max_steps steps. With a target, a minibatch run's full training loss is
    evaluated after every epoch and the run stops below it; gradient descent stops at the first
    step whose parameters are below it (the driver undoes that step: the loss came free with
    its forward pass). Returns the steps taken."""
    per_epoch = 1 if batch_size is None else math.ceil(data.n_samples / batch_size)
    full_batch = batch_size is None
    steps = 0
    for record in run_epochs(network, data, None, Schedule("constant", learning_rate),
                             batch_size=batch_size, max_epochs=math.ceil(max_steps / per_epoch),
                             max_steps=max_steps, random_state=seed, shuffle=not full_batch,
                             draw="seed", stop_below=target if full_batch else None):
        if full_batch and target is not None and record["loss"] < target:
            break  # that step was undone
        steps = min(steps + per_epoch, max_steps)
        if not full_batch and target is not None and network.mean_loss(data) < target:
            break
    return steps


def measure(network, dataset, *, seed: int, quick: bool = False) -> tuple[dict, dict]:
    """The curvature of the training objective at the network's parameters: (numbers, arrays)."""
    X, Y = dataset.X_train, dataset.targets(dataset.y_train)
    eigen = curvature.top_eigenvalues(network, X, Y, 1, which="LA", tol=1e-3, max_iter=100,
                                      random_state=seed)
    trace = curvature.hessian_trace(network, X, Y, n_probes=4 if quick else 20,
                                    random_state=seed)
    sharp = curvature.eps_sharpness(network, X, Y, epsilon=1e-3, max_iter=5 if quick else 20,
                                    random_state=seed)
    rng = np.random.RandomState(seed)
    train_slices, test_slices = [], []
    for _ in range(1 if quick else 3):
        direction = landscape.random_direction(network, random_state=rng)
        line = landscape.slice_1d(network, X, Y, direction, SLICE_ALPHAS, X_test=dataset.X_test,
                                  y_test=dataset.targets(dataset.y_test))
        train_slices.append(line.train_losses)
        test_slices.append(line.test_losses)
    train_slices = np.array(train_slices)
    at = np.isclose(np.abs(SLICE_ALPHAS), RISE_AT)
    centre = np.isclose(SLICE_ALPHAS, 0.0)
    rise = float(np.mean(train_slices[:, at].mean(axis=1) - train_slices[:, centre][:, 0]))
    numbers = {"top_eigenvalue": float(eigen.eigenvalues[0]), "trace": trace.trace,
               "eps_sharpness": sharp.sharpness, "slice_rise": rise,
               "param_norm": norm(network.params)}
    return numbers, {"slice_train": train_slices, "slice_test": np.array(test_slices)}


def fit_and_measure(dataset, *, seed, batch_size, protocol, learning_rate, target, max_steps,
                    epochs, quick) -> RunResult:
    """One run of the experiment (a lab runner task)."""
    network = dataset.network(HIDDEN, activation="relu", init="pytorch_uniform", alpha=0.0,
                              random_state=seed)
    data = network.prepare(dataset.X_train, dataset.targets(dataset.y_train))
    stop_below = target if protocol == "loss" else None
    if protocol == "epochs":  # the same epoch budget for every batch size
        per_epoch = 1 if batch_size is None else math.ceil(dataset.n_train / batch_size)
        max_steps = epochs * per_epoch
    started = time.perf_counter()
    diverged = False
    try:
        steps = _train(network, data, batch_size=batch_size, learning_rate=learning_rate,
                       target=stop_below, max_steps=max_steps, seed=seed)
    except DivergenceError:
        steps, diverged = math.nan, True
    train_seconds = time.perf_counter() - started
    row = {"steps": steps, "diverged": diverged}
    row.update(evaluate(dataset, network))
    row["reached_target"] = bool(row["train_loss"] < target)
    started = time.perf_counter()
    numbers, arrays = ({}, {}) if diverged else measure(network, dataset, seed=seed, quick=quick)
    row.update(numbers)
    row.update(train_seconds=train_seconds, measure_seconds=time.perf_counter() - started)
    arrays["params"] = network.params.copy()
    return RunResult(row, arrays)


def interpolate(dataset, theta_small, theta_full, ts):
    """Train and test loss along θ(t) = (1 − t) θ_small + t θ_full."""
    network = dataset.network(HIDDEN, activation="relu", alpha=0.0)
    train = network.prepare(dataset.X_train, dataset.targets(dataset.y_train))
    test = network.prepare(dataset.X_test, dataset.targets(dataset.y_test))
    losses = []
    for t in ts:
        network.params[:] = (1.0 - t) * theta_small + t * theta_full
        losses.append((network.mean_loss(train), network.mean_loss(test)))
    return np.array(losses)


@with_shared_docs(**EXPERIMENT_PARAMETERS)
def run(*, seeds: int = 3, quick: bool = False, out=None, n_jobs: int = 1, progress: bool = True,
        datasets=None, csv=None, target_column=None, protocol: str = "loss",
        learning_rate: float = 0.1, target: float = 1e-3, max_steps: int = MAX_STEPS,
        epochs: int = 100, batch_sizes=None, command=None, scheduler=None):
    """The batch-size experiment: the flatness and test scores of minima by batch size.

    Plain SGD at one learning rate, float64, no L2 term, PyTorch's initialisation. Each run is
    then measured on its training objective: the top Hessian eigenvalue, the trace, ε-sharpness,
    the rise of the loss along random filter-normalised directions and the parameter norm.

    Parameters
    ----------
    {seeds}
    {quick}
    out : str, path-like or None
        A folder for ``runs.csv`` (one row per run), ``params.npz`` (each run's parameters,
        ``run_<row>``, for ``sharpness-measures --from``), ``meta.json`` (nncore's version,
        ``build_info()``, CPU, command, seeds, wall time) and the PNG figures; None writes
        nothing.
    {n_jobs}
    {progress}
    datasets : str, list of str or None
        Built-in data sets (``'digits'``, ``'noisy-binary'``, ``'breast-cancer'``); None takes
        digits and noisy-binary (digits alone when quick).
    {csv}
    {target_column}
    protocol : {'loss', 'epochs'}
        ``'loss'`` trains every run until its full training loss is below ``target`` (minima
        compared at equal training loss); ``'epochs'`` gives every batch size the same
        ``epochs``.
    learning_rate : float
        The SGD step size of every run.
    target : float
        The training loss of protocol ``'loss'``.
    max_steps : int
        Protocol ``'loss'``: the most steps of a run; a run that misses the target is flagged
        and left out of the comparison.
    epochs : int
        Protocol ``'epochs'``: the epochs of every run.
    batch_sizes : sequence or None
        The batch sizes compared (None in the sequence is the full batch); None takes 8, 32,
        128, 512 and the full batch.
    {command}
    {scheduler}

    Returns
    -------
    LabResult
        The runs, the summary table over seeds, the conclusions and the files written;
        ``report()`` prints them.
    """
    from .._validation import check_param

    if protocol not in ("loss", "epochs"):
        raise ValueError(f"protocol must be 'loss' (matched training loss) or 'epochs' (equal "
                         f"epoch budget), got {protocol!r}")
    learning_rate = check_param(learning_rate, "learning_rate")
    target = check_param(target, "target", bound="epsilon")
    max_steps = check_param(max_steps, "max_steps", bound="epochs")
    epochs = check_param(epochs, "epochs")
    if quick:
        max_steps, epochs, target = min(max_steps, 400), min(epochs, 5), max(target, 0.05)
    sizes = tuple(batch_sizes) if batch_sizes is not None else (
        QUICK_BATCH_SIZES if quick else BATCH_SIZES)
    chosen = load_datasets(datasets, csv, target_column, default=["digits"] if quick else DATASETS)
    names = [d.name for d in chosen]
    lab = Lab("batch-size", seeds=seeds, quick=quick, out=out, n_jobs=n_jobs, progress=progress,
              command=command, scheduler=scheduler,
              options={"protocol": protocol, "learning_rate": learning_rate, "target": target,
                       "max_steps": max_steps, "epochs": epochs, "datasets": names,
                       "batch_sizes": [_label(b) for b in sizes]})
    lab.datasets = {d.name: d for d in chosen}
    runs = []
    for dataset in chosen:
        for seed in range(lab.seeds):
            for b in sizes:
                # full batch: many steps of n rows; minibatch: an epoch costs about one step of n
                cost = dataset.n_train * (max_steps if b is None else max_steps / 40)
                runs.append(Run({"dataset": dataset.name, "seed": seed, "batch_size": _label(b)},
                                fit_and_measure,
                                dict(seed=seed, batch_size=b, protocol=protocol,
                                     learning_rate=learning_rate, target=target,
                                     max_steps=max_steps, epochs=epochs, quick=quick),
                                cost))
    frame, results, interrupted = lab.run(runs)
    lab.save_params(results)  # for measuring the models again (nncore lab sharpness-measures)
    lines = _interpolation_lines(lab, runs, results)
    title = (f"batch-size — protocol A, matched training loss: every run trains until its full "
             f"training loss < {target:g} (cap {max_steps} steps), plain SGD at lr "
             f"{learning_rate:g}" if protocol == "loss" else
             f"batch-size — protocol B, equal epoch budget: {epochs} epochs for every batch size "
             f"(minima compared at unequal training loss), plain SGD at lr {learning_rate:g}")
    summary = _summary(frame, protocol) if len(frame) else frame
    conclusions = _conclusions(frame, protocol, target) if len(frame) else []
    tables = {"interpolation": lines} if len(lines) else {}
    return lab.finish(frame, summary, conclusions, title=title, tables=tables,
                      figures=lambda lab_: _figures(lab_, frame, runs, results, lines))


def _interpolation_lines(lab, runs, results):
    """For each data set and seed with both a batch-8 (or the smallest) and a full-batch
    solution: the loss along the line between them, t in [-0.5, 1.5]."""
    import pandas as pd

    ts = np.linspace(-0.5, 1.5, 41)
    by_key = {}
    for index, result in results.items():
        s = runs[index].settings
        by_key.setdefault((s["dataset"], s["seed"]), {})[s["batch_size"]] = result
    rows = []
    for (name, seed), solutions in by_key.items():
        small = [b for b in solutions if b != "full"]
        if "full" not in solutions or not small:
            continue
        smallest = min(small, key=int)
        losses = interpolate(lab.datasets[name], solutions[smallest].arrays["params"],
                             solutions["full"].arrays["params"], ts)
        for t, (train, test) in zip(ts, losses):
            rows.append({"dataset": name, "seed": seed, "from_batch_size": smallest, "t": t,
                         "train_loss": train, "test_loss": test})
    return pd.DataFrame(rows)


SUMMARY_COLUMNS = ("steps", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                   *MEASURED, "train_seconds", "measure_seconds")


def _compared(frame, protocol):
    """The runs the comparison rests on: those that did not diverge and, under protocol A
    (matched training loss), reached the target."""
    compared = ~frame["diverged"].astype(bool)
    if protocol == "loss":
        compared &= frame["reached_target"].astype(bool)
    return compared


def _summary(frame, protocol):
    """Mean ± standard deviation over seeds per data set and batch size, over the runs the
    conclusions compare (the others stay in runs.csv): `seeds` counts every run, `reached`
    those that reached the target."""
    masked = frame.copy()
    masked.loc[~_compared(frame, protocol), list(SUMMARY_COLUMNS)] = np.nan
    summary = spread_table(masked, ["dataset", "batch_size"], list(SUMMARY_COLUMNS))
    summary.insert(3, "reached", frame.groupby(["dataset", "batch_size"], sort=False)
                   ["reached_target"].sum().astype(int).to_numpy())
    return summary


def _difference(a, b, column):
    """(mean of a, mean of b, the larger standard deviation over seeds of the two): a
    difference within that spread is not a difference."""
    spread = max(a[column].std(ddof=1) if len(a) > 1 else 0.0,
                 b[column].std(ddof=1) if len(b) > 1 else 0.0)
    return a[column].mean(), b[column].mean(), spread


def _conclusions(frame, protocol, target):
    out = []
    compared = _compared(frame, protocol)
    for name, group in frame.groupby("dataset", sort=False):
        missed = group[~group["reached_target"]]
        if protocol == "loss" and len(missed):
            out.append(f"{name}: {len(missed)} run(s) missed the target {target:g} and are "
                       f"left out of the comparison and of the table's means (batch sizes "
                       f"{', '.join(sorted(set(missed['batch_size']), key=str))})")
        usable = group[compared[group.index]]
        sizes = [b for b in usable["batch_size"].unique() if b != "full"]
        if "full" not in set(usable["batch_size"]) or not sizes:
            out.append(f"{name}: no comparison — the smallest batch or the full batch has no "
                       f"run that reached the target")
            continue
        small = min(sizes, key=int)
        a, b = usable[usable["batch_size"] == small], usable[usable["batch_size"] == "full"]
        # Flatness and accuracy are both judged against the spread over seeds: a difference
        # inside it is a tie, not a win.
        eig_a, eig_b, eig_spread = _difference(a, b, "top_eigenvalue")
        acc_a, acc_b, acc_spread = _difference(a, b, "test_accuracy")
        loss_a, loss_b = a["test_loss"].mean(), b["test_loss"].mean()
        flatter, sharper = eig_b - eig_a > eig_spread, eig_a - eig_b > eig_spread
        better, worse = acc_a - acc_b > acc_spread, acc_b - acc_a > acc_spread
        claim = ("held" if flatter and better else
                 "held for flatness only: the accuracy difference is within the spread over "
                 "seeds" if flatter and not worse else
                 "held for flatness only: the flatter minimum predicts worse" if flatter else
                 "held for accuracy only: the sharpness difference is within the spread over "
                 "seeds" if better and not sharper else
                 "held for accuracy only" if better else
                 "did not hold: neither difference is beyond the spread over seeds"
                 if not sharper and not worse else "did not hold")
        minimum = ("a flatter minimum than" if flatter else "a sharper minimum than" if sharper
                   else "a minimum as sharp, within the spread over seeds, as")
        out.append(
            f"{name}: batch {small} ends in {minimum} the full batch (top eigenvalue "
            f"{eig_a:.3g} vs {eig_b:.3g}: {eig_b / eig_a if eig_a > 0 else math.inf:.2f}x; "
            f"standard deviation over seeds {eig_spread:.3g}) with test accuracy {acc_a:.3f} vs "
            f"{acc_b:.3f} (standard deviation {acc_spread:.3f}) and test loss {loss_a:.3g} vs "
            f"{loss_b:.3g}. "
            f"The lecture's claim (small batches find flatter minima that predict better) "
            f"{claim} on this data set"
            + (" (protocol B: unequal training losses)" if protocol == "epochs" else "") + ".")
    return out


def _figures(lab, frame, runs, results, lines):
    names = list(frame["dataset"].unique())

    def positions(group, name):
        n = lab.datasets[name].n_train
        return [n if b == "full" else int(b) for b in group["batch_size"]]

    def summary_plot(plt):
        fig, axes = plt.subplots(len(names), 2, figsize=(9, 3.2 * len(names)), squeeze=False)
        for row, name in enumerate(names):
            stats = (frame[frame["dataset"] == name].groupby("batch_size", sort=False)
                     [["test_accuracy", "top_eigenvalue"]].agg(["mean", "std"]).reset_index())
            x = positions(stats, name)
            for col, key in enumerate(("test_accuracy", "top_eigenvalue")):
                ax = axes[row][col]
                ax.errorbar(x, stats[(key, "mean")], yerr=stats[(key, "std")].fillna(0),
                            marker="o", capsize=3)
                ax.set_xscale("log")
                ax.set_xticks(x)
                ax.set_xticklabels(stats["batch_size"])
                ax.set_xlabel("batch size")
                ax.set_ylabel(key.replace("_", " "))
                ax.set_title(name)
        fig.tight_layout()
        return fig

    def slices_panel(ax, name):
        curves = {}
        for index, result in results.items():
            s = runs[index].settings
            if s["dataset"] == name and "slice_train" in result.arrays:
                curves.setdefault(s["batch_size"], []).extend(result.arrays["slice_train"])
        for b, values in curves.items():
            ax.plot(SLICE_ALPHAS, np.mean(values, axis=0), label=f"batch {b}")
        ax.set_yscale("log")
        ax.set_xlabel("α (filter-normalised random direction)")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=7)

    def interpolation_panel(ax, name):
        part = lines[lines["dataset"] == name] if len(lines) else lines
        if len(part):
            mean = part.groupby("t")[["train_loss", "test_loss"]].mean()
            ax.plot(mean.index, mean["train_loss"], label="train")
            ax.plot(mean.index, mean["test_loss"], label="test")
            ax.axvline(0, color="grey", lw=0.5)
            ax.axvline(1, color="grey", lw=0.5)
            ax.set_yscale("log")
            ax.legend(fontsize=7)
        ax.set_xlabel(f"t: 0 = batch {part['from_batch_size'].iloc[0] if len(part) else 8}"
                      f", 1 = full batch")
        ax.set_ylabel("loss")

    lab.figure("batch_size.png", summary_plot)
    lab.figure("slices.png", lambda plt: panels(plt, names, slices_panel))
    lab.figure("interpolation.png", lambda plt: panels(plt, names, interpolation_panel))
