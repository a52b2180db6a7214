"""nncore: fast, exact multilayer perceptrons on a C++17/Eigen core."""

from . import _core
from .network import ACTIVATIONS, LOSSES, DivergenceError, Network, train

__version__ = "0.1.0"
__all__ = ["ACTIVATIONS", "LOSSES", "DivergenceError", "Network", "train", "build_info"]


def build_info() -> dict:
    """How the compiled core was built: Eigen version and instruction set."""
    return {"eigen": _core.eigen_version, "march": _core.march or "portable"}
