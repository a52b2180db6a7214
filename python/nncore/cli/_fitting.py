"""What `train` and `train --stream` share around the fit: the estimator the model options
describe, the output paths checked first, the fit under the commands' warning rules with its
divergence and Ctrl-C handled (`fit_to_end`), and --save and --plot afterwards."""

from __future__ import annotations

import sys
import warnings

import numpy as np

from ._output import check_writable, say


def model(args, cls, **extra):
    """The estimator the model options describe (epochs are the user's: no early stop on tol)."""
    return cls(hidden_layer_sizes=args.hidden, activation=args.activation, solver=args.solver,
               learning_rate_init=args.learning_rate, schedule=args.schedule,
               batch_size=args.batch_size, max_iter=args.epochs, alpha=args.alpha,
               batch_norm=args.batch_norm, dropout=args.dropout, n_iter_no_change=np.inf,
               **extra)


def check_outputs(args) -> None:
    """--save and --plot checked before the data are read and the model trained."""
    for path, option in ((args.save, "--save"), (args.plot, "--plot")):
        if path:
            check_writable(path, option)


class LastEpoch:
    """A callback keeping the network as of the last finished epoch: Ctrl-C stops a fit
    mid-epoch, and --save then writes the model as of that epoch."""

    def __init__(self):
        self.state, self.epochs, self.counts = None, 0, None

    def __call__(self, estimator, record):
        self.state, self.epochs = estimator._network.state(), len(estimator.history_)
        self.counts = (estimator.n_iter_, estimator.t_)

    def restore(self, estimator) -> None:
        estimator._network.load_state(self.state)
        if len(estimator.history_) > self.epochs:  # Ctrl-C between the record and here
            del estimator.history_[self.epochs:], estimator.loss_curve_[self.epochs:]
            estimator.n_iter_, estimator.t_ = self.counts
            estimator.loss_ = estimator.history_[-1]["loss"]


def _note(message, category, *rest, **kwargs) -> None:
    """A warning shown as the command's own note line."""
    say(f"note: {message}", file=sys.stderr)


def _fit_until_interrupted(fit) -> bool:
    """fit(); True when Ctrl-C stopped it (the fit's "Training interrupted by user." warning
    becomes the command's own line)."""
    from ..estimators import TrainingInterrupted

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", TrainingInterrupted)
            fit()
    except TrainingInterrupted:
        return True
    return False


def _interrupted(args, model, last_epoch, save) -> int:
    """Ctrl-C stopped training: one line, saying what --save wrote; exit status 130."""
    what = f"nncore {args.command}: interrupted"
    if last_epoch.state is None:
        say(f"{what} before the first epoch ended" + ("; nothing saved" if args.save else ""),
            file=sys.stderr)
        return 130
    last_epoch.restore(model)
    if args.save:
        save()
    say(f"{what} after epoch {last_epoch.epochs} of {args.epochs}"
        + (f"; saved the model as of epoch {last_epoch.epochs} to {args.save}" if args.save
           else ""), file=sys.stderr)
    return 130


def fit_to_end(args, model, last_epoch, fit, save, *, ignored=(), warnings_as_notes=False):
    """fit() with ConvergenceWarning silenced (the epochs are the user's choice), warnings whose
    message starts with one of `ignored` silenced too, and the others as note lines when
    warnings_as_notes. Returns None when the fit ran to its end, else the command's exit status:
    1 when it diverged (the error line printed), 130 when Ctrl-C stopped it (the model as of
    its last epoch saved by save() when --save asks)."""
    from sklearn.exceptions import ConvergenceWarning

    from ..network import DivergenceError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for message in ignored:
                warnings.filterwarnings("ignore", message=message)
            if warnings_as_notes:
                warnings.showwarning = _note
            interrupted = _fit_until_interrupted(fit)
    except DivergenceError as exc:
        say(f"nncore train: error: {exc}", file=sys.stderr)
        return 1
    if interrupted:
        return _interrupted(args, model, last_epoch, save)
    return None


def save(args, model, preprocessing_spec, task, y_scale) -> None:
    """train's --save: the model with its preprocessing statistics."""
    from ..tabular import TabularModel

    TabularModel(model, preprocessing_spec, task=task, y_scale=y_scale,
                 csv={"sep": args.sep, "decimal": args.decimal,
                      "encoding": args.encoding}).save(args.save)


def save_and_plot(args, model, preprocessing_spec, task, y_scale) -> None:
    """train's --save and --plot."""
    if args.save:
        save(args, model, preprocessing_spec, task, y_scale)
        say(f"saved {args.save}")
    if args.plot:
        if not hasattr(model, "history_"):
            say("note: --plot needs an epoch-based solver; no plot written", file=sys.stderr)
        else:
            import matplotlib

            matplotlib.use("Agg")
            from ..plot import training_summary

            training_summary(model).savefig(args.plot, dpi=110)
            say(f"wrote {args.plot}")
