"""Federated learning on Flower's Deployment Engine, the pipeline's side: the run's
settings as Flower run config (:class:`FlowerSettings`), the Flower App folder
(:func:`write_app`), a connection to a SuperLink (:class:`SuperLink`), starting a run and
following it to its end with Flower's own CLI (``flwr run``/``flwr ls``/``flwr stop``, in
JSON mode), and the ServerApp's results (:class:`ResultsLocation`).

The ServerApp and ClientApp are in :mod:`kfp_interop.flower.app`.

Flower's CLI in JSON mode exits 0 on errors: every answer's ``success`` is read here, and
a failure raises :class:`~kfp_interop.errors.FederationError` with Flower's message.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

from kfp_interop.errors import (FederationError, FederationUnavailableError,
                                InvalidInputError)

__all__ = ["RESULTS_ENV", "CA_ENV", "APP_NAME", "FlowerSettings", "ResultsLocation",
           "run_folder", "SuperLink", "write_app", "flower_executable",
           "flower_environment", "flwr_json", "FlowerRun"]

#: where the ServerApp writes (set on the SuperLink side: a folder or storage prefix)
RESULTS_ENV = "KFP_INTEROP_FEDERATION_RESULTS"
#: the SuperLink's CA certificate (PEM), from the Secret kfp-interop-superlink-tls
CA_ENV = "KFP_INTEROP_SUPERLINK_CA"
APP_NAME = "kfp-interop-federated"
_FINISHED = "finished"


def _number(config: dict, key: str, kind: type, default: Any = None) -> Any:
    value = config.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"Run config {key}={value!r} must be a number.")
    return kind(value)


@dataclasses.dataclass(frozen=True)
class FlowerSettings:
    """Everything a run needs, as the ServerApp and the ClientApps read it from Flower's
    run config (flat keys; lists and objects as JSON text)."""

    architecture: str
    feature_names: tuple
    class_labels: tuple
    rounds: int
    clients: int
    strategy: str = "fedavg"
    strategy_options: dict = dataclasses.field(default_factory=dict)
    init_args: dict = dataclasses.field(default_factory=dict)
    target_column: str = ""
    local_epochs: int = 2
    lr: float = 1e-3
    batch_size: int = 32
    optimizer: str = "adam"
    proximal_mu: float = 0.0
    dp_clip_norm: float = 0.0
    dp_noise_multiplier: float = 0.0
    seed: int = 42
    round_timeout: float = 600.0
    node_wait_timeout: float = 120.0

    def __post_init__(self):
        from kfp_interop.federated.strategies import check_server_settings

        for key in ("rounds", "clients"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{key}={value!r} must be an integer of at least 1.")
        check_server_settings(self.strategy, self.strategy_options, self.dp_clip_norm,
                              self.dp_noise_multiplier)
        if self.round_timeout <= 0 or self.node_wait_timeout <= 0:
            raise InvalidInputError(f"round_timeout={self.round_timeout} and "
                                    f"node_wait_timeout={self.node_wait_timeout} must be "
                                    "above 0 seconds.")
        if not self.feature_names or len(self.class_labels) < 2:
            raise InvalidInputError("A federation needs its feature names and at least two "
                                    "class labels (from the evaluation data).")

    @property
    def min_fit_clients(self) -> int:
        """The fewest answers a round aggregates: the strategy's ``min_fit_clients``
        (Flower's default 2), never more than ``clients``."""
        return max(1, min(int(self.strategy_options.get("min_fit_clients", 2)),
                          self.clients))

    def spec(self):
        """The model's :class:`~kfp_interop.federated.models.FederatedSpec`.

        Raises:
            InvalidInputError: an architecture no framework federates, or a module:Class
                that is not allowed here.
        """
        from kfp_interop.federated.models import new_spec

        return new_spec(self.architecture, len(self.feature_names), len(self.class_labels),
                        init_args=self.init_args)

    def to_run_config(self) -> dict:
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, (tuple, list, dict)):
                value = json.dumps(list(value) if isinstance(value, tuple) else value)
            out[field.name.replace("_", "-")] = value
        return out

    @classmethod
    def from_run_config(cls, config: dict) -> "FlowerSettings":
        """Read back :meth:`to_run_config` (every value checked, nothing evaluated).

        Raises:
            InvalidInputError: a missing or mistyped key, or a bad value (named).
        """
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            key = field.name.replace("_", "-")
            if key not in config:
                if field.default is dataclasses.MISSING and \
                        field.default_factory is dataclasses.MISSING:
                    raise InvalidInputError(f"Run config lacks {key!r}.")
                continue
            value = config[key]
            if field.type in ("tuple", "dict"):
                try:
                    value = json.loads(value)
                except (TypeError, ValueError) as e:
                    raise InvalidInputError(f"Run config {key} is not JSON: {e}") from e
                want = list if field.type == "tuple" else dict
                if not isinstance(value, want):
                    raise InvalidInputError(f"Run config {key} must be a JSON "
                                            f"{want.__name__}.")
                value = tuple(str(v) for v in value) if want is list else value
            elif field.type == "int":
                value = _number(config, key, int)
            elif field.type == "float":
                value = _number(config, key, float)
            else:
                value = str(value)
            values[field.name] = value
        return cls(**values)


