"""The OIP gRPC service of our server, with the field's own clients: Triton's
``tritonclient.grpc`` (raw tensors) and KServe's ``InferenceGRPCClient`` (typed
contents), each in a process of its own (their protos clash in one process: see
tests/oip_grpc.py, the client the other tests use); answers compared with ONNX Runtime,
errors as gRPC codes, the repository RPCs, batching shared with REST, the message
limit."""

import concurrent.futures
import json
import urllib.request

import subprocess
import sys

import grpc
import numpy as np
import pytest
from oip_grpc import Client
from test_serving_depth import adopted, casts_model, expected_outputs, infer_json, metrics

from kfp_interop.serving import start_server, stop_server
from kfp_interop.serving.process import free_port
from kfp_interop.storage import upload


@pytest.fixture(scope="module")
def casts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grpc-casts")
    return adopted(casts_model(tmp / "casts.onnx"), tmp / "adopted", "casts")


def serve(path, tmp_path, *extra):
    port = free_port()
    handle = start_server(str(path), log_path=str(tmp_path / "server.log"),
                          extra_args=["--grpc-port", str(port), *extra])
    return handle, f"127.0.0.1:{port}"


def infer(address, name, X, **kw):
    return Client(address).infer(name, {"x": X}, **kw)


TRITON_CLIENT = """
import json, sys
import numpy as np
import tritonclient.grpc as grpcclient

address, X = sys.argv[1], np.array(json.loads(sys.argv[2]), np.float32)
client = grpcclient.InferenceServerClient(address)
inp = grpcclient.InferInput("x", list(X.shape), "FP32")
inp.set_data_from_numpy(X)  # raw_input_contents
result = client.infer("casts", [inp], request_id="g1")
meta = client.get_model_metadata("casts", as_json=True)
print(json.dumps({
    "live": client.is_server_live(), "ready": client.is_server_ready(),
    "model_ready": client.is_model_ready("casts") and client.is_model_ready("casts", "1"),
    "unknown_ready": client.is_model_ready("nope"),
    "meta": meta, "extensions": client.get_server_metadata(as_json=True)["extensions"],
    "id": result.get_response().id,
    "outputs": {o.name: [str(result.as_numpy(o.name).dtype),
                         [v.decode() if isinstance(v, bytes) else v
                          for v in result.as_numpy(o.name).reshape(-1).tolist()]]
                for o in result.get_response().outputs},
    "index": client.get_model_repository_index(as_json=True)}))
"""


def test_triton_client_metadata_ready_and_raw_infer_on_every_datatype(casts, tmp_path):
    server, address = serve(casts, tmp_path)
    X = np.array([[0.5, -1.25, 3.0], [7.0, 2.0, -9.5]], np.float32)
    try:
        out = subprocess.run([sys.executable, "-c", TRITON_CLIENT, address,
                              json.dumps(X.tolist())], capture_output=True, text=True,
                             timeout=120)
    finally:
        stop_server(server.pid)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    assert got["live"] and got["ready"] and got["model_ready"] and not got["unknown_ready"]
    assert got["meta"]["name"] == "casts" and got["meta"]["versions"] == ["1"]
    assert got["meta"]["inputs"] == [{"name": "x", "datatype": "FP32", "shape": ["-1", "3"]}]
    assert got["extensions"] == ["binary_tensor_data", "model_repository"]
    assert got["id"] == "g1"
    assert got["index"]["models"] == [{"name": "casts", "version": "1", "state": "READY"}]
    for name, want in expected_outputs(casts, X).items():
        dtype, values = got["outputs"][name]
        assert dtype == ("object" if want.dtype == object else str(want.dtype)), name
        if want.dtype == object:
            assert values == [v.decode() if isinstance(v, bytes) else v
                              for v in want.reshape(-1)], name
        else:
            assert np.array_equal(np.array(values, dtype=want.dtype), want.reshape(-1)), name


KSERVE_CLIENT = """
import asyncio, json, sys
import numpy as np
from kserve import InferenceGRPCClient, InferInput, InferRequest

async def go(address, X):
    client = InferenceGRPCClient(address, retries=0, timeout=10)
    try:
        inp = InferInput(name="input", shape=list(X.shape), datatype="FP32")
        inp.set_data_from_numpy(X, binary_data=False)  # typed fp32_contents
        answer = await client.infer(InferRequest(model_name="iris", infer_inputs=[inp],
                                                 request_id="k1"))
        raw = InferInput(name="input", shape=list(X.shape), datatype="FP32")
        raw.set_data_from_numpy(X, binary_data=True)  # raw_input_contents
        raw_answer = await client.infer(InferRequest(model_name="iris", infer_inputs=[raw],
                                                     request_id="k2"))
        return {"live": await client.is_server_live(),
                "raw_outputs": {o.name: o.as_numpy().tolist() for o in raw_answer.outputs},
                "ready": await client.is_server_ready(),
                "model_ready": await client.is_model_ready("iris"),
                "outputs": {o.name: o.as_numpy().tolist() for o in answer.outputs}}
    finally:
        await client.close()

X = np.array(json.loads(sys.argv[2]), np.float32)
print(json.dumps(asyncio.run(go(sys.argv[1], X))))
"""


