"""`MLPRegressor` and `MLPClassifier`: drop-in replacements for scikit-learn's classes of the same
names, trained by the C++ core.

Same constructor parameters (names, defaults, meaning), fitted attributes, methods, inputs,
warnings and errors as scikit-learn 1.9. Each epoch runs in C++; Python draws what scikit-learn
draws with the same RandomState in the same order (initial weights, validation split, each
epoch's permutation), so with the same `random_state` the runs agree with scikit-learn's.

scikit-learn's numerical conventions are kept: the log-loss value of clipped probabilities (the
gradient unclipped), the multi-output squared-error gradient of the sum over outputs,
`learning_rate` read by solver='sgd' only, early stopping stratifying single-output targets only,
L-BFGS on float32 input computed in float64.

Extras, keyword-only, with defaults that keep scikit-learn's behaviour: more activations
('leaky_relu', 'softplus', 'gelu'), solvers 'momentum' (sgd without Nesterov) and 'adamw' (with
`weight_decay`), `schedule` (any of nncore.SCHEDULES for any solver, in place of
`learning_rate`; `lr_decay`, `lr_step_size`, `min_learning_rate`, `warmup_epochs`), the
classifier's `stratify` (True: multiclass splits too; False: never) and `class_weight`, the
regressor's `mean_output_gradient`, `batch_norm`, `dropout`, `init`, `dtype`, `loss_reduction`,
`callbacks` (see nncore.callbacks), `progress` (a tqdm bar), `n_threads` (threads for the large
matrix products and evaluation; None: the process-wide default, nncore.thread_limit(), which
follows OMP_NUM_THREADS and threadpoolctl — so scikit-learn's n_jobs workers get their share);
fitted, `history_` (one record per epoch: loss,
val_loss, val_score, learning_rate, grad_norm, param_norm, seconds), `network_` (the
nncore.Network, for the object API and nncore.curvature), `schedule_`, `training_stopped_`;
methods `mean_loss` and `prepare`; `partial_fit(..., validation_data=)`. Training epochs run
through nncore.training.run_epochs; this module keeps scikit-learn's bookkeeping. The one
deliberate difference in behaviour: without early stopping, a diverging fit stops at once with
DivergenceError (its message starts with scikit-learn's) and keeps its last finite weights.

dropout (default 0.0: none): inverted dropout on the output of every hidden layer, after batch
norm and the activation, in training steps only — a rate in [0, 1) for all hidden layers or a
sequence with one per hidden layer; epoch-based solvers only (solver='lbfgs' refuses a non-zero
rate). `loss_curve_` (and history_'s loss) then reports the training steps' losses under their
dropout masks, as PyTorch's or scikit-learn's running training loss would; predict,
predict_proba, score, mean_loss, the early-stopping validation score and nncore.curvature all
evaluate the network without dropout. The masks come from a seed that `fit` derives from
random_state without drawing from it (nncore.network.dropout_seed_of: the initial weights and
every batch order are those of dropout=0) and a step counter that continues across epochs,
partial_fit calls, warm starts and save/load, so a fit is reproducible from random_state and
independent of n_threads.

Threads: a fitted estimator can be shared — predict, predict_proba, predict_log_proba, score and
mean_loss may run in any number of threads at once and give the single-thread answers; fit and
partial_fit hold the network for a whole epoch at a time, so a prediction made meanwhile sees the
weights before or after an epoch.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import threading
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import persistence
from ._docs import with_shared_docs
from ._validation import BOUNDS, all_finite, check_dropout, check_poisson_targets
from .network import (ACTIVATIONS, INITS, REDUCTIONS, DivergenceError, Network, PreparedData,
                      ViewList)
from .optim import (_DEFAULTS, EPOCH_SOLVERS, SCHEDULES, SGD_SOLVERS, Adam, Optimizer, Schedule,
                    make_optimizer)

# The estimators (by id) with a fit under way: the fitting thread and how deep (_sole_fit).
_FITTING: dict[int, tuple[int, int]] = {}
_FITTING_LOCK = threading.Lock()
from .training import Validation, lbfgs, run_epochs

_EPOCH_SOLVERS_NAMED = ", ".join(map(repr, EPOCH_SOLVERS))  # for messages
_NO_LIMIT = 2**62  # n_iter_no_change=np.inf: the count never gets there
# scikit-learn's message for weights that stopped being finite; nncore's DivergenceError says it
# first, then what happened and that the model kept its last finite weights.
_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
               "values and need to be preprocessed.")


class TrainingInterrupted(UserWarning):
    """The warning a fit gives when Ctrl-C stops it ("Training interrupted by user.", as
    scikit-learn's), a UserWarning of its own class so that code driving many fits (a sweep,
    the command line) can tell an interrupted fit from a finished one."""


# Fitted attributes a model file carries (the network, optimiser and schedule go separately).
_FITTED = ("n_iter_", "t_", "n_outputs_", "n_layers_", "out_activation_", "loss_",
           "best_loss_", "best_validation_score_", "loss_curve_", "validation_scores_",
           "history_", "_no_improvement_count", "n_features_in_")


def _snapshot(value):
    """A copy of a parameter value that later changes to the original cannot reach."""
    if isinstance(value, (list, dict)):
        return type(value)(value)
    return value


def _labels_of(y):
    """unique_labels(y), without its type checks where they cannot fail: an integer array, or a
    float one holding whole numbers (what partial_fit gets chunk after chunk)."""
    if isinstance(y, np.ndarray) and y.ndim == 1 and (
            y.dtype.kind in "iu" or (y.dtype.kind == "f" and np.all(np.isfinite(y))
                                     and np.all(y == np.round(y)))):
        return np.unique(y)
    return unique_labels(y)


class _BaseMLP(BaseEstimator):
    def _store_hyperparameters(self, arguments):
        """Each constructor argument as the attribute of the same name, unvalidated (scikit-learn's
        convention: __init__ only stores, fit validates). The subclasses keep explicit
        signatures, which get_params reads."""
        for name, value in arguments.items():
            if name != "self":
                setattr(self, name, value)

    # Ranges from the one table (nncore._validation.BOUNDS), under scikit-learn's names.
    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", *EPOCH_SOLVERS})],
        "batch_size": [StrOptions({"auto"}), BOUNDS["batch_size"].interval()],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "schedule": [None, StrOptions(set(SCHEDULES))],
        "learning_rate_init": [BOUNDS["learning_rate"].interval()],
        "max_iter": [BOUNDS["epochs"].interval()],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "n_iter_no_change": [BOUNDS["n_iter_no_change"].interval(), Options(Real, {np.inf})],
        **{name: [BOUNDS[name].interval()] for name in (
            "alpha", "power_t", "tol", "momentum", "validation_fraction", "beta_1", "beta_2",
            "epsilon", "max_fun", "weight_decay", "min_learning_rate", "warmup_epochs")},
        "lr_decay": [BOUNDS["gamma"].interval()],
        "lr_step_size": [BOUNDS["step_size"].interval()],
        "batch_norm": ["boolean"],
        "dropout": [BOUNDS["dropout"].interval(), "array-like"],
        "init": [StrOptions(set(INITS))],
        "dtype": [None, StrOptions({"float32", "float64"})],
        "loss_reduction": [StrOptions(set(REDUCTIONS))],
        "callbacks": [list, tuple],
        "progress": ["boolean"],
        "n_threads": [None, BOUNDS["n_threads"].interval()],
    }

    # ---- fitted parameters: views into the network -----------------------------------------
    # Before the first fit, coefs_/intercepts_ may be assigned (a list, then filled item by
    # item, as scikit-learn's own worked example does): they are held as given and become the
    # starting weights of the next partial_fit or warm-started fit, as in scikit-learn.
    @property
    def coefs_(self):
        return self._parameter_views("coefs")

    @coefs_.setter
    def coefs_(self, values):
        self._assign_parameters("coefs", values)

    @property
    def intercepts_(self):
        return self._parameter_views("intercepts")

    @intercepts_.setter
    def intercepts_(self, values):
        self._assign_parameters("intercepts", values)

    def _parameter_views(self, kind):
        if "_network" not in self.__dict__ and f"_assigned_{kind}" in self.__dict__:
            return self.__dict__[f"_assigned_{kind}"]
        return ViewList(getattr(self._fitted_network(), kind))

    def _assign_parameters(self, kind, values):
        if "_network" in self.__dict__:
            getattr(self._network, kind).assign(values, f"{kind}_")
        else:
            self.__dict__[f"_assigned_{kind}"] = values if isinstance(values, list) else list(values)

    def _fitted_network(self) -> Network:
        network = self.__dict__.get("_network")
        if network is None:
            raise AttributeError(f"This {type(self).__name__} instance is not fitted yet")
        return network

    @property
    def network_(self) -> Network:
        """The fitted `nncore.Network` (read-only attribute; the network itself is live: its
        parameters are the model's). For the object API: curvature, state(), loss_and_grad."""
        return self._fitted_network()

    @property
    def schedule_(self) -> Schedule:
        """The step-size `Schedule` of a stochastic solver, as training left it (callbacks may
        change its base step size between epochs)."""
        schedule = self.__dict__.get("_schedule")
        if schedule is None:
            raise AttributeError(f"This {type(self).__name__} has no step-size schedule (not "
                                 f"fitted, or solver='lbfgs')")
        return schedule

    def mean_loss(self, X, y, sample_weight=None) -> float:
        """The mean loss on (X, y), without the L2 term.

        The units of ``loss_curve_`` and of ``history_``'s ``val_loss``; batch norm uses its
        running averages.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets, as ``fit`` takes them.
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the rows; None weighs every row 1.

        Returns
        -------
        float
            The (weighted) mean loss.
        """
        return self._network.mean_loss(self.prepare(X, y, sample_weight))

    def prepare(self, X, y, sample_weight=None) -> PreparedData:
        """(X, y, sample_weight) checked and converted once for the fitted network.

        X is checked as for ``predict``, y goes through the estimator's own encoding (label
        indicators for a classifier). This is what :mod:`nncore.curvature` and
        :mod:`nncore.landscape` measure an estimator on.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets, as ``fit`` takes them.
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the rows; None weighs every row 1.

        Returns
        -------
        PreparedData
            The converted data.
        """
        check_is_fitted(self)
        X = self._check_X_for_prediction(X)
        rows = len(y) if hasattr(y, "__len__") else None
        if rows != X.shape[0]:
            raise ValueError(f"y has {rows} rows and X {X.shape[0]}: give one target per row of "
                             f"X")
        y = self._encoded_targets(y)
        return self._network.prepare(X, y.reshape(X.shape[0], -1), sample_weight)

    # ---- fitting ---------------------------------------------------------------------------
    def _core_loss(self) -> str:
        return {"identity": "squared_error", "exp": "poisson", "logistic": "logistic",
                "softmax": "softmax"}[self.out_activation_]

    def _validate_params(self):
        """scikit-learn's validation of every constructor parameter, skipped when the parameters
        are those that passed last time (partial_fit calls it once per chunk)."""
        names = type(self).__dict__.get("_param_names_cache")
        if names is None:
            names = type(self)._param_names_cache = tuple(self._get_param_names())
        current = tuple((type(v), _snapshot(v)) for v in (getattr(self, n) for n in names))
        try:
            unchanged = current == self.__dict__.get("_validated_params")
        except (ValueError, TypeError):  # values that do not compare (arrays): validate
            unchanged = False
        if not unchanged:
            super()._validate_params()
            self._check_dropout()
            self._validated_params = current

    # nncore's extras that only some solvers or schedules read, and which read them.
    _EXTRA_READERS = {
        "weight_decay": "solver='adamw'",
        "lr_decay": "the 'step' and 'exponential' schedules",
        "lr_step_size": "the 'step' schedule",
        "min_learning_rate": "the 'cosine' schedule",
        "warmup_epochs": "the epoch-based solvers",
        "schedule": "the epoch-based solvers",
    }

    def _schedule_kind(self) -> str:
        """The step-size schedule a fit runs: scikit-learn's `learning_rate` drives solver='sgd'
        only (its Adam ignores it); nncore's `schedule`, when given, drives any solver."""
        if self.schedule is not None:
            return self.schedule
        return self.learning_rate if self.solver in SGD_SOLVERS else "constant"

    def _warn_ignored_options(self):
        """A UserWarning for each of nncore's extras set away from its default where this fit
        does not read it (a fit identical to the default's, bit for bit, otherwise). scikit-learn's
        own parameters keep its behaviour: those a solver does not use are ignored silently."""
        epochs = self.solver in EPOCH_SOLVERS
        kind = self._schedule_kind()
        defaults = inspect.signature(type(self)).parameters  # the constructor's, one owner
        read = {"weight_decay": self.solver == "adamw",
                "lr_decay": epochs and kind in ("step", "exponential"),
                "lr_step_size": epochs and kind == "step",
                "min_learning_rate": epochs and kind == "cosine",
                "warmup_epochs": epochs, "schedule": epochs}
        for name, reader in self._EXTRA_READERS.items():
            value = getattr(self, name)
            if not read[name] and value != defaults[name].default:
                used = (f"solver={self.solver!r}" if name in ("weight_decay", "warmup_epochs",
                                                                 "schedule") or not epochs
                        else f"the {kind!r} schedule")
                warnings.warn(f"{name}={value!r} is read by {reader} only: this fit "
                              f"({used}) ignores it", UserWarning, stacklevel=4)

    def _hidden_sizes(self) -> list:
        """hidden_layer_sizes as a list (scikit-learn takes one int for one layer)."""
        hidden = self.hidden_layer_sizes
        return list(hidden) if hasattr(hidden, "__iter__") else [hidden]

    def _check_dropout(self):
        """What the constraint table cannot say: a dropout sequence has one rate per hidden
        layer, and only epoch-based solvers drop out."""
        rates = check_dropout(self.dropout, len(self._hidden_sizes()))
        if any(rates) and self.solver not in EPOCH_SOLVERS:
            raise ValueError(f"dropout={self.dropout!r} needs an epoch-based solver "
                             f"({_EPOCH_SOLVERS_NAMED}); solver={self.solver!r} minimises the "
                             f"full-batch objective, which has no dropout: set dropout=0.0 or "
                             f"choose another solver")

    def _checked_as_before(self, X, y):
        """(X, y) unchanged when they are what scikit-learn's validate_data would hand back
        unchanged for a fitted model — plain numeric arrays, float X of the fitted width and no
        feature names on either side, finite values, y of X's length — else None, and the caller
        runs validate_data itself (with its warnings and its exact messages). One sum per array
        instead of scikit-learn's checks: what partial_fit pays per chunk."""
        if (type(X) is not np.ndarray or type(y) is not np.ndarray or X.ndim != 2
                or X.dtype not in (np.float32, np.float64) or X.shape[0] == 0
                or X.shape[1] != getattr(self, "n_features_in_", -1)
                or hasattr(self, "feature_names_in_") or len(y) != X.shape[0]
                or y.dtype.kind not in "iuf" or not (y.ndim == 1 or (y.ndim == 2
                                                                     and y.shape[1] > 1))):
            return None
        if not all_finite(X) or (y.dtype.kind == "f" and not all_finite(y)):
            return None  # scikit-learn's check reports the non-finite value
        return X, y

    def _seeded_random_state(self) -> np.random.RandomState:
        """check_random_state(self.random_state), freshly seeded on every fit and partial_fit
        as in scikit-learn; for an int seed, one generator is kept and put back to the seeded
        state (cheaper than seeding a new one)."""
        seed = self.random_state
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            return check_random_state(seed)
        rng = self.__dict__.get("_seeded_rng")
        if rng is None:
            rng = self._seeded_rng = np.random.RandomState(seed)
        else:
            rng.seed(seed)  # what RandomState(seed) does, on the existing generator
        return rng

    def _weighted(self, y, sample_weight, incremental):
        """The sample weights fit uses (the classifier folds class_weight into them)."""
        return sample_weight

    @contextlib.contextmanager
    def _sole_fit(self):
        """One fit at a time per estimator: fit, partial_fit and fit_stream rebuild its state
        (labels, network, optimiser) step by step, so a second one from another thread would
        mix two fits. It is refused with a clear error; predictions may run beside a fit."""
        key, me = id(self), threading.get_ident()
        with _FITTING_LOCK:
            owner, depth = _FITTING.get(key, (me, 0))
            if owner != me:
                raise RuntimeError(
                    f"this {type(self).__name__} is already being fitted in another thread; fit "
                    f"one estimator from one thread at a time (sklearn.base.clone() it to fit "
                    f"copies in parallel)")
            _FITTING[key] = (me, depth + 1)
        try:
            yield
        finally:
            with _FITTING_LOCK:
                if depth == 0:
                    del _FITTING[key]
                else:
                    _FITTING[key] = (me, depth)

    def _fit(self, X, y, sample_weight=None, incremental=False, validation_data=None):
        with self._sole_fit():
            return self._fit_alone(X, y, sample_weight, incremental, validation_data)

    def _fit_alone(self, X, y, sample_weight, incremental, validation_data):
        self._validate_params()
        self._warn_ignored_options()
        sample_weight = self._weighted(y, sample_weight, incremental)
        X, y, sample_weight = self._start(X, y, sample_weight, incremental)
        data = self._prepared(X, y, sample_weight)
        if self.solver in EPOCH_SOLVERS:
            self._fit_stochastic(data, incremental, validation_data)
        else:
            if self.callbacks or self.progress:
                warnings.warn(f"callbacks and progress apply to the epoch-based solvers "
                              f"({_EPOCH_SOLVERS_NAMED}); solver='lbfgs' ignores them",
                              UserWarning)
            self._fit_lbfgs(data)
        return self

    def fit_stream(self, source, *, target=None, epochs: int | None = None,
                   buffer_rows: int = 50_000, holdout: int = 0, standardize: bool = True,
                   categorical=()):
        """Fit over data larger than memory, streaming them epoch after epoch (nncore's).

        Before training, one streaming pass fits the preprocessing (standardisation of numeric
        columns, one-hot categories of text columns, the classes) into ``preprocessing_``; a
        missing value is an error naming its column. Each epoch then visits the training
        partitions in a fresh random order (with ``shuffle``), their rows shuffled within a
        buffer, through the same epoch driver as ``fit``: ``max_iter``, ``batch_size``,
        schedules, ``n_iter_no_change``, callbacks and progress count passes over the data as
        epochs. Files and Dask sources need ``pip install 'nncore[dask]'``.

        Parameters
        ----------
        source : str, Dask collection or iterable
            A path or glob of Parquet or CSV files (read through ``dask.dataframe``, one
            partition at a time), a Dask DataFrame, a pair (X, y) of Dask arrays (their row
            blocks are the partitions), or any re-iterable of (X, y) chunks (a list, or a
            function returning a fresh iterator; a one-shot iterator cannot be read again for
            the next epoch).
        target : str or None
            The target column of a file or DataFrame source.
        epochs : int or None
            Passes over the data; sets ``max_iter``. None keeps ``max_iter``.
        buffer_rows : int
            Rows shuffled together in memory (rounded to a multiple of the batch size): memory
            holds the buffer and one partition, not the data.
        holdout : int
            How many partitions, the last ones, are held out for the validation scores of early
            stopping and of callbacks that read them (which need at least 1).
        standardize : bool
            Whether numeric columns are standardised.
        categorical : sequence of str
            Columns treated as text (one-hot encoded) even if they hold numbers.

        Returns
        -------
        self
            Fitted, with ``preprocessing_``: :func:`nncore.streaming.transform_rows` applies it
            to new rows, and ``save`` keeps it in the model file.
        """
        from ._validation import check_int
        from .streaming import plan_stream

        with self._sole_fit():
            if epochs is not None:
                self.set_params(max_iter=check_int(epochs, "epochs"))
            plan = plan_stream(self, source, target=target, buffer_rows=buffer_rows,
                               holdout=holdout, standardize=standardize,
                               categorical=categorical)
            self.preprocessing_ = plan.preprocessing
            self._validate_params()
            if self.solver not in EPOCH_SOLVERS:
                raise ValueError(f"streaming needs an epoch-based solver "
                                 f"({_EPOCH_SOLVERS_NAMED}), got solver={self.solver!r}")
            self._start(plan.X_sample, plan.y_sample, None, incremental=False, reset=True)
            validation = (None if plan.validation is None
                          else self._validation_from(plan.validation))  # held-out partitions
            self._fit_stochastic(plan.stream, False, validation=validation)
        return self

    def _prepared(self, X, y, sample_weight) -> PreparedData:
        """The network's own checks, after scikit-learn's: the cast to the network's dtype (e.g.
        float32) must not overflow, and the targets must suit its loss. Arrays already of the
        network's dtype without sample weights need neither — scikit-learn's checks (or
        _checked_as_before) found them finite, the targets are label indicators or checked
        regression targets of the network's width — and go in as they are."""
        net = self._network
        if (sample_weight is None and X.dtype == net.dtype and y.dtype == net.dtype
                and y.ndim == 2 and not sp.issparse(X)):
            return PreparedData(np.ascontiguousarray(X), np.ascontiguousarray(y), None)
        return net.prepare(X, y, sample_weight)

    def _start(self, X, y, sample_weight, incremental, reset=False):
        """Checks, label encoding and (on a first pass) a new network: fit's and partial_fit's
        shared beginning, after the hyperparameters were validated. Returns X, y (2-D targets)
        and sample_weight, validated."""
        hidden = self._hidden_sizes()
        if np.any(np.array(hidden) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        first_pass = reset or "_network" not in self.__dict__ or (
            not self.warm_start and not incremental)
        # Weights assigned before any fit start a partial_fit or warm-started fit.
        assigned = (not reset and "_network" not in self.__dict__
                    and (incremental or self.warm_start)
                    and "_assigned_coefs" in self.__dict__)

        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sp.issparse(X):
            X = X.tocsr()  # stays sparse: the core's first layer reads the stored values
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        layer_units = [X.shape[1], *hidden, y.shape[1]]
        self._random_state = self._seeded_random_state()

        if first_pass:
            dtype = np.dtype(self.dtype) if self.dtype is not None else X.dtype
            if self.solver == "lbfgs" and self.dtype is None:
                # scikit-learn's L-BFGS runs on scipy's float64 copy of the weights, so a
                # float32 fit is computed (and its model kept) in float64.
                dtype = np.dtype(np.float64)
            self._initialize(y, layer_units, dtype, float32_start=X.dtype == np.float32,
                             draw=not assigned)
            if assigned:
                self._start_from_assigned()
        elif self._network.layer_sizes != layer_units:
            raise ValueError(
                f"warm_start/partial_fit needs the same layer sizes as the fitted network "
                f"{self._network.layer_sizes}, got {layer_units}")
        net = self._network
        net.alpha = self.alpha
        net.loss_reduction = self.loss_reduction
        net.n_threads = self.n_threads
        net.dropout = self.dropout
        self._use_loss_conventions(net, X.dtype)
        return X, y, sample_weight

    def _use_loss_conventions(self, net, input_dtype=None):
        """scikit-learn's loss conventions (see nncore.Network): the log-loss value of
        probabilities clipped at the machine epsilon of their dtype — the input's under
        L-BFGS, whose forward passes scipy runs on float32 weights for a float32 start — and
        the multi-output squared-error gradient unless mean_output_gradient asks for the
        gradient of the reported loss."""
        dtype = input_dtype if self.solver == "lbfgs" and input_dtype is not None else net.dtype
        net.loss_clip_epsilon = float(np.finfo(dtype).eps)
        net.sum_output_gradient = not getattr(self, "mean_output_gradient", True)

    def _start_from_assigned(self):
        """The weights assigned to coefs_/intercepts_ before the first fit, as the network's."""
        coefs = self.__dict__.pop("_assigned_coefs")
        intercepts = self.__dict__.pop("_assigned_intercepts", None)
        if intercepts is None:
            raise ValueError("coefs_ was assigned before fitting but intercepts_ was not: "
                             "assign both to start from given weights")
        self._network.coefs.assign(coefs, "coefs_")
        self._network.intercepts.assign(intercepts, "intercepts_")

    def _initialize(self, y, layer_units, dtype, float32_start=False, draw=True):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        # Initial weights come from self._random_state in scikit-learn's order.
        self._network = Network(
            layer_units, self.activation, self._core_loss(), alpha=self.alpha,
            loss_reduction=self.loss_reduction, dtype=dtype, batch_norm=self.batch_norm,
            init=self.init if draw else "zeros", random_state=self._random_state,
            n_threads=self.n_threads, dropout=self.dropout)
        if float32_start and dtype == np.float64:
            # scikit-learn casts the initial weights to the input's float32 before L-BFGS
            # takes them up in float64.
            self._network.params[:] = self._network.params.astype(np.float32)
        self._optimizer = None
        self._schedule = None
        # scikit-learn's best weights start as the initial ones.
        self._best_state = self._network.state() if self.early_stopping else None
        if self.solver in EPOCH_SOLVERS:
            self.loss_curve_ = []
            self.history_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _fit_stochastic(self, data, incremental, validation_data=None, validation=None):
        """Epochs of a stochastic solver through the one epoch driver (training.run_epochs);
        what stays here is scikit-learn's: the records, the best weights, the stopping rules and
        the warnings."""
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        callbacks = self._checked_callbacks()
        if not incremental and self.n_iter_ and "_best_state" in self.__dict__:
            # A warm-started fit: scikit-learn's best weights are then the very arrays it goes on
            # training (its restore made them one), so unless this fit finds a better
            # validation score it ends on its last weights. None stands for those.
            self._best_state = None
        if not incremental or self._optimizer is None:
            self._optimizer = make_optimizer(
                self.solver, momentum=self.momentum, nesterov=self.nesterovs_momentum,
                beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                weight_decay=self.weight_decay)
            self._schedule = self._new_schedule()
        if incremental and self._schedule.kind == "cosine" and self._schedule.learning_rate == 0:
            raise ValueError(
                f"the cosine schedule has run its max_iter={self.max_iter} epochs down to "
                f"min_learning_rate=0, and partial_fit cannot step at learning rate 0: set "
                f"min_learning_rate > 0 to go on at that rate, or a larger max_iter and fit "
                f"again for a longer schedule")
        needs_validation = [c for c in callbacks if getattr(c, "needs_validation", False)]
        if incremental and needs_validation and validation_data is None:
            raise ValueError(
                f"{needs_validation[0]!r} reads validation scores, and partial_fit does not hold "
                f"out part of each chunk: pass partial_fit(..., validation_data=(X_val, y_val))")
        if validation is not None:
            pass  # a stream's held-out rows
        elif validation_data is not None:
            if not incremental:
                raise ValueError("validation_data is for partial_fit; fit holds out "
                                 "validation_fraction as scikit-learn does")
            validation = self._validation_from(validation_data)
        elif self.early_stopping or needs_validation:
            data, validation = self._validation_split(data)
        epochs = run_epochs(
            self._network, data, self._optimizer, self._schedule,
            batch_size=self._clipped_batch_size(data.n_samples),
            max_epochs=1 if incremental else self.max_iter, random_state=self._random_state,
            shuffle=self.shuffle, validation=validation, monitor=self._monitored,
            samples_seen=self.t_, first_epoch=len(self.history_) + 1,
            after_divergence="nan" if self.early_stopping and not incremental else "raise")

        bar = self._progress_bar(incremental)
        # A training run is one fit, or the partial_fit calls from the first until a callback
        # stops them: callbacks begin and end with the run, not with every call.
        if not incremental or not self.__dict__.get("_callbacks_running", False):
            for callback in callbacks:
                getattr(callback, "on_train_begin", lambda est: None)(self)
            self._callbacks_running = True
        self.n_iter_ = 0
        self.training_stopped_ = False
        # Under early stopping a divergence is scikit-learn's (its issue 29504): it goes on with
        # non-finite weights — a NaN loss every epoch, and the validation score of a model whose
        # outputs are NaN (NaN for a regressor, whose NaN resets the no-improvement count; for
        # a classifier the accuracy of the labels NaN outputs decode to) — under its usual
        # stopping rules, then restores its best validation weights. The driver yields those
        # records (after_divergence='nan') without the arithmetic on NaNs: the network stays at
        # its last finite state. Should the NaN model score best, scikit-learn's fit ends in
        # 'Solver produced non-finite parameter weights', and so does this one.
        diverged = nan_is_best = False
        try:
            for record in epochs:
                if not diverged and math.isnan(record["loss"]):
                    diverged, best_before, self._optimizer = True, self._best_state, None
                previous_best = self.best_validation_score_
                self._record_epoch(record, data.n_samples, bar)
                if diverged and self.best_validation_score_ > previous_best:
                    nan_is_best, self._best_state = True, best_before  # not weights it keeps
                if self._stop_after(record, callbacks):
                    break
            else:
                if self._schedule.gave_up:  # the driver's stop: the step size cannot shrink
                    self._say_stopping()
                elif not incremental:
                    self._warn_max_iter()
            if nan_is_best:
                raise DivergenceError(
                    f"{_NON_FINITE} {type(self).__name__} diverged under early stopping, and "
                    f"the validation score of its non-finite weights ({record['val_score']:g}) "
                    f"was the best; it keeps its last finite parameters.")
        except DivergenceError as exc:
            # The optimiser's state is gone: the next fit or partial_fit starts a fresh optimiser
            # and schedule with the hyperparameters set then.
            self._optimizer = None
            if nan_is_best:
                raise
            detail = str(exc).removeprefix("training diverged: ")
            raise DivergenceError(
                f"{_NON_FINITE} {type(self).__name__} diverged in epoch {self.n_iter_ + 1}: "
                f"{detail}") from None
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", TrainingInterrupted)
        finally:
            if bar is not None and not incremental:
                bar.close()
        if self.early_stopping and self._best_state is not None:
            self._network.load_state(self._best_state)
        if not incremental or self.training_stopped_:
            for callback in callbacks:
                getattr(callback, "on_train_end", lambda est: None)(self)
            self._callbacks_running = False

    def _warn_max_iter(self):
        warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                      "hasn't converged yet." % self.max_iter, ConvergenceWarning)

    def _checked_callbacks(self) -> list:
        callbacks = list(self.callbacks)
        for callback in callbacks:
            if not callable(callback):
                raise TypeError(f"callbacks must be callables, got {callback!r}")
        return callbacks

    def _new_schedule(self) -> Schedule:
        n_iter_no_change = (_NO_LIMIT if self.n_iter_no_change == np.inf
                            else int(self.n_iter_no_change))
        schedule = Schedule(self._schedule_kind(), self.learning_rate_init, power_t=self.power_t,
                            n_iter_no_change=n_iter_no_change, tol=self.tol,
                            step_size=self.lr_step_size, gamma=self.lr_decay,
                            total_epochs=self.max_iter, min_learning_rate=self.min_learning_rate,
                            warmup_epochs=self.warmup_epochs)
        # The no-improvement bookkeeping outlives a warm-started fit, as in scikit-learn.
        best = (-self.best_validation_score_ if self.early_stopping else self.best_loss_)
        schedule.restore(no_improvement_count=self._no_improvement_count,
                         best_loss=np.inf if best is None else float(best))
        return schedule

    def _clipped_batch_size(self, n_samples) -> int:
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                          "to be clipped")
        return int(np.clip(self.batch_size, 1, n_samples))

    def _monitored(self, record) -> float:
        """What the schedule and the stopping rule watch: the training loss, or minus the
        validation score under early stopping."""
        return -record["val_score"] if self.early_stopping else record["loss"]

    def _record_epoch(self, record, n_samples, bar) -> None:
        """scikit-learn's per-epoch attributes, the best weights so far, history_, the bar."""
        self.n_iter_ += 1
        self.t_ += n_samples
        self.loss_ = record["loss"]
        self.loss_curve_.append(record["loss"])
        if self.verbose:
            print("Iteration %d, loss = %.8f" % (self.n_iter_, record["loss"]))
        schedule = self._schedule
        self._no_improvement_count = schedule.no_improvement_count
        if self.early_stopping:
            self.validation_scores_.append(record["val_score"])
            if self.verbose:
                print("Validation score: %f" % record["val_score"])
            if schedule.best_loss < -self.best_validation_score_:
                self.best_validation_score_ = -schedule.best_loss
                self._best_state = self._network.state()
        else:
            self.best_loss_ = schedule.best_loss
        self.history_.append(record)
        if self._optimizer is not None:
            self._optimizer.learning_rate = self._step_size_reported()
        if bar is not None:
            bar.set_postfix({k: f"{record[k]:.4g}" for k in ("loss", "val_score")
                             if record[k] is not None})
            bar.update(1)

    def _step_size_reported(self) -> float:
        """What scikit-learn's optimiser object shows as `learning_rate` after an epoch (code
        written for it reads `est._optimizer.learning_rate`): SGD's step size for the next
        epoch; Adam's bias-corrected step size η√(1−β2^t)/(1−β1^t) of its last step."""
        rate = self._schedule.learning_rate
        t = self._optimizer.state.get("t", 0)
        if isinstance(self._optimizer, Adam) and t > 0:
            rate = self._schedule.base_learning_rate if self._schedule.kind == "constant" else rate
            rate *= np.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        return float(rate)

    def _stop_after(self, record, callbacks) -> bool:
        """True when a callback asks to stop, or by scikit-learn's rule: no improvement by tol for
        more than n_iter_no_change epochs (an adaptive schedule shrinks the step size instead,
        and the epoch driver ends the run when it cannot shrink it further)."""
        stop_requested = False
        for callback in callbacks:
            stop_requested |= bool(callback(self, record))
        if stop_requested:
            self.training_stopped_ = True
            return True
        schedule = self._schedule
        if schedule.kind != "adaptive" and schedule.no_improvement_count > self.n_iter_no_change:
            self._say_stopping()
            return True
        return False

    def _say_stopping(self) -> None:
        if self.verbose:
            what = "Validation score" if self.early_stopping else "Training loss"
            print(f"{what} did not improve more than tol={self.tol:f} for "
                  f"{self.n_iter_no_change} consecutive epochs. Stopping.")

    def _progress_bar(self, incremental):
        """fit: a bar over max_iter epochs; partial_fit: one bar counting the calls' epochs,
        kept across calls."""
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        if not incremental:
            return tqdm(total=self.max_iter, desc=type(self).__name__, unit="epoch")
        if self.__dict__.get("_partial_bar") is None:
            self._partial_bar = tqdm(desc=f"{type(self).__name__}.partial_fit", unit="epoch",
                                     mininterval=0)  # one update per call: show each
        return self._partial_bar

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_partial_bar", None)  # a terminal widget, not part of the model
        return state

    def _validation_from(self, validation_data) -> Validation:
        """Validation from partial_fit's (X_val, y_val[, sample_weight_val])."""
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (X_val, y_val) or (X_val, y_val, "
                             "sample_weight_val)")
        X_val, y_val, *rest = validation_data
        w_val = rest[0] if rest else None
        data = self.prepare(X_val, y_val, w_val)  # X checked once; data.X is what predict takes
        return Validation(data, lambda: self._score(data.X, y_val, w_val))

    def _validation_split(self, data):
        """(training data, Validation) split as scikit-learn splits for early stopping."""
        classifier = is_classifier(self)
        X, Y, sample_weight = data
        stratify = None
        if classifier and self.stratify is None and Y.shape[1] == 1:
            # scikit-learn's rule: stratify single-output (binary) targets, on its boolean
            # encoding of them (which its error message for a one-member class shows).
            stratify = Y.astype(bool)
        elif classifier and self.stratify and self._label_binarizer.y_type_ in ("binary",
                                                                               "multiclass"):
            stratify = Y.argmax(axis=1) if Y.shape[1] > 1 else Y[:, 0]
        arrays = [X, Y] if sample_weight is None else [X, Y, sample_weight]
        parts = train_test_split(*arrays, random_state=self._random_state,
                                 test_size=self.validation_fraction, stratify=stratify)
        contiguous = [part.tocsr() if sp.issparse(part) else np.ascontiguousarray(part)
                      for part in parts]
        X_train, X_val, Y_train, Y_val = contiguous[:4]
        w_train, w_val = (contiguous[4], contiguous[5]) if sample_weight is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        y_val = self._label_binarizer.inverse_transform(Y_val) if classifier else Y_val
        if not classifier and y_val.shape[1] == 1:
            y_val = y_val[:, 0]
        validation = Validation(PreparedData(X_val, Y_val, w_val),
                                lambda: self._score(X_val, y_val, w_val))
        return PreparedData(X_train, Y_train, w_train), validation

    def _fit_lbfgs(self, data):
        result = lbfgs(self._network, data, max_iter=self.max_iter, max_fun=self.max_fun,
                       tol=self.tol)
        self.n_iter_ = min(result.n_iter, self.max_iter)
        self.loss_ = result.loss
        if result.status != 0:
            message = (f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                       f"(status={result.status}):\n{result.message}\n")
            if self.n_iter_ == self.max_iter:
                message += (f"\nIncrease the number of iterations to improve the convergence "
                            f"(max_iter={self.max_iter}).")
            warnings.warn(message, ConvergenceWarning)

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight=None, activations=None,
                         deltas=None, coef_grads=None, intercept_grads=None):
        """scikit-learn's L-BFGS objective function, under its name and signature (code written
        for scikit-learn calls it): sets the weights from packed_coef_inter (every coefs_ array
        raveled, then every intercepts_ array) and returns (loss, gradient packed the same way)
        on (X, y) — y as the network's targets, e.g. label indicators. The work buffers
        scikit-learn passes are not needed; coef_grads and intercept_grads, when given, are
        filled with the per-layer gradients."""
        net = self._fitted_network()
        theta = np.asarray(packed_coef_inter)
        views = list(net.coefs) + list(net.intercepts)
        if theta.shape != (sum(v.size for v in views),):
            raise ValueError(f"packed_coef_inter must hold {sum(v.size for v in views)} values, "
                             f"got shape {theta.shape}")
        start = 0
        for view in views:
            view[...] = theta[start:start + view.size].reshape(view.shape)
            start += view.size
        X = X if sp.issparse(X) else np.asarray(X)
        y = np.asarray(y).reshape(X.shape[0], -1)
        loss, _ = net.loss_and_grad(net.prepare(X, y, sample_weight))
        grads = [g.copy() for g in list(net.coef_grads) + list(net.intercept_grads)]
        n_layers = len(net.coefs)
        if coef_grads is not None:
            coef_grads[:] = grads[:n_layers]
        if intercept_grads is not None:
            intercept_grads[:] = grads[n_layers:]
        return loss, np.concatenate([g.ravel() for g in grads])

    # ---- prediction --------------------------------------------------------------------------
    def _check_X_for_prediction(self, X) -> np.ndarray:
        return validate_data(self, X, accept_sparse=["csr", "csc"],
                             dtype=(np.float64, np.float32), reset=False)

    def _unchecked_prediction(self, X, output: str):
        """The core's `output` prediction for X (see Network.predict) without a Python-side
        check, when X is what validate_data would hand back unchanged: a C-contiguous 2-D
        ndarray of the network's dtype and the fitted width, with rows, for a model fitted
        without feature names. The core checks finiteness as the rows go in. None otherwise,
        and for a NaN or infinite value: then the caller runs the checked path, so that every
        error and warning is scikit-learn's own. What a one-row request costs is this method."""
        net = self.__dict__.get("_network")
        if (net is None or type(X) is not np.ndarray or X.ndim != 2 or X.dtype != net.dtype
                or not X.flags.c_contiguous or X.shape[0] == 0
                or X.shape[1] != self.n_features_in_ or "feature_names_in_" in self.__dict__):
            return None
        return net._core.predict(X, output, True)

    def _forward(self, X, check_input=True, output="response") -> np.ndarray:
        """The network's `output` prediction for X (see Network.predict): on the response scale
        (after the output link) by default, shape (n, n_outputs)."""
        net = self._fitted_network()
        if check_input:
            X = self._check_X_for_prediction(X)
        # Computed in the network's dtype; given back in the dtype scikit-learn's would have,
        # that of X's values times the weights (float64 from a float32 model on float64 X).
        out = (net.predict(X, output) if sp.issparse(X)  # as CSR of its dtype
               else net._core.predict(np.ascontiguousarray(X, dtype=net.dtype), output))
        return out if output == "label" else out.astype(np.result_type(X.dtype, net.dtype),
                                                        copy=False)

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def fit(self, X, y, sample_weight=None):
        """Train the network on (X, y) from new weights (or, with ``warm_start``, the current ones).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The training rows: dense arrays, CSR or CSC matrices (kept sparse) or DataFrames.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets: labels (or label indicators, for multilabel targets) for the
            classifier, numbers for the regressor.
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the rows (each minibatch is a weighted mean of their losses); None weighs
            every row 1.

        Returns
        -------
        MLPClassifier or MLPRegressor
            The estimator itself.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def save(self, path, *, metadata=None):
        """Write the fitted model to a portable ``.npz`` file, without pickle.

        The file holds the hyperparameters, the weights, batch-norm statistics, optimiser and
        schedule state, classes, feature names and history; :func:`nncore.load` reads it back.
        Callbacks are not saved.

        Parameters
        ----------
        path : str, path-like or binary file object
            Where to write.
        metadata : dict or None
            JSON-serialisable data stored beside the model, returned by
            ``nncore.load(path, with_metadata=True)``.
        """
        persistence.save(self, path, metadata=metadata)

    # ---- the model as a plain document (what persistence writes) -------------------------------
    def to_document(self) -> tuple[dict, dict]:
        """Everything the fitted estimator is, as plain data (what ``save`` writes).

        Returns
        -------
        document : dict
            JSON-ready data: hyperparameters, fitted attributes, the network's architecture,
            the optimiser's and the schedule's settings and state.
        arrays : dict of str to ndarray
            Named numeric or string arrays: parameters, batch-norm statistics, optimiser state,
            classes, feature names, the per-epoch lists. ``from_document`` rebuilds an
            estimator that predicts bit for bit as this one and continues training where it
            stopped.
        """
        check_is_fitted(self)
        network, arrays = self._network.to_document()
        doc = {
            "class": type(self).__name__,
            "params": self._hyperparameters_document(),
            "fitted": self._fitted_document(arrays),
            "network": network,
            "optimizer": None,
            "schedule": None,
        }
        optimizer = self.__dict__.get("_optimizer")
        if optimizer is not None:
            doc["optimizer"], state = optimizer.to_document()
            arrays.update({f"optimizer_{key}": value for key, value in state.items()})
        if self.__dict__.get("_schedule") is not None:
            doc["schedule"] = self._schedule.to_document()
        if hasattr(self, "classes_"):
            classes = np.asarray(self.classes_)
            if classes.dtype.kind == "O":
                if not all(isinstance(c, str) for c in classes):
                    raise ValueError("only classes that are all numbers or all strings can be "
                                     "saved")
                classes = classes.astype(str)
            arrays["classes"] = classes
            doc["label_binarizer"] = {"y_type": self._label_binarizer.y_type_,
                                      "object_classes": np.asarray(self.classes_).dtype.kind
                                      == "O"}
        if hasattr(self, "feature_names_in_"):
            arrays["feature_names_in"] = np.asarray(self.feature_names_in_, dtype=str)
        preprocessing = self.__dict__.get("preprocessing_")
        if preprocessing is not None:  # fit_stream's: the model's inputs are its output
            doc["preprocessing"] = preprocessing.spec
        return doc, arrays

    def _fitted_document(self, arrays: dict) -> dict:
        """The fitted attributes; the per-epoch lists as arrays (a 2,000-epoch history_ as
        JSON text was ~100 times the size of the weights of a small model)."""
        fitted = {k: getattr(self, k) for k in _FITTED if hasattr(self, k)}
        for key in ("loss_curve_", "validation_scores_"):
            values = fitted.get(key)
            if isinstance(values, list) and values and all(
                    isinstance(v, (float, np.floating)) for v in values):
                arrays[f"fitted.{key}"] = np.array(values, np.float64)
                fitted[key] = {"array": len(values)}
        columns = persistence.columns_document(fitted.get("history_"), arrays, "history.")
        if columns is not None:
            fitted["history_"] = {"columns": columns}
        return fitted

    def _hyperparameters_document(self) -> dict:
        params = self.get_params(deep=False)
        params["callbacks"] = ()  # code, not data: callbacks are not saved
        if not (params["random_state"] is None or isinstance(params["random_state"], int)):
            params["random_state"] = None  # a RandomState object: its seed is not recoverable
        hidden = params["hidden_layer_sizes"]
        params["hidden_layer_sizes"] = list(hidden) if hasattr(hidden, "__iter__") else hidden
        if np.iterable(params["dropout"]):
            params["dropout"] = [float(p) for p in params["dropout"]]
        if isinstance(params.get("class_weight"), dict):  # JSON keys would turn labels to text
            params["class_weight"] = [[k, v] for k, v in params["class_weight"].items()]
        return params

    @classmethod
    def from_document(cls, doc: dict, arrays: dict):
        """The estimator that ``to_document`` described.

        Parameters
        ----------
        doc : dict
            The document ``to_document`` returned (read from a file, possibly by an older
            nncore).
        arrays : dict of str to ndarray
            Its arrays.

        Returns
        -------
        MLPClassifier or MLPRegressor
            The estimator.

        Raises
        ------
        ValueError
            When the document and its arrays disagree (KeyError or TypeError for a damaged
            document).
        """
        params = dict(doc["params"])
        if isinstance(params.get("hidden_layer_sizes"), list):  # JSON has no tuples
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        if isinstance(params.get("dropout"), list):
            params["dropout"] = tuple(params["dropout"])
        params["callbacks"] = ()
        if "schedule" not in params:
            # Written before `schedule` existed: `learning_rate` then drove every solver and
            # took nncore's schedules too; `schedule` keeps that model training as it did.
            # Early stopping then stratified multiclass targets as well (stratify=True now).
            kind = params.get("learning_rate", "constant")
            if kind != "constant" and (params.get("solver") not in SGD_SOLVERS
                                       or kind not in ("invscaling", "adaptive")):
                params["schedule"] = kind
                params["learning_rate"] = "constant"
            if cls is MLPClassifier:
                params["stratify"] = True
        if isinstance(params.get("class_weight"), list):
            params["class_weight"] = {k: v for k, v in params["class_weight"]}
        estimator = cls(**params)
        estimator._validate_params()
        spec = doc["network"]
        net = Network.from_document(spec, arrays, n_threads=params["n_threads"])
        estimator._network = net
        if "loss_clip_epsilon" not in spec:  # written before the network kept its conventions
            estimator._use_loss_conventions(net)
        for key, value in doc["fitted"].items():
            if key not in _FITTED:
                raise ValueError(f"unexpected fitted attribute {key!r}")
            if isinstance(value, dict) and "array" in value:  # format 3: a per-epoch list
                value = [float(v) for v in np.asarray(arrays[f"fitted.{key}"], np.float64)]
                if len(value) != doc["fitted"][key]["array"]:
                    raise ValueError(f"{key} does not match its document")
            elif isinstance(value, dict) and "columns" in value:
                value = persistence.records_from_columns(value["columns"], arrays, "history.")
            setattr(estimator, key, value)
        if estimator.n_layers_ != len(spec["layer_sizes"]) or \
                estimator.n_outputs_ != spec["layer_sizes"][-1]:
            raise ValueError("fitted attributes disagree with the architecture")
        estimator._best_state = None
        estimator._optimizer = None
        if doc["optimizer"] is not None:
            state = {key[len("optimizer_"):]: value for key, value in arrays.items()
                     if key.startswith("optimizer_")}
            estimator._optimizer = Optimizer.from_document(doc["optimizer"], state, net)
        estimator._schedule = None
        if doc["schedule"] is not None:
            estimator._schedule = Schedule.from_document(doc["schedule"])
        if "label_binarizer" in doc:
            estimator._restore_label_binarizer(doc["label_binarizer"], arrays["classes"])
        if "feature_names_in" in arrays:
            estimator.feature_names_in_ = arrays["feature_names_in"].astype(object)
        if doc.get("preprocessing") is not None:
            from .tabular import Preprocessing

            estimator.preprocessing_ = Preprocessing(doc["preprocessing"])
        return estimator

    def _check_solver(self):
        if self.solver not in EPOCH_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 "%s is not stochastic." % self.solver)
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


# The parameters both estimators take, documented once (their docstrings hold {shared_parameters}).
_SHARED_PARAMETERS = """\
hidden_layer_sizes : int or sequence of int
    The width of each hidden layer, input side first; one int is one hidden layer.
