"""Typed errors: every error kfp-interop raises on purpose is defined here.

Each derives from :class:`InteropError` and also from the matching built-in, so callers
may catch either. Messages say what was wrong, with which value, and what to do.
Serving errors map to HTTP statuses in one place, :data:`HTTP_STATUS`. A pipeline step
that fails leaves :func:`error_record` in ``error.json`` (:data:`ERROR_FILE`) beside its
outputs, which is how ``kfp-interop run`` names a failed task's error without reading
its log.
"""

from __future__ import annotations

from typing import Any

from kfp_interop.redaction import redact

__all__ = [
    "InteropError",
    "PipelinesAPIError",
    "PipelinesUnavailableError",
    "PipelinesAuthError",
    "PipelineRunError",
    "ContainerEngineError",
    "ContainerImageError",
    "InvalidInputError",
    "DatasetError",
    "UnknownDatasetError",
    "UnknownNameError",
    "UnsupportedModelError",
    "ExportError",
    "ParityError",
    "MetadataError",
    "MetadataValidationError",
    "ModelFileError",
    "ServingError",
    "SmokeTestError",
    "DeployError",
    "ManifestValidationError",
    "KubernetesAPIError",
    "KubernetesPermissionError",
    "KubernetesNotFoundError",
    "DeployTimeoutError",
    "StorageError",
    "StorageUnavailableError",
    "StorageAuthError",
    "StorageIntegrityError",
    "RegistryError",
    "RegistryUnavailableError",
    "UnsupportedOperationError",
    "UntrustedCodeError",
    "UntrustedModelError",
    "InferenceRequestError",
    "ModelNotFoundError",
    "RouteNotFoundError",
    "MethodNotAllowedError",
    "PayloadTooLargeError",
    "ModelNotReadyError", "ModelLoadError", "DistributedTrainingError",
    "FederationError", "FederationUnavailableError",
    "HTTP_STATUS",
    "http_status",
    "ERROR_FILE",
    "error_record",
]


class InteropError(Exception):
    """Root of every error raised by kfp-interop.

    An error that carries one value besides its message (a parity result, a smoke-test
    report, schema violations, a deployment) names the attribute in ``detail_name``;
    ``raise ParityError(message, result)`` then sets ``error.result``.
    """

    detail_name: str = ""
    detail_type: type = dict

    def __init__(self, message: str = "", detail: Any = None):
        super().__init__(redact(message))  # no credentials from a URI in any message
        if self.detail_name:
            setattr(self, self.detail_name, detail if detail is not None else self.detail_type())


class InvalidInputError(InteropError, ValueError):
    """An argument or parameter value is not acceptable."""


class UnknownNameError(InvalidInputError, KeyError):
    """A name looked up in a registry (framework, estimator, pipeline, format) is unknown."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DatasetError(InvalidInputError):
    """The data set cannot be used as given (missing column, NaNs, non-numeric, empty)."""


class UnknownDatasetError(DatasetError, UnknownNameError):
    """The data set is neither a bundled name nor an existing file."""


class UnsupportedModelError(InteropError, TypeError):
    """No exporter can convert this model to ONNX."""


class ExportError(InteropError, RuntimeError):
    """The converter failed, or its output did not pass the ONNX checker."""


class ParityError(InteropError, AssertionError):
    """The ONNX model does not predict what the native model predicts, within tolerance
    (``.result``: the parity result)."""

    detail_name = "result"


class MetadataError(InteropError, ValueError):
    """The inference-metadata record is missing or unreadable."""


class MetadataValidationError(MetadataError):
    """The inference-metadata record does not satisfy the JSON Schema (``.errors``: every
    violation)."""

    detail_name = "errors"
    detail_type = list


class ModelFileError(InvalidInputError):
    """A file given as an ONNX model is missing, corrupt or not ONNX."""


class ServingError(InteropError, RuntimeError):
    """A server could not be started, or did not become ready in time."""


class SmokeTestError(InteropError, AssertionError):
    """The live endpoint does not behave like the model it should serve (``.report``)."""

    detail_name = "report"


class DeployError(InteropError, RuntimeError):
    """A deployment could not be applied, did not become ready, or was rolled back
    (``.deployment``: what was deployed)."""

    detail_name = "deployment"


class ManifestValidationError(InvalidInputError):
    """A rendered manifest breaks a schema or an admission rule (name, canary, ...)."""


class KubernetesAPIError(DeployError):
    """The Kubernetes API answered with an error (status in ``.status``)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class KubernetesPermissionError(KubernetesAPIError, PermissionError):
    """403: the service account lacks a verb on a resource (RBAC)."""


class KubernetesNotFoundError(KubernetesAPIError, LookupError):
    """404: the resource kind (CRD), the namespace or the object does not exist."""


