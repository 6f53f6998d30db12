"""Pipeline tasks in containers, as a pod runs them: the engine (Docker, or podman's
Docker-compatible socket named by ``$DOCKER_HOST``), the image check before a run, and
the one container per task that :func:`kfp_interop.runs.local.run_local` hands to
kfp.local's DockerRunner.

Why our own task container instead of kfp.local's as it is (kfp 2.17):

* kfp.local starts every task with ``auto_remove=True`` and reads a container that is
  already gone as *exit code 0*, so a task that fails fast can pass as succeeded; and
  podman (4.x) answers an inspect of such a container with 500 rather than 404, which
  fails quick tasks at random. Here a task's container is created without auto-remove,
  waited for, its exit code read, then removed.
* A task's own environment (``set_env_variable``) replaces the runner's; here the
  settings a task reads on this machine (S3, MLflow, our own variables) are passed and
  the task's own win.
* The run's output folder (the local model repository and MLflow store of the embedded
  defaults) is mounted beside the pipeline root, at the same path.

Nothing here imports kfp: :mod:`kfp_interop.runs.local` installs :func:`run_task` into
kfp.local.
"""

from __future__ import annotations

import os
from typing import Any

from kfp_interop.deploy.local import TASK_CONTAINER_ENV as IN_CONTAINER_ENV
from kfp_interop.errors import ContainerEngineError, ContainerImageError

__all__ = ["engine", "check_image", "task_environment", "run_task", "mountable",
           "IN_CONTAINER_ENV", "IMAGE_USER"]

#: the image's user (Dockerfile: useradd --uid 1000)
IMAGE_USER = (1000, 1000)
#: the host's settings a task reads, passed into its container
PASSED_PREFIXES = ("KFP_INTEROP_", "AWS_", "S3_", "MLFLOW_")
PASSED_NAMES = ("KERAS_BACKEND", "SOURCE_DATE_EPOCH", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")

_HOW = ("start Docker, or podman's Docker-compatible socket (as root on Debian/Ubuntu: "
        "eval \"$(bash scripts/containers.sh)\") and set DOCKER_HOST=unix://SOCKET")


def engine():
    """A docker SDK client for the engine ``$DOCKER_HOST`` (else Docker's default socket)
    names, after one ping.

    Raises:
        ContainerEngineError: the docker SDK is missing, or nothing answers.
    """
    where = os.environ.get("DOCKER_HOST") or "the default Docker socket"
    try:
        import docker
    except ImportError as e:  # pragma: no cover - a base dependency of kfp
        raise ContainerEngineError("The docker Python package is missing: pip install "
                                   "docker (it comes with kfp).") from e
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as e:  # noqa: BLE001 - the SDK raises DockerException or OSError
        reason = str(e).split("\n")[0][:200]
        raise ContainerEngineError(f"No container engine answers at {where} ({reason}): "
                                   f"{_HOW}.") from e
    return client


def source_digest() -> str:
    """sha256 over the installed package's Python files (library, components,
    pipelines), the same for an editable checkout and an image built from it."""
    import hashlib
    import importlib

    h = hashlib.sha256()
    for package in ("kfp_interop", "kfp_interop.components", "kfp_interop.pipelines"):
        root = list(importlib.import_module(package).__path__)[0]
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not (
                package == "kfp_interop" and folder == root and d in ("components",
                                                                      "pipelines")))
            for f in sorted(files):
                if f.endswith(".py"):
                    path = os.path.join(folder, f)
                    h.update(f"{package}/{os.path.relpath(path, root)}\0".encode())
                    with open(path, "rb") as fh:
                        h.update(fh.read())
    return h.hexdigest()


# kfp and the training libraries must import: the serving image holds the same code but
# cannot run pipeline tasks
_SAY = ("import kfp, sklearn, kfp_interop.components; from kfp_interop import __version__; "
        "from kfp_interop.runs.containers import source_digest; "
        "print(__version__, source_digest())")


