"""`Network`: the Python handle of one C++ network — its structure, views of its parameters, its
computations (forward, loss, gradient, one epoch) and its state.

Parameters and gradients live in two contiguous buffers owned by the C++ core; `params`, `grads`,
`coefs`, `intercepts`, `coef_grads` and `intercept_grads` are writable numpy views into them, so
writing into a view changes the network and nothing is ever copied.

Maths: layer t computes ``P_t = A_{t-1} @ W_t + b_t`` and ``A_t = g(P_t)`` with
``W_t`` of shape (fan_in, fan_out), as scikit-learn's ``coefs_[t]``; the output layer is linear
and its raw scores f go to the loss. On a batch M with sample weights w (all ones by default)::

    mean:  L = (Σ_{i∈M} w_i ℓ_i + α/2 Σ_t ‖W_t‖²) / Σ_{i∈M} w_i     (scikit-learn's objective)
    sum:   n · L, whose gradient is the lecture's (n/|M|) Σ_{i∈M} ∂ℓ_i/∂θ

With dropout, a training step multiplies each hidden layer's output A_t by a fresh mask of
entries 0 (probability p_t) or 1/(1 − p_t); ℓ_i is then the loss under those masks. Everything
else — forward, predict, loss, mean_loss, the curvature tools — evaluates without dropout.
"""

from __future__ import annotations

import hashlib
import os
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from . import _core
from ._validation import (
    check_choice,
    check_dropout,
    check_dtype,
    check_int,
    check_order,
    check_param,
    check_sample_weight,
    check_targets,
    check_X,
    finite_as,
)
from .optim import SGD, Optimizer, check_optimizer

# The core's name tables; the initialisations are drawn here in Python.
ACTIVATIONS = tuple(_core.activations)
LOSSES = tuple(_core.losses)
REDUCTIONS = tuple(_core.reductions)
INITS = ("glorot_uniform", "he_normal", "glorot_normal", "normal", "pytorch_uniform", "zeros")


class DivergenceError(FloatingPointError, ValueError):
    """Training produced a non-finite loss, gradient or parameter and was stopped.

    The network keeps the parameters of its last finite state. It is also a ValueError, the
    exception scikit-learn raises when its MLP ends with non-finite weights."""


class EpochStats(NamedTuple):
    """What one epoch of `Network.run_epoch` reports."""

    loss: float  # mean training loss of the epoch (mean units)
    steps: int  # parameter updates made
    grad_norm: float  # mean over the steps of the minibatch gradient's 2-norm


class PreparedData(NamedTuple):
    """Data checked and converted once for one network (made by :meth:`Network.prepare`).

    Every method that takes (X, y) also takes one of these in place of X, and then checks nothing
    again.

    Parameters
    ----------
    X : ndarray or scipy.sparse.csr_matrix
        The rows, shape (n, d), C-contiguous in the network's dtype; a CSR matrix of that dtype
        is read as it is (the first layer's products run on its stored values).
    Y : ndarray
        The targets, shape (n, K), C-contiguous in the network's dtype.
    sample_weight : ndarray of shape (n,) or None
        Weights of the rows, or None for weight 1 each.
    """

    X: np.ndarray
    Y: np.ndarray
    sample_weight: np.ndarray | None

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]


def _dense(X):
    """X as a dense array: the curvature passes (H·v) run on dense rows only."""
    return np.ascontiguousarray(X.toarray()) if sp.issparse(X) else X


class ViewList(list):
    """Per-layer views (coefs, intercepts, ...): assigning an item copies into that view
    (`net.coefs[0] = W` changes the network), with its shape checked."""

    def __setitem__(self, index, value):
        target = list.__getitem__(self, index)
        value = np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(f"expected an array of shape {target.shape}, got {value.shape}")
        target[...] = value

    def assign(self, values, name: str) -> None:
        """Copy one array per view (a whole list assigned at once), each shape checked."""
        values = list(values)
        if len(values) != len(self):
            raise ValueError(f"{name} needs {len(self)} arrays, got {len(values)}")
        for i, value in enumerate(values):
            self[i] = value


class _WriteThrough:
    """A view attribute of Network. Reading gives the numpy view (or ViewList of views);
    assigning copies the values into it — `net.params = θ` does what `net.params[:] = θ` does —
    so the attribute can never be replaced by an array the network does not use."""

    def __set_name__(self, owner, name):
        self.name, self.slot = name, "_" + name

    def __get__(self, obj, objtype=None):
        return self if obj is None else obj.__dict__[self.slot]

    def __set__(self, obj, value):
        if self.slot not in obj.__dict__:  # the views themselves, made once
            obj.__dict__[self.slot] = ViewList(value) if isinstance(value, list) else value
            return
        target = obj.__dict__[self.slot]
        if isinstance(target, ViewList):
            target.assign(value, self.name)
            return
        value = np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(f"{self.name} must have shape {target.shape}, got {value.shape}")
        target[...] = value


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _seed_from(random_state) -> int:
    """A 64-bit seed for the core's permutation generator, drawn from a RandomState."""
    return int(check_random_state(random_state).randint(0, 2**63 - 1, dtype=np.int64))


