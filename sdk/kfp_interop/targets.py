"""Kubernetes deploy targets: KServe InferenceService, Seldon Core v1 SeldonDeployment,
Seldon Core v2 Model. Each is a frozen spec with ``to_manifest()``, the admission rules
the platforms' webhooks enforce (checked here, since the CRD schemas do not), how to read
readiness from the object's status, and where its Open Inference Protocol endpoint is.

Storage layout (see :mod:`kfp_interop.storage`): KServe's Triton runtime and Seldon v1's
TRITON_SERVER take the model *repository* root, in which the folder ``<name>/`` must be
named like the service (the "Ready, then unknown model" trap); Seldon v2 takes the model
folder itself (``<root>/<name>``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar

from kfp_interop.errors import ManifestValidationError
from kfp_interop.kube import Resource

__all__ = ["DNS1123_LABEL", "SELDON_IMPLEMENTATIONS", "KServeSpec", "SeldonSpec",
           "SeldonV2Spec", "TARGET_SPECS", "check_name", "check_canary", "validate_manifest"]

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Seldon Core v1 graph implementations (prepackaged servers and built-in units).
SELDON_IMPLEMENTATIONS = ("TRITON_SERVER", "MLFLOW_SERVER", "SKLEARN_SERVER", "XGBOOST_SERVER",
                          "TENSORFLOW_SERVER", "HUGGINGFACE_SERVER", "TEMPO_SERVER",
                          "SIMPLE_MODEL", "SIMPLE_ROUTER", "RANDOM_ABTEST", "AVERAGE_COMBINER",
                          "UNKNOWN_IMPLEMENTATION")
MANAGED_BY = {"app.kubernetes.io/managed-by": "kfp-interop"}
SHA_ANNOTATION = "kfp-interop.dev/onnx-sha256"


def check_name(name: str, what: str = "name") -> str:
    """A Kubernetes object name that every target accepts: an RFC 1123 DNS label."""
    if not isinstance(name, str) or len(name) > 63 or not DNS1123_LABEL.match(name):
        raise ManifestValidationError(
            f"{what} {name!r} is not a DNS-1123 label: use at most 63 lowercase letters, "
            "digits and '-', starting and ending with a letter or digit (e.g. 'iris-rf').")
    return name


def check_canary(percent: Any) -> int:
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise ManifestValidationError(
            f"canary percent {percent!r} is out of range: use an integer from 0 to 100 "
            "(0 = no canary).")
    return percent


def _resources(cpu: str, memory: str) -> dict:
    return {"requests": {"cpu": cpu, "memory": memory},
            "limits": {"cpu": cpu, "memory": memory}}


def _conditions(obj: dict) -> dict[str, dict]:
    return {c.get("type"): c for c in ((obj.get("status") or {}).get("conditions") or [])}


@dataclasses.dataclass(frozen=True)
class _Spec:
    name: str
    storage_uri: str
    namespace: str = "default"
    canary_percent: int = 0
    onnx_sha256: str = ""
    cpu: str = "1"
    memory: str = "1Gi"
    replicas: int = 1

    resource: ClassVar[Resource]
    target: ClassVar[str]

    def __post_init__(self):
        check_name(self.name, "model name")
        check_name(self.namespace, "namespace")
        check_canary(self.canary_percent)
        if not self.storage_uri:
            raise ManifestValidationError(
                f"{self.target} needs a storage URI (s3://bucket/prefix, where the model was "
                "uploaded with kfp-interop upload); got none.")
        if self.replicas < 1:
            raise ManifestValidationError(f"replicas={self.replicas} must be at least 1.")

    def metadata(self) -> dict:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace,
                                "labels": dict(MANAGED_BY)}
        if self.onnx_sha256:
            meta["annotations"] = {SHA_ANNOTATION: self.onnx_sha256}
        return meta

    def base(self) -> dict:
        return {"apiVersion": self.resource.api_version, "kind": self.resource.kind,
                "metadata": self.metadata()}


@dataclasses.dataclass(frozen=True)
class KServeSpec(_Spec):
    """KServe ``InferenceService`` (v1beta1) serving ONNX on the Triton runtime, V2 protocol.

    ``storage_uri`` is the Triton model repository root holding ``<name>/``.
    """

    service_account: str = "kfp-interop-s3"
    runtime: str = "kserve-tritonserver"

    resource: ClassVar[Resource] = Resource("serving.kserve.io", "v1beta1",
                                            "inferenceservices", "InferenceService")
    target: ClassVar[str] = "kserve"

    def __post_init__(self):
        super().__post_init__()
        if self.service_account:
            check_name(self.service_account, "service account")

    def to_manifest(self) -> dict:
        predictor: dict[str, Any] = {
            "minReplicas": self.replicas,
            "model": {
                "modelFormat": {"name": "onnx", "version": "1"},
                "protocolVersion": "v2",
                "runtime": self.runtime,
                "storageUri": self.storage_uri,
                "resources": _resources(self.cpu, self.memory),
            },
        }
        if self.service_account:
            predictor["serviceAccountName"] = self.service_account
        if self.canary_percent:
            predictor["canaryTrafficPercent"] = self.canary_percent
        return {**self.base(), "spec": {"predictor": predictor}}

    @staticmethod
    def readiness(obj: dict) -> tuple[bool, str | None]:
        """(ready, failure message or None)."""
        status = obj.get("status") or {}
        model_state = ((status.get("modelStatus") or {}).get("states") or {})
        if model_state.get("targetModelState") == "FailedToLoad":
            info = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
            return False, f"model failed to load: {info.get('message') or info}"
        ready = _conditions(obj).get("Ready", {})
        return ready.get("status") == "True", None

    @staticmethod
    def endpoint(obj: dict) -> str | None:
        status = obj.get("status") or {}
        return status.get("url") or (status.get("address") or {}).get("url")

    def promote_patch(self) -> dict:
        return {"spec": {"predictor": {"canaryTrafficPercent": 100}}}


@dataclasses.dataclass(frozen=True)
class SeldonSpec(_Spec):
    """Seldon Core v1 ``SeldonDeployment``, protocol v2.

    ``implementation`` TRITON_SERVER takes the Triton repository root (layout ``triton``);
    MLFLOW_SERVER (which Seldon runs on MLServer under protocol v2) takes the MLflow model
    folder (layout ``mlserver``). A canary is a second predictor with ``traffic: N``.
    """

    implementation: str = "TRITON_SERVER"
    secret_name: str = "kfp-interop-seldon-s3"  # rclone variables, see manifests/
    stable_storage_uri: str = ""  # the current model, kept at 100-N % during a canary

    resource: ClassVar[Resource] = Resource("machinelearning.seldon.io", "v1",
                                            "seldondeployments", "SeldonDeployment")
    target: ClassVar[str] = "seldon"

    def __post_init__(self):
        super().__post_init__()
        if self.implementation not in SELDON_IMPLEMENTATIONS:
            raise ManifestValidationError(
                f"Unknown Seldon implementation {self.implementation!r}; known: "
                f"{', '.join(SELDON_IMPLEMENTATIONS)} (ONNX: TRITON_SERVER, or MLFLOW_SERVER "
                "for MLServer).")
        if self.canary_percent and not self.stable_storage_uri:
            raise ManifestValidationError(
                "A Seldon canary needs the stable model's storage URI to keep serving "
                "100-N % (none was found: deploy without a canary first).")

    def _predictor(self, name: str, uri: str, traffic: int) -> dict:
        graph = {"name": self.name, "implementation": self.implementation, "modelUri": uri,
                 "type": "MODEL"}
        if self.secret_name:
            graph["envSecretRefName"] = self.secret_name
        return {"name": name, "replicas": self.replicas, "traffic": traffic, "graph": graph,
                "componentSpecs": [{"spec": {"containers": [
                    {"name": self.name, "resources": _resources(self.cpu, self.memory)}]}}]}

    def to_manifest(self) -> dict:
        if self.canary_percent:
            predictors = [self._predictor("default", self.stable_storage_uri,
                                          100 - self.canary_percent),
                          self._predictor("canary", self.storage_uri, self.canary_percent)]
        else:
            predictors = [self._predictor("default", self.storage_uri, 100)]
        return {**self.base(), "spec": {"protocol": "v2", "predictors": predictors}}

    @staticmethod
    def readiness(obj: dict) -> tuple[bool, str | None]:
        status = obj.get("status") or {}
        if status.get("state") == "Failed":
            return False, f"SeldonDeployment failed: {status.get('description', '')}"
        return status.get("state") == "Available", None

    @staticmethod
    def endpoint(obj: dict) -> str | None:
        url = ((obj.get("status") or {}).get("address") or {}).get("url")
        if url and "/api/" in url:
            url = url.split("/api/", 1)[0]
        return url

    def promote_patch(self) -> dict:
        return {"spec": {"protocol": "v2", "predictors": [
            self._predictor("default", self.storage_uri, 100)]}}


@dataclasses.dataclass(frozen=True)
class SeldonV2Spec(_Spec):
    """Seldon Core v2 ``Model`` (mlops.seldon.io/v1alpha1) with ``requirements: [onnx]``.

    ``storage_uri`` is the model folder (``<root>/<name>``, Triton layout). Canaries are
    Seldon ``Experiment`` objects, not part of a Model: refused here.
    """

    secret_name: str = ""

    resource: ClassVar[Resource] = Resource("mlops.seldon.io", "v1alpha1", "models", "Model")
    target: ClassVar[str] = "seldon-v2"

    def __post_init__(self):
        super().__post_init__()
        if self.canary_percent:
            raise ManifestValidationError(
                "seldon-v2 has no per-Model canary: split traffic with a Seldon Experiment, "
                "or deploy with canary 0.")

    def to_manifest(self) -> dict:
        spec: dict[str, Any] = {"storageUri": self.storage_uri, "requirements": ["onnx"],
                                "replicas": self.replicas, "memory": self.memory}
        if self.secret_name:
            spec["secretName"] = self.secret_name
        return {**self.base(), "spec": spec}

    @staticmethod
    def readiness(obj: dict) -> tuple[bool, str | None]:
        conds = _conditions(obj)
        ready = conds.get("ModelReady") or conds.get("Ready") or {}
        if ready.get("status") == "False" and ready.get("reason") in ("ModelFailed",
                                                                       "ScheduleFailed"):
            return False, f"Model failed: {ready.get('message', ready.get('reason'))}"
        return ready.get("status") == "True", None

    @staticmethod
    def endpoint(obj: dict) -> str | None:
        return None  # the Seldon mesh: pass the inference URL explicitly

    def promote_patch(self) -> dict:
        return {}


TARGET_SPECS: dict[str, type[_Spec]] = {"kserve": KServeSpec, "seldon": SeldonSpec,
                                        "seldon-v2": SeldonV2Spec}


def validate_manifest(manifest: dict, schema: dict | None = None) -> None:
    """Admission rules (always) and, given a CRD JSON Schema, the schema too.

    Raises:
        ManifestValidationError: listing every violation.
    """
    check_name(manifest.get("metadata", {}).get("name", ""), "metadata.name")
    kind = manifest.get("kind")
    spec = manifest.get("spec") or {}
    if kind == "InferenceService":
        pct = (spec.get("predictor") or {}).get("canaryTrafficPercent")
        if pct is not None:
            check_canary(pct)
    elif kind == "SeldonDeployment":
        preds = spec.get("predictors") or []
        for p in preds:
            impl = (p.get("graph") or {}).get("implementation")
            if impl is not None and impl not in SELDON_IMPLEMENTATIONS:
                raise ManifestValidationError(f"Unknown Seldon implementation {impl!r}.")
            check_canary(p.get("traffic", 0))
        if preds and sum(p.get("traffic", 0) for p in preds) not in (0, 100):
            raise ManifestValidationError("Seldon predictor traffic must add up to 100.")
    if schema is not None:
        import jsonschema

        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(manifest),
                        key=lambda e: list(e.absolute_path))
        if errors:
            raise ManifestValidationError(
                f"{kind} {manifest['metadata'].get('name')!r} fails its CRD schema: " + "; ".join(
                    f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                    for e in errors[:5]))
