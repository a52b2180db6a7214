"""Learning-rate grids: every arm of an experiment (a schedule, an optimiser, a network with or
without batch norm, a version of the inputs) trained at each rate of a grid and judged at its own
best rate, so that a verdict compares the methods rather than one rate that happens to suit one
of them. Here: the runs of such a grid (`grid_runs`), the choice of each arm's best rate
(`best_rates`, by default by the final training loss), its rows (`at_best_rates`), the rates at
which an arm trains (`rate_ranges`), the table of each arm at its best rate and the figure of
final loss and test accuracy against the rate, one line per arm (`rate_figure`)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ._execute import Run
from ._report import panels, spread_table
from ._run import train_run


def grid_runs(datasets, seeds: int, column: str, settings: dict, rates, *, function=None,
              fixed: dict | None = None) -> list[Run]:
    """One run per data set × seed × setting × learning rate. settings maps each value of
    `column` (an arm) to the arguments of train_run (or of `function`) other than the rate;
    `fixed` adds constant columns to every run's settings (such as a regime's name), placed
    before the arm's column."""
    function = function or train_run
    runs = []
    for d in datasets:
        for seed in range(seeds):
            for value, arguments in settings.items():
                for rate in rates:
                    runs.append(Run({"dataset": d.name, "seed": seed, **(fixed or {}),
                                     column: value, "learning_rate": rate}, function,
                                    dict(arguments, learning_rate=rate, seed=seed),
                                    d.n_train * arguments.get("epochs", 1)))
    return runs


def by_final_loss(group) -> tuple:
    """How one rate's runs rank (lower is better): the fewest failed runs first (diverged, or
    no lower than where they started), then the lowest mean final training loss."""
    failed = int(group["failed"].sum()) if "failed" in group else 0
    loss = float(group["train_loss"].mean())
    return failed, loss if math.isfinite(loss) else math.inf


def _key(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def best_rates(frame, arm: list[str], score: Callable = by_final_loss) -> dict:
    """Each arm's best learning rate: {tuple of the `arm` columns' values: rate}, the rate whose
    runs have the lowest score(runs) (ties: the smaller rate)."""
    best = {}
    for key, group in frame.groupby(list(arm), sort=False):
        ranked = sorted(group.groupby("learning_rate"), key=lambda item: (score(item[1]), item[0]))
        best[_key(key)] = ranked[0][0]
    return best


def _arm_keys(frame, arm: list[str]) -> list[tuple]:
    return list(zip(*(frame[c] for c in arm)))


def at_best_rates(frame, arm: list[str], best: dict):
    """The rows of `frame` run at their arm's best rate (from best_rates)."""
    chosen = [best.get(key) == rate for key, rate in
              zip(_arm_keys(frame, arm), frame["learning_rate"])]
    return frame[np.array(chosen, dtype=bool)]


def trains(group) -> bool:
    """Whether every run of one rate trained: none failed (diverged, or ended no lower than it
    began) and each ended below half its initial training loss — a ReLU net at too large a rate
    can sit just under its start without ever diverging."""
    return bool(not group["failed"].any()
                and (group["train_loss"] <= 0.5 * group["initial_loss"]).all())


def rate_ranges(frame, arm: list[str], ok: Callable = trains) -> dict:
    """Per arm, the sorted rates of the grid at which ok(runs at that rate) holds."""
    ranges = {}
    for key, group in frame.groupby(list(arm), sort=False):
        ranges[_key(key)] = sorted(rate for rate, runs in group.groupby("learning_rate")
                                   if ok(runs))
    return ranges


def describe_range(rates: list, grid) -> str:
    """'0.01 to 3 (5 of 7 rates)', 'only 0.1 (1 of 7 rates)', '0.01 to 0.1 and 3 (4 of 7
    rates)' when the rates leave a gap in the grid, or 'none of the 7 rates'."""
    grid = sorted(set(grid))
    if not rates:
        return f"none of the {len(grid)} rates"
    spans: list[list] = []  # runs of rates that are neighbours in the grid
    for rate in sorted(rates):
        if spans and grid.index(rate) == grid.index(spans[-1][-1]) + 1:
            spans[-1].append(rate)
        else:
            spans.append([rate])
    text = " and ".join(f"{s[0]:g}" if len(s) == 1 else f"{s[0]:g} to {s[-1]:g}" for s in spans)
    if len(rates) == 1:
        text = f"only {text}"
    return f"{text} ({len(rates)} of {len(grid)} rates)"


def best_rate_table(frame, arm: list[str], best: dict, columns: list[str]):
    """The summary table: each arm at its best rate (column best_lr), mean ± spread over
    seeds of `columns`."""
    chosen = at_best_rates(frame, arm, best)
    table = spread_table(chosen, list(arm), list(columns))
    table.insert(len(arm), "best_lr", [best[_key(tuple(row))] for row in
                                       table[list(arm)].itertuples(index=False)])
    return table


def _rate_label(rate: float) -> str:
    # '3e-4' rather than '0.0003': nine rates over four decades fit under one panel
    return f"{rate:g}" if rate >= 0.01 else f"{rate:.0e}".replace("e-0", "e-")


def _colours(frame, line: str) -> dict:
    # one colour per arm in every panel and figure
    return {value: f"C{i}" for i, value in enumerate(frame[line].unique())}


def rate_figure(frame, arm: list[str], best: dict, *, accuracy: bool = True):
    """draw(plt): final training loss (and test accuracy) against the learning rate, mean over
    seeds, one line per value of the last `arm` column and one panel per value of the others;
    each arm's best rate is ringed. A rate at which a seed failed is drawn hollow."""
    panel_columns, line = list(arm[:-1]), arm[-1]
    names = list(dict.fromkeys(_arm_keys(frame, panel_columns)))
    colours = _colours(frame, line)
    rows = [("train_loss", "final training loss", True)]
    if accuracy:
        rows.append(("test_accuracy", "test accuracy", False))

    def draw_panel(ax, key, column, label, log):
        mask = np.array([k == key for k in _arm_keys(frame, panel_columns)], dtype=bool)
        for value, group in frame[mask].groupby(line, sort=False):
            stats = group.groupby("learning_rate").agg(mean=(column, "mean"),
                                                       failed=("failed", "any"))
            colour = colours[value]
            ax.plot(stats.index, stats["mean"], marker="o", markersize=4, color=colour,
                    label=str(value))
            failed = stats[stats["failed"]]
            ax.plot(failed.index, failed["mean"], "o", markersize=6, color=colour,
                    markerfacecolor="white")
            rate = best.get((*key, value))
            if rate in stats.index:
                ax.plot([rate], [stats.loc[rate, "mean"]], "o", markersize=11, fillstyle="none",
                        color=colour)
        ax.set_xscale("log")
        grid = sorted(frame[mask]["learning_rate"].unique())
        ax.set_xticks(grid, [_rate_label(r) for r in grid], minor=False)
        ax.set_xticks([], minor=True)
        if log:
            ax.set_yscale("log")
            initial = frame[mask]["initial_loss"].median() if "initial_loss" in frame else None
            if initial is not None and math.isfinite(initial):
                # a diverged run's loss would flatten every other line: cut at 10× the start
                ax.set_ylim(top=min(ax.get_ylim()[1], 10 * initial))
        ax.set_xlabel("learning rate")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)

    def draw(plt):
        fig, axes = plt.subplots(len(rows), len(names), figsize=(4.6 * len(names),
                                                                 3.3 * len(rows)),
                                 squeeze=False)
        for j, key in enumerate(names):
            for i, (column, label, log) in enumerate(rows):
                draw_panel(axes[i][j], key, column, label, log)
            axes[0][j].set_title(" · ".join(map(str, key)))
        fig.tight_layout()
        return fig

    return draw


