"""`Network`: the Python handle of one C++ network.

Parameters and gradients live in two contiguous buffers owned by the C++ core; `params`, `grads`,
`coefs`, `intercepts`, `coef_grads` and `intercept_grads` are writable numpy views into them, so
writing into a view changes the network and nothing is ever copied.

Maths (DESIGN.md §2): layer t computes ``P_t = A_{t-1} @ W_t + b_t`` and ``A_t = g(P_t)`` with
``W_t`` of shape (fan_in, fan_out), as scikit-learn's ``coefs_[t]``; the output layer is linear
and its raw scores f go to the loss. On a batch M with sample weights w (all ones by default)::

    mean:  L = (Σ_{i∈M} w_i ℓ_i + α/2 Σ_t ‖W_t‖²) / Σ_{i∈M} w_i     (scikit-learn's objective)
    sum:   n · L, whose gradient is the lecture's (n/|M|) Σ_{i∈M} ∂ℓ_i/∂θ
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from . import _core
from ._validation import (
    check_choice,
    check_dtype,
    check_float,
    check_int,
    check_order,
    check_sample_weight,
    check_targets,
    check_X,
)

ACTIVATIONS = ("identity", "relu", "logistic", "tanh", "leaky_relu", "softplus", "gelu")
LOSSES = ("squared_error", "logistic", "softmax", "poisson")
REDUCTIONS = ("mean", "sum")


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss, gradient or parameter and was stopped.

    The network keeps the parameters of its last finite state."""


def _seed_from(random_state) -> int:
    """A 64-bit seed for the core's permutation generator, drawn from a RandomState."""
    return int(check_random_state(random_state).randint(0, 2**63 - 1, dtype=np.int64))


