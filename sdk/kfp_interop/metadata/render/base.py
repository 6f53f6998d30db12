"""The renderer registry and what several dialects share: the record's key facts as a
flat string map."""

from __future__ import annotations

import json
from typing import Any, Callable

from kfp_interop.metadata.record import InferenceMetadata
from kfp_interop.registry import Registry

__all__ = ["RENDERERS", "Renderer", "properties", "Files"]

Renderer = Callable[[InferenceMetadata], Any]


class Files(dict):
    """A rendering made of several files: file name -> text, or a JSON-shaped value
    (written as JSON). ``metadata render --output-dir`` writes them."""

    def texts(self) -> dict[str, str]:
        import json as _json

        return {name: value if isinstance(value, str)
                else _json.dumps(value, indent=2) + "\n" for name, value in self.items()}

RENDERERS: Registry[Renderer] = Registry(
    "metadata format",
    "Add one with kfp_interop.metadata.render.RENDERERS.register(name, fn).",
    entry_point_group="kfp_interop.renderers")


def properties(record: InferenceMetadata) -> dict[str, str]:
    """Key facts as a flat string map (OIP ``properties``, Seldon ``custom``, tags);
    facts the record does not have are left out. An imported record's ``properties``
    (facts of the document it came from that it has no field for, such as the origin
    that document gave) are rendered as they came."""
    m, fw, tr, par = record.model, record.framework, record.training, record.parity
    facts: dict[str, Any] = {
        "kfp_interop.schema_version": record.schema_version,
        "task": m["task"],
        "origin": record.origin["kind"],
        "framework": fw["name"],
        "framework_version": fw["version"],
        "estimator": fw["estimator"],
        "onnx_opset": m.get("onnx_opset"),
        "onnx_sha256": m.get("onnx_sha256"),
        "data_sha256": tr and tr["data_sha256"],
        "feature_names": record.feature_names and json.dumps(record.feature_names),
        "parity_max_abs_diff": par and repr(par["max_abs_diff"]),
        "parity_passed": par and str(par["passed"]).lower(),
        "class_labels": record.class_labels and json.dumps(record.class_labels),
        "kfp_interop_version": record.producer["version"],
    }
    facts.update(record.properties or {})  # known keys keep their place: same order
    return {k: str(v) for k, v in facts.items() if v is not None}
