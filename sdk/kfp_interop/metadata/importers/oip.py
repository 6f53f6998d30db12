"""Open Inference Protocol (KServe V2) model metadata: the ``metadata_model_response``
of ``GET /v2/models/{name}`` (what KServe, Triton, MLServer and ``kfp-interop serve``
answer)."""

from __future__ import annotations

from kfp_interop.errors import MetadataError
from kfp_interop.metadata.importers.base import IMPORTERS, Described, read_json, tensor

__all__ = ["from_oip"]


def from_oip(text: str, path: str) -> Described:
    doc = read_json(text, path, "OIP")
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) \
            or not isinstance(doc.get("outputs"), list) or not isinstance(doc.get("name"), str):
        raise MetadataError(f"{path!r} is not OIP model metadata: a JSON object with 'name', "
                            "'inputs' and 'outputs' (GET /v2/models/NAME answers one).")
    if any(isinstance(t, dict) and "messagetype" in t for t in doc["inputs"] + doc["outputs"]):
        raise MetadataError(f"{path!r} has Seldon 'messagetype' tensors: use --from seldon.")

    def tensors(items: list, kind: str) -> list[dict]:
        out = []
        for t in items:
            if not isinstance(t, dict):
                raise MetadataError(f"{path!r}: an entry of {kind} is not an object.")
            out.append(tensor(t.get("name"), t.get("datatype"), t.get("shape"), path=path,
                              where=kind[:-1]))
        return out

    versions = doc.get("versions") or []
    props = doc.get("properties") or {}
    if not isinstance(props, dict):
        raise MetadataError(f"{path!r}: 'properties' is not an object.")
    return Described(inputs=tensors(doc["inputs"], "inputs"),
                     outputs=tensors(doc["outputs"], "outputs"), name=doc["name"],
                     version=str(versions[0]) if versions else None,
                     properties={str(k): str(v) for k, v in props.items()},
                     platform=str(doc.get("platform") or ""))


IMPORTERS.register("oip", from_oip)