activation : str
    The activation of the hidden layers: scikit-learn's ``'identity'``, ``'logistic'``,
    ``'tanh'`` and ``'relu'``, and nncore's ``'leaky_relu'`` (slope 0.01), ``'softplus'``
    and ``'gelu'`` (exact erf form).
solver : str
    How the weights are fitted: scikit-learn's ``'sgd'`` (with ``momentum`` and
    ``nesterovs_momentum``), ``'adam'`` and ``'lbfgs'`` (scipy's L-BFGS-B on the full batch),
    and nncore's ``'momentum'`` (SGD with momentum, never Nesterov's) and ``'adamw'`` (Adam
    with decoupled ``weight_decay``).
alpha : float
    Strength of the L2 penalty on the weights (not the biases): the objective adds
    ``alpha / 2`` times the squared weights, divided like the loss by the batch's total sample
    weight.
batch_size : int or 'auto'
    Rows per minibatch of the epoch-based solvers; ``'auto'`` takes 200, or every row when
    there are fewer. L-BFGS does not read it.
learning_rate : {'constant', 'invscaling', 'adaptive'}
    scikit-learn's step-size schedule, read (as there) by ``solver='sgd'`` only (and by
    nncore's ``'momentum'``): keep ``learning_rate_init``, divide it by a power of the number
    of samples seen (``power_t``), or divide it by 5 whenever ``n_iter_no_change`` epochs
    pass without an improvement of ``tol``. ``schedule`` overrides it.
