"""The one epoch driver (nncore.run_epochs), the network's public state, and the single sources of
truth: the core's name tables and the one table of hyperparameter ranges."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

import nncore
from nncore import _core
from nncore._validation import BOUNDS
from nncore.training import RECORD_FIELDS, Validation

X, y = load_iris(return_X_y=True)
X = (X - X.mean(axis=0)) / X.std(axis=0)


def network(**kwargs):
    return nncore.Network([4, 8, 3], "tanh", "softmax", random_state=0, **kwargs)


def test_run_epochs_yields_one_complete_record_per_epoch():
    net = network()
    data = net.prepare(X, y)
    validation = Validation(net.prepare(X[::3], y[::3]), lambda: 0.5)
    records = list(nncore.run_epochs(net, data, nncore.Adam(), nncore.Schedule("constant", 0.01),
                                     batch_size=16, max_epochs=4, random_state=0,
                                     validation=validation))
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert all(tuple(r) == RECORD_FIELDS for r in records)
    last = records[-1]
    assert last["param_norm"] == pytest.approx(np.linalg.norm(net.params))
    assert last["val_loss"] == pytest.approx(net.mean_loss(X[::3], y[::3]))
    assert last["val_score"] == 0.5 and last["learning_rate"] == 0.01 and last["seconds"] > 0
    assert records[0]["loss"] > last["loss"]


def test_run_epochs_is_the_loop_train_and_fit_run():
    """The same data, optimiser, schedule and RandomState through run_epochs give exactly what
    nncore.train gives, and what an estimator's fit gives."""
    a, b = network(), network()
    losses = nncore.train(a, X, y, epochs=5, learning_rate=0.05, batch_size=20, random_state=3)
    records = nncore.run_epochs(b, b.prepare(X, y), None, nncore.Schedule("constant", 0.05),
                                batch_size=20, max_epochs=5, random_state=3, draw="seed")
    assert [r["loss"] for r in records] == losses
    np.testing.assert_array_equal(a.params, b.params)

    clf = nncore.MLPClassifier((8,), activation="tanh", solver="sgd", max_iter=6,
                               random_state=1, learning_rate_init=0.05, batch_size=30)
    with pytest.warns(Warning):  # max_iter reached
        clf.fit(X, y)
    rng = np.random.RandomState(1)
    net = nncore.Network([4, 8, 3], "tanh", "softmax", alpha=1e-4, random_state=rng)
    # The estimator reports scikit-learn's log-loss value (its clipped-probability formula).
    net.loss_clip_epsilon = np.finfo(np.float64).eps
    schedule = nncore.Schedule("constant", 0.05)
    curve = [r["loss"] for r in nncore.run_epochs(
        net, net.prepare(X, y), nncore.SGD(0.9, True), schedule, batch_size=30, max_epochs=6,
        random_state=rng)]
    assert curve == clf.loss_curve_
    np.testing.assert_array_equal(net.params, clf.network_.params)


def test_run_epochs_stops_when_an_adaptive_schedule_gives_up():
    net = network()
    schedule = nncore.Schedule("adaptive", 2e-6, n_iter_no_change=1, tol=10.0)
    records = list(nncore.run_epochs(net, net.prepare(X, y), None, schedule, batch_size=50,
                                     max_epochs=50, random_state=0))
    assert schedule.gave_up and len(records) < 50


@pytest.mark.parametrize("draw", ["scikit-learn", "seed"])
def test_run_epochs_max_steps_ends_inside_an_epoch(draw):
    """150 rows in batches of 20 are 8 steps an epoch: a cap of 19 steps is two epochs and the
    first 3 batches (60 rows) of a third, in the driver's own draw for that epoch."""
    capped, by_hand = network(), network()
    schedule = nncore.Schedule("constant", 0.05)
    records = list(nncore.run_epochs(capped, capped.prepare(X, y), None, schedule,
                                     batch_size=20, max_epochs=10, max_steps=19,
                                     random_state=4, draw=draw))
    assert [r["epoch"] for r in records] == [1, 2, 3]
    rng = np.random.RandomState(4)
    data = by_hand.prepare(X, y)
    index = np.arange(len(X))
    for epoch in range(3):
        if draw == "scikit-learn":
            rng.shuffle(index)
            order, seed = index, None
        else:
            order, seed = (rng.permutation(len(X)), None) if epoch == 2 else (None, rng)
        if epoch == 2:
            order = order[:60]
        by_hand.run_epoch(data, learning_rate=0.05, batch_size=20, shuffle=seed is not None,
                          seed=seed, order=order, continuing=epoch > 0)
    np.testing.assert_array_equal(capped.params, by_hand.params)
    with pytest.raises(ValueError, match="max_steps"):
        list(nncore.run_epochs(capped, data, None, schedule, batch_size=20, max_epochs=1,
                               max_steps=0))


