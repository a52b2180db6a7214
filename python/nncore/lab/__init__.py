"""The lab: the lecture's claims about training neural nets, each as one experiment measured over
seeds — `nncore lab <experiment>` on the command line, or these functions.

Every function takes seeds (default 3), quick (a few seconds, for tests), out (a folder for
runs.csv, meta.json, report.json and PNG figures; nothing written without it), n_jobs (independent
fits in parallel processes, each single-threaded), progress (a tqdm bar over the fits) and
datasets (built-in names) or csv/target_column, and returns a `LabResult` whose `report()` is the
table of mean ± spread over seeds and what it concludes. `DESCRIPTIONS` holds each experiment's
one-line summary (its module's DESCRIPTION), `CLAIMS` its claim in the lecture's words (its
module's CLAIM). `run_all` runs every experiment into one folder and `write_page` makes that
folder's report page, index.html (`nncore lab all`, `nncore lab report`)."""

from . import batch_norm as _batch_norm
from . import batch_size as _batch_size
from . import edge_of_stability as _edge_of_stability
from . import optimizers as _optimizers
from . import scaling as _scaling
from . import sharpness_measures as _sharpness_measures
from . import step_size as _step_size
from . import zero_init as _zero_init
from ._all import run_all
from ._datasets import ARCHITECTURE, BUILT_IN, Dataset, load_dataset
from ._page import claim_of, write_page
from ._report import LabResult

_MODULES = {"zero-init": _zero_init, "scaling": _scaling, "batch-size": _batch_size,
            "step-size": _step_size, "optimizers": _optimizers, "batch-norm": _batch_norm,
            "sharpness-measures": _sharpness_measures,
            "edge-of-stability": _edge_of_stability}
EXPERIMENTS = {name: module.run for name, module in _MODULES.items()}
DESCRIPTIONS = {name: module.DESCRIPTION for name, module in _MODULES.items()}
CLAIMS = {name: claim_of(module) for name, module in _MODULES.items()}

# The experiments by their function names, as before: nncore.lab.zero_init(...).
batch_norm = _batch_norm.run
batch_size = _batch_size.run
edge_of_stability = _edge_of_stability.run
optimizers = _optimizers.run
scaling = _scaling.run
sharpness_measures = _sharpness_measures.run
step_size = _step_size.run
zero_init = _zero_init.run

__all__ = ["ARCHITECTURE", "BUILT_IN", "CLAIMS", "DESCRIPTIONS", "EXPERIMENTS", "Dataset",
           "LabResult", "batch_norm", "batch_size", "edge_of_stability", "load_dataset",
           "optimizers", "run_all", "scaling", "sharpness_measures", "step_size", "write_page",
           "zero_init"]
