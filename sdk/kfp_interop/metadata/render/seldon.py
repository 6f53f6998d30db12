"""Seldon Core v1 model metadata (as ``init_metadata`` or ``MODEL_METADATA`` give it)."""

from __future__ import annotations

from typing import Any

from kfp_interop.constants import PROBABILITIES_OUTPUT
from kfp_interop.metadata.record import InferenceMetadata
from kfp_interop.metadata.render.base import RENDERERS, properties

__all__ = ["to_seldon"]


def to_seldon(record: InferenceMetadata) -> dict[str, Any]:
    """Tensors with ``messagetype``/``schema`` (feature and class names) and ``custom``."""

    def tensor(t: dict, names: list[str] | None) -> dict:
        schema: dict[str, Any] = {"shape": [d for d in t["shape"][1:]]}
        if names:
            schema["names"] = names
        return {"name": t["name"], "datatype": t["datatype"], "messagetype": "tensor",
                "schema": schema}

    outputs = [tensor(o, record.class_labels if o["name"] == PROBABILITIES_OUTPUT else None)
               for o in record.outputs]
    return {
        "name": record.name,
        "versions": [record.version],
        "platform": "seldon",
        "inputs": [tensor(i, _names(record, i, n)) for n, i in enumerate(record.inputs)],
        "outputs": outputs,
        "custom": properties(record),
    }


RENDERERS.register("seldon", to_seldon)


def _names(record: InferenceMetadata, tensor: dict, index: int) -> list[str] | None:
    """The column names of an input: every feature of a single feature-matrix input, the
    input's own column when the model takes one input per column."""
    names = record.feature_names
    if not names:
        return None
    if len(record.inputs) == 1:
        return names
    return [names[index]] if len(names) == len(record.inputs) else None
