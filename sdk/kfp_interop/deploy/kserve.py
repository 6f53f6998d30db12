"""KServe: an ``InferenceService`` (serving.kserve.io/v1beta1) serving ONNX with the V2
(Open Inference) protocol, on Triton (``runtime="triton"``, KServe's
``kserve-tritonserver``) or on kfp-interop's own server (``runtime="kfp-interop"``, the
``kfp-interop-onnx`` ServingRuntime of :func:`serving_runtime`, in ``manifests/``);
canaries through ``canaryTrafficPercent``.

``storage_uri`` is the Triton model repository root holding ``<name>/`` (see
:mod:`kfp_interop.storage.layouts.triton`), which both runtimes read: the folder must be
named like the service, or Triton reports Ready and answers "unknown model".
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from kfp_interop.deploy.base import register_target
from kfp_interop.deploy.kube_api import Resource
from kfp_interop.deploy.kubernetes import KubernetesTarget
from kfp_interop.deploy.manifests import KubernetesSpec, check_canary, conditions, resources
from kfp_interop.errors import ManifestValidationError
from kfp_interop.naming import check_name

__all__ = ["KServeSpec", "RUNTIMES", "OWN_RUNTIME", "serving_runtime"]

#: the ServingRuntime kfp-interop renders (and ships in ``manifests/``)
OWN_RUNTIME = "kfp-interop-onnx"
#: the gRPC port of kfp-interop's runtime and of KServe's Triton runtime
GRPC_PORT = 9000
#: what an InferenceService's predictor speaks: OIP over REST, or over gRPC
PROTOCOLS = ("v2", "grpc-v2")
#: runtime aliases -> ServingRuntime names; any other DNS-1123 name is taken as it is
RUNTIMES = {"triton": "kserve-tritonserver", "kfp-interop": OWN_RUNTIME}


def serving_runtime(*, cluster: bool = False, image: str = "", providers: str = "auto",
                    cpu: str = "1", memory: str = "1Gi") -> dict:
    """kfp-interop's server as a KServe ``ServingRuntime`` (``cluster``: a
    ``ClusterServingRuntime``) for ``modelFormat: onnx`` on the V2 protocol. KServe's
    storage initializer puts the model repository in ``/mnt/models``; the server serves
    ``<name>/<highest version>/model.onnx`` from it under the InferenceService's name.
    It is not auto-selected (Triton stays KServe's default for ONNX): an
    InferenceService picks it by name (``runtime: kfp-interop-onnx``).

    Args:
        image: the image (default: the release's serving image, tagged with the package
            version; ``scripts/image.sh`` builds it).
        providers: ONNX Runtime execution providers (``auto``: CUDA when the image has it
            and the pod a GPU, else CPU).
    """
    from kfp_interop._version import __version__
    from kfp_interop.constants import SERVING_IMAGE_REPOSITORY
    from kfp_interop.onnx_model import PROVIDERS_ENV

    image = image or f"{SERVING_IMAGE_REPOSITORY}:{__version__}"
    # No ports list, as KServe's own Triton runtime: an InferenceService picks one port
    # (Knative takes one): HTTP on 8080 by default, h2c on GRPC_PORT for grpc-v2.
    container = {
        "name": "kserve-container",
        "image": image,
        "args": ["kfp-interop", "serve", "/mnt/models", "--name", "{{.Name}}",
                 "--host", "0.0.0.0", "--port", "8080", "--grpc-port", str(GRPC_PORT)],
        "env": [{"name": PROVIDERS_ENV, "value": providers}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8080},
                           "periodSeconds": 5},
        "securityContext": {"runAsUser": 1000, "runAsNonRoot": True,
                            "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False, "privileged": False,
                            "capabilities": {"drop": ["ALL"]}},
        "resources": resources(cpu, memory),
    }
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime" if cluster else "ServingRuntime",
        "metadata": {"name": OWN_RUNTIME, "labels": {"app.kubernetes.io/part-of": "kfp-interop"},
                     "annotations": {"serving.kserve.io/server-type": "kfp-interop",
                                     "kfp-interop.dev/version": __version__}},
        "spec": {
            # the scrape annotations KServe documents (its Triton runtime has them too);
            # /metrics is on the HTTP port
            "annotations": {"prometheus.kserve.io/port": "8080",
                            "prometheus.kserve.io/path": "/metrics"},
            "supportedModelFormats": [{"name": "onnx", "version": "1", "autoSelect": False}],
            "protocolVersions": ["v2", "grpc-v2"],
            "containers": [container],
        },
    }


#: the service account (manifests/) whose Secret KServe's storage initializer reads, by
#: storage scheme
STORAGE_SERVICE_ACCOUNTS = {"s3": "kfp-interop-s3", "gs": "kfp-interop-gcs",
                            "az": "kfp-interop-azure"}


@dataclasses.dataclass(frozen=True)
class KServeSpec(KubernetesSpec):
    """KServe ``InferenceService`` (v1beta1) serving ONNX on the Triton runtime, V2 protocol.

    ``storage_uri`` is the Triton model repository root holding ``<name>/``: on S3, GCS,
    Azure Blob Storage or a PersistentVolumeClaim (KServe's storage initializer reads
    ``s3://``, ``gs://``, ``https://ACCOUNT.blob.core.windows.net/...`` and mounts
    ``pvc://claim/path``), for the clouds with the credentials of the service
    account the predictor runs as: ``service_account`` '' = the one manifests/ sets up
    for the storage (``kfp-interop-s3``, ``kfp-interop-gcs``, ``kfp-interop-azure``),
    ``none`` = none (public storage, or credentials the namespace's default account has).
    """

    service_account: str = ""
    runtime: str = "triton"
    #: v2 (REST) or grpc-v2: the predictor's protocolVersion; grpc-v2 also exposes the
    #: runtime's gRPC port (h2c, GRPC_PORT) instead of HTTP
    protocol: str = "v2"

    resource: ClassVar[Resource] = Resource("serving.kserve.io", "v1beta1",
                                            "inferenceservices", "InferenceService")
    target: ClassVar[str] = "kserve"
    storage_schemes: ClassVar[tuple[str, ...]] = ("s3", "gs", "az", "pvc")

    def __post_init__(self):
        super().__post_init__()
        if self.service_account not in ("", "none"):
            check_name(self.service_account, "service account")
        check_name(RUNTIMES.get(self.runtime, self.runtime), "runtime")
        if self.protocol not in PROTOCOLS:
            raise ManifestValidationError(f"Protocol {self.protocol!r}: use one of "
                                          f"{', '.join(PROTOCOLS)} (KServe's names).")

    @classmethod
    def storage_for(cls, storage_uri: str, name: str, options: dict) -> str:
        """KServe reads Azure Blob Storage in its https form: ``az://ACCOUNT/container/p``
        is written as ``https://ACCOUNT.blob.core.windows.net/container/p``."""
        if storage_uri.startswith("az://"):
            account, _, rest = storage_uri[len("az://"):].partition("/")
            return f"https://{account}.blob.core.windows.net/{rest}"
        return storage_uri

    @property
    def service_account_name(self) -> str | None:
        """The predictor's service account (see the class docstring)."""
        if self.service_account == "none":
            return None
        # a claim needs no credentials: KServe mounts it into the predictor
        return self.service_account or STORAGE_SERVICE_ACCOUNTS.get(self.scheme)

    @property
    def runtime_name(self) -> str:
        """The ServingRuntime's name (``triton`` and ``kfp-interop`` are aliases)."""
        return RUNTIMES.get(self.runtime, self.runtime)

    def to_manifest(self) -> dict:
        predictor: dict[str, Any] = {
            "minReplicas": self.replicas,
            "model": {
                "modelFormat": {"name": "onnx", "version": "1"},
                "protocolVersion": self.protocol,
                "runtime": self.runtime_name,
                "storageUri": self.storage_uri,
                "resources": resources(self.cpu, self.memory, self.gpus),
            },
        }
        if self.protocol == "grpc-v2":
            predictor["model"]["ports"] = [{"name": "h2c", "containerPort": GRPC_PORT,
                                            "protocol": "TCP"}]
        if self.service_account_name:
            predictor["serviceAccountName"] = self.service_account_name
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
