"""Type stubs for nncore's compiled core (cpp/src/bindings.cpp; one build per x86-64 level, loaded
by _core.py). Use nncore.Network instead."""

from typing import Any, Mapping, Optional

import numpy as np
import numpy.typing as npt

march: str
cpu_target: str
eigen_version: str
gemm_kernel: str
# The core's name tables, in its enum order; Python builds its choices and checks from them.
activations: tuple[str, ...]
losses: tuple[str, ...]
optimizers: tuple[str, ...]
schedules: tuple[str, ...]
reductions: tuple[str, ...]
param_kinds: tuple[str, ...]
# Default settings of the schedules and optimisers (a read-only mapping).
defaults: Mapping[str, float]
# Constants of the maths (batch norm's ε and running-average momentum, leaky ReLU's slope).
batchnorm_epsilon: float
batchnorm_momentum: float
leaky_relu_slope: float

def parameter_count(layer_sizes: list[int], batch_norm: bool = False) -> int: ...
def thread_limit() -> int: ...
def set_thread_limit(n: int) -> None: ...
def usable_cpus() -> int: ...
def seeded_permutation(n: int, seed: int) -> list[int]: ...
def dropout_mask(
    seed: int, step: int, layer: int, rows: int, units: int, rate: float
) -> npt.NDArray[np.float64]: ...

class _Optimizer:
    def __init__(
        self,
        kind: str,
        n_params: int,
        momentum: float = 0.0,
        nesterov: bool = False,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None: ...
    @property
    def kind(self) -> str: ...
    @property
    def n_params(self) -> int: ...
    steps: int
    @property
    def first(self) -> Optional[npt.NDArray[np.floating]]: ...
    @property
    def second(self) -> Optional[npt.NDArray[np.floating]]: ...
    def reset(self) -> None: ...

class Optimizer64(_Optimizer): ...
class Optimizer32(_Optimizer): ...

class Schedule:
    def __init__(
        self,
        kind: str,
        learning_rate_init: float,
        power_t: float = 0.5,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        step_size: int = 10,
        gamma: float = 0.1,
        total_epochs: int = 100,
        min_learning_rate: float = 0.0,
        warmup_epochs: int = 0,
    ) -> None: ...
    @property
    def kind(self) -> str: ...
    @property
    def learning_rate(self) -> float: ...
    @property
    def epoch(self) -> int: ...
    @property
    def no_improvement_count(self) -> int: ...
    @property
    def best_loss(self) -> float: ...
    @property
    def base_learning_rate(self) -> float: ...
    def set_state(
        self, epoch: int, base_learning_rate: float, no_improvement_count: int, best_loss: float
    ) -> None: ...
    def epoch_end(self, monitored_loss: float, samples_seen: float) -> bool: ...

class _Network:
    def __init__(
        self,
        layer_sizes: list[int],
        activation: str,
        loss: str,
        alpha: float = 0.0,
        batch_norm: bool = False,
    ) -> None: ...
    @property
    def batch_norm(self) -> bool: ...
    n_threads: int
    @property
    def n_threads_requested(self) -> int: ...
    def use_reference_products(self, reference: bool) -> None: ...
    @property
    def batchnorm_state(self) -> Optional[npt.NDArray[np.floating]]: ...
    def set_batchnorm_statistics(self, X: npt.NDArray[np.floating]) -> None: ...
    def optimizer_step(self, optimizer: _Optimizer, learning_rate: float) -> bool: ...
    @property
    def layer_sizes(self) -> list[int]: ...
    @property
    def activation(self) -> str: ...
    @property
    def loss(self) -> str: ...
    alpha: float
    # scikit-learn's two departures from the textbook (see loss.hpp's LossConventions)
    loss_clip_epsilon: float
    sum_output_gradient: bool
    dropout: list[float]
    dropout_seed: int
    dropout_step: int
    @property
    def n_params(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def workspace_allocations(self) -> int: ...
    @property
    def input_grad_counts(self) -> list[int]: ...
    @property
    def params(self) -> npt.NDArray[np.floating]: ...
    @property
    def grads(self) -> npt.NDArray[np.floating]: ...
    def layout(self) -> list[tuple[str, int, int, int, int]]: ...
    def reserve(self, rows: int) -> None: ...
    def forward(
        self, X: npt.NDArray[np.floating], training: bool = False
    ) -> npt.NDArray[np.floating]: ...
    def predict(
        self, X: npt.NDArray[np.floating], output: str = "response", check_finite: bool = False
    ) -> Optional[npt.NDArray[Any]]: ...
    def weighted_loss_sum(
        self,
        X: npt.NDArray[np.floating],
        Y: npt.NDArray[np.floating],
        sample_weight: Optional[npt.NDArray[np.floating]],
        training: bool = False,
    ) -> float: ...
    def penalty(self) -> float: ...
    def forward_backward(
        self,
        X: npt.NDArray[np.floating],
        Y: npt.NDArray[np.floating],
        sample_weight: Optional[npt.NDArray[np.floating]],
        scale: float,
        update_running_stats: bool = False,
        dropout: bool = False,
    ) -> float: ...
    def hessian_vector_product(
        self,
        X: npt.NDArray[np.floating],
        Y: npt.NDArray[np.floating],
        sample_weight: Optional[npt.NDArray[np.floating]],
        scale: float,
        v: npt.NDArray[np.floating],
        with_penalty: bool = True,
        with_grad: bool = False,
    ) -> tuple[float, npt.NDArray[np.floating], Optional[npt.NDArray[np.floating]]]: ...
    def hessian_vector_products(
        self,
        X: npt.NDArray[np.floating],
        Y: npt.NDArray[np.floating],
        sample_weight: Optional[npt.NDArray[np.floating]],
        scale: float,
        V: npt.NDArray[np.floating],
        with_penalty: bool = True,
    ) -> tuple[float, npt.NDArray[np.floating]]: ...
    def train_epoch(
        self,
        optimizer: _Optimizer,
        X: npt.NDArray[np.floating],
        Y: npt.NDArray[np.floating],
        sample_weight: Optional[npt.NDArray[np.floating]],
        order: Optional[npt.NDArray[np.int64]],
        batch_size: int,
        learning_rate: float,
        loss_reduction: str,
        shuffle: bool,
        seed: int,
        continuing: bool = False,
    ) -> tuple[float, int, bool, float, bool]: ...

class _CsrMatrix:
    """A CSR matrix's three arrays, viewed (kept alive, not copied) for the core's passes."""
    def __init__(
        self,
        data: npt.NDArray[np.floating],
        indices: npt.NDArray[np.int64],
        indptr: npt.NDArray[np.int64],
        n_cols: int,
    ) -> None: ...
    @property
    def shape(self) -> tuple[int, int]: ...

class CsrMatrix64(_CsrMatrix): ...
class CsrMatrix32(_CsrMatrix): ...

class Network64(_Network): ...
class Network32(_Network): ...
