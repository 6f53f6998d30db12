"""Seldon Core v1: a ``SeldonDeployment`` (machinelearning.seldon.io/v1), protocol v2.

``implementation`` TRITON_SERVER takes the Triton repository root (layout ``triton``);
MLFLOW_SERVER (which Seldon runs on MLServer under protocol v2) takes the MLflow model
folder (layout ``mlserver``). A canary is a second predictor with ``traffic: N``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from kfp_interop.deploy.base import register_target
from kfp_interop.deploy.kube_api import Resource
from kfp_interop.deploy.kubernetes import KubernetesTarget
from kfp_interop.deploy.manifests import KubernetesSpec, check_canary, model_folder, resources
from kfp_interop.errors import ManifestValidationError
from kfp_interop.naming import check_name

__all__ = ["SeldonSpec", "SELDON_IMPLEMENTATIONS", "SELDON_SECRETS", "rclone_uri",
           "seldon_secret"]

#: the rclone Secret (manifests/) Seldon Core v1's storage initializer reads, by storage
#: scheme: RCLONE_CONFIG_<REMOTE>_* variables (envSecretRefName)
SELDON_SECRETS = {"s3": "kfp-interop-seldon-s3", "gs": "kfp-interop-seldon-gcs",
                  "az": "kfp-interop-seldon-azure"}
#: Azure's rclone remote: a name of its own, so ``azureblob://container/path`` (the
#: account is in the remote's Secret) is never mistaken for ``az://ACCOUNT/container``
AZURE_REMOTE = "azureblob"


def rclone_uri(storage_uri: str) -> str:
    """A storage URI as Seldon's rclone reads it (``<remote>://<bucket>/<path>``, the
    remote named like the scheme, as Seldon's own examples write ``s3://`` and ``gs://``):
    S3 and GCS URIs as they are; Azure's ``https://ACCOUNT.blob.core.windows.net/c/p``
    (or ``az://ACCOUNT/c/p``) as ``azureblob://c/p``, the account being the remote's
    (its Secret's). A URI already in that form (a live object's) is kept."""
    from kfp_interop.storage import parse_uri

    if storage_uri.startswith(f"{AZURE_REMOTE}://"):
        return storage_uri
    scheme, bucket, root = parse_uri(storage_uri)
    if scheme != "az":
        return storage_uri
    container = bucket.split("/", 1)[1]
    return f"{AZURE_REMOTE}://{container}/{root}".rstrip("/")


def check_secret_name(given: str) -> None:
    """A ``secret_name`` option: '' (the storage's), ``none``, or a DNS-1123 name."""
    if given not in ("", "none"):
        check_name(given, "secret name")


def seldon_secret(given: str, scheme: str, by_scheme: dict[str, str]) -> str | None:
    """The Secret a Seldon object names: ``given``, or '' = the one manifests/ sets up
    for the storage scheme, ``none`` = none (public storage, or a Secret the Seldon
    installation configures for every model)."""
    if given == "none":
        return None
    return given or by_scheme.get(scheme)

# Seldon Core v1 graph implementations (prepackaged servers and built-in units).
SELDON_IMPLEMENTATIONS = ("TRITON_SERVER", "MLFLOW_SERVER", "SKLEARN_SERVER", "XGBOOST_SERVER",
                          "TENSORFLOW_SERVER", "HUGGINGFACE_SERVER", "TEMPO_SERVER",
                          "SIMPLE_MODEL", "SIMPLE_ROUTER", "RANDOM_ABTEST", "AVERAGE_COMBINER",
                          "UNKNOWN_IMPLEMENTATION")


@dataclasses.dataclass(frozen=True)
class SeldonSpec(KubernetesSpec):
    """Seldon Core v1 ``SeldonDeployment``, protocol v2.

    ``implementation`` TRITON_SERVER takes the Triton repository root (layout ``triton``);
    MLFLOW_SERVER (which Seldon runs on MLServer under protocol v2) takes the MLflow model
    folder (layout ``mlserver``). A canary is a second predictor with ``traffic: N``.
    Storage: S3, GCS and Azure Blob through Seldon's rclone storage initializer and the
    rclone Secret of the storage (:data:`SELDON_SECRETS`, :func:`rclone_uri`), or a
    claim (``pvc://claim/path``, mounted by the operator; no Secret).
    """

    implementation: str = "TRITON_SERVER"
    #: the rclone Secret: '' = the storage's (SELDON_SECRETS, manifests/), 'none' = none
    secret_name: str = ""
    stable_storage_uri: str = ""  # the current model, kept at 100-N % during a canary

    resource: ClassVar[Resource] = Resource("machinelearning.seldon.io", "v1",
                                            "seldondeployments", "SeldonDeployment")
    target: ClassVar[str] = "seldon"
    # the operator mounts pvc://claim/path into the storage initializer (as KServe's does)
    storage_schemes: ClassVar[tuple[str, ...]] = ("s3", "gs", "az", "pvc")

    def __post_init__(self):
        super().__post_init__()
        check_secret_name(self.secret_name)
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
        graph = {"name": self.name, "implementation": self.implementation,
                 "modelUri": rclone_uri(uri), "type": "MODEL"}
        secret = seldon_secret(self.secret_name, self.scheme, SELDON_SECRETS)
        if secret:
            graph["envSecretRefName"] = secret
        return {"name": name, "replicas": self.replicas, "traffic": traffic, "graph": graph,
                "componentSpecs": [{"spec": {"containers": [
                    {"name": self.name, "resources": resources(self.cpu, self.memory, self.gpus)}]}}]}

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

    @classmethod
    def layout_for(cls, options: dict) -> str:
        """TRITON_SERVER reads the Triton layout; MLFLOW_SERVER the MLServer one."""
        return "mlserver" if options.get("implementation") == "MLFLOW_SERVER" else "triton"

    @classmethod
    def storage_for(cls, storage_uri: str, name: str, options: dict) -> str:
        """TRITON_SERVER takes the repository root; MLFLOW_SERVER the model folder."""
        if options.get("implementation") == "MLFLOW_SERVER":
            return model_folder(storage_uri, name)
        return storage_uri

    @classmethod
    def needs_live(cls, options: dict, canary_percent: int) -> bool:
        return bool(canary_percent) and "stable_storage_uri" not in options

    @classmethod
    def options_from_live(cls, options: dict, live: dict | None,
                          canary_percent: int) -> dict:
        """A canary keeps the live model at 100-N %: read its URI from the cluster."""
        if live:
            options["stable_storage_uri"] = live["spec"]["predictors"][0]["graph"]["modelUri"]
        return options

    @staticmethod
    def promote_patch(manifest: dict) -> dict:
        """The canary predictor becomes the default one, with all the traffic."""
        canary = manifest["spec"]["predictors"][-1]
        return {"spec": {"protocol": "v2", "predictors": [
            {**canary, "name": "default", "traffic": 100}]}}

    @staticmethod
    def admit(manifest: dict) -> None:
        preds = (manifest.get("spec") or {}).get("predictors") or []
        for p in preds:
            impl = (p.get("graph") or {}).get("implementation")
            if impl is not None and impl not in SELDON_IMPLEMENTATIONS:
                raise ManifestValidationError(f"Unknown Seldon implementation {impl!r}.")
            check_canary(p.get("traffic", 0))
        if preds and sum(p.get("traffic", 0) for p in preds) not in (0, 100):
            raise ManifestValidationError("Seldon predictor traffic must add up to 100.")


register_target(KubernetesTarget(SeldonSpec))
