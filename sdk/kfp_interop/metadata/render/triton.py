"""Triton ``config.pbtxt`` (platform ``onnxruntime_onnx``) for KServe's and Seldon's
Triton servers."""

from __future__ import annotations

import json

from kfp_interop.dtypes import by_oip
from kfp_interop.metadata.record import InferenceMetadata
from kfp_interop.metadata.render.base import RENDERERS, properties

__all__ = ["to_triton_config"]


def to_triton_config(record: InferenceMetadata, *, max_batch_size: int | None = None,
                     instance_count: int = 1) -> str:
    """``config.pbtxt`` text. With ``max_batch_size: 0`` the dims keep the batch (-1);
    a record with ``serving.dynamic_batching`` gives its maximum (unless one is passed)
    and a ``dynamic_batching`` block with its delay and preferred sizes."""
    batching = (record.serving or {}).get("dynamic_batching")
    if max_batch_size is None:
        max_batch_size = batching["max_batch_size"] if batching else 0

    def tensors(kind: str, items: list[dict]) -> str:
        parts = []
        for t in items:
            dims = t["shape"][1:] if max_batch_size > 0 else t["shape"]
            # a batched tensor with nothing but the batch dimension: Triton wants
            # dims [ 1 ] reshaped to [ ] (its documented form)
            reshape = "\n    reshape: { shape: [ ] }" if not dims else ""
            parts.append(f'  {{\n    name: "{t["name"]}"\n    data_type: '
                         f'{by_oip(t["datatype"]).triton}\n    dims: '
                         f'[ {", ".join(str(d) for d in dims or [1])} ]{reshape}\n  }}')
        return f"{kind} [\n" + ",\n".join(parts) + "\n]\n"

    head = (f'name: "{record.name}"\nplatform: "{record.model["platform"]}"\n'
            f"max_batch_size: {max_batch_size}\n")
    if batching and max_batch_size > 0:
        preferred = batching.get("preferred_batch_sizes") or []
        head_batching = ("dynamic_batching {\n"
                         + (f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]\n"
                            if preferred else "")
                         + f"  max_queue_delay_microseconds: "
                         f"{batching.get('max_queue_delay_us', 0)}\n}}\n")
    else:
        head_batching = ""
    tail = (head_batching +
            f"version_policy: {{ specific: {{ versions: [ {record.version} ] }} }}\n"
            f"instance_group [\n  {{\n    count: {instance_count}\n    kind: KIND_CPU\n  }}\n]\n")
    params = "".join(
        f'parameters {{\n  key: "{k}"\n  value: {{ string_value: {json.dumps(v)} }}\n}}\n'
        for k, v in sorted(properties(record).items()))
    return head + tensors("input", record.inputs) + tensors("output", record.outputs) + tail + params


RENDERERS.register("triton", to_triton_config)