def run_folder(root: str, run_id: int) -> str:
    """Where the ServerApp of run ``run_id`` writes under ``root``."""
    return f"{root.rstrip('/')}/run-{int(run_id)}"


class ResultsLocation:
    """A run's results folder: a local folder, or a storage prefix (any registered
    scheme, read and written with this side's credentials)."""

    def __init__(self, location: str):
        self.location = location
        self.remote = "://" in location
        if not self.remote and not os.path.isabs(location):
            raise InvalidInputError(f"The federation results location {location!r} must be "
                                    "an absolute folder or a storage URI (s3://bucket/prefix).")

    def _store(self):
        from kfp_interop.storage import open_store, parse_uri

        scheme, bucket, prefix = parse_uri(self.location)
        return open_store(f"{scheme}://{bucket}"), prefix.strip("/")

    def write_bytes(self, name: str, data: bytes) -> None:
        if not self.remote:
            from kfp_interop.files import atomic_write

            os.makedirs(self.location, exist_ok=True)
            atomic_write(os.path.join(self.location, name), data)
            return
        import hashlib

        store, prefix = self._store()
        with store.guard(f"writing {self.location}/{name}"):
            store.put_bytes(f"{prefix}/{name}", data, sha256=hashlib.sha256(data).hexdigest())

    def read_bytes(self, name: str) -> bytes | None:
        if not self.remote:
            try:
                with open(os.path.join(self.location, name), "rb") as f:
                    return f.read()
            except FileNotFoundError:
                return None
        store, prefix = self._store()
        with store.guard(f"reading {self.location}/{name}"):
            return store.read_bytes(f"{prefix}/{name}")

    def write_json(self, name: str, obj: Any) -> None:
        self.write_bytes(name, json.dumps(obj, indent=1).encode())

    def read_json(self, name: str) -> Any:
        data = self.read_bytes(name)
        return None if data is None else json.loads(data)

    def write_arrays(self, name: str, arrays: list) -> None:
        import numpy as np

        buffer = io.BytesIO()
        np.savez(buffer, **{f"w{i:04d}": np.asarray(a) for i, a in enumerate(arrays)})
        self.write_bytes(name, buffer.getvalue())

    def read_arrays(self, name: str) -> list | None:
        import numpy as np

        data = self.read_bytes(name)
        if data is None:
            return None
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return [z[k] for k in sorted(z.files)]

    def save_model(self, write: Callable[[str], None]) -> None:
        """``write(folder)`` writes the model folder; it lands in ``model/``."""
        with tempfile.TemporaryDirectory() as tmp:
            write(tmp)
            for name in sorted(os.listdir(tmp)):
                with open(os.path.join(tmp, name), "rb") as f:
                    self.write_bytes(f"model/{name}", f.read())

    def fetch_model(self, dest: str) -> None:
        """The ``model/`` folder :meth:`save_model` wrote, into ``dest``.

        Raises:
            FederationError: no model there.
        """
        from kfp_interop.federated.models import SPEC_FILE, WEIGHTS_FILE

        os.makedirs(dest, exist_ok=True)
        for name in (WEIGHTS_FILE, SPEC_FILE):
            data = self.read_bytes(f"model/{name}")
            if data is None:
                raise FederationError(f"The run finished but {self.location}/model/{name} "
                                      "is not there: is the pipeline reading the location "
                                      f"the SuperLink side writes ({RESULTS_ENV})?")
            with open(os.path.join(dest, name), "wb") as f:
                f.write(data)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string is a JSON string


