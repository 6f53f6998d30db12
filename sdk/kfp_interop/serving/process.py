"""Starting and stopping local OIP server processes."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from kfp_interop.errors import InteropError, InvalidInputError, ServingError
from kfp_interop.serving.codec import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ELEMENTS, Limits

__all__ = ["ServerHandle", "start_server", "stop_server", "process_exited", "serve_forever",
           "free_port",
           "wait_ready", "limits", "locate_model", "batching_options", "build_repository"]


@dataclasses.dataclass(frozen=True)
class ServerHandle:
    """A running server: its process id, endpoint and served model."""

    pid: int
    endpoint: str
    model_name: str
    log_path: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def locate_model(path: str, name: str | None = None) -> str:
    """The ONNX file to serve: ``path`` itself, ``<path>/model.onnx``, or, in a Triton
    layout (what KServe's storage initializer puts in ``/mnt/models``), the highest
    numeric version's ``model.onnx`` under ``<path>/<name>/`` or under ``path``.

    Raises:
        ModelFileError: ``path`` does not exist.
        InvalidInputError: none of these exists in the folder (what is there is named).
    """
    from kfp_interop.constants import ONNX_FILENAME
    from kfp_interop.errors import InvalidInputError, ModelFileError

    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise ModelFileError(f"No ONNX file at {path!r}: pass an ONNX file or a folder.")
    if os.path.isfile(os.path.join(path, ONNX_FILENAME)):
        return os.path.join(path, ONNX_FILENAME)
    for folder in ([os.path.join(path, name)] if name else []) + [path]:
        versions = sorted((int(v) for v in (os.listdir(folder) if os.path.isdir(folder) else [])
                           if v.isdigit() and int(v) > 0
                           and os.path.isfile(os.path.join(folder, v, ONNX_FILENAME))),
                          reverse=True)
        if versions:
            return os.path.join(folder, str(versions[0]), ONNX_FILENAME)
    raise InvalidInputError(
        f"No {ONNX_FILENAME} in {path!r}" + (f" or {os.path.join(path, name)!r}" if name
                                             else "") +
        f" (as a file, or in numeric version folders); it holds {sorted(os.listdir(path))[:10]}.")


def _check_host(host: str) -> None:
    if not host:
        raise InvalidInputError("host must not be empty; use 127.0.0.1 for a local server.")


def limits(max_body_mb: float | None = None, max_elements: int | None = None) -> Limits:
    """Request limits from the command-line units (``None``: the default).

    Raises:
        InvalidInputError: a limit that is not positive.
    """
    body = DEFAULT_MAX_BODY_BYTES if max_body_mb is None else int(max_body_mb * 1024 * 1024)
    elements = DEFAULT_MAX_ELEMENTS if max_elements is None else int(max_elements)
    if body < 1 or elements < 1:
        raise InvalidInputError(f"max_body_mb={max_body_mb} and max_elements={max_elements} "
                                "must be positive.")
    return Limits(max_body_bytes=body, max_elements=elements)


def batching_options(max_batch_size: int | None = None, max_queue_delay_us: int | None = None,
                     preferred_batch_sizes: str | list | None = None):
    """Batching from the command-line flags: ``None`` (the models' own) when none is
    given, ``False`` for ``--max-batch-size 0``, else a :class:`Batching`.

    Raises:
        InvalidInputError: a delay or preferred sizes without a size, or bad numbers.
    """
    from kfp_interop.serving.runtime import Batching

    if isinstance(preferred_batch_sizes, str):
        try:
            preferred_batch_sizes = [int(p) for p in preferred_batch_sizes.split(",") if p.strip()]
        except ValueError:
            raise InvalidInputError(f"--preferred-batch-sizes {preferred_batch_sizes!r}: "
                                    "comma-separated row counts, e.g. 8,16.") from None
    if max_batch_size is None:
        if max_queue_delay_us is not None or preferred_batch_sizes:
            raise InvalidInputError("--max-queue-delay-us and --preferred-batch-sizes need "
                                    "--max-batch-size (the rows one batch may hold).")
        return None
    if max_batch_size == 0:
        return False
    return Batching(int(max_batch_size), int(max_queue_delay_us or 0),
                    tuple(preferred_batch_sizes or ()))


def build_repository(model_path: str, *, name: str | None = None,
                     control: str = "none", load_models: list[str] | None = None,
                     batching=None, strict_readiness: bool = True, threads: int = 1,
                     remote=None):
    """The models to serve: a repository (folder or storage URI) when ``model_path`` is
    one and no ``name`` picks a single model out of it, else one ONNX file (loaded here,
    so a corrupt file fails with a clear error rather than as a server that never gets
    ready). A repository's models are loaded here too, by the control mode; one that
    fails is reported and the others are served."""
    from kfp_interop.serving.repository import ModelRepository, is_repository
    from kfp_interop.serving.runtime import ServedModel

    if threads < 0:
        raise InvalidInputError(f"--intra-op-threads {threads}: 0 (one per core) or more.")
    if is_repository(model_path) and not name:
        repository = ModelRepository(source=model_path, control=control, batching=batching,
                                     strict_readiness=strict_readiness, threads=threads,
                                     remote=remote)
        repository.start(load_models)
        return repository
    if control != "none" or load_models:
        raise InvalidInputError(f"{model_path!r} is one model: --model-control-mode explicit "
                                "and --load-model take a model repository (a folder of "
                                "<name>/config.pbtxt + <name>/<version>/model.onnx, or a "
                                "storage URI).")
    model = ServedModel(locate_model(model_path, name), name, batching=batching,
                        threads=threads).load()
    return ModelRepository([model], strict_readiness=strict_readiness)


def serve_forever(model_path: str, *, name: str | None = None, host: str = "127.0.0.1",
                  port: int = 8080, log_level: str = "warning",
                  max_body_mb: float | None = None, max_elements: int | None = None,
                  grpc_port: int = 0, metrics_port: int = 0, batching=None,
                  control: str = "none", load_models: list[str] | None = None,
                  strict_readiness: bool = True, threads: int = 1, remote=None) -> None:
    """Load the model(s), then run the server in this process until interrupted.

    Requests above ``max_body_mb`` (default 32) or with more than ``max_elements``
    tensor elements (default 16 Mi) are answered 413 (RESOURCE_EXHAUSTED on gRPC).
    ``grpc_port`` (0: off) serves the OIP gRPC service beside REST; ``metrics_port``
    (0: only on the HTTP port) serves ``/metrics`` on a port of its own too.
    """
    import uvicorn

    from kfp_interop.serving.app import create_app

    _check_host(host)
    request_limits = limits(max_body_mb, max_elements)
    repository = build_repository(model_path, name=name, control=control,
                                  load_models=load_models, batching=batching,
                                  strict_readiness=strict_readiness, threads=threads,
                                  remote=remote)
    app = create_app(repository, load_in_background=False, limits=request_limits)
    app.grpc_address = f"{host}:{grpc_port}" if grpc_port else ""
    if metrics_port:
        from kfp_interop.serving.metrics import serve_metrics

        serve_metrics(app.metrics, host, metrics_port)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=5, lifespan="on")


def wait_ready(endpoint: str, *, timeout: float = 30.0, proc: subprocess.Popen | None = None,
               log_path: str | None = None) -> None:
    """Poll ``/v2/health/ready`` until 200; raise ServingError on exit or timeout."""
    end = time.monotonic() + timeout
    last = ""
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            tail = ""
            if log_path and os.path.exists(log_path):
                with open(log_path, errors="replace") as f:
                    tail = f.read()[-2000:]
            raise ServingError(f"Server process exited with code {proc.returncode} before "
                               f"it was ready. Its log:\n{tail}")
        try:
            with urllib.request.urlopen(endpoint + "/v2/health/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except urllib.error.HTTPError as e:
            last = e.read().decode(errors="replace")
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            last = str(e)
        time.sleep(0.05)
    raise ServingError(f"Server at {endpoint} was not ready within {timeout:g} s ({last}).")


def start_server(model_path: str, *, name: str | None = None, host: str = "127.0.0.1",
                 port: int = 0, log_path: str | None = None, timeout: float = 60.0,
                 max_body_mb: float | None = None,
                 max_elements: int | None = None, extra_args: list[str] = ()
                 ) -> ServerHandle:
    """Start a detached server process for ``model_path`` and wait until it is ready.

    Args:
        port: 0 picks a free port.
        log_path: where the server's output goes (default: discarded).
        extra_args: more ``serve`` flags (``--grpc-port``, ``--max-batch-size``, ...); a
            model repository (folder or URI) is served whole.

    Raises:
        ModelFileError / MetadataError: the model cannot be served (checked before start).
        ServingError: the process exited, or was not ready within ``timeout``; the
            process is stopped before raising.
    """
    from kfp_interop.onnx_model import read_onnx

    from kfp_interop.serving.repository import is_repository

    _check_host(host)
    limits(max_body_mb, max_elements)  # refuse bad limits here, not in the child
    repository = is_repository(model_path) and not name
    if not repository:
        model_path = locate_model(model_path, name)
        read_onnx(model_path)  # fail fast, with a clear error, on a missing or corrupt file
    port = port or free_port(host)
    # a storage URI needs the command that reads storage (a layer above this one)
    entry = ["kfp_interop.cli", "serve"] if "://" in model_path else ["kfp_interop.serving"]
    cmd = [sys.executable, "-m", *entry, model_path, "--host", host, "--port", str(port)]
    if name:
        cmd += ["--name", name]
    if max_body_mb is not None:
        cmd += ["--max-body-mb", str(max_body_mb)]
    if max_elements is not None:
        cmd += ["--max-elements", str(max_elements)]
    cmd += list(extra_args)
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        if log_path:
            out.close()
    endpoint = f"http://{host}:{port}"
    try:
        wait_ready(endpoint, timeout=timeout, proc=proc, log_path=log_path)
    except BaseException:
        stop_server(proc.pid)
        raise
    from kfp_interop.metadata import load_metadata
    try:
        served = name or ("" if repository else load_metadata(model_path).name)
    except InteropError:  # an ONNX file without a record serves as "model"
        served = name or "model"
    return ServerHandle(pid=proc.pid, endpoint=endpoint, model_name=served, log_path=log_path)


def process_exited(pid: int) -> bool:
    """Whether process ``pid`` (not our child) has exited: gone, or a zombie that its
    parent (often init, for a server whose deploy task has ended) has not reaped yet;
    some inits reap only every second or so."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except (OSError, IndexError):  # no /proc here: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def stop_server(pid: int, *, timeout: float = 10.0, process_group: bool = False) -> bool:
    """SIGTERM the server (then SIGKILL after ``timeout``); True if it was running. With
    ``process_group``, the signals go to its whole group (a process started in a session
    of its own, with the children it started: e.g. a SuperLink and its ServerApps)."""
    kill = os.killpg if process_group else os.kill
    try:
        kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
            if waited == pid:
                return True
        except ChildProcessError:  # not our child: poll its existence
            if process_exited(pid):
                return True
        time.sleep(0.05)
    try:
        kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True