learning_rate_init : float
    The initial step size of the epoch-based solvers.
power_t : float
    The exponent of the ``'invscaling'`` schedule.
max_iter : int
    The most epochs an epoch-based solver runs (each row is seen once per epoch), or the most
    iterations of L-BFGS.
shuffle : bool
    Whether the epoch-based solvers visit the rows in a new random order every epoch.
random_state : int, RandomState instance or None
    Seeds every random draw of a fit: the initial weights, the early-stopping split, each
    epoch's row order and the dropout masks. An int makes fits repeatable.
tol : float
    The smallest improvement of the loss (or of the validation score, with early stopping)
    that counts: after ``n_iter_no_change`` epochs without one, training stops, or the
    ``'adaptive'`` schedule cuts the step. L-BFGS also stops on it.
verbose : bool or int
    Whether to print the loss of every epoch, as scikit-learn does.
warm_start : bool
    Whether ``fit`` starts from the weights of the previous fit instead of new ones.
momentum : float
    The momentum of ``solver='sgd'`` and ``'momentum'``, in [0, 1].
nesterovs_momentum : bool
    Whether ``solver='sgd'`` uses Nesterov's form of momentum.
early_stopping : bool
    Whether to hold out ``validation_fraction`` of the training rows, stop when their score
    has not improved by ``tol`` for ``n_iter_no_change`` epochs, and keep the best-scoring
    weights. Epoch-based solvers only.
