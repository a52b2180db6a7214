"""scaling — standardised inputs train faster than raw ones. On breast-cancer, whose features
span six orders of magnitude (areas in the thousands, smoothness around 0.1), plain SGD is run
on the raw and on the standardised features over a grid of learning rates (raw inputs need far
smaller ones); each input variant is judged at its best rate: epochs and seconds to a training
loss target, final test accuracy. A rate too large for its inputs diverges; that is a result."""

from __future__ import annotations

import math

from .._docs import with_shared_docs
from . import _rates
from ._datasets import Dataset, load_datasets
from ._lab import EXPERIMENT_PARAMETERS, compare
from ._report import verdict
from ._run import train_run

# The claim, in the lecture's words (the report page quotes it).
CLAIM = ("Standardised inputs train faster than raw ones: on features that span orders of "
         "magnitude, plain SGD needs a far smaller learning rate on the raw inputs and still "
         "reaches a training-loss target later, if at all. LeCun et al. 1998, Efficient "
         "BackProp, https://doi.org/10.1007/3-540-49430-8_2.")

# One line for `nncore lab --help`.
DESCRIPTION = "raw vs standardised inputs: epochs and seconds to a loss target"

RATES = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def fit(dataset, *, inputs, **arguments):
    """train_run on the raw or the standardised version of the data set."""
    result = train_run(dataset.variants[inputs], **arguments)
    result.row.update(inputs=inputs, learning_rate=arguments["learning_rate"])
    return result


class _Variants(Dataset):
    """A data set carrying both versions of its inputs (same split)."""


def _with_variants(raw: Dataset, standardised: Dataset) -> Dataset:
    pair = _Variants(*(getattr(standardised, f) for f in
                       ("name", "X_train", "y_train", "X_test", "y_test", "classes")))
    object.__setattr__(pair, "variants", {"raw": raw, "standardised": standardised})
    return pair


def _soonest_to_target(runs) -> tuple:
    """How one rate's runs rank (lower is better): the most seeds reaching the target, then the
    fewest epochs to it, then the lowest final training loss."""
    epochs = runs["epochs_to_target"].mean()
    loss = runs["train_loss"].mean()
    return (-int(runs["epochs_to_target"].notna().sum()),
            math.inf if math.isnan(epochs) else epochs, math.inf if math.isnan(loss) else loss)


def best_rates(frame):
    """Per data set and input variant, the learning rate whose seeds reach the target most
    often, then soonest (then lowest final loss): {(dataset, inputs): rate}."""
    return _rates.best_rates(frame, ["dataset", "inputs"], _soonest_to_target)


@with_shared_docs(**EXPERIMENT_PARAMETERS)
def run(*, seeds: int = 3, quick: bool = False, out=None, n_jobs: int = 1, progress: bool = True,
        datasets=None, csv=None, target_column=None, epochs: int = 200, target: float = 0.1,
        command=None, scheduler=None):
    """The scaling experiment: raw vs standardised inputs.

    Plain SGD at batch 32 over a grid of learning rates (1e-1 to 1e-6), each input version
    judged at its best rate by the epochs it takes to reach a training-loss target.

    Parameters
    ----------
    {seeds}
    {quick}
    {out}
    {n_jobs}
    {progress}
    datasets : str, list of str or None
        Built-in data sets (``'digits'``, ``'noisy-binary'``, ``'breast-cancer'``); None takes
        breast-cancer.
    {csv}
    {target_column}
    epochs : int
        The most epochs of every fit.
    target : float
        The training loss to reach.
    {command}
    {scheduler}

    Returns
    -------
    LabResult
        The runs, the summary table over seeds, the conclusions and the files written;
        ``report()`` prints them.
    """
    epochs = 20 if quick else epochs
    rates = (1e-1, 1e-5) if quick else RATES
    raw = load_datasets(datasets, csv, target_column, default=["breast-cancer"],
                        standardize=False)
    scaled = load_datasets(datasets, csv, target_column, default=["breast-cancer"])
    chosen = [_with_variants(r, s) for r, s in zip(raw, scaled)]
    settings = {f"{inputs} lr={rate:g}": dict(inputs=inputs, learning_rate=rate, epochs=epochs,
                                             batch_size=32, target=target)
                for inputs in ("raw", "standardised") for rate in rates}

    def conclude(frame):
        best = best_rates(frame)
        out = []
        for name in frame["dataset"].unique():
            parts = {}
            for inputs in ("raw", "standardised"):
                rate = best[name, inputs]
                g = frame[(frame["dataset"] == name) & (frame["inputs"] == inputs)
                          & (frame["learning_rate"] == rate)]
                parts[inputs] = (rate, g["epochs_to_target"].mean(), g["seconds_to_target"].mean(),
                                 g["test_accuracy"].mean(), g["epochs_to_target"].notna().sum())
            text = "; ".join(
                f"{inputs} at its best lr {p[0]:g}: " + (
                    f"{p[1]:.3g} epochs ({p[2]:.2g} s) to loss {target:g} in {p[4]} of "
                    f"{seeds} seeds" if p[4] else f"never below {target:g}")
                + f", test accuracy {p[3]:.3f}" for inputs, p in parts.items())
            raw_e, std_e = parts["raw"][1], parts["standardised"][1]
            held = (parts["standardised"][4] > 0 and
                    (parts["raw"][4] == 0 or std_e < raw_e or
                     (std_e == raw_e and parts["standardised"][2] < parts["raw"][2])))
            out.append(f"{name}: {text}. Diverged runs: "
                       f"{int(frame[frame['dataset'] == name]['diverged'].sum())}. The lecture's "
                       f"claim (standardised inputs train faster) {verdict(held)} on this data "
                       f"set.")
        return out

    return compare("scaling", title=f"scaling — raw vs standardised inputs: plain SGD, batch 32, "
                   f"up to {epochs} epochs, each learning rate of "
                   f"{', '.join(f'{r:g}' for r in rates)}"
                   f"; target training loss {target:g}",
                   column="setting", settings=settings, datasets=chosen,
                   columns=["epochs_to_target", "seconds_to_target", "train_loss",
                            "test_accuracy"],
                   conclude=conclude, seeds=seeds, quick=quick, out=out, n_jobs=n_jobs,
                   progress=progress, command=command, scheduler=scheduler,
                   function=fit)
