"""Open Inference Protocol (KServe V2) model metadata: ``GET /v2/models/{name}``."""

from __future__ import annotations

from typing import Any

from kfp_interop.metadata.record import InferenceMetadata
from kfp_interop.metadata.render.base import RENDERERS, properties

__all__ = ["to_oip"]


def to_oip(record: InferenceMetadata) -> dict[str, Any]:
    """The ``metadata_model_response`` for the record's model."""
    return {
        "name": record.name,
        "versions": [record.version],
        "platform": record.model["platform"],
        "inputs": record.inputs,
        "outputs": record.outputs,
        "properties": properties(record),
    }


RENDERERS.register("oip", to_oip)
