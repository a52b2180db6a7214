"""Optimisers and step-size schedules of the C++ core: the Python objects that hold their
hyperparameters (checked against the one range table) and expose their state.

Formulas, as scikit-learn and PyTorch define them: SGD ``θ ← θ − ηg``; momentum ``v ← μv − ηg;
θ ← θ + v``; Nesterov ``θ ← θ + μv − ηg``; Adam ``η_t = η √(1−β2^t)/(1−β1^t); θ ← θ − η_t
m/(√v + ε)``; AdamW adds the decoupled decay ``θ ← θ(1 − ηλ)``. An optimiser object holds its
hyperparameters and, once used with a network, its state in C++ buffers with the parameter
slab's layout; `state` gives writable numpy views of them, so warm starts and checkpoints can
read and restore it exactly."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._validation import check_choice, check_int, check_param

SCHEDULES = tuple(_core.schedules)
_DEFAULTS = _core.defaults  # the schedules' and Adam's default settings, as the core has them
SOLVERS = ("sgd", "momentum", "nesterov", "adam", "adamw")  # make_optimizer's names
# The estimators' epoch-based solvers (their other solver is 'lbfgs'), and those of them that
# step by SGD, which scikit-learn's learning_rate schedule drives.
EPOCH_SOLVERS = ("sgd", "momentum", "adam", "adamw")
SGD_SOLVERS = ("sgd", "momentum")


class Optimizer:
    """Base class: `SGD`, `Adam` and `AdamW` are the optimisers."""

    _kind = "sgd"
    # The step size of the last epoch's updates as scikit-learn's optimiser objects report it,
    # set by the estimators after every epoch (None until then).
    learning_rate = None

    def config(self) -> dict:
        """The constructor arguments: ``type(opt)(**opt.config())`` is a fresh copy."""
        raise NotImplementedError

    def __init__(self):
        self._core = None

    def bind(self, network):
        """The compiled state serving a network's parameter buffer, made on first use.

        An optimiser serves one network shape and dtype (call ``reset()`` after moving it to
        another network of the same shape).

        Parameters
        ----------
        network : Network
            The network whose parameters this optimiser updates.

        Returns
        -------
        object
            The core's optimiser object.
        """
        core_class = _core.Optimizer64 if network.dtype == np.float64 else _core.Optimizer32
        if self._core is None:
            self._core = core_class(self._kind, network.n_params, **self.config())
        elif not isinstance(self._core, core_class) or self._core.n_params != network.n_params:
            raise ValueError(
                f"this {type(self).__name__} holds state for {self._core.n_params} parameters "
                f"of another dtype or shape; the network has {network.n_params} "
                f"({network.dtype.name}). Use a new optimiser for it."
            )
        return self._core

    @property
    def state(self) -> dict:
        """The optimiser's state as writable views (empty before first use and for plain SGD)."""
        if self._core is None:
            return {}
        return self._state_views()

    def _state_views(self) -> dict:
        raise NotImplementedError

    def set_state(self, state: dict, network) -> None:
        """Restore a state (arrays are copied into the C++ buffers).

        Parameters
        ----------
        state : dict
            What ``state`` holds: ``velocity`` for SGD with momentum, ``m``, ``v`` and the step
            count ``t`` for Adam and AdamW; keys and shapes are checked first.
        network : Network
            The network the optimiser serves.
        """
        self.bind(network)
        self._write_state(state)

    def _write_state(self, state: dict) -> None:
        """`state` into the bound core's buffers, its keys and shapes checked first."""
        views = self._state_views()
        if set(state) != set(views):
            raise ValueError(f"state must have the keys {sorted(views)}, got {sorted(state)}")
        for key, value in state.items():
            if key == "t":
                if isinstance(value, np.ndarray) and value.ndim == 0:
                    value = value[()]  # a 0-d array, e.g. from np.copy
                self._core.steps = check_int(value, "state['t']", minimum=0)
            else:
                value = np.asarray(value)
                if value.shape != views[key].shape:
                    raise ValueError(
                        f"state[{key!r}] must have shape {views[key].shape}, got {value.shape}"
                    )
                views[key][...] = value

    def reset(self) -> None:
        """Zero the state (velocity, moments, step count)."""
        if self._core is not None:
            self._core.reset()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    # ---- the optimiser as a document: what pickle and the estimator's file keep ---------------
    def to_document(self) -> tuple[dict, dict]:
        """(document, arrays): the class, its settings, the step count `t` and the dtype and size
        of the state (None before first use) as plain data; the state vectors (`velocity`, or
        Adam's `m` and `v`) as array copies. `Optimizer.from_document` rebuilds it."""
        state = self.state
        bound = self._core is not None
        doc = {"class": type(self).__name__, "args": self.config(), "t": int(state.get("t", 0)),
               "dtype": None if not bound else
               "float64" if isinstance(self._core, _core.Optimizer64) else "float32",
               "n_params": self._core.n_params if bound else None}
        return doc, {k: np.array(v) for k, v in state.items() if k != "t"}

    @classmethod
    def from_document(cls, doc: dict, arrays: dict, network=None) -> "Optimizer":
        """The optimiser that ``to_document`` described.

        Parameters
        ----------
        doc : dict
            The document ``to_document`` returned.
        arrays : dict of str to ndarray
            Its state vectors.
        network : Network or None
            The network the optimiser will serve (the state must fit its parameters: shapes
            and finiteness are checked); None takes the dtype and size the document names.

        Returns
        -------
        Optimizer
            An :class:`SGD`, :class:`Adam` or :class:`AdamW`.
        """
        optimizer = object.__new__(_OPTIMIZERS[doc["class"]])
        optimizer._restore(doc, arrays, network)
        return optimizer

    def _restore(self, doc, arrays, network) -> None:
        self.__init__(**doc["args"])
        if network is not None:
            self.bind(network)
        elif doc.get("dtype") is not None:
            core_class = _core.Optimizer64 if doc["dtype"] == "float64" else _core.Optimizer32
            self._core = core_class(self._kind, doc["n_params"], **self.config())
        else:
            return  # never used: no state
        state = {}
        for key, view in self._state_views().items():
            if key == "t":
                state[key] = doc["t"]
                continue
            value = np.asarray(arrays[key])
            if value.shape != view.shape or not np.isfinite(value).all():
                raise ValueError(f"optimizer {key} has shape {value.shape} or non-finite values; "
                                 f"the architecture needs {view.shape}, finite")
            state[key] = value
        self._write_state(state)

    def __getstate__(self):
        doc, arrays = self.to_document()
        return {"document": doc, "arrays": arrays}

    def __setstate__(self, saved):
        if "document" in saved:
            self._restore(saved["document"], saved["arrays"], None)
            return
        # A pickle from before to_document: {"args", "state" (views and "t"), "dtype", "n_params"}.
        state = saved["state"]
        self._restore({"class": type(self).__name__, "args": saved["args"],
                       "t": state.get("t", 0), "dtype": saved["dtype"],
                       "n_params": saved["n_params"]},
                      {k: v for k, v in state.items() if k != "t"}, None)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    scikit-learn's formulas: ``v ← μv − ηg; θ ← θ + v`` (Nesterov: ``θ ← θ + μv − ηg``); plain
    ``θ ← θ − ηg`` when μ = 0.

    Parameters
    ----------
    momentum : float
        μ, in [0, 1]; 0 is plain SGD.
    nesterov : bool
        Whether to use Nesterov's form of the momentum update.
    """

    _kind = "sgd"

    def __init__(self, momentum: float = 0.0, nesterov: bool = False):
        super().__init__()
        self.momentum = check_param(momentum, "momentum")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        self.nesterov = bool(nesterov)

    def config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def _state_views(self):
        return {} if self._core.first is None else {"velocity": self._core.first}


class Adam(Optimizer):
    """Adam as scikit-learn computes it.

    ``η_t = η √(1−β2^t)/(1−β1^t); θ ← θ − η_t m/(√v + ε)``.

    Parameters
    ----------
    beta_1 : float
        Decay rate of the first-moment estimate m, in [0, 1).
    beta_2 : float
        Decay rate of the second-moment estimate v, in [0, 1).
    epsilon : float
        Added to √v in the denominator, for numerical stability.
    """

    _kind = "adam"

    def __init__(self, beta_1: float = _DEFAULTS["beta_1"], beta_2: float = _DEFAULTS["beta_2"],
                 epsilon: float = _DEFAULTS["epsilon"]):
        super().__init__()
        self.beta_1 = check_param(beta_1, "beta_1")
        self.beta_2 = check_param(beta_2, "beta_2")
        self.epsilon = check_param(epsilon, "epsilon")

    def config(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}

    def _state_views(self):
        return {"m": self._core.first, "v": self._core.second, "t": self._core.steps}


class AdamW(Adam):
    """AdamW as PyTorch defines it: Adam with decoupled weight decay.

    ``θ ← θ(1 − ηλ)``, then ``θ ← θ − η m̂/(√v̂ + ε)`` with bias-corrected moments. The decay
    applies to every parameter, as in PyTorch's default.

    Parameters
    ----------
    beta_1 : float
        Decay rate of the first-moment estimate, in [0, 1).
    beta_2 : float
        Decay rate of the second-moment estimate, in [0, 1).
    epsilon : float
        Added to the denominator after the bias correction, for numerical stability.
    weight_decay : float
        λ, the decoupled weight decay.
    """

    _kind = "adamw"

    def __init__(self, beta_1: float = _DEFAULTS["beta_1"], beta_2: float = _DEFAULTS["beta_2"],
                 epsilon: float = _DEFAULTS["epsilon"], weight_decay: float = 0.01):
        super().__init__(beta_1, beta_2, epsilon)
        self.weight_decay = check_param(weight_decay, "weight_decay")

    def config(self):
        return {**super().config(), "weight_decay": self.weight_decay}


_OPTIMIZERS = {cls.__name__: cls for cls in (SGD, Adam, AdamW)}


def check_optimizer(optimizer) -> Optimizer:
    """optimizer itself if it is one of nncore's, else TypeError."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer must be an nncore optimiser (SGD, Adam, AdamW), got {optimizer!r}")
    return optimizer


