"""TensorFlow -> ONNX through tf2onnx: a SavedModel's ``serving_default`` signature
(``tf2onnx``'s own SavedModel loader, as ``python -m tf2onnx.convert --saved-model``
does), or a Keras model on the TensorFlow backend (Keras' export, which calls tf2onnx).
The result gets the common interface: ``input``, then ``label`` and ``probabilities``
(a Softmax added when the graph returns logits) or ``variable``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kfp_interop.errors import InvalidInputError, UnsupportedModelError
from kfp_interop.export.failures import explain
from kfp_interop.export.core import one_in_one_out
from kfp_interop.export.keras import export_keras
from kfp_interop.export.registry import register_exporter
from kfp_interop.frameworks.tensorflow import SavedModelFunction, import_tensorflow

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

    model = native.model
    graph_def, inputs, outputs, renames = model.frozen()
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    try:
        proto, _ = tf2onnx.convert.from_graph_def(
            graph_def, name="tensorflow", input_names=inputs, output_names=outputs,
            opset=opset, tensors_to_rename=renames)
    except Exception as e:  # noqa: BLE001 - tf2onnx raises many types; explained below
        raise explain("tf2onnx", e, source=native.source) from e
    untranslated(proto, "tf2onnx", native.source)
    return one_in_one_out(proto, native.task, converter="tf2onnx", output=model.output_kind)


def untranslated(proto, converter: str, source: str) -> None:
    """Refuse a converted graph that still holds ops ONNX does not define (tf2onnx logs
    the TensorFlow ops it cannot translate and leaves them in the graph).

    Raises:
        UnsupportedModelError: such ops, named.
    """
    import onnx

    left = sorted({n.op_type for n in proto.graph.node
                   if not onnx.defs.has(n.op_type, n.domain)})
    if left:
        raise UnsupportedModelError(
            f"{converter} cannot convert {source}: TensorFlow op(s) {left} have no ONNX "
            "translation in tf2onnx. To export it, try another --opset, or replace the "
            "layer that uses them.")


register_exporter("tensorflow", export_tensorflow)
