"""Deploy targets, by name. ``local`` starts a detached local OIP server process.

Each target is ``fn(model_dir, *, name, **options) -> dict`` returning at least
``target``, ``endpoint`` and ``model_name``; unknown targets fail with the list of
known ones.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from kfp_interop.errors import InvalidInputError
from kfp_interop.registry import Registry

__all__ = ["DEPLOY_TARGETS", "deploy", "deploy_local", "undeploy", "ONNX_FILENAME"]

from kfp_interop.steps import ONNX_FILENAME

DEPLOY_TARGETS: Registry[Callable[..., dict]] = Registry(
    "deploy target", "Add one with kfp_interop.deploy.DEPLOY_TARGETS.register(name, fn).")


def model_file(model: str) -> str:
    """The ONNX file of a model artifact directory (or the file itself)."""
    path = os.path.join(model, ONNX_FILENAME) if os.path.isdir(model) else model
    if not os.path.isfile(path):
        raise InvalidInputError(f"No ONNX model at {path!r}: pass an ONNX file or a model "
                                f"directory holding {ONNX_FILENAME}.")
    return path


def deploy_local(model: str, *, name: str = "", host: str = "127.0.0.1", port: int = 0,
                 log_path: str | None = None, timeout: float = 60.0, **_: Any) -> dict:
    """Serve the model on a local OIP endpoint (a detached process) and wait until ready."""
    from kfp_interop.serve import start_server

    handle = start_server(model_file(model), name=name or None, host=host, port=port,
                          log_path=log_path, timeout=timeout)
    return {"target": "local", "endpoint": handle.endpoint, "model_name": handle.model_name,
            "pid": handle.pid, "log_path": log_path}


DEPLOY_TARGETS.register("local", deploy_local)


def deploy(target: str, model: str, **options: Any) -> dict:
    """Deploy ``model`` (ONNX file or model directory) to ``target``."""
    return DEPLOY_TARGETS.get(target)(model, **options)


def undeploy(deployment: dict) -> bool:
    """Stop what :func:`deploy` started (local: the server process)."""
    if deployment.get("target") == "local" and deployment.get("pid"):
        from kfp_interop.serve import stop_server

        return stop_server(int(deployment["pid"]))
    return False
