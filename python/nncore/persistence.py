"""The model file format: portable `.npz` files without pickle, read and written here; what goes
into them is each model's own `to_document()` / `from_document()`.

A file holds one JSON document (format name and version, the nncore version that wrote it, the
model's class and its document, the user's metadata) and plain numeric or string arrays. `load`
reads it with ``allow_pickle=False`` and hands document and arrays to the `from_document` of the
class registered under the document's class name (the estimators register themselves).
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile

import numpy as np

from ._version import __version__

FORMAT = "nncore-model"
# 3: the document as UTF-8 bytes (a NumPy string array, before, took 4 bytes a character) and
# per-epoch lists (history_, loss_curve_) as arrays. Files of formats 1 and 2 still load.
FORMAT_VERSION = 3
_CLASSES: dict = {}  # class name -> class with from_document(doc, arrays)


def register(cls) -> type:
    """Let `load` rebuild models of class `cls` (by its name) through cls.from_document."""
    _CLASSES[cls.__name__] = cls
    return cls


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store a {type(value).__name__} in an nncore model file")


def save(model, path, *, metadata: dict | None = None) -> None:
    """Write a fitted model (anything with `to_document()`, e.g. MLPClassifier/MLPRegressor) to
    `path` (a .npz file, or an open binary file). `metadata`, a JSON-serialisable dict, is stored alongside and returned
    by `load(..., with_metadata=True)`."""
    document, arrays = model.to_document()
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "nncore_version": __version__,
           **document, "user": metadata}
    meta = np.frombuffer(json.dumps(doc, default=_json_default).encode("utf-8"), np.uint8)
    if hasattr(path, "write"):
        np.savez(path, meta=meta, **arrays)
        return
    with open(os.fspath(path), "wb") as f:
        np.savez(f, meta=meta, **arrays)


def _document_text(meta: np.ndarray) -> str:
    """The JSON document: UTF-8 bytes (format 3) or a NumPy string (formats 1 and 2)."""
    return meta.tobytes().decode("utf-8") if meta.dtype == np.uint8 else str(meta)


def columns_document(records: list, arrays: dict, prefix: str):
    """A list of per-epoch records (dicts with the same keys, numbers or None) as one array per
    key in `arrays` (`prefix` + key; a key whose values are partly None gets a mask array too)
    and the small document that names them; None when the records are not all of that form
    (they are then stored as JSON)."""
    if not records or not all(isinstance(r, dict) for r in records):
        return None
    keys = list(records[0])
    if not all(list(r) == keys for r in records):
        return None
    columns = []
    for key in keys:
        values = [r[key] for r in records]
        if any(isinstance(v, bool) or not (v is None or isinstance(v, (int, float, np.number)))
               for v in values):
            return None
        missing = [v is None for v in values]
        if all(missing):
            columns.append({"key": key, "kind": "none"})
            continue
        kind = "int" if all(isinstance(v, (int, np.integer)) for v in values) else "float"
        arrays[prefix + key] = np.array([np.nan if v is None else v for v in values],
                                        np.int64 if kind == "int" else np.float64)
        column = {"key": key, "kind": kind}
        if any(missing):
            arrays[prefix + key + ".none"] = np.array(missing)
            column["none"] = True
        columns.append(column)
    return {"length": len(records), "columns": columns}


def records_from_columns(spec: dict, arrays: dict, prefix: str) -> list:
    """The records `columns_document` stored."""
    length = int(spec["length"])
    lists = []
    for column in spec["columns"]:
        key, kind = column["key"], column["kind"]
        if kind == "none":
            lists.append([None] * length)
            continue
        values = np.asarray(arrays[prefix + key])
        if values.shape != (length,) or kind not in ("int", "float"):
            raise ValueError(f"history column {key!r} does not match its document")
        listed = [int(v) for v in values] if kind == "int" else [float(v) for v in values]
        if column.get("none"):
            listed = [None if gone else v for v, gone in
                      zip(listed, np.asarray(arrays[prefix + key + ".none"]))]
        lists.append(listed)
    keys = [column["key"] for column in spec["columns"]]
    return [dict(zip(keys, row)) for row in zip(*lists)] if keys else [{}] * length


def _with_preprocessing(model, doc):
    """A model that carries the preprocessing of the raw table it was trained on — `nncore
    train --save` keeps it in the file's metadata, an estimator trained by `fit_stream` in its
    own document — comes back as a TabularModel, whose predictions take the raw rows."""
    from .tabular import TabularModel

    user = doc.get("user")
    cli = user.get("cli") if isinstance(user, dict) else None
    if isinstance(cli, dict) and "preprocessing" in cli:
        others = {k: v for k, v in user.items() if k != "cli"}
        return TabularModel.from_command_line_document(model, cli, others or None)
    preprocessing = doc.get("preprocessing")
    if preprocessing is not None:
        task = "classification" if hasattr(model, "classes_") else "regression"
        return TabularModel(model, preprocessing, task=task, metadata=user)
    return model


class _NotAnArchive(ValueError):
    pass


def _check_archive(f, name) -> None:
    """A model file is a .npz (zip) archive: anything else is named for what it looks like,
    before NumPy's reader suggests loading it as a pickle."""
    if not f.seekable():
        return
    start = f.tell()
    head = f.read(512)
    f.seek(start)
    if head.startswith(b"PK"):  # a zip archive, empty or not: the reader says what it lacks
        return
    text = head.decode("utf-8", errors="ignore")  # the 512 bytes may end inside a character
    if not all(c.isprintable() or c.isspace() for c in text):
        text = None
    looks = ("an empty file" if not head else
             f"text starting {text.splitlines()[0][:40]!r} (a CSV file? the model comes first: "
             f"nncore predict --model MODEL.npz DATA.csv)" if text and text.strip() else
             "binary data")
    raise _NotAnArchive(f"{name} is not an nncore model file: a model is the .npz archive "
                        f"that save() or `nncore train --save` writes; this is {looks}")


