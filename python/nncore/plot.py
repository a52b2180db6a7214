"""Plots of what nncore measures (matplotlib, an optional extra: ``pip install "nncore[plot]"``):
a fitted estimator's training curves, the Hessian's spectral density, loss-landscape slices, a
sweep's validation scores.
Each function draws on `ax` (a new figure when None) and returns the Axes."""

from __future__ import annotations

import numpy as np


def _axes(ax):
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("nncore.plot needs matplotlib: pip install matplotlib") from exc
    return plt.subplots()[1]


def _history(estimator) -> list:
    history = getattr(estimator, "history_", None)
    if history is None and hasattr(estimator, "loss_curve_"):
        raise TypeError(
            f"nncore.plot draws the history_ of nncore's MLPClassifier/MLPRegressor; this "
            f"{type(estimator).__module__}.{type(estimator).__name__} has none (scikit-learn's "
            f"MLP keeps only loss_curve_: plot that list directly)")
    if not history:
        raise ValueError("the estimator has no training history: fit it with solver 'sgd', "
                         "'momentum', 'adam' or 'adamw' first")
    return history


def _series(history, key):
    values = [np.nan if r[key] is None else r[key] for r in history]
    return np.arange(1, len(history) + 1), np.asarray(values, dtype=float)


def loss_curves(estimator, ax=None, *, log: bool = True):
    """Training loss per epoch, and validation loss where a validation split existed.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        A fitted estimator (its ``history_``).
    ax : matplotlib.axes.Axes or None
        Where to draw; None draws on a new figure.
    log : bool
        Whether to use a log scale for the loss (when every loss is positive).

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    history = _history(estimator)
    ax = _axes(ax)
    epochs, loss = _series(history, "loss")
    ax.plot(epochs, loss, label="training loss")
    _, val = _series(history, "val_loss")
    if np.isfinite(val).any():
        ax.plot(epochs, val, label="validation loss")
    if log and np.all(loss[np.isfinite(loss)] > 0):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    return ax


def validation_scores(estimator, ax=None):
    """Validation score (accuracy or R²) per epoch.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        A fitted estimator (its ``history_``).
    ax : matplotlib.axes.Axes or None
        Where to draw; None draws on a new figure.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    history = _history(estimator)
    epochs, scores = _series(history, "val_score")
    if not np.isfinite(scores).any():
        raise ValueError("no validation scores were recorded: fit with early_stopping=True or "
                         "a callback that needs a validation split")
    ax = _axes(ax)
    ax.plot(epochs, scores, color="C2")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation score")
    return ax


def learning_rate(estimator, ax=None, *, log: bool = True):
    """Step size per epoch.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        A fitted estimator (its ``history_``).
    ax : matplotlib.axes.Axes or None
        Where to draw; None draws on a new figure.
    log : bool
        Whether to use a log scale for the step size.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    epochs, rates = _series(_history(estimator), "learning_rate")
    ax = _axes(ax)
    ax.plot(epochs, rates, color="C3")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    return ax


def training_summary(estimator, figure=None):
    """One figure: losses, validation score (when recorded) and learning rate, side by side.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        A fitted estimator (its ``history_``).
    figure : matplotlib.figure.Figure or None
        Where to draw; None makes a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    history = _history(estimator)
    if figure is None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(12, 3.6), layout="constrained")
    has_scores = any(r["val_score"] is not None for r in history)
    axes = figure.subplots(1, 3 if has_scores else 2)
    loss_curves(estimator, axes[0])
    if has_scores:
        validation_scores(estimator, axes[1])
    learning_rate(estimator, axes[-1])
    figure.suptitle(f"{type(estimator).__name__}: {len(history)} epochs")
    return figure


def spectral_density(result, ax=None, *, log: bool = True):
    """The eigenvalue density from :func:`nncore.curvature.spectral_density`.

    Parameters
    ----------
    result : nncore.curvature.SpectralDensity
        The density.
    ax : matplotlib.axes.Axes or None
        Where to draw; None draws on a new figure.
    log : bool
        Whether to use a log scale for the density (the bulk near zero and the few large
        outliers are orders of magnitude apart).

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    ax = _axes(ax)
    density = np.maximum(result.density, 1e-12) if log else result.density
    ax.plot(result.grid, density, color="C0")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    return ax


def landscape(result, ax=None, *, label: str = "α", levels: int = 20):
    """A slice from :mod:`nncore.landscape`.

    A 1-D slice is drawn as curves of the training (and test) loss, a 2-D one as contour lines
    of the training loss.

    Parameters
    ----------
    result : nncore.landscape.Slice
        The slice.
    ax : matplotlib.axes.Axes or None
        Where to draw; None draws on a new figure.
    label : str
        The horizontal axis's label of a 1-D slice.
    levels : int
        The number of contour levels of a 2-D slice.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    ax = _axes(ax)
    if result.betas is None:
        ax.plot(result.alphas, result.train_losses, marker=".", label="training objective")
        if result.test_losses is not None:
            ax.plot(result.alphas, result.test_losses, marker=".", label="test loss")
        ax.set_xlabel(label)
        ax.set_ylabel("loss")
        ax.legend()
        return ax
    contours = ax.contour(result.alphas, result.betas, result.train_losses.T, levels=levels)
    ax.clabel(contours, fontsize=7)
    ax.plot([0], [0], marker="*", color="k")
    ax.set_xlabel("α")
    ax.set_ylabel("β")
    return ax


def sweep_heatmap(table, x: str, y: str, *, score: str = "val_score", ax=None):
    """A heat map of a sweep's mean score over seeds, on the grid of two swept parameters.

    Each cell shows the best over any other swept parameter, annotated.

    Parameters
    ----------
    table : pandas.DataFrame
        What :func:`nncore.sweep` returned.
    x : str
        The swept parameter on the horizontal axis.
    y : str
        The swept parameter on the vertical axis.
    score : str
        The column shown.
    ax : matplotlib.axes.Axes or None
        Where to draw; None draws on a new figure.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    from .sweeps import best_settings

    ax = _axes(ax)
    summary = best_settings(table, score=score)
    grid = summary.pivot_table(index=y, columns=x, values=f"{score}_mean", aggfunc="max")
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(grid.shape[1]), [f"{v:g}" if isinstance(v, float) else str(v)
                                         for v in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f"{v:g}" if isinstance(v, float) else str(v)
                                         for v in grid.index])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="white", fontsize=8)
    ax.figure.colorbar(image, ax=ax, label=f"{score} (mean over seeds)")
    return ax