def write_app(directory: str, settings: FlowerSettings) -> str:
    """The Flower App folder ``flwr run`` takes: ``pyproject.toml`` naming our ServerApp
    and ClientApp (installed with kfp-interop on both sides; the bundle carries no code)
    and the run's settings as its config. Returns the folder."""
    from kfp_interop._version import __version__

    lines = ["[build-system]", 'requires = ["hatchling"]', 'build-backend = "hatchling.build"',
             "", "[project]", f'name = "{APP_NAME}"', f'version = "{__version__}"',
             'description = "kfp-interop federated learning"', "license = \"Apache-2.0\"",
             "dependencies = []", "", "[tool.hatch.build.targets.wheel]",
             'packages = ["."]', "", "[tool.flwr.app]", 'publisher = "kfp-interop"', "",
             "[tool.flwr.app.components]",
             'serverapp = "kfp_interop.flower.app:server_app"',
             'clientapp = "kfp_interop.flower.app:client_app"', "",
             "[tool.flwr.app.config]"]
    lines += [f'"{key}" = {_toml(value)}' for key, value in settings.to_run_config().items()]
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "pyproject.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return directory


def flower_executable(name: str = "flwr") -> str:
    """Flower's ``name`` command (``flwr``, ``flower-superlink``, ...) from this
    environment: beside the interpreter, else on PATH.

    Raises:
        InvalidInputError: Flower is not installed.
    """
    exe = os.path.join(os.path.dirname(sys.executable), name)
    found = exe if os.path.isfile(exe) else shutil.which(name)
    if not found:
        raise InvalidInputError(f"Flower's {name} is not installed beside {sys.executable} "
                                "or on PATH: pip install 'kfp-interop[federated]'.")
    return found


def flower_environment(base: dict) -> dict:
    """``base`` with this environment's bin folder first on PATH (the SuperLink starts
    ``flower-superexec`` by name)."""
    return {**base, "PATH": os.path.dirname(sys.executable) + os.pathsep
            + base.get("PATH", "")}


@dataclasses.dataclass
class SuperLink:
    """A SuperLink as the pipeline reaches it: ``address`` (host:port), TLS with
    ``ca_pem`` (the CA certificate that signed the SuperLink's) unless ``insecure``."""

    address: str
    insecure: bool = False
    ca_pem: str = ""

    def __post_init__(self):
        host, _, port = self.address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
            raise InvalidInputError(f"superlink={self.address!r} must be host:port (e.g. "
                                    "flower-superlink.flower.svc:9093).")
        if not self.insecure and not self.ca_pem:
            raise InvalidInputError(
                f"The SuperLink {self.address} is reached over TLS and no CA certificate "
                f"was given: create the Secret kfp-interop-superlink-tls (key ca.crt, "
                f"reaches the task as {CA_ENV}), or set superlink_insecure=true for a "
                "federation without TLS (a test federation on one machine).")

    def check_reachable(self, timeout: float = 10.0) -> None:
        """Refuse, in bounded time, a SuperLink nothing answers at.

        Raises:
            FederationUnavailableError: names the address and the socket's error.
        """
        host, _, port = self.address.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return
        except OSError as e:
            raise FederationUnavailableError(
                f"The SuperLink {self.address} cannot be reached ({e}) within {timeout:g} s: "
                "check the address, that the SuperLink runs, and the network path from "
                "this task (kfp-interop federation up starts one on this machine).") from e

    def environment(self, home: str) -> dict:
        """The environment for Flower's CLI: ``FLWR_HOME`` holding a ``config.toml``
        whose default connection is this SuperLink."""
        os.makedirs(home, exist_ok=True)
        lines = ["[superlink]", 'default = "kfp"', "", "[superlink.kfp]",
                 f"address = {_toml(self.address)}"]
        if self.insecure:
            lines.append("insecure = true")
        else:
            ca = os.path.join(home, "ca.crt")
            with open(ca, "w") as f:
                f.write(self.ca_pem)
            lines.append(f"root-certificates = {_toml(ca)}")
        with open(os.path.join(home, "config.toml"), "w") as f:
            f.write("\n".join(lines) + "\n")
        return flower_environment({**os.environ, "FLWR_HOME": home})


