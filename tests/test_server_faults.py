"""The server under malformed, hostile and oversized requests: never a 5xx, always a
typed 4xx with ``{"error": ...}``; size caps (413) before the body is read; large
requests served by worker processes with the same answers; and schemathesis against the
Open Inference Protocol REST spec (``shared/refdata``) finding no server error and no
response that breaks the spec."""

import copy
import http.client
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import refdata

from test_server import call, expected, rows

INFER = "/v2/models/iris/infer"
X4 = [5.1, 3.5, 1.4, 0.2]


def tensor(**fields):
    return {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": X4,
                        **fields}]}


@pytest.mark.parametrize("body,status,message", [
    # the reproducers that once answered 500
    ({"inputs": [{"name": "input", "shape": [], "datatype": {}, "data": []}]}, 400,
     "datatype"),
    (tensor(shape=[4294967296, 4294967296], data=None), 413, "elements"),
    (tensor(shape=[4611686018427387904, 4]), 413, "elements"),
    (tensor(shape=[1] * 65), 400, "dimensions"),
    ({**tensor(), "outputs": [{"name": ["label"]}]}, 400, "outputs[0]"),
    ({**tensor(), "outputs": [{"name": "label", "parameters": ["binary_data"]}]}, 400,
     "'parameters' must be a JSON object"),
    # and their relatives
    ({**tensor(), "outputs": "label"}, 400, "'outputs' must be a list"),
    ({**tensor(), "parameters": [1]}, 400, "'parameters' must be a JSON object"),
    ({**tensor(), "parameters": {"binary_data_output": "yes"}}, 400, "binary_data_output"),
    ({**tensor(), "id": {"a": 1}}, 400, "'id' must be a string"),
    (tensor(parameters={"binary_data_size": True}), 400, "binary_data_size"),
    (tensor(data={"a": 1}), 400, "'data' must be a list"),
    (tensor(data=[[1, 2], [3]]), 400, "not a list of FP32"),
    (tensor(data=["x", "y", "z", "w"]), 400, "not a list of FP32"),
    (tensor(data=[1e400] * 4), 400, None),  # Infinity is a float: the model decides
    (tensor(shape=[1, "4"]), 400, "non-negative integers"),
    (tensor(shape=[1, -4]), 400, "non-negative integers"),
    (tensor(datatype="BYTES"), 400, "BYTES data must be strings"),
    (tensor(datatype="BYTES", data=["a", "b", "c", "d"]), 400, "expects 'FP32'"),
    (tensor(datatype="FP8"), 400, "datatype"),
    ({"inputs": [{"name": 7}]}, 400, "string 'name'"),
    ({"inputs": {}}, 400, "non-empty 'inputs' list"),
    ([1, 2, 3], 400, "JSON object"),
])
def test_malformed_requests_get_a_4xx_never_a_5xx(server, body, status, message):
    if body == tensor(data=[1e400] * 4):  # json.dumps writes Infinity; a valid float
        got, resp = call("POST", server.endpoint + INFER, body)
        assert got in (200, 400) and (got == 200 or "error" in resp)
        return
    got, resp = call("POST", server.endpoint + INFER, body)
    assert got == status, resp
    assert set(resp) == {"error"} and message in resp["error"]


def test_deeply_nested_json_is_a_400(server):
    body = b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    status, resp = call("POST", server.endpoint + INFER, body)
    assert status == 400 and "nested too deeply" in resp["error"]
    for junk in (b"\xff\xfe\x00", b"", b"{", b"nul", b'{"inputs": NaN}'):
        status, resp = call("POST", server.endpoint + INFER, junk)
        assert status == 400 and "error" in resp


def test_binary_header_lies_are_400(server):
    head = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],
                                   "parameters": {"binary_data_size": 16}}]}).encode()
    raw = np.asarray(X4, "<f4").tobytes()
    for length in ("abc", "-1", str(len(head) + 100), "0"):
        status, resp = call("POST", server.endpoint + INFER, head + raw,
                            headers={"Inference-Header-Content-Length": length})
        assert status == 400, (length, resp)
    status, _ = call("POST", server.endpoint + INFER, head + raw[:8],
                     headers={"Inference-Header-Content-Length": str(len(head))})
    assert status == 400


