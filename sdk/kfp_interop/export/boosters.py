"""XGBoost and LightGBM -> ONNX through onnxmltools.

``opset`` is the highest default-domain opset the model may use (as in skl2onnx and
onnxmltools, where ``target_opset`` is a ceiling). onnxmltools supports up to
:data:`MAX_CONVERTER_OPSET` and often needs less (tree ensembles live in ``ai.onnx.ml``);
the metadata record stores the opsets the model actually imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kfp_interop.errors import ExportError, UnsupportedModelError

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.native import NativeModel

__all__ = ["export_xgboost", "export_lightgbm", "float32_safe_booster", "MAX_CONVERTER_OPSET"]

MAX_CONVERTER_OPSET = 15


def _convert(convert, model, n_features: int, opset: int, **kwargs):
    name = type(model).__name__
    try:
        onnx_model = convert(model, initial_types=_input_types(n_features),
                             target_opset=min(opset, MAX_CONVERTER_OPSET), **kwargs)
    except (RuntimeError, ValueError, TypeError, NotImplementedError, KeyError) as e:
        raise ExportError(f"onnxmltools failed to convert {name}: {e}") from e
    return onnx_model


def _input_types(n_features: int):
    from onnxmltools.convert.common.data_types import FloatTensorType

    return [("input", FloatTensorType([None, n_features]))]


def export_xgboost(native: "NativeModel", n_features: int, opset: int):
    import xgboost
    from onnxmltools import convert_xgboost

    if not isinstance(native.model, (xgboost.XGBClassifier, xgboost.XGBRegressor)):
        raise UnsupportedModelError(
            f"{type(native.model).__name__} is not an XGBClassifier or XGBRegressor; the "
            "xgboost exporter converts those two (train with framework='xgboost').")
    return _convert(convert_xgboost, native.model, n_features, opset)


def _floor_float32(t: float) -> float:
    import numpy as np

    f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    return float(f)


def float32_safe_booster(booster):
    """A copy of a LightGBM booster whose split thresholds are exact float32 values.

    LightGBM splits on double thresholds (``x <= t``), while the ONNX tree ensemble
    holds float32 thresholds rounded to nearest, so a float32 input equal to the rounded
    value can take the other branch (seen: 0.02 probability error on breast_cancer).
    For every float32 ``x``, ``x <= t`` holds exactly when ``x <= floor32(t)``, the
    largest float32 not above ``t``; so the rewritten booster makes the same decisions as
    the original on every FP32 input (what the served model receives) and converts
    without rounding. Categorical splits (not produced here: features are numeric) keep
    their thresholds.
    """
    import lightgbm

    lines = []
    in_categorical_tree = False
    for line in booster.model_to_string().split("\n"):
        if line.startswith("tree_sizes="):
            continue  # byte sizes change with the rewrite; LightGBM parses without them
        if line.startswith("num_cat="):
            in_categorical_tree = line.strip() != "num_cat=0"
        if line.startswith("threshold=") and not in_categorical_tree:
            values = line[len("threshold="):].split(" ")
            line = "threshold=" + " ".join(repr(_floor_float32(float(v))) for v in values)
        lines.append(line)
    return lightgbm.Booster(model_str="\n".join(lines))


def export_lightgbm(native: "NativeModel", n_features: int, opset: int):
    import lightgbm
    from onnxmltools import convert_lightgbm

    if not isinstance(native.model, (lightgbm.Booster, lightgbm.LGBMModel)):
        raise UnsupportedModelError(
            f"{type(native.model).__name__} is not a LightGBM model; the lightgbm exporter "
            "converts Booster, LGBMClassifier and LGBMRegressor.")
    booster = native.model if isinstance(native.model, lightgbm.Booster) else native.model.booster_
    return _convert(convert_lightgbm, float32_safe_booster(booster), n_features, opset,
                    zipmap=False)