def flwr_json(args: list[str], env: dict, *, timeout: float, what: str) -> dict:
    try:
        done = subprocess.run([flower_executable("flwr")] + args + ["--format", "json"], env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise FederationUnavailableError(f"Flower's CLI did not answer within {timeout:g} s "
                                         f"while {what}.") from e
    text = done.stdout.strip()
    try:
        answer = json.loads(text[text.index("{"):]) if "{" in text else {}
    except ValueError:
        answer = {}
    if not answer.get("success"):
        message = (answer.get("error-message") or answer.get("error") or done.stderr.strip()
                   or text or f"exit code {done.returncode}")
        raise FederationError(f"Flower failed while {what}: {message}")
    return answer


@dataclasses.dataclass
class FlowerRun:
    """A run on a SuperLink, started by :meth:`start` and followed by :meth:`follow`."""

    superlink: SuperLink
    env: dict
    run_id: int = 0

    @classmethod
    def start(cls, superlink: SuperLink, app_dir: str, home: str,
              timeout: float = 120.0) -> "FlowerRun":
        """Submit the Flower App at ``app_dir``; returns the run (its id from Flower).

        Raises:
            FederationUnavailableError: the SuperLink cannot be reached.
            FederationError: Flower refused the run (its message).
        """
        superlink.check_reachable()
        env = superlink.environment(home)
        try:
            answer = flwr_json(["run", app_dir, "kfp"], env, timeout=timeout,
                                what=f"starting the run on {superlink.address}")
        except FederationError as e:
            if superlink.insecure or "unavailable" not in str(e):
                raise
            # the port answers (checked above), so the TLS handshake is the likely cause
            raise FederationUnavailableError(
                f"{e} The SuperLink answers on {superlink.address} but the TLS connection "
                f"failed: is its certificate signed by the CA in {CA_ENV} (the Secret "
                "kfp-interop-superlink-tls), and issued for this address?") from e
        return cls(superlink, env, int(answer["run-id"]))

    def status(self) -> tuple[str, str]:
        """``(status, details)`` as Flower reports them (e.g. ``finished:completed``)."""
        answer = flwr_json(["ls", "kfp", "--run-id", str(self.run_id)], self.env,
                            timeout=60.0, what=f"reading run {self.run_id}'s status")
        runs = answer.get("runs") or [{}]
        return str(runs[0].get("status", "")), str(runs[0].get("status-details", "") or "")

    def stop(self) -> None:
        try:
            flwr_json(["stop", str(self.run_id), "kfp"], self.env, timeout=60.0,
                       what=f"stopping run {self.run_id}")
        except FederationError:
            pass  # already finished, or the SuperLink is gone: nothing left to stop

    def follow(self, *, timeout: float, poll: float = 2.0,
               on_poll: Callable[[], None] | None = None) -> str:
        """Wait for the run's end (``on_poll`` between checks); returns the final status.

        Raises:
            FederationError: not finished within ``timeout`` (the run is stopped).
        """
        deadline = time.monotonic() + timeout
        while True:
            status, details = self.status()
            if on_poll:
                on_poll()
            if status.startswith(_FINISHED):
                return f"{status}{': ' + details if details else ''}"
            if time.monotonic() > deadline:
                self.stop()
                raise FederationError(f"Run {self.run_id} on {self.superlink.address} did "
                                      f"not finish within {timeout:g} s (status {status}); "
                                      "it was stopped.")
            time.sleep(poll)
