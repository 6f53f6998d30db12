"""The inference-metadata record: schema, embedding, round trips, and every renderer
checked against its real schema or library."""

import json
import os

import jsonschema
import onnx
import pytest
from conftest import oip_validator

from kfp_interop.errors import MetadataError, MetadataValidationError, ModelFileError
from kfp_interop.metadata import (METADATA_KEY, InferenceMetadata, load_metadata,
                                  onnx_content_sha256, save_metadata, schema, sidecar_path,
                                  validate_record, verify_onnx_sha256)
from kfp_interop.metadata.render import (RENDERERS, render, to_kfp_metadata,
                                         to_mlflow_signature, to_oip, to_seldon,
                                         to_triton_config)


@pytest.fixture(scope="module")
def record(iris_onnx):
    return load_metadata(iris_onnx)


def test_schema_is_a_valid_draft7_schema_and_versioned():
    jsonschema.Draft7Validator.check_schema(schema())
    assert schema()["properties"]["schema_version"] == {"const": "2"}
    jsonschema.Draft7Validator.check_schema(schema("1"))
    assert schema("1")["properties"]["schema_version"] == {"const": "1"}


def test_a_version_1_record_is_read_and_upgraded(record):
    """Records written before v2 (in ONNX files out there) still read: origin trained."""
    v1 = record.to_dict()
    del v1["origin"]
    v1["parity"].pop("provider")  # what v2 added
    v1["schema_version"] = "1"
    upgraded = InferenceMetadata.from_dict(v1)
    assert upgraded.schema_version == "2" and upgraded.origin == {"kind": "trained",
                                                                  "source": "kfp-interop"}
    assert upgraded.training == record.training and upgraded.inputs == record.inputs
    broken = {**v1, "training": None}  # v1 required training
    with pytest.raises(MetadataValidationError, match="fails schema v1"):
        InferenceMetadata.from_dict(broken)


def test_record_reads_the_same_from_onnx_and_sidecar(iris_onnx, record):
    assert load_metadata(sidecar_path(iris_onnx)) == record
    assert record.name == "iris" and record.version == "1"
    assert record.model["onnx_sha256"] == onnx_content_sha256(onnx.load(iris_onnx))
    assert record.class_labels == ["setosa", "versicolor", "virginica"]
    assert record.parity["passed"] is True
    assert len(record.training["data_sha256"]) == 64
    assert record.producer["name"] == "kfp-interop"


def test_round_trip_and_equality(record):
    again = InferenceMetadata.from_json(record.to_json())
    assert again == record and hash(again) == hash(record)
    assert record.replace(model={**record.model, "version": "2"}) != record
    with pytest.raises(AttributeError):
        record.model = {}


def test_invalid_records_list_the_failing_fields(record):
    data = record.to_dict()
    data["model"]["name"] = "Not_A_DNS_Label"
    data["inputs"][0]["datatype"] = "FLOAT"
    with pytest.raises(MetadataValidationError) as info:
        InferenceMetadata.from_dict(data)
    assert any("model/name" in e for e in info.value.errors)
    assert any("inputs/0/datatype" in e for e in info.value.errors)
    data = record.to_dict()
    data["schema_version"] = "3"
    with pytest.raises(MetadataValidationError, match="schema_version '3'"):
        InferenceMetadata.from_dict(data)
    data = record.to_dict()
    data["class_labels"] = ["a", "b"]  # probabilities has 3 columns
    with pytest.raises(MetadataValidationError, match="class_labels"):
        validate_record(data)


def test_embedding_a_record_of_another_model_is_refused(iris_onnx, diabetes_model, record):
    other = onnx.load(os.path.join(diabetes_model[0], "model.onnx"))
    with pytest.raises(MetadataValidationError, match="describes another model"):
        save_metadata(record, other, "/nonexistent/never-written.onnx")


def test_tampered_graph_is_detected(iris_onnx, tmp_path):
    model = onnx.load(iris_onnx)
    model.graph.node[0].name = "changed"
    path = str(tmp_path / "tampered.onnx")
    onnx.save(model, path)
    assert load_metadata(path).name == "iris"  # still readable...
    with pytest.raises(MetadataValidationError, match="graph changed"):
        verify_onnx_sha256(path)  # ...but no longer matches


