"""--dynamic-batch on adopt and optimize: graphs exported with a fixed batch size (here
PyTorch's exporter without dynamic shapes, which folds ``x.view(x.size(0), -1)`` into a
constant Reshape; MindSpore and "static graph first" compilers make the same kind of
file) become servable at any batch size, checked row by row against the original; what
cannot be rewritten is named and nothing is written."""

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kfp_interop.cli import main
from kfp_interop.errors import InvalidInputError
from kfp_interop.export.adopt import save_tensors
from kfp_interop.metadata import load_metadata, verify_onnx_sha256
from kfp_interop.onnx_model import ort_session
from kfp_interop.steps import adopt_onnx_step, optimize_step

torch = pytest.importorskip("torch")


class _CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3)
        self.fc = torch.nn.Linear(8 * 6 * 6, 3)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return torch.softmax(self.fc(h.view(h.size(0), -1)), dim=1)


@pytest.fixture(scope="module")
def static_cnn(tmp_path_factory):
    """A CNN exported the way a user does it with a 5-row example and no dynamic shapes:
    ``x: FP32 [5, 1, 8, 8]``, a Reshape to a constant ``[5, 288]`` inside."""
    tmp = tmp_path_factory.mktemp("static-cnn")
    torch.manual_seed(0)
    net = _CNN().eval()
    example = torch.randn(5, 1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(net, (example,), input_names=["x"], output_names=["p"])
    path = str(tmp / "static.onnx")
    onnx.save(program.model_proto, path)
    rng = np.random.default_rng(1)
    sample = rng.normal(size=(5, 1, 8, 8)).astype(np.float32)
    save_tensors(str(tmp / "sample.npz"), {"x": sample})
    return path, str(tmp / "sample.npz"), net


def _torch(net, x):
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_a_static_export_serves_only_its_own_batch_size(static_cnn, tmp_path):
    path, sample, _ = static_cnn
    record = adopt_onnx_step(model_path=path, sample_path=sample, out_dir=str(tmp_path / "a"))
    assert record.inputs[0]["shape"] == [5, 1, 8, 8]
    session = ort_session(str(tmp_path / "a" / "model.onnx"))
    with pytest.raises(Exception):  # what users meet without --dynamic-batch
        session.run(None, {"x": np.zeros((1, 1, 8, 8), np.float32)})


def test_adopt_dynamic_batch_makes_it_serve_any_batch(static_cnn, tmp_path):
    path, sample, net = static_cnn
    out = tmp_path / "adopted"
    assert main(["adopt", path, "--sample", sample, "--dynamic-batch", "--output-dir",
                 str(out)]) == 0
    record = verify_onnx_sha256(str(out / "model.onnx"))
    assert record.inputs[0]["shape"] == [-1, 1, 8, 8] and record.outputs[0]["shape"] == [-1, 3]
    made = record.origin["dynamic_batch"]
    assert made["from_batch"] == 5 and made["checked_rows"] == [5, 1, 3]
    assert made["tensors"] == ["x", "p"] and len(made["rewritten"]) == 1  # the view's Reshape
    session = ort_session(str(out / "model.onnx"))
    x = np.random.default_rng(2).normal(size=(64, 1, 8, 8)).astype(np.float32)
    for rows in (1, 3, 64):  # the PyTorch model itself is the truth, row for row
        np.testing.assert_allclose(session.run(None, {"x": x[:rows]})[0], _torch(net, x[:rows]),
                                   rtol=1e-4, atol=1e-6)


def test_optimize_dynamic_batch_with_quantization_and_alone(static_cnn, tmp_path):
    path, sample, net = static_cnn
    adopt_onnx_step(model_path=path, sample_path=sample, out_dir=str(tmp_path / "a"))
    fixed = str(tmp_path / "a" / "model.onnx")
    record, report = optimize_step(model_path=fixed, quantize="int8-static", dynamic_batch=True,
                                   max_accuracy_drop=0.2, out_dir=str(tmp_path / "q"))
    o = record.optimization
    assert o["kind"] == "int8-static" and o["dynamic_batch"]["from_batch"] == 5
    assert record.inputs[0]["shape"] == [-1, 1, 8, 8]
    assert set(o["latency_ms"]["before"]) == {"rows_1", "rows_64"}  # timed as made dynamic
    session = ort_session(str(tmp_path / "q" / "model.onnx"))
    assert session.run(None, {"x": np.zeros((3, 1, 8, 8), np.float32)})[0].shape == (3, 3)
    record, _ = optimize_step(model_path=fixed, graph_level="none", dynamic_batch=True,
                              out_dir=str(tmp_path / "d"))
    assert record.optimization["kind"] == "dynamic-batch"
    # without --dynamic-batch a fixed graph is timed only at the sizes it takes
    record, _ = optimize_step(model_path=fixed, graph_level="basic", out_dir=str(tmp_path / "g"))
    assert record.optimization["latency_ms"] == {"before": {}, "after": {}}
    assert record.inputs[0]["shape"] == [5, 1, 8, 8]
    # the run summary prints it (n/a where a size was not timed)
    from kfp_interop.runs.summary import print_summary

    print_summary({"pipeline": "p", "status": "succeeded", "duration_s": 1.0,
                   "optimization": record.optimization})


def test_an_already_dynamic_graph_is_left_as_it_is(tmp_path, capsys):
    from test_optimize import mlp

    path, sample = mlp(tmp_path / "mlp.onnx")
    record = adopt_onnx_step(model_path=path, sample_path=sample, dynamic_batch=True,
                             out_dir=str(tmp_path / "a"))
    assert "dynamic_batch" not in record.origin
    assert main(["optimize", str(tmp_path / "a"), "--graph-level", "none", "--dynamic-batch",
                 "--output-dir", str(tmp_path / "o")]) == 2
    assert "already takes any batch size" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def _graph(path, nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=8), str(path))
    return str(path)


