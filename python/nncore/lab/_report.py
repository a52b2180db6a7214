"""What the lab reports: the table of mean ± spread over seeds (`spread_table`), the result an
experiment returns (`LabResult`, whose `report()` is the printed text), the verdict on a claim,
and the figures of loss curves, one panel per data set."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def spread_table(frame, by: list[str], columns: list[str], digits: int = 3):
    """One row per group of `by`, each column as 'mean ± standard deviation over the group's
    runs' (the runs of different seeds), plus the number of seeds."""
    import pandas as pd

    rows = []
    for key, group in frame.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["seeds"] = len(group)
        for column in columns:
            values = group[column].astype(float).dropna()
            row[column] = (_mean_spread(values, digits) if len(values) else "—")
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_spread(values, digits) -> str:
    mean = float(values.mean())
    spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return f"{mean:.{digits}g} ± {spread:.2g}"



SPREAD_NOTE = "(each cell: mean ± standard deviation over the seeds' runs)"


@dataclass
class LabResult:
    """What an experiment returns: the runs (one row each), the summary table (mean ± spread
    over seeds), its conclusions, the files written and whether Ctrl-C cut it short."""

    experiment: str
    runs: object  # pandas DataFrame
    summary: object  # pandas DataFrame
    conclusions: list
    files: list
    interrupted: bool
    wall_seconds: float
    title: str = ""
    tables: dict = field(default_factory=dict)  # heading → DataFrame, printed after the summary

    def report(self) -> str:
        lines = [self.title or self.experiment, ""]
        if len(self.summary):
            lines += [self.summary.to_string(index=False),
                      SPREAD_NOTE, ""]
        for heading, table in self.tables.items():
            if len(table):
                lines += [heading, table.to_string(index=False), ""]
        if self.interrupted:
            lines.append(f"Interrupted: {len(self.runs)} finished run(s) kept.")
        lines += [f"- {c}" for c in self.conclusions]
        if self.files:
            lines += ["", "Wrote " + ", ".join(str(f) for f in self.files)]
        lines.append(f"Wall time {self.wall_seconds:.1f} s.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()

    def record(self) -> dict:
        """What report.json holds: the title, the summary table (its columns and its rows of
        cells as printed), the extra tables (heading → the same), the conclusions with their
        verdicts, and whether Ctrl-C cut the runs short."""
        def cells(frame, note=""):
            if not len(frame):
                return {"columns": [], "rows": [], "note": ""}
            return {"columns": [str(c) for c in frame.columns],
                    "rows": [[_cell(v) for v in row] for row in frame.itertuples(index=False)],
                    "note": note}

        return {"experiment": self.experiment, "title": self.title or self.experiment,
                "table": cells(self.summary, SPREAD_NOTE),
                "tables": {heading: cells(table) for heading, table in self.tables.items()},
                "conclusions": [str(c) for c in self.conclusions],
                "interrupted": bool(self.interrupted), "runs_finished": int(len(self.runs)),
                "wall_seconds": float(self.wall_seconds)}


def _cell(value) -> str:
    """A table cell as the printed table shows it (a missing value as '—')."""
    try:
        import pandas as pd

        if pd.isna(value):
            return "—"
    except (TypeError, ValueError):  # a list or an array: not one missing value
        pass
    return str(value)



def verdict(held: bool | None) -> str:
    return {True: "held", False: "did not hold", None: "could not be judged"}[held]



def panels(plt, names, draw_panel, *, width=4.5, height=3.4):
    """A figure of one panel per data set side by side: draw_panel(ax, name) fills each."""
    fig, axes = plt.subplots(1, len(names), figsize=(width * len(names), height), squeeze=False)
    for ax, name in zip(axes[0], names):
        draw_panel(ax, name)
        ax.set_title(name)
    fig.tight_layout()
    return fig


def curves_figure(lab, frame, runs, results, column, *, ylabel="training loss", log=True):
    """Mean training-loss curve over seeds per value of `column`, one panel per data set
    (diverged runs end where they diverged)."""
    names = list(frame["dataset"].unique())

    def draw_panel(ax, name):
        grouped: dict = {}
        for index, result in results.items():
            s = runs[index].settings
            if s["dataset"] == name:
                grouped.setdefault(s[column], []).append(result.arrays["curve"])
        firsts, lows = [], []
        for value, curves in grouped.items():
            length = min(len(c) for c in curves)
            if length == 0:
                continue
            mean = np.mean([c[:length] for c in curves], axis=0)
            ax.plot(np.arange(1, length + 1), mean, label=str(value))
            firsts.append(mean[0])
            lows.append(float(np.min(mean)))
        if log:
            ax.set_yscale("log")
        if firsts and np.all(np.isfinite(firsts)):
            # a run that blew up would flatten every other curve: cut the axis at 10× the
            # typical first-epoch loss
            ax.set_ylim(0.5 * min(lows) if log else None,
                        min(ax.get_ylim()[1], 10 * float(np.median(firsts))))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)

    def draw(plt):
        return panels(plt, names, draw_panel, width=4.8, height=3.5)

    return draw

