"""Serving side by side, one run: kfp-interop's OIP server, Triton 2.51 and MLServer 1.7
on the same ONNX models, REST and gRPC, with and without dynamic batching.

Models (ONNX, built here; weights random where only the cost matters):

* ``mlp-big``: an MLP of three 4096-unit hidden layers on 64 inputs (~135 MB of FP32
  weights, larger than the CPU's cache): the case batching is for; its config sets
  Triton's ``intra_op_thread_count`` parameter to 0 (ONNX Runtime's threads, one per
  core), which our server reads too (the other models: one thread);
* ``iris-lr``: scikit-learn LogisticRegression on iris;
* ``rf-100``: a 100-tree RandomForest on iris;
* ``digits-cnn``: a small CNN on 8x8 digit images (1 -> 8 -> 16 channels, 3x3).

For each model, server, protocol and batching setting: c=1 (one client, single-row
requests) p50/p99 latency, and c=64 (64 concurrent clients, single-row requests)
throughput and p99; beside them the ONNX Runtime floor (the session called directly, 1
row and 64 rows). Request bodies are serialized before timing; clients are threads of
this process (the same for every server).

Triton here is the ``nvidia-pytriton`` wheel's ``tritonserver`` with the repository's
ONNX Runtime stand-in (a Triton Python-based backend, ``tests/triton_server``), not
Triton's C++ onnxruntime backend: its numbers include the Python backend's IPC cost per
batch (say so beside them). Its dynamic batcher hands the stand-in a list of requests,
which the stand-in merges into one ONNX Runtime call as the C++ backend does.

Target (issue 19): mlp-big with 64 concurrent single-row clients, batched >= 3x the
unbatched throughput on our server. Prints ``batching_speedup_mlp_big`` per protocol.

MLServer runs from its own environment (``.mlserver-venv``: ``mlserver==1.7.1`` and
onnxruntime; it conflicts with the KServe SDK of the main one) with a minimal custom
ONNX Runtime runtime (``benchmarks/mlserver/onnx_runtime.py``: MLServer has none of its
own) and, batched, its adaptive batching (same maximum and delay). gRPC requests carry
typed ``fp32_contents``, which all three read.

Usage: ``python benchmarks/serving.py [--models mlp-big,rf-100] [--requests 1500]
[--no-triton] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

BATCH = {"max_batch_size": 64, "max_queue_delay_us": 2000}


# -- models -------------------------------------------------------------------------------
def _save(graph, path: str) -> str:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=10, producer_name="benchmark")
    onnx.save(model, path)
    return path


def mlp_big(path: str) -> tuple[str, np.ndarray]:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    sizes = [64, 4096, 4096, 4096, 10]
    nodes, inits, x = [], [], "x"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        w = (rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"),
                  numpy_helper.from_array(np.zeros(b, np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"h{i}"]))
        x = f"h{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [x], [f"r{i}"]))
            x = f"r{i}"
    nodes.append(helper.make_node("Identity", [x], ["logits"]))
    graph = helper.make_graph(
        nodes, "mlp_big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=inits)
    return _save(graph, path), rng.normal(size=(1, 64)).astype(np.float32)


def digits_cnn(path: str) -> tuple[str, np.ndarray]:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)

    def w(name, *shape):
        return numpy_helper.from_array((rng.normal(size=shape) * 0.2).astype(np.float32),
                                       name)

    nodes = [helper.make_node("Conv", ["x", "c1"], ["a1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a1"], ["r1"]),
             helper.make_node("Conv", ["r1", "c2"], ["a2"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a2"], ["r2"]),
             helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"])]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=[w("c1", 8, 1, 3, 3), w("c2", 16, 8, 3, 3), w("fw", 256, 10),
                     numpy_helper.from_array(np.zeros(10, np.float32), "fb")])
    return _save(graph, path), rng.normal(size=(1, 1, 8, 8)).astype(np.float32)


def sklearn_model(path: str, kind: str) -> tuple[str, np.ndarray]:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    est = (LogisticRegression(max_iter=500) if kind == "lr"
           else RandomForestClassifier(n_estimators=100, random_state=0)).fit(X, y)
    onx = to_onnx(est, initial_types=[("x", FloatTensorType([None, 4]))],
                  options={id(est): {"zipmap": False}},
                  target_opset={"": 17, "ai.onnx.ml": 3})
    onx.ir_version = 10
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    return path, X[:1]


BUILDERS = {"mlp-big": mlp_big, "iris-lr": lambda p: sklearn_model(p, "lr"),
            "rf-100": lambda p: sklearn_model(p, "rf"), "digits-cnn": digits_cnn}


def repository(models: list[str], work: str, batched: bool) -> tuple[str, dict]:
    """A Triton-layout repository of ``models`` (adopted, the record's serving block set
    when ``batched``), as ``upload`` writes it; and one input row per model."""
    from kfp_interop.metadata import load_metadata, save_metadata
    from kfp_interop.onnx_model import read_onnx
    from kfp_interop.steps import adopt_onnx_step
    from kfp_interop.storage import upload

    repo = os.path.join(work, "repo-batched" if batched else "repo")
    rows = {}
    for name in models:
        src, row = BUILDERS[name](os.path.join(work, f"{name}.onnx"))
        out = os.path.join(work, f"adopted-{name}")
        if not os.path.isdir(out):
            adopt_onnx_step(model_path=src, name=name, out_dir=out)
        path = os.path.join(out, "model.onnx")
        if batched:
            record = load_metadata(path).replace(serving={"dynamic_batching": BATCH})
            path = os.path.join(work, f"batched-{name}", "model.onnx")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            save_metadata(record, read_onnx(os.path.join(out, "model.onnx")), path)
        upload(path, repo)
        if name == "mlp-big":  # a large model: ONNX Runtime's threads, one per core
            with open(os.path.join(repo, name, "config.pbtxt"), "a") as f:
                f.write('parameters {\n  key: "intra_op_thread_count"\n'
                        '  value: { string_value: "0" }\n}\n')
        rows[name] = row
    return repo, rows


# -- clients ------------------------------------------------------------------------------
def rest_body(name: str, row: np.ndarray) -> bytes:
    return json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": list(row.shape),
                                   "data": row.reshape(-1).tolist()}]}).encode()


def grpc_body(name: str, row: np.ndarray) -> bytes:
    """Typed contents (fp32_contents): every server here reads them (raw contents are
    Triton's extension of the proto)."""
    from kfp_interop.serving.grpc_server import messages

    request = messages()["ModelInferRequest"](model_name=name)
    tensor = request.inputs.add(name="x", datatype="FP32", shape=list(row.shape))
    tensor.contents.fp32_contents.extend(row.reshape(-1).tolist())
    return request.SerializeToString()


class RestClient:
    def __init__(self, host: str, port: int, name: str, body: bytes):
        self.conn = http.client.HTTPConnection(host, port, timeout=60)
        self.path, self.body = f"/v2/models/{name}/infer", body
        self.headers = {"Content-Type": "application/json"}

    def __call__(self) -> None:
        self.conn.request("POST", self.path, self.body, self.headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"{r.status}: {data[:300]!r}")


class GrpcClient:
    def __init__(self, address: str, body: bytes):
        import grpc

        self.channel = grpc.insecure_channel(address)
        self.call = self.channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                             request_serializer=None,
                                             response_deserializer=None)
        self.body = body

    def __call__(self) -> None:
        self.call(self.body, timeout=60)


