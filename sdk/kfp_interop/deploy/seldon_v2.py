"""Seldon Core v2: a ``Model`` (mlops.seldon.io/v1alpha1) with ``requirements: [onnx]``.

``storage_uri`` is the model folder (``<root>/<name>``, Triton layout). Canaries are
Seldon ``Experiment`` objects, not part of a Model: refused here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from kfp_interop.deploy.base import register_target
from kfp_interop.deploy.kube_api import Resource
from kfp_interop.deploy.kubernetes import KubernetesTarget
from kfp_interop.deploy.manifests import KubernetesSpec, conditions, model_folder
from kfp_interop.deploy.seldon import check_secret_name, rclone_uri, seldon_secret
from kfp_interop.errors import ManifestValidationError

__all__ = ["SeldonV2Spec", "SELDON_V2_SECRETS"]

#: the Secret (manifests/) a Seldon Core v2 Model names, by storage scheme: one key whose
#: value is an rclone remote (type, name, parameters), the remote named like the URI's
#: scheme (Seldon v2's format differs from v1's environment variables)
SELDON_V2_SECRETS = {"s3": "kfp-interop-seldon-v2-s3", "gs": "kfp-interop-seldon-v2-gcs",
                     "az": "kfp-interop-seldon-v2-azure"}


@dataclasses.dataclass(frozen=True)
class SeldonV2Spec(KubernetesSpec):
    """Seldon Core v2 ``Model`` (mlops.seldon.io/v1alpha1) with ``requirements: [onnx]``.

    ``storage_uri`` is the model folder (``<root>/<name>``, Triton layout). Canaries are
    Seldon ``Experiment`` objects, not part of a Model: refused here.
    """

    #: the rclone Secret: '' = the storage's (SELDON_V2_SECRETS, manifests/), 'none' = none
    secret_name: str = ""

    resource: ClassVar[Resource] = Resource("mlops.seldon.io", "v1alpha1", "models", "Model")
    target: ClassVar[str] = "seldon-v2"
    storage_schemes: ClassVar[tuple[str, ...]] = ("s3", "gs", "az")

    def __post_init__(self):
        super().__post_init__()
        check_secret_name(self.secret_name)
        if self.canary_percent:
            raise ManifestValidationError(
                "seldon-v2 has no per-Model canary: split traffic with a Seldon Experiment, "
                "or deploy with canary 0.")

    def to_manifest(self) -> dict:
        # a GPU is a capability a Seldon Server declares (e.g. capabilities: [onnx, gpu])
        requirements = ["onnx"] + (["gpu"] if self.gpus else [])
        spec: dict[str, Any] = {"storageUri": rclone_uri(self.storage_uri),
                                "requirements": requirements,
                                "replicas": self.replicas, "memory": self.memory}
        secret = seldon_secret(self.secret_name, self.scheme, SELDON_V2_SECRETS)
        if secret:
            spec["secretName"] = secret
        return {**self.base(), "spec": spec}

    @staticmethod
    def readiness(obj: dict) -> tuple[bool, str | None]:
        conds = conditions(obj)
        ready = conds.get("ModelReady") or conds.get("Ready") or {}
        if ready.get("status") == "False" and ready.get("reason") in ("ModelFailed",
                                                                       "ScheduleFailed"):
            return False, f"Model failed: {ready.get('message', ready.get('reason'))}"
        return ready.get("status") == "True", None

    @staticmethod
    def endpoint(obj: dict) -> str | None:
        return None  # the Seldon mesh: pass the inference URL explicitly

    @classmethod
    def storage_for(cls, storage_uri: str, name: str, options: dict) -> str:
        """A Model takes its own folder, ``<root>/<name>``."""
        return model_folder(storage_uri, name)

    @staticmethod
    def request_headers(name: str) -> dict | None:
        return {"Seldon-Model": name}  # the mesh routes by this header


register_target(KubernetesTarget(SeldonV2Spec))
