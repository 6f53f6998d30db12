"""PyTorch and Keras -> ONNX, with the interface every kfp-interop classifier has:
input ``input`` FP32 ``[-1, n_features]``; outputs ``label`` (INT64) and
``probabilities`` (FP32, softmax)."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

from kfp_interop.errors import ExportError, UnsupportedModelError

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.native import NativeModel

__all__ = ["export_torch", "export_keras"]


def export_torch(native: "NativeModel", n_features: int, opset: int):
    """``torch.onnx.export`` (the dynamo exporter) with a dynamic batch dimension."""
    import torch

    if native.task != "classification":
        raise UnsupportedModelError("The torch exporter handles classifiers (softmax "
                                    "probabilities); regression networks are not supported yet.")

    class WithLabel(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            probabilities = torch.softmax(self.model(x), dim=1)
            return torch.argmax(probabilities, dim=1), probabilities

    wrapped = WithLabel(native.model).eval()
    example = torch.zeros(2, n_features, dtype=torch.float32)
    try:
        program = torch.onnx.export(
            wrapped, (example,), None, input_names=["input"],
            output_names=["label", "probabilities"], opset_version=opset, dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
    except Exception as e:  # torch raises many types; name the operator when it is one
        ops = _operators_in(e)
        what = (f"operator(s) {', '.join(ops)} have no ONNX translation" if ops else
                _first_line(e))
        raise ExportError(f"torch.onnx.export could not export {type(native.model).__name__} "
                          f"at opset {opset}: {what}. Try another opset, or replace the "
                          "layer that uses it.") from e
    return program.model_proto


def _first_line(e: BaseException) -> str:
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    return text.splitlines()[0] if text else type(e).__name__


def _operators_in(e: BaseException) -> list[str]:
    """Operators named anywhere in an exception chain (e.g. prims.bessel_j0)."""
    import re

    found: list[str] = []
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(e)
        ops = re.findall(r"op='([A-Za-z0-9_.]+)'", text) or re.findall(
            r"torch\.ops\.([A-Za-z0-9_]+\.[A-Za-z0-9_]+)", text)
        for op in ops:
            if op not in found:
                found.append(op)
        e = e.__cause__ or e.__context__
    return found


def export_keras(native: "NativeModel", n_features: int, opset: int):
    """Keras 3 ``model.export(format="onnx")``, then an ArgMax for ``label``."""
    import onnx
    from onnx import helper

    import numpy as np

    model = native.model
    model(np.zeros((1, n_features), dtype=np.float32))  # a loaded model must be built first
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        try:
            model.export(path, format="onnx", verbose=False, opset_version=opset)
        except TypeError:  # older Keras: no opset_version argument
            model.export(path, format="onnx", verbose=False)
        except Exception as e:  # noqa: BLE001
            raise ExportError(f"Keras could not export the model to ONNX: {e}") from e
        proto = onnx.load(path)
    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ExportError(f"Keras export gave inputs {[i.name for i in graph.input]} and "
                          f"outputs {[o.name for o in graph.output]}; expected one of each.")
    from kfp_interop.export import _rename_tensor

    _rename_tensor(proto, graph.input[0].name, "input")
    old_out = graph.output[0].name
    _rename_tensor(proto, old_out, "probabilities")
    graph.node.append(helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1,
                                       keepdims=0, name="kfp_interop_label"))
    label = helper.make_tensor_value_info("label", onnx.TensorProto.INT64, ["N"])
    graph.output.insert(0, label)
    dims = graph.input[0].type.tensor_type.shape.dim
    if len(dims):
        dims[0].Clear()
        dims[0].dim_param = "N"
    return proto
