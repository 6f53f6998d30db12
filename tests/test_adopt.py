"""ONNX files no code of ours wrote (hand-built graphs with several inputs, int64 and
string tensors and dynamic dimensions other than the batch; models from other
converters) come in through `adopt`, and are then stored, served and smoke-tested like
ours."""

import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kfp_interop.cli import main
from kfp_interop.errors import InvalidInputError, ModelFileError, ParityError
from kfp_interop.export import adopt_onnx
from kfp_interop.metadata import load_metadata, verify_onnx_sha256


def save(model, path, producer="handmade"):
    model.producer_name, model.producer_version = producer, "0.1"
    onnx.save(model, str(path))
    return str(path)


def two_inputs_model(**make_model):
    """x FP32 [N, 3], ids INT64 [N, M] -> score FP32 [N] (weighted sum), count INT64 [N]
    (``make_model``: e.g. ``ir_version``)."""
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    w = numpy_helper.from_array(np.array([1.0, 2.0, 3.0], np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["xw"]),
         helper.make_node("ReduceSum", ["xw", "axes"], ["score"], keepdims=0),
         helper.make_node("ReduceSum", ["ids", "axes"], ["count"], keepdims=0)],
        "two_inputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", "M"])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("count", TensorProto.INT64, ["N"])], [w, axes])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                             **make_model)


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory):
    model = two_inputs_model()
    return save(model, tmp_path_factory.mktemp("foreign") / "Two Inputs.onnx")


