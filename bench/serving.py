"""Prediction as a service, measured: one request's latency in process, and the HTTP service.

    python bench/serving.py                    # in process and over HTTP, both dtypes
    python bench/serving.py --only inprocess   # or: --only http
    python bench/serving.py --json results.json

In process: a fitted 20-64-64-1 MLPClassifier (ReLU) answers predict_proba and predict on
batches of 1, 10, 100 and 20,000 rows, at 1 and 2 threads, beside scikit-learn's MLPClassifier of
the same architecture, onnxruntime running nncore's own ONNX export (a graph in the model's
dtype, no ZipMap), and the floor: the same forward pass as bare NumPy products on the same
weights. Every tool runs in its own process with its thread count set before it loads
(nncore n_threads, onnxruntime intra_op_num_threads, OPENBLAS/OMP/MKL_NUM_THREADS), each
measurement is the median over repeats of the mean over many calls, and the inputs are what a
service hands over: C-contiguous arrays of the model's dtype.

Over HTTP: `nncore serve` on a loopback port with the same model saved by `estimator.save`,
driven by clients (1 and 8 concurrent; a bare kept-alive socket, the least client there can be,
and httpx) posting one row each, then 100 rows each: requests
per second, p50 and p99 latency. That is the service's own overhead (parsing JSON, the ASGI
stack, the answer's JSON) on top of the model's microseconds; the "health" rows (GET /health,
no model, no JSON to parse) are the HTTP stack and the client alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BATCHES = (1, 10, 100, 20000)
TOOLS = ("nncore", "scikit-learn", "onnxruntime", "numpy")
N_FEATURES, HIDDEN = 20, (64, 64)


def problem(n=20000):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, N_FEATURES))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    return X, y


def fitted_nncore(dtype, n_threads=None):
    import warnings

    import nncore

    X, y = problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few epochs: the weights, not convergence, matter
        return nncore.MLPClassifier(hidden_layer_sizes=HIDDEN, max_iter=5, random_state=0,
                                    dtype=dtype, n_threads=n_threads).fit(X, y)


def timed(call, rows):
    """Median over repeats of the mean seconds per call; calls per repeat sized to ~50 ms."""
    call()
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-7)
    per_repeat = max(1, min(20000, int(0.05 / once)))
    repeats = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(per_repeat):
            call()
        repeats.append((time.perf_counter() - start) / per_repeat)
    return statistics.median(repeats)


def inprocess_worker(tool, dtype, threads):
    """{batch: {"proba": s, "predict": s}} for one tool at one thread count."""
    import numpy as np

    X_all = np.ascontiguousarray(problem()[0], dtype=dtype)
    model = fitted_nncore(dtype, n_threads=threads)
    batches = {n: np.ascontiguousarray(X_all[:n]) for n in BATCHES}
    out = {}
    if tool == "nncore":
        calls = {"proba": model.predict_proba, "predict": model.predict}
    elif tool == "scikit-learn":
        import warnings

        from sklearn.neural_network import MLPClassifier

        X, y = problem()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sk = MLPClassifier(hidden_layer_sizes=HIDDEN, max_iter=5, random_state=0).fit(X, y)
        calls = {"proba": sk.predict_proba, "predict": sk.predict}
    elif tool == "onnxruntime":
        import onnxruntime as ort
        import skl2onnx

        import nncore.onnx

        nncore.onnx.register()
        onx = skl2onnx.to_onnx(model, X_all[:1], options={"zipmap": False})
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(onx.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        label, proba = (o.name for o in session.get_outputs())

        calls = {"proba": lambda X: session.run([proba], {name: X})[0],
                 "predict": lambda X: session.run([label], {name: X})[0]}
    else:  # numpy: the bare forward pass on the same weights
        W = [np.ascontiguousarray(c, dtype=dtype) for c in model.coefs_]
        b = [np.asarray(i, dtype=dtype) for i in model.intercepts_]

        def proba(X):
            a = X
            for t in range(len(W) - 1):
                a = np.maximum(a @ W[t] + b[t], 0)
            p = 1 / (1 + np.exp(-(a @ W[-1] + b[-1])))
            return np.hstack([1 - p, p])

        calls = {"proba": proba, "predict": lambda X: proba(X)[:, 1] > 0.5}
    for n, X in batches.items():
        out[n] = {kind: timed(lambda: call(X), n) for kind, call in calls.items()}
    return out


def run_worker(args, env_threads):
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(env_threads)
    result = subprocess.run([sys.executable, __file__, "--worker", *args], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr else "failed"}
    return json.loads(result.stdout.splitlines()[-1])


def fmt(seconds):
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms"


def inprocess(dtypes, thread_counts):
    results = {}
    for dtype in dtypes:
        for threads in thread_counts:
            row = {tool: run_worker(["inprocess", tool, dtype, str(threads)], threads)
                   for tool in TOOLS}
            results[f"{dtype} {threads}t"] = row
            print(f"\n## {dtype}, {threads} thread{'s' if threads > 1 else ''}: seconds per call"
                  f" (ratio: the tool's time / nncore's)")
            print(f"{'rows':>6} {'call':8}" + "".join(f"{t:>24}" for t in TOOLS))
            for n in BATCHES:
                for kind in ("proba", "predict"):
                    base = row["nncore"].get(str(n), {}).get(kind)
                    cells = []
                    for tool in TOOLS:
                        value = row[tool].get(str(n), {}).get(kind) if "error" not in row[
                            tool] else None
                        ratio = f" ({value / base:.2f}x)" if value and base and tool != \
                            "nncore" else ""
                        cells.append(f"{fmt(value) + ratio:>24}")
                    print(f"{n:>6} {kind:8}" + "".join(cells))
            for tool in TOOLS:
                if "error" in row[tool]:
                    print(f"  {tool}: {row[tool]['error']}")
    return results


# ---- over HTTP ----------------------------------------------------------------------------------
def _raw_exchange(sock, request: bytes) -> int:
    """One HTTP/1.1 request on a kept-alive socket; the response's status once it has all come."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the service closed the connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ", 2)[1])


