"""optimizers — momentum and Adam help: plain SGD, heavy-ball momentum, Nesterov momentum, Adam and
AdamW, each at its usual learning rate (SGD 0.1; momentum and Nesterov 0.01 with 0.9, whose
effective step is then about 0.1 too; Adam and AdamW 1e-3). Measured: the loss curves, epochs
to a training-loss target and the final scores."""

from __future__ import annotations

from ._datasets import load_datasets
from ._lab import compare
from ._report import verdict

# The claim, in the lecture's words (the report page quotes it).
CLAIM = ("Momentum and Adam help: heavy-ball and Nesterov momentum, Adam and AdamW, each at its "
         "usual learning rate, reach a training-loss target in fewer epochs than plain SGD. "
         "Kingma & Ba 2015, arXiv:1412.6980; Loshchilov & Hutter 2019, arXiv:1711.05101.")

# One line for `nncore lab --help`.
DESCRIPTION = "SGD, momentum, Nesterov, Adam, AdamW at their usual rates"

# Plain SGD is "plain-sgd": make_optimizer's "sgd" means SGD with Nesterov momentum.
OPTIMIZERS = {
    "plain-sgd": dict(optimizer="plain", learning_rate=0.1),
    "momentum": dict(optimizer="momentum", learning_rate=0.01,
                     optimizer_options={"momentum": 0.9}),
    "nesterov": dict(optimizer="nesterov", learning_rate=0.01,
                     optimizer_options={"momentum": 0.9}),
    "adam": dict(optimizer="adam", learning_rate=1e-3),
    "adamw": dict(optimizer="adamw", learning_rate=1e-3,
                  optimizer_options={"weight_decay": 0.01}),
}


def run(*, seeds: int = 3, quick: bool = False, out=None, n_jobs: int = 1, progress: bool = True,
        datasets=None, csv=None, target_column=None, epochs: int = 60, target: float = 0.05,
        command=None, scheduler=None):
    """The optimizers experiment: SGD, momentum, Nesterov, Adam and AdamW at their usual rates.

    Batch 32; it measures the epochs each takes to reach a training-loss target and the final
    scores.

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
        The most epochs of every fit.
    target : float
        The training loss whose epochs are counted.
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
    settings = {name: dict(spec, epochs=epochs, batch_size=32, target=target)
                for name, spec in OPTIMIZERS.items()}

    def conclude(frame):
        out = []
        for name, group in frame.groupby("dataset", sort=False):
            g = group.copy()
            g["reached"] = g["epochs_to_target"].notna()
            stats = g.groupby("optimizer", sort=False).agg(
                reached=("reached", "sum"), epochs=("epochs_to_target", "mean"),
                loss=("train_loss", "mean"), test=("test_accuracy", "mean"))
            plain = stats.loc["plain-sgd"]
            faster = [k for k in ("momentum", "nesterov", "adam", "adamw")
                      if stats.loc[k, "reached"] > 0 and (
                          plain["reached"] == 0 or stats.loc[k, "epochs"] < plain["epochs"])]
            listing = ", ".join(
                f"{k} {row.epochs:.3g}" if row.reached else f"{k} never" for k, row in
                stats.iterrows())
            out.append(f"{name}: epochs to training loss {target:g}: {listing}. Faster than plain "
                       f"SGD: {', '.join(faster) or 'none'}. The lecture's claim (momentum and "
                       f"Adam help) {verdict(bool(faster))} on this data set.")
        return out

    return compare("optimizers", title=f"optimizers — each at its usual learning rate, batch 32, "
                   f"up to {epochs} epochs; target training loss {target:g}",
                   column="optimizer", settings=settings, datasets=chosen,
                   columns=["epochs_to_target", "train_loss", "test_loss", "test_accuracy"],
                   conclude=conclude, seeds=seeds, quick=quick, out=out, n_jobs=n_jobs,
                   progress=progress, command=command, scheduler=scheduler)