def check_image(client, image: str, version: str) -> None:
    """The image is in the engine and holds this code: its kfp-interop version is
    ``version`` and its package's :func:`source_digest` equals this one (a rebuilt
    checkout with the same version number is caught too).

    Raises:
        ContainerImageError: the image is missing (say how to build it), or holds
            another version or other code.
    """
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound as e:
        raise ContainerImageError(
            f"Image {image!r} is not in the container engine: build it with "
            f"`bash scripts/image.sh` (or pull it), or name another with --image.") from e
    except docker.errors.APIError as e:
        raise ContainerEngineError(f"The container engine failed to look up {image!r}: "
                                   f"{e.explanation or e}.") from e
    try:
        said = run_once(client, image, ["python", "-c", _SAY]).split()
    except ContainerImageError as e:
        raise ContainerImageError(f"Image {image!r} cannot run pipeline tasks (is it the "
                                  f"serving image?): {e}") from e
    if not said or said[0] != version:
        raise ContainerImageError(
            f"Image {image!r} holds kfp-interop {said[0] if said else '(none)'}, this code "
            f"is {version}: rebuild it with `bash scripts/image.sh`, or name the matching "
            "image with --image.")
    if said[-1] != source_digest():
        raise ContainerImageError(
            f"Image {image!r} holds kfp-interop {version} built from other code than this "
            "checkout's: rebuild it with `bash scripts/image.sh` (tasks would run the "
            "image's code, not yours).")


def run_once(client, image: str, command: list[str]) -> str:
    """Run ``command`` in a fresh container of ``image``; its output (exit 0), else
    :class:`ContainerImageError` with the output's end."""
    lines: list[str] = []
    code = run_task(client, image, command, {}, log=lines.append)
    text = "".join(lines)
    if code != 0:
        last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
        raise ContainerImageError(f"`{command[0]}` failed in {image!r} (exit {code}): "
                                  f"{last[-300:]}")
    return text


#: the image's system folders: a mount may not cover them, sit above or inside them
_SYSTEM = ("/bin", "/dev", "/etc", "/lib", "/lib64", "/opt/kfp-interop", "/opt/venv",
           "/proc", "/run", "/sbin", "/sys", "/usr")
#: folders a file inside may be mounted to, but not the folder itself or above it
_FOLDERS = ("/home/kfp", "/tmp")


def mountable(path: str) -> bool:
    """Whether a path a parameter names can be mounted read-only into a task at its own
    path: absolute, existing, not one of the image's system folders, above or inside one,
    and not /tmp or the user's home itself (a file inside them is fine)."""
    if not os.path.isabs(path) or not os.path.exists(path):
        return False
    path = os.path.normpath(path)
    above = path.rstrip("/") + "/"
    for own in _SYSTEM + _FOLDERS:
        if own == path or own.startswith(above):
            return False
    return not any(path.startswith(own + "/") for own in _SYSTEM)


def task_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The host's settings a task reads (S3, MLflow, ours), plus
    :data:`IN_CONTAINER_ENV`."""
    env = os.environ if env is None else env
    out = {k: v for k, v in env.items()
           if k.startswith(PASSED_PREFIXES) or k in PASSED_NAMES}
    out[IN_CONTAINER_ENV] = "1"
    return out


def _ca_volumes(env: dict[str, str]) -> dict[str, dict]:
    """The host's CA bundles named by SSL_CERT_FILE/REQUESTS_CA_BUNDLE, read-only at the
    same path (a task then trusts what the host trusts)."""
    out = {}
    for key in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        path = env.get(key)
        if path and os.path.isfile(path):
            out[os.path.abspath(path)] = {"bind": os.path.abspath(path), "mode": "ro"}
    return out


def run_task(client, image: str, command: list[str], volumes: dict[str, Any], *,
             environment: dict[str, str] | None = None, base_environment=None,
             extra_volumes: dict[str, Any] | None = None, log=None,
             **run_args) -> int:
    """One task: create its container (no auto-remove), stream its log, wait, read its
    exit code, remove it. ``environment`` (the task's own) wins over
    ``base_environment``. Returns the exit code.

    Raises:
        ContainerEngineError: the engine refused to create or run the container.
    """
    import docker

    log = log or (lambda text: print(text, end=""))
    env = {**(base_environment or {}), **(environment or {})}
    volumes = {**_ca_volumes(env), **(extra_volumes or {}), **volumes}
    run_args.pop("auto_remove", None)
    run_args.pop("detach", None)
    try:
        container = client.containers.create(image=image, command=command, volumes=volumes,
                                             environment=env, **run_args)
    except docker.errors.APIError as e:
        raise ContainerEngineError(f"The container engine refused a container of {image!r}: "
                                   f"{e.explanation or e}.") from e
    try:
        container.start()
        for chunk in container.logs(stream=True, follow=True):
            log(chunk.decode(errors="replace"))
        return int(container.wait()["StatusCode"])
    except docker.errors.APIError as e:
        raise ContainerEngineError(f"The container engine failed running {image!r}: "
                                   f"{e.explanation or e}.") from e
    finally:
        try:
            container.remove(force=True)
        except docker.errors.APIError:
            pass  # already gone: nothing to clean up
