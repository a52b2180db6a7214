"""The lab: the lecture's claims about training neural nets, each as one experiment measured over
seeds — `nncore lab <experiment>` on the command line, or these functions.

Every function takes seeds (default 3), quick (a few seconds, for tests), out (a folder for
runs.csv, meta.json and PNG figures; nothing written without it), n_jobs (independent fits in
parallel processes, each single-threaded), progress (a tqdm bar over the fits) and datasets
(built-in names) or csv/target_column, and returns a `LabResult` whose `report()` is the table of
mean ± spread over seeds and what it concludes."""

from ._runner import BUILT_IN, Dataset, LabResult, load_dataset
from .batch_norm import run as batch_norm
from .batch_size import run as batch_size
from .optimizers import run as optimizers
from .scaling import run as scaling
from .step_size import run as step_size
from .zero_init import run as zero_init

EXPERIMENTS = {"zero-init": zero_init, "scaling": scaling, "batch-size": batch_size,
               "step-size": step_size, "optimizers": optimizers, "batch-norm": batch_norm}

__all__ = ["BUILT_IN", "EXPERIMENTS", "Dataset", "LabResult", "batch_norm", "batch_size",
           "load_dataset", "optimizers", "scaling", "step_size", "zero_init"]
