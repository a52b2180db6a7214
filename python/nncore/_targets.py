"""Which build of the compiled core this process runs.

The package ships one build of its core per x86-64 level, each compiled with its own flags into
its own extension module (`_core_baseline`, `_core_avx2`, `_core_avx512`): a module holds every
kernel, the network code and the bindings, so nothing compiled for one level is ever shared with
another, and a CPU never runs an instruction its level lacks. `nncore._core` loads the one this
module chooses, before any of them is imported — an AVX-512 module may execute AVX-512
instructions as soon as it loads.

The rule, fixed and measured rather than timed at import: the highest level this CPU and its
OS support (CPUID and XGETBV, read by `nncore._cpu`). Measured with `bench/targets.py` on a Zen 4
(AMD EPYC, family 19h), whose AVX-512 units are 256 bits wide and run each 512-bit instruction in
two halves: the AVX-512 build's epochs took 0.59-1.00x the AVX2 build's in both precisions, from
the tiny to the large workload (level only in the small float64 one): twice the registers make
the GEMM tile twice as tall, and remainders are masked (on a Zen 5, Eigen's float32 product ran
1.8x faster built for AVX-512 than for AVX2). So the
rule has no exception.
`NNCORE_CPU=baseline|avx2|avx512` forces a level, which must not be above what the CPU runs.
"""

from __future__ import annotations

import os
from pathlib import Path

TARGETS = ("baseline", "avx2", "avx512")
# The CPU features (CPUID) each target's level (x86-64-v2, -v3, -v4) adds to the one below.
_FEATURES = {
    "baseline": ("cx16", "lahf_lm", "popcnt", "sse3", "ssse3", "sse4_1", "sse4_2"),
    "avx2": ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe", "os_avx"),
    "avx512": ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "os_avx512"),
}
ENV = "NNCORE_CPU"


def runnable(cpu: dict) -> list[str]:
    """The targets this CPU can run, lowest first (`cpu` is `nncore._cpu.probe()`). Every level
    includes the ones below it. On a CPU that is not x86-64 the core is built without any level
    flag, and only "baseline" exists."""
    if cpu["arch"] != "x86_64":
        return ["baseline"]
    have = cpu["features"]
    levels = []
    for target in TARGETS:
        if not all(have.get(f, False) for f in _FEATURES[target]):
            break
        levels.append(target)
    return levels


def missing_features(cpu: dict, target: str) -> list[str]:
    """The features `target` needs that this CPU (or its OS) lacks, for error messages."""
    if cpu["arch"] != "x86_64":
        return []
    need = [f for t in TARGETS[: TARGETS.index(target) + 1] for f in _FEATURES[t]]
    return [f for f in need if not cpu["features"].get(f, False)]


def preferred(cpu: dict) -> str:
    """The target this CPU should run when nothing is forced (see the module's docstring)."""
    levels = runnable(cpu)
    return levels[-1] if levels else "baseline"


def compiled(package_dir: str | os.PathLike) -> list[str]:
    """The targets whose core module was built and installed beside this file, lowest first."""
    names = {p.name.split(".")[0] for p in Path(package_dir).iterdir()
             if p.name.startswith("_core_") and p.suffix in (".so", ".pyd")}
    return [t for t in TARGETS if f"_core_{t}" in names]


def choose(cpu: dict, available: list[str], forced: str | None) -> str:
    """The target to load: `forced` (the NNCORE_CPU value, or None/empty) if given and possible,
    else the preferred one if it was built, else the highest built one the CPU runs. Raises
    ImportError naming the reason when no built target can run here."""
    levels = runnable(cpu)
    if forced:
        if forced not in TARGETS:
            raise ImportError(f"{ENV}={forced!r}: expected one of {', '.join(TARGETS)}")
        if forced not in levels:
            raise ImportError(
                f"{ENV}={forced}: this CPU cannot run the {forced} build of nncore's core "
                f"(missing: {', '.join(missing_features(cpu, forced))}); it runs: "
                f"{', '.join(levels) or 'none of them'}")
        if forced not in available:
            raise ImportError(f"{ENV}={forced}: this installation of nncore has no {forced} build "
                              f"of its core (built: {', '.join(available) or 'none'})")
        return forced
    want = preferred(cpu)
    if want in available and want in levels:
        return want
    usable = [t for t in available if t in levels]
    if not usable:
        target = available[0] if available else "baseline"
        raise ImportError(
            f"nncore's core was built for {', '.join(available) or 'nothing'}, which this CPU "
            f"cannot run (missing: {', '.join(missing_features(cpu, target))}); build it from source "
            "on this machine with NNCORE_ARCH=native")
    return usable[-1]