@pytest.fixture(scope="module")
def strings(tmp_path_factory):
    """text BYTES [N] -> lowered BYTES [N] (an ai.onnx.ml LabelEncoder: a lookup table)."""
    graph = helper.make_graph(
        [helper.make_node("LabelEncoder", ["text"], ["lowered"], domain="ai.onnx.ml",
                          keys_strings=["Hello", "WORLD", "Ünïcode ÄÖ"],
                          values_strings=["hello", "world", "ünïcode äö"],
                          default_string="?")], "strings",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("lowered", TensorProto.STRING, ["N"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    return save(model, tmp_path_factory.mktemp("foreign") / "strings.onnx")


def test_a_hand_built_graph_is_described_from_its_graph(two_inputs, tmp_path, capsys):
    assert main(["adopt", two_inputs, "--output-dir", str(tmp_path / "out")]) == 0
    printed = json.loads(capsys.readouterr().out)
    record = verify_onnx_sha256(str(tmp_path / "out" / "model.onnx"))
    assert printed["name"] == record.name == "two-inputs" and record.task == "other"
    assert record.inputs == [{"name": "x", "datatype": "FP32", "shape": [-1, 3]},
                             {"name": "ids", "datatype": "INT64", "shape": [-1, -1]}]
    assert record.outputs == [{"name": "score", "datatype": "FP32", "shape": [-1]},
                              {"name": "count", "datatype": "INT64", "shape": [-1]}]
    assert record.origin == {"kind": "adopted", "source": "Two Inputs.onnx", "format": "onnx",
                             "onnx_producer": {"name": "handmade", "version": "0.1"}}
    assert record.checks == {"onnx_checker": True, "ort_session": True, "sample_run": True,
                             "sample_rows": 4, "sample": "synthesized"}
    assert record.training is None and record.parity is None
    sample = np.load(tmp_path / "out" / "sample.npz")
    assert sample["x"].shape == (4, 3) and sample["ids"].shape == (4, 2)
    assert load_metadata(str(tmp_path / "out" / "model.metadata.json")) == record
    # the renderers describe it too
    assert main(["metadata", "render", "--format", "triton",
                 str(tmp_path / "out" / "model.onnx")]) == 0
    assert "TYPE_INT64" in capsys.readouterr().out


def test_served_and_smoke_tested_with_several_inputs_and_strings(two_inputs, strings, tmp_path):
    import tritonclient.http as httpclient

    from kfp_interop.export.adopt import load_tensors
    from kfp_interop.serving import start_server, stop_server
    from kfp_interop.serving.smoke import smoke_test
    from kfp_interop.steps import adopt_onnx_step

    for path, folder in ((two_inputs, "a"), (strings, "b")):
        adopt_onnx_step(model_path=path, out_dir=str(tmp_path / folder))
    a = start_server(str(tmp_path / "a" / "model.onnx"))
    b = start_server(str(tmp_path / "b" / "model.onnx"))
    try:
        report = smoke_test(a.endpoint, str(tmp_path / "a" / "model.onnx"),
                            load_tensors(str(tmp_path / "a" / "sample.npz")))
        assert report["passed"] and report["rows"] == 4
        text = np.array(["Hello", "WORLD", "Ünïcode ÄÖ"], dtype=object)
        report = smoke_test(b.endpoint, str(tmp_path / "b" / "model.onnx"), {"text": text})
        assert report["passed"]
        client = httpclient.InferenceServerClient(b.endpoint[len("http://"):])
        for binary in (False, True):
            tensor = httpclient.InferInput("text", [3], "BYTES")
            tensor.set_data_from_numpy(text, binary_data=binary)
            out = httpclient.InferRequestedOutput("lowered", binary_data=binary)
            result = client.infer("strings", [tensor], outputs=[out])
            got = [v.decode() if isinstance(v, bytes) else v
                   for v in result.as_numpy("lowered").tolist()]
            assert got == ["hello", "world", "ünïcode äö"]
        client = httpclient.InferenceServerClient(a.endpoint[len("http://"):])
        x = httpclient.InferInput("x", [2, 3], "FP32")
        x.set_data_from_numpy(np.array([[1, 1, 1], [0, 0, 1]], np.float32))
        ids = httpclient.InferInput("ids", [2, 5], "INT64")
        ids.set_data_from_numpy(np.arange(10, dtype=np.int64).reshape(2, 5))
        result = client.infer("two-inputs", [x, ids])
        assert result.as_numpy("score").tolist() == [6.0, 3.0]
        assert result.as_numpy("count").tolist() == [10, 35]
    finally:
        stop_server(a.pid)
        stop_server(b.pid)


def test_models_from_other_converters(tmp_path):
    """skl2onnx (with its ZipMap: refused, named; without: adopted as a classifier) and
    torch.onnx (expected outputs from torch itself: the adopted model's parity)."""
    import torch
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    zipmap = to_onnx(clf, X[:1].astype(np.float32))
    path = save(zipmap, tmp_path / "zipmap.onnx", producer="skl2onnx")
    with pytest.raises(ModelFileError, match="not a tensor.*zipmap=False"):
        adopt_onnx(path)
    plain = to_onnx(clf, X[:1].astype(np.float32), options={id(clf): {"zipmap": False}})
    path = save(plain, tmp_path / "plain.onnx", producer="skl2onnx")
    result = adopt_onnx(path, labels="setosa,versicolor,virginica",
                        sample={"X": X[:10].astype(np.float32)},
                        expected={"label": clf.predict(X[:10]),
                                  "probabilities": clf.predict_proba(X[:10])})
    assert result.record.task == "classification"
    assert result.record.class_labels == ["setosa", "versicolor", "virginica"]
    assert result.record.parity["passed"] and result.record.parity["max_abs_diff"] < 1e-5
    with pytest.raises(InvalidInputError, match="2 labels given.*3 classes"):
        adopt_onnx(path, labels="a,b")

    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    sample = torch.randn(5, 4)
    net.eval()
    program = torch.onnx.export(net, (sample,), None, input_names=["features"],
                                output_names=["logits"], dynamo=True,
                                dynamic_shapes=({0: torch.export.Dim("batch")},))
    path = str(tmp_path / "torch.onnx")
    program.save(path)
    expected = net(sample).detach().numpy()
    result = adopt_onnx(path, sample={"features": sample.numpy()},
                        expected={"logits": expected})
    assert result.record.origin["onnx_producer"]["name"] == "pytorch"
    assert result.record.parity["passed"]
    with pytest.raises(ParityError, match="expected outputs"):
        adopt_onnx(path, sample={"features": sample.numpy()}, expected={"logits": expected + 1})
    with pytest.raises(InvalidInputError, match=r"Expected outputs \['scores'\]"):
        adopt_onnx(path, sample={"features": sample.numpy()}, expected={"scores": expected})
    with pytest.raises(InvalidInputError, match=r"sample has inputs \['x'\]"):
        adopt_onnx(path, sample={"x": sample.numpy()})


def test_a_graph_onnx_runtime_cannot_load_is_refused(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Mystery", ["x"], ["y"], domain="com.example")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)])
    path = save(model, tmp_path / "mystery.onnx")
    with pytest.raises(ModelFileError, match="ONNX Runtime cannot load"):
        adopt_onnx(path)
    assert not list(tmp_path.glob("**/model.onnx"))


def test_a_graph_the_made_up_sample_cannot_run_asks_for_a_sample(tmp_path):
    """x [N, M] reshaped to [-1, 3]: made-up inputs (M = 2) cannot be reshaped; the error
    says to pass a sample, and a sample that fits is adopted."""
    shape = numpy_helper.from_array(np.array([-1, 3], np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "M"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["R", 3])], [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=8)
    path = save(model, tmp_path / "reshape.onnx")
    with pytest.raises(ModelFileError, match=r"(?s)synthesized sample: .*pass a sample of real "
                                             r"inputs \(--sample inputs.npz"):
        adopt_onnx(path)
    sample = tmp_path / "x.npz"
    np.savez(sample, x=np.ones((2, 3), np.float32))
    adopted = adopt_onnx(path, sample=str(sample))
    assert adopted.record.name == "reshape"


def test_after_adopt_storage_and_deploy_treat_it_like_ours(two_inputs, tmp_path, capsys):
    import yaml

    assert main(["adopt", two_inputs, "--name", "scorer", "--output-dir",
                 str(tmp_path / "m")]) == 0
    capsys.readouterr()
    model = str(tmp_path / "m" / "model.onnx")
    assert main(["upload", model, "--to", str(tmp_path / "repo")]) == 0
    assert json.loads(capsys.readouterr().out)["model_uri"].endswith("/scorer")
    assert os.path.isfile(tmp_path / "repo" / "scorer" / "1" / "model.onnx")
    assert main(["deploy", model, "--target", "kserve", "--dry-run", "--storage-uri",
                 "s3://m/repo", "--output-dir", str(tmp_path)]) == 0
    manifest = yaml.safe_load(open(tmp_path / "kserve.yaml"))
    assert manifest["metadata"]["name"] == "scorer"
    capsys.readouterr()
    assert main(["metadata", "show", model]) == 0
    assert json.loads(capsys.readouterr().out)["origin"]["kind"] == "adopted"


def test_onnx_import_pipeline_runs_locally(two_inputs, tmp_path):
    from test_pipeline import run_cli

    out = tmp_path / "out"
    proc = run_cli("run", "onnx-import", "--local", "--output-dir", str(out),
                   "--param", f"model_uri={two_inputs}", "--param", "model_name=scorer",
                   "--param", "register=false")
    assert proc.returncode == 0, proc.stdout[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "succeeded" and s["smoke_test"]["passed"]
    assert load_metadata(s["onnx_path"]).origin["kind"] == "adopted"
    assert s["upload"]["model_uri"].endswith("/scorer")
    proc = run_cli("run", "onnx-import", "--local", "--output-dir", str(tmp_path / "o2"))
    assert proc.returncode == 2 and "model_uri=..." in proc.stderr