def http_worker(dtype, clients, rows, requests_per_client, kind):
    """Latencies of `clients` concurrent clients against a running service: httpx, or a bare
    kept-alive socket (what the service costs with the least client in the way)."""
    import socket
    import threading

    import numpy as np

    port = int(os.environ["NNCORE_BENCH_PORT"])
    X = problem()[0][:rows].tolist()
    body = json.dumps({"rows": X}).encode()
    if rows == 0:  # the stack alone: GET /health touches no model
        request = b"GET /health HTTP/1.1\r\nhost: bench\r\n\r\n"
    else:
        request = (b"POST /predict HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json"
                   b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    latencies, errors = [], []
    lock = threading.Lock()

    def client():
        mine = []
        if kind == "raw":
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for _ in range(requests_per_client):
                    start = time.perf_counter()
                    status = _raw_exchange(sock, request)
                    mine.append(time.perf_counter() - start)
                    if status != 200:
                        errors.append(status)
        else:
            import httpx

            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                for _ in range(requests_per_client):
                    start = time.perf_counter()
                    r = (http.get("/health") if rows == 0 else
                         http.post("/predict", content=body,
                                   headers={"content-type": "application/json"}))
                    mine.append(time.perf_counter() - start)
                    if r.status_code != 200:
                        errors.append(r.status_code)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    lat = np.sort(np.array(latencies))
    return {"rps": len(latencies) / wall, "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)), "errors": len(errors)}


def http(dtypes, workers=1, clients_kinds=("raw", "httpx")):
    import socket
    import tempfile

    results = {}
    for dtype in dtypes:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.npz")
            subprocess.run([sys.executable, "-c",
                            f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
                            f"import serving; serving.fitted_nncore({dtype!r}, 1).save({path!r})"],
                           check=True)
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            env = {**os.environ, "NNCORE_BENCH_PORT": str(port)}
            server = subprocess.Popen([sys.executable, "-m", "nncore", "serve", path,
                                       "--port", str(port), "--workers", str(workers)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                import httpx

                deadline = time.time() + 60
                while True:
                    try:
                        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                        break
                    except httpx.TransportError:
                        if time.time() > deadline or server.poll() is not None:
                            raise RuntimeError("the service did not start: "
                                               + server.stderr.read().decode()[-500:])
                        time.sleep(0.2)
                print(f"\n## nncore serve, {dtype} model, {workers} worker(s): per request")
                print(f"{'client':>7} {'clients':>8} {'rows':>6} {'req/s':>10} {'p50':>10} "
                      f"{'p99':>10}")
                for kind in clients_kinds:
                    for clients in (1, 8):
                        for rows in (0, 1, 100):
                            result = subprocess.run(
                                [sys.executable, __file__, "--worker", "http", dtype,
                                 str(clients), str(rows), str(max(50, 3000 // clients)), kind],
                                env=env, capture_output=True, text=True, check=True)
                            r = json.loads(result.stdout.splitlines()[-1])
                            results[f"{dtype} {kind} {clients} clients {rows} rows"] = r
                            print(f"{kind:>7} {clients:>8} {rows or 'health':>6} "
                                  f"{r['rps']:>10.0f} {fmt(r['p50']):>10} {fmt(r['p99']):>10}"
                                  + (f"  {r['errors']} errors" if r['errors'] else ""))
            finally:
                server.terminate()
                server.wait(timeout=30)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=("inprocess", "http"))
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--workers", type=int, default=1, help="nncore serve --workers")
    parser.add_argument("--clients", nargs="+", choices=("raw", "httpx"), default=["raw", "httpx"],
                        help="HTTP clients: a bare kept-alive socket, httpx")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "inprocess":
            tool, dtype, threads = rest
            out = inprocess_worker(tool, dtype, int(threads))
        else:
            dtype, clients, rows, count, kind = rest
            out = http_worker(dtype, int(clients), int(rows), int(count), kind)
        print(json.dumps(out))
        return
    import nncore

    info = nncore.build_info()
    print(f"nncore {nncore.__version__}, {info.get('cpu_target')} build, "
          f"{os.cpu_count()} CPUs")
    results = {}
    if args.only in (None, "inprocess"):
        results["inprocess"] = inprocess(args.dtypes, args.threads)
    if args.only in (None, "http"):
        results["http"] = http(args.dtypes, args.workers, args.clients)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