validation_fraction : float
    The share of the training rows held out for early stopping (and for callbacks that read
    the validation loss or score).
beta_1 : float
    Adam's (and AdamW's) decay rate of the first-moment estimate, in [0, 1).
beta_2 : float
    Adam's (and AdamW's) decay rate of the second-moment estimate, in [0, 1).
epsilon : float
    Adam's (and AdamW's) term added to the denominator for numerical stability.
n_iter_no_change : int or numpy.inf
    How many epochs in a row without an improvement of ``tol`` end training (or, with
    ``learning_rate='adaptive'``, cut the step size); ``numpy.inf`` never stops early.
max_fun : int
    The most loss evaluations of L-BFGS.
weight_decay : float
    nncore's: the decoupled weight decay of ``solver='adamw'`` (each step multiplies the
    parameters by ``1 - learning_rate * weight_decay``); other solvers do not read it.
batch_norm : bool
    nncore's, off by default: batch normalisation between each hidden dense layer and its
    activation (PyTorch's BatchNorm1d conventions).
dropout : float or sequence of float
    nncore's, off by default: inverted dropout on the output of every hidden layer during
    training steps, one rate in [0, 1) for all hidden layers or one per hidden layer. Not with
    ``solver='lbfgs'``. Predictions and scores never drop out.
init : str
    nncore's: the initial weights' distribution; the default, ``'glorot_uniform'``, draws
    scikit-learn's weights (the same seed gives the same weights). Also ``'he_normal'``,
    ``'glorot_normal'``, ``'normal'``, ``'pytorch_uniform'`` and ``'zeros'``.
dtype : {'float32', 'float64'} or None
    nncore's: the precision of the network; None follows X (float32 input trains in
    float32, anything else in float64). L-BFGS always computes in float64.
