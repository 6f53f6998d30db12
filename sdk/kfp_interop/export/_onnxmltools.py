"""What the XGBoost and LightGBM exporters share: onnxmltools' converters with our input
and opset ceiling.

``opset`` is the highest default-domain opset the model may use (as in skl2onnx and
onnxmltools, where ``target_opset`` is a ceiling). onnxmltools supports up to
:data:`MAX_CONVERTER_OPSET` and often needs less (tree ensembles live in ``ai.onnx.ml``);
the metadata record stores the opsets the model actually imports.
"""

from __future__ import annotations

from kfp_interop.constants import INPUT_NAME
from kfp_interop.export.failures import explain

__all__ = ["MAX_CONVERTER_OPSET", "convert"]

MAX_CONVERTER_OPSET = 15


def convert(converter, model, n_features: int, opset: int, *, source: str, **kwargs):
    """Run an onnxmltools converter; its failures become typed errors naming
    ``source`` (:func:`~kfp_interop.export.failures.explain`)."""
    from onnxmltools.convert.common.data_types import FloatTensorType

    try:
        return converter(model, initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
                         target_opset=min(opset, MAX_CONVERTER_OPSET), **kwargs)
    except Exception as e:  # noqa: BLE001 - converters raise many types; explained below
        raise explain("onnxmltools", e, source=source) from e