def make_optimizer(name: str, *, momentum=0.9, nesterov=True, beta_1=_DEFAULTS["beta_1"],
                   beta_2=_DEFAULTS["beta_2"], epsilon=_DEFAULTS["epsilon"],
                   weight_decay=0.01) -> Optimizer:
    """An optimiser by name.

    Parameters
    ----------
    name : {'sgd', 'momentum', 'nesterov', 'adam', 'adamw'}
        ``'sgd'`` is scikit-learn's: momentum, with Nesterov's form as ``nesterov`` says;
        ``'momentum'`` and ``'nesterov'`` are SGD with momentum without and with it.
    momentum : float
        The momentum of the SGD kinds.
    nesterov : bool
        Whether ``'sgd'`` uses Nesterov's form (the other names fix it).
    beta_1 : float
        Adam's and AdamW's first-moment decay rate.
    beta_2 : float
        Adam's and AdamW's second-moment decay rate.
    epsilon : float
        Adam's and AdamW's stability term.
    weight_decay : float
        AdamW's decoupled weight decay.

    Returns
    -------
    Optimizer
        A new :class:`SGD`, :class:`Adam` or :class:`AdamW`.
    """
    check_choice(name, "solver", SOLVERS)
    if name == "sgd":
        return SGD(momentum, nesterov)
    if name in ("momentum", "nesterov"):
        return SGD(momentum, name == "nesterov")
    if name == "adam":
        return Adam(beta_1, beta_2, epsilon)
    return AdamW(beta_1, beta_2, epsilon, weight_decay)


