"""step-size — reducing the step size during training helps: plain SGD with the same initial rate,
kept constant or decayed by scikit-learn's invscaling (η0/(t+1)^0.5, t = samples seen), a step
decay (×0.1 at a third and two thirds of the epochs) or a cosine decay to zero. Measured: the
loss curves and the final training loss and test accuracy."""

from __future__ import annotations

from ._datasets import ARCHITECTURE, load_datasets
from ._lab import compare
from ._report import verdict

# The claim, in the lecture's words (the report page quotes it).
CLAIM = ("Reducing the step size during training helps: from the same initial rate, a decayed "
         "step size (invscaling, step or cosine decay) ends at a lower training loss and a "
         "higher test accuracy than a constant one.")

# One line for `nncore lab --help`.
DESCRIPTION = "constant vs invscaling vs step vs cosine decay"

SCHEDULES = ("constant", "invscaling", "step", "cosine")


def run(*, seeds: int = 3, quick: bool = False, out=None, n_jobs: int = 1, progress: bool = True,
        datasets=None, csv=None, target_column=None, epochs: int = 60,
        learning_rate: float = 0.1, command=None, scheduler=None):
    """The step-size experiment: constant vs decayed step sizes from the same initial rate.

    Plain SGD at batch 32 with the constant, invscaling, step and cosine schedules.

    Parameters
    ----------
    seeds : int
        How many seeds (0..seeds-1) each setting runs with.
    quick : bool
        A few seconds' version (fewer epochs, settings and data sets), what the tests run.
    out : str, path-like or None
        A folder for ``runs.csv`` (one row per run), ``meta.json`` (nncore's version,
        ``build_info()``, CPU, command, seeds, wall time) and the PNG figures; None writes
        nothing.
    n_jobs : int
        Independent fits run in this many local processes, each single-threaded.
    progress : bool
        Whether a tqdm bar counts the fits.
    datasets : str, list of str or None
        Built-in data sets (``'digits'``, ``'noisy-binary'``, ``'breast-cancer'``); None takes
        digits and noisy-binary (digits alone when quick).
    csv : str, path-like or None
        A CSV file of your own classification data instead of the built-in sets.
    target_column : str or None
        The class column of ``csv``; None takes the last column.
    epochs : int
        Epochs of every fit.
    learning_rate : float
        The initial step size of every schedule.
    command : str or None
        The command line recorded in ``meta.json``; None takes this process's arguments.
    scheduler : str or None
        Run the fits on Dask: ``'local:N'`` or ``'tcp://HOST:PORT'`` (see
        :mod:`nncore.cluster`).

    Returns
    -------
    LabResult
        The runs, the summary table over seeds, the conclusions and the files written;
        ``report()`` prints them.
    """
    epochs = 4 if quick else epochs
    chosen = load_datasets(datasets, csv, target_column,
                           default=["digits"] if quick else ["digits", "noisy-binary"])
    settings = {kind: dict(epochs=epochs, learning_rate=learning_rate, batch_size=32,
                           schedule=kind) for kind in SCHEDULES}

    def conclude(frame):
        out = []
        for name, group in frame.groupby("dataset", sort=False):
            means = group.groupby("schedule", sort=False)[["train_loss", "test_accuracy"]].mean()
            constant = means.loc["constant"]
            decays = means.drop(index="constant")
            best_loss = decays["train_loss"].idxmin()
            best_test = decays["test_accuracy"].idxmax()
            lower_loss = decays.loc[best_loss, "train_loss"] < constant["train_loss"]
            higher_accuracy = decays.loc[best_test, "test_accuracy"] > constant["test_accuracy"]
            out.append(
                f"{name}: constant lr ends at training loss {constant['train_loss']:.3g} and test "
                f"accuracy {constant['test_accuracy']:.3f}; the best decay for the training "
                f"loss is {best_loss} ({decays.loc[best_loss, 'train_loss']:.3g}), for the test "
                f"accuracy {best_test} ({decays.loc[best_test, 'test_accuracy']:.3f}). The "
                f"lecture's claim (decaying the step size helps) "
                f"{verdict(bool(lower_loss))} for the training loss and "
                f"{verdict(bool(higher_accuracy))}"
                f" for the test accuracy on this data set.")
        return out

    return compare("step-size", title=f"step-size — constant vs decayed step sizes from lr "
                   f"{learning_rate:g}: plain SGD, batch 32, {epochs} epochs, {ARCHITECTURE}",
                   column="schedule", settings=settings, datasets=chosen,
                   columns=["train_loss", "train_accuracy", "test_loss", "test_accuracy"],
                   conclude=conclude, seeds=seeds, quick=quick, out=out, n_jobs=n_jobs,
                   progress=progress, command=command, scheduler=scheduler)
