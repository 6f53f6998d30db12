"""Triton ``config.pbtxt`` (platform ``onnxruntime_onnx``) for KServe's and Seldon's
Triton servers."""

from __future__ import annotations

import json

from kfp_interop.dtypes import by_oip
from kfp_interop.metadata.record import InferenceMetadata
from kfp_interop.metadata.render.base import RENDERERS, properties

__all__ = ["to_triton_config"]


def to_triton_config(record: InferenceMetadata, *, max_batch_size: int = 0,
                     instance_count: int = 1) -> str:
    """``config.pbtxt`` text. With ``max_batch_size: 0`` the dims keep the batch (-1)."""

    def tensors(kind: str, items: list[dict]) -> str:
        parts = []
        for t in items:
            dims = t["shape"][1:] if max_batch_size > 0 else t["shape"]
            parts.append(f'  {{\n    name: "{t["name"]}"\n    data_type: '
                         f'{by_oip(t["datatype"]).triton}\n    dims: '
                         f'[ {", ".join(str(d) for d in dims)} ]\n  }}')
        return f"{kind} [\n" + ",\n".join(parts) + "\n]\n"

    head = (f'name: "{record.name}"\nplatform: "{record.model["platform"]}"\n'
            f"max_batch_size: {max_batch_size}\n")
    tail = (f"version_policy: {{ specific: {{ versions: [ {record.version} ] }} }}\n"
            f"instance_group [\n  {{\n    count: {instance_count}\n    kind: KIND_CPU\n  }}\n]\n")
    params = "".join(
        f'parameters {{\n  key: "{k}"\n  value: {{ string_value: {json.dumps(v)} }}\n}}\n'
        for k, v in sorted(properties(record).items()))
    return head + tensors("input", record.inputs) + tensors("output", record.outputs) + tail + params


RENDERERS.register("triton", to_triton_config)
