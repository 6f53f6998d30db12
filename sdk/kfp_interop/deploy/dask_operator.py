"""A Dask cluster for one task through the Dask Kubernetes operator (``dask_cluster=
operator``): the task creates a ``DaskCluster`` (kubernetes.dask.org/v1: a scheduler and
``workers`` worker pods of kfp-interop's image, their CPU and memory as given), waits
for the operator to report it ``Running``, hands the scheduler's in-cluster address to
the training, and deletes the cluster when the block ends, whatever happened in it.

The manifest is checked against the operator's CRD (a strict schema derived from
dask/dask-kubernetes' CRD, shipped: ``schemas/SOURCES.md``) before anything is created;
the RBAC it needs is in ``manifests/rbac.yaml`` (get, create, delete on
daskclusters.kubernetes.dask.org).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Iterator

from kfp_interop.deploy.kube_api import CustomObjects, Resource
from kfp_interop.errors import DeployTimeoutError, InvalidInputError

__all__ = ["DASK_CLUSTER", "DASK_VERBS", "render_dask_cluster", "operator_cluster", "scheduler_address",
           "task_namespace"]

DASK_CLUSTER = Resource("kubernetes.dask.org", "v1", "daskclusters", "DaskCluster")
#: the verbs :func:`operator_cluster` uses: manifests/rbac.yaml grants exactly these
DASK_VERBS = ("get", "create", "delete")
SCHEDULER_PORT = 8786
_SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def task_namespace() -> str:
    """The namespace this pod runs in (its service account's), else ``default``."""
    try:
        with open(_SA_NAMESPACE) as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


def scheduler_address(name: str, namespace: str) -> str:
    """The scheduler Service the operator makes (``<name>-scheduler``), in-cluster."""
    return f"tcp://{name}-scheduler.{namespace}.svc.cluster.local:{SCHEDULER_PORT}"


def render_dask_cluster(name: str, *, namespace: str, image: str, workers: int = 2,
                        cpu: str = "1", memory: str = "4Gi",
                        secrets: tuple[str, ...] = ()) -> dict:
    """The DaskCluster manifest: ``workers`` worker pods of ``image`` (one thread each,
    their memory limit given to Dask), a scheduler pod of the same image, a ClusterIP
    scheduler Service; the ``secrets`` (optional) as the pods' environment, by reference:
    the storage credentials the workers read partitions with never enter the manifest.

    Raises:
        InvalidInputError: a worker count below 1, a CPU or memory that is not a
            Kubernetes quantity (named).
        ManifestValidationError: the manifest fails the operator's CRD schema.
    """
    from kfp_interop.deploy.manifests import check_quantity, crd_schema, validate_schema
    from kfp_interop.naming import check_name

    check_name(name)
    if workers < 1:
        raise InvalidInputError(f"dask_workers={workers}: the operator's cluster needs at "
                                "least one worker.")
    check_quantity(cpu, "dask worker cpu")
    check_quantity(memory, "dask worker memory")
    env_from = [{"secretRef": {"name": s, "optional": True}} for s in secrets]
    resources = {"requests": {"cpu": cpu, "memory": memory},
                 "limits": {"cpu": cpu, "memory": memory}}
    labels = {"app.kubernetes.io/managed-by": "kfp-interop",
              "app.kubernetes.io/part-of": "kfp-interop-dask"}
    manifest = {
        "apiVersion": DASK_CLUSTER.api_version, "kind": DASK_CLUSTER.kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "worker": {"replicas": workers, "spec": {"containers": [{
                "name": "worker", "image": image, "imagePullPolicy": "IfNotPresent",
                "args": ["dask", "worker", "--name", "$(DASK_WORKER_NAME)", "--nthreads",
                         "1", "--memory-limit", "auto", "--dashboard-address", "8788"],
                "envFrom": env_from, "resources": resources,
                "ports": [{"name": "http-dashboard", "containerPort": 8788,
                           "protocol": "TCP"}]}]}},
            "scheduler": {
                "spec": {"containers": [{
                    "name": "scheduler", "image": image, "imagePullPolicy": "IfNotPresent",
                    "args": ["dask", "scheduler"], "envFrom": env_from,
                    "ports": [{"name": "tcp-comm", "containerPort": SCHEDULER_PORT,
                               "protocol": "TCP"},
                              {"name": "http-dashboard", "containerPort": 8787,
                               "protocol": "TCP"}],
                    "readinessProbe": {"httpGet": {"port": "http-dashboard",
                                                   "path": "/health"},
                                       "initialDelaySeconds": 5, "periodSeconds": 10}}]},
                "service": {"type": "ClusterIP",
                            "selector": {"dask.org/cluster-name": name,
                                         "dask.org/component": "scheduler"},
                            "ports": [{"name": "tcp-comm", "protocol": "TCP",
                                       "port": SCHEDULER_PORT, "targetPort": "tcp-comm"}]}},
        },
    }
    schema = crd_schema(DASK_CLUSTER)
    if schema is not None:
        validate_schema(manifest, schema)
    return manifest


@contextlib.contextmanager
def operator_cluster(*, namespace: str = "", image: str, workers: int = 2, cpu: str = "1",
                     memory: str = "4Gi", secrets: tuple[str, ...] = (),
                     timeout: float = 600.0, objects: CustomObjects | None = None,
                     poll: float = 2.0, name: str = "", log=print) -> Iterator[str]:
    """Create a DaskCluster (``name``: default a fresh one per call), wait until the
    operator says ``Running``, yield the scheduler's address; delete the DaskCluster when the block ends (an exception in
    it, a timeout or an error phase included).

    Raises:
        DeployTimeoutError: not ``Running`` within ``timeout`` seconds (the cluster is
            deleted).
        InvalidInputError: the operator reports the phase ``Error``.
        KubernetesPermissionError / KubernetesNotFoundError: RBAC or the CRD missing.
    """
    namespace = namespace or task_namespace()
    name = name or f"kfp-interop-dask-{uuid.uuid4().hex[:10]}"
    manifest = render_dask_cluster(name, namespace=namespace, image=image, workers=workers,
                                   cpu=cpu, memory=memory, secrets=secrets)
    objects = objects or CustomObjects()
    objects.create(DASK_CLUSTER, namespace, manifest)
    log(f"DaskCluster {namespace}/{name}: created ({workers} workers of {image})")
    try:
        deadline = time.monotonic() + timeout
        phase = ""
        while True:
            obj = objects.get(DASK_CLUSTER, namespace, name) or {}
            phase = (obj.get("status") or {}).get("phase", "")
            if phase == "Running":
                break
            if phase == "Error":
                raise InvalidInputError(f"The Dask operator refused DaskCluster "
                                        f"{namespace}/{name} (phase Error): see the "
                                        "operator's log.")
            if time.monotonic() > deadline:
                raise DeployTimeoutError(
                    f"DaskCluster {namespace}/{name} is not Running after {timeout:g} s "
                    f"(phase {phase or 'none'}): is the Dask Kubernetes operator installed "
                    "and watching this namespace, and can the pods be scheduled?")
            time.sleep(poll)
        log(f"DaskCluster {namespace}/{name}: Running")
        yield scheduler_address(name, namespace)
    finally:
        objects.delete(DASK_CLUSTER, namespace, name)
        log(f"DaskCluster {namespace}/{name}: deleted")
