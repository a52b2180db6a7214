"""nncore: fast, exact multilayer perceptrons on a C++17/Eigen core."""

from . import _core, _targets, callbacks
from ._threadpool import thread_limit
from ._version import __version__
from .estimators import MLPClassifier, MLPRegressor, TrainingInterrupted
from .network import ACTIVATIONS, INITS, LOSSES, DivergenceError, Network, PreparedData
from .optim import SCHEDULES, SGD, Adam, AdamW, Optimizer, Schedule, make_optimizer
from .persistence import load
from .streaming import fit_stream
from .sweeps import best_settings, sweep
from .training import LBFGSResult, lbfgs, run_epochs, train

__all__ = [
    "ACTIVATIONS", "INITS", "LOSSES", "SCHEDULES", "Adam", "AdamW", "DivergenceError",
    "LBFGSResult", "MLPClassifier", "MLPRegressor", "Network", "Optimizer", "PreparedData", "SGD",
    "Schedule", "TrainingInterrupted", "__version__", "build_info", "lbfgs", "load",
    "make_optimizer", "run_epochs", "thread_limit", "train",
    "sweep",
    "fit_stream",
    "best_settings",
]


def build_info() -> dict:
    """How the compiled core in use was built: Eigen version, the build of the core this CPU
    runs (`cpu_target`: "baseline", "avx2" or "avx512"; `NNCORE_CPU` forces a lower one), the
    builds installed (`cpu_targets`), its -march, and the matrix-multiply kernel of each
    precision ("nncore-avx512", "nncore-avx2", or "eigen" in the baseline build; both precisions
    run the same kind). Threads come from the core's own pool (see `thread_limit`)."""
    return {"eigen": _core.eigen_version, "cpu_target": _core.cpu_target,
            "cpu_targets": _targets.compiled(__path__[0]), "march": _core.march or "default",
            "float_kernel": _core.gemm_kernel, "double_kernel": _core.gemm_kernel}


# Submodules that import something heavy or optional load on first use, so `nncore.onnx`,
# `nncore.curvature`, ... work as attributes without an import of their own.
_LAZY_SUBMODULES = ("cluster", "curvature", "lab", "landscape", "onnx", "plot")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'nncore' has no attribute {name!r}")