class Network:
    """A multilayer perceptron trained by the C++ core.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_features, hidden_1, ..., hidden_L, n_outputs]``; two entries give a linear model.
    activation : {'identity', 'relu', 'logistic', 'tanh', 'leaky_relu', 'softplus', 'gelu'}
        Activation of every hidden layer (the output layer is linear).
    loss : {'squared_error', 'logistic', 'softmax', 'poisson'}
        Loss on the raw scores: ½ squared error averaged over outputs; binary/multilabel logistic
        (targets in [0, 1]); softmax cross-entropy (one-hot rows or integer labels); Poisson with
        log link (targets >= 0).
    alpha : float, default 0
        L2 penalty on the weights (not the biases), scaled per batch as scikit-learn does.
    loss_reduction : {'mean', 'sum'}, default 'mean'
        'sum' multiplies the objective by n, the number of training rows: the lecture's update.
    dtype : {'float64', 'float32'}, default 'float64'
    random_state : None, int or numpy RandomState
        Seeds the initial weights, drawn exactly as scikit-learn's MLP draws them
        (Glorot uniform, factor 2 for the logistic activation).
    """

    def __init__(
        self,
        layer_sizes,
        activation: str = "relu",
        loss: str = "squared_error",
        *,
        alpha: float = 0.0,
        loss_reduction: str = "mean",
        dtype="float64",
        random_state=None,
    ):
        try:
            sizes = [check_int(s, "layer_sizes entries") for s in layer_sizes]
        except TypeError as exc:
            if not np.iterable(layer_sizes):
                raise TypeError(
                    f"layer_sizes must be a sequence of positive integers, got {layer_sizes!r}"
                ) from exc
            raise
        if len(sizes) < 2:
            raise ValueError(
                f"layer_sizes needs at least [n_features, n_outputs], got {list(layer_sizes)!r}"
            )
        check_choice(activation, "activation", ACTIVATIONS)
        check_choice(loss, "loss", LOSSES)
        if loss == "softmax" and sizes[-1] < 2:
            raise ValueError("the softmax loss needs at least 2 outputs, got layer_sizes[-1] = 1")
        self.dtype = np.dtype(check_dtype(dtype))
        core_class = _core.Network64 if self.dtype == np.float64 else _core.Network32
        self._core = core_class(sizes, activation, loss, check_float(alpha, "alpha", inclusive=True))
        self.loss_reduction = loss_reduction
        self._make_views()
        self.initialize(random_state)

    def _make_views(self):
        params, grads = self._core.params, self._core.grads
        layout = self._core.layout()

        def views(buf, entries):
            return [buf[o : o + r * c].reshape(r, c) for o, r, c in entries]

        self.params = params
        self.grads = grads
        self.coefs = views(params, layout[0::2])
        self.intercepts = [v.reshape(-1) for v in views(params, layout[1::2])]
        self.coef_grads = views(grads, layout[0::2])
        self.intercept_grads = [v.reshape(-1) for v in views(grads, layout[1::2])]

    # ---- structure -------------------------------------------------------------------------
    @property
    def layer_sizes(self) -> list[int]:
        return list(self._core.layer_sizes)

    @property
    def activation(self) -> str:
        return self._core.activation

    @property
    def loss_name(self) -> str:
        return self._core.loss

    @property
    def n_params(self) -> int:
        return self._core.n_params

    @property
    def alpha(self) -> float:
        return self._core.alpha

    @alpha.setter
    def alpha(self, value):
        self._core.alpha = check_float(value, "alpha", inclusive=True)

    @property
    def loss_reduction(self) -> str:
        return self._loss_reduction

    @loss_reduction.setter
    def loss_reduction(self, value):
        self._loss_reduction = check_choice(value, "loss_reduction", REDUCTIONS)

    @property
    def input_grad_counts(self) -> list[int]:
        """How many times each layer computed the gradient of its input. The first layer's entry
        stays 0: ∂ℓ/∂x is never computed."""
        return list(self._core.input_grad_counts)

    @property
    def workspace_allocations(self) -> int:
        """How many times the activation workspace was (re)allocated; training steps never do."""
        return self._core.workspace_allocations

    def initialize(self, random_state=None) -> "Network":
        """Draw fresh weights the way scikit-learn's MLP does: per layer, W then b, each uniform
        in ±sqrt(factor / (fan_in + fan_out)), factor 6 (2 for the logistic activation)."""
        rng = check_random_state(random_state)
        factor = 2.0 if self.activation == "logistic" else 6.0
        for W, b in zip(self.coefs, self.intercepts):
            fan_in, fan_out = W.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            W[...] = rng.uniform(-bound, bound, (fan_in, fan_out))
            b[...] = rng.uniform(-bound, bound, fan_out)
        return self

    # ---- data preparation --------------------------------------------------------------------
    def _prepare(self, X, y, sample_weight):
        X = check_X(X, self.dtype, n_features=self.layer_sizes[0])
        Y = check_targets(
            y, self.dtype, n_samples=X.shape[0], n_outputs=self.layer_sizes[-1], loss=self.loss_name
        )
        w = check_sample_weight(sample_weight, self.dtype, n_samples=X.shape[0])
        return X, Y, w

    def _scale(self, weight_sum: float, n_total) -> float:
        if self.loss_reduction == "mean":
            return 1.0 / weight_sum
        return check_int(n_total, "n_total") / weight_sum

    # ---- computation -------------------------------------------------------------------------
    def forward(self, X, training: bool = False) -> np.ndarray:
        """Raw output scores f, shape (n, n_outputs).

        `training` selects the behaviour of layers that differ between training and evaluation
        (batch normalisation); a network of dense layers gives the same result either way."""
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training must be True or False, got {training!r}")
        return self._core.forward(check_X(X, self.dtype, n_features=self.layer_sizes[0]))

    def predict(self, X) -> np.ndarray:
        """Predictions on the response scale: f for squared error, σ(f) for logistic, softmax(f)
        probabilities for softmax, exp(f) for Poisson."""
        f = self.forward(X)
        loss = self.loss_name
        if loss == "logistic":
            return 0.5 * (1.0 + np.tanh(0.5 * f))  # σ(f) without overflow warnings
        if loss == "softmax":
            e = np.exp(f - f.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        if loss == "poisson":
            return np.exp(f)
        return f

    def loss(self, X, y, sample_weight=None, *, n_total=None) -> float:
        """The objective on (X, y): mean or sum form per `loss_reduction` (n_total defaults to the
        number of rows of X)."""
        X, Y, w = self._prepare(X, y, sample_weight)
        weight_sum = float(X.shape[0] if w is None else w.sum(dtype=np.float64))
        raw = self._core.weighted_loss_sum(X, Y, w) + self._core.penalty()
        return raw * self._scale(weight_sum, X.shape[0] if n_total is None else n_total)

    def loss_and_grad(self, X, y, sample_weight=None, *, n_total=None):
        """(objective, grads): fills the gradient buffer for (X, y) taken as one batch and returns
        the objective with a view of the gradients (the same array as `self.grads`)."""
        X, Y, w = self._prepare(X, y, sample_weight)
        weight_sum = float(X.shape[0] if w is None else w.sum(dtype=np.float64))
        scale = self._scale(weight_sum, X.shape[0] if n_total is None else n_total)
        raw = self._core.forward_backward(X, Y, w, scale)
        return raw * scale, self.grads

    def sgd_step(self, learning_rate: float) -> None:
        """θ ← θ − learning_rate · grads, over the whole parameter buffer."""
        self._core.sgd_step(check_float(learning_rate, "learning_rate"))

    def train_epoch(
        self,
        X,
        y,
        *,
        learning_rate: float = 1e-3,
        batch_size: int = 200,
        shuffle: bool = True,
        seed=None,
        order=None,
        sample_weight=None,
    ) -> float:
        """One epoch of minibatch SGD in C++; returns the epoch's mean training loss (mean units,
        like scikit-learn's loss_curve_ entries).

        Rows are visited in `order` when given (an index array, e.g. a permutation drawn the way
        scikit-learn draws it), else in a permutation seeded by `seed` when `shuffle`, else in
        their stored order. Raises DivergenceError, with the parameters of the last finite state
        kept, when the loss or an update becomes non-finite."""
        X, Y, w = self._prepare(X, y, sample_weight)
        return self._train_epoch_prepared(
            X, Y, w, learning_rate=learning_rate, batch_size=batch_size, shuffle=shuffle,
            seed=seed, order=order,
        )

    def _train_epoch_prepared(self, X, Y, w, *, learning_rate, batch_size, shuffle, seed, order):
        learning_rate = check_float(learning_rate, "learning_rate")
        batch_size = check_int(batch_size, "batch_size")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        if order is not None:
            order = check_order(order, n_samples=X.shape[0])
        seed = _seed_from(seed) if shuffle and order is None else 0
        mean_loss, steps, diverged = self._core.train_epoch(
            X, Y, w, order, batch_size, learning_rate, self.loss_reduction, bool(shuffle), seed
        )
        if diverged:
            raise DivergenceError(
                f"training diverged: the loss or an updated parameter became non-finite after "
                f"{steps} step(s) of this epoch (learning_rate={learning_rate:g}). The network "
                f"keeps its last finite parameters; try a smaller learning_rate or standardised "
                f"inputs."
            )
        return mean_loss

    # ---- copying and pickling: architecture, settings and parameters --------------------------
    def __getstate__(self):
        return {
            "layer_sizes": self.layer_sizes,
            "activation": self.activation,
            "loss": self.loss_name,
            "alpha": self.alpha,
            "loss_reduction": self.loss_reduction,
            "dtype": self.dtype.name,
            "params": self.params.copy(),
        }

    def __setstate__(self, state):
        self.__init__(state["layer_sizes"], state["activation"], state["loss"],
                      alpha=state["alpha"], loss_reduction=state["loss_reduction"],
                      dtype=state["dtype"])
        self.params[:] = state["params"]

    def copy(self) -> "Network":
        """An independent network with the same architecture, settings and parameters."""
        clone = Network.__new__(Network)
        clone.__setstate__(self.__getstate__())
        return clone

    def __repr__(self) -> str:
        return (
            f"Network(layer_sizes={self.layer_sizes}, activation={self.activation!r}, "
            f"loss={self.loss_name!r}, alpha={self.alpha:g}, "
            f"loss_reduction={self.loss_reduction!r}, dtype={self.dtype.name!r})"
        )


def train(
    network: Network,
    X,
    y,
    *,
    epochs: int = 10,
    learning_rate: float = 1e-3,
    batch_size: int = 200,
    shuffle: bool = True,
    random_state=None,
    sample_weight=None,
    callback=None,
) -> list[float]:
    """Train `network` for `epochs` whole epochs of minibatch SGD, each run in C++.

    Data are checked once; each epoch's permutation is seeded from `random_state`. `callback`,
    if given, is called after every epoch as ``callback(epoch, loss)`` and may return True to
    stop. Returns the list of per-epoch mean training losses."""
    epochs = check_int(epochs, "epochs")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    X, Y, w = network._prepare(X, y, sample_weight)
    rng = check_random_state(random_state)
    losses = []
    for epoch in range(epochs):
        losses.append(
            network._train_epoch_prepared(
                X, Y, w, learning_rate=learning_rate, batch_size=batch_size, shuffle=shuffle,
                seed=rng, order=None,
            )
        )
        if callback is not None and callback(epoch, losses[-1]):
            break
    return losses