def test_a_constant_shape_that_pins_the_batch_is_named(tmp_path):
    """An Expand to a constant [5, 3] (a bias broadcast to the batch the way a static
    exporter folds it): not rewritable; the node is named and nothing is written."""
    path = _graph(tmp_path / "pinned.onnx", [
        helper.make_node("Expand", ["bias", "shape"], ["wide"], name="broadcast_bias"),
        helper.make_node("Add", ["x", "wide"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 3])],
        [numpy_helper.from_array(np.ones((1, 3), np.float32), "bias"),
         numpy_helper.from_array(np.array([5, 3], np.int64), "shape")])
    with pytest.raises(InvalidInputError, match="broadcast_bias.*Expand.*\\[5, 3\\]"):
        adopt_onnx_step(model_path=path, dynamic_batch=True, out_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_an_output_that_is_not_per_row_is_named(tmp_path):
    """A graph that sums over its batch: its output has no batch dimension to free."""
    path = _graph(tmp_path / "sum.onnx", [
        helper.make_node("ReduceSum", ["x", "axes"], ["total"], keepdims=1)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 3])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(np.array([0], np.int64), "axes")])
    with pytest.raises(InvalidInputError, match="'total' has first dimension 1"):
        adopt_onnx_step(model_path=path, dynamic_batch=True, out_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_rows_that_depend_on_each_other_are_caught_by_the_row_check(tmp_path):
    """Shapes alone let this through (x minus the batch mean, [5, 3] -> [5, 3]); run at 1
    and 3 rows it answers differently from the original: refused, named."""
    path = _graph(tmp_path / "centre.onnx", [
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[0], keepdims=1),
        helper.make_node("Sub", ["x", "mean"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 3])])
    sample = str(tmp_path / "s.npz")
    save_tensors(sample, {"x": np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)})
    with pytest.raises(InvalidInputError, match="answers 1 row\\(s\\) differently.*'y'"):
        adopt_onnx_step(model_path=path, sample_path=sample, dynamic_batch=True,
                        out_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_the_record_with_dynamic_batch_is_valid_and_renders(static_cnn, tmp_path):
    from kfp_interop.metadata.render import render

    path, sample, _ = static_cnn
    record = adopt_onnx_step(model_path=path, sample_path=sample, dynamic_batch=True,
                             out_dir=str(tmp_path / "a"))
    again = load_metadata(str(tmp_path / "a" / "model.onnx"))
    assert again.origin["dynamic_batch"] == record.origin["dynamic_batch"]
    config = render(record, "triton")
    assert "dims: [ -1, 1, 8, 8 ]" in config, config  # any batch, as Triton reads it
    assert render(record, "oip")["inputs"][0]["shape"] == [-1, 1, 8, 8]
