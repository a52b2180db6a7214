"""A saved model as an HTTP service: `nncore serve MODEL.npz` (an optional extra:
``pip install 'nncore[serve]'``, Starlette on uvicorn)::

    POST /predict   {"rows": [...]}  ->  {"predictions": [...]}, and for a classifier
                    "probabilities" (one list per row, columns as "classes") and "classes"
    GET  /model     what the model takes and gives: its inputs, classes, nncore's version and
                    build_info()
    GET  /health    {"status": "ok"}

`rows` are records of raw columns (`[{"age": 41, "city": "Oslo"}, ...]`) for a model saved by
`nncore train --save` or `nncore.fit_stream` (its saved preprocessing applies: a missing column
or value is named as `nncore predict` names it, categories not seen in training are encoded as
all zeros and counted in the answer's "unseen_categories"), or for an estimator fitted on a
DataFrame (its feature names); or a numeric matrix (`[[0.1, 2.3, ...], ...]`) for an estimator
saved by `estimator.save` (columns in the order of `feature_names_in_` where it has them).

Bad requests get a 4xx answer with {"error": message}, and the service keeps serving: malformed
JSON or rows of the wrong shape or type 400, more rows than --max-rows or a body larger than
--max-body-mb 413, values the model cannot take (NaN, a missing column) 422 with the same
message the Python API gives. The model is shared by every request: predictions only read it
(the core evaluates one network from any number of threads at once), and a large request runs
on a worker thread with the GIL released, so small ones are not held up behind it.

`Service` is the model and how it answers, apart from HTTP (what `create_app` wraps and the
tests drive directly)."""

from __future__ import annotations

import json
import os

import numpy as np

INSTALL = "pip install 'nncore[serve]'"
DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_BODY_MB = 16.0
# A request body larger than this is parsed and predicted on a worker thread, not on the event
# loop: below it, the hop to a thread (~50 µs) costs more than the work.
_INLINE_BODY_BYTES = 64 * 1024
_ENVIRONMENT = "NNCORE_SERVE_SETTINGS"  # how --workers processes learn what to serve