def load(path, *, with_metadata: bool = False):
    """Read a model written by ``save`` (or ``nncore train --save``).

    The file is read without pickle and every shape checked; see the documentation's page on
    the file format.

    Parameters
    ----------
    path : str, path-like or binary file object
        The ``.npz`` file, or an open binary file read from its current position.
    with_metadata : bool
        Whether to return the ``metadata`` stored by ``save`` too.

    Returns
    -------
    model : MLPClassifier, MLPRegressor or nncore.tabular.TabularModel
        The fitted estimator; a model saved with the preprocessing of its raw table
        (``nncore train --save``, or an estimator trained by :func:`nncore.fit_stream`) comes
        back as a :class:`~nncore.tabular.TabularModel`, whose predictions take the raw rows as
        ``nncore predict`` does.
    metadata : dict or None
        Only with ``with_metadata=True``: the stored metadata.

    Raises
    ------
    ValueError
        For files that are not nncore models, are truncated or tampered with, or come from a
        newer nncore.
    FileNotFoundError
        When the path does not exist.
    """
    is_file = hasattr(path, "read")  # an open binary file (or BytesIO), read from where it is
    name = repr(getattr(path, "name", "the file object")) if is_file else repr(os.fspath(path))
    if not is_file and not os.path.exists(os.fspath(path)):
        raise FileNotFoundError(f"no model file {name}")
    try:
        # Our own file handle for a path, so a failed read still closes it.
        with (contextlib.nullcontext(path) if is_file else open(os.fspath(path), "rb")) as f:
            _check_archive(f, name)
            with np.load(f, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
    except _NotAnArchive:
        raise
    except (ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{name} is not a readable nncore model file ({exc})") from exc
    try:
        doc = json.loads(_document_text(arrays.pop("meta")))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("it has no nncore model header")
        version = doc["format_version"]
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(
                f"it was written by nncore {doc.get('nncore_version', '?')} in file format "
                f"{version}; this nncore reads formats up to {FORMAT_VERSION}: upgrade nncore")
        if doc["class"] not in _CLASSES:
            raise ValueError(f"unknown estimator class {doc['class']!r}")
        model = _CLASSES[doc["class"]].from_document(doc, arrays)
        model = _with_preprocessing(model, doc)
    except (KeyError, TypeError, IndexError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot load {name}: the file is corrupt or was "
                         f"modified ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        raise ValueError(f"cannot load {name}: {exc}") from None
    return (model, doc.get("user")) if with_metadata else model
