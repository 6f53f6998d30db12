"""KFP artifact metadata for a ``Model``: the record plus the flat keys the Kubeflow UI
lists (plain data: this module does not import kfp)."""

from __future__ import annotations

from typing import Any

from kfp_interop.metadata.record import InferenceMetadata
from kfp_interop.metadata.render.base import RENDERERS

__all__ = ["to_kfp_metadata"]


def to_kfp_metadata(record: InferenceMetadata) -> dict[str, Any]:
    m = record.model
    return {
        "model_name": m["name"],
        "model_version": m["version"],
        "framework": record.framework["name"],
        "task": m["task"],
        "runtime": m["platform"],
        "origin": record.origin["kind"],
        "onnx_opset": m.get("onnx_opset"),
        "onnx_sha256": m.get("onnx_sha256"),
        "inputs": record.inputs,
        "outputs": record.outputs,
        "parity_passed": record.parity["passed"] if record.parity else None,
        "parity_max_abs_diff": record.parity["max_abs_diff"] if record.parity else None,
        "inference_metadata": record.to_dict(),
    }


RENDERERS.register("kfp", to_kfp_metadata)
