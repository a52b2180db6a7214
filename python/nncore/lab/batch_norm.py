"""batch-norm — batch normalisation helps: the same plain-SGD training with and without it, at
learning rates from ordinary to far too large for the plain network. A run that diverges is a
result (recorded with the epoch it diverged in), not a crash."""

from __future__ import annotations

from ._runner import compare, load_datasets, verdict

RATES = (0.01, 0.1, 1.0, 3.0)


def run(*, seeds: int = 3, quick: bool = False, out=None, n_jobs: int = 1, progress: bool = True,
        datasets=None, csv=None, target_column=None, epochs: int = 30, command=None):
    """With and without batch norm at each rate of RATES, plain SGD, batch 32."""
    epochs = 3 if quick else epochs
    rates = (0.1, 3.0) if quick else RATES
    chosen = load_datasets(datasets, csv, target_column,
                           default=["digits"] if quick else ["digits", "noisy-binary"])
    settings = {f"{'batch norm' if bn else 'plain'} lr={rate:g}":
                dict(epochs=epochs, learning_rate=rate, batch_size=32, batch_norm=bn)
                for bn in (False, True) for rate in rates}

    def conclude(frame):
        out = []
        for name, group in frame.groupby("dataset", sort=False):
            parts, diverged, wins = [], {}, 0
            for rate in rates:
                cells = {}
                for label in ("plain", "batch norm"):
                    g = group[group["setting"] == f"{label} lr={rate:g}"]
                    diverged[label, rate] = int(g["diverged"].sum())
                    cells[label] = g["train_loss"].where(~g["diverged"]).mean()
                bn_better = diverged["batch norm", rate] < diverged["plain", rate] or (
                    diverged["batch norm", rate] == diverged["plain", rate]
                    and cells["batch norm"] < cells["plain"])
                wins += bool(bn_better)
                parts.append(f"lr {rate:g}: plain "
                             + (f"diverged in {diverged['plain', rate]} of {len(g)}"
                                if diverged["plain", rate] else f"loss {cells['plain']:.3g}")
                             + ", batch norm "
                             + (f"diverged in {diverged['batch norm', rate]} of {len(g)}"
                                if diverged["batch norm", rate] else
                                f"loss {cells['batch norm']:.3g}"))
            out.append(f"{name}: {'; '.join(parts)}. Batch norm did better at {wins} of "
                       f"{len(rates)} rates. The lecture's claim (batch norm helps) "
                       f"{verdict(wins > len(rates) / 2)} on this data set.")
        return out

    return compare("batch-norm", title=f"batch-norm — with and without, plain SGD, batch 32, "
                   f"{epochs} epochs, learning rates {', '.join(f'{r:g}' for r in rates)}",
                   column="setting", settings=settings, datasets=chosen,
                   columns=["train_loss", "train_accuracy", "test_accuracy", "diverged"],
                   conclude=conclude, seeds=seeds, quick=quick, out=out, n_jobs=n_jobs,
                   progress=progress, command=command)
