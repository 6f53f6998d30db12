"""What every Kubernetes target's spec shares: the frozen spec base class (name,
namespace, storage, canary, resources, labels), the admission rules the platforms'
webhooks enforce (checked here, since the CRD schemas do not), validation against the
CRDs' JSON Schemas, and writing manifests and merge patches."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import re
from typing import Any, ClassVar

from kfp_interop.deploy.kube_api import Resource
from kfp_interop.errors import InvalidInputError, ManifestValidationError
from kfp_interop.files import atomic_writer
from kfp_interop.naming import check_name

__all__ = ["KubernetesSpec", "MANAGED_BY", "SHA_ANNOTATION", "GPU_RESOURCE", "check_canary", "check_compute",
           "check_quantity", "resources",
           "conditions", "crd_schema", "strict_schema_from_crd", "validate_schema", "write_yaml", "merge_patch",
           "clean_object", "model_folder"]

MANAGED_BY = {"app.kubernetes.io/managed-by": "kfp-interop"}
SHA_ANNOTATION = "kfp-interop.dev/onnx-sha256"


def check_canary(percent: Any) -> int:
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise ManifestValidationError(
            f"canary percent {percent!r} is out of range: use an integer from 0 to 100 "
            "(0 = no canary).")
    return percent


#: the extended resource GPUs are requested as (NVIDIA's device plugin)
GPU_RESOURCE = "nvidia.com/gpu"


def resources(cpu: str, memory: str, gpus: int = 0) -> dict:
    """Requests equal to limits (a guaranteed QoS class for the model server), with
    ``gpus`` GPUs (an extended resource: requested in limits, whole devices)."""
    out = {"requests": {"cpu": cpu, "memory": memory},
           "limits": {"cpu": cpu, "memory": memory}}
    if gpus:
        out["limits"][GPU_RESOURCE] = str(gpus)
        out["requests"][GPU_RESOURCE] = str(gpus)
    return out


_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def check_quantity(value: str, what: str) -> str:
    """A Kubernetes resource quantity (``500m``, ``2``, ``4Gi``).

    Raises:
        ManifestValidationError: names the value.
    """
    if not isinstance(value, str) or not _QUANTITY.match(value):
        raise ManifestValidationError(f"{what}={value!r} is not a Kubernetes quantity: use "
                                      "e.g. '500m' or '2' (cpu), '512Mi' or '4Gi' (memory).")
    return value


def check_compute(values: dict[str, Any]) -> None:
    """The compute options among ``values`` that a model server takes: ``cpu`` and
    ``memory`` Kubernetes quantities, ``gpus`` a count of 0 or more, ``replicas`` 1 or
    more (the ones absent are not checked).

    Raises:
        ManifestValidationError: names the value.
    """
    for key in ("cpu", "memory"):
        if key in values:
            check_quantity(values[key], key)
    for key, least in (("gpus", 0), ("replicas", 1)):
        if key in values:
            n = values[key]
            if isinstance(n, bool) or not isinstance(n, int) or n < least:
                raise ManifestValidationError(f"{key}={n!r} must be a whole number, "
                                              f"{least} or more.")


def conditions(obj: dict) -> dict[str, dict]:
    """An object's status conditions by type."""
    return {c.get("type"): c for c in ((obj.get("status") or {}).get("conditions") or [])}


