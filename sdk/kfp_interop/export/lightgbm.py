"""LightGBM -> ONNX through onnxmltools, after rounding the split thresholds down to
FP32 (:func:`float32_safe_booster` explains why that is exact)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kfp_interop.errors import UnsupportedModelError
from kfp_interop.export._onnxmltools import convert
from kfp_interop.export.registry import register_exporter
from kfp_interop.frameworks.lightgbm import booster_of

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.frameworks import NativeModel

__all__ = ["export_lightgbm", "float32_safe_booster"]


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
    return convert(convert_lightgbm, float32_safe_booster(booster_of(native.model)),
                   n_features, opset, zipmap=False)


register_exporter("lightgbm", export_lightgbm)
