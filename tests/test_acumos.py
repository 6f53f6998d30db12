"""metadata render --format acumos: Acumos's onboarding metadata.json, valid against the
schema Acumos's onboarding server validates uploads with (acumos/on-boarding,
model-schema-0.6.0.json, shipped), and a model.proto that protoc compiles, that Acumos's
line-by-line proto reader reads, and whose messages carry the model's tensors: a batch
encoded as PredictInput, sent over the wire and decoded, predicts what the sample
predicts."""

import json
import os
import subprocess
import sys

import jsonschema
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kfp_interop.cli import main
from kfp_interop.export.adopt import save_tensors
from kfp_interop.metadata import load_metadata
from kfp_interop.metadata.render import Files, render
from kfp_interop.metadata.render.acumos import acumos_schema, check_acumos
from kfp_interop.onnx_model import ort_session
from kfp_interop.steps import adopt_onnx_step

def _mixed_model(folder):
    """Inputs as other exporters name them (``input:0`` FP32, ``city`` text, ``flag.1``
    BOOL), outputs ``y:0`` FP32 and ``label`` INT64: not proto identifiers, every proto
    type family."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("LabelEncoder", ["city"], ["city_id"], domain="ai.onnx.ml",
                         keys_strings=["oslo", "rome", "lima"], values_floats=[0., 1., 2.],
                         default_float=-1.0),
        helper.make_node("Cast", ["flag.1"], ["flag_f"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["input:0", "city_id", "flag_f"], ["features"], axis=1),
        helper.make_node("MatMul", ["features", "w"], ["y:0"]),
        helper.make_node("ArgMax", ["y:0"], ["label"], axis=1, keepdims=0),
    ]
    w = numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "w")
    graph = helper.make_graph(nodes, "mixed", [
        helper.make_tensor_value_info("input:0", TensorProto.FLOAT, ["N", 2]),
        helper.make_tensor_value_info("city", TensorProto.STRING, ["N", 1]),
        helper.make_tensor_value_info("flag.1", TensorProto.BOOL, ["N", 1])], [
        helper.make_tensor_value_info("y:0", TensorProto.FLOAT, ["N", 3]),
        helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)],
                              ir_version=8)
    path = os.path.join(folder, "mixed.onnx")
    onnx.save(model, path)
    n = 7
    sample = {"input:0": rng.normal(size=(n, 2)).astype(np.float32),
              "city": rng.choice(["oslo", "rome", "lima"], size=(n, 1)).astype(object),
              "flag.1": rng.random((n, 1)) > 0.5}
    sample_path = os.path.join(folder, "sample.npz")
    save_tensors(sample_path, sample)
    return path, sample_path, sample


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("acumos-mixed")
    path, sample_path, sample = _mixed_model(str(tmp))
    adopt_onnx_step(model_path=path, name="mixed-model", sample_path=sample_path,
                    task="other", out_dir=str(tmp / "adopted"))
    return str(tmp / "adopted" / "model.onnx"), sample


def _compiled(proto_text, tmp_path):
    """The proto compiled by protoc (grpc_tools) into a descriptor pool."""
    from google.protobuf import descriptor_pb2, descriptor_pool

    (tmp_path / "model.proto").write_text(proto_text)
    out = tmp_path / "model.desc"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}",
                    f"--descriptor_set_out={out}", str(tmp_path / "model.proto")],
                   check=True, capture_output=True)
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    return pool, files.file[0].package


def test_metadata_json_is_valid_against_acumos_onboarding_schema(iris_onnx):
    files = render(load_metadata(iris_onnx), "acumos")
    assert isinstance(files, Files) and sorted(files) == ["metadata.json", "model.proto"]
    doc = files["metadata.json"]
    check_acumos(doc)
    assert doc["schema"] == "acumos.schema.model:0.6.0" and doc["name"] == "iris"
    method = doc["methods"]["predict"]
    assert method["input"]["name"] == "PredictInput"
    assert method["output"]["metadata"]["class_labels"] == ["setosa", "versicolor",
                                                            "virginica"]
    pins = {r["name"]: r["version"] for r in doc["runtime"]["dependencies"]["pip"][
        "requirements"]}
    assert pins["onnxruntime"] == __import__("onnxruntime").__version__
    # Acumos's onboarding refuses names outside [a-zA-Z0-9_-]
    assert all(c.isalnum() or c in "_-" for c in doc["name"])


def test_the_schema_is_the_onboarding_servers_and_what_it_refuses(iris_onnx):
    """The shipped schema: media_type is a list of media types (what the Acumos Python
    client writes); the runtime, which the schema itself leaves unchecked (``items`` on
    an object), is checked against its Runtime definition."""
    schema = acumos_schema()
    assert schema["self"] == {"name": "acumos.schema.model", "version": "0.6.0"}
    doc = render(load_metadata(iris_onnx), "acumos")["metadata.json"]
    bad = json.loads(json.dumps(doc))
    bad["methods"]["predict"]["input"]["media_type"] = ["application/x-pickle"]
    with pytest.raises(jsonschema.ValidationError):
        check_acumos(bad)
    bad = json.loads(json.dumps(doc))
    bad["runtime"]["name"] = "onnx"  # not a runtime Acumos builds
    jsonschema.Draft4Validator(schema).validate(bad)  # the schema alone lets it through
    with pytest.raises(jsonschema.ValidationError, match="onnx"):
        check_acumos(bad)
    bad = json.loads(json.dumps(doc))
    del bad["methods"]["predict"]["input"]["name"]
    with pytest.raises(jsonschema.ValidationError):
        check_acumos(bad)


def test_model_proto_compiles_and_matches_the_tensors(mixed, tmp_path):
    path, _ = mixed
    record = load_metadata(path)
    files = render(record, "acumos")
    pool, package = _compiled(files["model.proto"], tmp_path)
    service = pool.FindServiceByName(f"{package}.Model")
    [method] = service.methods
    doc = files["metadata.json"]
    check_acumos(doc)
    assert method.name == "predict"
    assert method.input_type.name == doc["methods"]["predict"]["input"]["name"]
    assert method.output_type.name == doc["methods"]["predict"]["output"]["name"]
    types = {"input:0": "TYPE_FLOAT", "city": "TYPE_STRING", "flag.1": "TYPE_BOOL",
             "y:0": "TYPE_FLOAT", "label": "TYPE_INT64"}
    from google.protobuf.descriptor import FieldDescriptor

    names = {v: k for k, v in FieldDescriptor.__dict__.items() if k.startswith("TYPE_")}
    for message, side, tensors in ((method.input_type, "input", record.inputs),
                                   (method.output_type, "output", record.outputs)):
        described = doc["methods"]["predict"][side]["metadata"]["tensors"]
        assert [t["name"] for t in described] == [t["name"] for t in tensors]
        for t in described:
            field = message.fields_by_name[t["field"]]
            assert names[field.type] == types[t["name"]], t
            assert field.label == FieldDescriptor.LABEL_REPEATED
    assert [t["field"] for t in doc["methods"]["predict"]["input"]["metadata"]["tensors"]] \
        == ["input_0", "city", "flag_1"]


def test_acumos_line_reader_reads_every_field(mixed):
    """Acumos's onboarding reads model.proto line by line: in a message, each line is
    one field of 4 or 5 space-separated tokens (``repeated TYPE NAME = TAG;``)."""
    proto = render(load_metadata(mixed[0]), "acumos")["model.proto"]
    inside, fields = False, 0
    for line in proto.splitlines():
        line = line.strip()
        if line.startswith("message"):
            inside = True
        elif inside and line == "}":
            inside = False
        elif inside:
            tokens = line.rstrip(";").split(" ")
            assert len(tokens) == 5 and tokens[0] == "repeated" and tokens[3] == "=", line
            int(tokens[4])
            fields += 1
    assert fields == 5


def test_a_batch_sent_as_predict_input_predicts_what_the_sample_does(mixed, tmp_path):
    """Encode the sample as PredictInput (values row-major, per the metadata), send it
    over the wire (serialize, parse), rebuild the tensors from the metadata's shapes and
    run the model: the same outputs as the sample run directly; the outputs encoded as
    PredictOutput decode to the same."""
    from google.protobuf import message_factory

    path, sample = mixed
    record = load_metadata(path)
    files = render(record, "acumos")
    pool, package = _compiled(files["model.proto"], tmp_path)
    In = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.PredictInput"))
    Out = message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{package}.PredictOutput"))
    meta = files["metadata.json"]["methods"]["predict"]
    msg = In()
    for t in meta["input"]["metadata"]["tensors"]:
        values = np.asarray(sample[t["name"]]).ravel().tolist()
        getattr(msg, t["field"]).extend(values)
    wire = In.FromString(msg.SerializeToString())
    rows = len(sample["input:0"])

    def tensor(t, values):
        shape = [rows if d == -1 else d for d in t["shape"]]
        dtype = {"FP32": np.float32, "INT64": np.int64, "BOOL": np.bool_,
                 "BYTES": object}[t["datatype"]]
        return np.asarray(list(values), dtype=dtype).reshape(shape)

    feeds = {t["name"]: tensor(t, getattr(wire, t["field"]))
             for t in meta["input"]["metadata"]["tensors"]}
    session = ort_session(path)
    direct = session.run(None, {k: np.asarray(v) for k, v in sample.items()})
    via = session.run(None, feeds)
    for a, b in zip(direct, via):
        np.testing.assert_array_equal(a, b)
    out = Out()
    for t, value in zip(meta["output"]["metadata"]["tensors"], via):
        getattr(out, t["field"]).extend(np.asarray(value).ravel().tolist())
    back = Out.FromString(out.SerializeToString())
    for t, value in zip(meta["output"]["metadata"]["tensors"], direct):
        np.testing.assert_allclose(tensor(t, getattr(back, t["field"])), value, rtol=1e-6)


def test_the_cli_writes_both_files(iris_onnx, tmp_path, capsys):
    out = tmp_path / "acumos"
    assert main(["metadata", "render", "--format", "acumos", iris_onnx,
                 "--output-dir", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["metadata.json", "model.proto"]
    check_acumos(json.loads((out / "metadata.json").read_text()))
    assert (out / "model.proto").read_text().startswith('syntax = "proto3";')
    capsys.readouterr()
    assert main(["metadata", "render", "--format", "acumos", iris_onnx]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model.proto"] == (out / "model.proto").read_text()
