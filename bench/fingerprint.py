"""Behaviour fingerprint for refactors: run a fixed set of fits, partial_fit sequences, streamed
fits, command-line runs and lab quick runs, and print one SHA-256 per case (and write them as
JSON with --out). Run it before and after a refactor that must not change behaviour: every line
must match bit for bit (timings, paths and versions are taken out of what is hashed).

    python bench/fingerprint.py --out before.json
    ... refactor, reinstall ...
    python bench/fingerprint.py --out after.json --compare before.json
"""

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

# bench/sparse.py would shadow the `sparse` package Dask imports: this folder is not a package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np
import pandas as pd

import nncore
from nncore import lab
from nncore.cli import main as cli_main

CASES = {}


def case(function):
    CASES[function.__name__] = function
    return function


def digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str(part.dtype).encode() + str(part.shape).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, (list, tuple)):
            h.update(digest(*part).encode())
        elif isinstance(part, dict):
            h.update(digest(*[f"{k}={digest(v)}" for k, v in sorted(part.items())]).encode())
        elif isinstance(part, float):
            h.update(np.float64(part).tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()


def fitted(model):
    parts = [model.coefs_, model.intercepts_, getattr(model, "loss_curve_", None),
             getattr(model, "validation_scores_", None), model.n_iter_, model.t_,
             getattr(model, "best_loss_", None),
             [{k: v for k, v in record.items() if k != "seconds"}
              for record in getattr(model, "history_", [])]]
    return parts


def data(kind, n=240, d=7, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d)
    if kind == "binary":
        y = (X @ w + 0.3 * rng.normal(size=n) > 0).astype(int)
    elif kind == "multiclass":
        y = np.digitize(X @ w, [-1.0, 0.0, 1.0])
    elif kind == "multilabel":
        y = (X[:, :3] + 0.2 * rng.normal(size=(n, 3)) > 0).astype(int)
    else:
        y = np.sin(X @ w) + 0.1 * rng.normal(size=n)
    return X, y


CONFIGS = [
    ("binary", dict(solver="sgd", learning_rate="invscaling", momentum=0.9, max_iter=15)),
    ("binary", dict(solver="sgd", nesterovs_momentum=False, learning_rate="adaptive",
                    max_iter=40, early_stopping=True, n_iter_no_change=3)),
    ("multiclass", dict(solver="adam", max_iter=20, alpha=1e-3, batch_size=32)),
    ("multiclass", dict(solver="adam", max_iter=30, early_stopping=True, validation_fraction=0.2)),
    ("multiclass", dict(solver="lbfgs", max_iter=40)),
    ("multilabel", dict(solver="adam", max_iter=15, activation="tanh")),
    ("regression", dict(solver="adam", max_iter=20, hidden_layer_sizes=(16, 8))),
    ("regression", dict(solver="sgd", max_iter=20, learning_rate_init=0.01, activation="logistic")),
    ("regression", dict(solver="lbfgs", max_iter=30)),
    ("regression", dict(solver="sgd", max_iter=20, learning_rate_init=10.0)),  # diverges
    ("regression", dict(solver="sgd", max_iter=20, learning_rate_init=10.0, early_stopping=True)),
    ("binary", dict(solver="adam", max_iter=10, tol=0.5, n_iter_no_change=2)),
]


def _fit(kind, params, extra=None):
    X, y = data(kind)
    cls = nncore.MLPRegressor if kind == "regression" else nncore.MLPClassifier
    model = cls(random_state=1, hidden_layer_sizes=params.pop("hidden_layer_sizes", (12,)),
                **params, **(extra or {}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(X, y)
            outcome = "ok"
        except Exception as error:  # a clear exception is also behaviour
            outcome = f"{type(error).__name__}: {error}"
    messages = sorted({str(w.message) for w in caught})
    parts = [outcome, messages]
    if hasattr(model, "coefs_"):
        parts += fitted(model) + [model.predict(X)]
        if kind != "regression":
            parts.append(model.predict_proba(X))
    return digest(*parts)


for index, (kind, params) in enumerate(CONFIGS):
    def _config(kind=kind, params=params):
        return _fit(kind, dict(params))
    _config.__name__ = f"estimator_{index:02d}_{kind}_{params['solver']}"
    case(_config)


@case
def estimator_extras():
    X, y = data("multiclass")
    out = []
    for extra in (dict(batch_norm=True), dict(dropout=0.2), dict(solver="adamw") if False else dict(weight_decay=0.05, solver="adam"), dict(schedule="cosine", solver="sgd"), dict(class_weight="balanced"),
                  dict(dtype="float32")):
        try:
            model = nncore.MLPClassifier(hidden_layer_sizes=(10,), max_iter=8, random_state=0,
                                         **extra)
        except TypeError as error:
            out.append(str(error))
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                model.fit(X, y)
                out.append(fitted(model) + [model.predict_proba(X)])
            except Exception as error:
                out.append(f"{type(error).__name__}: {error}")
    return digest(out)


@case
def partial_fit_sequences():
    out = []
    X, y = data("multiclass", n=300)
    model = nncore.MLPClassifier(hidden_layer_sizes=(9,), random_state=3, solver="sgd")
    for start in range(0, 300, 50):
        model.partial_fit(X[start:start + 50], y[start:start + 50], classes=[0, 1, 2, 3])
        out.append([model.coefs_, model.loss_curve_])
    Xr, yr = data("regression", n=200)
    model = nncore.MLPRegressor(hidden_layer_sizes=(6, 5), random_state=2, solver="adam")
    for start in range(0, 200, 40):
        model.partial_fit(Xr[start:start + 40], yr[start:start + 40])
        out.append([model.coefs_, model.loss_curve_, model.predict(Xr)])
    model.set_params(warm_start=True, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Xr, yr)
    out.append(fitted(model))
    return digest(out)


@case
def objects_train_and_lbfgs():
    X, y = data("regression")
    network = nncore.Network([7, 11, 1], activation="tanh", loss="squared_error",
                             random_state=4)
    losses = nncore.train(network, X, y, epochs=6, learning_rate=0.05, batch_size=16,
                          optimizer=nncore.make_optimizer("adam"), random_state=0)
    network2 = nncore.Network([7, 11, 1], activation="relu", loss="squared_error",
                              random_state=5)
    result = nncore.lbfgs(network2, X, y, max_iter=20)
    return digest(losses, network.params, network2.params, dict(result))


@case
def streaming():
    X, y = data("binary", n=400)
    out = []
    chunks = [(X[i:i + 100], y[i:i + 100]) for i in range(0, 400, 100)]
    model = nncore.MLPClassifier(hidden_layer_sizes=(8,), random_state=0, max_iter=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nncore.fit_stream(model, chunks, epochs=4, holdout=1)
    out.append(fitted(model) + [model.predict_proba(X)])
    with tempfile.TemporaryDirectory() as folder:
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        frame["label"] = y
        for i in range(4):
            frame.iloc[i * 100:(i + 1) * 100].to_csv(f"{folder}/part{i}.csv", index=False)
        model = nncore.MLPClassifier(hidden_layer_sizes=(8,), random_state=0, max_iter=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nncore.fit_stream(model, f"{folder}/part*.csv", target="label", epochs=3)
        out.append(fitted(model) + [model.predict_proba(frame.drop(columns="label"))])
    return digest(out)


TIME = re.compile(r"\d+(\.\d+)?\s*(s|ms|µs|seconds)\b|\d+:\d\d(:\d\d)?|\d+(\.\d+)?(it/s|s/it|fit/s)|\d+ per minute")


def _cli(argv, folder):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = cli_main(argv)
        except SystemExit as exit:
            code = exit.code
    text = (out.getvalue() + "\n--stderr--\n" + err.getvalue()).replace(str(folder), "DIR")
    return code, TIME.sub("T", text)


@case
def command_line():
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        X, y = data("multiclass", n=200)
        frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
        frame["kind"] = np.array(["a", "b", "c"])[np.arange(200) % 3]
        frame.loc[5, "c1"] = np.nan
        frame["y"] = y
        frame.to_csv(folder / "d.csv", index=False)
        runs = [
            ["train", "--epochs", "5", "--no-progress"],
            ["train", "--csv", str(folder / "d.csv"), "--target", "y", "--epochs", "4",
             "--impute", "mean", "--save", str(folder / "m.npz"), "--no-progress"],
            ["predict", "--model", str(folder / "m.npz"), str(folder / "d.csv"),
             "--output", str(folder / "p.csv")],
            ["train", "--csv", str(folder / "d.csv"), "--target", "y", "--epochs", "4"],
            ["train", "--csv", str(folder / "d.csv"), "--target", "nope"],
            ["train", "--dataset", "diabetes", "--epochs", "3", "--learning-rate", "50",
             "--solver", "sgd", "--no-progress"],
            ["sweep", "--grid", "learning_rate_init=1e-3,1e-2", "--seeds", "2", "--epochs", "3",
             "--no-progress", "--out", str(folder / "s.csv")],
        ]
        out = []
        for argv in runs:
            out.append(_cli(argv, folder))
        out.append((folder / "p.csv").read_text())
        out.append(pd.read_csv(folder / "s.csv", comment="#").drop(
            columns=["fit_seconds"]).to_csv())
        return digest(out)


@case
def lab_quick():
    # Curvature measures (Lanczos, Hutchinson) differ run to run in their last bits, so the
    # tables are compared at 10 significant digits; the reports' mean ± spread tables hold
    # seconds, so only their other lines (claims, verdicts) are hashed.
    out = []
    with tempfile.TemporaryDirectory() as folder:
        for name in lab.EXPERIMENTS:
            target = Path(folder) / name
            result = lab.EXPERIMENTS[name](seeds=2, quick=True, out=target, progress=False)
            frame = pd.read_csv(target / "runs.csv")
            frame = frame.drop(columns=[c for c in frame.columns if "seconds" in c])
            # (columns are padded to their widest cell, a time's among them: spaces collapse)
            report = "\n".join(" ".join(line.split())
                               for line in result.report().replace(folder, "DIR").splitlines()
                               if "±" not in line and "seconds" not in line)
            out.append([name, frame.to_csv(float_format="%.10g"), TIME.sub("T", report)])
    return digest(out)


def main():
    if os.environ.get("PYTHONHASHSEED") != "0":  # set reprs in messages follow the hash seed
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    parser.add_argument("--compare")
    parser.add_argument("--dump", type=int, default=0, help="print each hashed part, cut")
    parser.add_argument("cases", nargs="*")
    args = parser.parse_args()
    results = {}
    for name, function in CASES.items():
        if args.cases and name not in args.cases:
            continue
        if args.dump:
            global digest
            plain = digest
            digest = lambda *parts: (print(repr(parts)[:args.dump]), plain(*parts))[1]
        results[name] = function()
        print(f"{name:45s} {results[name][:16]}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    if args.compare:
        before = json.loads(Path(args.compare).read_text())
        differ = [n for n in results if before.get(n) != results[n]]
        print("identical" if not differ else f"DIFFER: {differ}")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