def run_load(make_client, clients: int, total: int) -> dict:
    """``total`` requests from ``clients`` threads (each its own connection):
    throughput and latency percentiles."""
    per = max(1, total // clients)
    latencies: list[float] = []
    lock = threading.Lock()
    conns = [make_client() for _ in range(clients)]
    for c in conns:  # warm every connection
        c()
    start_line = threading.Barrier(clients + 1)

    def worker(call):
        mine = []
        start_line.wait()
        for _ in range(per):
            t0 = time.perf_counter()
            call()
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    start_line.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    lat = sorted(latencies)
    return {"throughput": len(lat) / elapsed,
            "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000}


def ort_floor(path: str, row: np.ndarray) -> dict:
    from kfp_interop.onnx_model import ort_session

    sess = ort_session(path)
    out = {}
    for n in (1, 64):
        feed = {"x": np.repeat(row, n, axis=0)}
        for _ in range(5):
            sess.run(None, feed)
        times = []
        for _ in range(30 if n == 64 else 100):
            t0 = time.perf_counter()
            sess.run(None, feed)
            times.append(time.perf_counter() - t0)
        out[f"ort_{n}row_ms"] = statistics.median(times) * 1000
    return out


# -- servers ------------------------------------------------------------------------------
class Ours:
    label = "kfp-interop"

    def __init__(self, repo: str, batched: bool, threads: int = 1):
        from kfp_interop.serving.process import free_port

        self.repo, self.batched, self.threads = repo, batched, threads
        self.grpc_port = free_port()

    def __enter__(self):
        from kfp_interop.serving import start_server

        extra = ["--grpc-port", str(self.grpc_port), "--intra-op-threads", str(self.threads)]
        if not self.batched:
            extra += ["--max-batch-size", "0"]
        self.handle = start_server(self.repo, extra_args=extra, timeout=180)
        self.http = self.handle.endpoint
        self.grpc = f"127.0.0.1:{self.grpc_port}"
        return self

    def __exit__(self, *exc):
        from kfp_interop.serving import stop_server

        stop_server(self.handle.pid)


MLSERVER_VENV = os.environ.get("KFP_INTEROP_MLSERVER_VENV",
                               os.path.join(ROOT, ".mlserver-venv"))


class MLServerServer:
    """MLServer 1.7.1 (its own environment: it conflicts with the KServe SDK) serving the
    same ONNX files through a minimal custom runtime (benchmarks/mlserver/), with its
    adaptive batching (max_batch_size, max_batch_time) when batched."""

    label = "mlserver-1.7"

    def __init__(self, work: str, models: list[str], batched: bool):
        self.work, self.models, self.batched = work, models, batched

    def __enter__(self):
        import shutil
        import subprocess
        import urllib.request

        from kfp_interop.serving.process import free_port

        folder = os.path.join(self.work, "mlserver-" + ("batched" if self.batched else "plain"))
        for name in self.models:
            os.makedirs(os.path.join(folder, name), exist_ok=True)
            shutil.copyfile(os.path.join(self.work, f"adopted-{name}", "model.onnx"),
                            os.path.join(folder, name, "model.onnx"))
            settings = {"name": name, "implementation": "onnx_runtime.OnnxRuntime",
                        "parameters": {"uri": "./model.onnx", "extra": {
                            "intra_op_thread_count": 0 if name == "mlp-big" else 1}}}
            if self.batched:
                settings.update(max_batch_size=BATCH["max_batch_size"],
                                max_batch_time=BATCH["max_queue_delay_us"] / 1e6)
            with open(os.path.join(folder, name, "model-settings.json"), "w") as f:
                json.dump(settings, f)
        self.http_port, self.grpc_port = free_port(), free_port()
        with open(os.path.join(folder, "settings.json"), "w") as f:
            json.dump({"host": "127.0.0.1", "http_port": self.http_port,
                       "grpc_port": self.grpc_port, "metrics_port": free_port(),
                       "parallel_workers": 0, "debug": False}, f)
        env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "benchmarks", "mlserver")}
        self.log = open(os.path.join(self.work, "mlserver.log"), "ab")
        self.proc = subprocess.Popen([os.path.join(MLSERVER_VENV, "bin", "mlserver"), "start",
                                      folder], stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, cwd=folder)
        self.http = f"http://127.0.0.1:{self.http_port}"
        self.grpc = f"127.0.0.1:{self.grpc_port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(self.http + "/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("MLServer did not start: see "
                                   + os.path.join(self.work, "mlserver.log"))
            time.sleep(0.3)

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except Exception:  # noqa: BLE001
            self.proc.kill()
        self.log.close()


