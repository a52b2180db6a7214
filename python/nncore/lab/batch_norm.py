"""batch-norm — batch normalisation helps: the same plain-SGD training with and without it, at
learning rates from ordinary to far too large for the plain network. A run that fails is a
result, not a crash: it diverged (a non-finite loss, recorded with its epoch) or ended with a
training loss no lower than where it started — what a too-large rate does to a ReLU network,
whose units die or whose loss climbs without ever overflowing."""

from __future__ import annotations

from ._datasets import load_datasets
from ._lab import compare
from ._report import verdict

# The claim, in the lecture's words (the report page quotes it).
CLAIM = ("Batch normalisation helps: the same plain-SGD training with it reaches a lower "
         "training loss, and keeps training at learning rates where the plain network fails. "
         "Ioffe & Szegedy 2015, arXiv:1502.03167.")

# One line for `nncore lab --help`.
DESCRIPTION = "with and without, up to rates where the plain network diverges"

RATES = (0.01, 0.1, 1.0, 3.0, 10.0)


def run(*, seeds: int = 3, quick: bool = False, out=None, n_jobs: int = 1, progress: bool = True,
        datasets=None, csv=None, target_column=None, epochs: int = 30, command=None,
        scheduler=None):
    """The batch-norm experiment: with and without batch norm, up to rates where training fails.

    Plain SGD at batch 32 at learning rates from 0.01 to 10; a run fails when it diverges or
    ends with a training loss no lower than at its start.

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
    epochs = 3 if quick else epochs
    rates = (0.1, 10.0) if quick else RATES
    chosen = load_datasets(datasets, csv, target_column,
                           default=["digits"] if quick else ["digits", "noisy-binary"])
    settings = {f"{'batch norm' if bn else 'plain'} lr={rate:g}":
                dict(epochs=epochs, learning_rate=rate, batch_size=32, batch_norm=bn)
                for bn in (False, True) for rate in rates}

    def conclude(frame):
        out = []
        for name, group in frame.groupby("dataset", sort=False):
            parts, wins = [], 0
            for rate in rates:
                cells = {}
                for label in ("plain", "batch norm"):
                    g = group[group["setting"] == f"{label} lr={rate:g}"]
                    failed = int(g["failed"].sum())
                    loss = g["train_loss"].where(~g["failed"]).mean()
                    cells[label] = (failed, loss, len(g))
                (f_plain, l_plain, _), (f_bn, l_bn, _) = cells["plain"], cells["batch norm"]
                wins += bool(f_bn < f_plain or (f_bn == f_plain and l_bn < l_plain))
                parts.append(f"lr {rate:g}: " + ", ".join(
                    f"{label} " + (f"failed in {f} of {n}" if f else f"loss {loss:.3g}")
                    for label, (f, loss, n) in cells.items()))
            out.append(f"{name}: {'; '.join(parts)}. Batch norm did better at {wins} of "
                       f"{len(rates)} rates. The lecture's claim (batch norm helps) "
                       f"{verdict(wins > len(rates) / 2)} on this data set.")
        return out

    return compare("batch-norm", title=f"batch-norm — with and without, plain SGD, batch 32, "
                   f"{epochs} epochs, learning rates {', '.join(f'{r:g}' for r in rates)}",
                   column="setting", settings=settings, datasets=chosen,
                   columns=["train_loss", "train_accuracy", "test_accuracy", "failed", "diverged"],
                   conclude=conclude, seeds=seeds, quick=quick, out=out, n_jobs=n_jobs,
                   progress=progress, command=command, scheduler=scheduler)
