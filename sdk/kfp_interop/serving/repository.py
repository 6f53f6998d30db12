"""The models a server holds, and where they come from: one ONNX file, or a Triton-layout
model repository (a folder, or a storage URI such as ``s3://bucket/repo``: the layout
``kfp-interop upload`` writes), with Triton's model control modes and the OIP
repository extension (index, load, unload). Storage stays out of this layer: a URI's
models come through a :class:`RemoteSource` the caller gives (``kfp-interop serve``
gives one that downloads each model folder, checked against its manifest).

Each model folder ``<name>/`` holds ``config.pbtxt`` (parsed with Triton's own schema)
and numeric version folders with ``model.onnx``; the config's ``version_policy`` says
which versions are served (``latest`` N, default 1; ``all``; ``specific``), its
``dynamic_batching`` (with ``max_batch_size``) turns batching on, its parameter
``intra_op_thread_count`` (Triton's onnxruntime backend's) sets ONNX Runtime's threads. A model that fails to
load is reported by name (index, ready, logs) and the others go on.

Loading a model that is already loaded builds the new versions first and swaps them in
at once: a request that already holds the old version finishes on it, the next one gets
the new. Unloading removes the model from the index the same way: requests in flight
finish (their batches drain), new ones are answered 404.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from typing import Any, Callable, Protocol

from kfp_interop.errors import InteropError, ModelLoadError, ModelNotFoundError
from kfp_interop.serving.runtime import Batching, ServedModel

__all__ = ["ModelRepository", "CONTROL_MODES", "is_repository", "RemoteSource"]

log = logging.getLogger("kfp_interop.serving")

#: Triton's names: ``none`` loads every model at start and refuses load/unload;
#: ``explicit`` loads the models named at start (``*``: all) and takes load/unload.
CONTROL_MODES = ("none", "explicit")
CONFIG_FILE = "config.pbtxt"


class RemoteSource(Protocol):
    """A repository at a storage URI, as the server needs it."""

    def names(self) -> list[str]:
        """The model folders (``<name>/config.pbtxt``)."""

    def fetch(self, name: str, dest: str) -> None:
        """Bring the model folder ``name`` to the local folder ``dest`` (whole and
        checked, or not at all)."""


def is_repository(source: str) -> bool:
    """Whether ``source`` is a model repository: a storage URI, or a folder with at least
    one model folder (``<name>/config.pbtxt``) and no ``model.onnx`` of its own."""
    if "://" in source:
        return True
    if not os.path.isdir(source) or os.path.isfile(os.path.join(source, "model.onnx")):
        return False
    return any(os.path.isfile(os.path.join(source, d, CONFIG_FILE))
               for d in os.listdir(source))


class ModelRepository:
    """Models by name and version.

    Args:
        models: models to serve as they are (one ONNX file: no repository to load from).
        source: a repository folder or storage URI to load models from.
        control: ``none`` or ``explicit`` (:data:`CONTROL_MODES`).
        batching: ``None`` = each model's own (config / record), ``False`` = off,
            a :class:`Batching` = that for every model.
        strict_readiness: the server is ready only when no model failed (Triton's
            default); off, it is ready when the loaded models are.
    """

    def __init__(self, models: list[ServedModel] = (), *, source: str = "",
                 control: str = "none", batching: Batching | bool | None = None,
                 threads: int = 1, strict_readiness: bool = True,
                 remote: RemoteSource | None = None):
        if control not in CONTROL_MODES:
            raise ModelLoadError(f"Model control mode {control!r}: use one of "
                                 f"{', '.join(CONTROL_MODES)} (Triton's names).")
        if "://" in source and remote is None:
            raise ModelLoadError(f"{source!r} is a storage URI: serve it with kfp-interop "
                                 "serve (which reads storage), or download it first "
                                 "(kfp-interop download).")
        self.source = source
        self.remote = remote
        self.control = control
        self.batching = batching
        self.threads = threads
        self.strict_readiness = strict_readiness
        self._models: dict[str, dict[str, ServedModel]] = {}
        for m in models:
            self._models.setdefault(m.name, {})[m.version] = m
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()  # one load or unload at a time
        self._cache = tempfile.mkdtemp(prefix="kfp-interop-repo-") if "://" in source else ""
        #: called with the ServedModels a load or unload took out of service
        self.on_retired: Callable[[list[ServedModel]], None] = lambda models: None

    # -- reading ----------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._models)

    def models(self) -> list[ServedModel]:
        return [m for versions in list(self._models.values()) for m in versions.values()]

    def get(self, name: str, version: str | None = None) -> ServedModel:
        """The model version to serve (default: the highest loaded version).

        Raises:
            ModelNotFoundError: no such model (or it failed to load: the reason is
                named), or no such version.
        """
        versions = self._models.get(name)
        if not versions:
            if name in self._failed:
                raise ModelNotFoundError(f"Model {name!r} is not available: it failed to "
                                         f"load ({self._failed[name]}).")
            raise ModelNotFoundError(f"Unknown model {name!r}; this server serves "
                                     f"{self.names()}.")
        if version is None:
            return versions[max(versions, key=_version_key)]
        found = versions.get(version)
        if found is None:
            # a single model loading in the background does not know its version yet
            only = next(iter(versions.values()))
            if len(versions) == 1 and not only.ready and not self.source:
                return only
            raise ModelNotFoundError(f"Model {name!r} has no version {version!r}; it serves "
                                     f"version(s) {sorted(versions, key=_version_key)}.")
        return found

    @property
    def ready(self) -> bool:
        loaded = all(m.ready for m in self.models())
        return loaded and not (self.strict_readiness and self._failed)

    def not_ready(self) -> list[str]:
        """What keeps the server from being ready, by name."""
        waiting = [f"{m.name} (version {m.version}) is loading" if not m.error else
                   f"{m.name} failed: {m.error}" for m in self.models() if not m.ready]
        return waiting + [f"{n} failed to load: {why}" for n, why in self._failed.items()]

    def index(self, ready_only: bool = False) -> list[dict[str, Any]]:
        """The OIP repository index: every model of the source (and every loaded one),
        each version with its state (READY, LOADING, UNAVAILABLE) and a reason."""
        rows = []
        for m in self.models():
            state = "READY" if m.ready else ("UNAVAILABLE" if m.error else "LOADING")
            rows.append({"name": m.name, "version": m.version, "state": state,
                         "reason": m.error or ""})
        known = set(self._models)
        for name, why in self._failed.items():
            rows.append({"name": name, "state": "UNAVAILABLE", "reason": why})
            known.add(name)
        for name in self._source_names() if self.source else []:
            if name not in known:
                rows.append({"name": name, "state": "UNAVAILABLE", "reason": "unloaded"})
        rows.sort(key=lambda r: (r["name"], _version_key(r.get("version", "0"))))
        return [r for r in rows if r["state"] == "READY"] if ready_only else rows

    # -- loading ----------------------------------------------------------------------
    def start(self, names: list[str] | None = None) -> None:
        """Load at start: every model (control ``none``), or ``names`` (``explicit``;
        ``*`` = every model). A model that fails is kept as failed, with its reason."""
        if not self.source:
            return
        wanted = self._source_names() if self.control == "none" or names == ["*"] \
            else list(names or [])
        for name in wanted:
            try:
                self.load(name, _starting=True)
            except InteropError as e:
                log.error("model %s failed to load: %s", name, e)

    def load(self, name: str, *, _starting: bool = False) -> list[ServedModel]:
        """(Re)load ``name`` from the source: its versions by the config's policy, each
        loaded before any is swapped in.

        Raises:
            ModelLoadError: no repository, control mode ``none``, or the model is broken
                (named, with the reason; what was served before stays).
            ModelNotFoundError: the repository has no such model folder.
        """
        if not self.source:
            raise ModelLoadError("This server serves one model file: start it on a model "
                                 "repository (a folder or storage URI) to load and unload "
                                 "models.")
        if self.control == "none" and not _starting:
            raise ModelLoadError("Model control mode is 'none': models are loaded at start "
                                 "only. Start the server with --model-control-mode explicit "
                                 "to load and unload them.")
        with self._lock:
            try:
                folder = self._fetch(name)
                fresh = [m.load() for m in self._versions(name, folder)]
            except ModelNotFoundError:
                raise
            except Exception as e:  # noqa: BLE001 - any failure to load is the model's
                reason = str(e) if isinstance(e, InteropError) else f"{type(e).__name__}: {e}"
                if name not in self._models:
                    self._failed[name] = reason
                raise ModelLoadError(f"Model {name!r} failed to load: {reason}") from e
            retired = list(self._models.get(name, {}).values())
            self._models[name] = {m.version: m for m in fresh}
            self._failed.pop(name, None)
        self.on_retired(retired)
        log.info("model %s loaded: versions %s", name, [m.version for m in fresh])
        return fresh

    def unload(self, name: str) -> None:
        """Take ``name`` out of service; requests already holding it finish.

        Raises:
            ModelLoadError: control mode ``none`` (or no repository).
            ModelNotFoundError: ``name`` is not loaded.
        """
        if not self.source or self.control == "none":
            raise ModelLoadError("Model control mode is 'none' (or this server serves one "
                                 "model file): models cannot be unloaded. Start it on a "
                                 "repository with --model-control-mode explicit.")
        with self._lock:
            retired = self._models.pop(name, None)
            self._failed.pop(name, None)
        if retired is None:
            raise ModelNotFoundError(f"Model {name!r} is not loaded; loaded: {self.names()}.")
        self.on_retired(list(retired.values()))

    def close(self) -> None:
        if self._cache:
            shutil.rmtree(self._cache, ignore_errors=True)

    # -- the source -------------------------------------------------------------------
    def _source_names(self) -> list[str]:
        if self.remote is not None:
            return sorted(self.remote.names())
        return sorted(d for d in os.listdir(self.source)
                      if os.path.isfile(os.path.join(self.source, d, CONFIG_FILE)))

    def _fetch(self, name: str) -> str:
        """The model folder, local (downloaded, every object checked, from a URI)."""
        from kfp_interop.naming import check_name

        check_name(name, "model name")  # a name from a request never walks the tree
        if name not in self._source_names():
            raise ModelNotFoundError(f"The repository {self.source} has no model {name!r}; "
                                     f"it has {self._source_names()}.")
        if self.remote is None:
            return os.path.join(self.source, name)
        dest = os.path.join(self._cache, name)
        self.remote.fetch(name, dest)
        return dest

    def _versions(self, name: str, folder: str) -> list[ServedModel]:
        """The model's versions to serve, by its config (not loaded yet)."""
        from kfp_interop.metadata.importers.triton import parse_config

        path = os.path.join(folder, CONFIG_FILE)
        with open(path, encoding="utf-8") as f:
            config = parse_config(f.read(), f"{name}/{CONFIG_FILE}")
        if config.name and config.name != name:
            raise ModelLoadError(f"its config names the model {config.name!r}, the folder "
                                 f"is {name!r} (Triton refuses it too): rename one.")
        platform = config.platform or ("onnxruntime_onnx" if config.backend == "onnxruntime"
                                       else config.backend)
        if platform != "onnxruntime_onnx":
            raise ModelLoadError(f"its platform is {platform!r}; this server serves "
                                 "onnxruntime_onnx models.")
        model_file = config.default_model_filename or "model.onnx"
        present = sorted((d for d in os.listdir(folder) if d.isdigit() and int(d) > 0
                          and os.path.isfile(os.path.join(folder, d, model_file))),
                         key=int)
        policy = config.version_policy.WhichOneof("policy_choice")
        if policy == "all":
            chosen = present
        elif policy == "specific":
            chosen = [str(v) for v in config.version_policy.specific.versions]
            missing = [v for v in chosen if v not in present]
            if missing:
                raise ModelLoadError(f"its version policy asks for version(s) {missing}, "
                                     f"which hold no {model_file} (present: {present}).")
        else:
            n = config.version_policy.latest.num_versions if policy == "latest" else 1
            chosen = present[-max(1, n):]
        if not chosen:
            raise ModelLoadError(f"no version folder holds {model_file} (e.g. "
                                 f"{name}/1/{model_file}).")
        batching = self.batching
        if batching is None:
            batching = (Batching(int(config.max_batch_size),
                                 int(config.dynamic_batching.max_queue_delay_microseconds),
                                 tuple(int(p) for p in
                                       config.dynamic_batching.preferred_batch_size))
                        if config.max_batch_size > 0 and config.HasField("dynamic_batching")
                        else False)
        threads = self.threads
        if "intra_op_thread_count" in config.parameters:  # Triton's onnxruntime knob
            value = config.parameters["intra_op_thread_count"].string_value
            if not value.isdigit():
                raise ModelLoadError(f"its parameter intra_op_thread_count is {value!r}; "
                                     "a number of threads (0: one per core).")
            threads = int(value)
        return [ServedModel(os.path.join(folder, v, model_file), name, version=v,
                            threads=threads, batching=batching) for v in chosen]


def _version_key(version: str) -> tuple:
    return (0, int(version)) if str(version).isdigit() else (1, str(version))
