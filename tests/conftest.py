"""Shared fixtures: small real models built through the library, and real server
processes on 127.0.0.1."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFDATA = os.environ.get("KFP_INTEROP_REFDATA",
                         os.path.join(os.path.dirname(ROOT), "shared", "refdata"))


def build_model(tmp_dir, dataset="iris", framework="sklearn", estimator="random_forest",
                name="", nan_policy="error", hyperparameters="{}", target_column=""):
    """Run the library's stages (no KFP) and return (model_dir, data_meta, test_path)."""
    from kfp_interop.steps import (attach_metadata_step, export_step, load_data_step,
                                   train_step)

    tmp_dir = str(tmp_dir)
    train_path, test_path = os.path.join(tmp_dir, "train.pq"), os.path.join(tmp_dir, "test.pq")
    meta = load_data_step(dataset=dataset, target_column=target_column, train_path=train_path,
                          test_path=test_path, nan_policy=nan_policy)
    model_meta, _ = train_step(train_path=train_path, test_path=test_path, data_meta=meta,
                               framework=framework, estimator=estimator,
                               hyperparameters=hyperparameters,
                               model_dir=os.path.join(tmp_dir, "native"))
    onnx_meta = export_step(model_dir=os.path.join(tmp_dir, "native"), model_meta=model_meta,
                            test_path=test_path, data_meta=meta,
                            out_dir=os.path.join(tmp_dir, "exported"))
    attach_metadata_step(model_dir=os.path.join(tmp_dir, "exported"), model_meta=onnx_meta,
                         model_name=name, out_dir=os.path.join(tmp_dir, "model"))
    return os.path.join(tmp_dir, "model"), meta, test_path


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory):
    """(model_dir, data_meta, test_path) of a random forest on iris named 'iris'."""
    return build_model(tmp_path_factory.mktemp("iris"), name="iris")


@pytest.fixture(scope="session")
def iris_onnx(iris_model):
    return os.path.join(iris_model[0], "model.onnx")


@pytest.fixture(scope="session")
def diabetes_model(tmp_path_factory):
    return build_model(tmp_path_factory.mktemp("diabetes"), dataset="diabetes",
                       framework="xgboost", estimator="", name="diabetes")


@pytest.fixture(scope="session")
def server(iris_onnx, tmp_path_factory):
    """A real OIP server process on 127.0.0.1 serving the iris model."""
    from kfp_interop.serve import start_server, stop_server

    log = str(tmp_path_factory.mktemp("server") / "server.log")
    handle = start_server(iris_onnx, log_path=log)
    yield handle
    stop_server(handle.pid)


def refdata(*parts):
    path = os.path.join(REFDATA, *parts)
    if not os.path.exists(path):
        pytest.fail(f"reference data missing: {path} (set KFP_INTEROP_REFDATA)")
    return path


def oip_validator(name):
    import json

    import jsonschema

    with open(refdata("schemas", "oip-rest", f"{name}.json")) as f:
        return jsonschema.Draft7Validator(json.load(f))


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
