"""The OIP server as a runtime: a model repository with Triton's control modes and the
repository extension, dynamic batching, Prometheus metrics; real server processes on
127.0.0.1, real clients, answers compared with ONNX Runtime run directly."""

import concurrent.futures
import json
import os
import shutil
import threading
import urllib.request

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from kfp_interop.errors import ServingError
from kfp_interop.onnx_model import ort_session
from kfp_interop.serving import start_server, stop_server
from kfp_interop.storage import upload

#: every output datatype the protocol has and ONNX Runtime's Cast makes (BF16 aside:
#: ONNX Runtime's CPU Cast does not produce it)
DATATYPES = {"BOOL": TensorProto.BOOL, "UINT8": TensorProto.UINT8,
             "UINT16": TensorProto.UINT16, "UINT32": TensorProto.UINT32,
             "UINT64": TensorProto.UINT64, "INT8": TensorProto.INT8,
             "INT16": TensorProto.INT16, "INT32": TensorProto.INT32,
             "INT64": TensorProto.INT64, "FP16": TensorProto.FLOAT16,
             "FP32": TensorProto.FLOAT, "FP64": TensorProto.DOUBLE,
             "BYTES": TensorProto.STRING}


def call(method, url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def metrics(base):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            values[key] = float(value)
    return values


def casts_model(path, *, batch=True):
    """x FP32 [-1, 3] -> one output per datatype (x * 3 - 2, cast), a hand-made graph
    named like a user's."""
    shape = ["N", 3] if batch else [3]
    nodes = [helper.make_node("Mul", ["x", "three"], ["x3"]),
             helper.make_node("Sub", ["x3", "two"], ["y"])]
    outputs = []
    for name, proto in DATATYPES.items():
        nodes.append(helper.make_node("Cast", ["y"], [f"out_{name.lower()}"], to=proto))
        outputs.append(helper.make_tensor_value_info(f"out_{name.lower()}", proto, shape))
    graph = helper.make_graph(
        nodes, "casts", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        outputs, initializer=[helper.make_tensor("three", TensorProto.FLOAT, [], [3.0]),
                              helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=10, producer_name="handmade")
    onnx.save(model, str(path))
    return str(path)


def adopted(path, out, name):
    from kfp_interop.steps import adopt_onnx_step

    adopt_onnx_step(model_path=path, name=name, out_dir=str(out))
    return str(out / "model.onnx")


@pytest.fixture(scope="module")
def casts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("casts")
    return adopted(casts_model(tmp / "casts.onnx"), tmp / "adopted", "casts")


def infer_json(base, name, X, version=None):
    url = f"{base}/v2/models/{name}" + (f"/versions/{version}" if version else "") + "/infer"
    return call("POST", url, {"inputs": [{"name": "x", "datatype": "FP32",
                                          "shape": list(X.shape),
                                          "data": X.reshape(-1).tolist()}]})


def expected_outputs(path, X):
    sess = ort_session(path)
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": X})))


def same(answer, want):
    got = {o["name"]: o for o in answer["outputs"]}
    assert set(got) == set(want)
    for name, arr in want.items():
        data = got[name]["data"]
        if arr.dtype == object:
            assert data == [v.decode() if isinstance(v, bytes) else v
                            for v in arr.reshape(-1)], name
        else:
            assert np.array_equal(np.array(data, dtype=arr.dtype), arr.reshape(-1)), name
        assert got[name]["shape"] == list(arr.shape), name


def test_batched_answers_equal_unbatched_on_every_output_datatype(casts, tmp_path):
    """Concurrent requests of 1-3 rows are merged into batches (fewer executions than
    requests, every row counted) and each gets exactly what ONNX Runtime gives for its
    own rows, on every output datatype; a request above the maximum runs alone."""
    server = start_server(casts, log_path=str(tmp_path / "s.log"), extra_args=[
        "--max-batch-size", "8", "--max-queue-delay-us", "50000"])
    try:
        rng = np.random.default_rng(0)
        requests = [rng.normal(size=(1 + i % 3, 3)).astype(np.float32) * 20
                    for i in range(24)]
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda X: infer_json(server.endpoint, "casts", X),
                                    requests))
        for X, (status, answer) in zip(requests, answers):
            assert status == 200, answer
            same(answer, expected_outputs(casts, X))
        big = rng.normal(size=(20, 3)).astype(np.float32)
        status, answer = infer_json(server.endpoint, "casts", big)
        assert status == 200
        same(answer, expected_outputs(casts, big))
        m = metrics(server.endpoint)
        labels = '{model="casts",version="1"}'
        assert m[f"nv_inference_request_success{labels}"] == 25
        assert m[f"nv_inference_count{labels}"] == sum(len(X) for X in requests) + 20
        assert m[f"nv_inference_exec_count{labels}"] < 24  # batches, not requests
        assert m[f"nv_inference_queue_duration_us{labels}"] > 0
        assert m[f"nv_inference_pending_request_count{labels}"] == 0
    finally:
        stop_server(server.pid)


