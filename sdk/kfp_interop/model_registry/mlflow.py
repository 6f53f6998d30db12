"""The MLflow model registry: log the ONNX model (``mlflow.onnx`` flavor) with a signature
rendered from its record, the record itself as an artifact, its key fields as tags;
register a version; move aliases (``candidate`` on registration, ``champion`` once the
smoke test passed); load back by ``models:/NAME@ALIAS``.

Tracking URI: the argument, else ``$MLFLOW_TRACKING_URI``, else a local SQLite file
(MLflow 3 refuses its plain ``./mlruns`` file store for new work). An HTTP tracking
server is health-checked first, so "MLflow is down" is one clear error before anything
is written. Registration is all-or-nothing: when setting the alias fails, the new
version is deleted again (no half-registered model).
"""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request
from typing import Any

from kfp_interop.errors import InvalidInputError, RegistryError, RegistryUnavailableError

__all__ = ["resolve_tracking_uri", "register_model", "set_alias", "promote", "load_model",
           "DEFAULT_ALIAS", "CHAMPION_ALIAS"]

DEFAULT_ALIAS = "candidate"
CHAMPION_ALIAS = "champion"


def resolve_tracking_uri(tracking_uri: str = "", *, local_dir: str = ".") -> str:
    """The tracking URI to use: the argument, ``$MLFLOW_TRACKING_URI``, else a SQLite file
    in ``local_dir``. User info in it (``http://user:secret@host``) is moved to MLflow's
    own ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` variables (unless they are set), so the
    URI that MLflow prints and kfp-interop returns carries no credentials."""
    from kfp_interop.redaction import split_userinfo

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        os.makedirs(local_dir, exist_ok=True)
        uri = f"sqlite:///{os.path.abspath(os.path.join(local_dir, 'mlflow.db'))}"
    uri, user, password = split_userinfo(uri)
    if user:
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", user)
    if password:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", password)
    return uri


def _check_reachable(uri: str, timeout: float = 5.0) -> None:
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
        raise RegistryUnavailableError(
            f"Cannot reach the MLflow tracking server at {uri} ({e}). Start it, fix "
            "MLFLOW_TRACKING_URI, or run without register.") from e
    if status != 200:
        raise RegistryUnavailableError(f"MLflow at {uri} is unhealthy (HTTP {status}).")


def _client(tracking_uri: str):
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    _check_reachable(tracking_uri)
    _new_sqlite_store(tracking_uri)
    import mlflow

    # MLflow's fluent API (log_model) takes the process-wide URI; set_tracking_uri also
    # writes $MLFLOW_TRACKING_URI, which would send this process's next registration
    # (another local_dir, another store) here: the variable is put back as it was
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    if saved is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = saved
    return mlflow, mlflow.MlflowClient(tracking_uri=tracking_uri)


def _new_sqlite_store(tracking_uri: str) -> None:
    """A SQLite tracking store that does not exist yet starts as a copy of an empty one
    at this MLflow's schema. MLflow builds a new store by running every schema migration
    since its first (some 60 Alembic revisions, about 1.8 s here, in every local run,
    whose store is new); the empty store is built that way once per MLflow version, by
    MLflow's own code, and kept in ``$XDG_CACHE_HOME/kfp-interop`` (``~/.cache``).
    MLflow then opens the copy as any store of its schema: it checks the revision and
    adds its default experiment. Where the cache cannot be written, MLflow migrates as
    before."""
    if not tracking_uri.startswith("sqlite:///"):
        return
    path = tracking_uri[len("sqlite:///"):].split("?", 1)[0]
    if not path or path == ":memory:" or os.path.exists(path):
        return
    template = _empty_sqlite_store()
    if template is None:
        return
    from kfp_interop.files import atomic_copy

    with contextlib.suppress(FileExistsError):  # another task made it meanwhile: theirs
        atomic_copy(template, path, replace=False)


def _empty_sqlite_store() -> str | None:
    """The cached empty store of this MLflow version (made on first use), or None."""
    try:
        import mlflow
        import sqlalchemy
        from mlflow.store.db.utils import _initialize_tables

        from kfp_interop.files import atomic_path

        cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or
                             os.path.join(os.path.expanduser("~"), ".cache"),
                             "kfp-interop", "mlflow")
        path = os.path.join(cache, f"empty-store-{mlflow.__version__}.db")
        if os.path.isfile(path):
            return path
        with atomic_path(path) as tmp:
            engine = sqlalchemy.create_engine(f"sqlite:///{tmp}")
            try:
                _initialize_tables(engine)  # MLflow's own: create, then every migration
            finally:
                engine.dispose()
        return path
    except Exception:  # noqa: BLE001 - no cache (read-only home, another MLflow): MLflow migrates
        return None