loss_reduction : {'mean', 'sum'}
    nncore's: ``'mean'`` (scikit-learn's objective) averages the loss over a minibatch;
    ``'sum'`` scales it to the whole training set (n over the batch size, times the minibatch
    sum).
    Reported losses are in mean units either way.
lr_decay : float
    nncore's: the factor of the ``'step'`` and ``'exponential'`` schedules.
lr_step_size : int
    nncore's: the epochs between two cuts of the ``'step'`` schedule.
warmup_epochs : int
    nncore's, off by default: epochs over which the step size ramps up linearly to its
    schedule's value, for the epoch-based solvers.
min_learning_rate : float
    nncore's: the step size the ``'cosine'`` schedule ends at.
callbacks : sequence of callable
    nncore's, none by default: called after every epoch as ``callback(estimator, record)``
    with the epoch's ``history_`` record; a truthy return ends training. See
    :mod:`nncore.callbacks`. Not saved with the model.
progress : bool
    nncore's, off by default: show a tqdm progress bar over the epochs.
n_threads : int or None
    nncore's: the threads of large matrix products and of evaluation; None follows the
    process-wide default (:func:`nncore.thread_limit`). The result is the same for every
    count.
schedule : str or None
    nncore's, off by default: a step-size schedule from ``nncore.SCHEDULES`` (``'constant'``,
    ``'invscaling'``, ``'adaptive'``, ``'step'``, ``'exponential'``, ``'cosine'``) for any
    epoch-based solver, in place of ``learning_rate``; None keeps scikit-learn's rule.
