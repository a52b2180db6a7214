"""batch-norm — batch normalisation makes training faster and more stable, at larger step sizes:
the same plain-SGD training with and without it, each over a grid of learning rates from ordinary
to far too large for the plain network, and each judged at its own best rate (by the final
training loss) and by the range of rates at which it trains. A run that fails is a result, not a
crash: it diverged (a non-finite loss, recorded with its epoch) or ended with a training loss no
lower than where it started — what a too-large rate does to a ReLU network, whose units die or
whose loss climbs without ever overflowing."""

from __future__ import annotations

from .._docs import with_shared_docs
from ._datasets import load_datasets
from ._lab import EXPERIMENT_PARAMETERS, compare_rates
from ._rates import at_best_rates, contest, describe_range, grid_runs, rate_ranges
from ._report import verdict

# The claim, in the lecture's words (the report page quotes it).
CLAIM = ("Batch normalisation makes training faster and more stable: with it, plain-SGD "
         "training reaches a lower training loss and keeps training at learning rates where the "
         "plain network fails (each judged at its best rate of a grid). Ioffe & Szegedy 2015, "
         "arXiv:1502.03167.")

# One line for `nncore lab --help`.
DESCRIPTION = "with and without, each at its best rate, up to rates where the plain net fails"

RATES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
ARM = ["dataset", "batch_norm"]
ARMS = {"without": False, "with": True}  # the batch_norm column: without or with batch norm


def _conclusions(frame, best, grid) -> list[str]:
    out = []
    chosen = at_best_rates(frame, ARM, best)
    for name, group in frame.groupby("dataset", sort=False):
        at_best = {k: g for k, g in chosen[chosen["dataset"] == name].groupby("batch_norm")}
        if set(at_best) != set(ARMS):
            continue
        ranges = {k[0]: v for k, v in rate_ranges(group, ["batch_norm"]).items()}
        listing = "; ".join(
            f"{k} batch norm: best lr {best[name, k]:g}, loss {at_best[k]['train_loss'].mean():.3g}"
            f", test accuracy {at_best[k]['test_accuracy'].mean():.3f}, trains at "
            f"{describe_range(ranges[k], grid)}" for k in ARMS)
        faster = contest(at_best["with"]["train_loss"], at_best["without"]["train_loss"],
                         log=True)
        top = {k: max(ranges[k]) if ranges[k] else 0.0 for k in ARMS}
        failures = {k: int(group[group["batch_norm"] == k]["failed"].sum()) for k in ARMS}
        speed = {"better": verdict(True), "tie": f"{verdict(False)} (within the spread over "
                 f"seeds)", "worse": verdict(False)}[faster]
        out.append(f"{name}: {listing} (trains: every seed ends below half its starting loss). "
                   f"Failed runs (diverged or no lower than the start): {failures['without']} "
                   f"without, {failures['with']} with. The lecture's claim (batch normalisation "
                   f"makes training faster and more stable, at larger step sizes) {speed} for "
                   f"the loss at the best rates and {verdict(top['with'] > top['without'])} for "
                   f"the largest rate that trains on this data set.")
    return out


@with_shared_docs(**EXPERIMENT_PARAMETERS)
def run(*, seeds: int = 3, quick: bool = False, out=None, n_jobs: int = 1, progress: bool = True,
        datasets=None, csv=None, target_column=None, epochs: int = 30, command=None,
        scheduler=None):
    """The batch-norm experiment: without and with batch norm, each at its best rate.

    Plain SGD at batch 32 at learning rates from 0.01 to 10, each network judged at its best
    rate by the final training loss and by the range of rates at which it trains; a run fails
    when it diverges or ends with a training loss no lower than at its start.

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
    {command}
    {scheduler}

    Returns
    -------
    LabResult
        The runs (one per data set, with/without batch norm, learning rate and seed), the
        summary table of each at its best rate, the conclusions and the files written;
        ``report()`` prints them.
    """
    epochs = 3 if quick else epochs
    rates = (0.1, 10.0) if quick else RATES
    chosen = load_datasets(datasets, csv, target_column,
                           default=["digits"] if quick else ["digits", "noisy-binary"])
    settings = {arm: dict(epochs=epochs, batch_size=32, batch_norm=bn)
                for arm, bn in ARMS.items()}
    runs = grid_runs(chosen, seeds, "batch_norm", settings, rates)
    return compare_rates(
        "batch-norm", title=f"batch-norm — without and with, each at its best learning rate of "
        f"{', '.join(f'{r:g}' for r in rates)} (by final training loss): plain SGD, batch 32, "
        f"{epochs} epochs",
        arm=ARM, runs=runs, datasets=chosen,
        columns=["train_loss", "train_accuracy", "test_accuracy", "failed", "diverged"],
        conclude=lambda frame, best: _conclusions(frame, best, rates), seeds=seeds,
        quick=quick, out=out, n_jobs=n_jobs, progress=progress, command=command,
        scheduler=scheduler, options={"settings": settings, "rates": rates})
