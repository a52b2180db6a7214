"""Optimisers and schedules of the core against tests/reference.py (and scikit-learn's own
optimiser classes, which define momentum, Nesterov and Adam the same way)."""

import itertools

import numpy as np
import pytest
from conftest import DTYPES, RTOL, assert_close, make_problem

import nncore
import reference as ref

OPTIMIZERS = {
    "sgd": lambda: nncore.SGD(),
    "momentum": lambda: nncore.SGD(momentum=0.9),
    "nesterov": lambda: nncore.SGD(momentum=0.9, nesterov=True),
    "adam": lambda: nncore.Adam(),
    "adamw": lambda: nncore.AdamW(weight_decay=0.05),
}


class ReferenceOptimizer:
    """The reference update for one named optimiser, with its state."""

    def __init__(self, name, n):
        self.name, self.first, self.second, self.t = name, np.zeros(n), np.zeros(n), 0

    def step(self, theta, g, lr):
        if self.name == "sgd":
            return theta - lr * g
        if self.name in ("momentum", "nesterov"):
            theta, self.first = ref.momentum_step(theta, self.first, g, lr, 0.9,
                                                  self.name == "nesterov")
            return theta
        step = ref.adam_step if self.name == "adam" else ref.adamw_step
        kwargs = {} if self.name == "adam" else {"weight_decay": 0.05}
        theta, self.first, self.second, self.t = step(theta, self.first, self.second, self.t, g,
                                                      lr, **kwargs)
        return theta


@pytest.mark.parametrize("name,dtype", list(itertools.product(OPTIMIZERS, DTYPES)))
def test_single_steps_match_reference(name, dtype):
    sizes, X, Y, w = make_problem("logistic", 1)
    net = nncore.Network(sizes, "tanh", "logistic", alpha=0.1, dtype=dtype, random_state=0)
    opt = OPTIMIZERS[name]()
    reference = ReferenceOptimizer(name, net.n_params)
    theta = net.params.astype(np.float64)
    for step in range(4):
        _, grads = net.loss_and_grad(X, Y, w)
        theta = reference.step(theta, grads.astype(np.float64), 0.05)
        net.optimizer_step(opt, 0.05)
        assert_close(net.params, theta, RTOL[dtype], f"{name} step {step}")
    state = opt.state
    if name in ("momentum", "nesterov"):
        assert_close(state["velocity"], reference.first, RTOL[dtype])
    if name in ("adam", "adamw"):
        assert state["t"] == 4
        assert_close(state["m"], reference.first, RTOL[dtype])
        assert_close(state["v"], reference.second, RTOL[dtype])


@pytest.mark.parametrize("name,dtype", list(itertools.product(OPTIMIZERS, DTYPES)))
@pytest.mark.parametrize("loss", ["squared_error", "softmax"])
def test_epoch_trajectories_match_reference(name, dtype, loss):
    """Three epochs of minibatches (uneven last batch) with each optimiser, against the reference."""
    sizes, X, Y, w = make_problem(loss, 3, n=11)
    net = nncore.Network(sizes, "relu", loss, alpha=0.01, dtype=dtype, random_state=3)
    X, Y, w = X.astype(dtype), Y.astype(dtype), w.astype(dtype)
    opt = OPTIMIZERS[name]()
    reference = ReferenceOptimizer(name, net.n_params)
    Ws, bs = ref.unpack(net.params, sizes)
    rng = np.random.default_rng(0)
    for epoch in range(3):
        order = rng.permutation(len(X))
        net.train_epoch(X, Y, learning_rate=0.02, batch_size=4, order=order, sample_weight=w,
                        optimizer=opt)
        for start in range(0, len(X), 4):
            idx = order[start : start + 4]
            _, dWs, dbs = ref.gradients(Ws, bs, X[idx].astype(float), Y[idx].astype(float),
                                        "relu", loss, alpha=0.01, w=w[idx].astype(float))
            theta = reference.step(ref.pack(Ws, bs), ref.pack(dWs, dbs), 0.02)
            Ws, bs = ref.unpack(theta, sizes)
        assert_close(net.params, ref.pack(Ws, bs), RTOL[dtype], f"{name} epoch {epoch}")


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_matches_scikit_learn_sgd_optimizer(nesterov):
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

    sizes, X, Y, _ = make_problem("squared_error", 1)
    net = nncore.Network(sizes, "relu", random_state=0)
    sk_params = [p.copy() for p in net.coefs + net.intercepts]
    sk = SGDOptimizer(sk_params, learning_rate_init=0.1, momentum=0.8, nesterov=nesterov)
    opt = nncore.SGD(momentum=0.8, nesterov=nesterov)
    for _ in range(5):
        net.loss_and_grad(X, Y)
        sk.update_params(sk_params, [g.copy() for g in net.coef_grads + net.intercept_grads])
        net.optimizer_step(opt, 0.1)
    for mine, theirs in zip(net.coefs + net.intercepts, sk_params):
        np.testing.assert_allclose(mine, theirs, rtol=1e-13, atol=1e-15)


