"""One installation, a build of the core per x86-64 level, one chosen at import (nncore._targets).

The rule is tested on made-up CPUs; the builds themselves are tested by running each one this CPU
can run in its own process (NNCORE_CPU forces it) and comparing what they compute.
"""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import nncore
from nncore import _cpu, _targets

V2 = ("cx16", "lahf_lm", "popcnt", "sse3", "ssse3", "sse4_1", "sse4_2")
V3 = ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe", "os_avx")
V4 = ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "os_avx512")


def cpu(*feature_sets, vendor="GenuineIntel", family=6, drop=()):
    have = {f for fs in feature_sets for f in fs} - set(drop)
    return {"arch": "x86_64", "vendor": vendor, "family": family, "model": 0,
            "features": {f: f in have for f in V2 + V3 + V4}}


ALL = ["baseline", "avx2", "avx512"]


def test_the_rule_on_made_up_cpus():
    assert _targets.runnable(cpu(V2)) == ["baseline"]
    assert _targets.runnable(cpu(V2, V3)) == ["baseline", "avx2"]
    assert _targets.runnable(cpu(V2, V3, V4)) == ALL
    # A level counts only whole: AVX2 without FMA, or AVX-512 without VL, is the level below.
    assert _targets.runnable(cpu(V2, V3, drop=["fma"])) == ["baseline"]
    assert _targets.runnable(cpu(V2, V3, V4, drop=["avx512vl"])) == ["baseline", "avx2"]
    # The CPU has the instructions but the OS does not save the registers: not usable.
    assert _targets.runnable(cpu(V2, V3, V4, drop=["os_avx512"])) == ["baseline", "avx2"]
    assert _targets.runnable(cpu(V2, V3, V4, drop=["os_avx", "os_avx512"])) == ["baseline"]
    assert _targets.runnable(cpu(drop=V2)) == []
    assert _targets.runnable({"arch": "other", "vendor": "", "family": 0, "model": 0,
                              "features": {}}) == ["baseline"]

    # The highest level, Zen 4 too (its AVX-512 build measured faster than its AVX2 build).
    zen4 = cpu(V2, V3, V4, vendor="AuthenticAMD", family=0x19)
    zen3 = cpu(V2, V3, vendor="AuthenticAMD", family=0x19)
    assert _targets.preferred(cpu(V2, V3, V4)) == "avx512"
    assert _targets.preferred(zen4) == "avx512"
    assert _targets.preferred(zen3) == "avx2"
    assert _targets.preferred(cpu(V2)) == "baseline"
    assert _targets.preferred(cpu(drop=V2)) == "baseline"

    assert _targets.choose(zen4, ALL, None) == "avx512"
    assert _targets.choose(zen3, ALL, None) == "avx2"
    assert _targets.choose(zen4, ["baseline", "avx2"], None) == "avx2"
    assert _targets.choose(zen4, ALL, "avx2") == "avx2"
    assert _targets.choose(zen3, ALL, "baseline") == "baseline"
    assert _targets.choose(cpu(V2, V3), ["baseline"], None) == "baseline"  # a portable build


def test_the_rule_refuses_what_cannot_run_by_name():
    zen3 = cpu(V2, V3, vendor="AuthenticAMD", family=0x19)
    with pytest.raises(ImportError, match=r"NNCORE_CPU=avx512: this CPU cannot run .*avx512f"):
        _targets.choose(zen3, ALL, "avx512")
    with pytest.raises(ImportError, match=r"NNCORE_CPU='sse9': expected one of baseline, avx2"):
        _targets.choose(zen3, ALL, "sse9")
    with pytest.raises(ImportError, match=r"has no avx2 build .*built: baseline"):
        _targets.choose(zen3, ["baseline"], "avx2")
    # A special build for an AVX-512 machine, copied to an AVX2 one: refused, not a crash.
    with pytest.raises(ImportError, match=r"built for avx512, which this CPU cannot run"):
        _targets.choose(zen3, ["avx512"], None)
    # A CPU below x86-64-v2 (before 2009): even the baseline build is refused, by name.
    with pytest.raises(ImportError, match=r"cannot run \(missing: cx16, lahf_lm, popcnt"):
        _targets.choose(cpu(drop=V2), ALL, None)


