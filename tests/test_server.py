"""The local OIP server as a real process on 127.0.0.1, with real clients."""

import asyncio
import json
import os
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from conftest import oip_validator

from kfp_interop.errors import ModelFileError
from kfp_interop.metadata import load_metadata
from kfp_interop.metadata.render import to_oip
from kfp_interop.onnx_model import ort_session


def call(method, url, body=None, headers=None, raw=False):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            payload, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        payload, status = e.read(), e.code
    return status, (payload if raw else json.loads(payload))


def rows(n=3):
    return np.array([[5.1, 3.5, 1.4, 0.2], [6.0, 2.9, 4.5, 1.5], [6.9, 3.1, 5.4, 2.1]] * n,
                    dtype=np.float32)[:n]


def expected(onnx_path, X):
    sess = ort_session(onnx_path)
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": X})))


def test_health_server_and_model_metadata(server, iris_onnx):
    base = server.endpoint
    assert call("GET", base + "/v2/health/live") == (200, {"live": True})
    assert call("GET", base + "/v2/health/ready") == (200, {"ready": True})
    status, meta = call("GET", base + "/v2")
    assert status == 200
    oip_validator("metadata_server_response").validate(meta)
    assert "binary_tensor_data" in meta["extensions"]
    status, model_meta = call("GET", base + "/v2/models/iris")
    oip_validator("metadata_model_response").validate(model_meta)
    assert model_meta == to_oip(load_metadata(iris_onnx))
    assert call("GET", base + "/v2/models/iris/versions/1")[1] == model_meta
    assert call("GET", base + "/v2/models/iris/ready") == (200, {"name": "iris", "ready": True})
    assert call("GET", base + "/v2/models/iris/versions/1/ready")[0] == 200


def test_json_inference_matches_onnx_runtime(server, iris_onnx):
    X = rows(3)
    body = {"id": "r1", "inputs": [{"name": "input", "datatype": "FP32", "shape": [3, 4],
                                    "data": X.reshape(-1).tolist()}]}
    oip_validator("inference_request").validate(body)
    status, resp = call("POST", server.endpoint + "/v2/models/iris/infer", body)
    assert status == 200
    oip_validator("inference_response").validate(resp)
    assert resp["id"] == "r1" and resp["model_name"] == "iris" and resp["model_version"] == "1"
    out = {o["name"]: o for o in resp["outputs"]}
    want = expected(iris_onnx, X)
    assert out["label"]["data"] == want["label"].tolist()
    assert out["probabilities"]["shape"] == [3, 3]
    np.testing.assert_allclose(np.reshape(out["probabilities"]["data"], (3, 3)),
                               want["probabilities"], atol=1e-7)
    # nested data and a versioned URL work too; requested outputs restrict the response
    body["inputs"][0]["data"] = X.tolist()
    body["outputs"] = [{"name": "label"}]
    status, resp = call("POST", server.endpoint + "/v2/models/iris/versions/1/infer", body)
    assert status == 200 and [o["name"] for o in resp["outputs"]] == ["label"]


def test_tritonclient_http_binary_and_json(server, iris_onnx):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(server.endpoint.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.get_model_metadata("iris")["platform"] == "onnxruntime_onnx"
    X = rows(3)
    want = expected(iris_onnx, X)
    for binary_in in (True, False):
        inp = httpclient.InferInput("input", list(X.shape), "FP32")
        inp.set_data_from_numpy(X, binary_data=binary_in)
        result = client.infer("iris", [inp])  # outputs default to binary
        np.testing.assert_array_equal(result.as_numpy("label"), want["label"])
        np.testing.assert_allclose(result.as_numpy("probabilities"), want["probabilities"])
        outs = [httpclient.InferRequestedOutput("probabilities", binary_data=False),
                httpclient.InferRequestedOutput("label", binary_data=True)]
        result = client.infer("iris", [inp], outputs=outs, request_id="abc")
        assert result.get_response()["id"] == "abc"
        np.testing.assert_array_equal(result.as_numpy("label"), want["label"])
        np.testing.assert_allclose(result.as_numpy("probabilities"), want["probabilities"],
                                   atol=1e-7)
    # batch 1 and batch 257 both work (dynamic batch)
    for n in (1, 257):
        Xn = np.resize(X, (n, 4)).astype(np.float32)
        inp = httpclient.InferInput("input", [n, 4], "FP32")
        inp.set_data_from_numpy(Xn)
        assert client.infer("iris", [inp]).as_numpy("label").shape == (n,)
    client.close()


def test_kserve_rest_client(server, iris_onnx):
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    X = rows(2)
    inp = InferInput(name="input", shape=[2, 4], datatype="FP32")
    inp.set_data_from_numpy(X, binary_data=False)
    request = InferRequest(model_name="iris", infer_inputs=[inp], request_id="k1")

    async def go():
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=10))
        try:
            return await client.infer(server.endpoint, request, model_name="iris")
        finally:
            await client.close()

    response = asyncio.run(go())
    by_name = {o.name: o for o in response.outputs}
    np.testing.assert_array_equal(by_name["label"].as_numpy(), expected(iris_onnx, X)["label"])