def test_a_lone_request_waits_no_longer_than_the_delay(casts, tmp_path):
    """Nobody else comes: the request goes when its delay is over (a generous bound:
    the delay is 0.2 s, the answer must come well before the client's 10 s)."""
    server = start_server(casts, extra_args=["--max-batch-size", "64",
                                             "--max-queue-delay-us", "200000"])
    try:
        X = np.ones((2, 3), np.float32)
        status, answer = infer_json(server.endpoint, "casts", X)
        assert status == 200
        same(answer, expected_outputs(casts, X))
        m = metrics(server.endpoint)
        queue_us = m['nv_inference_queue_duration_us{model="casts",version="1"}']
        assert 200000 <= queue_us < 5_000_000
    finally:
        stop_server(server.pid)


def test_batching_a_model_without_a_batch_dimension_is_refused(tmp_path):
    path = adopted(casts_model(tmp_path / "flat.onnx", batch=False), tmp_path / "a", "flat")
    with pytest.raises(ServingError, match="cannot be batched: tensor.*no batch dimension"):
        start_server(path, log_path=str(tmp_path / "s.log"), timeout=60,
                     extra_args=["--max-batch-size", "4"])


def test_batching_flags_are_checked(casts, capsys):
    from kfp_interop.cli import main

    assert main(["serve", casts, "--max-queue-delay-us", "100"]) == 2
    assert "need --max-batch-size" in capsys.readouterr().err
    assert main(["serve", casts, "--max-batch-size", "4", "--preferred-batch-sizes",
                 "8"]) == 2
    assert "between 1 and the maximum" in capsys.readouterr().err


@pytest.fixture
def repository(casts, iris_onnx, tmp_path):
    repo = tmp_path / "repo"
    upload(iris_onnx, str(repo))
    upload(casts, str(repo))
    return repo


def test_a_repository_is_served_whole_with_per_model_readiness(repository, tmp_path):
    server = start_server(str(repository), log_path=str(tmp_path / "s.log"))
    try:
        base = server.endpoint
        status, index = call("POST", base + "/v2/repository/index", {})
        assert status == 200
        assert [(r["name"], r["version"], r["state"]) for r in index] == [
            ("casts", "1", "READY"), ("iris", "1", "READY")]
        assert call("GET", base + "/v2/models/iris/ready")[0] == 200
        assert call("GET", base + "/v2/models/casts/versions/1/ready")[0] == 200
        status, err = call("GET", base + "/v2/models/casts/versions/7/ready")
        assert status == 404 and "no version '7'" in err["error"]
        assert call("GET", base + "/v2/models/nope")[0] == 404
        # control mode none: models are loaded at start only
        status, err = call("POST", base + "/v2/repository/models/iris/unload", {})
        assert status == 400 and "--model-control-mode explicit" in err["error"]
    finally:
        stop_server(server.pid)


