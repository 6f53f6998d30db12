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
    return convert(convert_xgboost, without_feature_names(native.model), n_features, opset,
                   source=native.source)


def without_feature_names(model):
    """A copy of the model whose booster names its features ``f0 .. fn-1``.

    A booster trained on a DataFrame keeps its columns' names, and its tree dump then
    splits on ``petal_length`` instead of ``f2``; onnxmltools reads feature positions
    from the ``f%d`` names only. The graph takes the features by position, in the
    booster's order (the record keeps the names), so the copy loses nothing. The
    feature types stay: they say which splits are categorical.
    """
    booster = model.get_booster()
    if booster.feature_names is None:
        return model
    booster = booster.copy()
    booster.feature_names = [f"f{i}" for i in range(booster.num_features())]
    clone = type(model)()
    clone.load_model(bytearray(booster.save_raw(raw_format="ubj")))
    return clone


register_exporter("xgboost", export_xgboost)