def test_this_cpu_is_probed_and_the_loaded_build_is_the_rule_s_choice():
    probe = _cpu.probe()
    info = nncore.build_info()
    assert info["cpu_target"] in ALL
    assert info["cpu_target"] in info["cpu_targets"]
    forced = os.environ.get("NNCORE_CPU", "").strip() or None
    assert info["cpu_target"] == _targets.choose(probe, info["cpu_targets"], forced)
    assert nncore._core.__name__ == "nncore._core"
    assert nncore._core.Network64.__module__ == "nncore._core"
    if probe["arch"] == "x86_64":
        # Every x86-64 CPU that runs today's Python and NumPy wheels has SSE2; SSE4.2 since 2008.
        assert probe["features"]["sse4_2"] and probe["vendor"]
    expected_kernel = {"baseline": "eigen", "avx2": "nncore-avx2", "avx512": "nncore-avx512"}
    assert info["float_kernel"] == expected_kernel[info["cpu_target"]]


TRAIN = r"""
import json, pickle, sys
import numpy as np
import nncore
rng = np.random.default_rng(0)
X = rng.normal(size=(300, 13))
y = (X[:, 0] - X[:, 1] * X[:, 2] > 0).astype(int)
out = {"target": nncore.build_info()["cpu_target"]}
for dtype in ("float64", "float32"):
    m = nncore.MLPClassifier(hidden_layer_sizes=(37, 21), max_iter=4, batch_size=29,
                             random_state=0, dtype=dtype).fit(X.astype(dtype), y)
    out[dtype] = m.predict_proba(X.astype(dtype))[:, 1].tolist()
    out[dtype + "_loss"] = m.loss_
    if dtype == "float64":
        with open(sys.argv[1], "wb") as f:
            pickle.dump(m, f)
print(json.dumps(out))
"""

LOAD = r"""
import json, pickle, sys
import numpy as np
import nncore
rng = np.random.default_rng(0)
X = rng.normal(size=(300, 13))
with open(sys.argv[1], "rb") as f:
    m = pickle.load(f)
print(json.dumps({"target": nncore.build_info()["cpu_target"],
                  "proba": m.predict_proba(X)[:, 1].tolist()}))
"""


def run_as(target, script, *args):
    env = dict(os.environ, NNCORE_CPU=target)
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_every_build_this_cpu_runs_trains_the_same_model(tmp_path):
    """The same fit under each build: the kernels differ (Eigen's in the baseline build, nncore's
    at two widths), so the sums run in different orders — the models agree to rounding after 44
    steps (measured: 2e-16 in float64, 1e-7 in float32): float64 to 1e-12, float32 to 1e-5. And a model saved under one build loads
    under every other."""
    targets = [t for t in nncore.build_info()["cpu_targets"]
               if t in _targets.runnable(_cpu.probe())]
    if len(targets) < 2:
        pytest.skip(f"only {targets} built or runnable here")
    fits = {t: run_as(t, TRAIN, str(tmp_path / f"{t}.pkl")) for t in targets}
    for t in targets:
        assert fits[t]["target"] == t
    first = fits[targets[0]]
    for t in targets[1:]:
        np.testing.assert_allclose(fits[t]["float64"], first["float64"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(fits[t]["float32"], first["float32"], rtol=0, atol=1e-5)
        assert fits[t]["float64_loss"] == pytest.approx(first["float64_loss"], rel=1e-12)
    # Saved under the highest build, loaded under the lowest: the same predictions.
    high, low = targets[-1], targets[0]
    loaded = run_as(low, LOAD, str(tmp_path / f"{high}.pkl"))
    assert loaded["target"] == low
    np.testing.assert_allclose(loaded["proba"], fits[high]["float64"], rtol=0, atol=1e-12)
    with open(tmp_path / f"{high}.pkl", "rb") as f:
        assert b"nncore._core_" not in f.read()
