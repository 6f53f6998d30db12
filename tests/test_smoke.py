"""Smoke tests against live endpoints: pass, metadata mismatch, prediction mismatch,
unreachable endpoint."""

import numpy as np
import onnx
import pytest

from kfp_interop.errors import SmokeTestError
from kfp_interop.serving import start_server, stop_server
from kfp_interop.serving.smoke import smoke_test

X = np.array([[5.1, 3.5, 1.4, 0.2], [6.0, 2.9, 4.5, 1.5], [6.9, 3.1, 5.4, 2.1]])


def test_smoke_test_passes_on_the_right_model(server, iris_onnx):
    report = smoke_test(server.endpoint, iris_onnx, X)
    assert report["passed"] and report["rows"] == 3
    assert report["checks"]["metadata"]["passed"] and report["checks"]["inference"]["passed"]
    assert report["max_abs_diff"] <= 1e-6 and report["latency_ms"] > 0


def test_another_model_under_the_same_name_fails_metadata(diabetes_model, iris_onnx):
    handle = start_server(f"{diabetes_model[0]}/model.onnx", name="iris")
    try:
        with pytest.raises(SmokeTestError, match=r"differs from the record in \['inputs', "
                                                  r"'outputs'.*another model") as info:
            smoke_test(handle.endpoint, iris_onnx, X)
        assert info.value.report["checks"]["metadata"]["passed"] is False
    finally:
        stop_server(handle.pid)


def test_wrong_predictions_fail_inference(iris_onnx, tmp_path):
    model = onnx.load(iris_onnx)
    del model.metadata_props[:]  # a server that cannot vouch for its model
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name == "class_weights":
                attr.floats[:] = list(np.roll(np.asarray(attr.floats), 1))
    path = str(tmp_path / "wrong.onnx")
    onnx.save(model, path)
    handle = start_server(path, name="iris")
    try:
        with pytest.raises(SmokeTestError, match="labels differ|exceeds") as info:
            smoke_test(handle.endpoint, iris_onnx, X)
        assert info.value.report["checks"]["metadata"]["passed"] is True
        assert info.value.report["checks"]["inference"]["passed"] is False
    finally:
        stop_server(handle.pid)


def test_unreachable_endpoint(iris_onnx):
    from kfp_interop.serving.process import free_port

    with pytest.raises(SmokeTestError, match="Cannot reach"):
        smoke_test(f"http://127.0.0.1:{free_port()}", iris_onnx, X, timeout=2)


def test_unknown_model_name_on_a_live_server(server, iris_onnx):
    with pytest.raises(SmokeTestError, match="answered 404"):
        smoke_test(server.endpoint, iris_onnx, X, model_name="missing")