def test_explicit_control_loads_and_unloads_and_a_broken_model_stays_alone(
        repository, casts, tmp_path):
    broken = repository / "broken"
    shutil.copytree(repository / "casts", broken)
    (broken / "config.pbtxt").write_text(
        (broken / "config.pbtxt").read_text().replace('name: "casts"', 'name: "broken"'))
    (broken / "1" / "model.onnx").write_bytes(b"not an onnx file")
    server = start_server(str(repository), log_path=str(tmp_path / "s.log"), extra_args=[
        "--model-control-mode", "explicit", "--load-model", "iris"])
    try:
        base = server.endpoint
        status, index = call("POST", base + "/v2/repository/index", {})
        assert {(r["name"], r["state"]) for r in index} == {
            ("broken", "UNAVAILABLE"), ("casts", "UNAVAILABLE"), ("iris", "READY")}
        assert call("POST", base + "/v2/repository/index", {"ready": True})[1] == [
            {"name": "iris", "version": "1", "state": "READY", "reason": ""}]
        assert call("POST", base + "/v2/models/casts/infer", {})[0] == 404
        assert call("POST", base + "/v2/repository/models/casts/load", {}) == (200, {})
        X = np.arange(6, dtype=np.float32).reshape(2, 3)
        status, answer = infer_json(base, "casts", X)
        assert status == 200
        same(answer, expected_outputs(casts, X))
        status, err = call("POST", base + "/v2/repository/models/broken/load", {})
        assert status == 400 and "'broken' failed to load" in err["error"]
        status, err = call("POST", base + "/v2/repository/models/missing/load", {})
        assert status == 404 and "has no model 'missing'" in err["error"]
        status, err = call("POST", base + "/v2/repository/models/..%2Fx/load", {})
        assert status in (400, 404)
        assert infer_json(base, "casts", X)[0] == 200  # the broken one took nothing down
        assert call("GET", base + "/v2/health/ready")[0] == 503  # strict: broken named
        assert "broken failed to load" in call("GET", base + "/v2/health/ready")[1]["error"]
        assert call("POST", base + "/v2/repository/models/iris/unload", {}) == (200, {})
        assert call("GET", base + "/v2/models/iris")[0] == 404
        status, err = call("POST", base + "/v2/repository/models/iris/unload", {})
        assert status == 404
    finally:
        stop_server(server.pid)


def test_unloading_finishes_the_requests_in_flight(repository, tmp_path):
    """Requests sitting in a batch queue (a 3 s delay) when their model is unloaded get
    their answers, then the model is gone."""
    server = start_server(str(repository), log_path=str(tmp_path / "s.log"), extra_args=[
        "--model-control-mode", "explicit", "--load-model", "*",
        "--max-batch-size", "64", "--max-queue-delay-us", "3000000"])
    try:
        base = server.endpoint
        X = np.ones((1, 3), np.float32)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(infer_json, base, "casts", X) for _ in range(4)]
            while metrics(base).get(
                    'nv_inference_pending_request_count{model="casts",version="1"}', 0) < 4:
                pass
            assert call("POST", base + "/v2/repository/models/casts/unload", {})[0] == 200
            assert [f.result()[0] for f in futures] == [200] * 4
        assert infer_json(base, "casts", X)[0] == 404
    finally:
        stop_server(server.pid)


def test_a_new_version_is_loaded_while_requests_flow_and_none_is_dropped(
        iris_onnx, tmp_path):
    repo = tmp_path / "repo"
    upload(iris_onnx, str(repo))
    server = start_server(str(repo), log_path=str(tmp_path / "s.log"), extra_args=[
        "--model-control-mode", "explicit", "--load-model", "iris"])
    stop = threading.Event()
    statuses = []

    def client():
        X = np.array([[5.1, 3.5, 1.4, 0.2]], np.float32)
        body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],
                            "data": X.reshape(-1).tolist()}]}
        while not stop.is_set():
            statuses.append(call("POST", f"{server.endpoint}/v2/models/iris/infer",
                                 body)[0])

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        upload(iris_onnx, str(repo), version="2")
        before = len(statuses)
        assert call("POST", f"{server.endpoint}/v2/repository/models/iris/load", {}) == (
            200, {})
        assert call("GET", f"{server.endpoint}/v2/models/iris")[1]["versions"] == ["2"]
        while len(statuses) < before + 50:
            pass
    finally:
        stop.set()
        for t in threads:
            t.join()
        stop_server(server.pid)
    assert len(statuses) > 50 and set(statuses) == {200}


def test_failures_are_counted_by_reason(server):
    base = server.endpoint
    ok = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4],
                      "data": [5.1, 3.5, 1.4, 0.2, 6.0, 2.9, 4.5, 1.5]}]}
    before = metrics(base)
    assert call("POST", base + "/v2/models/iris/infer", ok)[0] == 200
    assert call("POST", base + "/v2/models/iris/infer", {"inputs": [{"name": "nope"}]}
                )[0] == 400
    m = metrics(base)
    labels = '{model="iris",version="1"}'
    rejected = '{model="iris",reason="REJECTED",version="1"}'
    assert m[f"nv_inference_request_failure{rejected}"] == before.get(
        f"nv_inference_request_failure{rejected}", 0) + 1
    assert m[f"nv_inference_count{labels}"] == before.get(f"nv_inference_count{labels}",
                                                           0) + 2
    with urllib.request.urlopen(base + "/metrics") as r:
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")