def test_run_epochs_stop_below_undoes_the_step_that_measured_it():
    """Full-batch steps: the first step whose starting loss is below the line is undone, and its
    record (the last) holds the loss the network keeps; the record before it was above it."""
    net = network()
    data = net.prepare(X, y)
    optimizer = nncore.SGD(0.9, False)
    records = list(nncore.run_epochs(net, data, optimizer, nncore.Schedule("constant", 0.1),
                                     batch_size=None, max_epochs=500, stop_below=0.3,
                                     shuffle=False))
    assert len(records) < 500
    assert records[-1]["loss"] < 0.3 <= records[-2]["loss"]
    assert net.mean_loss(data) == pytest.approx(records[-1]["loss"], rel=1e-12)
    # the optimiser's velocity is back too: one more step from here repeats the undone one
    list(nncore.run_epochs(net, data, optimizer, nncore.Schedule("constant", 0.1),
                           batch_size=None, max_epochs=1, shuffle=False))
    straight = network()
    list(nncore.run_epochs(straight, data, nncore.SGD(0.9, False),
                           nncore.Schedule("constant", 0.1), batch_size=None,
                           max_epochs=len(records), shuffle=False))
    np.testing.assert_array_equal(net.params, straight.params)
    with pytest.raises(ValueError, match="full-batch"):
        list(nncore.run_epochs(net, data, None, nncore.Schedule("constant", 0.1),
                               batch_size=10, max_epochs=1, stop_below=0.3))


def test_run_epochs_after_divergence_nan_goes_on_with_the_records_of_nan_weights():
    def regressor():
        return nncore.Network([4, 8, 1], "relu", "squared_error", random_state=0)

    net = regressor()
    data = net.prepare(X, y * 100.0)
    scores = []
    validation = Validation(net.prepare(X[::3], y[::3]),
                            lambda: scores.append(net.params.copy()) or 0.25)
    with pytest.raises(nncore.DivergenceError):
        list(nncore.run_epochs(regressor(), data, None, nncore.Schedule("constant", 1e3),
                               batch_size=30, max_epochs=6, random_state=0))
    records = list(nncore.run_epochs(net, data, None, nncore.Schedule("constant", 1e3),
                                     batch_size=30, max_epochs=6, random_state=0,
                                     validation=validation, after_divergence="nan"))
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5, 6]
    nan_records = [r for r in records if np.isnan(r["loss"])]
    assert nan_records and records[-1] is nan_records[-1]
    for r in nan_records:
        assert np.isnan(r["val_loss"]) and np.isnan(r["param_norm"]) and r["val_score"] == 0.25
    assert np.isnan(scores[-1]).all()  # the score was taken of non-finite weights
    assert np.isfinite(net.params).all()  # while the network keeps its last finite state


def test_network_state_round_trips_and_checks_shapes():
    net = network(batch_norm=True)
    nncore.train(net, X, y, epochs=2, batch_size=30, random_state=0)
    state = net.state()
    assert not np.shares_memory(state["params"], net.params)
    other = network(batch_norm=True)
    other.load_state(state)
    np.testing.assert_array_equal(other.forward(X), net.forward(X))
    np.testing.assert_array_equal(other.running_means[0], net.running_means[0])
    with pytest.raises(ValueError, match="params has shape"):
        network().load_state({"params": state["params"][:-1], "batchnorm_state": None})
    with pytest.raises(ValueError, match="no batch norm"):
        network().load_state({**state, "params": network().params})
    with pytest.raises(ValueError, match="non-finite"):
        other.load_state({**state, "params": np.full_like(state["params"], np.nan)})
    np.testing.assert_array_equal(other.forward(X), net.forward(X))  # a refused state wrote nothing


