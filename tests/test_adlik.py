"""Adlik's model-compiler request: rendered from the record, valid against Adlik's own
schema (shipped; its non-standard type names handled), read back, and a request written
by hand imported with the model it describes."""

import json
import os
import shutil

import jsonschema
import pytest
from conftest import refdata

from kfp_interop.cli import main
from kfp_interop.errors import MetadataError
from kfp_interop.metadata import load_metadata
from kfp_interop.metadata.importers import import_metadata
from kfp_interop.metadata.render import render
from kfp_interop.metadata.render.adlik import adlik_schema


def test_the_shipped_schema_is_adliks_and_a_nonstandard_type_is_handled(tmp_path):
    shipped = adlik_schema()
    with open(refdata("adlik", "config_schema.json")) as f:
        upstream = json.load(f)
    assert shipped["properties"].keys() == upstream["properties"].keys()
    assert shipped["required"] == upstream["required"]
    # Adlik's file once said "int" for opset_version: a strict check of it fails...
    broken = json.loads(json.dumps(upstream))
    broken["properties"]["opset_version"]["type"] = "int"
    with pytest.raises(jsonschema.SchemaError):
        jsonschema.Draft4Validator.check_schema(broken)
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(broken))
    # ...so it is read as the integer it means, and the schema then checks
    assert adlik_schema(str(path))["properties"]["opset_version"]["type"] == "integer"
    broken["properties"]["opset_version"]["type"] = "whole-number"
    path.write_text(json.dumps(broken))
    with pytest.raises(jsonschema.SchemaError):
        adlik_schema(str(path))


def test_a_record_renders_as_a_valid_request_with_the_optimization_switches(iris_onnx,
                                                                             tmp_path):
    from kfp_interop.export.adopt import save_tensors
    from kfp_interop.steps import optimize_step

    record = load_metadata(iris_onnx)
    doc = render(record, "adlik")
    jsonschema.Draft4Validator(adlik_schema()).validate(doc)
    assert doc["serving_type"] == "onnx" and doc["model_name"] == record.name
    assert doc["input_names"] == ["input"] and doc["output_names"] == ["label",
                                                                      "probabilities"]
    assert doc["input_shapes"] == [[4]] and doc["data_type"] == "float"
    assert doc["max_batch_size"] == 64 and (doc["enable_fp16"], doc["enable_int8"]) == (0, 0)
    batched = record.replace(serving={"dynamic_batching": {"max_batch_size": 8}})
    assert render(batched, "adlik")["max_batch_size"] == 8
    # an FP16 model says so (a forest cannot be quantized: an MLP-free check on a record)
    fp16 = record.replace(optimization={
        "kind": "fp16", "graph_level": "basic", "tools": {}, "sample_rows": 1,
        "size_bytes": {"before": 2, "after": 1},
        "accuracy": {"metric": "relative_error", "after": 0.0, "drop": 0.0, "max_drop": 0.01},
        "source": {"onnx_sha256": "0" * 64}})
    assert render(fp16, "adlik")["enable_fp16"] == 1


def test_a_hand_written_request_is_imported_with_its_model(iris_onnx, tmp_path, capsys):
    hand = {"serving_type": "onnx", "model_name": "iris-adlik", "version": 3,
            "max_batch_size": 16, "input_model": "model.onnx", "export_path": "out",
            "input_names": ["input"], "output_names": ["label", "probabilities"]}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(hand))
    with pytest.raises(MetadataError, match="does not type them.*--onnx"):
        import_metadata(str(path), "adlik")
    model = tmp_path / "model.onnx"
    shutil.copyfile(iris_onnx, model)
    out = tmp_path / "imported"
    assert main(["metadata", "import", "--from", "adlik", str(path), "--onnx", str(model),
                 "--output-dir", str(out)]) == 0
    record = load_metadata(str(out / "model.onnx"))
    assert (record.name, record.version) == ("iris-adlik", "3")
    assert record.inputs == load_metadata(iris_onnx).inputs
    wrong = dict(hand, output_names=["scores"])
    path.write_text(json.dumps(wrong))
    assert main(["metadata", "import", "--from", "adlik", str(path), "--onnx", str(model),
                 "--output-dir", str(tmp_path / "no")]) == 2
    assert "the document is not about this model" in capsys.readouterr().err
    path.write_text(json.dumps({**hand, "max_batch_size": 0}))
    with pytest.raises(MetadataError, match="not an Adlik model-compiler request.*max_batch"):
        import_metadata(str(path), "adlik")
    assert not os.path.exists(tmp_path / "no")
