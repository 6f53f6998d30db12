"""The Kubernetes API through the official ``kubernetes`` client: custom objects with
typed errors.

Every API error becomes a typed :mod:`kfp_interop.errors` exception that names the verb,
the resource and the namespace, so an RBAC gap reads as one (403 ->
:class:`KubernetesPermissionError`), a missing CRD or namespace as another (404), and
server errors (5xx) are retried a few times before failing.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Callable

from kfp_interop.errors import (KubernetesAPIError, KubernetesNotFoundError,
                                KubernetesPermissionError)

__all__ = ["Resource", "CustomObjects", "api_client", "VERBS"]

# Every verb CustomObjects uses: manifests/rbac.yaml grants exactly these.
VERBS = ("get", "create", "patch", "delete")


@dataclasses.dataclass(frozen=True)
class Resource:
    """A custom resource kind: group, version, plural (and kind for manifests)."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}"


def api_client(*, kubeconfig: str | None = None, context: str | None = None):
    """An ``ApiClient``: in-cluster config when running in a pod, else kubeconfig."""
    import kubernetes

    try:
        kubernetes.config.load_incluster_config()
        return kubernetes.client.ApiClient()
    except kubernetes.config.ConfigException:
        pass
    import os

    try:
        # $KUBECONFIG is read now (the client library reads it once, at import)
        return kubernetes.config.new_client_from_config(
            config_file=kubeconfig or os.environ.get("KUBECONFIG"), context=context)
    except (kubernetes.config.ConfigException, OSError, TypeError) as e:
        raise KubernetesAPIError(
            f"No Kubernetes configuration: not in a cluster, and no usable kubeconfig "
            f"({kubeconfig or '$KUBECONFIG or ~/.kube/config'}): {e}. Use --dry-run to only "
            "render the manifest.") from e


def _message(body: Any) -> str:
    try:
        return json.loads(body).get("message", "") or str(body)
    except (TypeError, ValueError, AttributeError):
        return str(body or "")


class CustomObjects:
    """Namespaced custom objects of one API server, with typed errors and 5xx retries."""

    def __init__(self, client=None, *, retries: int = 3, backoff: float = 0.5):
        import kubernetes

        self._api = kubernetes.client.CustomObjectsApi(client or api_client())
        self._retries = retries
        self._backoff = backoff

    def _call(self, verb: str, res: Resource, namespace: str, name: str | None,
              fn: Callable[[], Any]) -> Any:
        import kubernetes
        import urllib3

        target = f"{res} {name!r}" if name else str(res)
        for attempt in range(self._retries + 1):
            try:
                return fn()
            except kubernetes.client.ApiException as e:
                msg = _message(e.body)
                if e.status == 403:
                    raise KubernetesPermissionError(
                        f"Forbidden: cannot {verb} {target} in namespace {namespace!r} "
                        f"({msg}). Grant the verb {verb!r} on {res.plural} in API group "
                        f"{res.group!r} to the pipeline's service account (see "
                        "manifests/rbac.yaml).", 403) from e
                if e.status == 404:
                    raise KubernetesNotFoundError(
                        f"Not found: {verb} {target} in namespace {namespace!r} ({msg}). Check "
                        f"that the namespace exists and the {res} CRD is installed.",
                        404) from e
                if e.status and e.status >= 500 and attempt < self._retries:
                    time.sleep(self._backoff * (2 ** attempt))
                    continue
                raise KubernetesAPIError(f"Kubernetes API error {e.status} on {verb} {target} "
                                         f"in namespace {namespace!r}: {msg}", e.status) from e
            except (urllib3.exceptions.HTTPError, OSError) as e:
                if attempt < self._retries:
                    time.sleep(self._backoff * (2 ** attempt))
                    continue
                raise KubernetesAPIError(f"Kubernetes API unreachable on {verb} {target}: "
                                         f"{e}") from e
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, res: Resource, namespace: str, name: str) -> dict | None:
        """The object, or ``None`` when it does not exist."""
        try:
            return self._call("get", res, namespace, name, lambda: self._api.get_namespaced_custom_object(
                res.group, res.version, namespace, res.plural, name))
        except KubernetesNotFoundError:
            return None

    def create(self, res: Resource, namespace: str, body: dict) -> dict:
        return self._call("create", res, namespace, body["metadata"]["name"],
                          lambda: self._api.create_namespaced_custom_object(
                              res.group, res.version, namespace, res.plural, body))

    def patch(self, res: Resource, namespace: str, name: str, body: dict) -> dict:
        return self._call("patch", res, namespace, name,
                          lambda: self._api.patch_namespaced_custom_object(
                              res.group, res.version, namespace, res.plural, name, body))

    def delete(self, res: Resource, namespace: str, name: str) -> bool:
        """Delete; ``False`` when it was already gone."""
        try:
            self._call("delete", res, namespace, name,
                       lambda: self._api.delete_namespaced_custom_object(
                           res.group, res.version, namespace, res.plural, name))
            return True
        except KubernetesNotFoundError:
            return False
