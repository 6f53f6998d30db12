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
    """A copy of a LightGBM booster whose numeric split thresholds are exact float32
    values.

    LightGBM splits on double thresholds (``x <= t``), while the ONNX tree ensemble
    holds float32 thresholds rounded to nearest, so a float32 input equal to the rounded
    value can take the other branch (seen: 0.02 probability error on breast_cancer).
    For every float32 ``x``, ``x <= t`` holds exactly when ``x <= floor32(t)``, the
    largest float32 not above ``t``; so the rewritten booster makes the same decisions as
    the original on every FP32 input (what the served model receives) and converts
    without rounding. A categorical split's threshold is an index into the tree's
    category sets, not a value: those nodes (bit 0 of ``decision_type``) keep theirs.
    """
    import lightgbm

    lines = [line for line in booster.model_to_string().split("\n")
             # byte sizes change with the rewrite; LightGBM parses without them
             if not line.startswith("tree_sizes=")]
    decision_types: list[int] = []
    threshold_at = None
    for k, line in enumerate(lines):
        if line.startswith("Tree="):
            decision_types, threshold_at = [], None
        elif line.startswith("threshold="):
            threshold_at = k
        elif line.startswith("decision_type="):
            decision_types = [int(v) for v in line[len("decision_type="):].split()]
        if threshold_at is not None and decision_types:  # both lines of this tree seen
            values = lines[threshold_at][len("threshold="):].split(" ")
            lines[threshold_at] = "threshold=" + " ".join(
                v if kind & 1 else repr(_floor_float32(float(v)))
                for v, kind in zip(values, decision_types))
            decision_types, threshold_at = [], None
    return lightgbm.Booster(model_str="\n".join(lines))


def export_lightgbm(native: "NativeModel", n_features: int, opset: int):
    import lightgbm
    from onnxmltools import convert_lightgbm

    if not isinstance(native.model, (lightgbm.Booster, lightgbm.LGBMModel)):
        raise UnsupportedModelError(
            f"{type(native.model).__name__} is not a LightGBM model; the lightgbm exporter "
            "converts Booster, LGBMClassifier and LGBMRegressor.")
    booster = booster_of(native.model)
    if "\nis_linear=1" in booster.model_to_string():
        raise UnsupportedModelError(
            f"lightgbm cannot be converted from {native.source}: it has linear trees "
            "(linear_tree=True), whose leaves hold linear models the ONNX tree ensemble "
            "cannot express. To export it, train with linear_tree=False.")
    return convert(convert_lightgbm, float32_safe_booster(booster), n_features, opset,
                   source=native.source, zipmap=False)


register_exporter("lightgbm", export_lightgbm)
