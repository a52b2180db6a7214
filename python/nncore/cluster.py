"""Where many independent fits run — in this process, in local worker processes (joblib), or as
tasks of a Dask cluster — behind one function, `run_tasks`, used by the lab and by `sweep`.

A scheduler is named as on the command line: None (local), 'local:N' (a Dask LocalCluster of N
single-threaded worker processes, started for the run and torn down after it, also on Ctrl-C) or
'tcp://HOST:PORT' (an existing Dask scheduler). Dask is an optional extra:
pip install 'nncore[dask]'."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Callable

INSTALL = "pip install 'nncore[dask]'"


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError(f"running on a Dask cluster needs dask.distributed: {INSTALL}") from None
    return distributed


def check_scheduler(scheduler: str | None) -> str | None:
    """Check a scheduler's text: None, 'local:N' with N >= 1, or an address with a scheme.

    Parameters
    ----------
    scheduler : str or None
        None (local), ``'local:N'`` (a Dask LocalCluster of N single-threaded worker processes)
        or ``'tcp://HOST:PORT'`` (an existing Dask scheduler).

    Returns
    -------
    str or None
        The scheduler, unchanged.
    """
    if scheduler is None:
        return None
    if not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be a string, got {scheduler!r}")
    if scheduler.startswith("local:"):
        count = scheduler.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"scheduler 'local:N' needs a number of workers N >= 1, got "
                             f"{scheduler!r}")
        return scheduler
    if "://" not in scheduler:
        raise ValueError(f"scheduler must be 'local:N' or an address such as "
                         f"'tcp://127.0.0.1:8786', got {scheduler!r}")
    return scheduler


@contextmanager
def _sigint_ignored():
    """SIGINT ignored while local worker processes (a Dask LocalCluster's, joblib's) start,
    and so in them, for they inherit it: Ctrl-C in a terminal reaches every process of the
    group, and this process, not each worker with its own traceback, is the one to stop the
    run and the workers (a Ctrl-C in these moments of start-up is lost)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; workers then keep Python's default
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _quiet_logs():
    """asyncio's and distributed's loggers in this process silenced for the block: a teardown
    with tasks cancelled mid-flight logs their errors, which the tasks' results already say."""
    loggers = [logging.getLogger(name) for name in ("asyncio", "distributed")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _check_main_guard() -> None:
    """A LocalCluster's worker processes are spawned: each imports the user's script again, and
    a script that starts the run at its top level, outside `if __name__ == "__main__":`, starts
    it again in every worker, which fails in pages of tracebacks. Said here, before any process
    starts, when the call comes from such a script."""
    import ast
    import inspect

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or getattr(main, "__spec__", None) is not None:
        return  # interactive, a notebook, python -c or -m: nothing is re-imported as a script
    frame = inspect.currentframe()
    while frame is not None and not (frame.f_globals is main.__dict__
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:
        return  # called from a function of the script: only its call site could tell
    line = frame.f_lineno
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) and \
                node.lineno <= line <= (node.end_lineno or node.lineno):
            return
    raise RuntimeError(
        f"scheduler 'local:N' starts worker processes that import {os.path.basename(path)} "
        f"again, and line {line} would start the run again in each of them: put the code that "
        f"runs it under `if __name__ == \"__main__\":`")


@contextmanager
def connect(scheduler: str | None):
    """A context manager giving a dask.distributed Client for a scheduler.

    A ``'local:N'`` cluster lives exactly as long as the with-block.

    Parameters
    ----------
    scheduler : str, dask.distributed.Client or None
        A scheduler as :func:`check_scheduler` takes it, or a Client (used as it is); None
        yields None and starts nothing.

    Yields
    ------
    dask.distributed.Client or None
        The client.
    """
    if hasattr(scheduler, "submit"):  # already a Client
        yield scheduler
        return
    scheduler = check_scheduler(scheduler)
    if scheduler is None:
        yield None
        return
    distributed = _distributed()
    if scheduler.startswith("local:"):
        _check_main_guard()
        # Its logs silenced: a cluster that lives for one run has nothing to tell beyond the
        # tasks' own errors, and a teardown on Ctrl-C with tasks in flight logs pages of them.
        with _sigint_ignored():
            cluster = distributed.LocalCluster(n_workers=int(scheduler.split(":", 1)[1]),
                                               threads_per_worker=1, processes=True,
                                               dashboard_address=":0",
                                               silence_logs=logging.CRITICAL)
        try:
            client = distributed.Client(cluster)
            try:
                yield client
            finally:
                with _quiet_logs():
                    client.close()
        finally:
            with _quiet_logs():
                cluster.close()
    else:
        with distributed.Client(scheduler) as client:
            yield client


def _call(function, shared, position, task):
    return position, function(shared, *task)


def run_tasks(function: Callable, tasks: list[tuple], *, shared=None, n_jobs: int = 1,
              client=None, progress: bool = True, order=None, unit: str = "fit"):
    """Call ``function(shared, *task)`` for every task, here, in local processes or on Dask.

    Ctrl-C cancels the tasks not finished and keeps the results of those that are.

    Parameters
    ----------
    function : callable
        Called as ``function(shared, *task)``.
    tasks : list of tuple
        The arguments of each call.
    shared : object
        The first argument of every call; sent to Dask's workers once.
    n_jobs : int
        Without a client: 1 runs in this process, more in that many local processes (joblib).
    client : dask.distributed.Client or None
        Run each call as one task of this client.
    progress : bool
        Whether a tqdm bar counts the finished tasks.
    order : sequence of int or None
        The task positions in the order to start them; None keeps the given order.
    unit : str
        What the progress bar counts.

    Returns
    -------
    results : dict
        ``{position: result}`` for every task that finished.
    interrupted : bool
        Whether Ctrl-C stopped the run.
    """
    from tqdm.auto import tqdm

    order = list(range(len(tasks))) if order is None else list(order)
    done, interrupted, results, futures = {}, False, None, []
    bar = tqdm(total=len(tasks), unit=unit, disable=not progress, file=sys.stderr,
               dynamic_ncols=True, leave=False)
    try:
        if client is not None:
            distributed = _distributed()
            remote = client.scatter(shared, broadcast=True) if shared is not None else None
            futures = [client.submit(_call, function, remote, i, tasks[i], pure=False)
                       for i in order]
            results = (future.result() for future in distributed.as_completed(futures))
        elif n_jobs == 1:
            results = (_call(function, shared, i, tasks[i]) for i in order)
        else:
            from joblib import Parallel, delayed

            with _sigint_ignored():  # the worker processes start in this call
                results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                    delayed(_call)(function, shared, i, tasks[i]) for i in order)
        for position, result in results:
            done[position] = result
            bar.update()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        try:
            if futures:
                client.cancel(futures)
            if results is not None and hasattr(results, "close"):
                results.close()  # joblib cancels the tasks not started
        except KeyboardInterrupt:
            interrupted = True
        bar.close()
    return done, interrupted


def parallel(n_jobs: int | None, client) -> bool:
    """Whether fits run beside each other, and so each on one thread.

    A worker runs as many tasks at once as it has threads, so its threads divided by its tasks
    is 1.

    Parameters
    ----------
    n_jobs : int or None
        The local processes asked for.
    client : dask.distributed.Client or None
        The Dask client, if any.

    Returns
    -------
    bool
        True with a client or more than one job.
    """
    return client is not None or (n_jobs or 1) != 1
