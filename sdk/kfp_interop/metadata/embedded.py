"""Where the record lives: inside the ONNX file (``metadata_props[METADATA_KEY]``) and
beside it as JSON (:func:`sidecar_path`). Symmetric :func:`save_metadata` /
:func:`load_metadata`, and :func:`verify_onnx_sha256` to prove the record describes this
very graph.
"""

from __future__ import annotations

import os

from kfp_interop.errors import MetadataError, MetadataValidationError
from kfp_interop.files import atomic_write
from kfp_interop.metadata.record import METADATA_KEY, InferenceMetadata, onnx_content_sha256
from kfp_interop.onnx_model import read_onnx

__all__ = ["SIDECAR_SUFFIX", "sidecar_path", "embed_metadata", "embedded_record",
           "save_metadata", "load_metadata", "verify_onnx_sha256"]

SIDECAR_SUFFIX = ".metadata.json"


def sidecar_path(onnx_path: str) -> str:
    """``dir/model.onnx`` -> ``dir/model.metadata.json``."""
    root, ext = os.path.splitext(onnx_path)
    return (root if ext == ".onnx" else onnx_path) + SIDECAR_SUFFIX


def embed_metadata(model, record: InferenceMetadata) -> None:
    """Put the record into ``model.metadata_props`` (replacing an earlier one), in place.

    Raises:
        MetadataValidationError: the record's ``onnx_sha256`` is not this model's.
    """
    actual = onnx_content_sha256(model)
    if record.model["onnx_sha256"] != actual:
        raise MetadataValidationError(
            f"Record onnx_sha256 {record.model['onnx_sha256']} does not match the model "
            f"({actual}): the record describes another model.")
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = record.to_json()


def save_metadata(record: InferenceMetadata, model, onnx_path: str) -> tuple[str, str]:
    """Embed the record into ``model`` and write the ONNX file and its JSON sidecar.

    Both files are written atomically, the sidecar last, so a failure leaves no pair
    that looks complete.

    Returns:
        ``(onnx_path, sidecar_path)``.
    """
    embed_metadata(model, record)
    side = sidecar_path(onnx_path)
    atomic_write(onnx_path, model.SerializeToString())
    atomic_write(side, record.to_json(indent=2) + "\n")
    return onnx_path, side


def load_metadata(path: str) -> InferenceMetadata:
    """Read the record from an ONNX file (embedded) or a JSON sidecar, and validate it.

    Raises:
        ModelFileError: the file is missing, or not ONNX.
        MetadataError: the ONNX file carries no record, or the JSON is unreadable.
        MetadataValidationError: the record fails the schema.
    """
    if path.endswith(".json"):
        if not os.path.isfile(path):
            raise MetadataError(f"No metadata file at {path!r}.")
        with open(path, "rb") as f:
            return InferenceMetadata.from_json(f.read())
    return embedded_record(read_onnx(path), path)


def embedded_record(model, path: str = "the model", *, required: bool = True
                    ) -> InferenceMetadata | None:
    """The record inside a loaded ONNX model (``None`` when absent and not required).

    Raises:
        MetadataError: no record and ``required``.
    """
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return InferenceMetadata.from_json(prop.value)
    if not required:
        return None
    raise MetadataError(
        f"{path!r} carries no kfp-interop inference-metadata record (metadata_props key "
        f"{METADATA_KEY!r}); attach one with the attach_metadata component or "
        "kfp_interop.metadata.save_metadata.")


def verify_onnx_sha256(path: str) -> InferenceMetadata:
    """Load the embedded record and check that it describes this very graph.

    Raises:
        MetadataValidationError: the graph changed after the record was attached.
    """
    model = read_onnx(path)
    record = embedded_record(model, path)
    actual = onnx_content_sha256(model)
    if actual != record.model["onnx_sha256"]:
        raise MetadataValidationError(
            f"{path!r}: record onnx_sha256 {record.model['onnx_sha256']} differs from the "
            f"model's {actual}: the graph changed after the record was attached. Re-run "
            "export and attach_metadata.")
    return record