"""


@with_shared_docs(shared_parameters=_SHARED_PARAMETERS)
class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by nncore's C++ core.

    A drop-in replacement for scikit-learn's ``MLPClassifier``: the same parameters, fitted
    attributes and methods, and for the same ``random_state`` the same fitted weights. Binary and
    multilabel targets are fitted with the logistic loss (one sigmoid output per label),
    multiclass targets with the softmax cross-entropy. The keyword-only parameters after
    ``max_fun`` are nncore's extras; their defaults keep scikit-learn's behaviour, and one set
    away from its default where a fit does not read it draws a ``UserWarning``.

    Parameters
    ----------
    {shared_parameters}
    class_weight : dict, 'balanced' or None
        nncore's, off by default: weights per class, multiplied into ``sample_weight`` —
        ``{label: weight}``, or ``'balanced'`` for weights inversely proportional to the class
        frequencies (not with ``partial_fit``, whose chunk cannot know them).
    stratify : bool or None
        nncore's: how early stopping splits off its validation rows. None follows scikit-learn's
        rule (binary targets are stratified, multiclass and multilabel ones not), True
        stratifies multiclass targets too, False never stratifies.

    Attributes
    ----------
    history_ : list of dict
        One record per epoch: ``epoch``, ``loss``, ``val_loss``, ``val_score``,
        ``learning_rate``, ``grad_norm``, ``param_norm``, ``seconds``.
    training_stopped_ : bool
        Whether a callback asked the last fit or ``partial_fit`` to stop.

    See Also
    --------
    MLPRegressor : The regressor.
    nncore.load : Read a model written by ``save``.
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=_DEFAULTS["power_t"],
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=_DEFAULTS["tol"],
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=_DEFAULTS["beta_1"],
        beta_2=_DEFAULTS["beta_2"],
        epsilon=_DEFAULTS["epsilon"],
        n_iter_no_change=_DEFAULTS["n_iter_no_change"],
        max_fun=15000,
        weight_decay=0.01,
        batch_norm=False,
        dropout=0.0,
        init="glorot_uniform",
        dtype=None,
        loss_reduction="mean",
        lr_decay=_DEFAULTS["gamma"],
        lr_step_size=_DEFAULTS["step_size"],
        warmup_epochs=_DEFAULTS["warmup_epochs"],
        min_learning_rate=_DEFAULTS["min_learning_rate"],
        callbacks=(),
        progress=False,
        n_threads=None,
        schedule=None,
        class_weight=None,
        stratify=None,
    ):
        self._store_hyperparameters(locals())

    loss = "log_loss"  # scikit-learn's classifier exposes its (fixed) loss name

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [None, dict, StrOptions({"balanced"})],
        "stratify": [None, "boolean"],
    }

    def _weighted(self, y, sample_weight, incremental):
        """sample_weight times the class weights of y's labels (scikit-learn's
        compute_sample_weight, as its other classifiers use class_weight)."""
        if self.class_weight is None:
            return sample_weight
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' needs the class frequencies of all the data, which one "
                "partial_fit chunk does not have: compute them once with sklearn.utils."
                "class_weight.compute_class_weight('balanced', classes=..., y=...) and pass "
                "the result as a dict")
        weights = compute_sample_weight(self.class_weight, y)
        if sample_weight is None:
            return weights
        return weights * _check_sample_weight(sample_weight, weights)

    def _validate_input(self, X, y, incremental, reset):
        checked = None if reset else self._checked_as_before(X, y)
        if checked is not None:
            X, y = checked
            if incremental and not self.warm_start:
                Y = self._indicators(y, X.dtype, known_only=True)
                if Y is not None:
                    return X, Y
        else:
            X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                                 dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = _labels_of(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. "
                                 f"`self.classes_` has {self.classes_}. 'y' has {classes}.")
        return X, self._indicators(y, X.dtype)

    def _indicators(self, y, dtype, known_only=False) -> np.ndarray | None:
        """LabelBinarizer.transform(y) as `dtype`, by a direct lookup for the common case (1-D
        numeric labels of a binary or multiclass problem, every one of them in classes_):
        partial_fit pays for this on every call. known_only: None instead when the lookup does
        not apply or a label is not known (the caller then checks the labels and reports)."""
        binarizer = self._label_binarizer
        classes = self.classes_
        if (y.ndim == 1 and y.dtype.kind in "iuf" and classes.dtype.kind in "iuf"
                and binarizer.y_type_ in ("binary", "multiclass") and len(classes) >= 2):
            index = np.searchsorted(classes, y)
            if np.all(classes[np.minimum(index, len(classes) - 1)] == y):
                if binarizer.y_type_ == "binary":
                    return (index == 1).astype(dtype)[:, None]
                Y = np.zeros((len(y), len(classes)), dtype=dtype)
                Y[np.arange(len(y)), index] = 1
                return Y
        return None if known_only else binarizer.transform(y).astype(dtype)

    def _encoded_targets(self, y) -> np.ndarray:
        """y as the network's targets: label indicators (one column for binary targets)."""
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim == 1 and not self._label_binarizer.y_type_.startswith("multilabel"):
            unknown = [label for label in np.unique(y) if label not in set(self.classes_)]
            if unknown:
                shown = [repr(getattr(v, "item", lambda v=v: v)()) for v in unknown[:5]]
                known = [repr(getattr(v, "item", lambda v=v: v)()) for v in self.classes_]
                raise ValueError(f"y holds label(s) {', '.join(shown)} that the model was not "
                                 f"trained on; its classes are {', '.join(known)}")
        return self._label_binarizer.transform(y)

    def _restore_label_binarizer(self, spec, classes):
        if spec["object_classes"]:
            classes = classes.astype(object)
        binarizer = LabelBinarizer()
        if spec["y_type"].startswith("multilabel"):
            binarizer.fit(np.eye(len(classes), dtype=int))
        else:
            binarizer.fit(classes)
        self._label_binarizer = binarizer
        self.classes_ = binarizer.classes_

    def _labels_from_core(self) -> bool:
        """Whether the core's class index (Network.predict's 'label': σ(f) > ½, or the first
        largest probability) is the label binarizer's own choice: binary or multiclass targets
        with at least two classes."""
        binarizer = self.__dict__.get("_label_binarizer")
        return (binarizer is not None and binarizer.y_type_ in ("binary", "multiclass")
                and len(binarizer.classes_) >= 2)

    def _predict(self, X, check_input=True):
        if self._labels_from_core():
            # The core's choice on the probabilities it gives: the label binarizer's rule.
            return self.classes_.take(self._forward(X, check_input=check_input, output="label"))
        y_pred = self._forward(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def predict(self, X):
        """Predict the class of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows to predict.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
            Labels from ``classes_``, or label indicators for multilabel targets.
        """
        if self._labels_from_core():
            labels = self._unchecked_prediction(X, "label")
            if labels is not None:
                return self.classes_.take(labels)
        check_is_fitted(self)
        return self._predict(X)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None, *, validation_data=None):
        """Train one epoch over (X, y), continuing from the current weights.

        A training run is the ``partial_fit`` calls from the first one until a callback asks to
        stop; ``training_stopped_`` says whether one did. ``partial_fit`` never holds out part of
        the chunk.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The training rows of this chunk.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Their labels.
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the rows; None weighs every row 1.
        classes : array-like of shape (n_classes,) or None
            Every class the model will see; required on the first call, ignored afterwards.
        validation_data : tuple or None
            ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``: held-out rows that
            fill this epoch's ``val_loss`` and ``val_score`` in ``history_``, which callbacks
            that monitor them need.

        Returns
        -------
        MLPClassifier
            The estimator itself.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True,
                         validation_data=validation_data)

    def predict_proba(self, X):
        """Probability of each class for each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows to predict.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            The probabilities, columns in the order of ``classes_``.
        """
        proba = self._unchecked_prediction(X, "proba")
        if proba is not None:
            return proba
        check_is_fitted(self)
        return self._forward(X, output="proba")

    def predict_log_proba(self, X):
        """Logarithm of the probability of each class for each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows to predict.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


