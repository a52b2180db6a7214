"""Every experiment of the lab in one go (`nncore lab all`): each into its own folder, then the
report page over all of them."""

from __future__ import annotations

from pathlib import Path
from typing import Callable


def run_all(out="lab", *, seeds: int = 3, quick: bool = False, n_jobs: int = 1,
            progress: bool = True, scheduler=None, command=None,
            on_result: Callable | None = None) -> dict:
    """Run every experiment of ``nncore.lab.EXPERIMENTS`` into ``out/<experiment>/``, each on its
    default data sets, then write the report page ``out/index.html`` (see :func:`write_page`).

    Ctrl-C stops the experiment running (its finished fits are kept and written), skips the
    rest, and still writes the page from what finished.

    Parameters
    ----------
    out : str or path-like
        The folder of the experiments' folders and the page (created if needed).
    seeds : int
        How many seeds (0..seeds-1) each setting of each experiment runs with.
    quick : bool
        Every experiment's quick version (seconds each), what the tests run.
    n_jobs : int
        Independent fits run in this many local processes, each single-threaded.
    progress : bool
        Whether a tqdm bar counts each experiment's fits.
    scheduler : str or None
        Run the fits on Dask: ``'local:N'`` or ``'tcp://HOST:PORT'`` (see
        :mod:`nncore.cluster`).
    command : str or None
        The command line recorded in each ``meta.json``; None takes this process's arguments.
    on_result : callable or None
        Called with each experiment's name and `LabResult` as it finishes (the command line
        prints the report).

    Returns
    -------
    dict
        Experiment name → `LabResult`, in the order they ran (without the experiments a Ctrl-C
        skipped).
    """
    from . import EXPERIMENTS
    from ._page import write_page

    out = Path(out)
    results = {}
    for name, function in EXPERIMENTS.items():
        result = function(seeds=seeds, quick=quick, out=out / name, n_jobs=n_jobs,
                          progress=progress, scheduler=scheduler, command=command)
        results[name] = result
        if on_result is not None:
            on_result(name, result)
        if result.interrupted:
            break
    write_page(out)
    return results
