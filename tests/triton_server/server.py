"""Test equipment: a real Triton Inference Server (the ``tritonserver`` binary of the
``nvidia-pytriton`` wheel, CPU) on 127.0.0.1, with the ONNX Runtime stand-in backend of
``tests/triton_server/onnxruntime/model.py`` (see there why a stand-in).

The environment comes from ``tests/triton_server/setup.sh`` (``.triton-venv``, or
``$KFP_INTEROP_TRITON_VENV``). :func:`available` says whether it is there;
:class:`Triton` starts a server on a model repository in explicit model-control mode, so
each test loads the models it means and reads Triton's own answer.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.environ.get("KFP_INTEROP_TRITON_VENV") or os.path.join(ROOT, ".triton-venv")


def _site() -> str | None:
    found = glob.glob(os.path.join(VENV, "lib", "python3*", "site-packages"))
    return found[0] if found else None


def _home() -> str | None:
    site = _site()
    home = os.path.join(site, "pytriton", "tritonserver") if site else None
    return home if home and os.path.isfile(os.path.join(home, "bin", "tritonserver")) else None


def available() -> str:
    """'' when Triton can start here, else why not."""
    if not _home():
        return f"no Triton environment at {VENV}: run bash tests/triton_server/setup.sh"
    if not any(os.path.exists(os.path.join(d, "libpython3.11.so.1.0"))
               for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib")):
        return "Triton's Python stub needs the system's libpython3.11 (apt-get install libpython3.11)"
    return ""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TritonLoadError(RuntimeError):
    """Triton refused to load a model (its message in ``str()``)."""


class Triton:
    """``tritonserver`` on ``repository`` (explicit model control: nothing loads until
    :meth:`load`), HTTP and gRPC on free loopback ports; a context manager."""

    VERSION = "2.51.0"

    def __init__(self, repository: str, *, timeout: float = 60.0):
        self.repository = os.path.abspath(repository)
        self.timeout = timeout
        self.http_port, self.grpc_port = _port(), _port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.grpc_url = f"127.0.0.1:{self.grpc_port}"
        self.proc = None
        self.work = None

    def _backends(self) -> str:
        """Triton's python backend (with the 3.11 stub) and the stand-in as backend
        ``onnxruntime``, in one backend directory."""
        home = _home()
        backends = os.path.join(self.work, "backends")
        shutil.copytree(os.path.join(home, "backends", "python"),
                        os.path.join(backends, "python"))
        stub = os.path.join(os.path.dirname(home), "tritonserver", "python_backend_stubs",
                            "3.11", "triton_python_backend_stub")
        shutil.copy2(stub, os.path.join(backends, "python"))
        ort = os.path.join(backends, "onnxruntime")
        os.makedirs(ort)
        shutil.copy2(os.path.join(HERE, "onnxruntime", "model.py"), ort)
        with open(os.path.join(ort, "site.txt"), "w") as f:
            f.write(_site())
        return backends

    def __enter__(self) -> "Triton":
        why = available()
        if why:
            raise RuntimeError(why)
        self.work = tempfile.mkdtemp(prefix="kfp-interop-triton-")
        home = _home()
        libs = os.path.join(os.path.dirname(os.path.dirname(home)), "nvidia_pytriton.libs")
        env = {**os.environ, "LD_LIBRARY_PATH": libs + os.pathsep
               + os.environ.get("LD_LIBRARY_PATH", "")}
        self.log_path = os.path.join(self.work, "triton.log")
        cmd = [os.path.join(home, "bin", "tritonserver"),
               f"--model-repository={self.repository}",
               f"--backend-directory={self._backends()}",
               "--model-control-mode=explicit", "--strict-model-config=true",
               "--http-address=127.0.0.1", f"--http-port={self.http_port}",
               "--grpc-address=127.0.0.1", f"--grpc-port={self.grpc_port}",
               "--allow-metrics=false", "--exit-on-error=false", "--log-verbose=0"]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.work)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tritonserver exited ({self.proc.returncode}): "
                                   + self.log_text()[-2000:])
            try:
                if self._get("/v2/health/live")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("tritonserver did not come up: " + self.log_text()[-2000:])

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def log_text(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def _get(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data,
                                         method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw) if raw else {}
            except ValueError:
                return e.code, {"error": raw.decode(errors="replace")}

    def load(self, name: str) -> float:
        """Load ``name`` through Triton's repository API; seconds it took.

        Raises:
            TritonLoadError: Triton refused it (its own message).
        """
        start = time.monotonic()
        status, body = self._get(f"/v2/repository/models/{name}/load", {})
        seconds = time.monotonic() - start
        if status != 200:
            raise TritonLoadError(body.get("error") or f"HTTP {status}")
        return seconds

    def unload(self, name: str) -> None:
        self._get(f"/v2/repository/models/{name}/unload", {})

    def index(self) -> list[dict]:
        return self._get("/v2/repository/index", {})[1]

    def metadata(self, name: str) -> dict:
        status, body = self._get(f"/v2/models/{name}")
        assert status == 200, body
        return body

    def ready(self, name: str) -> bool:
        return self._get(f"/v2/models/{name}/ready")[0] == 200
