"""nncore's thread pool as threadpoolctl sees it.

The core's default thread count is one process-wide limit (it starts from OMP_NUM_THREADS, else
the usable CPUs). Registered with threadpoolctl, `threadpool_info()` lists it (user_api
"openmp", internal_api "nncore") and `threadpool_limits(...)` sets it — the same call that limits
OpenMP and BLAS — so code that limits the threads of the libraries around it limits nncore's too.
joblib's process workers and Dask's workers start with OMP_NUM_THREADS set to their share of the
cores, which nncore reads at import.
"""

from __future__ import annotations

from threadpoolctl import LibController, register

from . import _core, _version


class NncoreController(LibController):
    """threadpoolctl's handle on nncore._core: found among the loaded libraries by its file name
    and its exported symbols, and driven through them."""

    user_api = "openmp"
    internal_api = "nncore"
    filename_prefixes = ("_core",)
    check_symbols = ("nncore_get_num_threads", "nncore_set_num_threads")

    def get_num_threads(self):
        return self.dynlib.nncore_get_num_threads()

    def set_num_threads(self, num_threads):
        self.dynlib.nncore_set_num_threads(int(num_threads))

    def get_version(self):
        return _version.__version__


register(NncoreController)


def thread_limit() -> int:
    """The threads a computation with n_threads=None runs on: OMP_NUM_THREADS when nncore was
    imported (its first entry), else every CPU this process may use; `threadpoolctl`'s
    `threadpool_limits` changes it (for the duration of its `with` block)."""
    return _core.thread_limit()