@with_shared_docs(shared_parameters=_SHARED_PARAMETERS)
class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by nncore's C++ core.

    A drop-in replacement for scikit-learn's ``MLPRegressor``: the same parameters, fitted
    attributes and methods, and for the same ``random_state`` the same fitted weights. The
    keyword-only parameters after ``max_fun`` are nncore's extras; their defaults keep
    scikit-learn's behaviour, and one set away from its default where a fit does not read it
    draws a ``UserWarning``.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}
        The loss fitted: half the squared error averaged over the outputs, or the half Poisson
        deviance with a log link (predictions are the exponential of the network's output;
        targets must not be negative).
    {shared_parameters}
    mean_output_gradient : bool
        nncore's, off by default: with several outputs and the squared error, follow the gradient
        of the reported (output-averaged) loss; scikit-learn's gradient is the number of outputs
        times that. Single-output fits are unchanged.

    Attributes
    ----------
    history_ : list of dict
        One record per epoch: ``epoch``, ``loss``, ``val_loss``, ``val_score``,
        ``learning_rate``, ``grad_norm``, ``param_norm``, ``seconds``.
    training_stopped_ : bool
        Whether a callback asked the last fit or ``partial_fit`` to stop.

    See Also
    --------
    MLPClassifier : The classifier.
    nncore.load : Read a model written by ``save``.
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
        "mean_output_gradient": ["boolean"],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=_DEFAULTS["power_t"],
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=_DEFAULTS["tol"],
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=_DEFAULTS["beta_1"],
        beta_2=_DEFAULTS["beta_2"],
        epsilon=_DEFAULTS["epsilon"],
        n_iter_no_change=_DEFAULTS["n_iter_no_change"],
        max_fun=15000,
        weight_decay=0.01,
        batch_norm=False,
        dropout=0.0,
        init="glorot_uniform",
        dtype=None,
        loss_reduction="mean",
        lr_decay=_DEFAULTS["gamma"],
        lr_step_size=_DEFAULTS["step_size"],
        warmup_epochs=_DEFAULTS["warmup_epochs"],
        min_learning_rate=_DEFAULTS["min_learning_rate"],
        callbacks=(),
        progress=False,
        n_threads=None,
        schedule=None,
        mean_output_gradient=False,
    ):
        self._store_hyperparameters(locals())

    def _validate_input(self, X, y, incremental, reset):
        checked = None if reset else self._checked_as_before(X, y)
        if checked is not None:
            X, y = checked
        else:
            X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                                 y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson":
            check_poisson_targets(y)
        return X, y

    def _encoded_targets(self, y) -> np.ndarray:
        return np.asarray(y)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input=check_input)
        return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred

    def predict(self, X):
        """Predict the target(s) of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows to predict.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predictions.
        """
        y_pred = self._unchecked_prediction(X, "response")
        if y_pred is not None:
            return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred
        check_is_fitted(self)
        return self._predict(X)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, *, validation_data=None):
        """Train one epoch over (X, y), continuing from the current weights.

        A training run is the ``partial_fit`` calls from the first one until a callback asks to
        stop; ``training_stopped_`` says whether one did. ``partial_fit`` never holds out part of
        the chunk.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The training rows of this chunk.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets.
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the rows; None weighs every row 1.
        validation_data : tuple or None
            ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``: held-out rows that
            fill this epoch's ``val_loss`` and ``val_score`` in ``history_``, which callbacks
            that monitor them need.

        Returns
        -------
        MLPRegressor
            The estimator itself.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True,
                         validation_data=validation_data)


persistence.register(MLPClassifier)
persistence.register(MLPRegressor)
