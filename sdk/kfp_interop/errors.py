"""Typed errors.

Every error the library raises on purpose derives from :class:`InteropError` and
also from the matching built-in, so callers may catch either. Messages say what
was wrong, with which value, and what to do.
"""

from __future__ import annotations

__all__ = [
    "InteropError",
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
]


class InteropError(Exception):
    """Root of every error raised by kfp-interop."""


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
    """The ONNX model does not predict what the native model predicts, within tolerance."""

    def __init__(self, message: str, result: dict | None = None):
        super().__init__(message)
        self.result = result or {}


class MetadataError(InteropError, ValueError):
    """The inference-metadata record is missing or unreadable."""


class MetadataValidationError(MetadataError):
    """The inference-metadata record does not satisfy the JSON Schema."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = errors or []


class ModelFileError(InvalidInputError):
    """A file given as an ONNX model is missing, corrupt or not ONNX."""


class ServingError(InteropError, RuntimeError):
    """A server could not be started, or did not become ready in time."""


class SmokeTestError(InteropError, AssertionError):
    """The live endpoint does not behave like the model it should serve."""

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report or {}


class DeployError(InteropError, RuntimeError):
    """A deployment could not be applied, did not become ready, or was rolled back."""

    def __init__(self, message: str, deployment: dict | None = None):
        super().__init__(message)
        self.deployment = deployment or {}


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
