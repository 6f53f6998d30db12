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

__all__ = ["ServerHandle", "start_server", "stop_server", "serve_forever", "free_port",
           "wait_ready", "limits", "locate_model"]


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


def serve_forever(model_path: str, *, name: str | None = None, host: str = "127.0.0.1",
                  port: int = 8080, log_level: str = "warning",
                  max_body_mb: float | None = None, max_elements: int | None = None) -> None:
    """Validate the model, then run the server in this process until interrupted.

    The model is loaded once in the foreground first, so a corrupt or non-ONNX file
    fails here with a clear error rather than as a server that never gets ready.
    Requests above ``max_body_mb`` (default 32) or with more than ``max_elements``
    tensor elements (default 16 Mi) are answered 413.
    """
    import uvicorn

    from kfp_interop.serving.app import create_app
    from kfp_interop.serving.runtime import ServedModel

    _check_host(host)
    request_limits = limits(max_body_mb, max_elements)
    model = ServedModel(locate_model(model_path, name), name).load()
    app = create_app([model], load_in_background=False, limits=request_limits)
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
                 max_elements: int | None = None) -> ServerHandle:
    """Start a detached server process for ``model_path`` and wait until it is ready.

    Args:
        port: 0 picks a free port.
        log_path: where the server's output goes (default: discarded).

    Raises:
        ModelFileError / MetadataError: the model cannot be served (checked before start).
        ServingError: the process exited, or was not ready within ``timeout``; the
            process is stopped before raising.
    """
    from kfp_interop.onnx_model import read_onnx

    _check_host(host)
    limits(max_body_mb, max_elements)  # refuse bad limits here, not in the child
    model_path = locate_model(model_path, name)
    read_onnx(model_path)  # fail fast, with a clear error, on a missing or corrupt file
    port = port or free_port(host)
    cmd = [sys.executable, "-m", "kfp_interop.serving", model_path, "--host", host,
           "--port", str(port)]
    if name:
        cmd += ["--name", name]
    if max_body_mb is not None:
        cmd += ["--max-body-mb", str(max_body_mb)]
    if max_elements is not None:
        cmd += ["--max-elements", str(max_elements)]
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
        served = name or load_metadata(model_path).name
    except InteropError:  # an ONNX file without a record serves as "model"
        served = name or "model"
    return ServerHandle(pid=proc.pid, endpoint=endpoint, model_name=served, log_path=log_path)


def _exited(pid: int) -> bool:
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


def stop_server(pid: int, *, timeout: float = 10.0) -> bool:
    """SIGTERM the server (then SIGKILL after ``timeout``); True if it was running."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
            if waited == pid:
                return True
        except ChildProcessError:  # not our child: poll its existence
            if _exited(pid):
                return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True