class RequestError(Exception):
    """A request the service refuses: an HTTP status (4xx) and the message it answers with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _scalar_text(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Service:
    """A loaded model and the answers of the service's endpoints, as plain data, apart from HTTP.

    Parameters
    ----------
    model : MLPClassifier, MLPRegressor or nncore.tabular.TabularModel
        The fitted model; a TabularModel's preprocessing applies to records of raw columns.
    max_rows : int
        The most rows one request may hold (more is answered with 413).
    name : str
        The model's name in answers and messages (the file's name).
    """

    def __init__(self, model, *, max_rows: int = DEFAULT_MAX_ROWS, name: str = "model"):
        from sklearn.base import is_classifier

        from .estimators import MLPClassifier, MLPRegressor
        from .tabular import TabularModel

        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self.tabular = model if isinstance(model, TabularModel) else None
        self.estimator = model.estimator if self.tabular is not None else model
        if not isinstance(self.estimator, (MLPClassifier, MLPRegressor)):
            raise ValueError(f"{name} holds a {type(self.estimator).__name__}; the service "
                             f"serves nncore's MLPClassifier and MLPRegressor")
        self.max_rows = int(max_rows)
        self.name = name
        self._orjson = _orjson()
        self.classifier = is_classifier(self.estimator)
        self.n_features = int(self.estimator.n_features_in_)
        self.dtype = self.estimator.network_.dtype
        names = getattr(self.estimator, "feature_names_in_", None)
        self.feature_names = None if names is None else [str(c) for c in names]
        if self.tabular is not None:
            self.columns = [f["name"] for f in self.tabular.preprocessing.spec["features"]]
        else:
            self.columns = self.feature_names
        self.classes = self.estimator.classes_.tolist() if self.classifier else None

    # ---- GET /model ---------------------------------------------------------------------------
    def describe(self) -> dict:
        """The answer to ``GET /model``: what the model takes and gives.

        Returns
        -------
        dict
            The model's class, file and task, its inputs (columns and categories, or the
            width), classes, outputs, dtype, the row limit, nncore's version and
            ``build_info()``.
        """
        import nncore

        if self.tabular is not None:
            inputs = {"rows": "records", "columns": [
                {"name": f["name"], "kind": f["kind"],
                 "missing": "error" if f.get("fill") is None else "filled",
                 **({"categories": list(f["categories"])} if f["kind"] == "categorical" else {})}
                for f in self.tabular.preprocessing.spec["features"]]}
        else:
            inputs = {"rows": "matrix" if self.feature_names is None else "matrix or records",
                      "n_features": self.n_features, "feature_names": self.feature_names}
        task = "classification" if self.classifier else "regression"
        return {"model": type(self.estimator).__name__, "file": self.name, "task": task,
                "inputs": inputs, "classes": self.classes,
                "n_outputs": int(self.estimator.n_outputs_), "dtype": self.dtype.name,
                "max_rows": self.max_rows, "nncore_version": nncore.__version__,
                "build_info": nncore.build_info()}

    # ---- POST /predict ------------------------------------------------------------------------
    def predict(self, body: bytes) -> dict:
        """The answer to one ``POST /predict`` body.

        Parameters
        ----------
        body : bytes
            The request's JSON body, ``{"rows": [...]}``.

        Returns
        -------
        dict
            ``{"predictions": [...]}``, with ``"probabilities"`` and ``"classes"`` for a
            classifier and ``"unseen_categories"`` when some were met.

        Raises
        ------
        RequestError
            For a request the service refuses, with its 4xx status and message.
        """
        try:
            document = self._orjson.loads(body)
        except self._orjson.JSONDecodeError as exc:  # NaN, ±Infinity and overflowing numbers too
            raise RequestError(400, f"the body is not valid JSON ({exc})") from None
        if not isinstance(document, dict) or "rows" not in document:
            raise RequestError(400, 'the body must be a JSON object {"rows": [...]}')
        rows = document["rows"]
        if not isinstance(rows, list) or not rows:
            raise RequestError(400, '"rows" must be a non-empty list of rows')
        if len(rows) > self.max_rows:
            raise RequestError(413, f"{len(rows)} rows in one request; this service takes at "
                                    f"most {self.max_rows} (--max-rows)")
        unseen: dict = {}
        if self.tabular is not None and not isinstance(rows[0], dict):
            names = ", ".join(f'"{c}": ...' for c in self.columns[:3])
            raise RequestError(400, f"this model takes records of raw columns ({{{names}"
                                    f"{', ...' if len(self.columns) > 3 else ''}}}): its saved "
                                    f"preprocessing makes the inputs")
        if isinstance(rows[0], dict):
            X = self._from_records(rows, unseen)
        else:
            X = self._from_matrix(rows)
        try:
            answer = self._answer(X)
        except ValueError as exc:  # the estimator's own check of X (NaN, a wrong width, ...)
            raise RequestError(422, str(exc)) from None
        if unseen:
            answer["unseen_categories"] = unseen
        return answer

    def _answer(self, X) -> dict:
        # Plain lists: orjson writes a NaN or infinite output (an overflowing model) as null,
        # JSON having no such numbers.
        estimator = self.estimator
        if not self.classifier:
            predictions = estimator.predict(X)
            if self.tabular is not None:
                predictions = self.tabular.target_units(predictions)
            return {"predictions": predictions.tolist()}
        return {"predictions": estimator.predict(X).tolist(),
                "probabilities": estimator.predict_proba(X).tolist(),
                "classes": self.classes}

    def _from_records(self, rows, unseen):
        import pandas as pd

        if self.columns is None:
            raise RequestError(400, f"this model takes rows as a numeric matrix "
                                    f"([[x1, ..., x{self.n_features}], ...]): it was fitted "
                                    f"without column names, so records cannot be matched to "
                                    f"its inputs")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise RequestError(400, f"rows[{i}] is not a record; every row must be an object "
                                        f"of column values, as rows[0] is")
            for key, value in row.items():
                if value is not None and not isinstance(value, (str, int, float)):
                    raise RequestError(400, f"rows[{i}][{key!r}] is {_scalar_text(value)}: a "
                                            f"value must be a number, a string or null")
        frame = pd.DataFrame.from_records(rows)
        # Rows number from 1 in messages, as the data rows of a file do.
        try:
            if self.tabular is not None:
                return self.tabular.transform(frame, unseen=unseen)
        except ValueError as exc:
            raise RequestError(422, str(exc)) from None
        absent = [c for c in self.columns if c not in frame.columns]
        if absent:
            raise RequestError(422, f"the rows have no column {', '.join(map(repr, absent))}, "
                                    f"which the model needs")
        return frame[self.columns]

    def _from_matrix(self, rows):
        width = self.n_features
        for i, row in enumerate(rows):
            if type(row) is not list or len(row) != width:
                what = (f"has {len(row)} values" if type(row) is list else
                        f"is {_scalar_text(row)}")
                raise RequestError(400, f"rows[{i}] {what}; every row must be a list of "
                                        f"{width} numbers (the model's inputs)")
        try:
            X = np.array(rows, dtype=self.dtype)
        except (ValueError, TypeError):
            raise RequestError(400, _first_non_number(rows)) from None
        if X.ndim != 2:
            raise RequestError(400, _first_non_number(rows))
        if self.feature_names is not None:
            import pandas as pd

            return pd.DataFrame(X, columns=self.feature_names)
        return X


def _first_non_number(rows) -> str:
    """Why a matrix of rows of the right length did not convert: its first value that is not a
    number (orjson has already refused numbers too large for a double)."""
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if not isinstance(value, (int, float)):
                return (f"rows[{i}][{j}] is {_scalar_text(value)}: every value must be a "
                        f"number")
    return "every value must be a number"


# ---- HTTP ---------------------------------------------------------------------------------------
def _orjson():
    """orjson: parses a request's numbers ~13x and writes an answer ~18x faster than the json
    module (measured on 100-row requests: 73 µs against 952 µs to parse), which would otherwise
    be most of a request's time."""
    try:
        import orjson
    except ImportError:
        raise ImportError(f"`nncore serve` needs orjson: {INSTALL}") from None
    return orjson