def best_rate_curves(frame, runs, results, arm: list[str], best: dict, *, extra=None):
    """draw(plt): the mean training-loss curve of each arm at its best rate, one panel per
    value of the arm columns but the last; `extra` maps further panel titles to
    (panel key, rate): every arm of that panel at that one shared rate."""
    panel_columns, line = list(arm[:-1]), arm[-1]
    wanted = {}  # panel title → {(panel key, line value): rate}
    for key, rate in best.items():
        wanted.setdefault(" · ".join(map(str, key[:-1])) + " · best rates", {})[key] = rate
    colours = _colours(frame, line)
    for title, (panel_key, rate) in (extra or {}).items():
        wanted[title] = {(*panel_key, value): rate for value in frame[line].unique()}

    def draw_panel(ax, title):
        grouped: dict = {}
        for index, result in results.items():
            s = runs[index].settings
            key = (*(s[c] for c in panel_columns), s[line])
            if wanted[title].get(key) == s["learning_rate"]:
                grouped.setdefault(key, []).append(result.arrays["curve"])
        lows = []
        order = list(colours)
        for key in sorted(grouped, key=lambda k: order.index(k[-1])):
            curves = grouped[key]
            length = min(len(c) for c in curves)
            if length == 0:
                continue
            mean = np.mean([c[:length] for c in curves], axis=0)
            ax.plot(np.arange(1, length + 1), mean, color=colours[key[-1]],
                    label=f"{key[-1]} (lr {wanted[title][key]:g})")
            lows.append(float(np.min(mean)))
        ax.set_yscale("log")
        if lows and np.all(np.isfinite(lows)):
            ax.set_ylim(bottom=0.5 * min(lows))
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=7)

    def draw(plt):
        return panels(plt, list(wanted), draw_panel, width=4.8, height=3.5)

    return draw


def contest(challenger, incumbent, *, lower_is_better: bool = True, log: bool = False) -> str:
    """'better', 'worse' or 'tie': whether the challenger's runs beat the incumbent's by more than
    the spread over seeds (the larger of the two standard deviations), which with a handful of
    seeds keeps a seed's luck from deciding a verdict. log=True compares log10 of the values
    (losses, which spread over decades: there a factor, not a difference, is what counts)."""
    a, b = np.asarray(challenger, dtype=float), np.asarray(incumbent, dtype=float)
    if log:
        a, b = np.log10(a), np.log10(b)
    spread = max(float(a.std(ddof=1)) if len(a) > 1 else 0.0,
                 float(b.std(ddof=1)) if len(b) > 1 else 0.0)
    gain = (b.mean() - a.mean()) if lower_is_better else (a.mean() - b.mean())
    if not math.isfinite(gain):
        return "tie"
    return "better" if gain > spread else "worse" if -gain > spread else "tie"