def serving_requirements() -> list[str]:
    """What serving a logged ONNX model needs, pinned to this environment's versions:
    exactly what MLflow infers for the onnx flavor (mlflow, numpy, onnx, onnxruntime),
    stated instead of inferred. MLflow's inference starts a Python subprocess that
    imports the model's flavor and maps every imported module to its package: about
    3.5 s of every registration."""
    from kfp_interop.environment import SERVING_PACKAGES, installed_pins

    return [f"{name}=={version}" for name, version in installed_pins(
        (("mlflow", "mlflow-skinny"),) + SERVING_PACKAGES)]


def _check_alias(alias: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,254}", alias or "") or \
            re.fullmatch(r"[vV]\d+", alias) or alias.lower() == "latest":
        raise InvalidInputError(f"Alias {alias!r} is not valid in MLflow: use letters, digits, "
                                "'_' and '-', not 'latest' or 'v<number>'.")


def register_model(model: str, *, tracking_uri: str = "", name: str = "",
                   alias: str = DEFAULT_ALIAS, experiment: str = "kfp-interop",
                   local_dir: str = ".") -> dict[str, Any]:
    """Log and register a model with its record; point ``alias`` at the new version.

    Returns:
        ``{"name", "version", "alias", "model_uri", "run_id", "tracking_uri"}`` where
        ``model_uri`` is ``models:/NAME@ALIAS``.

    Raises:
        RegistryUnavailableError: the tracking server cannot be reached.
        RegistryError: MLflow refused an operation (nothing half-registered is left).
    """
    import onnx

    from kfp_interop.metadata import load_metadata
    from kfp_interop.metadata.render import properties, to_mlflow_signature
    from kfp_interop.onnx_model import find_onnx

    _check_alias(alias)
    path = find_onnx(model)
    record = load_metadata(path)
    name = name or record.name
    uri = resolve_tracking_uri(tracking_uri, local_dir=local_dir)
    mlflow, client = _client(uri)
    from mlflow.exceptions import MlflowException
    from mlflow.models.signature import ModelSignature

    tags = {f"kfp_interop.{k}": v for k, v in properties(record).items()}
    try:
        if uri.startswith("sqlite:///") and client.get_experiment_by_name(experiment) is None:
            # a local store keeps its artifacts beside the database, not in ./mlruns
            client.create_experiment(experiment, artifact_location=os.path.join(
                os.path.dirname(uri[len("sqlite:///"):]), "mlartifacts"))
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name=f"{name}-v{record.version}") as run:
            info = mlflow.onnx.log_model(
                onnx.load(path), name="model", pip_requirements=serving_requirements(),
                signature=ModelSignature.from_dict(to_mlflow_signature(record)),
                # the MLmodel file carries the key facts (metadata import reads them back)
                metadata={**properties(record), "name": name, "version": record.version})
            mlflow.log_dict(record.to_dict(), "inference_metadata.json")
            mlflow.set_tags(tags)
            if record.training:
                mlflow.log_metrics({k: float(v)
                                    for k, v in record.training["metrics"].items()})
        version = mlflow.register_model(info.model_uri, name, tags=tags)
    except MlflowException as e:
        raise RegistryError(f"MLflow at {uri} refused to log or register {name!r}: "
                            f"{e.message}") from e
    try:
        client.set_registered_model_alias(name, alias, version.version)
    except MlflowException as e:
        client.delete_model_version(name, version.version)
        raise RegistryError(f"Could not set alias {alias!r} on {name!r} v{version.version} "
                            f"({e.message}); the version was removed again.") from e
    return {"name": name, "version": str(version.version), "alias": alias,
            "model_uri": f"models:/{name}@{alias}", "run_id": run.info.run_id,
            "tracking_uri": uri}


def set_alias(name: str, alias: str, version: str, *, tracking_uri: str = "") -> None:
    _check_alias(alias)
    _, client = _client(resolve_tracking_uri(tracking_uri))
    from mlflow.exceptions import MlflowException

    try:
        client.set_registered_model_alias(name, alias, version)
    except MlflowException as e:
        raise RegistryError(f"Could not set alias {alias!r} on {name!r} v{version}: "
                            f"{e.message}") from e


def promote(name: str, *, from_alias: str = DEFAULT_ALIAS, to_alias: str = CHAMPION_ALIAS,
            tracking_uri: str = "") -> str:
    """Point ``to_alias`` at the version ``from_alias`` points at; return that version."""
    _, client = _client(resolve_tracking_uri(tracking_uri))
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, from_alias).version
    except MlflowException as e:
        raise RegistryError(f"{name!r} has no alias {from_alias!r}: {e.message}") from e
    set_alias(name, to_alias, str(version), tracking_uri=tracking_uri)
    return str(version)


def load_model(model_uri: str, *, tracking_uri: str = ""):
    """An MLflow pyfunc model from ``models:/NAME@ALIAS`` (or any MLflow model URI)."""
    mlflow, _ = _client(resolve_tracking_uri(tracking_uri))
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.pyfunc.load_model(model_uri)
    except MlflowException as e:
        raise RegistryError(f"Cannot load {model_uri}: {e.message}") from e