@dataclasses.dataclass(frozen=True)
class KubernetesSpec:
    """A frozen description of one custom resource to apply; subclasses add their fields
    and implement :meth:`to_manifest`, :meth:`readiness` and :meth:`endpoint`, and may
    refine the hooks below."""

    name: str
    storage_uri: str
    namespace: str = "default"
    canary_percent: int = 0
    onnx_sha256: str = ""
    cpu: str = "1"
    memory: str = "1Gi"
    gpus: int = 0
    replicas: int = 1

    resource: ClassVar[Resource]
    target: ClassVar[str]
    #: the storage schemes (kfp_interop.storage) this resource's storage initializer reads
    #: with what kfp-interop renders (docs/storage.md)
    storage_schemes: ClassVar[tuple[str, ...]] = ("s3",)

    def __post_init__(self):
        check_name(self.name, "model name")
        check_name(self.namespace, "namespace")
        check_canary(self.canary_percent)
        if not self.storage_uri:
            raise ManifestValidationError(
                f"{self.target} needs a storage URI (s3://bucket/prefix, where the model was "
                "uploaded with kfp-interop upload); got none.")
        scheme = self.scheme
        if scheme not in self.storage_schemes:
            shown = "a local path" if scheme == "file" else f"{scheme} storage"
            forms = {"az": "https://ACCOUNT.blob.core.windows.net/..."}
            raise ManifestValidationError(
                f"{self.target} does not read {shown} ({self.storage_uri!r}) as kfp-interop "
                f"renders it; it reads "
                f"{', '.join(forms.get(s, f'{s}://') for s in self.storage_schemes)} URIs. "
                "Upload the model there (kfp-interop upload --to), or deploy to a target "
                "that reads this storage (docs/storage.md).")
        check_compute({"cpu": self.cpu, "memory": self.memory, "gpus": self.gpus,
                       "replicas": self.replicas})

    @property
    def scheme(self) -> str:
        """The storage scheme of :attr:`storage_uri` (``file`` for a path)."""
        from kfp_interop.storage import parse_uri

        try:
            return parse_uri(self.storage_uri)[0]
        except InvalidInputError as e:
            raise ManifestValidationError(str(e)) from None

    def metadata(self) -> dict:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace,
                                "labels": dict(MANAGED_BY)}
        if self.onnx_sha256:
            meta["annotations"] = {SHA_ANNOTATION: self.onnx_sha256}
        return meta

    def base(self) -> dict:
        return {"apiVersion": self.resource.api_version, "kind": self.resource.kind,
                "metadata": self.metadata()}

    def to_manifest(self) -> dict:
        raise NotImplementedError

    @staticmethod
    def readiness(obj: dict) -> tuple[bool, str | None]:
        """``(ready, failure message or None)`` from the live object's status."""
        raise NotImplementedError

    @staticmethod
    def endpoint(obj: dict) -> str | None:
        """The OIP base URL from the live object's status (None: not reported)."""
        return None

    # -- hooks with defaults -------------------------------------------------------------
    @classmethod
    def layout_for(cls, options: dict) -> str:
        """The storage layout this resource's server reads (``triton`` unless a target
        says otherwise, e.g. from an option)."""
        return "triton"

    @classmethod
    def storage_for(cls, storage_uri: str, name: str, options: dict) -> str:
        """The URI the manifest takes, given the repository root ``storage_uri``
        (default: the root itself; targets that take the model folder override)."""
        return storage_uri

    @classmethod
    def needs_live(cls, options: dict, canary_percent: int) -> bool:
        """Whether rendering needs the object already in the cluster (default: no)."""
        return False

    @classmethod
    def options_from_live(cls, options: dict, live: dict | None,
                          canary_percent: int) -> dict:
        """Options completed from the object already in the cluster (e.g. a canary's
        stable model), when :meth:`needs_live`; default: unchanged."""
        return options

    def patch_for(self, manifest: dict) -> dict:
        """The merge patch that turns an existing object into ``manifest``."""
        return {"metadata": {"labels": manifest["metadata"]["labels"],
                             "annotations": manifest["metadata"].get("annotations", {})},
                "spec": manifest["spec"]}

    @staticmethod
    def promote_patch(manifest: dict) -> dict:
        """The patch giving a canary all the traffic ({} when there is nothing to do)."""
        return {}

    @staticmethod
    def request_headers(name: str) -> dict | None:
        """Extra HTTP headers the endpoint needs to route to the model."""
        return None

    @staticmethod
    def admit(manifest: dict) -> None:
        """Admission rules on a rendered manifest beyond the name (raise
        ManifestValidationError)."""


#: the CRD schemas shipped with the package (see ``schemas/SOURCES.md``)
SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")


def crd_schema(resource: Resource) -> dict | None:
    """The CRD's strict JSON Schema: from ``$KFP_INTEROP_CRD_SCHEMAS`` (a folder) when
    set, else the one shipped with the package; ``None`` for a kind none is known for."""
    folder = os.environ.get("KFP_INTEROP_CRD_SCHEMAS")
    names = ((f"{resource.kind}-{resource.version}.strict.json",
              f"{resource.kind}-{resource.version}.json") if folder
             else (f"{resource.kind}-{resource.version}.strict.json.gz",))
    for fname in names:
        path = os.path.join(folder or SCHEMA_DIR, fname)
        if os.path.isfile(path):
            return _load_schema(path, os.path.getmtime(path))
    return None


#: JSON Schema keywords a CRD's structural schema shares with draft 7, kept as they are
_KEPT = ("type", "required", "enum", "minimum", "maximum", "exclusiveMinimum",
         "exclusiveMaximum", "pattern", "minItems", "maxItems", "minLength", "maxLength",
         "minProperties", "maxProperties", "uniqueItems", "multipleOf")


