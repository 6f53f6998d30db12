"""An MLflow model's signature: the ``MLmodel`` file (YAML; its ``signature`` and the
``metadata`` logged with the model), or the signature alone (``ModelSignature.to_dict()``
as JSON or YAML).

Tensor-based specs become tensors as they are. A column-based schema becomes the
interface kfp-interop's tabular models have: one ``input`` matrix when every column has
the same numeric type (the columns are its feature names), else one ``[-1, 1]`` input per
column named like it. Unnamed output columns are ``output_0``, ``output_1``, ..."""

from __future__ import annotations

import json
from typing import Any

from kfp_interop.constants import INPUT_NAME
from kfp_interop.errors import InvalidInputError, MetadataError
from kfp_interop.metadata.importers.base import IMPORTERS, Described, tensor

__all__ = ["from_mlflow"]


def _specs(value: Any, kind: str, path: str) -> list[dict]:
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise MetadataError(f"{path!r}: signature {kind} is not JSON ({e}).") from e
    if not isinstance(value, list) or not all(isinstance(s, dict) for s in value):
        raise MetadataError(f"{path!r}: signature {kind} is not a list of specs.")
    if not all("type" in s for s in value):
        raise MetadataError(f"{path!r} is not an MLmodel file or MLflow signature: its "
                            f"{kind} have no 'type' (OIP or Seldon metadata? use --from oip "
                            "or --from seldon).")
    return value


def _dtype(name: Any, path: str, where: str) -> str:
    from kfp_interop.dtypes import by_mlflow

    try:
        return by_mlflow(name).oip
    except InvalidInputError as e:
        raise MetadataError(f"{path!r}: {where}: {e}") from e


def _tensors(specs: list[dict], kind: str, path: str) -> tuple[list[dict], list[str] | None]:
    if all(s.get("type") == "tensor" for s in specs):
        out = []
        for i, s in enumerate(specs):
            spec = s.get("tensor-spec") or {}
            default = INPUT_NAME if kind == "inputs" and len(specs) == 1 else f"{kind[:-1]}_{i}"
            out.append(tensor(s.get("name", default),
                              _dtype(spec.get("dtype"), path, f"{kind} spec {i}"),
                              spec.get("shape"), path=path, where=kind[:-1]))
        return out, None
    if any(s.get("type") == "tensor" for s in specs):
        raise MetadataError(f"{path!r}: signature {kind} mixes tensor and column specs.")
    names = [s.get("name", f"{kind[:-1]}_{i}") for i, s in enumerate(specs)]
    types = [_dtype(s.get("type"), path, f"{kind} column {n!r}") for n, s in zip(names, specs)]
    if kind == "inputs" and len(set(types)) == 1 and types[0] != "BYTES":
        return [tensor(INPUT_NAME, types[0], [-1, len(specs)], path=path, where="input")], names
    return [tensor(str(n), t, [-1, 1], path=path, where=kind[:-1])
            for n, t in zip(names, types)], names if kind == "inputs" else None


def from_mlflow(text: str, path: str) -> Described:
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise MetadataError(f"{path!r} is not an MLmodel file or signature: not YAML/JSON "
                            f"({e}).") from e
    if not isinstance(doc, dict):
        raise MetadataError(f"{path!r} is not an MLmodel file or MLflow signature.")
    signature = doc.get("signature", doc)
    if not isinstance(signature, dict) or "inputs" not in signature \
            or not isinstance(signature.get("inputs"), (str, list)):
        raise MetadataError(f"{path!r} is not an MLmodel file or MLflow signature: no "
                            "'signature' with 'inputs' (log the model with a signature).")
    inputs, features = _tensors(_specs(signature["inputs"], "inputs", path), "inputs", path)
    outputs, _ = _tensors(_specs(signature.get("outputs"), "outputs", path), "outputs", path)
    if not inputs or not outputs:
        raise MetadataError(f"{path!r}: the signature has no inputs or no outputs.")
    meta = doc.get("metadata") if "signature" in doc else None
    meta = dict(meta) if isinstance(meta, dict) else {}
    name, version = meta.pop("name", None), meta.pop("version", None)
    return Described(inputs=inputs, outputs=outputs,
                     name=str(name) if name else None, version=str(version) if version else None,
                     properties={str(k): str(v) for k, v in meta.items()},
                     feature_names=features)


IMPORTERS.register("mlflow", from_mlflow)
