"""The renderer registry and what several dialects share: the record's key facts as a
flat string map."""

from __future__ import annotations

import json
from typing import Any, Callable

from kfp_interop.metadata.record import InferenceMetadata
from kfp_interop.registry import Registry

__all__ = ["RENDERERS", "Renderer", "properties"]

Renderer = Callable[[InferenceMetadata], Any]

RENDERERS: Registry[Renderer] = Registry(
    "metadata format",
    "Add one with kfp_interop.metadata.render.RENDERERS.register(name, fn).",
    entry_point_group="kfp_interop.renderers")


def properties(record: InferenceMetadata) -> dict[str, str]:
    """Key facts as a flat string map (OIP ``properties``, Seldon ``custom``, tags)."""
    m, fw, tr, par = record.model, record.framework, record.training, record.parity
    out = {
        "kfp_interop.schema_version": record.schema_version,
        "task": m["task"],
        "framework": fw["name"],
        "framework_version": fw["version"],
        "estimator": fw["estimator"],
        "onnx_opset": str(m["onnx_opset"]),
        "onnx_sha256": m["onnx_sha256"],
        "data_sha256": tr["data_sha256"],
        "feature_names": json.dumps(record.feature_names),
        "parity_max_abs_diff": repr(par["max_abs_diff"]),
        "parity_passed": str(par["passed"]).lower(),
        "kfp_interop_version": record.producer["version"],
    }
    if record.class_labels is not None:
        out["class_labels"] = json.dumps(record.class_labels)
    return out