class DeployTimeoutError(DeployError, TimeoutError):
    """The deployment did not report Ready within the timeout."""


class StorageError(InteropError, OSError):
    """Object storage failed."""


class StorageUnavailableError(StorageError, ConnectionError):
    """The storage endpoint cannot be reached."""


class StorageAuthError(StorageError, PermissionError):
    """The storage endpoint refused the credentials."""


class StorageIntegrityError(StorageError):
    """A stored object does not match its recorded sha256, or the upload is incomplete."""


class RegistryError(InteropError, RuntimeError):
    """The model registry (MLflow) refused or failed an operation."""


class RegistryUnavailableError(RegistryError, ConnectionError):
    """The MLflow tracking server cannot be reached."""


class UntrustedCodeError(InvalidInputError, PermissionError):
    """A parameter or a file names code kfp-interop does not run: a module outside the
    allowlist, a type outside the trusted list (see ``docs/security.md``)."""


class UntrustedModelError(ModelFileError, UntrustedCodeError):
    """A model file holds types kfp-interop does not trust; nothing was built from it."""


class UnsupportedOperationError(InvalidInputError):
    """The operation does not apply to this target or kind (e.g. delete on ``local``)."""


# -- serving (the Open Inference Protocol server) ---------------------------------------
class InferenceRequestError(InteropError, ValueError):
    """The request is malformed or does not fit the model (HTTP 400)."""


class ModelNotFoundError(InteropError, LookupError):
    """No such model or version (HTTP 404)."""


class RouteNotFoundError(InteropError, LookupError):
    """No such route (HTTP 404)."""


class MethodNotAllowedError(InteropError, ValueError):
    """The route exists, but not for this HTTP method (HTTP 405)."""


class PayloadTooLargeError(InferenceRequestError):
    """The request is larger than the server accepts: body bytes or tensor elements
    (HTTP 413)."""


class ModelNotReadyError(InteropError, RuntimeError):
    """The model is loading or failed to load (HTTP 503)."""


class ModelLoadError(InteropError, RuntimeError):
    """A model of the repository could not be loaded (broken file, batching that
    contradicts it), or the server's model control mode does not allow loading and
    unloading (HTTP 400, as Triton answers)."""


class PipelinesAPIError(InteropError, RuntimeError):
    """The Kubeflow Pipelines API refused or failed a request (status in ``.status``)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class PipelinesUnavailableError(PipelinesAPIError, ConnectionError):
    """The Kubeflow Pipelines API cannot be reached."""


class PipelinesAuthError(PipelinesAPIError, PermissionError):
    """401/403: the Kubeflow Pipelines API refused the credentials."""


class PipelineRunError(InteropError, RuntimeError):
    """A submitted run ended other than succeeded (``.run``: its id, state and tasks)."""

    detail_name = "run"


class ContainerEngineError(InteropError, RuntimeError):
    """No container engine answers (Docker, or podman's Docker-compatible socket)."""


class ContainerImageError(ContainerEngineError, LookupError):
    """An image the run needs is not in the engine, or carries another version."""


#: Error type -> HTTP status; the first matching entry wins (subclasses first).
HTTP_STATUS: dict[type, int] = {
    PayloadTooLargeError: 413,
    InferenceRequestError: 400,
    ModelNotFoundError: 404,
    RouteNotFoundError: 404,
    MethodNotAllowedError: 405,
    ModelNotReadyError: 503,
    ModelLoadError: 400,
}


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a serving error, ``None`` for anything else (a bug: 500)."""
    for exc_type, status in HTTP_STATUS.items():
        if isinstance(exc, exc_type):
            return status
    return None


# -- failed steps hand their error over in a file -----------------------------------
ERROR_FILE = "error.json"


def error_record(exc: BaseException) -> dict:
    """What a failed step writes to :data:`ERROR_FILE`: the error's type and message."""
    cls = type(exc)
    return {"type": f"{cls.__module__}.{cls.__qualname__}", "name": cls.__name__,
            "message": redact(str(exc)), "typed": isinstance(exc, InteropError)}


class DistributedTrainingError(InteropError, RuntimeError):
    """Training on a Dask cluster failed: a worker was lost, or the framework's own
    distributed training failed (the message says which, with the framework's error)."""


class FederationError(InteropError, RuntimeError):
    """A federated run on Flower's Deployment Engine failed: the ServerApp stopped (too
    few SuperNodes, a node's ClientApp failed, too few answers in a round), or the run did
    not finish in time (the message says which, naming the node or the address)."""


class FederationUnavailableError(FederationError, ConnectionError):
    """The SuperLink cannot be reached (the message names the address)."""
