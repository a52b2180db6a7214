"""step-size — reducing the step size during training helps: plain SGD kept at a constant rate or
decayed by scikit-learn's invscaling (η0/(t+1)^0.5, t = samples seen), a step decay (×0.1 at a
third and two thirds of the epochs) or a cosine decay to zero. Each schedule runs over a grid of
initial rates and is judged at its own best rate (by the final training loss), so the verdict is
the schedule's, not one rate's. Two regimes: the standard one (batch 32, 60 epochs), and the one
the lecture's advice is about, where a constant rate is large enough to stall at SGD's noise
floor (noisy-binary, batch 4, rates up to near the largest stable one). Measured: the loss
curves, the training loss at half and at all of the epochs, and the test accuracy."""

from __future__ import annotations

from .._docs import with_shared_docs
from ._datasets import ARCHITECTURE, load_datasets
from ._lab import EXPERIMENT_PARAMETERS, compare_rates
from ._rates import contest, describe_range, grid_runs, rate_ranges
from ._report import verdict
from ._run import train_run

# The claim, in the lecture's words (the report page quotes it).
CLAIM = ("Reducing the step size during training helps: a decayed step size (invscaling, step "
         "or cosine decay) ends at a lower training loss and a higher test accuracy than a "
         "constant one (each judged at its best initial rate of a grid).")

# One line for `nncore lab --help`.
DESCRIPTION = "constant vs invscaling vs step vs cosine decay, each at its best rate"

SCHEDULES = ("constant", "invscaling", "step", "cosine")
ARM = ["regime", "dataset", "schedule"]

# Standard regime: batch 32, 60 epochs, a grid of initial rates around the usual 0.1.
RATES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
# Noise-floor regime: batch 4 on noisy-binary, up to 0.3, where the constant rate no longer
# trains; at the largest rate at which it does, it stalls at SGD's noise floor while decayed
# ones keep falling.
NOISE_RATES = (0.02, 0.05, 0.1, 0.2, 0.3)
NOISE_BATCH, NOISE_EPOCHS, NOISE_DATASET = 4, 40, "noisy-binary"


def fit(dataset, **arguments):
    """train_run, plus the training loss at half the epochs (loss_at_half): a loss that no
    longer falls between half and all of the epochs has stalled."""
    result = train_run(dataset, **arguments)
    curve = result.arrays["curve"]
    half = arguments["epochs"] // 2
    result.row["loss_at_half"] = float(curve[half - 1]) if 0 < half <= len(curve) else float("nan")
    return result


def _at(frame, key, rate):
    regime, name, schedule = key
    return frame[(frame["regime"] == regime) & (frame["dataset"] == name)
                 & (frame["schedule"] == schedule) & (frame["learning_rate"] == rate)]


def largest_stable(runs) -> float | None:
    """The largest rate at which the constant rate trains (rates.trains) in these runs of one
    regime and data set: where its noise floor is highest short of failing."""
    constant = runs[runs["schedule"] == "constant"]
    rates = rate_ranges(constant, ["schedule"]).get(("constant",), [])
    return max(rates) if rates else None


def _judgement(outcome: str, what: str) -> str:
    if outcome == "better":
        return f"{verdict(True)} for {what}"
    if outcome == "tie":
        return f"{verdict(False)} for {what} (within the spread over seeds)"
    return f"{verdict(False)} for {what}"


def _conclusions(frame, best, grids: dict) -> list[str]:
    """One sentence per regime and data set: every schedule at its best rate, the constant rate
    against the best decay in training loss and test accuracy; in the noise-floor regime also
    every schedule at the largest rate at which the constant rate trains. grids: {regime: (its
    rates, its epochs)}."""
    out = []
    for (regime, name), group in frame.groupby(["regime", "dataset"], sort=False):
        keys = [(regime, name, s) for s in SCHEDULES if (regime, name, s) in best]
        if ("constant" not in [k[2] for k in keys]) or len(keys) < 2:
            continue
        at_best = {k[2]: _at(frame, k, best[k]) for k in keys}
        ranges = rate_ranges(group, ["schedule"])
        listing = "; ".join(
            f"{s} lr {best[regime, name, s]:g}: loss {runs['train_loss'].mean():.3g}, test "
            f"accuracy {runs['test_accuracy'].mean():.3f}, trains at "
            f"{describe_range(ranges[(s,)], grids[regime][0])}" for s, runs in at_best.items())
        decays = {s: runs for s, runs in at_best.items() if s != "constant"}
        by_loss = min(decays, key=lambda s: decays[s]["train_loss"].mean())
        by_test = max(decays, key=lambda s: decays[s]["test_accuracy"].mean())
        constant = at_best["constant"]
        loss = contest(decays[by_loss]["train_loss"], constant["train_loss"], log=True)
        test = contest(decays[by_test]["test_accuracy"], constant["test_accuracy"],
                       lower_is_better=False)
        sentence = (f"{regime} regime, {name}: each schedule at its best initial rate (best by "
                    f"the final training loss): {listing}. Best decay for the training loss: "
                    f"{by_loss}; for the test accuracy: {by_test}. The lecture's claim "
                    f"(reducing the step size helps) {_judgement(loss, 'the training loss')} "
                    f"and {_judgement(test, 'the test accuracy')} at the best rates")
        if regime == "noise-floor" and ranges[("constant",)]:
            top = largest_stable(group)
            shared = {s: _at(frame, (regime, name, s), top) for s in SCHEDULES}
            parts = ", ".join(
                f"{s} {runs['loss_at_half'].mean():.3g} → {runs['train_loss'].mean():.3g}"
                for s, runs in shared.items() if len(runs))
            falling = min((s for s in shared if s != "constant" and len(shared[s])),
                          key=lambda s: shared[s]["train_loss"].mean())
            stall = contest(shared[falling]["train_loss"], shared["constant"]["train_loss"],
                            log=True)
            sentence += (f". At {top:g}, the largest rate at which the constant rate trains, "
                         f"the training loss at half → "
                         f"all of the {grids[regime][1]} epochs: {parts}; there the claim "
                         f"{_judgement(stall, 'the training loss')} ({falling} against constant)")
        out.append(sentence + ".")
    return out