@pytest.mark.parametrize("body,status,message", [
    ({"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4],
                  "data": [1, 2, 3, 4]}]}, 400, "datatype 'FP64'; model 'iris' expects 'FP32'"),
    ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3],
                  "data": [1, 2, 3]}]}, 400, "shape [1, 3]; model 'iris' expects [-1, 4]"),
    ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4],
                  "data": [1, 2, 3, 4]}]}, 400, "needs 8 values, data has 4"),
    ({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4],
                  "data": [1, 2, 3, 4]}]}, 400, "Missing input(s) ['input']"),
    ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                 {"name": "extra", "datatype": "FP32", "shape": [1], "data": [1]}]},
     400, "Unknown input 'extra'"),
    ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],
                  "data": ["a", "b", "c", "d"]}]}, 400, "not a list of FP32 values"),
    ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],
                  "data": [1, 2, 3, 4]}], "outputs": [{"name": "proba"}]},
     400, "Unknown output(s) ['proba']"),
    ({"inputs": []}, 400, "non-empty 'inputs'"),
    ([1, 2], 400, "JSON object"),
])
def test_bad_requests_get_oip_errors(server, body, status, message):
    got, resp = call("POST", server.endpoint + "/v2/models/iris/infer", body)
    assert got == status
    oip_validator("inference_error_response").validate(resp)
    assert message in resp["error"]


def test_malformed_json_unknown_model_and_version(server):
    status, resp = call("POST", server.endpoint + "/v2/models/iris/infer", b"{not json")
    assert status == 400 and "not valid JSON" in resp["error"]
    status, resp = call("POST", server.endpoint + "/v2/models/nope/infer",
                        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],
                                     "data": [1, 2, 3, 4]}]})
    assert status == 404 and "Unknown model 'nope'" in resp["error"] and "iris" in resp["error"]
    assert call("GET", server.endpoint + "/v2/models/nope")[0] == 404
    assert call("GET", server.endpoint + "/v2/models/nope/ready")[0] == 404
    status, resp = call("GET", server.endpoint + "/v2/models/iris/versions/7")
    assert status == 404 and "no version '7'" in resp["error"]


def test_binary_size_mismatch_is_a_bad_request(server):
    header = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],
                                     "parameters": {"binary_data_size": 12}}]}).encode()
    body = header + np.zeros(4, dtype=np.float32).tobytes()
    status, resp = call("POST", server.endpoint + "/v2/models/iris/infer", body,
                        headers={"Inference-Header-Content-Length": str(len(header))})
    assert status == 400 and "binary_data_size 12" in resp["error"]


def test_not_ready_model_answers_503(iris_onnx):
    import httpx

    from kfp_interop.serving.app import create_app
    from kfp_interop.serving.runtime import ServedModel

    app = create_app([ServedModel(iris_onnx, "iris")], load_in_background=False)

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return [await c.get("/v2/health/ready"), await c.get("/v2/models/iris/ready"),
                    await c.post("/v2/models/iris/infer", json={"inputs": []}),
                    await c.get("/v2/health/live")]

    ready, model_ready, infer, live = asyncio.run(go())
    assert ready.status_code == 503 and model_ready.status_code == 503
    assert infer.status_code == 503 and "is loading" in infer.json()["error"]
    assert live.status_code == 200


def test_serving_a_corrupt_or_non_onnx_file_fails_clearly(tmp_path):
    from kfp_interop.serving import start_server

    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"PK\x03\x04 this is a zip, not onnx" * 20)
    with pytest.raises(ModelFileError, match="not a readable ONNX model|not an ONNX"):
        start_server(str(junk))
    with pytest.raises(ModelFileError, match="No ONNX file"):
        start_server(str(tmp_path / "missing.onnx"))
    proc = subprocess.run([sys.executable, "-m", "kfp_interop.cli", "serve", str(junk),
                           "--port", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and str(junk) in proc.stderr


def test_onnx_file_without_record_is_served_from_its_graph(iris_onnx, tmp_path):
    import onnx

    from kfp_interop.serving import start_server, stop_server

    model = onnx.load(iris_onnx)
    del model.metadata_props[:]
    path = str(tmp_path / "foreign.onnx")
    onnx.save(model, path)
    handle = start_server(path, name="foreign")
    try:
        status, meta = call("GET", handle.endpoint + "/v2/models/foreign")
        assert status == 200 and meta["inputs"][0]["shape"] == [-1, 4]
        assert meta["properties"] == {}
    finally:
        stop_server(handle.pid)
    assert not os.path.exists(f"/proc/{handle.pid}") or \
        open(f"/proc/{handle.pid}/status").read().find("zombie") >= 0