def test_the_configs_thread_count_is_read_and_a_bad_one_keeps_what_was_served(casts,
                                                                              tmp_path):
    from kfp_interop.errors import ModelLoadError
    from kfp_interop.serving.repository import ModelRepository

    repo = tmp_path / "repo"
    upload(casts, str(repo))
    config = repo / "casts" / "config.pbtxt"
    base = config.read_text()

    def threads(value):
        config.write_text(base + 'parameters {\n  key: "intra_op_thread_count"\n'
                                 f'  value: {{ string_value: "{value}" }}\n}}\n')

    threads(2)
    repository = ModelRepository(source=str(repo), control="explicit")
    [model] = repository.load("casts")
    assert model.ready and model.threads == 2
    threads("many")
    with pytest.raises(ModelLoadError, match="intra_op_thread_count is 'many'"):
        repository.load("casts")
    assert repository.get("casts") is model and model.ready  # what was served stays
    repository.close()


def test_a_repository_at_a_storage_uri_is_served(iris_onnx, s3_env, monkeypatch, tmp_path):
    """serve s3://bucket/repo: each model folder is downloaded (checked against its
    manifest) and served; index, metadata and infer answer as for a folder."""
    import uuid

    from kfp_interop.storage import open_store

    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    uri = f"s3://serve-{uuid.uuid4().hex[:8]}/repo"
    open_store(uri).prepare(create_bucket=True)
    upload(iris_onnx, uri)
    server = start_server(uri, log_path=str(tmp_path / "s.log"))
    try:
        status, index = call("POST", server.endpoint + "/v2/repository/index", {})
        assert status == 200 and [(r["name"], r["state"]) for r in index] == [
            ("iris", "READY")]
        body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],
                            "data": [5.1, 3.5, 1.4, 0.2]}]}
        assert call("POST", server.endpoint + "/v2/models/iris/infer", body)[0] == 200
    finally:
        stop_server(server.pid)


@pytest.mark.parametrize("policy,served", [
    ("", ["3"]), ("version_policy: { latest: { num_versions: 2 } }\n", ["2", "3"]),
    ("version_policy: { all: { } }\n", ["1", "2", "3"]),
    ("version_policy: { specific: { versions: [ 1, 3 ] } }\n", ["1", "3"])])
def test_versions_are_served_by_the_configs_policy(casts, tmp_path, policy, served):
    """Triton's version policies: latest N (default 1), all, specific; a request without
    a version gets the highest; a specific version the policy leaves out is unknown."""
    import re

    from kfp_interop.errors import ModelNotFoundError
    from kfp_interop.serving.repository import ModelRepository

    repo = tmp_path / "repo"
    for v in ("1", "2", "3"):
        upload(casts, str(repo), version=v)
    config = repo / "casts" / "config.pbtxt"
    config.write_text(re.sub(r"version_policy: .*\n", policy, config.read_text()))
    repository = ModelRepository(source=str(repo))
    repository.start()
    try:
        assert sorted(m.version for m in repository.models()) == served
        assert repository.get("casts").version == served[-1]
        for v in {"1", "2", "3"} - set(served):
            with pytest.raises(ModelNotFoundError, match=f"no version '{v}'"):
                repository.get("casts", v)
    finally:
        repository.close()


def test_metrics_on_a_port_of_their_own(iris_onnx, tmp_path):
    from kfp_interop.serving.process import free_port

    port = free_port()
    server = start_server(iris_onnx, extra_args=["--metrics-port", str(port)])
    try:
        body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],
                            "data": [5.1, 3.5, 1.4, 0.2]}]}
        assert call("POST", server.endpoint + "/v2/models/iris/infer", body)[0] == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
        assert 'nv_inference_request_success{model="iris",version="1"} 1.0' in text
        assert "_total" not in text and "_created" not in text  # Triton's names
    finally:
        stop_server(server.pid)
