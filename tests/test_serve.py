"""`nncore serve`: a saved model answering over HTTP. The service's answers are the in-process
predictions and `nncore predict`'s; bad requests get a 4xx with a message and leave the service,
and the good requests beside them, unharmed; a real server on a loopback port is load tested with
concurrent httpx clients and stops cleanly on SIGTERM."""

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

import nncore
from nncore.cli import main as cli

pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")
from nncore.serve import RequestError, Service, create_app, load_service  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _table(n=240, seed=0):
    rng = np.random.default_rng(seed)
    age = np.round(rng.normal(40, 10, n), 2)
    color = rng.choice(["red", "green", "blue"], n)
    size = np.round(rng.normal(size=n), 3)
    label = np.where((age > 40) ^ (color == "red"), "yes", "no")
    return pd.DataFrame({"age": age, "color": color, "size": size, "label": label})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A `train --save` model with preprocessing, an estimator.save() classifier and regressor,
    and the raw table."""
    tmp = tmp_path_factory.mktemp("serve")
    data = tmp / "data.csv"
    _table().to_csv(data, index=False)
    tabular = tmp / "tabular.npz"
    assert cli(["train", "--csv", str(data), "--target", "label", "--epochs", "20",
                "--learning-rate", "0.01", "--save", str(tabular), "--no-progress"]) == 0
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 5))
    classifier = nncore.MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0)
    classifier.fit(X, np.digitize(X[:, 0], [-0.5, 0.5])).save(tmp / "classifier.npz")
    regressor = nncore.MLPRegressor(hidden_layer_sizes=(16,), max_iter=30, random_state=0)
    regressor.fit(X, X[:, :2] @ [1.0, -2.0]).save(tmp / "regressor.npz")
    named = nncore.MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    named.fit(pd.DataFrame(X, columns=list("abcde")), X[:, 0] > 0).save(tmp / "named.npz")
    return {"dir": tmp, "data": data, "tabular": tabular, "classifier": tmp / "classifier.npz",
            "regressor": tmp / "regressor.npz", "named": tmp / "named.npz", "X": X}


def _body(rows) -> bytes:
    return json.dumps({"rows": rows}).encode()


def _records(frame):
    return json.loads(frame.to_json(orient="records"))


def _predict_command(files, frame):
    """What `nncore predict` writes for these rows: (labels, probabilities)."""
    path = files["dir"] / f"rows-{threading.get_ident()}.csv"
    out = files["dir"] / f"out-{threading.get_ident()}.csv"
    frame.to_csv(path, index=False)
    assert cli(["predict", "--model", str(files["tabular"]), str(path), "--output", str(out)]) == 0
    result = pd.read_csv(out, dtype={"prediction": str})
    return result["prediction"].tolist(), result.drop(columns="prediction").to_numpy()


def test_records_get_the_in_process_and_the_predict_commands_answers(files):
    service = load_service(files["tabular"])
    model = nncore.load(files["tabular"])
    frame = _table(30, seed=5).drop(columns="label")
    answer = service.predict(_body(_records(frame)))
    assert answer["classes"] == ["no", "yes"]
    np.testing.assert_array_equal(answer["probabilities"], model.predict_proba(frame))
    assert answer["predictions"] == model.predict(frame).tolist()
    labels, proba = _predict_command(files, frame)
    assert answer["predictions"] == labels
    np.testing.assert_allclose(answer["probabilities"], proba, rtol=5e-6)  # its %.6g
    # Columns in any order, extra columns ignored, numbers as strings read as numbers.
    shuffled = [{"size": str(r["size"]), "extra": 1, "color": r["color"], "age": r["age"]}
                for r in _records(frame)]
    assert service.predict(_body(shuffled)) == answer


def test_records_are_checked_as_the_predict_command_checks_them(files):
    service = load_service(files["tabular"])
    rows = _records(_table(6, seed=2).drop(columns="label"))
    rows[1]["color"] = rows[4]["color"] = "purple"
    answer = service.predict(_body(rows))
    assert answer["unseen_categories"] == {"color": {"purple": 2}}
    rows[2]["size"] = None
    with pytest.raises(RequestError) as error:
        service.predict(_body(rows))
    assert error.value.status == 422
    assert "column 'size' has a missing value in row 3" in error.value.message
    missing = [{k: v for k, v in r.items() if k != "age"} for r in rows]
    with pytest.raises(RequestError, match="no column 'age'"):
        service.predict(_body(missing))
    with pytest.raises(RequestError, match="takes records of raw columns"):
        service.predict(_body([[1.0] * service.n_features]))


BAD = [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, 'a JSON object {"rows"'),
    (b'{"row": []}', 400, 'a JSON object {"rows"'),
    (b'{"rows": []}', 400, "non-empty list"),
    (b'{"rows": 3}', 400, "non-empty list"),
    (b'{"rows": [[1, 2]]}', 400, "rows[0] has 2 values; every row must be a list of 5 numbers"),
    (b'{"rows": [[1, 2, 3, 4, 5], 7]}', 400, "rows[1] is 7"),
    (b'{"rows": [[1, 2, "x", 4, 5]]}', 400, 'rows[0][2] is "x": every value must be a number'),
    (b'{"rows": [[1, 2, [3], 4, 5]]}', 400, "rows[0][2] is [3]"),
    (b'{"rows": [[1, 2, 1e999999, 4, 5]]}', 400, "not valid JSON (number is infinity"),
    (b'{"rows": [[1, 2, NaN, 4, 5]]}', 400, "not valid JSON"),
    (b'{"rows": [[1, 2, null, 4, 5]]}', 422, "Input X contains NaN"),
    (b'{"rows": [[1, 2, 1' + b"0" * 400 + b', 4, 5]]}', 400, "not valid JSON (number is infinity"),
    (b'{"rows": [[1, 2, 123456789012345678901234567890, 4, 5]]}', 200, ""),
    (b'{"rows": [{"a": 1}]}', 400, "fitted without column names"),
    (b'{"rows": [' + b",".join([b"[1,2,3,4,5]"] * 11) + b"]}", 413, "at most 10 (--max-rows)"),
]


@pytest.mark.parametrize("body, status, message", BAD)
def test_bad_requests_get_a_4xx_with_a_message(files, body, status, message):
    service = load_service(files["classifier"], max_rows=10)
    if status == 200:  # a number JSON allows, beyond int64 but within float64
        assert len(service.predict(body)["predictions"]) == 1
        return
    with pytest.raises(RequestError) as error:
        service.predict(body)
    assert error.value.status == status
    assert message in error.value.message


def test_matrix_models_classifier_regressor_and_named_columns(files):
    X = files["X"][:7]
    classifier = load_service(files["classifier"])
    model = nncore.load(files["classifier"])
    answer = classifier.predict(_body(X.tolist()))
    assert answer["predictions"] == model.predict(X).tolist()
    np.testing.assert_array_equal(answer["probabilities"], model.predict_proba(X))
    assert answer["classes"] == [0, 1, 2]
    regressor = load_service(files["regressor"])
    answer = regressor.predict(_body(X.tolist()))
    np.testing.assert_array_equal(answer["predictions"], nncore.load(files["regressor"]).predict(X))
    assert set(answer) == {"predictions"}
    named = load_service(files["named"])
    records = [dict(zip("abcde", row)) for row in X.tolist()]
    assert named.predict(_body(records)) == named.predict(_body(X.tolist()))
    with pytest.raises(RequestError, match="no column 'e'"):
        named.predict(_body([{k: v for k, v in r.items() if k != "e"} for r in records]))
    with pytest.raises(RequestError, match=r"rows\[0\]\['a'\] is \{"):
        named.predict(_body([{**records[0], "a": {"x": 1}}]))


def test_model_document_and_the_http_layer(files):
    import asyncio

    service = load_service(files["tabular"])
    app = create_app(service, max_body_bytes=2000)
    rows = _records(_table(3, seed=3).drop(columns="label"))

    async def chunks():  # no content-length: the limit holds on the stream too
        for _ in range(10):
            yield b" " * 500

    async def session():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
            return [await client.get("/health"), await client.get("/model"),
                    await client.post("/predict", json={"rows": rows}),
                    await client.post("/predict", content=b'{"rows": [' + b" " * 3000 + b"]}"),
                    await client.post("/predict", content=chunks()),
                    await client.post("/predict", content=b"{"),
                    await client.get("/predict"), await client.post("/nothing"),
                    await client.post("/predict", json={"rows": rows})]

    health, model, good, big, streamed, broken, get, nothing, again = asyncio.run(session())
    assert health.json() == {"status": "ok"}
    doc = model.json()
    assert doc["model"] == "MLPClassifier" and doc["classes"] == ["no", "yes"]
    assert doc["nncore_version"] == nncore.__version__
    assert doc["build_info"] == json.loads(json.dumps(nncore.build_info()))
    assert [c["name"] for c in doc["inputs"]["columns"]] == ["age", "color", "size"]
    assert doc["inputs"]["columns"][1]["categories"] == ["blue", "green", "red"]
    assert good.status_code == 200 and good.json() == service.predict(_body(rows))
    assert good.headers["content-type"] == "application/json"
    assert big.status_code == 413 and "at most 2000" in big.json()["error"]
    assert streamed.status_code == 413 and "larger than 2000" in streamed.json()["error"]
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]
    assert get.status_code == 405 and nothing.status_code == 404
    assert again.json() == good.json()


def test_without_the_extra_the_command_says_what_to_install(files, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert cli(["serve", str(files["classifier"])]) == 2
    assert "pip install 'nncore[serve]'" in capsys.readouterr().err


def test_a_file_that_is_not_a_model_fails_before_serving(files, capsys):
    assert cli(["serve", str(files["data"]), "--port", "0"]) == 2
    assert "not an nncore model file" in capsys.readouterr().err


# ---- a real server ------------------------------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(files):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "nncore", "serve", str(files["tabular"]), "--port", str(port),
         "--no-access-log", "--max-rows", "200"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the service did not start: {process.communicate()[1][-2000:]}")
        time.sleep(0.1)
    yield url, process
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_concurrent_clients_get_exact_answers_and_bad_requests_harm_no_one(files, server):
    url, process = server
    model = nncore.load(files["tabular"])
    frame = _table(400, seed=9).drop(columns="label")
    records = _records(frame)
    expected_proba = model.predict_proba(frame)
    expected_labels = model.predict(frame).tolist()
    labels, proba = _predict_command(files, frame)
    assert labels == expected_labels
    np.testing.assert_allclose(proba, expected_proba, rtol=5e-6)
    bad_bodies = [b"{oops", b'{"rows": [[1, 2]]}', json.dumps({"rows": records[:201]}).encode(),
                  json.dumps({"rows": [{**records[0], "size": None}]}).encode()]
    clients, per_client = 8, 30
    failures, answered, refused = [], [0] * clients, [0] * clients

    def client(k):
        rng = np.random.default_rng(k)
        with httpx.Client(base_url=url, timeout=60) as http:
            for i in range(per_client):
                if i % 4 == 3:  # a bad request between good ones
                    r = http.post("/predict", content=bad_bodies[(i + k) % len(bad_bodies)],
                                  headers={"content-type": "application/json"})
                    if not (400 <= r.status_code < 500 and r.json()["error"]):
                        failures.append(("bad", r.status_code, r.text[:200]))
                    refused[k] += 1
                    continue
                start = int(rng.integers(0, 390))
                n = int(rng.choice([1, 2, 10]))
                r = http.post("/predict", json={"rows": records[start:start + n]})
                if r.status_code != 200:
                    failures.append(("good", r.status_code, r.text[:200]))
                    continue
                got = r.json()
                if not (got["predictions"] == expected_labels[start:start + n]
                        and np.array_equal(got["probabilities"],
                                           expected_proba[start:start + n])):
                    failures.append(("mismatch", start, n))
                answered[k] += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sum(answered) == clients * (per_client - per_client // 4 - (per_client % 4 == 3))
    assert sum(refused) > 0 and httpx.get(f"{url}/health").status_code == 200
    # SIGTERM: the requests under way finish, the process exits cleanly.
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    # uvicorn hands the signal back once it has shut down, so the exit says what stopped it.
    assert process.returncode in (0, -signal.SIGTERM), stderr[-2000:]
    assert "Finished server process" in stderr and "Traceback" not in stderr