def _starlette():
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ImportError(f"`nncore serve` needs Starlette and uvicorn: {INSTALL}") from None


async def _read_body(request, limit: int) -> bytes:
    """The body, refused with 413 once it passes `limit` bytes (announced or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the body has {int(declared)} bytes; this service takes at most "
                                f"{limit} (--max-body-mb)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body is larger than {limit} bytes, the most this "
                                    f"service takes (--max-body-mb)")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(service: Service, *, max_body_bytes: int = int(DEFAULT_MAX_BODY_MB * 2**20)):
    """The ASGI application (Starlette) serving a :class:`Service`.

    Parameters
    ----------
    service : Service
        The model and its answers.
    max_body_bytes : int
        The largest request body accepted (larger is answered with 413).

    Returns
    -------
    starlette.applications.Starlette
        The application.
    """
    _starlette()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response
    from starlette.routing import Route

    orjson = _orjson()

    def json_response(document, status=200):
        return Response(orjson.dumps(document), status_code=status,
                        media_type="application/json")

    async def predict(request):
        try:
            body = await _read_body(request, max_body_bytes)
            if len(body) > _INLINE_BODY_BYTES:
                answer = await run_in_threadpool(service.predict, body)
            else:
                answer = service.predict(body)
        except RequestError as exc:
            return json_response({"error": exc.message}, status=exc.status)
        return json_response(answer)

    model_document = service.describe()

    async def model(request):
        return json_response(model_document)

    async def health(request):
        return json_response({"status": "ok"})

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]),
                             Route("/model", model, methods=["GET"]),
                             Route("/health", health, methods=["GET"])])


def load_service(path, *, max_rows: int = DEFAULT_MAX_ROWS) -> Service:
    """The :class:`Service` of a model file written by ``save`` or ``nncore train --save``.

    Parameters
    ----------
    path : str or path-like
        The model file.
    max_rows : int
        The most rows one request may hold.

    Returns
    -------
    Service
        The service, named after the file.
    """
    from .persistence import load

    return Service(load(path), max_rows=max_rows, name=os.path.basename(os.fspath(path)))


def _app_from_environment():
    """The application of one --workers process, from the settings its parent left."""
    settings = json.loads(os.environ[_ENVIRONMENT])
    return create_app(load_service(settings["model"], max_rows=settings["max_rows"]),
                      max_body_bytes=settings["max_body_bytes"])


def run(model_path, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
        max_rows: int = DEFAULT_MAX_ROWS, max_body_mb: float = DEFAULT_MAX_BODY_MB,
        access_log: bool = True, log_level: str = "info") -> None:
    """Serve a model file over HTTP until SIGTERM or Ctrl-C (what ``nncore serve`` runs).

    On SIGTERM or Ctrl-C uvicorn finishes the requests under way and returns.

    Parameters
    ----------
    model_path : str or path-like
        The model file, written by ``save`` or ``nncore train --save``.
    host : str
        The address to listen on; ``'0.0.0.0'`` listens beyond this machine.
    port : int
        The TCP port.
    workers : int
        Processes, each with its own copy of the model.
    max_rows : int
        The most rows one request may hold (more is answered with 413).
    max_body_mb : float
        The largest request body in MiB (larger is answered with 413).
    access_log : bool
        Whether uvicorn logs every request.
    log_level : str
        uvicorn's log level.
    """
    _starlette()
    import uvicorn

    if not max_body_mb > 0:
        raise ValueError(f"max_body_mb must be > 0, got {max_body_mb}")
    max_body_bytes = int(max_body_mb * 2**20)
    service = load_service(model_path, max_rows=max_rows)  # a bad file fails here, once
    common = dict(host=host, port=port, access_log=access_log, log_level=log_level,
                  timeout_graceful_shutdown=10)
    if workers == 1:
        uvicorn.run(create_app(service, max_body_bytes=max_body_bytes), **common)
        return
    os.environ[_ENVIRONMENT] = json.dumps({"model": os.path.abspath(os.fspath(model_path)),
                                           "max_rows": max_rows,
                                           "max_body_bytes": max_body_bytes})
    uvicorn.run("nncore.serve:_app_from_environment", factory=True, workers=workers, **common)
