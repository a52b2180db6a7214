"""nncore.plot draws what history_ holds."""

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler

import nncore

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from nncore import plot  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
X, y = load_wine(return_X_y=True)
X = StandardScaler().fit_transform(X)


def fitted(**kwargs):
    return nncore.MLPClassifier(hidden_layer_sizes=(8,), max_iter=12, random_state=0,
                                **kwargs).fit(X, y)


def test_loss_curves_plot_training_and_validation_loss():
    import matplotlib.pyplot as plt

    est = fitted(early_stopping=True, n_iter_no_change=100)
    ax = plot.loss_curves(est)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["training loss", "validation loss"]
    np.testing.assert_allclose(lines[0].get_ydata(), est.loss_curve_)
    assert ax.get_yscale() == "log"
    plt.close(ax.figure)


def test_learning_rate_and_scores(tmp_path):
    import matplotlib.pyplot as plt

    est = fitted(schedule="exponential", lr_decay=0.8, early_stopping=True,
                 n_iter_no_change=100)
    ax = plot.learning_rate(est)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), 1e-3 * 0.8 ** np.arange(12))
    ax2 = plot.validation_scores(est)
    np.testing.assert_allclose(ax2.get_lines()[0].get_ydata(), est.validation_scores_)
    figure = plot.training_summary(est)
    assert len(figure.axes) == 3
    figure.savefig(tmp_path / "summary.png")
    assert (tmp_path / "summary.png").stat().st_size > 5000
    plt.close("all")


def test_plots_explain_what_is_missing():
    with pytest.raises(ValueError, match="no training history"):
        plot.loss_curves(fitted(solver="lbfgs"))
    with pytest.raises(ValueError, match="no validation scores"):
        plot.validation_scores(fitted())
    assert len(plot.training_summary(fitted()).axes) == 2


def test_spectral_density_and_landscape_plots():
    from nncore import curvature, landscape

    est = fitted()
    density = curvature.spectral_density(est, X, y, steps=20, random_state=0)
    ax = plot.spectral_density(density)
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), density.grid)
    d = landscape.random_direction(est, random_state=0)
    line = landscape.slice_1d(est, X, y, d, np.linspace(-1, 1, 5), X_test=X, y_test=y)
    ax = plot.landscape(line)
    assert [l.get_label() for l in ax.get_lines()] == ["training objective", "test loss"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), line.train_losses)
    grid = landscape.slice_2d(est, X, y, d, landscape.random_direction(est, random_state=1),
                              np.linspace(-1, 1, 4), np.linspace(-1, 1, 3))
    ax = plot.landscape(grid)
    assert ax.get_xlabel() == "α" and ax.get_ylabel() == "β"


def test_plot_on_a_scikit_learn_estimator_says_what_it_draws():
    from sklearn.neural_network import MLPClassifier

    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y)
    with pytest.raises(TypeError, match="history_ of nncore's MLPClassifier"):
        plot.loss_curves(est)
