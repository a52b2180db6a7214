"""One training run of the lab (`train_run`): an MLP trained epoch by epoch on a `Dataset` with
its loss curve, time to a loss target and divergence recorded, and `evaluate`, its scores."""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np

from ..network import DivergenceError, Network
from ..optim import Schedule, make_optimizer
from ..training import run_epochs
from ._datasets import HIDDEN, Dataset


class RunResult(NamedTuple):
    row: dict  # numbers for runs.csv
    arrays: dict = {}  # curves, parameters: what the experiment's figures and later steps read


def evaluate(dataset: Dataset, network: Network) -> dict:
    """Training and test loss (the objective's data term, mean over rows) and accuracy."""
    return {"train_loss": network.mean_loss(dataset.X_train, dataset.targets(dataset.y_train)),
            "train_accuracy": dataset.accuracy(network, dataset.X_train, dataset.y_train),
            "test_loss": network.mean_loss(dataset.X_test, dataset.targets(dataset.y_test)),
            "test_accuracy": dataset.accuracy(network, dataset.X_test, dataset.y_test)}


def train_run(dataset: Dataset, *, seed: int, epochs: int, learning_rate: float,
              batch_size: int | None = 32, optimizer: str = "plain", schedule: str = "constant",
              target: float | None = None, hidden=HIDDEN, activation: str = "relu",
              init: str = "glorot_uniform", batch_norm: bool = False, alpha: float = 0.0,
              optimizer_options: dict | None = None, stop_at_target: bool = True) -> RunResult:
    """Train an MLP for up to `epochs` epochs, recording the full training loss after each
    (the curve). optimizer: 'plain' SGD or a name of make_optimizer. With `target`,
    epochs_to_target and seconds_to_target say when the full training loss first fell below it
    (NaN if never), and training stops there unless stop_at_target=False (then every run trains
    all its epochs, and the final losses of different runs compare). A diverging run is a
    result: diverged=True, the epoch it happened in, and the scores of its last finite state;
    failed=True when it diverged or ended with a training loss no lower than at the start."""
    network = dataset.network(hidden, activation=activation, init=init, batch_norm=batch_norm,
                              alpha=alpha, random_state=seed)
    data = network.prepare(dataset.X_train, dataset.targets(dataset.y_train))
    opt = None if optimizer == "plain" else make_optimizer(optimizer, **(optimizer_options or {}))
    schedule_ = Schedule(schedule, learning_rate, total_epochs=epochs,
                         step_size=max(1, epochs // 3))
    initial = network.mean_loss(data)
    curve, reached, diverged_at, seconds = [], math.nan, math.nan, 0.0
    started = time.perf_counter()
    try:
        for record in run_epochs(network, data, opt, schedule_, batch_size=batch_size,
                                 max_epochs=epochs, random_state=seed, draw="seed"):
            curve.append(network.mean_loss(data))
            if not math.isfinite(curve[-1]):
                raise DivergenceError("the training loss became non-finite")
            if target is not None and math.isnan(reached) and curve[-1] < target:
                reached, seconds = record["epoch"], time.perf_counter() - started
                if stop_at_target:
                    break
    except DivergenceError:
        diverged_at = len(curve) + 1
    row = {"epochs": len(curve), "diverged": not math.isnan(diverged_at),
           "diverged_epoch": diverged_at, "seconds": time.perf_counter() - started}
    if target is not None:
        row.update(epochs_to_target=reached,
                   seconds_to_target=math.nan if math.isnan(reached) else seconds)
    row.update(evaluate(dataset, network))
    # Failed: diverged, or ended no better than it started (a rate too large for ReLU units
    # leaves them dead or sends the loss up without ever producing a non-finite number).
    row.update(initial_loss=initial,
               failed=bool(row["diverged"] or not row["train_loss"] < initial))
    return RunResult(row, {"curve": np.array(curve), "params": network.params.copy()})

