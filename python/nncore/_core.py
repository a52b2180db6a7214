"""nncore's compiled core, in the build made for this CPU (see `_targets` for the rule).

Importing this module imports one of `_core_baseline`, `_core_avx2`, `_core_avx512` and puts it
in its place: `nncore._core` *is* that extension module afterwards (its classes and functions
say `nncore._core` as their module, so pickles made on one CPU load on another).
"""

import importlib
import os
import sys

from . import _cpu, _targets

cpu = _cpu.probe()
target = _targets.choose(cpu, _targets.compiled(os.path.dirname(__file__)),
                         os.environ.get(_targets.ENV, "").strip() or None)
_module = importlib.import_module(f"{__package__}._core_{target}")
sys.modules[__name__] = _module