class TritonServer:
    label = "triton-2.51*"

    def __init__(self, repo: str, models: list[str]):
        self.repo, self.models = repo, models

    def __enter__(self):
        from triton_server.server import Triton

        self.server = Triton(self.repo, timeout=120).__enter__()
        for m in self.models:
            self.server.load(m)
        self.http, self.grpc = self.server.url, self.server.grpc_url
        return self

    def __exit__(self, *exc):
        self.server.__exit__(*exc)


def measure(server, models: list[str], rows: dict, requests: int) -> dict:
    out = {}
    host, port = server.http.split("//", 1)[1].split(":")
    for name in models:
        for proto in ("rest", "grpc"):
            if proto == "rest":
                body = rest_body(name, rows[name])

                def make(body=body, name=name):
                    return RestClient(host, int(port), name, body)
            else:
                body = grpc_body(name, rows[name])

                def make(body=body):
                    return GrpcClient(server.grpc, body)
            c1 = run_load(make, 1, max(100, requests // 8))
            c64 = run_load(make, 64, requests)
            out[(name, proto)] = {"c1_p50_ms": c1["p50_ms"], "c1_p99_ms": c1["p99_ms"],
                                  "c64_rps": c64["throughput"], "c64_p99_ms": c64["p99_ms"]}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(BUILDERS))
    p.add_argument("--requests", type=int, default=1280,
                   help="requests per c=64 measurement (c=1: an eighth)")
    p.add_argument("--no-triton", action="store_true")
    p.add_argument("--no-mlserver", action="store_true")
    p.add_argument("--threads", type=int, default=1,
                   help="our server's --intra-op-threads (Triton's stand-in: ONNX "
                        "Runtime's default, one per core)")
    p.add_argument("--json")
    a = p.parse_args(argv)
    models = [m for m in a.models.split(",") if m]
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="kfp-interop-bench-") as work:
        plain, rows = repository(models, work, batched=False)
        batched, _ = repository(models, work, batched=True)
        floors = {m: ort_floor(os.path.join(work, f"adopted-{m}", "model.onnx"), rows[m])
                  for m in models}
        runs = [("kfp-interop", "unbatched", lambda: Ours(plain, False, a.threads)),
                ("kfp-interop", "batched", lambda: Ours(batched, True, a.threads))]
        if not a.no_triton:
            from triton_server.server import available

            why = available()
            if why:
                print(f"Triton not measured: {why}")
            else:
                runs += [("triton-2.51*", "unbatched", lambda: TritonServer(plain, models)),
                         ("triton-2.51*", "batched", lambda: TritonServer(batched, models))]
        if not a.no_mlserver:
            if os.path.isfile(os.path.join(MLSERVER_VENV, "bin", "mlserver")):
                runs += [("mlserver-1.7", "unbatched",
                          lambda: MLServerServer(work, models, False)),
                         ("mlserver-1.7", "batched",
                          lambda: MLServerServer(work, models, True))]
            else:
                print(f"MLServer not measured: no environment at {MLSERVER_VENV} (python3.11 "
                      "-m venv .mlserver-venv && .mlserver-venv/bin/pip install "
                      "mlserver==1.7.1 onnxruntime)")
        for server_name, mode, make in runs:
            with make() as server:
                for (model, proto), r in measure(server, models, rows, a.requests).items():
                    results[f"{model}|{server_name}|{proto}|{mode}"] = r
    print(f"{'model':<11}{'server':<14}{'proto':<6}{'batching':<10}"
          f"{'c1 p50 ms':>10}{'c1 p99 ms':>10}{'c64 req/s':>11}{'c64 p99 ms':>11}")
    for key, r in results.items():
        model, server, proto, mode = key.split("|")
        print(f"{model:<11}{server:<14}{proto:<6}{mode:<10}{r['c1_p50_ms']:>10.2f}"
              f"{r['c1_p99_ms']:>10.2f}{r['c64_rps']:>11.0f}{r['c64_p99_ms']:>11.1f}")
    print("ONNX Runtime floor (session called directly, one intra-op thread):")
    for m, f in floors.items():
        print(f"  {m:<11} 1 row {f['ort_1row_ms']:.3f} ms, 64 rows {f['ort_64row_ms']:.3f} ms")
    print("* Triton with the ONNX Runtime stand-in (a Python-based backend): its numbers "
          "include that backend's cost, not Triton's C++ onnxruntime backend's.")
    if "mlp-big" in models:
        for proto in ("rest", "grpc"):
            on = results[f"mlp-big|kfp-interop|{proto}|batched"]["c64_rps"]
            off = results[f"mlp-big|kfp-interop|{proto}|unbatched"]["c64_rps"]
            print(f"batching_speedup_mlp_big_{proto} = {on / off:.2f} (target >= 3)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": results, "ort_floor": floors}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
