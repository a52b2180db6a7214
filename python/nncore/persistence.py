"""Saving and loading fitted estimators as portable `.npz` files, without pickle.

A file holds one JSON document (format name and version, the estimator's class and
hyperparameters, its fitted attributes, the network's architecture, the optimiser's and the
schedule's settings and state) and plain numeric or string arrays (parameters, batch-norm
statistics, optimiser moments, classes, feature names). `load` reads it with
``allow_pickle=False``, checks every shape against the architecture it describes, and rebuilds
an estimator that predicts bit for bit as the saved one and continues training where it stopped.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.validation import check_is_fitted

FORMAT = "nncore-model"
FORMAT_VERSION = 1
_FITTED = ("n_iter_", "t_", "n_outputs_", "n_layers_", "out_activation_", "loss_",
           "best_loss_", "best_validation_score_", "loss_curve_", "validation_scores_",
           "history_", "_no_improvement_count", "n_features_in_")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store a {type(value).__name__} in an nncore model file")


def _hyperparameters(estimator) -> dict:
    params = estimator.get_params(deep=False)
    params["callbacks"] = ()  # code, not data: callbacks are not saved
    if not (params["random_state"] is None or isinstance(params["random_state"], int)):
        params["random_state"] = None  # a RandomState object: its seed is not recoverable
    hidden = params["hidden_layer_sizes"]
    params["hidden_layer_sizes"] = list(hidden) if hasattr(hidden, "__iter__") else hidden
    return params


def save(estimator, path, *, metadata: dict | None = None) -> None:
    """Write a fitted MLPClassifier/MLPRegressor to `path` (a .npz file). `metadata`, a
    JSON-serialisable dict, is stored alongside and returned by `load(..., with_metadata=True)`."""
    from .optim import Schedule

    check_is_fitted(estimator)
    net = estimator._network
    arrays = {"params": net.params}
    if net._core.batchnorm_state is not None:
        arrays["batchnorm_state"] = net._core.batchnorm_state
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nncore_version": __import__("nncore").__version__,
        "class": type(estimator).__name__,
        "params": _hyperparameters(estimator),
        "fitted": {k: getattr(estimator, k) for k in _FITTED if hasattr(estimator, k)},
        "network": {"layer_sizes": net.layer_sizes, "activation": net.activation,
                    "loss": net.loss_name, "alpha": net.alpha,
                    "loss_reduction": net.loss_reduction, "dtype": net.dtype.name,
                    "batch_norm": net.batch_norm},
        "optimizer": None,
        "schedule": None,
        "user": metadata,
    }
    optimizer = getattr(estimator, "_optimizer", None)
    if optimizer is not None:
        state = optimizer.state
        doc["optimizer"] = {"class": type(optimizer).__name__, "args": optimizer._core_args(),
                            "t": int(state.get("t", 0))}
        for key in ("velocity", "m", "v"):
            if key in state:
                arrays[f"optimizer_{key}"] = state[key]
    schedule: Schedule | None = getattr(estimator, "_schedule", None)
    if schedule is not None:
        doc["schedule"] = schedule.__getstate__()
    if hasattr(estimator, "classes_"):
        classes = np.asarray(estimator.classes_)
        if classes.dtype.kind == "O":
            if not all(isinstance(c, str) for c in classes):
                raise ValueError("only classes that are all numbers or all strings can be saved")
            classes = classes.astype(str)
        arrays["classes"] = classes
        doc["label_binarizer"] = {"y_type": estimator._label_binarizer.y_type_,
                                  "object_classes": np.asarray(estimator.classes_).dtype.kind
                                  == "O"}
    if hasattr(estimator, "feature_names_in_"):
        arrays["feature_names_in"] = np.asarray(estimator.feature_names_in_, dtype=str)
    meta = json.dumps(doc, default=_json_default)
    with open(os.fspath(path), "wb") as f:
        np.savez(f, meta=np.array(meta), **arrays)


def load(path, *, with_metadata: bool = False):
    """Read an estimator written by `save`. Raises ValueError for files that are not nncore
    models, are truncated or tampered with, or come from a newer nncore."""
    try:
        # Our own file handle, so a failed read still closes it.
        with open(os.fspath(path), "rb") as f, np.load(f, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{os.fspath(path)!r} is not a readable nncore model file ({exc})") from exc
    try:
        doc = json.loads(str(arrays.pop("meta")))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("it has no nncore model header")
        version = doc["format_version"]
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(
                f"it was written by nncore {doc.get('nncore_version', '?')} in file format "
                f"{version}; this nncore reads formats up to {FORMAT_VERSION}: upgrade nncore")
        estimator = _rebuild(doc, arrays)
    except (KeyError, TypeError, IndexError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot load {os.fspath(path)!r}: the file is corrupt or was "
                         f"modified ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        raise ValueError(f"cannot load {os.fspath(path)!r}: {exc}") from None
    return (estimator, doc.get("user")) if with_metadata else estimator


def _expect(array, shape, what):
    if array.shape != tuple(shape):
        raise ValueError(f"{what} has shape {array.shape}, the architecture needs {tuple(shape)}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{what} holds non-finite values")
    return array


def _rebuild(doc, arrays):
    from .estimators import MLPClassifier, MLPRegressor
    from .network import Network
    from .optim import SGD, Adam, AdamW, Schedule

    classes = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
    if doc["class"] not in classes:
        raise ValueError(f"unknown estimator class {doc['class']!r}")
    params = dict(doc["params"])
    if isinstance(params.get("hidden_layer_sizes"), list):  # JSON has no tuples
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    params["callbacks"] = ()
    estimator = classes[doc["class"]](**params)
    estimator._validate_params()
    spec = doc["network"]
    net = Network(spec["layer_sizes"], spec["activation"], spec["loss"], alpha=spec["alpha"],
                  loss_reduction=spec["loss_reduction"], dtype=spec["dtype"],
                  batch_norm=spec["batch_norm"], init="zeros", n_threads=params["n_threads"])
    net.params[:] = _expect(arrays["params"], net.params.shape, "params")
    if net.batch_norm:
        state = net._core.batchnorm_state
        state[:] = _expect(arrays["batchnorm_state"], state.shape, "batchnorm_state")
    estimator._network = net
    for key, value in doc["fitted"].items():
        if key not in _FITTED:
            raise ValueError(f"unexpected fitted attribute {key!r}")
        setattr(estimator, key, value)
    if estimator.n_layers_ != len(spec["layer_sizes"]) or \
            estimator.n_outputs_ != spec["layer_sizes"][-1]:
        raise ValueError("fitted attributes disagree with the architecture")
    estimator._best_state = None

    estimator._optimizer = None
    if doc["optimizer"] is not None:
        spec = doc["optimizer"]
        optimizer_class = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}[spec["class"]]
        optimizer = optimizer_class(**spec["args"])  # _core_args() are the constructor's
        optimizer._bind(net)
        state = {key: _expect(arrays[f"optimizer_{key}"], view.shape, f"optimizer {key}")
                 for key, view in optimizer.state.items() if key != "t"}
        if optimizer_class is not SGD:
            state["t"] = int(spec["t"])
        optimizer.set_state(state, net)
        estimator._optimizer = optimizer
    estimator._schedule = None
    if doc["schedule"] is not None:
        schedule = Schedule.__new__(Schedule)
        schedule.__setstate__(doc["schedule"])
        estimator._schedule = schedule

    if "label_binarizer" in doc:
        classes_ = arrays["classes"]
        if doc["label_binarizer"]["object_classes"]:
            classes_ = classes_.astype(object)
        binarizer = LabelBinarizer()
        if doc["label_binarizer"]["y_type"].startswith("multilabel"):
            binarizer.fit(np.eye(len(classes_), dtype=int))
        else:
            binarizer.fit(classes_)
        estimator._label_binarizer = binarizer
        estimator.classes_ = binarizer.classes_
    if "feature_names_in" in arrays:
        estimator.feature_names_in_ = arrays["feature_names_in"].astype(object)
    return estimator