@with_shared_docs(**EXPERIMENT_PARAMETERS)
def run(*, seeds: int = 3, quick: bool = False, out=None, n_jobs: int = 1, progress: bool = True,
        datasets=None, csv=None, target_column=None, epochs: int = 60,
        learning_rate: float | None = None, noise_floor: bool = True, command=None,
        scheduler=None):
    """The step-size experiment: constant vs decayed step sizes, each at its best initial rate.

    Plain SGD with the constant, invscaling, step and cosine schedules, each over a grid of
    initial rates (0.01 to 3) at batch 32 and judged at its best rate by the final training
    loss; plus the noise-floor regime (batch 4 on noisy-binary, initial rates 0.02 to 0.3, 40
    epochs), where a constant rate near the largest stable one stalls.

    Parameters
    ----------
    {seeds}
    {quick}
    {out}
    {n_jobs}
    {progress}
    datasets : str, list of str or None
        Built-in data sets (``'digits'``, ``'noisy-binary'``, ``'breast-cancer'``); None takes
        digits and noisy-binary (digits alone when quick). The noise-floor regime runs on
        noisy-binary, or on the data sets chosen here.
    {csv}
    {target_column}
    epochs : int
        Epochs of every fit of the standard regime.
    learning_rate : float or None
        One initial rate for every schedule of the standard regime instead of the grid.
    noise_floor : bool
        Whether to run the noise-floor regime too.
    {command}
    {scheduler}

    Returns
    -------
    LabResult
        The runs (one per regime, data set, schedule, initial rate and seed), the summary table
        of each schedule at its best rate, the conclusions and the files written; ``report()``
        prints them.
    """
    epochs = 4 if quick else epochs
    rates = (learning_rate,) if learning_rate is not None else (0.03, 0.3) if quick else RATES
    noise_rates = (0.2,) if quick else NOISE_RATES
    noise_epochs = 2 if quick else NOISE_EPOCHS
    chosen = load_datasets(datasets, csv, target_column,
                           default=["digits"] if quick else ["digits", "noisy-binary"])
    noisy = (load_datasets(NOISE_DATASET) if datasets is None and csv is None else chosen)
    standard = {kind: dict(epochs=epochs, batch_size=32, schedule=kind) for kind in SCHEDULES}
    runs = grid_runs(chosen, seeds, "schedule", standard, rates, function=fit,
                     fixed={"regime": "standard"})
    noisy_settings = {kind: dict(epochs=noise_epochs, batch_size=NOISE_BATCH, schedule=kind)
                      for kind in SCHEDULES}
    if noise_floor:
        runs += grid_runs(noisy, seeds, "schedule", noisy_settings, noise_rates, function=fit,
                          fixed={"regime": "noise-floor"})
    grids = {"standard": (rates, epochs), "noise-floor": (noise_rates, noise_epochs)}
    everything = list({d.name: d for d in chosen + (noisy if noise_floor else [])}.values())

    def shared_rate_panels(frame):
        # The noise-floor regime at the largest rate the constant rate survives: where it stalls.
        shared = {}
        for name, noise_runs in frame[frame["regime"] == "noise-floor"].groupby("dataset"):
            top = largest_stable(noise_runs)
            if top is not None:
                shared[f"noise-floor · {name} · lr {top:g} for all"] = (("noise-floor", name),
                                                                        top)
        return shared

    noise_title = (f"; noise-floor regime: batch {NOISE_BATCH}, {noise_epochs} epochs, rates "
                   f"{', '.join(f'{r:g}' for r in noise_rates)}" if noise_floor else "")
    return compare_rates(
        "step-size", title=f"step-size — constant vs decayed step sizes, each at its best "
        f"initial rate (by final training loss): plain SGD, {ARCHITECTURE}; standard regime: "
        f"batch 32, {epochs} epochs, rates {', '.join(f'{r:g}' for r in rates)}{noise_title}",
        arm=ARM, runs=runs, datasets=everything,
        columns=["train_loss", "loss_at_half", "train_accuracy", "test_accuracy"],
        conclude=lambda frame, best: _conclusions(frame, best, grids), seeds=seeds,
        quick=quick, out=out, n_jobs=n_jobs, progress=progress, command=command,
        scheduler=scheduler, extra_curves=shared_rate_panels if noise_floor else None,
        options={"standard": {"settings": standard, "rates": rates},
                 "noise-floor": ({"settings": noisy_settings, "rates": noise_rates}
                                 if noise_floor else None)})