@pytest.fixture(scope="module")
def capped(iris_onnx):
    """A server that accepts at most 1 MiB bodies and 1,000 elements per input."""
    from kfp_interop.serving import start_server, stop_server

    handle = start_server(iris_onnx, max_body_mb=1, max_elements=1000)
    yield handle
    stop_server(handle.pid)


def test_body_cap_is_checked_before_the_body_is_read(capped):
    host, port = capped.endpoint[len("http://"):].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    # declare 2 MiB, send nothing: the answer must come anyway, from the header alone
    conn.putrequest("POST", INFER)
    conn.putheader("Content-Length", str(2 * 1024 * 1024))
    conn.putheader("Content-Type", "application/json")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and "exceeds" in json.loads(resp.read())["error"]
    conn.close()


def test_chunked_body_over_the_cap_is_413(capped):
    host, port = capped.endpoint[len("http://"):].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    chunk = b" " * (256 * 1024)
    conn.request("POST", INFER, body=iter([chunk] * 8), encode_chunked=True,
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 413
    conn.close()


def test_element_cap(capped):
    X = np.zeros((251, 4), np.float32)  # 1,004 elements > 1,000
    status, resp = call("POST", capped.endpoint + INFER, {"inputs": [{
        "name": "input", "datatype": "FP32", "shape": [251, 4], "data": X.ravel().tolist()}]})
    assert status == 413 and "1004 elements" in resp["error"]
    assert call("GET", capped.endpoint + "/v2/health/live")[0] == 200


def test_limits_must_be_positive(iris_onnx):
    from kfp_interop.errors import InvalidInputError
    from kfp_interop.serving import start_server

    with pytest.raises(InvalidInputError, match="must be positive"):
        start_server(iris_onnx, max_body_mb=0)


def test_large_requests_in_worker_processes_answer_like_small_ones(server, iris_onnx):
    """A 3 MB JSON request goes to a worker process: same outputs as ONNX Runtime, same
    errors as on the event loop."""
    X = np.random.default_rng(0).normal(size=(60_000, 4)).astype(np.float32)
    body = {"id": "big", "inputs": [{"name": "input", "datatype": "FP32",
                                     "shape": list(X.shape), "data": X.ravel().tolist()}]}
    assert len(json.dumps(body)) > 1024 * 1024
    status, resp = call("POST", server.endpoint + INFER, body)
    assert status == 200 and resp["id"] == "big"
    out = {o["name"]: o for o in resp["outputs"]}
    want = expected(iris_onnx, X)
    assert out["label"]["data"] == want["label"].tolist()
    np.testing.assert_allclose(np.reshape(out["probabilities"]["data"], (-1, 3)),
                               want["probabilities"], atol=1e-7)
    bad = copy.deepcopy(body)
    bad["inputs"][0]["shape"] = [60_001, 4]
    status, resp = call("POST", server.endpoint + INFER, bad)
    assert status == 400 and "needs 240004 values" in resp["error"]
    bad["inputs"][0]["name"] = "nope"
    bad["inputs"][0]["shape"] = [60_000, 4]
    status, resp = call("POST", server.endpoint + INFER, bad)
    assert status == 400 and "Missing input(s) ['input']" in resp["error"]


def oip_spec(model: str, version: str) -> dict:
    """The OIP REST spec with its ``${MODEL_NAME}``/``${MODEL_VERSION}`` templates filled
    for the served model, the unversioned paths the protocol also defines, and ``/v2``
    without its trailing slash (as the protocol's markdown spec writes it)."""
    with open(refdata("open-inference-protocol", "open_inference_rest.yaml")) as f:
        spec = yaml.safe_load(f)
    paths = {}
    for path, item in spec["paths"].items():
        item = copy.deepcopy(item)
        params = [p for p in item.get("parameters", [])
                  if p["name"] not in ("MODEL_NAME", "MODEL_VERSION")]
        item.pop("parameters", None)
        if params:
            item["parameters"] = params
        filled = path.replace("${MODEL_NAME}", model).replace("${MODEL_VERSION}", version)
        paths["/v2" if filled == "/v2/" else filled] = item
        if "/versions/" in filled:
            unversioned = copy.deepcopy(item)
            for op in unversioned.values():
                if isinstance(op, dict) and "operationId" in op:
                    op["operationId"] += "-unversioned"
            paths[filled.replace(f"/versions/{version}", "")] = unversioned
    spec["paths"] = paths
    return spec


def test_schemathesis_finds_no_server_error_and_no_spec_violation(server, tmp_path):
    spec = tmp_path / "oip.yaml"
    spec.write_text(yaml.safe_dump(oip_spec("iris", "1")))
    exe = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    proc = subprocess.run(
        [exe, "run", str(spec), "--url", server.endpoint, "--checks",
         "not_a_server_error,response_schema_conformance,content_type_conformance",
         "--phases", "examples,coverage,fuzzing", "--max-examples", "60", "--seed", "42",
         "--generation-database", "none", "--no-color"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its cache goes there
    assert proc.returncode == 0, proc.stdout[-4000:]
    counts = proc.stdout[proc.stdout.rindex("Test cases:"):]
    generated = int(counts.split("generated")[0].split()[-1])
    assert generated >= 300 and "passed" in counts and "fail" not in counts, counts
    assert call("GET", server.endpoint + "/v2/health/live")[0] == 200


def test_unknown_routes_and_methods(server):
    for path in ("/", "/v1/models/iris:predict", "/v2/models/iris/explain", "/v2/models"):
        status, resp = call("GET", server.endpoint + path)
        assert status == 404 and "No route" in resp["error"], path
    status, resp = call("GET", server.endpoint + INFER)
    assert status == 405 and "use POST" in resp["error"]
    status, resp = call("POST", server.endpoint + "/v2/health/live", {})
    assert status == 405 and "use GET" in resp["error"]


def test_a_killed_servers_worker_processes_end_with_it(iris_onnx, tmp_path):
    """A server killed with SIGKILL cannot shut its worker pool down: the workers notice
    their parent is gone and end (no orphans left holding a model in memory)."""
    from kfp_interop.serving import start_server, stop_server

    server = start_server(iris_onnx, log_path=str(tmp_path / "s.log"))
    try:
        _kill_and_check_workers(server)
    finally:  # a failure before the kill leaves no server behind (a pid, once reaped,
        try:  # may be another process's: only ours is stopped)
            with open(f"/proc/{server.pid}/cmdline", "rb") as f:
                ours = b"kfp_interop.serving" in f.read()
        except OSError:
            ours = False
        if ours:
            stop_server(server.pid)


def _kill_and_check_workers(server):
    import signal
    import time
    import urllib.request

    X = np.random.default_rng(0).normal(size=(60_000, 4)).astype(np.float32)
    body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [60_000, 4],
                                   "data": X.reshape(-1).tolist()}]}).encode()
    assert len(body) > 1024 * 1024  # served by a worker process
    req = urllib.request.Request(server.endpoint + "/v2/models/iris/infer", data=body,
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.status == 200

    def children(pid):
        out = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    with open(f"/proc/{p}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                            out.append(int(p))
                except (OSError, IndexError, ValueError):
                    pass
        return out

    workers = [p for p in children(server.pid)
               if b"spawn_main" in open(f"/proc/{p}/cmdline", "rb").read()]
    assert workers, "the large request should have started worker processes"
    os.kill(server.pid, signal.SIGKILL)
    os.waitpid(server.pid, 0)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{w}") and
                                              open(f"/proc/{w}/stat").read().rsplit(
                                                  ")", 1)[1].split()[0] != "Z"
                                              for w in workers):
        time.sleep(0.2)
    alive = [w for w in workers if os.path.exists(f"/proc/{w}") and
             open(f"/proc/{w}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"]
    assert alive == []
