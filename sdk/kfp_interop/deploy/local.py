"""The ``local`` target: a detached Open Inference Protocol server process on this
machine (it outlives the pipeline task that started it; ``kfp-interop run`` stops it
unless ``--keep-serving``).

Inside a Kubernetes pod (a pipeline run on a cluster) a process the deploy task starts
dies with its pod, before the smoke-test task could call it. There the target serves
*in the smoke-test task*: the deployment says ``mode: in-task``, and the smoke test
starts the server from the model it checks, on the pod's loopback, and stops it after.
So a reference pipeline runs to its end on a cluster on its defaults; serving that
outlives the run is what ``kserve``, ``seldon`` and ``seldon-v2`` are for. A task in a
container of ``kfp-interop run --runner docker`` is the same case (its container ends
with it): the runner sets :data:`TASK_CONTAINER_ENV`."""

from __future__ import annotations

import os
from typing import Any, Callable

from kfp_interop.deploy.base import DeployTarget, register_target
from kfp_interop.errors import UnsupportedOperationError

__all__ = ["LocalTarget", "in_kubernetes_pod", "serves_in_task", "IN_TASK",
           "TASK_CONTAINER_ENV"]

SERVER_LOG = "server.log"
#: a local deployment served inside the task that checks it
IN_TASK = "in-task"
#: set by ``kfp-interop run --runner docker`` in every task's container
TASK_CONTAINER_ENV = "KFP_INTEROP_TASK_CONTAINER"


def in_kubernetes_pod() -> bool:
    """Whether this process runs in a Kubernetes pod (the kubelet sets this variable in
    every container; ``kfp.local`` and a shell do not)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def serves_in_task() -> bool:
    """Whether a process this task starts ends with the task: in a Kubernetes pod, or in a
    task container of the local docker runner."""
    return in_kubernetes_pod() or os.environ.get(TASK_CONTAINER_ENV) == "1"


class LocalTarget(DeployTarget):
    """kfp-interop's OIP server as a process here (in a pod: in the smoke-test task).

    In a Kubernetes pod or a task container of the docker runner, a process started by
    the deploy task would end with it; there the model is served inside the smoke-test
    task (see the module docstring)."""

    name = "local"
    stops_with_local_run = True

    def deploy(self, model: str, *, name: str = "", namespace: str = "default",
               storage_uri: str = "", canary_percent: int = 0, dry_run: bool = False,
               output_dir: str | None = None, timeout: float = 600.0, endpoint: str = "",
               port: int = 0, kubeconfig: str | None = None, client: Any = None,
               log: Callable[[str], None] = print, host: str = "127.0.0.1") -> dict:
        """Serve the model (wait until ready); its log goes to ``<output_dir>/server.log``.

        ``port`` 0 picks a free port; the cluster options do not apply and are ignored.
        """
        from kfp_interop.onnx_model import find_onnx
        from kfp_interop.serving import start_server

        if dry_run:
            return {"target": self.name, "dry_run": True, "name": name, "model_name": name,
                    "endpoint": None}
        if serves_in_task():
            from kfp_interop.metadata import load_metadata

            served = name or load_metadata(find_onnx(model)).name
            where = "a Kubernetes pod" if in_kubernetes_pod() else "a task container"
            log(f"in {where}: {served!r} will be served inside the smoke-test task")
            return {"target": self.name, "dry_run": False, "mode": IN_TASK, "name": served,
                    "model_name": served, "endpoint": None}
        log_path = os.path.join(output_dir, SERVER_LOG) if output_dir else None
        handle = start_server(find_onnx(model), name=name or None, host=host, port=port,
                              log_path=log_path, timeout=timeout)
        log(f"serving {handle.model_name!r} at {handle.endpoint} (pid {handle.pid})")
        return {"target": self.name, "dry_run": False, "name": handle.model_name,
                "model_name": handle.model_name, "endpoint": handle.endpoint,
                "pid": handle.pid, "log_path": log_path}

    def undeploy(self, deployment: dict, *, client: Any = None) -> bool:
        from kfp_interop.serving import stop_server

        if deployment.get("pid"):
            return stop_server(int(deployment["pid"]))
        return False

    def rollback(self, deployment: dict, *, client: Any = None) -> str:
        return "nothing to roll back (the local server is left running for inspection)"

    def delete(self, name: str, namespace: str = "default", *, client: Any = None,
               kubeconfig: str | None = None) -> bool:
        raise UnsupportedOperationError(
            f"The local target has no deployments to delete by name ({name!r}): stop a "
            "local server with the pid its deployment reports (kill PID), or run without "
            "--keep-serving.")


register_target(LocalTarget())
