"""scikit-learn's own tests of MLPClassifier and MLPRegressor, run unmodified against nncore's.

The file is the one installed with scikit-learn (sklearn/neural_network/tests/test_mlp.py). A
pytest plugin (tests/sklearn_suite/nncore_as_sklearn.py) puts nncore's classes where that file
imports scikit-learn's from before it is collected; it runs in its own pytest process, under
scikit-learn's settings rather than this suite's (warnings are not errors there)."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sklearn

HERE = Path(__file__).parent
EXPECTED_TESTS = 59  # in scikit-learn 1.9's test_mlp.py


def test_mlp_file_of_scikit_learn_passes(tmp_path):
    spec = importlib.util.find_spec("sklearn.neural_network.tests.test_mlp")
    if spec is None or spec.origin is None:
        pytest.skip(f"scikit-learn {sklearn.__version__} is installed without its tests "
                    f"(sklearn/neural_network/tests/test_mlp.py)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(HERE / "sklearn_suite"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "nncore_as_sklearn", spec.origin, "-q",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c", os.devnull],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= EXPECTED_TESTS, summary
    assert "nncore" in subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]);"
         "import nncore_as_sklearn, sklearn.neural_network as nn;"
         "nncore_as_sklearn.pytest_configure(None); print(nn.MLPClassifier.__module__)",
         str(HERE / "sklearn_suite")], capture_output=True, text=True, check=True).stdout
