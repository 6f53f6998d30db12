"""Acumos onboarding files for the record's model: ``metadata.json`` (schema
``acumos.schema.model:0.6.0``) and the ``model.proto`` its messages are defined in, as
the Acumos Python client writes them for a model with one method, ``predict``.

- ``metadata.json``: name, the ``python`` runtime (this interpreter's version) with the
  pip requirements that run an ONNX model, pinned to the versions installed here (those
  the parity checks ran on), and the ``predict`` method with its input and output
  message names, media type ``application/vnd.google.protobuf`` (a list, as the client
  writes it and the onboarding server's schema reads it), and in each message's
  ``metadata`` the record's tensors (name, proto field, datatype, shape) and the feature
  names or class labels.
- ``model.proto``: proto3, one ``repeated`` field per tensor holding its values
  row-major (a batch of rows is one message), in the tensor's own scalar type (FP16 and
  BF16 widened to ``float``; BYTES as ``string``, what the record's text inputs are).
  Tensor names that are not proto identifiers are made into ones (``input:0`` ->
  ``input_0``); the metadata says which field is which tensor. One field per line and no
  comment inside a message: Acumos's onboarding reads the file line by line.

Validated against the schema Acumos's onboarding server validates uploads with
(``schema/acumos-model-schema-0.6.0.json``, shipped: see :func:`acumos_schema`).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from kfp_interop.metadata.record import InferenceMetadata
from kfp_interop.metadata.render.base import RENDERERS, Files

__all__ = ["to_acumos", "acumos_schema", "proto_fields", "PROTO_TYPES", "ACUMOS_SCHEMA"]

ACUMOS_SCHEMA = "acumos.schema.model:0.6.0"
METHOD = "predict"
INPUT_MESSAGE, OUTPUT_MESSAGE = "PredictInput", "PredictOutput"
MEDIA_TYPE = "application/vnd.google.protobuf"
#: OIP datatype -> proto3 scalar type
PROTO_TYPES = {"BOOL": "bool", "INT8": "int32", "INT16": "int32", "INT32": "int32",
               "INT64": "int64", "UINT8": "uint32", "UINT16": "uint32", "UINT32": "uint32",
               "UINT64": "uint64", "FP16": "float", "BF16": "float", "FP32": "float",
               "FP64": "double", "BYTES": "string"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def acumos_schema(path: str | None = None) -> dict[str, Any]:
    """The model schema 0.6.0 Acumos's onboarding server validates ``metadata.json``
    with (acumos/on-boarding ``onboarding-common/src/main/resources/
    model-schema-0.6.0.json``, at commit 2caab340). Its ``runtime`` property says
    ``items`` without a type, which does not apply to an object: the schema leaves the
    runtime unchecked; kfp-interop checks it against the schema's own ``Runtime``
    definition besides (:func:`check_acumos`)."""
    path = path or os.path.join(os.path.dirname(os.path.dirname(__file__)), "schema",
                                "acumos-model-schema-0.6.0.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def check_acumos(doc: dict[str, Any], schema: dict[str, Any] | None = None) -> None:
    """Validate ``doc`` against the schema, and its runtime against ``Runtime``.

    Raises:
        jsonschema.ValidationError: the document does not conform.
    """
    import jsonschema

    schema = schema or acumos_schema()
    jsonschema.Draft4Validator(schema).validate(doc)
    runtime = {**schema, "$ref": "#/definitions/Runtime"}
    jsonschema.Draft4Validator(runtime).validate(doc["runtime"])


def proto_fields(tensors: list[dict]) -> list[str]:
    """A proto identifier per tensor, unique within the message."""
    out: list[str] = []
    for t in tensors:
        name = t["name"] if _IDENT.fullmatch(t["name"]) else re.sub(
            r"[^A-Za-z0-9_]", "_", t["name"])
        if not name or not (name[0].isalpha() or name[0] == "_"):
            name = f"t_{name}"
        base, n = name, 2
        while name in out:
            name, n = f"{base}_{n}", n + 1
        out.append(name)
    return out


def _message(name: str, tensors: list[dict], fields: list[str]) -> str:
    lines = [f"  repeated {PROTO_TYPES[t['datatype']]} {f} = {i};"
             for i, (t, f) in enumerate(zip(tensors, fields), 1)]
    return "message " + name + " {\n" + "\n".join(lines) + "\n}\n"


def _package(record: InferenceMetadata) -> str:
    return "kfp_interop." + re.sub(r"[^A-Za-z0-9_]", "_", record.name) + "_v" + str(
        record.version)


def _described(tensors: list[dict], fields: list[str], **facts: Any) -> dict[str, Any]:
    return {"tensors": [{"name": t["name"], "field": f, "datatype": t["datatype"],
                         "shape": list(t["shape"])} for t, f in zip(tensors, fields)],
            "layout": "each field holds its tensor's values row-major",
            **{k: v for k, v in facts.items() if v}}


def to_acumos(record: InferenceMetadata) -> Files:
    """``{"metadata.json": {...}, "model.proto": "..."}`` for the record's model."""
    import platform

    from kfp_interop.environment import installed_pins

    in_fields, out_fields = proto_fields(record.inputs), proto_fields(record.outputs)
    proto = (f'syntax = "proto3";\npackage {_package(record)};\n\n'
             f"service Model {{\n  rpc {METHOD} ({INPUT_MESSAGE}) returns "
             f"({OUTPUT_MESSAGE});\n}}\n\n"
             + _message(INPUT_MESSAGE, record.inputs, in_fields) + "\n"
             + _message(OUTPUT_MESSAGE, record.outputs, out_fields))
    task = record.model["task"]
    meta = {
        "schema": ACUMOS_SCHEMA,
        "runtime": {"name": "python", "version": platform.python_version(),
                    "dependencies": {
                        "pip": {"indexes": [], "requirements": [
                            {"name": n, "version": v} for n, v in installed_pins()]},
                        "conda": {"channels": [], "requirements": []}}},
        "name": record.name,
        "methods": {METHOD: {
            "input": {"name": INPUT_MESSAGE, "media_type": [MEDIA_TYPE],
                      "metadata": _described(record.inputs, in_fields,
                                             feature_names=record.feature_names),
                      "description": f"the inputs of {record.name} v{record.version}"},
            "output": {"name": OUTPUT_MESSAGE, "media_type": [MEDIA_TYPE],
                       "metadata": _described(record.outputs, out_fields,
                                              class_labels=record.class_labels),
                       "description": f"the {task} outputs of {record.name}"},
            "description": f"{record.name} v{record.version} ({task}; ONNX, sha256 "
                           f"{record.model.get('onnx_sha256', 'unknown')}), run with "
                           "ONNX Runtime"}},
    }
    return Files({"metadata.json": meta, "model.proto": proto})


RENDERERS.register("acumos", to_acumos)
