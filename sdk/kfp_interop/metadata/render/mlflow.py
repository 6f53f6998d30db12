"""The MLflow model signature (tensor-based), as ``ModelSignature.to_dict()`` gives it."""

from __future__ import annotations

import json
from typing import Any

from kfp_interop.dtypes import by_oip
from kfp_interop.metadata.record import InferenceMetadata
from kfp_interop.metadata.render.base import RENDERERS

__all__ = ["to_mlflow_signature"]


def to_mlflow_signature(record: InferenceMetadata) -> dict[str, Any]:
    """The dict ``mlflow.models.ModelSignature.from_dict`` accepts."""

    def specs(tensors: list[dict]) -> str:
        return json.dumps([{"type": "tensor", "name": t["name"],
                            "tensor-spec": {"dtype": by_oip(t["datatype"]).mlflow,
                                            "shape": t["shape"]}} for t in tensors])

    return {"inputs": specs(record.inputs), "outputs": specs(record.outputs), "params": None}


RENDERERS.register("mlflow", to_mlflow_signature)
