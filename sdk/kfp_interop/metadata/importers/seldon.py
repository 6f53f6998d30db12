"""Seldon Core v1 model metadata (``init_metadata``, ``MODEL_METADATA``, or ``GET
/api/v1.0/metadata/{model}``): tensors with ``messagetype`` and a ``schema`` of column
names and per-row shape, and ``custom`` facts.

Seldon's shapes leave out the batch dimension; imported tensors get a dynamic one (-1)
in front. A tensor without a name is ``input``/``output`` (with its index when there are
several); without a datatype, FP32 (what Seldon's tensors carry to an ONNX model)."""

from __future__ import annotations

from kfp_interop.errors import MetadataError
from kfp_interop.metadata.importers.base import (IMPORTERS, Described, probabilities_labels,
                                                 read_json, tensor)

__all__ = ["from_seldon"]

_TENSOR_MESSAGES = ("tensor", "ndarray")


def from_seldon(text: str, path: str) -> Described:
    doc = read_json(text, path, "Seldon")
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) \
            or not isinstance(doc.get("outputs"), list):
        raise MetadataError(f"{path!r} is not Seldon metadata: a JSON object with 'inputs' "
                            "and 'outputs'.")
    every = doc["inputs"] + doc["outputs"]
    if every and not any(isinstance(t, dict) and "messagetype" in t for t in every):
        raise MetadataError(f"{path!r} has no Seldon 'messagetype' tensors; for OIP model "
                            "metadata use --from oip.")

    def tensors(items: list, kind: str) -> tuple[list[dict], list[list[str] | None]]:
        out, names = [], []
        for i, t in enumerate(items):
            if not isinstance(t, dict):
                raise MetadataError(f"{path!r}: an entry of {kind} is not an object.")
            message = t.get("messagetype", "tensor")
            if message not in _TENSOR_MESSAGES:
                raise MetadataError(f"{path!r}: {kind[:-1]} {i} is a {message!r} message; a "
                                    f"record describes tensors ({', '.join(_TENSOR_MESSAGES)}).")
            schema = t.get("schema") or {}
            if not isinstance(schema, dict):
                raise MetadataError(f"{path!r}: {kind[:-1]} {i} has a non-object schema.")
            default = kind[:-1] if len(items) == 1 else f"{kind[:-1]}_{i}"
            shape = schema.get("shape", [])
            if not isinstance(shape, list):
                raise MetadataError(f"{path!r}: {kind[:-1]} {i} schema shape {shape!r} is "
                                    "not a list.")
            out.append(tensor(t.get("name", default), t.get("datatype", "FP32"),
                              [-1] + shape, path=path, where=kind[:-1]))
            names.append(schema.get("names"))
        return out, names

    inputs, input_names = tensors(doc["inputs"], "inputs")
    outputs, output_names = tensors(doc["outputs"], "outputs")
    if len(inputs) == 1:
        features = input_names[0]
    elif all(n and len(n) == 1 for n in input_names):  # one input per column
        features = [n[0] for n in input_names]
    else:
        features = None
    by_name = dict(zip([o["name"] for o in outputs], output_names))
    custom = doc.get("custom") or {}
    if not isinstance(custom, dict):
        raise MetadataError(f"{path!r}: 'custom' is not an object.")
    versions = doc.get("versions") or []
    return Described(inputs=inputs, outputs=outputs, name=doc.get("name"),
                     version=str(versions[0]) if versions else None,
                     properties={str(k): str(v) for k, v in custom.items()},
                     feature_names=[str(f) for f in features] if features else None,
                     class_labels=probabilities_labels(outputs, lambda o: by_name[o["name"]]))


IMPORTERS.register("seldon", from_seldon)