def dropout_seed_of(rng: np.random.RandomState) -> int:
    """The dropout seed for a network initialised from `rng`: the first 8 bytes (little-endian)
    of BLAKE2b over rng's Mersenne Twister state (key words, position, cached Gaussian) after the
    initial weights were drawn. Nothing is drawn from rng, so the weights, the validation split
    and every batch order are those of a run without dropout; the same random_state still
    gives the same masks."""
    _, key, pos, has_gauss, gauss = rng.get_state(legacy=True)
    digest = hashlib.blake2b(np.asarray(key, dtype="<u4").tobytes(), digest_size=8)
    digest.update(np.array([pos, has_gauss], dtype="<i8").tobytes())
    digest.update(np.array([gauss], dtype="<f8").tobytes())
    return int.from_bytes(digest.digest(), "little")


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
    alpha : float
        L2 penalty on the weights (not the biases), scaled per batch as scikit-learn does.
    loss_reduction : {'mean', 'sum'}
        'sum' multiplies the objective by n, the number of training rows: the lecture's update.
    dtype : {'float64', 'float32'}
        The precision of the parameters and of every computation.
    batch_norm : bool
        Batch normalisation between every hidden dense layer and its activation (PyTorch's
        BatchNorm1d conventions: ε = 1e-5, running averages with momentum 0.1).
    init : {'glorot_uniform', 'he_normal', 'glorot_normal', 'normal', 'pytorch_uniform', 'zeros'}
        'glorot_uniform' draws exactly as scikit-learn's MLP (uniform ±sqrt(f/(fan_in+fan_out)),
        f = 6, or 2 for the logistic activation, weights then biases per layer); the Gaussian
        schemes draw iid N(0, σ²) weights — σ² = 2/fan_in (he), 2/(fan_in+fan_out) (glorot),
        init_std² (normal) — with zero biases; 'pytorch_uniform' draws weights and biases from
        U(±1/sqrt(fan_in)), PyTorch's nn.Linear default (what most studies of sharpness used;
        the same distribution, not PyTorch's random stream); 'zeros' makes every parameter 0, a teaching case:
        the hidden units of a layer then stay identical and the network cannot learn.
    init_std : float
        σ of the 'normal' scheme.
    random_state : None, int or numpy RandomState
        Seeds the initial weights.
    n_threads : int or None
        Threads for the large matrix products (those of at least ~2M multiply-adds; smaller ones
        run on one thread), the large elementwise passes, and evaluation's blocks of rows. None:
        the process-wide default, read at each call — OMP_NUM_THREADS when nncore was imported,
        else every CPU this process may use, as changed by `threadpoolctl.threadpool_limits`
        (joblib's and Dask's workers set these limits for you). Results are the same bits for
        every thread count.
    dropout : float or sequence of float
        Inverted dropout on the output of every hidden layer (after batch norm and the
        activation) in training steps — `train_epoch`, `run_epoch`, `nncore.train`, and
        `loss_and_grad(..., dropout=True)`: a rate in [0, 1) for all hidden layers, or one per
        hidden layer. The masks of a step are a function of (`dropout_seed`, `dropout_step`,
        layer, row in the batch, unit) — the same for any n_threads; `dropout_seed` is derived
        from random_state without drawing from it (see `dropout_seed_of`) and `dropout_step`
        counts the steps that drew masks.

    Notes
    -----
    Two attributes (off by default; nncore's estimators set both, to train as scikit-learn
    does) reproduce where scikit-learn's numbers are not the textbook's: ``loss_clip_epsilon``
    (0: off) — the log-loss *value* (loss, loss curves, L-BFGS's line search) of probabilities
    clipped to [eps, 1 − eps], the gradient unclipped; ``sum_output_gradient`` — squared error's
    gradient (and H·v) is that of Σ_k ½(y_k − f_k)², n_outputs times the gradient of the loss,
    which is still reported averaged over the outputs.
    """

    params = _WriteThrough()
    grads = _WriteThrough()
    coefs = _WriteThrough()
    intercepts = _WriteThrough()
    coef_grads = _WriteThrough()
    intercept_grads = _WriteThrough()
    bn_gammas = _WriteThrough()
    bn_betas = _WriteThrough()
    bn_gamma_grads = _WriteThrough()
    bn_beta_grads = _WriteThrough()
    running_means = _WriteThrough()
    running_vars = _WriteThrough()

    def __init__(
        self,
        layer_sizes,
        activation: str = "relu",
        loss: str = "squared_error",
        *,
        alpha: float = 0.0,
        loss_reduction: str = "mean",
        dtype="float64",
        batch_norm: bool = False,
        init: str = "glorot_uniform",
        init_std: float = 0.01,
        random_state=None,
        n_threads: int | None = None,
        dropout=0.0,
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
        if not isinstance(batch_norm, (bool, np.bool_)):
            raise TypeError(f"batch_norm must be True or False, got {batch_norm!r}")
        self.dtype = np.dtype(check_dtype(dtype))
        _check_memory(sizes, self.dtype, bool(batch_norm))
        core_class = _core.Network64 if self.dtype == np.float64 else _core.Network32
        self._core = core_class(sizes, activation, loss, check_param(alpha, "alpha"),
                                bool(batch_norm))
        self.loss_reduction = loss_reduction
        self.n_threads = n_threads
        self.dropout = dropout
        self._sgd = SGD()
        self._make_views()
        self.initialize(random_state, init=init, init_std=init_std)

    @property
    def loss_clip_epsilon(self) -> float:
        return self._core.loss_clip_epsilon

    @loss_clip_epsilon.setter
    def loss_clip_epsilon(self, value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.floating)):
            raise TypeError(f"loss_clip_epsilon must be a number in [0, 0.5), got {value!r}")
        self._core.loss_clip_epsilon = float(value)  # the core checks the range

    @property
    def sum_output_gradient(self) -> bool:
        return self._core.sum_output_gradient

    @sum_output_gradient.setter
    def sum_output_gradient(self, value):
        self._core.sum_output_gradient = _check_bool(value, "sum_output_gradient")

    def _make_views(self):
        self.params, self.grads = self._core.params, self._core.grads
        layout = self._core.layout()

        def views(buf, kind):
            return [buf[o : o + r * c].reshape((r, c) if kind == "weight" else (c,))
                    for k, _, o, r, c in layout if k == kind]

        self.coefs, self.coef_grads = views(self.params, "weight"), views(self.grads, "weight")
        self.intercepts, self.intercept_grads = (views(self.params, "bias"),
                                                 views(self.grads, "bias"))
        # Batch norm (hidden layers only): scale γ and shift β, their gradients, running stats.
        self.bn_gammas, self.bn_gamma_grads = (views(self.params, "bn_gamma"),
                                               views(self.grads, "bn_gamma"))
        self.bn_betas, self.bn_beta_grads = (views(self.params, "bn_beta"),
                                             views(self.grads, "bn_beta"))
        state = self._core.batchnorm_state
        widths = self.layer_sizes[1:-1] if self.batch_norm else []
        means, variances, at = [], [], 0
        for width in widths:
            means.append(state[at : at + width])
            variances.append(state[at + width : at + 2 * width])
            at += 2 * width
        self.running_means, self.running_vars = means, variances

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
    def batch_norm(self) -> bool:
        return self._core.batch_norm

    @property
    def n_params(self) -> int:
        return self._core.n_params

    @property
    def alpha(self) -> float:
        return self._core.alpha

    @alpha.setter
    def alpha(self, value):
        self._core.alpha = check_param(value, "alpha")

    @property
    def loss_reduction(self) -> str:
        return self._loss_reduction

    @loss_reduction.setter
    def loss_reduction(self, value):
        self._loss_reduction = check_choice(value, "loss_reduction", REDUCTIONS)

    @property
    def dropout(self) -> tuple[float, ...]:
        """Dropout rate of each hidden layer (0: none); settable with a number or a sequence."""
        return tuple(self._core.dropout)

    @dropout.setter
    def dropout(self, value):
        self._core.dropout = list(check_dropout(value, len(self.layer_sizes) - 2))

    @property
    def dropout_seed(self) -> int:
        """Seed of the dropout masks (an unsigned 64-bit integer)."""
        return self._core.dropout_seed

    @dropout_seed.setter
    def dropout_seed(self, value):
        self._core.dropout_seed = _check_uint64(value, "dropout_seed")

    @property
    def dropout_step(self) -> int:
        """How many training steps drew dropout masks: the counter of the next step's masks.
        It only grows (state()/load_state leave it alone), so masks never repeat in a run."""
        return self._core.dropout_step

    @dropout_step.setter
    def dropout_step(self, value):
        self._core.dropout_step = _check_uint64(value, "dropout_step")

    def dropout_masks(self, rows: int, step: int | None = None) -> list:
        """The dropout masks a training step multiplies into its batch.

        Parameters
        ----------
        rows : int
            How many rows of the batch (the masks' first dimension).
        step : int or None
            The training step; None is the next one, ``dropout_step``.

        Returns
        -------
        list of ndarray or None
            One (rows, width) float64 mask per hidden layer, entries 0 or 1/(1 − p); None for a
            layer without dropout.
        """
        step = self.dropout_step if step is None else _check_uint64(step, "step")
        rows = check_int(rows, "rows")
        return [None if p == 0 else _core.dropout_mask(self.dropout_seed, step, t, rows, width, p)
                for t, (p, width) in enumerate(zip(self.dropout, self.layer_sizes[1:-1]))]

    @property
    def n_threads(self) -> int:
        """The threads a computation started now runs on: the number set, or with None the
        process-wide default (see `nncore.thread_limit`), read at each call."""
        return self._core.n_threads

    @n_threads.setter
    def n_threads(self, value):
        self._core.n_threads = 0 if value is None else check_param(value, "n_threads")

    @property
    def n_threads_requested(self) -> int | None:
        """The n_threads set: a number, or None for the process-wide default."""
        return self._core.n_threads_requested or None

    def layout(self) -> list[tuple[str, int, int, int, int]]:
        """(kind, layer, offset, rows, cols) of every tensor in `params` (and `grads`): kind is
        'weight', 'bias', 'bn_gamma' or 'bn_beta'."""
        return [tuple(entry) for entry in self._core.layout()]

    @property
    def input_grad_counts(self) -> list[int]:
        """How many times each layer computed the gradient of its input. The first layer's entry
        stays 0: ∂ℓ/∂x is never computed."""
        return list(self._core.input_grad_counts)

    @property
    def workspace_allocations(self) -> int:
        """How many times the activation workspace was (re)allocated; training steps never do."""
        return self._core.workspace_allocations

    def initialize(self, random_state=None, *, init: str = "glorot_uniform",
                   init_std: float = 0.01) -> "Network":
        """Draw fresh weights.

        Batch-norm scales are reset to 1, shifts to 0 and running statistics to mean 0, variance
        1; the dropout seed is derived from the random state after those draws, and the dropout
        step reset to 0.

        Parameters
        ----------
        random_state : None, int or numpy RandomState
            Seeds the draw.
        init : str
            The scheme, as the class's ``init``.
        init_std : float
            The standard deviation of the ``'normal'`` scheme.

        Returns
        -------
        Network
            The network itself.
        """
        check_choice(init, "init", INITS)
        init_std = check_param(init_std, "init_std")
        rng = check_random_state(random_state)
        factor = 2.0 if self.activation == "logistic" else 6.0
        for W, b in zip(self.coefs, self.intercepts):
            fan_in, fan_out = W.shape
            if init in ("glorot_uniform", "pytorch_uniform"):  # glorot: scikit-learn's draw
                bound = (np.sqrt(factor / (fan_in + fan_out)) if init == "glorot_uniform"
                         else 1.0 / np.sqrt(fan_in))
                W[...] = rng.uniform(-bound, bound, (fan_in, fan_out))
                b[...] = rng.uniform(-bound, bound, fan_out)
                continue
            std = {"he_normal": np.sqrt(2.0 / fan_in),
                   "glorot_normal": np.sqrt(2.0 / (fan_in + fan_out)),
                   "normal": init_std, "zeros": 0.0}[init]
            W[...] = rng.normal(0.0, std, (fan_in, fan_out)) if std > 0 else 0.0
            b[...] = 0.0
        for gamma, beta, mean, var in zip(self.bn_gammas, self.bn_betas, self.running_means,
                                          self.running_vars):
            gamma[...], beta[...], mean[...], var[...] = 1.0, 0.0, 0.0, 1.0
        self._core.dropout_seed = dropout_seed_of(rng)
        self._core.dropout_step = 0
        return self

    # ---- state: parameters and batch-norm running statistics ---------------------------------
    def state(self) -> dict:
        """A copy of everything training changes in the network.

        Returns
        -------
        dict
            ``{"params": ..., "batchnorm_state": ...}``: the parameter buffer and the running
            mean and variance of every batch-normalised layer in layer order (None without
            batch norm). ``load_state`` puts it back.
        """
        running = self._core.batchnorm_state
        return {"params": self.params.copy(),
                "batchnorm_state": None if running is None else running.copy()}

    def load_state(self, state: dict) -> None:
        """Copy a ``state()`` into this network; shapes and finiteness are checked first.

        Parameters
        ----------
        state : dict
            What ``state()`` returned, for a network of the same architecture.
        """
        running = self._core.batchnorm_state
        checked = [(self.params, _checked_state(state, "params", self.params.shape))]
        if running is not None:
            checked.append((running, _checked_state(state, "batchnorm_state", running.shape)))
        elif state.get("batchnorm_state") is not None:
            raise ValueError("state has batch-norm statistics, but this network has no batch norm")
        for target, value in checked:
            target[...] = value

    # ---- data preparation --------------------------------------------------------------------
    def prepare(self, X, y, sample_weight=None) -> PreparedData:
        """(X, y, sample_weight) checked and converted for this network, once.

        Pass the result in place of X to ``loss``, ``loss_and_grad``, ``train_epoch`` or
        ``run_epoch`` to skip the checks.

        Parameters
        ----------
        X : array-like or sparse matrix
            The rows, shape (n_samples, n_features); sparse rows stay sparse
            (as CSR).
        y : array-like or None
            The targets, shape (n_samples,) or (n_samples, n_outputs), as the loss takes them.
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the rows; None weighs every row 1.

        Returns
        -------
        PreparedData
            The converted data.
        """
        if isinstance(X, PreparedData):
            return X
        X = check_X(X, self.dtype, n_features=self.layer_sizes[0])
        Y = check_targets(
            y, self.dtype, n_samples=X.shape[0], n_outputs=self.layer_sizes[-1], loss=self.loss_name
        )
        w = check_sample_weight(sample_weight, self.dtype, n_samples=X.shape[0])
        return PreparedData(X, Y, w)

    def objective_scale(self, data: PreparedData, n_total=None) -> float:
        """The factor from Σ w ℓ (plus the penalty) to the objective.

        Parameters
        ----------
        data : PreparedData
            The batch.
        n_total : int or None
            n of the ``'sum'`` reduction; None takes the rows of ``data``.

        Returns
        -------
        float
            1/Σw for the ``'mean'`` reduction, n/Σw for ``'sum'``.
        """
        X, w = data.X, data.sample_weight
        weight_sum = float(X.shape[0] if w is None else w.sum(dtype=np.float64))
        if self.loss_reduction == "mean":
            return 1.0 / weight_sum
        return check_int(X.shape[0] if n_total is None else n_total, "n_total") / weight_sum

    # ---- computation -------------------------------------------------------------------------
    def _core_input(self, X):
        """X as the core takes it: a dense array as it is, a CSR matrix as the core's view of
        its arrays (the indices as int64: a copy when scipy holds them as int32)."""
        if not sp.issparse(X):
            return X
        csr_class = _core.CsrMatrix32 if self.dtype == np.float32 else _core.CsrMatrix64
        return csr_class(X.data, np.asarray(X.indices, np.int64), np.asarray(X.indptr, np.int64),
                         X.shape[1])

    def forward(self, X, training: bool = False) -> np.ndarray:
        """Raw output scores f.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            The rows.
        training : bool
            With batch norm, True normalises with the statistics of X itself (one batch) and
            False with the running averages; the running averages are never updated. Without
            batch norm both give the same result.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            The scores.
        """
        return self._core.forward(
            self._core_input(check_X(X, self.dtype, n_features=self.layer_sizes[0])),
            _check_bool(training, "training"))

    def predict(self, X, output: str = "response") -> np.ndarray:
        """Predictions in evaluation mode.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            The rows.
        output : {'response', 'scores', 'proba', 'label'}
            ``'response'``: on the response scale — f for squared error, σ(f) = 1/(1 + e^−f) for
            logistic, softmax(f) for softmax, exp(f) for Poisson; ``'scores'``: f itself;
            ``'proba'``: a classifier's probabilities ((1 − σ(f), σ(f)) for a single logistic
            output, else the response); ``'label'``: the class index of each row (σ(f) > ½ for a
            single logistic output, else the first largest probability).

        Returns
        -------
        ndarray
            One row per row of X.
        """
        return self._core.predict(
            self._core_input(check_X(X, self.dtype, n_features=self.layer_sizes[0])), output)

    def loss(self, X, y=None, sample_weight=None, *, n_total=None,
             training: bool = True) -> float:
        """The objective on (X, y), in the mean or sum form of ``loss_reduction``.

        Parameters
        ----------
        X : array-like, sparse matrix or PreparedData
            The rows, shape (n_samples, n_features); a :class:`PreparedData` from ``prepare``
            is used as it is (``y`` and ``sample_weight`` are then not read).
        y : array-like or None
            The targets, shape (n_samples,) or (n_samples, n_outputs), as the loss takes them.
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the rows; None weighs every row 1.
        n_total : int or None
            n of the ``'sum'`` reduction; None takes the rows of X.
        training : bool
            True gives exactly the function ``loss_and_grad`` differentiates (batch norm on the
            statistics of X); False evaluates batch norm with its running averages.

        Returns
        -------
        float
            The objective, L2 term included.
        """
        data = self.prepare(X, y, sample_weight)
        raw = (self._core.weighted_loss_sum(self._core_input(data.X), data.Y, data.sample_weight,
                                            _check_bool(training, "training"))
               + self._core.penalty())
        return raw * self.objective_scale(data, n_total)

    def mean_loss(self, X, y=None, sample_weight=None) -> float:
        """The (weighted) mean loss without the L2 term, batch norm on its running averages.

        A held-out score in the units of the training loss curve.

        Parameters
        ----------
        X : array-like, sparse matrix or PreparedData
            The rows, shape (n_samples, n_features); a :class:`PreparedData` from ``prepare``
            is used as it is (``y`` and ``sample_weight`` are then not read).
        y : array-like or None
            The targets, shape (n_samples,) or (n_samples, n_outputs), as the loss takes them.
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the rows; None weighs every row 1.

        Returns
        -------
        float
            The mean loss.
        """
        data = self.prepare(X, y, sample_weight)
        w = data.sample_weight
        weight_sum = data.n_samples if w is None else float(np.sum(w))
        return self._core.weighted_loss_sum(self._core_input(data.X), data.Y, w,
                                            False) / weight_sum

    def loss_and_grad(self, X, y=None, sample_weight=None, *, n_total=None,
                      update_running_stats: bool = False, dropout: bool = False):
        """The objective and its gradient on (X, y) taken as one batch.

        Fills the gradient buffer; batch norm runs in training mode.

        Parameters
        ----------
        X : array-like, sparse matrix or PreparedData
            The rows, shape (n_samples, n_features); a :class:`PreparedData` from ``prepare``
            is used as it is (``y`` and ``sample_weight`` are then not read).
        y : array-like or None
            The targets, shape (n_samples,) or (n_samples, n_outputs), as the loss takes them.
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the rows; None weighs every row 1.
        n_total : int or None
            n of the ``'sum'`` reduction; None takes the rows of X.
        update_running_stats : bool
            Whether to fold this batch into batch norm's running averages, as a training step
            does.
        dropout : bool
            True evaluates under the masks of step ``dropout_step`` (see ``dropout_masks``) and
            then advances the step, as a training step does; False gives the objective without
            dropout.

        Returns
        -------
        objective : float
            The objective.
        grads : ndarray
            A view of the gradient buffer (the same array as ``self.grads``).
        """
        data = self.prepare(X, y, sample_weight)
        scale = self.objective_scale(data, n_total)
        raw = self._core.forward_backward(
            self._core_input(data.X), data.Y, data.sample_weight, scale,
            _check_bool(update_running_stats, "update_running_stats"),
            _check_bool(dropout, "dropout"))
        return raw * scale, self.grads

    def objective_terms(self, X, y=None, sample_weight=None, *, training: bool = True):
        """The two unscaled parts of the objective on (X, y).

        For callers that sum the objective over chunks of a data set (scale the sum with
        ``objective_scale``).

        Parameters
        ----------
        X : array-like, sparse matrix or PreparedData
            The rows, shape (n_samples, n_features); a :class:`PreparedData` from ``prepare``
            is used as it is (``y`` and ``sample_weight`` are then not read).
        y : array-like or None
            The targets, shape (n_samples,) or (n_samples, n_outputs), as the loss takes them.
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the rows; None weighs every row 1.
        training : bool
            Batch norm on the statistics of X (True) or on its running averages (False).

        Returns
        -------
        loss_sum : float
            Σ_i w_i ℓ_i.
        penalty : float
            α/2 Σ_t ‖W_t‖².
        """
        data = self.prepare(X, y, sample_weight)
        return (self._core.weighted_loss_sum(self._core_input(data.X), data.Y,
                                             data.sample_weight, _check_bool(training, "training")),
                self._core.penalty())

    def hessian_vector_product(self, data: PreparedData, v, *, scale: float,
                               with_penalty: bool = True, with_grad: bool = False):
        """An exact Hessian-vector product of the objective, by the core's R-operator pass.

        The function is scale·(Σ w ℓ [+ α/2 Σ‖W‖²]) on ``data`` as one batch (batch norm on the
        batch's own statistics, differentiated through them). The network is not changed;
        :mod:`nncore.curvature` builds every measure on this.

        Parameters
        ----------
        data : PreparedData
            The batch.
        v : array-like of shape (n_params,)
            The direction.
        scale : float
            The factor applied to the sum (see ``objective_scale``).
        with_penalty : bool
            Whether the L2 term is part of the function.
        with_grad : bool
            Whether to return the gradient too.

        Returns
        -------
        tuple
            (unscaled objective, H·v, gradient or None), new arrays.
        """
        _check_prepared(data)
        v = np.asarray(v)
        if v.shape != (self.n_params,):
            raise ValueError(f"v must have shape ({self.n_params},), got {v.shape}")
        v = finite_as(v, "v", self.dtype)
        return self._core.hessian_vector_product(
            _dense(data.X), data.Y, data.sample_weight, float(scale), v, bool(with_penalty),
            bool(with_grad))

    def hessian_vector_products(self, data: PreparedData, V, *, scale: float,
                                with_penalty: bool = True):
        """Hessian-vector products for several vectors at once.

        The forward and backward passes at θ are shared; only the tangents run per vector. The
        network is not changed.

        Parameters
        ----------
        data : PreparedData
            The batch.
        V : array-like of shape (k, n_params)
            The directions, one per row.
        scale : float
            The factor applied to the sum (see ``objective_scale``).
        with_penalty : bool
            Whether the L2 term is part of the function.

        Returns
        -------
        tuple
            (unscaled objective, H Vᵀ as a new (k, n_params) array).
        """
        _check_prepared(data)
        V = np.asarray(V)
        if V.ndim != 2 or V.shape[1] != self.n_params:
            raise ValueError(f"V must have shape (k, {self.n_params}), got {V.shape}")
        V = finite_as(V, "V", self.dtype)
        return self._core.hessian_vector_products(_dense(data.X), data.Y, data.sample_weight,
                                                  float(scale), V, bool(with_penalty))

    def sgd_step(self, learning_rate: float) -> None:
        """θ ← θ − learning_rate · grads, over the whole parameter buffer.

        Plain SGD through the same guarded update as every optimiser (see ``optimizer_step``).

        Parameters
        ----------
        learning_rate : float
            The step size.
        """
        self.optimizer_step(self._sgd, learning_rate)

    def optimizer_step(self, optimizer: Optimizer, learning_rate: float) -> None:
        """One update of an optimiser from the current gradients.

        If the update makes a parameter non-finite, it is undone, the optimiser's state reset,
        and :class:`DivergenceError` raised.

        Parameters
        ----------
        optimizer : Optimizer
            An :class:`SGD`, :class:`Adam` or :class:`AdamW`.
        learning_rate : float
            The step size.
        """
        core = check_optimizer(optimizer).bind(self)
        if not self._core.optimizer_step(core, check_param(learning_rate, "learning_rate")):
            raise DivergenceError(
                f"the update made a parameter non-finite (learning_rate={learning_rate:g}); it "
                f"was undone and the optimiser's state reset")

    def set_batchnorm_statistics(self, X) -> None:
        """Set every batch-norm running mean and variance to the statistics of X as one batch.

        The population statistics, for example after full-batch training.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            At least 2 rows.
        """
        X = check_X(X, self.dtype, n_features=self.layer_sizes[0])
        if X.shape[0] < 2:
            raise ValueError(f"X needs at least 2 rows for batch statistics, got {X.shape[0]}")
        self._core.set_batchnorm_statistics(self._core_input(X))

    def train_epoch(
        self,
        X,
        y=None,
        *,
        learning_rate: float = 1e-3,
        batch_size: int = 200,
        shuffle: bool = True,
        seed=None,
        order=None,
        sample_weight=None,
        optimizer: Optimizer | None = None,
    ) -> float:
        """One epoch of minibatch training in C++.

        Parameters
        ----------
        X : array-like, sparse matrix or PreparedData
            The rows, shape (n_samples, n_features); a :class:`PreparedData` from ``prepare``
            is used as it is (``y`` and ``sample_weight`` are then not read).
        y : array-like or None
            The targets, shape (n_samples,) or (n_samples, n_outputs), as the loss takes them.
        learning_rate : float
            The step size.
        batch_size : int or None
            Rows per minibatch; None takes all rows as one batch (full-batch gradient descent).
        shuffle : bool
            Whether to visit the rows in a permutation seeded by ``seed`` (when ``order`` is not
            given); otherwise in their stored order.
        seed : None, int or numpy RandomState
            Seeds the permutation (the core's splitmix64 generator, the same on every platform).
        order : array-like of int or None
            The rows' order (an index array, for example a permutation drawn the way
            scikit-learn draws it); it takes precedence over ``shuffle``.
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the rows; None weighs every row 1.
        optimizer : Optimizer or None
            The update rule; None is plain SGD.

        Returns
        -------
        float
            The epoch's mean training loss, in mean units like scikit-learn's ``loss_curve_``.

        Raises
        ------
        DivergenceError
            When the loss or an update becomes non-finite; the parameters of the last finite
            state are kept.
        """
        return self.run_epoch(
            self.prepare(X, y, sample_weight), learning_rate=learning_rate,
            batch_size=batch_size, shuffle=shuffle, seed=seed, order=order, optimizer=optimizer,
        ).loss

    def run_epoch(self, data: PreparedData, *, learning_rate, batch_size, shuffle=False,
                  seed=None, order=None, optimizer=None, continuing=False) -> EpochStats:
        """``train_epoch`` on prepared data, reporting the epoch's statistics.

        Parameters
        ----------
        data : PreparedData
            The training rows.
        learning_rate : float
            The step size.
        batch_size : int or None
            Rows per minibatch; None takes all rows as one batch.
        shuffle : bool
            Whether to visit the rows in a permutation seeded by ``seed``.
        seed : None, int or numpy RandomState
            Seeds the permutation.
        order : array-like of int or None
            The rows' order; it takes precedence over ``shuffle``.
        optimizer : Optimizer or None
            The update rule; None is plain SGD.
        continuing : bool
            True says nothing touched the parameters since this network's previous epoch, so
            that epoch's last step can still be undone if this epoch's first loss is not finite.

        Returns
        -------
        EpochStats
            ``(loss, steps, grad_norm)``: the mean training loss, the updates made and the mean
            norm of the minibatch gradients.
        """
        _check_prepared(data)
        learning_rate = check_param(learning_rate, "learning_rate")
        batch_size = (data.n_samples if batch_size is None
                      else check_param(batch_size, "batch_size"))
        shuffle = _check_bool(shuffle, "shuffle")
        core_optimizer = (self._sgd if optimizer is None else check_optimizer(optimizer)).bind(self)
        if order is not None:
            order = check_order(order, n_samples=data.n_samples)
        seed = _seed_from(seed) if shuffle and order is None else 0
        mean_loss, steps, diverged, grad_norm, rolled_back = self._core.train_epoch(
            core_optimizer, self._core_input(data.X), data.Y, data.sample_weight, order,
            batch_size, learning_rate,
            self.loss_reduction, shuffle, seed, bool(continuing)
        )
        if diverged:
            where = ("it is back at its parameters before the last step (the last state with a "
                     "finite loss) and the optimiser's state was reset" if rolled_back else
                     "it keeps its last finite parameters")
            when = ("at the first step of this epoch" if steps == 0 else
                    f"after {steps} step(s) of this epoch")
            raise DivergenceError(
                f"training diverged: the loss or an updated parameter became non-finite {when} "
                f"(learning_rate={learning_rate:g}); {where}. Try a smaller learning_rate or "
                f"standardised inputs."
            )
        return EpochStats(mean_loss, steps, grad_norm)

    # ---- the network as a document: what pickle and the estimator's file keep ------------------
    def to_document(self) -> tuple[dict, dict]:
        """(document, arrays): the architecture and settings as JSON-ready data, the parameters
        (`params`) and batch-norm running statistics (`batchnorm_state`, with batch norm) as
        array copies. `Network.from_document` rebuilds the network bit for bit; pickle and the
        estimators' files keep exactly this."""
        doc = {"layer_sizes": self.layer_sizes, "activation": self.activation,
               "loss": self.loss_name, "alpha": self.alpha,
               "loss_reduction": self.loss_reduction, "dtype": self.dtype.name,
               "batch_norm": self.batch_norm, "dropout": list(self.dropout),
               "dropout_seed": self.dropout_seed, "dropout_step": self.dropout_step,
               "loss_clip_epsilon": self.loss_clip_epsilon,
               "sum_output_gradient": self.sum_output_gradient}
        state = self.state()
        arrays = {"params": state["params"]}
        if state["batchnorm_state"] is not None:
            arrays["batchnorm_state"] = state["batchnorm_state"]
        return doc, arrays

    @classmethod
    def from_document(cls, doc: dict, arrays: dict, *, n_threads: int | None = None):
        """The network that ``to_document`` described, rebuilt bit for bit.

        Keys added to the document since its first version default to what a network without
        them did: no dropout, textbook loss conventions.

        Parameters
        ----------
        doc : dict
            The document ``to_document`` returned.
        arrays : dict of str to ndarray
            Its arrays (``params``, and ``batchnorm_state`` with batch norm).
        n_threads : int or None
            The new network's ``n_threads`` (a setting of this process, not of the model).

        Returns
        -------
        Network
            The network.
        """
        net = cls.__new__(cls)
        net._restore(doc, arrays, n_threads)
        return net

    def _restore(self, doc, arrays, n_threads) -> None:
        self.__init__(doc["layer_sizes"], doc["activation"], doc["loss"], alpha=doc["alpha"],
                      loss_reduction=doc["loss_reduction"], dtype=doc["dtype"],
                      batch_norm=doc["batch_norm"], init="zeros", n_threads=n_threads)
        self.load_state({"params": arrays["params"],  # a wrong shape is reported first
                         "batchnorm_state": arrays["batchnorm_state"] if self.batch_norm
                         else None})
        self.loss_clip_epsilon = doc.get("loss_clip_epsilon", 0.0)
        self.sum_output_gradient = doc.get("sum_output_gradient", False)
        self.dropout = doc.get("dropout", 0.0)
        self.dropout_seed = doc.get("dropout_seed", 0)
        self.dropout_step = doc.get("dropout_step", 0)

    def __getstate__(self):
        doc, arrays = self.to_document()
        return {"document": doc, "arrays": arrays, "n_threads": self.n_threads_requested}

    def __setstate__(self, saved):
        # A pickle from before to_document held the document's keys and the arrays in one dict.
        self._restore(saved.get("document", saved), saved.get("arrays", saved),
                      saved.get("n_threads"))

    def copy(self) -> "Network":
        """An independent network with the same architecture, settings and parameters."""
        clone = Network.__new__(Network)
        clone.__setstate__(self.__getstate__())
        return clone

    def __repr__(self) -> str:
        return (
            f"Network(layer_sizes={self.layer_sizes}, activation={self.activation!r}, "
            f"loss={self.loss_name!r}, alpha={self.alpha:g}, "
            f"loss_reduction={self.loss_reduction!r}, dtype={self.dtype.name!r}"
            f"{', batch_norm=True' if self.batch_norm else ''}"
            f"{f', dropout={self.dropout}' if any(self.dropout) else ''})"
        )


def _checked_state(state, key, shape):
    value = np.asarray(state[key])
    if value.shape != shape:
        raise ValueError(f"{key} has shape {value.shape}, this network needs {shape}")
    if not np.isfinite(value).all():
        raise ValueError(f"{key} holds non-finite values")
    return value


def _check_uint64(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
            not 0 <= int(value) < 2**64:
        raise ValueError(f"{name} must be an integer in [0, 2**64), got {value!r}")
    return int(value)


def _check_prepared(data) -> None:
    if not isinstance(data, PreparedData):
        raise TypeError(f"data must be a PreparedData from Network.prepare, got "
                        f"{type(data).__name__}")


def _check_memory(sizes, dtype, batch_norm) -> None:
    """MemoryError with the numbers, before the core tries to allocate buffers that cannot fit:
    parameters, gradients and the step's backup (three slabs of the same size)."""
    n_params = _core.parameter_count(sizes, batch_norm)
    needed = 3 * n_params * dtype.itemsize
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on Linux
        return
    if needed > total:
        raise MemoryError(
            f"layer_sizes {list(sizes)} make {n_params:,} parameters: their values, gradients "
            f"and backup need {needed / 2**30:,.1f} GiB ({dtype.name}), this machine has "
            f"{total / 2**30:,.1f} GiB")
