"""Adlik's model-compiler request (the JSON its ``model_compiler`` takes), for an ONNX
model: serving type, name, version, maximum batch size, the input model and export path,
tensor names, input shapes and formats, data type, and the FP16/INT8 switches from the
record's ``optimization`` block. Valid against Adlik's own schema
(``schema/adlik-config-schema.json``, shipped: see :func:`adlik_schema`).

Adlik's request names tensors but does not type the outputs; the schema allows more
keys (``additionalProperties: true``), so the record's tensors and key facts travel
under ``kfp_interop`` for :mod:`..importers.adlik` to read back. ``max_batch_size``
(at least 1 in Adlik's schema): the record's dynamic batching maximum, else 64 for a
model whose tensors all have a batch dimension, else 1.
"""

from __future__ import annotations

import json
import os
from typing import Any

from kfp_interop.metadata.record import InferenceMetadata
from kfp_interop.metadata.render.base import RENDERERS, properties

__all__ = ["to_adlik", "adlik_schema", "ADLIK_DATA_TYPES"]

#: OIP datatype -> Adlik's ``data_type`` names (no string type in Adlik's list)
ADLIK_DATA_TYPES = {"BOOL": "bool", "INT8": "int8", "UINT8": "uint8", "INT16": "int16",
                    "UINT16": "uint16", "INT32": "int32", "UINT32": "uint32",
                    "INT64": "int64", "UINT64": "uint64", "FP16": "float16",
                    "BF16": "bfloat16", "FP32": "float", "FP64": "double"}
#: JSON Schema type names some hand-written schemas use for the standard ones
_TYPE_ALIASES = {"int": "integer", "bool": "boolean", "float": "number", "str": "string"}
_DEFAULT_BATCH = 64


def adlik_schema(path: str | None = None) -> dict[str, Any]:
    """Adlik's request schema (draft-04), with any non-standard ``type`` name (Adlik's
    file at commit 9e61295 says ``"int"`` for ``opset_version``, which a strict checker
    rejects) replaced by the JSON Schema type it means; the schema itself is then
    checked, so a file with an unknown type fails here, named."""
    import jsonschema

    path = path or os.path.join(os.path.dirname(os.path.dirname(__file__)), "schema",
                                "adlik-config-schema.json")
    with open(path, encoding="utf-8") as f:
        schema = json.load(f)

    def fix(node):
        if isinstance(node, dict):
            if isinstance(node.get("type"), str) and node["type"] in _TYPE_ALIASES:
                node["type"] = _TYPE_ALIASES[node["type"]]
            for value in node.values():
                fix(value)
        elif isinstance(node, list):
            for value in node:
                fix(value)

    fix(schema)
    jsonschema.Draft4Validator.check_schema(schema)
    return schema


def to_adlik(record: InferenceMetadata, *, input_model: str = "model.onnx",
             export_path: str = "model_repository") -> dict[str, Any]:
    """The Adlik model-compiler request for the record's model."""
    tensors = record.inputs + record.outputs
    batched = all(t["shape"] and t["shape"][0] == -1 for t in tensors)
    batching = (record.serving or {}).get("dynamic_batching")
    max_batch = batching["max_batch_size"] if batching else (_DEFAULT_BATCH if batched else 1)
    kind = (record.optimization or {}).get("kind", "")
    doc: dict[str, Any] = {
        "serving_type": "onnx",
        "model_name": record.name,
        "version": int(record.version),
        "max_batch_size": max_batch,
        "input_model": input_model,
        "export_path": export_path,
        "input_names": [t["name"] for t in record.inputs],
        "output_names": [t["name"] for t in record.outputs],
        "input_shapes": [t["shape"][1:] if batched else t["shape"] for t in record.inputs],
        # image inputs (N, C, H, W) as ONNX exporters lay them out; others have none
        "input_formats": ["channels_first" if len(t["shape"]) == 4 else None
                          for t in record.inputs],
        "enable_fp16": int(kind == "fp16"),
        "enable_int8": int(kind.startswith("int8")),
        "enable_onnx_checker": True,
    }
    types = {ADLIK_DATA_TYPES.get(t["datatype"]) for t in record.inputs}
    if len(types) == 1 and None not in types:
        doc["data_type"] = types.pop()
    doc["kfp_interop"] = {"inputs": record.inputs, "outputs": record.outputs,
                          "properties": properties(record),
                          **({"class_labels": record.class_labels}
                             if record.class_labels else {})}
    return doc


RENDERERS.register("adlik", to_adlik)
