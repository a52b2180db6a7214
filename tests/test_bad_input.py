"""Each bad input raises the documented exception with a message naming the argument, before
any C++ runs, and leaves the parameters unchanged."""

import numpy as np
import pytest

import nncore
from nncore import _core

rng = np.random.default_rng(0)
X = rng.normal(size=(10, 3))
Y = rng.normal(size=(10, 1))
Y_BIN = rng.integers(0, 2, size=(10, 1)).astype(float)


def network(loss="squared_error", k=1):
    return nncore.Network([3, 4, k], "relu", loss, random_state=0)


def with_nan(a, value=np.nan):
    a = a.copy()
    a[2, 0] = value
    return a


# (id, loss, call, exception, message fragment)
CASES = [
    ("X-nan", "squared_error", lambda n: n.loss(with_nan(X), Y), ValueError, "X must be finite"),
    ("X-inf", "squared_error", lambda n: n.train_epoch(with_nan(X, np.inf), Y), ValueError,
     "X must be finite"),
    ("y-nan", "squared_error", lambda n: n.loss_and_grad(X, with_nan(Y)), ValueError,
     "y must be finite"),
    ("X-1d", "squared_error", lambda n: n.forward(X[:, 0]), ValueError, "X must be 2-D"),
    ("X-3d", "squared_error", lambda n: n.forward(X[None]), ValueError, "X must be 2-D"),
    ("X-width", "squared_error", lambda n: n.forward(np.ones((2, 4))), ValueError,
     "X has 4 features, but the network expects 3"),
    ("X-empty", "squared_error", lambda n: n.train_epoch(X[:0], Y[:0]), ValueError,
     "at least one sample"),
    ("X-no-features", "squared_error", lambda n: n.forward(np.ones((3, 0))), ValueError,
     "at least one feature"),
    ("X-complex", "squared_error", lambda n: n.forward(X + 1j), TypeError, "X must be real"),
    ("X-strings", "squared_error", lambda n: n.forward(np.array([["a", "b", "c"]])), TypeError,
     "X must contain numbers"),
    ("X-objects", "squared_error", lambda n: n.forward(np.array([[1, None, "x"]], dtype=object)),
     TypeError, "X must contain numbers"),
    ("X-None", "squared_error", lambda n: n.forward(None), TypeError, "X must be an array"),
    ("X-float32-overflow", "squared_error",
     lambda n: nncore.Network([3, 1], dtype="float32").forward(np.full((1, 3), 1e300)),
     ValueError, "too large for float32"),
    ("y-rows", "squared_error", lambda n: n.loss(X, Y[:5]), ValueError, "y has 5 rows"),
    ("y-width", "squared_error", lambda n: n.loss(X, np.ones((10, 2))), ValueError,
     "y must have shape (10, 1)"),
    ("y-logistic-range", "logistic", lambda n: n.loss(X, Y_BIN * 2), ValueError,
     "must lie in [0, 1]"),
    ("y-logistic-negative", "logistic", lambda n: n.train_epoch(X, -Y_BIN), ValueError,
     "must lie in [0, 1]"),
    ("y-poisson-negative", "poisson", lambda n: n.loss(X, -np.abs(Y) - 1), ValueError, ">= 0"),
    ("y-softmax-label-range", ("softmax", 3), lambda n: n.loss(X, np.arange(10)), ValueError,
     "class labels must lie in 0..2"),
    ("y-softmax-not-integer", ("softmax", 3), lambda n: n.loss(X, np.full(10, 0.5)), ValueError,
     "integer class labels"),
    ("y-softmax-rows", ("softmax", 3), lambda n: n.loss(X, np.ones((10, 3))), ValueError,
     "summing to 1"),
    ("weight-zero-sum", "squared_error", lambda n: n.loss(X, Y, np.zeros(10)), ValueError,
     "must not sum to zero"),
    ("weight-cancelling", "squared_error",
     lambda n: n.loss(X, Y, np.r_[np.ones(5), -np.ones(5)]), ValueError, "must not sum to zero"),
    ("weight-shape", "squared_error", lambda n: n.loss(X, Y, np.ones(3)), ValueError,
     "sample_weight must have shape (10,)"),
    ("weight-nan", "squared_error", lambda n: n.loss(X, Y, np.full(10, np.nan)), ValueError,
     "sample_weight must be finite"),
    ("lr-zero", "squared_error", lambda n: n.train_epoch(X, Y, learning_rate=0), ValueError,
     "learning_rate must be a finite number > 0"),
    ("lr-negative", "squared_error", lambda n: n.sgd_step(-1.0), ValueError, "learning_rate"),
    ("lr-nan", "squared_error", lambda n: n.train_epoch(X, Y, learning_rate=np.nan), ValueError,
     "learning_rate"),
    ("lr-string", "squared_error", lambda n: n.train_epoch(X, Y, learning_rate="0.1"), TypeError,
     "learning_rate"),
    ("batch-zero", "squared_error", lambda n: n.train_epoch(X, Y, batch_size=0), ValueError,
     "batch_size must be an integer >= 1"),
    ("batch-float", "squared_error", lambda n: n.train_epoch(X, Y, batch_size=2.5), TypeError,
     "batch_size"),
    ("order-range", "squared_error", lambda n: n.train_epoch(X, Y, order=[0, 10]), ValueError,
     "order must index rows 0..9"),
    ("order-float", "squared_error", lambda n: n.train_epoch(X, Y, order=[0.5]), TypeError,
     "order must hold integer"),
    ("shuffle-not-bool", "squared_error", lambda n: n.train_epoch(X, Y, shuffle="yes"),
     TypeError, "shuffle"),
    ("epochs-zero", "squared_error", lambda n: nncore.train(n, X, Y, epochs=0), ValueError,
     "epochs"),
    ("alpha-negative", "squared_error", lambda n: setattr(n, "alpha", -1), ValueError, "alpha"),
    ("reduction", "squared_error", lambda n: setattr(n, "loss_reduction", "max"), ValueError,
     "loss_reduction must be one of 'mean', 'sum'"),
    ("n-total", "squared_error",
     lambda n: (setattr(n, "loss_reduction", "sum"), n.loss(X, Y, n_total=0)), ValueError,
     "n_total"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_and_changes_nothing(case):
    _, loss, call, exc, fragment = case
    loss, k = loss if isinstance(loss, tuple) else (loss, 1)
    net = network(loss, k)
    params = net.params.copy()
    with pytest.raises(exc) as info:
        call(net)
    assert fragment in str(info.value)
    np.testing.assert_array_equal(net.params, params)


@pytest.mark.parametrize(
    "kwargs,exc,fragment",
    [
        (dict(layer_sizes=[3]), ValueError, "at least [n_features, n_outputs]"),
        (dict(layer_sizes=[3, 0, 1]), ValueError, "layer_sizes entries must be an integer >= 1"),
        (dict(layer_sizes=[3, -2, 1]), ValueError, "layer_sizes entries"),
        (dict(layer_sizes=[3, 2.5, 1]), TypeError, "layer_sizes entries"),
        (dict(layer_sizes=5), TypeError, "layer_sizes must be a sequence"),
        (dict(layer_sizes=[3, 1], activation="swish"), ValueError, "activation must be one of"),
        (dict(layer_sizes=[3, 1], loss="hinge"), ValueError, "loss must be one of"),
        (dict(layer_sizes=[3, 1], loss="softmax"), ValueError, "at least 2 outputs"),
        (dict(layer_sizes=[3, 1], alpha=-0.1), ValueError, "alpha must be a finite number >= 0"),
        (dict(layer_sizes=[3, 1], alpha=np.inf), ValueError, "alpha"),
        (dict(layer_sizes=[3, 1], dtype="float16"), ValueError, "dtype must be"),
        (dict(layer_sizes=[3, 1], dtype="int32"), ValueError, "dtype must be"),
        (dict(layer_sizes=[3, 1], loss_reduction="median"), ValueError, "loss_reduction"),
    ],
)
def test_bad_constructor_arguments(kwargs, exc, fragment):
    with pytest.raises(exc, match=None) as info:
        nncore.Network(**kwargs)
    assert fragment in str(info.value)


def test_core_refuses_silent_dtype_conversion():
    """The compiled entry points take arrays of exactly the network's dtype, C-contiguous."""
    core = _core.Network64([3, 2], "relu", "squared_error")
    with pytest.raises(TypeError):
        core.forward(X.astype(np.float32))
    with pytest.raises(TypeError):
        core.forward(np.asfortranarray(X))


def test_core_exceptions_reach_python_as_value_errors():
    with pytest.raises(ValueError, match="activation must be one of"):
        _core.Network64([3, 2], "swish", "squared_error")
    with pytest.raises(ValueError, match="every layer size must be >= 1"):
        _core.Network32([3, 0, 2], "relu", "squared_error")
    core = _core.Network64([3, 2], "relu", "squared_error")
    sgd = _core.Optimizer64("sgd", core.n_params)
    with pytest.raises(ValueError, match=r"X must have shape \(n, 3\)"):
        core.forward(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"order\[2\] = 99 is outside \[0, 10\)"):
        core.train_epoch(sgd, X, np.ones((10, 2)), None, np.array([0, 7, 99]), 2, 0.1, "mean", True, 0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        core.train_epoch(sgd, X, np.ones((10, 2)), None, None, 0, 0.1, "mean", True, 0)
    with pytest.raises(ValueError, match="loss_reduction must be one of"):
        core.train_epoch(sgd, X, np.ones((10, 2)), None, None, 2, 0.1, "avg", True, 0)