def test_kserve_grpc_client_with_typed_contents(iris_onnx, tmp_path):
    """KServe's client in a process of its own: its protos and Triton's client's share
    names, so one process cannot import both (our server builds its own pool)."""
    from kfp_interop.onnx_model import ort_session

    server, address = serve(iris_onnx, tmp_path)
    X = np.array([[5.1, 3.5, 1.4, 0.2], [6.9, 3.1, 5.4, 2.1]], np.float32)
    try:
        out = subprocess.run([sys.executable, "-c", KSERVE_CLIENT, address,
                              json.dumps(X.tolist())], capture_output=True, text=True,
                             timeout=120)
    finally:
        stop_server(server.pid)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    assert got["live"] and got["ready"] and got["model_ready"]
    sess = ort_session(iris_onnx)
    want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": X})))
    assert got["outputs"]["label"] == want["label"].tolist()
    assert got["raw_outputs"] == got["outputs"]
    np.testing.assert_allclose(got["outputs"]["probabilities"], want["probabilities"],
                               rtol=1e-6)


def test_errors_are_grpc_status_codes_and_the_message_limit_holds(casts, tmp_path):
    server, address = serve(casts, tmp_path, "--max-body-mb", "1")
    try:
        X = np.ones((2, 3), np.float32)

        def code(call, *args, **kw):
            with pytest.raises(grpc.RpcError) as info:
                call(*args, **kw)
            return info.value.code(), info.value.details()

        assert code(infer, address, "nope", X)[0] == grpc.StatusCode.NOT_FOUND
        assert code(infer, address, "casts", X, version="9")[0] == grpc.StatusCode.NOT_FOUND
        status, message = code(infer, address, "casts", np.ones((2, 4), np.float32))
        assert status == grpc.StatusCode.INVALID_ARGUMENT and "expects [-1, 3]" in message
        status, _ = code(infer, address, "casts", np.ones((120_000, 3), np.float32))
        assert status == grpc.StatusCode.RESOURCE_EXHAUSTED  # 1.4 MB > 1 MB, refused unread
        status, message = code(Client(address).load, "casts")
        assert status == grpc.StatusCode.INVALID_ARGUMENT
        assert "serves one model file: start it on a model repository" in message
        # a request that is not a ModelInferRequest at all
        channel = grpc.insecure_channel(address)
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                   request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as info:
            call(b"\xff\xff\xff garbage", timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # the server still answers, typed contents too
        assert infer(address, "casts", X, raw=False)[0]["out_fp32"].shape == (2, 3)
    finally:
        stop_server(server.pid)


def test_repository_rpcs_load_and_unload(casts, iris_onnx, tmp_path):
    repo = tmp_path / "repo"
    upload(iris_onnx, str(repo))
    upload(casts, str(repo))
    server, address = serve(repo, tmp_path, "--model-control-mode", "explicit")
    try:
        client = Client(address)
        assert {(m["name"], m["state"]) for m in client.index()} == {
            ("casts", "UNAVAILABLE"), ("iris", "UNAVAILABLE")}
        client.load("casts")
        assert client.ready("casts")
        X = np.ones((3, 3), np.float32)
        assert np.array_equal(infer(address, "casts", X)[0]["out_int64"],
                              expected_outputs(casts, X)["out_int64"])
        client.unload("casts")
        assert not client.ready("casts")
        with pytest.raises(grpc.RpcError) as info:
            client.load("missing")
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        stop_server(server.pid)


def test_rest_and_grpc_requests_share_one_batcher(casts, tmp_path):
    server, address = serve(casts, tmp_path, "--max-batch-size", "16",
                            "--max-queue-delay-us", "50000")
    try:
        rng = np.random.default_rng(1)
        requests = [rng.normal(size=(1, 3)).astype(np.float32) for _ in range(16)]

        def one(i):
            X = requests[i]
            if i % 2:
                return infer(address, "casts", X)[0]["out_fp64"]
            status, answer = infer_json(server.endpoint, "casts", X)
            assert status == 200
            out = {o["name"]: o for o in answer["outputs"]}["out_fp64"]
            return np.array(out["data"], np.float64).reshape(out["shape"])

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(one, range(16)))
        for X, got in zip(requests, answers):
            assert np.array_equal(got, expected_outputs(casts, X)["out_fp64"])
        m = metrics(server.endpoint)
        labels = '{model="casts",version="1"}'
        assert m[f"nv_inference_request_success{labels}"] == 16
        assert m[f"nv_inference_exec_count{labels}"] < 16
    finally:
        stop_server(server.pid)


def test_health_answers_while_a_large_grpc_request_runs(casts, tmp_path):
    """A large message is decoded and run in a worker process: the server's loop keeps
    answering health checks meanwhile (the answer itself is checked too)."""
    server, address = serve(casts, tmp_path)
    try:
        X = np.random.default_rng(2).normal(size=(400_000, 3)).astype(np.float32)  # 4.8 MB
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            future = pool.submit(infer, address, "casts", X)
            answered = 0
            while not future.done():
                with urllib.request.urlopen(server.endpoint + "/v2/health/live",
                                            timeout=5) as r:
                    answered += json.loads(r.read())["live"]
            outputs, _ = future.result()
        assert answered >= 1
        assert np.array_equal(outputs["out_int32"], expected_outputs(casts, X)["out_int32"])
    finally:
        stop_server(server.pid)


def test_the_committed_descriptor_is_the_proto_compiled():
    """grpc_descriptor.py is what scripts/gen_grpc_descriptor.py makes of the proto."""
    from conftest import ROOT

    out = subprocess.run([sys.executable, "scripts/gen_grpc_descriptor.py", "--check"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_no_test_module_imports_a_grpc_client_that_registers_global_protos():
    """Triton's and KServe's gRPC clients may only run in subprocesses here (else the
    second one imported in a pytest process fails: duplicate inference.* symbols)."""
    import ast
    import os

    from conftest import ROOT

    offenders = []
    for name in os.listdir(os.path.join(ROOT, "tests")):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(ROOT, "tests", name)).read())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.startswith(("tritonclient.grpc", "kserve.protocol.grpc"))
                   for n in names):
                offenders.append(name)
    assert offenders == []
