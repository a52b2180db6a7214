"""optimizers — momentum and Adam make SGD faster and less sensitive to the step size: plain SGD,
heavy-ball momentum, Nesterov momentum (both with 0.9), Adam and AdamW, each trained at every rate
of one grid (1e-4 to 1) and judged at its own best rate (by the final training loss), so the
verdict is the method's, not one usual rate's. Measured: the loss curves, epochs to a
training-loss target, the final scores, and at how many of the grid's rates each method reaches
the target — how forgiving it is about the rate."""

from __future__ import annotations

from .._docs import with_shared_docs
from ._datasets import load_datasets
from ._lab import EXPERIMENT_PARAMETERS, compare_rates
from ._rates import at_best_rates, contest, describe_range, grid_runs, rate_ranges
from ._report import verdict

# The claim, in the lecture's words (the report page quotes it).
CLAIM = ("Momentum and Adam help: heavy-ball and Nesterov momentum, Adam and AdamW reach a "
         "training-loss target in fewer epochs than plain SGD and are less sensitive to the "
         "learning rate (each judged at its best rate of a grid). Kingma & Ba 2015, "
         "arXiv:1412.6980; Loshchilov & Hutter 2019, arXiv:1711.05101.")

# One line for `nncore lab --help`.
DESCRIPTION = "SGD, momentum, Nesterov, Adam, AdamW, each at its best rate of a grid"

# Plain SGD is "plain-sgd": make_optimizer's "sgd" means SGD with Nesterov momentum.
OPTIMIZERS = {
    "plain-sgd": dict(optimizer="plain"),
    "momentum": dict(optimizer="momentum", optimizer_options={"momentum": 0.9}),
    "nesterov": dict(optimizer="nesterov", optimizer_options={"momentum": 0.9}),
    "adam": dict(optimizer="adam"),
    "adamw": dict(optimizer="adamw", optimizer_options={"weight_decay": 0.01}),
}
# One grid for all: wide enough to hold each method's usual rate (SGD 0.1, momentum 0.01, Adam
# 1e-3) and the rates where each stops training.
RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
ARM = ["dataset", "optimizer"]


def reaches_target(runs) -> bool:
    """Whether every seed of one rate reached the target (and none failed)."""
    return bool(runs["epochs_to_target"].notna().all() and not runs["failed"].any())


def _faster(arm_runs, plain_runs) -> bool:
    """Reached the target in every seed, and sooner than plain SGD beyond the spread over seeds
    (or plain SGD missed it in some seed)."""
    if not arm_runs["epochs_to_target"].notna().all():
        return False
    if not plain_runs["epochs_to_target"].notna().all():
        return True
    return contest(arm_runs["epochs_to_target"], plain_runs["epochs_to_target"]) == "better"


def _conclusions(frame, best, target: float, grid) -> list[str]:
    out = []
    chosen = at_best_rates(frame, ARM, best)
    for name, group in frame.groupby("dataset", sort=False):
        at_best = {k: g for k, g in chosen[chosen["dataset"] == name].groupby("optimizer",
                                                                              sort=False)}
        if "plain-sgd" not in at_best:
            continue
        forgiving = {k[0]: v for k, v in rate_ranges(group, ["optimizer"], reaches_target).items()}
        listing = "; ".join(
            f"{k} lr {best[name, k]:g}: loss {g['train_loss'].mean():.3g}, "
            + (f"{g['epochs_to_target'].mean():.3g} epochs to {target:g}"
               if g["epochs_to_target"].notna().all() else
               f"reached {target:g} in {int(g['epochs_to_target'].notna().sum())} of {len(g)} "
               f"seeds") + f", reaches it at {describe_range(forgiving.get(k, []), grid)}"
            for k, g in at_best.items())
        plain = at_best["plain-sgd"]
        others = [k for k in at_best if k != "plain-sgd"]
        faster = [k for k in others if _faster(at_best[k], plain)]
        wider = [k for k in others
                 if len(forgiving.get(k, [])) > len(forgiving.get("plain-sgd", []))]
        named = [k for k in ("momentum", "adam") if k in at_best]
        speed = bool(named) and all(k in faster for k in named)
        sensitivity = bool(named) and all(k in wider for k in named)
        out.append(f"{name}: each at its best rate (best by the final training loss): {listing}. "
                   f"Faster than plain SGD at the best rates (beyond the spread over seeds): "
                   f"{', '.join(faster) or 'none'}; reaching the target at more of the grid's "
                   f"rates than plain SGD: {', '.join(wider) or 'none'}. The lecture's claim "
                   f"(momentum and Adam make SGD faster and less sensitive to the step size) "
                   f"{verdict(speed)} for speed and {verdict(sensitivity)} for the sensitivity "
                   f"to the rate on this data set.")
    return out


@with_shared_docs(**EXPERIMENT_PARAMETERS)
def run(*, seeds: int = 3, quick: bool = False, out=None, n_jobs: int = 1, progress: bool = True,
        datasets=None, csv=None, target_column=None, epochs: int = 60, target: float = 0.01,
        command=None, scheduler=None):
    """The optimizers experiment: SGD, momentum, Nesterov, Adam and AdamW, each at its best rate.

    Batch 32, every optimiser at each learning rate of a grid (1e-4 to 1), judged at its best
    rate by the final training loss; it measures the epochs each takes to reach a training-loss
    target, the final scores and the rates at which each reaches the target.

    Parameters
    ----------
    {seeds}
    {quick}
    {out}
    {n_jobs}
    {progress}
    datasets : str, list of str or None
        Built-in data sets (``'digits'``, ``'noisy-binary'``, ``'breast-cancer'``); None takes
        digits and noisy-binary (digits alone when quick).
    {csv}
    {target_column}
    epochs : int
        Epochs of every fit.
    target : float
        The training loss whose epochs are counted.
    {command}
    {scheduler}

    Returns
    -------
    LabResult
        The runs (one per data set, optimiser, learning rate and seed), the summary table of
        each optimiser at its best rate, the conclusions and the files written; ``report()``
        prints them.
    """
    epochs = 4 if quick else epochs
    rates = (1e-3, 0.1) if quick else RATES
    chosen = load_datasets(datasets, csv, target_column,
                           default=["digits"] if quick else ["digits", "noisy-binary"])
    # every run trains all its epochs, so final losses compare; epochs_to_target still says
    # when each first got below the target
    settings = {name: dict(spec, epochs=epochs, batch_size=32, target=target,
                           stop_at_target=False) for name, spec in OPTIMIZERS.items()}
    runs = grid_runs(chosen, seeds, "optimizer", settings, rates)
    return compare_rates(
        "optimizers", title=f"optimizers — each at its best learning rate of "
        f"{', '.join(f'{r:g}' for r in rates)} (by final training loss), batch 32, {epochs} "
        f"epochs; target training loss {target:g}",
        arm=ARM, runs=runs, datasets=chosen,
        columns=["epochs_to_target", "train_loss", "test_loss", "test_accuracy"],
        conclude=lambda frame, best: _conclusions(frame, best, target, rates), seeds=seeds,
        quick=quick, out=out, n_jobs=n_jobs, progress=progress, command=command,
        scheduler=scheduler, options={"settings": settings, "rates": rates})