class Schedule:
    """A per-epoch step-size schedule; every kind works with every optimiser.

    Parameters
    ----------
    kind : str
        One of ``nncore.SCHEDULES``: ``'constant'``; ``'invscaling'`` (η0/(t+1)^power_t, t the
        samples seen, as scikit-learn); ``'adaptive'`` (÷5 after more than ``n_iter_no_change``
        epochs without improving the monitored loss by ``tol``; it asks to stop once the step
        is 1e-6 or less); ``'step'`` (×gamma every ``step_size`` epochs);
        ``'exponential'`` (×gamma per epoch); ``'cosine'`` (from η0 to ``min_learning_rate``
        over ``total_epochs``).
    learning_rate_init : float
        η0, the initial step size.
    power_t : float
        The exponent of ``'invscaling'``.
    n_iter_no_change : int
        ``'adaptive'``: epochs without improvement before the step is cut.
    tol : float
        ``'adaptive'``: the smallest improvement of the monitored loss that counts.
    step_size : int
        ``'step'``: epochs between two cuts.
    gamma : float
        The factor of ``'step'`` and ``'exponential'``.
    total_epochs : int
        ``'cosine'``: the epochs over which the step decays.
    min_learning_rate : float
        ``'cosine'``: the step size it ends at, in [0, learning_rate_init].
    warmup_epochs : int
        Epochs over which any kind ramps up linearly; 0 is none.
    """

    def __init__(self, kind: str = "constant", learning_rate_init: float = 1e-3, *,
                 power_t: float = _DEFAULTS["power_t"],
                 n_iter_no_change: int = _DEFAULTS["n_iter_no_change"],
                 tol: float = _DEFAULTS["tol"], step_size: int = _DEFAULTS["step_size"],
                 gamma: float = _DEFAULTS["gamma"], total_epochs: int = _DEFAULTS["total_epochs"],
                 min_learning_rate: float = _DEFAULTS["min_learning_rate"],
                 warmup_epochs: int = _DEFAULTS["warmup_epochs"]):
        check_choice(kind, "schedule", SCHEDULES)
        self._args: dict[str, Any] = dict(
            kind=kind,
            learning_rate_init=check_param(learning_rate_init, "learning_rate_init",
                                           bound="learning_rate"),
            power_t=check_param(power_t, "power_t"),
            n_iter_no_change=check_param(n_iter_no_change, "n_iter_no_change"),
            tol=check_param(tol, "tol"),
            step_size=check_param(step_size, "step_size"),
            gamma=check_param(gamma, "gamma"),
            total_epochs=check_param(total_epochs, "total_epochs"),
            min_learning_rate=check_param(min_learning_rate, "min_learning_rate"),
            warmup_epochs=check_param(warmup_epochs, "warmup_epochs"),
        )
        if self._args["min_learning_rate"] > self._args["learning_rate_init"]:
            raise ValueError(f"min_learning_rate must be in [0, learning_rate_init], got "
                             f"{min_learning_rate!r} > {learning_rate_init!r}")
        self._core = _core.Schedule(**self._args)
        self.gave_up = False

    kind = property(lambda self: self._core.kind)
    learning_rate = property(lambda self: self._core.learning_rate,
                             doc="the step size for the coming epoch")
    epoch = property(lambda self: self._core.epoch)
    no_improvement_count = property(lambda self: self._core.no_improvement_count)
    best_loss = property(lambda self: self._core.best_loss)

    @property
    def base_learning_rate(self) -> float:
        """η0 as the schedule currently holds it (adaptive and invscaling change it)."""
        return self._core.base_learning_rate

    def set_base_learning_rate(self, value: float) -> None:
        """Replace η0 from now on (what a learning-rate-on-plateau reducer does).

        Parameters
        ----------
        value : float
            The new base step size.
        """
        self.restore(base_learning_rate=check_param(value, "learning_rate"))

    def restore(self, *, epoch=None, base_learning_rate=None, no_improvement_count=None,
                best_loss=None) -> None:
        """Set any of the schedule's counters, the others unchanged (what a warm start carries).

        Parameters
        ----------
        epoch : int or None
            Epochs done.
        base_learning_rate : float or None
            η0 as the schedule holds it.
        no_improvement_count : int or None
            Epochs in a row without improvement.
        best_loss : float or None
            The best monitored loss so far.
        """
        c = self._core
        c.set_state(c.epoch if epoch is None else epoch,
                    c.base_learning_rate if base_learning_rate is None else base_learning_rate,
                    c.no_improvement_count if no_improvement_count is None
                    else no_improvement_count,
                    c.best_loss if best_loss is None else best_loss)

    def epoch_end(self, monitored_loss: float, samples_seen: float) -> bool:
        """Advance one epoch.

        Parameters
        ----------
        monitored_loss : float
            The epoch's loss that ``'adaptive'`` watches.
        samples_seen : float
            Samples seen so far, which ``'invscaling'`` reads.

        Returns
        -------
        bool
            True (and ``gave_up`` is set) when the adaptive schedule asks to stop because its
            step size cannot shrink any further.
        """
        stop = self._core.epoch_end(float(monitored_loss), float(samples_seen))
        self.gave_up = self.gave_up or stop
        return stop

    def to_document(self) -> dict:
        """Settings and state as plain data (JSON-ready); `Schedule.from_document` reverses it."""
        c = self._core
        return {"args": self._args,
                "state": (c.epoch, c.base_learning_rate, c.no_improvement_count, c.best_loss)}

    @classmethod
    def from_document(cls, document: dict) -> "Schedule":
        """The schedule that ``to_document`` described, settings and state.

        Parameters
        ----------
        document : dict
            What ``to_document`` returned.

        Returns
        -------
        Schedule
            The schedule.
        """
        schedule = cls(**document["args"])
        schedule._core.set_state(*document["state"])
        return schedule

    def __getstate__(self):
        return self.to_document()

    def __setstate__(self, saved):
        self.__init__(**saved["args"])
        self._core.set_state(*saved["state"])

    def __repr__(self) -> str:
        return "Schedule(" + ", ".join(f"{k}={v!r}" for k, v in self._args.items()) + ")"
