"""KServe: an ``InferenceService`` (serving.kserve.io/v1beta1) serving ONNX on the
Triton runtime with the V2 (Open Inference) protocol; canaries through
``canaryTrafficPercent``.

``storage_uri`` is the Triton model repository root holding ``<name>/`` (see
:mod:`kfp_interop.storage.layouts.triton`): the folder must be named like the service,
or Triton reports Ready and answers "unknown model".
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from kfp_interop.deploy.base import register_target
from kfp_interop.deploy.kube import Resource
from kfp_interop.deploy.kubernetes import KubernetesTarget
from kfp_interop.deploy.manifests import KubernetesSpec, check_canary, conditions, resources
from kfp_interop.naming import check_name

__all__ = ["KServeSpec"]


@dataclasses.dataclass(frozen=True)
class KServeSpec(KubernetesSpec):
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
                "resources": resources(self.cpu, self.memory),
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
        ready = conditions(obj).get("Ready", {})
        return ready.get("status") == "True", None

    @staticmethod
    def endpoint(obj: dict) -> str | None:
        status = obj.get("status") or {}
        return status.get("url") or (status.get("address") or {}).get("url")

    def patch_for(self, manifest: dict) -> dict:
        patch = super().patch_for(manifest)
        if not self.canary_percent:  # a merge patch keeps an old canary unless nulled
            patch["spec"]["predictor"] = {**manifest["spec"]["predictor"],
                                          "canaryTrafficPercent": None}
        return patch

    @staticmethod
    def promote_patch(manifest: dict) -> dict:
        return {"spec": {"predictor": {"canaryTrafficPercent": 100}}}

    @staticmethod
    def admit(manifest: dict) -> None:
        pct = ((manifest.get("spec") or {}).get("predictor") or {}).get("canaryTrafficPercent")
        if pct is not None:
            check_canary(pct)


register_target(KubernetesTarget(KServeSpec))