def strict_schema_from_crd(crd: dict, version: str | None = None) -> dict:
    """A strict JSON Schema (draft 7) from a CustomResourceDefinition's structural schema
    (``version``: default the storage version): ``additionalProperties: false`` on every
    object that lists its properties (a misspelt field is refused, as the API server's
    pruning would drop it), except where the CRD preserves unknown fields;
    ``x-kubernetes-int-or-string`` as integer-or-string; ``nullable`` as a null type;
    descriptions, defaults and formats left out; ``apiVersion`` and ``kind`` fixed and
    ``metadata`` an object at the top. How the shipped DaskCluster schema is made
    (``schemas/SOURCES.md``)."""
    versions = crd["spec"]["versions"]
    chosen = next(v for v in versions if (v["name"] == version if version
                                          else v.get("storage")))

    def convert(node: dict) -> dict:
        out: dict[str, Any] = {k: node[k] for k in _KEPT if k in node}
        if node.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if node.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        for key in ("anyOf", "allOf", "oneOf"):
            if key in node:
                out[key] = [convert(n) for n in node[key]]
        if "items" in node:
            out["items"] = convert(node["items"])
        if "properties" in node:
            out["properties"] = {k: convert(v) for k, v in node["properties"].items()}
        if isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = convert(node["additionalProperties"])
        elif "additionalProperties" in node:
            out["additionalProperties"] = node["additionalProperties"]
        elif "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out

    schema = convert(chosen["schema"]["openAPIV3Schema"])
    names = crd["spec"]["names"]
    schema["properties"] = {
        "apiVersion": {"const": f"{crd['spec']['group']}/{chosen['name']}"},
        "kind": {"const": names["kind"]}, "metadata": {"type": "object"},
        **schema.get("properties", {})}
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind",
                                                                   "metadata"})
    return {"$schema": "http://json-schema.org/draft-07/schema#",
            "title": f"{names['kind']} {crd['spec']['group']}/{chosen['name']} (strict)",
            **schema}


@functools.lru_cache(maxsize=16)
def _load_schema(path: str, mtime: float) -> dict:
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


_VALIDATORS: dict[int, tuple[dict, Any]] = {}


def _validator(schema: dict):
    """One validator per schema object (the schemas are large; the cached ones are
    loaded once)."""
    import jsonschema

    kept = _VALIDATORS.get(id(schema))
    if kept is None or kept[0] is not schema:
        if len(_VALIDATORS) >= 16:
            _VALIDATORS.clear()
        kept = _VALIDATORS[id(schema)] = (schema, jsonschema.Draft7Validator(schema))
    return kept[1]


def validate_schema(manifest: dict, schema: dict) -> None:
    """Raise ManifestValidationError listing the first schema violations."""
    validator = _validator(schema)
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        raise ManifestValidationError(
            f"{manifest.get('kind')} {manifest.get('metadata', {}).get('name')!r} fails its "
            "CRD schema: " + "; ".join(
                f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in errors[:5]))


def write_yaml(manifest: dict, path: str) -> str:
    import yaml

    with atomic_writer(path, "w") as f:
        yaml.safe_dump(manifest, f, sort_keys=False)
    return path


def clean_object(obj: dict) -> dict:
    """An object as it can be written back: no status, no server-set metadata."""
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    meta = obj.get("metadata", {})
    for key in ("resourceVersion", "uid", "generation", "creationTimestamp",
                "managedFields", "selfLink"):
        meta.pop(key, None)
    return obj


def merge_patch(current: dict, wanted: dict) -> dict:
    """The RFC 7386 JSON merge patch that turns ``current`` into ``wanted`` (keys only in
    ``current`` become null, i.e. removed; lists are replaced whole)."""
    patch: dict = {}
    for key in current.keys() - wanted.keys():
        patch[key] = None
    for key, value in wanted.items():
        old = current.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            sub = merge_patch(old, value)
            if sub:
                patch[key] = sub
        elif value != old:
            patch[key] = copy.deepcopy(value)
    return patch


def model_folder(storage_uri: str, name: str) -> str:
    """``<root>/<name>`` from the repository root (unchanged if it already ends so):
    ``storage_uri`` is the repository root everywhere; some runtimes take the folder."""
    root = storage_uri.rstrip("/")
    return root if root.endswith("/" + name) else f"{root}/{name}"
