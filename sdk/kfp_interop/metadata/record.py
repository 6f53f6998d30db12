"""The inference-metadata record: kfp-interop's one answer to "what does this model take
and return, where does it come from, and was it checked?".

In the style of an MLflow flavor's signature: a record class that validates itself on
construction against the versioned JSON Schema shipped in the package
(``schema/inference-metadata-v1.json``, explained in ``docs/metadata.md``), with
``to_dict`` / ``from_dict`` / ``==``; :func:`build_record` reads tensors, opsets and the
sha256 from the ONNX graph itself.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from typing import Any

from kfp_interop._version import __version__
from kfp_interop.constants import PLATFORM, PROBABILITIES_OUTPUT
from kfp_interop.errors import MetadataError, MetadataValidationError
from kfp_interop.files import sha256_bytes

__all__ = ["SCHEMA_VERSION", "READABLE_VERSIONS", "upgrade", "METADATA_KEY", "ORIGIN_KINDS",
           "InferenceMetadata", "schema", "validate_record", "onnx_content_sha256",
           "build_record"]

SCHEMA_VERSION = "2"
#: Versions a reader accepts; older ones are upgraded when read (see :func:`upgrade`).
READABLE_VERSIONS = ("1", "2")
#: The ``metadata_props`` key the record travels under inside the ONNX file.
METADATA_KEY = "kfp_interop.inference_metadata"
ORIGIN_KINDS = ("trained", "exported", "adopted", "imported")
# fields a record may leave out; reading one gives None
_OPTIONAL = ("feature_names", "class_labels", "target", "training", "parity", "lineage",
             "checks", "properties", "federated", "serving", "optimization")


@functools.lru_cache(maxsize=None)
def schema(version: str = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema (draft 7) of a record version, shipped in the package."""
    path = os.path.join(os.path.dirname(__file__), "schema",
                        f"inference-metadata-v{version}.json")
    with open(path) as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def _validator(version: str = SCHEMA_VERSION):
    import jsonschema

    return jsonschema.Draft7Validator(schema(version))


def validate_record(data: dict[str, Any], version: str = SCHEMA_VERSION) -> None:
    """Raise :class:`MetadataValidationError` listing every schema violation."""
    errors = sorted(_validator(version).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        msgs = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in errors]
        given = data.get("schema_version") if isinstance(data, dict) else None
        raise MetadataValidationError(
            f"Inference-metadata record (schema_version={given!r}) fails schema v"
            f"{version} with {len(msgs)} error(s): " + "; ".join(msgs[:5])
            + ("; ..." if len(msgs) > 5 else "") + ". Fix the fields named, or rebuild the "
            "record with kfp_interop.metadata.InferenceMetadata.", msgs)
    if data["model"]["task"] == "classification":
        probs = [o for o in data["outputs"] if o["name"] == PROBABILITIES_OUTPUT]
        labels = data.get("class_labels")
        if labels is None or (probs and probs[0]["shape"][-1] not in (-1, len(labels))):
            raise MetadataValidationError(
                "Classification record needs class_labels matching the 'probabilities' "
                f"output width (class_labels={labels!r}).")


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 record as version 2: v1 records came from kfp-interop's own training
    (every v1 field keeps its meaning; v2 adds ``origin`` and ``checks``)."""
    validate_record(data, "1")
    return {**data, "schema_version": SCHEMA_VERSION,
            "origin": {"kind": "trained", "source": "kfp-interop"}}


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
            if name in _OPTIONAL:
                return None
            raise AttributeError(name) from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InferenceMetadata":
        """A record from its JSON form; a version-1 record is upgraded."""
        if not isinstance(data, dict):
            raise MetadataValidationError(f"Record must be a JSON object, not "
                                          f"{type(data).__name__}.")
        version = data.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise MetadataValidationError(
                f"Unsupported record schema_version {version!r}: this kfp-interop reads "
                f"versions {list(READABLE_VERSIONS)}. Upgrade kfp-interop or re-attach the "
                "metadata.")
        if version != SCHEMA_VERSION:
            data = upgrade(data)
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

    @property
    def origin_kind(self) -> str:
        return self._data["origin"]["kind"]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InferenceMetadata) and self._data == other._data

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return (f"InferenceMetadata(name={self.name!r}, version={self.version!r}, "
                f"task={self.task!r})")


def onnx_content_sha256(model) -> str:
    """sha256 of the model serialized deterministically without the record."""
    import onnx

    clean = onnx.ModelProto()
    clean.CopyFrom(model)
    kept = [p for p in clean.metadata_props if p.key != METADATA_KEY]
    del clean.metadata_props[:]
    clean.metadata_props.extend(kept)
    return sha256_bytes(clean.SerializeToString(deterministic=True))


def build_record(model, *, name: str, version: str = "1", task: str, framework: dict,
                 feature_names: list[str] | None, class_labels: list[str] | None,
                 target: str | None = None, training: dict | None = None,
                 parity: dict | None = None, lineage: dict | None = None,
                 origin: dict | None = None, checks: dict | None = None,
                 federated: dict | None = None) -> InferenceMetadata:
    """Build the record of an ONNX model: tensors, opsets and sha256 are read from
    ``model`` itself, the rest from how it came (training, the parity gate, the user).

    Raises:
        MetadataValidationError: a field is missing or malformed (e.g. a name that is
            not a DNS-1123 label).
    """
    from kfp_interop.onnx_model import model_opsets, tensor_specs

    inputs, outputs = tensor_specs(model)
    opsets = model_opsets(model)
    origin = dict(origin or {"kind": "trained", "source": "kfp-interop"})
    if model.producer_name not in ("", "kfp-interop") and "onnx_producer" not in origin:
        origin["onnx_producer"] = {"name": model.producer_name,
                                   "version": model.producer_version or ""}
    optional = {"feature_names": list(feature_names) if feature_names else None,
                "class_labels": class_labels, "target": target, "training": training,
                "parity": parity, "lineage": lineage, "checks": checks,
                "federated": federated}
    return InferenceMetadata(
        model={"name": name, "version": str(version), "platform": PLATFORM,
               "task": task, "onnx_opset": opsets.get("ai.onnx", 1), "opsets": opsets,
               "onnx_sha256": onnx_content_sha256(model)},
        origin=origin, framework=framework, inputs=inputs, outputs=outputs,
        producer={"name": "kfp-interop", "version": __version__},
        **{k: v for k, v in optional.items() if v is not None},
    )
