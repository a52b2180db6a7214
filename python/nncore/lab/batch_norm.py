"""batch-norm — batch normalisation helps: the same plain-SGD training with and without it, at
learning rates from ordinary to far too large for the plain network. A run that fails is a
result, not a crash: it diverged (a non-finite loss, recorded with its epoch) or ended with a
training loss no lower than where it started — what a too-large rate does to a ReLU network,
whose units die or whose loss climbs without ever overflowing."""

from __future__ import annotations

from ._datasets import load_datasets
from ._lab import compare
from ._report import verdict

# One line for `nncore lab --help`.
DESCRIPTION = "with and without, up to rates where the plain network diverges"

RATES = (0.01, 0.1, 1.0, 3.0, 10.0)


def run(*, seeds: int = 3, quick: bool = False, out=None, n_jobs: int = 1, progress: bool = True,
        datasets=None, csv=None, target_column=None, epochs: int = 30, command=None,
        scheduler=None):
    """With and without batch norm at each rate of RATES, plain SGD, batch 32."""
    epochs = 3 if quick else epochs
    rates = (0.1, 10.0) if quick else RATES
    chosen = load_datasets(datasets, csv, target_column,
                           default=["digits"] if quick else ["digits", "noisy-binary"])
    settings = {f"{'batch norm' if bn else 'plain'} lr={rate:g}":
                dict(epochs=epochs, learning_rate=rate, batch_size=32, batch_norm=bn)
                for bn in (False, True) for rate in rates}

    def conclude(frame):
        out = []
        for name, group in frame.groupby("dataset", sort=False):
            parts, wins = [], 0
            for rate in rates:
                cells = {}
                for label in ("plain", "batch norm"):
                    g = group[group["setting"] == f"{label} lr={rate:g}"]
                    failed = int(g["failed"].sum())
                    loss = g["train_loss"].where(~g["failed"]).mean()
                    cells[label] = (failed, loss, len(g))
                (f_plain, l_plain, _), (f_bn, l_bn, _) = cells["plain"], cells["batch norm"]
                wins += bool(f_bn < f_plain or (f_bn == f_plain and l_bn < l_plain))
                parts.append(f"lr {rate:g}: " + ", ".join(
                    f"{label} " + (f"failed in {f} of {n}" if f else f"loss {loss:.3g}")
                    for label, (f, loss, n) in cells.items()))
            out.append(f"{name}: {'; '.join(parts)}. Batch norm did better at {wins} of "
                       f"{len(rates)} rates. The lecture's claim (batch norm helps) "
                       f"{verdict(wins > len(rates) / 2)} on this data set.")
        return out

    return compare("batch-norm", title=f"batch-norm — with and without, plain SGD, batch 32, "
                   f"{epochs} epochs, learning rates {', '.join(f'{r:g}' for r in rates)}",
                   column="setting", settings=settings, datasets=chosen,
                   columns=["train_loss", "train_accuracy", "test_accuracy", "failed", "diverged"],
                   conclude=conclude, seeds=seeds, quick=quick, out=out, n_jobs=n_jobs,
                   progress=progress, command=command, scheduler=scheduler)
