"""zero-init — the lecture's first trick: initial weights must not all be zero. With zeros, every
hidden unit of a layer computes the same function and receives the same update, so they stay
identical (here: all zero, so the hidden layers never start); scikit-learn's Glorot-uniform and
He's Gaussian initialisation break the symmetry. Measured: the loss curves and the number of
distinct hidden units in each layer at the end."""

from __future__ import annotations

import numpy as np

from .._docs import with_shared_docs
from ._datasets import ARCHITECTURE, HIDDEN, load_datasets
from ._lab import EXPERIMENT_PARAMETERS, compare
from ._report import verdict
from ._run import train_run

# The claim, in the lecture's words (the report page quotes it).
CLAIM = ("Initial weights must not all be zero: with zeros, every hidden unit of a layer computes "
         "the same function and receives the same update, so the units stay identical; random "
         "initialisation (Glorot-uniform, He's Gaussian) breaks the symmetry. Glorot & Bengio "
         "2010, https://proceedings.mlr.press/v9/glorot10a.html; He et al. 2015, "
         "arXiv:1502.01852.")

# One line for `nncore lab --help`.
DESCRIPTION = "zeros vs Glorot vs He initialisation: loss curves, distinct hidden units"

INITS = ("zeros", "glorot_uniform", "he_normal")


def distinct_units(network, tol: float = 1e-9) -> list[int]:
    """Per hidden layer, how many units differ: units whose incoming weights and bias agree to
    tol·(1 + largest entry) count as one."""
    counts = []
    for W, b in list(zip(network.coefs, network.intercepts))[:-1]:
        units = np.vstack([W, b[None, :]]).T  # one row per unit
        scale = tol * (1.0 + np.abs(units).max())
        representatives: list = []
        for unit in units:
            if not any(np.abs(unit - r).max() <= scale for r in representatives):
                representatives.append(unit)
        counts.append(len(representatives))
    return counts


def fit(dataset, **arguments):
    """train_run, plus the distinct hidden units of the trained network."""
    result = train_run(dataset, **arguments)
    network = dataset.network(arguments.get("hidden", HIDDEN))
    network.params[:] = result.arrays["params"]
    counts = distinct_units(network)
    result.row["distinct_units"] = " and ".join(map(str, counts))
    result.row["min_distinct_units"] = min(counts)
    return result


@with_shared_docs(**EXPERIMENT_PARAMETERS)
def run(*, seeds: int = 3, quick: bool = False, out=None, n_jobs: int = 1, progress: bool = True,
        datasets=None, csv=None, target_column=None, epochs: int = 30,
        learning_rate: float = 0.1, command=None, scheduler=None):
    """The zero-init experiment: zeros vs Glorot-uniform vs He-normal initialisation.

    Plain SGD at batch 32 on 2×64 ReLU networks; it measures the distinct hidden units, the
    training loss and the accuracies.

    Parameters
    ----------
    {seeds}
    {quick}
    {out}
    {n_jobs}
    {progress}
    datasets : str, list of str or None
        Built-in data sets (``'digits'``, ``'noisy-binary'``, ``'breast-cancer'``); None takes
        digits.
    {csv}
    {target_column}
    epochs : int
        Epochs of every fit.
    learning_rate : float
        The SGD step size.
    {command}
    {scheduler}

    Returns
    -------
    LabResult
        The runs, the summary table over seeds, the conclusions and the files written;
        ``report()`` prints them.
    """
    epochs = 3 if quick else epochs
    chosen = load_datasets(datasets, csv, target_column, default=["digits"])
    settings = {init: dict(epochs=epochs, learning_rate=learning_rate, batch_size=32, init=init)
                for init in INITS}

    def conclude(frame):
        out = []
        for name, group in frame.groupby("dataset", sort=False):
            zeros = group[group["init"] == "zeros"]
            others = group[group["init"] != "zeros"]
            stuck = bool((zeros["min_distinct_units"] == 1).all())
            worse = zeros["train_loss"].mean() > others.groupby("init")["train_loss"].mean().max()
            out.append(f"{name}: with zero initialisation the two hidden layers end with "
                       f"{zeros['distinct_units'].iloc[0]} distinct units (of {HIDDEN[0]} each) "
                       f"and a training loss of {zeros['train_loss'].mean():.3g}, against "
                       + ", ".join(f"{k} {v:.3g}" for k, v in
                                   others.groupby("init", sort=False)["train_loss"].mean().items())
                       + f". The lecture's claim (zeros fail, random initialisation works) "
                       f"{verdict(stuck and worse)} on this data set.")
        return out

    return compare("zero-init", title=f"zero-init — zeros vs Glorot vs He initialisation: plain "
                   f"SGD, lr {learning_rate:g}, batch 32, {epochs} epochs, {ARCHITECTURE}",
                   column="init", settings=settings, datasets=chosen,
                   columns=["min_distinct_units", "train_loss", "train_accuracy",
                            "test_accuracy"], conclude=conclude,
                   seeds=seeds, quick=quick, out=out, n_jobs=n_jobs, progress=progress,
                   command=command, function=fit, scheduler=scheduler)
