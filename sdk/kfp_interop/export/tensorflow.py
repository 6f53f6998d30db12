"""TensorFlow -> ONNX through tf2onnx: a SavedModel's ``serving_default`` signature
(``tf2onnx``'s own SavedModel loader, as ``python -m tf2onnx.convert --saved-model``
does), or a Keras model on the TensorFlow backend (Keras' export, which calls tf2onnx).
The result gets the common interface: ``input``, then ``label`` and ``probabilities``
(a Softmax added when the graph returns logits) or ``variable``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kfp_interop.constants import INPUT_NAME, LABEL_OUTPUT, PROBABILITIES_OUTPUT, VALUE_OUTPUT
from kfp_interop.errors import ExportError, InvalidInputError
from kfp_interop.export.core import set_batch_dimension
from kfp_interop.export.keras import export_keras
from kfp_interop.export.registry import register_exporter
from kfp_interop.frameworks.tensorflow import SavedModelFunction, import_tensorflow
from kfp_interop.onnx_model import rename_tensor

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.frameworks import NativeModel

__all__ = ["export_tensorflow", "TF2ONNX_MAX_OPSET"]

#: the newest default-domain opset tf2onnx 1.17 writes
TF2ONNX_MAX_OPSET = 18


def export_tensorflow(native: "NativeModel", n_features: int, opset: int):
    if opset > TF2ONNX_MAX_OPSET:
        raise InvalidInputError(f"opset={opset}: tf2onnx writes opsets up to "
                                f"{TF2ONNX_MAX_OPSET}; pass --opset {TF2ONNX_MAX_OPSET} or lower.")
    if not isinstance(native.model, SavedModelFunction):  # Keras on the TensorFlow backend
        return export_keras(native, n_features, opset)
    import_tensorflow()
    import tf2onnx
    from onnx import TensorProto, helper
    from tf2onnx import tf_loader

    model = native.model
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    try:
        graph_def, inputs, outputs, _tables, renames = tf_loader.from_saved_model(
            model.path, None, None, signatures=["serving_default"],
            return_initialized_tables=True, return_tensors_to_rename=True)
        proto, _ = tf2onnx.convert.from_graph_def(
            graph_def, name="tensorflow", input_names=inputs, output_names=outputs,
            opset=opset, tensors_to_rename=renames)
    except Exception as e:  # noqa: BLE001 - tf2onnx raises many types
        raise ExportError(f"tf2onnx could not convert the SavedModel {model.path!r}: "
                          f"{(str(e).splitlines() or [type(e).__name__])[0][:300]}") from e
    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ExportError(f"tf2onnx gave inputs {[i.name for i in graph.input]} and outputs "
                          f"{[o.name for o in graph.output]}; expected one of each.")
    rename_tensor(proto, graph.input[0].name, INPUT_NAME)
    set_batch_dimension(graph.input[0])
    if native.task == "regression":
        rename_tensor(proto, graph.output[0].name, VALUE_OUTPUT)
        return proto
    if model.softmax_inside:
        rename_tensor(proto, graph.output[0].name, PROBABILITIES_OUTPUT)
    else:  # logits: the interface returns probabilities
        logits = graph.output[0].name
        graph.node.append(helper.make_node("Softmax", [logits], [PROBABILITIES_OUTPUT],
                                           axis=-1, name="kfp_interop_softmax"))
        del graph.output[:]
        graph.output.append(helper.make_tensor_value_info(
            PROBABILITIES_OUTPUT, TensorProto.FLOAT, ["N", model.n_outputs]))
    graph.node.append(helper.make_node("ArgMax", [PROBABILITIES_OUTPUT], [LABEL_OUTPUT],
                                       axis=1, keepdims=0, name="kfp_interop_label"))
    graph.output.insert(0, helper.make_tensor_value_info(LABEL_OUTPUT, TensorProto.INT64,
                                                         ["N"]))
    return proto


register_exporter("tensorflow", export_tensorflow)