def test_files_without_record_or_not_onnx(iris_onnx, tmp_path):
    model = onnx.load(iris_onnx)
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    with pytest.raises(MetadataError, match="carries no kfp-interop"):
        load_metadata(str(tmp_path / "bare.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"\x00\xffnot a protobuf" * 10)
    with pytest.raises(ModelFileError, match="not a readable ONNX model|not an ONNX"):
        load_metadata(str(tmp_path / "junk.onnx"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(MetadataError, match="not valid JSON"):
        load_metadata(str(tmp_path / "bad.json"))


def test_schema_failure_in_embedded_record(iris_onnx, tmp_path):
    model = onnx.load(iris_onnx)
    for p in model.metadata_props:
        if p.key == METADATA_KEY:
            data = json.loads(p.value)
            del data["origin"]
            p.value = json.dumps(data)
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(MetadataValidationError, match="'origin' is a required property"):
        load_metadata(str(tmp_path / "m.onnx"))


def test_save_is_atomic_and_writes_both_files(iris_onnx, record, tmp_path):
    model = onnx.load(iris_onnx)
    onnx_path, side = save_metadata(record, model, str(tmp_path / "model.onnx"))
    assert os.path.exists(onnx_path) and side == str(tmp_path / "model.metadata.json")
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".partial")]
    assert load_metadata(onnx_path) == load_metadata(side) == record


# -- renderers ------------------------------------------------------------------------
def test_oip_rendering_matches_the_oip_schema(record):
    doc = to_oip(record)
    oip_validator("metadata_model_response").validate(doc)
    assert doc["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert all(isinstance(v, str) for v in doc["properties"].values())
    assert json.loads(doc["properties"]["class_labels"]) == record.class_labels


def test_mlflow_signature_loads_in_mlflow(record):
    import numpy as np
    from mlflow.models.signature import ModelSignature

    sig = ModelSignature.from_dict(to_mlflow_signature(record))
    spec = sig.inputs.inputs[0]
    assert spec.name == "input" and spec.type == np.dtype("float32") and spec.shape == (-1, 4)
    assert [o.name for o in sig.outputs.inputs] == ["label", "probabilities"]
    assert sig.outputs.inputs[0].type == np.dtype("int64")


def triton_model_config_pb2():
    """Triton's ModelConfig proto module, loaded alone: importing tritonclient.grpc
    would register Triton's gRPC service protos, whose names clash with the KServe SDK's
    in the process-wide descriptor pool."""
    import importlib.util

    import tritonclient

    path = os.path.join(os.path.dirname(tritonclient.__file__), "grpc", "model_config_pb2.py")
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_triton_config_parses_as_triton_model_config(record):
    from google.protobuf import text_format

    model_config_pb2 = triton_model_config_pb2()

    cfg = text_format.Parse(to_triton_config(record), model_config_pb2.ModelConfig())
    assert cfg.name == "iris" and cfg.platform == "onnxruntime_onnx"
    assert cfg.max_batch_size == 0
    assert list(cfg.input[0].dims) == [-1, 4]
    assert cfg.input[0].data_type == model_config_pb2.TYPE_FP32
    assert [o.name for o in cfg.output] == ["label", "probabilities"]
    assert cfg.output[0].data_type == model_config_pb2.TYPE_INT64
    assert cfg.parameters["onnx_sha256"].string_value == record.model["onnx_sha256"]
    batched = text_format.Parse(to_triton_config(record, max_batch_size=64),
                                model_config_pb2.ModelConfig())
    assert list(batched.input[0].dims) == [4]


def test_seldon_metadata_shape(record):
    doc = to_seldon(record)
    assert doc["inputs"][0]["messagetype"] == "tensor"
    assert doc["inputs"][0]["schema"] == {"shape": [4], "names": record.feature_names}
    probs = [o for o in doc["outputs"] if o["name"] == "probabilities"][0]
    assert probs["schema"]["names"] == record.class_labels
    assert all(isinstance(v, str) for v in doc["custom"].values())


def test_kfp_metadata_is_json_and_carries_the_record(record):
    doc = to_kfp_metadata(record)
    assert json.loads(json.dumps(doc))["inference_metadata"] == record.to_dict()
    assert doc["model_name"] == "iris" and doc["parity_passed"] is True


def test_render_registry_and_model_card(record):
    assert set(RENDERERS.names()) >= {"oip", "seldon", "mlflow", "triton", "kfp", "markdown"}
    card = render(record, "markdown")
    assert "# Model card: iris v1" in card and "setosa" in card
    with pytest.raises(KeyError, match="known: acumos, adlik, kfp, markdown, mlflow, oip, "
                                       "seldon, triton"):
        render(record, "bento")


def test_regression_record(diabetes_model):
    rec = load_metadata(os.path.join(diabetes_model[0], "model.onnx"))
    assert rec.task == "regression" and rec.class_labels is None
    assert rec.outputs == [{"name": "variable", "datatype": "FP32", "shape": [-1, 1]}]
    oip_validator("metadata_model_response").validate(to_oip(rec))
    assert rec.parity["label_agreement"] is None
    assert "variable" in to_triton_config(rec)