def test_adam_matches_scikit_learn_adam_optimizer():
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

    sizes, X, Y, _ = make_problem("softmax", 1)
    net = nncore.Network(sizes, "tanh", "softmax", random_state=0)
    sk_params = [p.copy() for p in net.coefs + net.intercepts]
    sk = AdamOptimizer(sk_params, learning_rate_init=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7)
    opt = nncore.Adam(beta_1=0.8, beta_2=0.99, epsilon=1e-7)
    for _ in range(5):
        net.loss_and_grad(X, Y)
        sk.update_params(sk_params, [g.copy() for g in net.coef_grads + net.intercept_grads])
        net.optimizer_step(opt, 0.01)
    for mine, theirs in zip(net.coefs + net.intercepts, sk_params):
        np.testing.assert_allclose(mine, theirs, rtol=1e-13, atol=1e-15)


def test_adamw_without_decay_differs_from_adam_only_by_where_epsilon_enters():
    """Our adam is scikit-learn's (ε added to √v), adamw is PyTorch's (ε added to √v̂)."""
    sizes, X, Y, _ = make_problem("squared_error", 1)
    start = nncore.Network(sizes, "relu", random_state=0)

    def one_step(optimizer):
        net = start.copy()
        net.loss_and_grad(X, Y)
        net.optimizer_step(optimizer, 0.1)
        return net.params

    adam, adamw = one_step(nncore.Adam(epsilon=1e-3)), one_step(
        nncore.AdamW(epsilon=1e-3, weight_decay=0.0))
    assert not np.allclose(adam, adamw, rtol=1e-9, atol=0)
    np.testing.assert_allclose(one_step(nncore.Adam(epsilon=1e-300)),
                               one_step(nncore.AdamW(epsilon=1e-300, weight_decay=0.0)),
                               rtol=1e-12)


def test_optimizer_state_is_writable_and_restores_a_run():
    sizes, X, Y, _ = make_problem("squared_error", 1, n=30)
    net = nncore.Network(sizes, "relu", random_state=0)
    opt = nncore.Adam()
    nncore.train(net, X, Y, epochs=2, batch_size=8, optimizer=opt, random_state=0)
    saved_params, saved_state = net.params.copy(), {k: np.copy(v) for k, v in opt.state.items()}
    nncore.train(net, X, Y, epochs=2, batch_size=8, optimizer=opt, random_state=1)
    expected = net.params.copy()

    net.params[:] = saved_params
    fresh = nncore.Adam()
    fresh.set_state(saved_state, net)
    nncore.train(net, X, Y, epochs=2, batch_size=8, optimizer=fresh, random_state=1)
    np.testing.assert_array_equal(net.params, expected)

    import pickle

    clone = pickle.loads(pickle.dumps(fresh))
    for key, value in fresh.state.items():
        np.testing.assert_array_equal(clone.state[key], value)


def test_optimizer_refuses_a_network_of_another_shape():
    opt = nncore.SGD(momentum=0.5)
    a = nncore.Network([3, 4, 1], random_state=0)
    a.loss_and_grad(np.ones((2, 3)), np.ones(2))
    a.optimizer_step(opt, 0.1)
    b = nncore.Network([3, 5, 1], random_state=0)
    with pytest.raises(ValueError, match="holds state for 21 parameters"):
        b.optimizer_step(opt, 0.1)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: nncore.SGD(momentum=1.5), "momentum must be in [0, 1]"),
        (lambda: nncore.SGD(momentum=-0.1), "momentum must be a finite number >= 0"),
        (lambda: nncore.SGD(nesterov="yes"), "nesterov must be True or False"),
        (lambda: nncore.Adam(beta_1=1.0), "beta_1 must be in [0, 1)"),
        (lambda: nncore.Adam(beta_2=-0.5), "beta_2 must be a finite number >= 0"),
        (lambda: nncore.Adam(epsilon=0.0), "epsilon must be a finite number > 0"),
        (lambda: nncore.AdamW(weight_decay=-1), "weight_decay must be a finite number >= 0"),
        (lambda: nncore.Schedule("linear"), "schedule must be one of"),
        (lambda: nncore.Schedule("step", step_size=0), "step_size must be an integer >= 1"),
        (lambda: nncore.Schedule("cosine", 0.1, min_learning_rate=0.5),
         "min_learning_rate must be in [0, learning_rate_init]"),
        (lambda: nncore.Schedule("exponential", gamma=1.5), "gamma must be in (0, 1]"),
        (lambda: nncore.Schedule(learning_rate_init=-1), "learning_rate_init must be"),
    ],
)
def test_bad_optimizer_and_schedule_arguments(make, message):
    with pytest.raises((ValueError, TypeError)) as info:
        make()
    assert message in str(info.value)


# ---- schedules -----------------------------------------------------------------------------
SCHEDULE_CASES = {
    "constant": {},
    "invscaling": {"power_t": 0.4},
    "adaptive": {"n_iter_no_change": 2, "tol": 1e-3},
    "step": {"step_size": 3, "gamma": 0.5},
    "exponential": {"gamma": 0.8},
    "cosine": {"total_epochs": 8, "min_learning_rate": 0.01},
    "cosine-warmup": {"total_epochs": 6, "warmup_epochs": 3},
    "step-warmup": {"step_size": 2, "gamma": 0.5, "warmup_epochs": 2},
}


