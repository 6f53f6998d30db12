"""kfp-interop optimize: graph optimization and quantization behind the accuracy gate, on
models made the way users make them (a trained classifier through the pipeline's
stages, a hand-made network, a random forest); the record describes the new graph."""

import os

import numpy as np
import onnx
import pytest
from conftest import build_model
from onnx import TensorProto, helper, numpy_helper

from kfp_interop.cli import main
from kfp_interop.errors import InvalidInputError, ParityError
from kfp_interop.export.adopt import save_tensors
from kfp_interop.metadata import load_metadata, verify_onnx_sha256
from kfp_interop.metadata.record import onnx_content_sha256
from kfp_interop.onnx_model import ort_session, read_onnx
from kfp_interop.steps import adopt_onnx_step, optimize_step


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A breast_cancer MLP classifier (scikit-learn, named as module:Class the way users
    bring their own) from the pipeline's stages, and a sample with the test rows and
    their true labels."""
    from kfp_interop.data.splits import load_split

    tmp = tmp_path_factory.mktemp("optimize-mlp-classifier")
    model_dir, _, test = build_model(tmp / "mlp", dataset="breast_cancer",
                                     estimator="sklearn.neural_network:MLPClassifier",
                                     hyperparameters='{"solver": "lbfgs", "max_iter": 400, '
                                                     '"random_state": 0}')
    split = load_split(test)
    record = load_metadata(os.path.join(model_dir, "model.onnx"))
    [inp] = record.inputs
    sample = str(tmp / "sample.npz")
    save_tensors(sample, {inp["name"]: np.asarray(split.X, np.float32), "labels": split.y})
    return os.path.join(model_dir, "model.onnx"), sample


def mlp(path, sizes=(16, 64, 64, 4), opset=17):
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        inits += [numpy_helper.from_array((rng.normal(size=(a, b)) / np.sqrt(a)).astype(
            np.float32), f"w{i}"), numpy_helper.from_array(np.zeros(b, np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"h{i}"]))
        x = f"h{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [x], [f"r{i}"]))
            x = f"r{i}"
    nodes.append(helper.make_node("Identity", [x], ["scores"]))
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", sizes[0]])], [helper.make_tensor_value_info(
            "scores", TensorProto.FLOAT, ["N", sizes[-1]])], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                ir_version=8), str(path))
    sample = str(path) + ".npz"
    save_tensors(sample, {"x": rng.normal(size=(40, sizes[0])).astype(np.float32)})
    return str(path), sample


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("optimize-mlp")
    path, sample = mlp(tmp / "mlp.onnx")
    adopt_onnx_step(model_path=path, name="mlp", sample_path=sample,
                    out_dir=str(tmp / "adopted"))
    return str(tmp / "adopted" / "model.onnx"), sample


@pytest.mark.parametrize("quantize", ["int8-dynamic", "int8-static", "fp16"])
def test_a_classifier_is_quantized_behind_the_accuracy_gate(classifier, quantize, tmp_path):
    path, sample = classifier
    out = tmp_path / "out"
    # per-tensor INT8 activations cost this MLP on unscaled features a few points
    record, report = optimize_step(model_path=path, sample_path=sample, quantize=quantize,
                                   max_accuracy_drop=0.1, out_dir=str(out))
    assert verify_onnx_sha256(str(out / "model.onnx")) == record  # the new graph's sha256
    original = load_metadata(path)
    o = record.optimization
    assert o["kind"] == quantize and o["accuracy"]["metric"] == "accuracy"
    assert o["accuracy"]["before"] - o["accuracy"]["after"] == pytest.approx(
        o["accuracy"]["drop"], abs=1e-6)
    assert o["accuracy"]["drop"] <= 0.1 and record.parity["passed"]
    assert o["source"]["onnx_sha256"] == original.model["onnx_sha256"]
    assert o["size_bytes"]["before"] == len(read_onnx(path).SerializeToString())
    assert set(o["latency_ms"]["after"]) == {"rows_1", "rows_64"}
    assert record.inputs == original.inputs and record.outputs == original.outputs  # FP32 io
    assert record.class_labels == original.class_labels and record.name == original.name
    assert record.model["onnx_sha256"] != original.model["onnx_sha256"]
    # it runs, and predicts (almost) what the original does
    X = np.load(sample)[original.inputs[0]["name"]]
    before = ort_session(path).run(["label"], {original.inputs[0]["name"]: X})[0]
    after = ort_session(str(out / "model.onnx")).run(["label"], {
        original.inputs[0]["name"]: X})[0]
    assert np.mean(before == after) >= 0.85


def test_quantization_shrinks_a_network_and_the_record_says_by_how_much(network, tmp_path):
    path, sample = network
    record, _ = optimize_step(model_path=path, sample_path=sample, quantize="int8-dynamic",
                              max_accuracy_drop=0.2, out_dir=str(tmp_path / "out"))
    size = record.optimization["size_bytes"]
    assert size["after"] * 2.5 < size["before"]  # float weights -> int8
    # only the opset domains its nodes use (ONNX Runtime's optimizer saves every one)
    used = {n.domain or "ai.onnx" for n in read_onnx(str(tmp_path / "out" / "model.onnx")
                                                     ).graph.node}
    assert set(record.model["opsets"]) <= used | {"ai.onnx"}
    assert record.optimization["accuracy"]["metric"] == "relative_error"


def test_a_graph_with_nothing_to_quantize_is_refused(tmp_path, capsys):
    """A logistic regression is one LinearClassifier: nothing for the quantizer."""
    model_dir, _, _ = build_model(tmp_path / "lr", dataset="breast_cancer",
                                  estimator="logistic_regression")
    path = os.path.join(model_dir, "model.onnx")
    sample = str(tmp_path / "s.npz")
    save_tensors(sample, {"input": np.ones((5, 30), np.float32)})
    assert main(["optimize", path, "--sample", sample, "--quantize", "int8-dynamic",
                 "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "changes nothing" in err and "LinearClassifier" in err
    assert not (tmp_path / "out").exists()


def test_over_the_budget_nothing_is_written(network, tmp_path):
    path, sample = network
    with pytest.raises(ParityError, match="more than --max-accuracy-drop 0.0: refused, "
                                          "nothing written"):
        optimize_step(model_path=path, sample_path=sample, quantize="int8-dynamic",
                      max_accuracy_drop=0.0, out_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_forest_takes_graph_optimization_and_refuses_quantization(tmp_path, capsys):
    model_dir, _, _ = build_model(tmp_path / "rf")
    path = os.path.join(model_dir, "model.onnx")
    X = ort_session(path).get_inputs()[0]
    sample = str(tmp_path / "s.npz")
    save_tensors(sample, {X.name: np.random.default_rng(0).normal(size=(20, 4)).astype(
        np.float32) + 4})
    for mode in ("int8-dynamic", "int8-static", "fp16"):
        assert main(["optimize", path, "--sample", sample, "--quantize", mode,
                     "--output-dir", str(tmp_path / mode)]) == 2
        assert "tree ensemble (TreeEnsembleClassifier)" in capsys.readouterr().err
        assert not (tmp_path / mode).exists()
    assert main(["optimize", path, "--sample", sample, "--graph-level", "extended",
                 "--output-dir", str(tmp_path / "graph")]) == 0
    record = verify_onnx_sha256(str(tmp_path / "graph" / "model.onnx"))
    assert record.optimization["kind"] == "graph"
    assert record.optimization["accuracy"]["drop"] == 0.0


@pytest.mark.parametrize("args,message", [
    (["--graph-level", "all"], "tie the file to the CPU it was made on"),
    (["--quantize", "int4"], "Quantization 'int4': use one of none, int8-dynamic"),
    (["--max-accuracy-drop", "5"], "a fraction between 0 and 1"),
    (["--graph-level", "none"], "Nothing to do"),
])
def test_bad_options_are_named(network, args, message, tmp_path, capsys):
    path, sample = network
    assert main(["optimize", path, "--sample", sample, *args,
                 "--output-dir", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_sample_that_does_not_fit_and_an_old_opset_are_refused(network, tmp_path):
    path, _ = network
    wrong = str(tmp_path / "wrong.npz")
    save_tensors(wrong, {"features": np.ones((4, 16), np.float32)})
    with pytest.raises(InvalidInputError, match="x"):
        optimize_step(model_path=path, sample_path=wrong, quantize="int8-dynamic",
                      out_dir=str(tmp_path / "out"))
    old, sample = mlp(tmp_path / "old.onnx", opset=9)
    adopt_onnx_step(model_path=old, name="old", sample_path=sample,
                    out_dir=str(tmp_path / "adopted"))
    with pytest.raises(InvalidInputError, match="opset 9; ONNX Runtime's quantizer needs 10"):
        optimize_step(model_path=str(tmp_path / "adopted"), quantize="int8-dynamic",
                      out_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_the_source_sha256_is_the_original_graphs(network, tmp_path):
    path, sample = network
    record, _ = optimize_step(model_path=path, sample_path=sample, graph_level="basic",
                              out_dir=str(tmp_path / "out"))
    assert record.optimization["source"]["onnx_sha256"] == onnx_content_sha256(
        read_onnx(path))


def test_the_component_writes_the_model_and_the_gate_as_metrics(network, tmp_path):
    """The KFP component's body, with KFP's artifact objects as a run hands them."""
    import shutil

    from kfp import dsl

    from kfp_interop.components import optimize

    path, sample = network
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copyfile(path, folder / "model.onnx")
    shutil.copyfile(sample, folder / "sample.npz")
    model = dsl.Model(name="model", uri=str(folder), metadata={})
    optimized = dsl.Model(name="optimized", uri=str(tmp_path / "optimized"), metadata={})
    gate = dsl.Metrics(name="gate", uri=str(tmp_path / "gate"), metadata={})
    card = dsl.Markdown(name="card", uri=str(tmp_path / "card.md"), metadata={})
    optimize.python_func(model=model, optimized=optimized, gate=gate, model_card=card,
                         mode="int8-dynamic", max_accuracy_drop=0.2)
    record = verify_onnx_sha256(str(tmp_path / "optimized" / "model.onnx"))
    assert record.optimization["kind"] == "int8-dynamic"
    assert gate.metadata["size_ratio"] > 2.5 and gate.metadata["max_accuracy_drop"] == 0.2
    assert gate.metadata["accuracy_drop"] == record.optimization["accuracy"]["drop"]
    assert optimized.metadata["onnx_sha256"] == record.model["onnx_sha256"]
    assert optimized.metadata["inference_metadata"]["optimization"] == \
        record.optimization
    assert gate.metadata["optimized"] == 1.0
    assert gate.metadata["latency_ms_rows_64_after"] == \
        record.optimization["latency_ms"]["after"]["rows_64"]
    # mode none (the pipelines' default): the folder passes through, byte for byte
    through = dsl.Model(name="through", uri=str(tmp_path / "through"), metadata={})
    optimize.python_func(model=model, optimized=through, gate=gate, model_card=card,
                         mode="none")
    assert (tmp_path / "through" / "model.onnx").read_bytes() == (folder / "model.onnx"
                                                                  ).read_bytes()
    assert gate.metadata["optimized"] == 0.0


def test_the_pipeline_step_optimizes_the_export_and_the_record_says_so(classifier, tmp_path):
    """In the reference pipelines optimize sits between export_onnx and attach_metadata:
    it takes the export folder (no record yet) and the held-out split (its labels are
    the gate's truth), and the record attach builds carries the optimization and the new
    graph's parity."""
    from kfp_interop.steps import attach_metadata_step
    from kfp_interop.steps.model_dir import read_model_meta

    built = os.path.dirname(os.path.dirname(classifier[0]))  # run_tabular's folder
    exported, test = os.path.join(built, "exported"), os.path.join(built, "test.parquet")
    meta = read_model_meta(exported)
    out = tmp_path / "optimized"
    _, report = optimize_step(model_path=exported, test_path=test, choice="int8-static",
                              max_accuracy_drop=0.1, out_dir=str(out))
    # the gate's accuracy before is the model's held-out accuracy: same rows, same labels
    assert report["accuracy"]["metric"] == "accuracy"
    assert report["accuracy"]["before"] == pytest.approx(meta.metrics["accuracy"])
    after = read_model_meta(str(out))
    assert after.optimization["kind"] == "int8-static"
    assert after.parity["n_rows"] == meta.test_rows and after.parity["passed"]
    assert 0.85 <= after.parity["label_agreement"] <= 1
    record = attach_metadata_step(model_dir=str(out), model_name="bc",
                                  out_dir=str(tmp_path / "attached"))
    assert verify_onnx_sha256(str(tmp_path / "attached" / "model.onnx")) == record
    assert record.optimization == after.optimization and record.name == "bc"
    assert record.training["dataset"] == "breast_cancer" and record.parity == {
        k: v for k, v in after.parity.items() if k != "task"}
    assert record.optimization["source"]["onnx_sha256"] == onnx_content_sha256(
        read_onnx(os.path.join(exported, "model.onnx")))
    with pytest.raises(InvalidInputError, match="optimize='int4'.*int8-static"):
        optimize_step(model_path=exported, test_path=test, choice="int4",
                      out_dir=str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()


def test_a_pipeline_run_optimizes_and_serves_the_optimized_model(tmp_path):
    """tabular under kfp.local with optimize=int8-static: the served model is the
    quantized one, smoke-tested; the gate is a Metrics artifact of the run."""
    import json

    import kfp_interop

    summary = kfp_interop.run("tabular", {
        "dataset": "breast_cancer", "estimator": "sklearn.neural_network:MLPClassifier",
        "hyperparameters": '{"solver": "lbfgs", "max_iter": 400, "random_state": 0}',
        "scaler": True, "optimize": "int8-static", "max_accuracy_drop": 0.05,
        "register": False}, output_dir=str(tmp_path / "out"))
    assert summary["status"] == "succeeded" and summary["smoke_test"]["passed"]
    record = verify_onnx_sha256(summary["onnx_path"])
    assert record.optimization["kind"] == "int8-static"
    assert summary["optimization"] == record.optimization
    assert any(n.op_type == "QuantizeLinear" for n in read_onnx(summary["onnx_path"]).graph.node)
    with open(os.path.join(summary["run_dir"], "optimize", "executor_output.json")) as f:
        [gate] = json.load(f)["artifacts"]["gate"]["artifacts"]
    accuracy = record.optimization["accuracy"]
    assert gate["metadata"]["accuracy_before"] == accuracy["before"]
    assert gate["metadata"]["accuracy_drop"] == accuracy["drop"] <= 0.05
