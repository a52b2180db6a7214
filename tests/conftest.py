"""Shared helpers: problem generators and the tolerances every comparison uses."""

import sys
from pathlib import Path

import numpy as np
import pytest

from nncore import _core

sys.path.insert(0, str(Path(__file__).parent))

# Core vs reference. float64 agrees to rounding (~1e-15); 1e-10 leaves room for summation order in
# GEMMs. float32 runs the same maths with ~6e-8 unit roundoff through a few layers: 1e-4.
RTOL = {np.float64: 1e-10, np.float32: 1e-4}

# Every activation and loss the core has: one it gains is tested against the reference at once
# (and fails there until tests/reference.py writes it too), never skipped silently.
ACTIVATIONS = tuple(_core.activations)
LOSSES = tuple(_core.losses)
DEPTHS = {0: [], 1: [5], 3: [6, 4, 5]}
DTYPES = (np.float64, np.float32)


def assert_close(actual, desired, rtol, what=""):
    """|actual − desired| <= rtol · (|desired| + max|desired|), elementwise.

    The max term makes the bound relative to the array's scale: an entry that is small only
    because larger terms cancelled carries their absolute rounding error."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    scale = max(np.abs(desired).max(initial=0.0), 1e-300)
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale, err_msg=what)


def n_outputs_for(loss: str) -> int:
    return 3 if loss == "softmax" else 2


def make_targets(loss: str, n: int, rng: np.random.Generator) -> np.ndarray:
    K = n_outputs_for(loss)
    if loss == "squared_error":
        return rng.normal(size=(n, K))
    if loss == "logistic":
        return rng.integers(0, 2, size=(n, K)).astype(float)
    if loss == "softmax":
        return np.eye(K)[rng.integers(0, K, size=n)]
    if loss == "poisson":
        return rng.poisson(1.5, size=(n, K)).astype(float)
    raise ValueError(loss)


def make_problem(loss: str, depth: int, *, n: int = 9, d: int = 4, seed: int = 0):
    """(layer_sizes, X, Y, sample_weight) with odd sizes that are not multiples of a SIMD width."""
    rng = np.random.default_rng(seed)
    sizes = [d, *DEPTHS[depth], n_outputs_for(loss)]
    X = rng.normal(size=(n, d))
    Y = make_targets(loss, n, rng)
    w = rng.uniform(0.2, 2.0, size=n)
    return sizes, X, Y, w


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
