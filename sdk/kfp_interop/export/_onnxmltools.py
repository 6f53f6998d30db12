"""What the XGBoost and LightGBM exporters share: onnxmltools' converters with our input
and opset ceiling.

``opset`` is the highest default-domain opset the model may use (as in skl2onnx and
onnxmltools, where ``target_opset`` is a ceiling). onnxmltools supports up to
:data:`MAX_CONVERTER_OPSET` and often needs less (tree ensembles live in ``ai.onnx.ml``);
the metadata record stores the opsets the model actually imports.
"""

from __future__ import annotations

from kfp_interop.constants import INPUT_NAME
from kfp_interop.errors import ExportError

__all__ = ["MAX_CONVERTER_OPSET", "convert"]

MAX_CONVERTER_OPSET = 15


def convert(converter, model, n_features: int, opset: int, **kwargs):
    """Run an onnxmltools converter; its failures become :class:`ExportError`."""
    from onnxmltools.convert.common.data_types import FloatTensorType

    name = type(model).__name__
    try:
        return converter(model, initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
                         target_opset=min(opset, MAX_CONVERTER_OPSET), **kwargs)
    except (RuntimeError, ValueError, TypeError, NotImplementedError, KeyError) as e:
        raise ExportError(f"onnxmltools failed to convert {name}: {e}") from e