@pytest.mark.parametrize("case", SCHEDULE_CASES)
def test_schedule_sequences_match_reference(case):
    kind = case.split("-")[0]
    kwargs = SCHEDULE_CASES[case]
    # A loss curve that improves, stalls, improves again: it exercises 'adaptive'.
    losses = [1.0, 0.8, 0.7, 0.7, 0.7, 0.7, 0.65, 0.65, 0.65, 0.65, 0.65, 0.6]
    schedule = nncore.Schedule(kind, 0.1, **kwargs)
    got = []
    for loss in losses:
        got.append(schedule.learning_rate)
        if schedule.epoch_end(loss, (len(got)) * 50):
            break
    expected = ref.schedule_learning_rates(kind, 0.1, losses, 50, **kwargs)
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    if kind == "adaptive":
        assert got[-1] < got[0]  # the stalls divided the step size


def test_invscaling_matches_scikit_learn():
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

    sk = SGDOptimizer([np.zeros(1)], learning_rate_init=0.3, lr_schedule="invscaling",
                      power_t=0.7)
    schedule = nncore.Schedule("invscaling", 0.3, power_t=0.7)
    for epoch in range(1, 6):
        assert schedule.learning_rate == pytest.approx(sk.learning_rate, rel=1e-15)
        sk.iteration_ends(epoch * 123)
        schedule.epoch_end(1.0, epoch * 123)


def test_adaptive_matches_scikit_learn_and_gives_up():
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

    sk = SGDOptimizer([np.zeros(1)], learning_rate_init=1e-4, lr_schedule="adaptive")
    schedule = nncore.Schedule("adaptive", 1e-4, n_iter_no_change=1, tol=0.1)
    count, best, stopped = 0, np.inf, False
    for epoch in range(20):  # a loss that never improves by tol
        assert schedule.learning_rate == pytest.approx(sk.learning_rate, rel=1e-15)
        count = count + 1 if 1.0 > best - 0.1 else 0
        best = min(best, 1.0)
        ours = schedule.epoch_end(1.0, 0)
        if count > 1:
            theirs = sk.trigger_stopping("", False)
            count = 0
            assert ours == theirs
            if theirs:
                stopped = True
                break
    assert stopped and schedule.learning_rate <= 1e-6


def test_train_uses_the_schedule_with_any_optimizer():
    sizes, X, Y, _ = make_problem("squared_error", 1, n=20)
    net = nncore.Network(sizes, "relu", random_state=0)
    schedule = nncore.Schedule("step", 0.01, step_size=1, gamma=0.5)
    seen = []
    nncore.train(net, X, Y, epochs=3, learning_rate=schedule, optimizer=nncore.Adam(),
                 callback=lambda epoch, loss: seen.append(schedule.learning_rate))
    assert seen == [0.005, 0.0025, 0.00125]


def test_schedule_pickles_with_its_state():
    import pickle

    schedule = nncore.Schedule("adaptive", 0.1, n_iter_no_change=1, tol=0.5)
    for loss in (1.0, 1.0, 1.0):
        schedule.epoch_end(loss, 10)
    clone = pickle.loads(pickle.dumps(schedule))
    assert (clone.learning_rate, clone.epoch, clone.no_improvement_count, clone.best_loss) == (
        schedule.learning_rate, schedule.epoch, schedule.no_improvement_count, schedule.best_loss)


@pytest.mark.parametrize("make", [lambda: nncore.SGD(0.9, True), lambda: nncore.Adam(),
                                  lambda: nncore.AdamW(weight_decay=0.1)])
def test_optimizer_document_round_trip_pickle_and_old_pickles(make):
    import pickle

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 3)), rng.normal(size=64)
    net = nncore.Network([3, 5, 1], random_state=0)
    optimizer = make()
    fresh_doc, fresh_arrays = optimizer.to_document()
    assert fresh_doc["dtype"] is None and fresh_arrays == {}
    net.train_epoch(X, y, batch_size=16, learning_rate=0.01, optimizer=optimizer, seed=0)
    doc, arrays = optimizer.to_document()
    assert doc["dtype"] == "float64" and doc["n_params"] == net.n_params
    copies = [type(optimizer).from_document(doc, arrays, net),
              nncore.optim.Optimizer.from_document(doc, arrays),
              pickle.loads(pickle.dumps(optimizer))]
    old = object.__new__(type(optimizer))  # a pickle's state as written before to_document
    old.__setstate__({"args": optimizer.config(), "dtype": "float64", "n_params": net.n_params,
                      "state": {k: np.array(v) for k, v in optimizer.state.items()}})
    for other in [*copies, old]:
        assert type(other) is type(optimizer)
        got, got_arrays = other.to_document()
        assert got == doc and sorted(got_arrays) == sorted(arrays)
        for key in arrays:
            np.testing.assert_array_equal(got_arrays[key], arrays[key])
    bad = {key: value[:-1] for key, value in arrays.items()}
    with pytest.raises(ValueError, match="has shape"):
        nncore.optim.Optimizer.from_document(doc, bad, net)
