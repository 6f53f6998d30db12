"""XGBoost -> ONNX through onnxmltools."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kfp_interop.errors import UnsupportedModelError
from kfp_interop.export._onnxmltools import convert
from kfp_interop.export.registry import register_exporter

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.frameworks import NativeModel

__all__ = ["export_xgboost"]


def export_xgboost(native: "NativeModel", n_features: int, opset: int):
    import xgboost
    from onnxmltools import convert_xgboost

    if not isinstance(native.model, (xgboost.XGBClassifier, xgboost.XGBRegressor)):
        raise UnsupportedModelError(
            f"{type(native.model).__name__} is not an XGBClassifier or XGBRegressor; the "
            "xgboost exporter converts those two (train with framework='xgboost').")
    return convert(convert_xgboost, native.model, n_features, opset)


register_exporter("xgboost", export_xgboost)
