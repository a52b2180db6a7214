"""The commands' output: lines that survive a reader who went away (`| head`), numbers as the
tables print them, the per-epoch line, and output paths checked before any work is done."""

from __future__ import annotations

import os
import sys


def say(*args, file=None) -> None:
    """print, except that a reader who went away (`| head`) silences further output instead of
    ending the command: training goes on and --save is still written."""
    try:
        print(*args, file=file or sys.stdout, flush=True)
    except BrokenPipeError:
        silence(file or sys.stdout)


def silence(stream) -> None:
    """Point a stream whose reader went away at /dev/null (Python's own flush at exit too)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def number(value: float) -> str:
    """A loss for a table: six decimals, or %g for values that are huge (a diverging run)."""
    return f"{value:.6f}" if abs(value) < 1e6 else f"{value:.6g}"


def epoch_line(record, epochs) -> str:
    """The line `train` prints after each epoch."""
    val = ("" if record["val_score"] is None else
           f"  val_loss {number(record['val_loss'])}  val_score {record['val_score']:.4f}")
    return f"epoch {record['epoch']:3d}/{epochs}  loss {number(record['loss'])}{val}"


def check_writable(path, option):
    """Fail before training, not after, for an output path that cannot be written."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{option} {path!r} is a directory")
    if not os.path.isdir(directory):
        raise ValueError(f"{option} {path!r}: the folder {directory!r} does not exist")
    if not os.access(directory, os.W_OK) or (os.path.exists(path)
                                              and not os.access(path, os.W_OK)):
        raise ValueError(f"{option} {path!r} is not writable")