def test_fitted_estimator_exposes_its_network_read_only():
    clf = nncore.MLPClassifier((5,), solver="lbfgs", max_iter=30, random_state=0)
    with pytest.raises(AttributeError):
        clf.network_
    with pytest.warns(Warning):
        clf.fit(X, y)
    assert isinstance(clf.network_, nncore.Network)
    assert np.shares_memory(clf.network_.coefs[0], clf.coefs_[0])
    with pytest.raises(AttributeError):
        clf.network_ = network()
    with pytest.raises(AttributeError, match="no step-size schedule"):
        clf.schedule_


def test_estimator_mean_loss_is_the_training_loss_unit():
    reg = nncore.MLPRegressor(hidden_layer_sizes=(6,), alpha=0.0, solver="sgd", max_iter=3,
                              random_state=0, batch_size=150, shuffle=False)
    with pytest.warns(Warning):
        reg.fit(X[:, :3], X[:, 3])
    half_mse = 0.5 * np.mean((reg.predict(X[:, :3]) - X[:, 3]) ** 2)
    assert reg.mean_loss(X[:, :3], X[:, 3]) == pytest.approx(half_mse, rel=1e-12)


def test_name_tables_come_from_the_core():
    """Every place that takes a name accepts exactly the core's table: a list kept by hand in
    Python (a choice, a constraint, a check) would fail here when the core gains a name."""
    from nncore.cli import build_parser

    def choices(parser, command, flag):
        sub = next(a for a in parser._actions if a.dest == "command").choices[command]
        return tuple(next(a for a in sub._actions if flag in a.option_strings).choices)

    parser = build_parser()
    for command in ("train", "sweep"):
        assert choices(parser, command, "--activation") == _core.activations
        assert choices(parser, command, "--schedule") == _core.schedules
    constraints = nncore.MLPClassifier._parameter_constraints
    assert constraints["activation"][0].options == set(_core.activations)
    for name in _core.activations:
        nncore.Network([2, 3, 1], name)
    for name in _core.losses:
        nncore.Network([2, 3, 2], loss=name)
    with pytest.raises(ValueError) as error:
        nncore.Network([2, 3, 1], "swish")
    assert all(repr(name) in str(error.value) for name in _core.activations)
    for name in _core.schedules:
        nncore.Schedule(name, learning_rate_init=0.1)
    for kind in _core.param_kinds:
        assert kind in {k for k, *_ in network(batch_norm=True)._core.layout()}


@pytest.mark.parametrize("name,bad", [("gamma", 1.5), ("momentum", 1.01), ("beta_2", 1.0),
                                      ("step_size", 0), ("warmup_epochs", -1),
                                      ("power_t", -0.5), ("tol", -1.0), ("epsilon", 0.0)])
def test_one_range_table_serves_every_layer(name, bad, monkeypatch):
    """A value outside BOUNDS is refused alike by the Python objects and the estimators (whose
    constraint table is built from it), in Python, before any of the core is built: the range
    is checked there only (the core keeps what its arithmetic needs, not these ranges)."""
    with pytest.raises(ValueError, match=name):
        BOUNDS[name].check(bad, name)

    def core_reached(*args, **kwargs):
        raise AssertionError(f"{name}={bad!r} reached the core")

    from nncore import optim

    for core_class in ("Schedule", "Optimizer32", "Optimizer64"):
        monkeypatch.setattr(optim._core, core_class, core_reached)
    schedule_args = {"gamma": {"kind": "step"}, "step_size": {"kind": "step"}}.get(name, {})
    make = {"momentum": lambda: nncore.SGD(momentum=bad),
            "beta_2": lambda: nncore.Adam(beta_2=bad),
            "epsilon": lambda: nncore.Adam(epsilon=bad)}.get(
        name, lambda: nncore.Schedule(**schedule_args, **{name: bad}))
    with pytest.raises(ValueError, match=name):
        make()
    monkeypatch.undo()
    estimator_name = {"gamma": "lr_decay", "step_size": "lr_step_size"}.get(name, name)
    with pytest.raises(ValueError, match=estimator_name):
        nncore.MLPRegressor(**{estimator_name: bad}).fit(X[:20], y[:20])


def test_version_is_written_once():
    from importlib.metadata import version

    from nncore._version import __version__

    assert nncore.__version__ == __version__ == version("nncore")
