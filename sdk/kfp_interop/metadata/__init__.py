"""The inference-metadata record: kfp-interop's one answer to "what does this model take
and return, where does it come from, and was it checked?".

In the style of an MLflow flavor: constants for names and paths, a record class that
validates itself on construction (``to_dict`` / ``from_dict`` / ``==``), and symmetric
:func:`save_metadata` / :func:`load_metadata`. The record travels inside the ONNX file
(``metadata_props[METADATA_KEY]``) and beside it as JSON (:func:`sidecar_path`); every
dialect (OIP, Seldon, MLflow, Triton, KFP) is rendered from it by
:mod:`kfp_interop.metadata.render`, never edited by hand. The schema is documented in
``docs/metadata.md``.

Example:
    >>> record = load_metadata("model.onnx")
    >>> record.model["name"], record.inputs[0]["shape"]
    ('iris', [-1, 4])
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from typing import Any

from kfp_interop.errors import MetadataError, MetadataValidationError, ModelFileError

__all__ = [
    "SCHEMA_VERSION",
    "METADATA_KEY",
    "SIDECAR_SUFFIX",
    "InferenceMetadata",
    "schema",
    "validate_record",
    "onnx_content_sha256",
    "read_onnx",
    "sidecar_path",
    "embed_metadata",
    "save_metadata",
    "load_metadata",
    "verify_onnx_sha256",
    "build_record",
]

SCHEMA_VERSION = "1"
METADATA_KEY = "kfp_interop.inference_metadata"
SIDECAR_SUFFIX = ".metadata.json"
_SCHEMA_FILE = f"inference-metadata-v{SCHEMA_VERSION}.json"


@functools.lru_cache(maxsize=None)
def schema() -> dict[str, Any]:
    """The JSON Schema (draft 7) of the current record version, shipped in the package."""
    with open(os.path.join(os.path.dirname(__file__), "schema", _SCHEMA_FILE)) as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def _validator():
    import jsonschema

    return jsonschema.Draft7Validator(schema())


def validate_record(data: dict[str, Any]) -> None:
    """Raise :class:`MetadataValidationError` listing every schema violation."""
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        msgs = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in errors]
        version = data.get("schema_version") if isinstance(data, dict) else None
        raise MetadataValidationError(
            f"Inference-metadata record (schema_version={version!r}) fails schema v"
            f"{SCHEMA_VERSION} with {len(msgs)} error(s): " + "; ".join(msgs[:5])
            + ("; ..." if len(msgs) > 5 else "") + ". Fix the fields named, or rebuild the "
            "record with kfp_interop.metadata.InferenceMetadata.", msgs)
    if data["model"]["task"] == "classification":
        probs = [o for o in data["outputs"] if o["name"] == "probabilities"]
        labels = data["class_labels"]
        if labels is None or (probs and probs[0]["shape"][-1] not in (-1, len(labels))):
            raise MetadataValidationError(
                "Classification record needs class_labels matching the 'probabilities' "
                f"output width (class_labels={labels!r}).")


class InferenceMetadata:
    """One validated inference-metadata record (schema v1).

    Construct from the record's fields (see ``docs/metadata.md``); construction
    validates against the JSON Schema and raises :class:`MetadataValidationError`.
    """

    __slots__ = ("_data",)

    def __init__(self, **fields: Any):
        data = {"schema_version": SCHEMA_VERSION, **fields}
        validate_record(data)
        object.__setattr__(self, "_data", json.loads(json.dumps(data)))

    def __setattr__(self, name, value):  # frozen
        raise AttributeError("InferenceMetadata is immutable; use replace().")

    def __getattr__(self, name: str) -> Any:
        try:
            return copy.deepcopy(self._data[name])
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InferenceMetadata":
        if not isinstance(data, dict):
            raise MetadataValidationError(f"Record must be a JSON object, not "
                                          f"{type(data).__name__}.")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise MetadataValidationError(
                f"Unsupported record schema_version {version!r}: this kfp-interop reads "
                f"version {SCHEMA_VERSION!r}. Upgrade kfp-interop or re-attach the metadata.")
        fields = dict(data)
        fields.pop("schema_version")
        return cls(**fields)

    @classmethod
    def from_json(cls, text: str | bytes) -> "InferenceMetadata":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise MetadataError(f"Record is not valid JSON: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self._data, indent=indent, sort_keys=True)

    def replace(self, **changes: Any) -> "InferenceMetadata":
        data = self.to_dict()
        data.update(changes)
        return InferenceMetadata.from_dict(data)

    @property
    def name(self) -> str:
        return self._data["model"]["name"]

    @property
    def version(self) -> str:
        return self._data["model"]["version"]

    @property
    def task(self) -> str:
        return self._data["model"]["task"]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InferenceMetadata) and self._data == other._data

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return (f"InferenceMetadata(name={self.name!r}, version={self.version!r}, "
                f"task={self.task!r})")


def read_onnx(path: str):
    """Load an ONNX file, turning a missing, corrupt or non-ONNX file into ModelFileError."""
    import onnx
    from google.protobuf.message import DecodeError

    if not os.path.isfile(path):
        raise ModelFileError(f"No ONNX file at {path!r}.")
    try:
        model = onnx.load(path)
    except (DecodeError, ValueError, RuntimeError, OSError) as e:
        raise ModelFileError(f"{path!r} is not a readable ONNX model ({e}); export the model "
                             "again or pass the right file.") from e
    if not model.graph.node and not model.graph.output:
        raise ModelFileError(f"{path!r} parses but holds no ONNX graph: it is not an ONNX "
                             "model (or is empty).")
    return model


def onnx_content_sha256(model) -> str:
    """sha256 of the model serialized deterministically without the record."""
    import onnx

    clean = onnx.ModelProto()
    clean.CopyFrom(model)
    kept = [p for p in clean.metadata_props if p.key != METADATA_KEY]
    del clean.metadata_props[:]
    clean.metadata_props.extend(kept)
    return hashlib.sha256(clean.SerializeToString(deterministic=True)).hexdigest()


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


def _atomic_write(path: str, data: bytes) -> None:
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def save_metadata(record: InferenceMetadata, model, onnx_path: str) -> tuple[str, str]:
    """Embed the record into ``model`` and write the ONNX file and its JSON sidecar.

    Both files are written to temporary names first and renamed into place, the sidecar
    last, so a failure leaves no pair that looks complete.

    Returns:
        ``(onnx_path, sidecar_path)``.
    """
    embed_metadata(model, record)
    side = sidecar_path(onnx_path)
    _atomic_write(onnx_path, model.SerializeToString())
    _atomic_write(side, (record.to_json(indent=2) + "\n").encode())
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
    return _embedded_record(read_onnx(path), path)


def _embedded_record(model, path: str) -> InferenceMetadata:
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return InferenceMetadata.from_json(prop.value)
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
    record = _embedded_record(model, path)
    actual = onnx_content_sha256(model)
    if actual != record.model["onnx_sha256"]:
        raise MetadataValidationError(
            f"{path!r}: record onnx_sha256 {record.model['onnx_sha256']} differs from the "
            f"model's {actual}: the graph changed after the record was attached. Re-run "
            "export and attach_metadata.")
    return record


def build_record(model, *, name: str, version: str = "1", task: str, framework: dict,
                 feature_names: list[str], class_labels: list[str] | None, target: str,
                 training: dict, parity: dict, lineage: dict | None = None
                 ) -> InferenceMetadata:
    """Build the record of an exported ONNX model: tensors, opsets and sha256 are read
    from ``model`` itself, the rest comes from training and the parity gate.

    Raises:
        MetadataValidationError: a field is missing or malformed (e.g. a name that is
            not a DNS-1123 label).
    """
    from kfp_interop import __version__
    from kfp_interop.export import model_opsets, tensor_specs

    inputs, outputs = tensor_specs(model)
    opsets = model_opsets(model)
    extra = {"lineage": lineage} if lineage else {}
    return InferenceMetadata(
        model={"name": name, "version": str(version), "platform": "onnxruntime_onnx",
               "task": task, "onnx_opset": opsets.get("ai.onnx", 1), "opsets": opsets,
               "onnx_sha256": onnx_content_sha256(model)},
        framework=framework, inputs=inputs, outputs=outputs,
        feature_names=list(feature_names), class_labels=class_labels, target=target,
        training=training, parity=parity,
        producer={"name": "kfp-interop", "version": __version__}, **extra,
    )

