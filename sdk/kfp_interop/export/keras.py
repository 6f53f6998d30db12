"""Keras 3 -> ONNX with ``model.export(format="onnx")`` (on the TensorFlow backend Keras
converts through tf2onnx), then an ArgMax for ``label`` (classifiers) or the one output
named ``variable`` (regression)."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

from kfp_interop.constants import INPUT_NAME, LABEL_OUTPUT, PROBABILITIES_OUTPUT, VALUE_OUTPUT
from kfp_interop.errors import ExportError
from kfp_interop.export.core import set_batch_dimension
from kfp_interop.export.registry import register_exporter
from kfp_interop.onnx_model import rename_tensor

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.frameworks import NativeModel

__all__ = ["export_keras"]


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
    rename_tensor(proto, graph.input[0].name, INPUT_NAME)
    set_batch_dimension(graph.input[0])
    if native.task == "regression":
        rename_tensor(proto, graph.output[0].name, VALUE_OUTPUT)
        return proto
    rename_tensor(proto, graph.output[0].name, PROBABILITIES_OUTPUT)
    graph.node.append(helper.make_node("ArgMax", [PROBABILITIES_OUTPUT], [LABEL_OUTPUT],
                                       axis=1, keepdims=0, name="kfp_interop_label"))
    label = helper.make_tensor_value_info(LABEL_OUTPUT, onnx.TensorProto.INT64, ["N"])
    graph.output.insert(0, label)
    return proto


register_exporter("keras", export_keras)
