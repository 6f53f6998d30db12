"""Deploy targets, by name: ``local`` (a detached local OIP server), ``kserve``,
``seldon`` and ``seldon-v2`` (Kubernetes custom resources, see :mod:`kfp_interop.targets`).

The Kubernetes flow, :func:`deploy_kubernetes`:

1. render the manifest from the model's record and validate it (admission rules always;
   the CRD's JSON Schema when ``$KFP_INTEROP_CRD_SCHEMAS`` names a folder of them);
2. dry run: write ``<output_dir>/<target>.yaml``, print it, stop;
3. apply with the official ``kubernetes`` client: create, or patch when it exists;
4. wait for Ready from the real status (fail fast on a reported failure);
5. do not trust Ready alone: the endpoint must answer ``/v2/models/{name}/ready`` and its
   metadata must match the record;
6. on a timeout or a wrong answer, roll back (delete what was created, or restore the
   previous spec) and raise.

:func:`rollback`, :func:`promote` (canary -> 100 %) and :func:`delete` act on the dict
that :func:`deploy` returns.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from typing import Any, Callable

from kfp_interop.errors import (DeployError, DeployTimeoutError, InvalidInputError,
                                SmokeTestError)
from kfp_interop.registry import Registry
from kfp_interop.steps import ONNX_FILENAME

__all__ = ["DEPLOY_TARGETS", "ONNX_FILENAME", "deploy", "deploy_local", "deploy_kubernetes",
           "undeploy", "rollback", "promote", "delete", "model_file", "render_manifest",
           "merge_patch"]

DEPLOY_TARGETS: Registry[Callable[..., dict]] = Registry(
    "deploy target", "Add one with kfp_interop.deploy.DEPLOY_TARGETS.register(name, fn).")


def model_file(model: str) -> str:
    """The ONNX file of a model artifact directory (or the file itself)."""
    path = os.path.join(model, ONNX_FILENAME) if os.path.isdir(model) else model
    if not os.path.isfile(path):
        raise InvalidInputError(f"No ONNX model at {path!r}: pass an ONNX file or a model "
                                f"directory holding {ONNX_FILENAME}.")
    return path


# -- local ----------------------------------------------------------------------------
def deploy_local(model: str, *, name: str = "", host: str = "127.0.0.1", port: int = 0,
                 log_path: str | None = None, timeout: float = 60.0, dry_run: bool = False,
                 **_: Any) -> dict:
    """Serve the model on a local OIP endpoint (a detached process) and wait until ready."""
    from kfp_interop.serve import start_server

    if dry_run:
        return {"target": "local", "dry_run": True, "model_name": name, "endpoint": None}
    handle = start_server(model_file(model), name=name or None, host=host, port=port,
                          log_path=log_path, timeout=timeout)
    return {"target": "local", "endpoint": handle.endpoint, "model_name": handle.model_name,
            "pid": handle.pid, "log_path": log_path}


# -- Kubernetes -----------------------------------------------------------------------
def _crd_schema(kind: str, version: str) -> dict | None:
    folder = os.environ.get("KFP_INTEROP_CRD_SCHEMAS")
    if not folder:
        return None
    for fname in (f"{kind}-{version}.strict.json", f"{kind}-{version}.json"):
        path = os.path.join(folder, fname)
        if os.path.isfile(path):
            with open(path) as f:
                return json.load(f)
    return None


def render_manifest(target: str, model: str | None = None, *, name: str = "",
                    namespace: str = "default", storage_uri: str = "",
                    canary_percent: int = 0, record=None, **options: Any):
    """(spec, manifest) for ``target``; name and sha256 default to the model's record
    (``record``, or read from ``model``)."""
    from kfp_interop.targets import TARGET_SPECS, validate_manifest

    if target not in TARGET_SPECS:
        DEPLOY_TARGETS.get(target)  # unknown: the registry's error lists the targets
        raise InvalidInputError(f"Target {target!r} has no manifest.")
    sha = ""
    if record is None and model:
        from kfp_interop.metadata import load_metadata

        record = load_metadata(model_file(model))
    if record is not None:
        name = name or record.name
        sha = record.model["onnx_sha256"]
    spec_cls = TARGET_SPECS[target]
    takes_folder = target == "seldon-v2" or options.get("implementation") == "MLFLOW_SERVER"
    if takes_folder and storage_uri and name and \
            not storage_uri.rstrip("/").endswith("/" + name):
        # storage_uri is the repository root everywhere; a Seldon v2 Model and an MLflow
        # server take the model folder itself
        storage_uri = f"{storage_uri.rstrip('/')}/{name}"
    fields = {f for f in spec_cls.__dataclass_fields__}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise InvalidInputError(f"Option(s) {unknown} do not apply to target {target!r}.")
    spec = spec_cls(name=name, namespace=namespace, storage_uri=storage_uri,
                    canary_percent=canary_percent, onnx_sha256=sha, **options)
    manifest = spec.to_manifest()
    validate_manifest(manifest, _crd_schema(spec.resource.kind, spec.resource.version))
    return spec, manifest


def _write_yaml(manifest: dict, path: str) -> str:
    import yaml

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".partial", "w") as f:
        yaml.safe_dump(manifest, f, sort_keys=False)
    os.replace(path + ".partial", path)
    return path


def _confirm_answers(endpoint: str, name: str, record, timeout: float,
                     headers: dict | None = None) -> None:
    """The endpoint serves *this* model: ready, and metadata equal to the record."""
    from kfp_interop.smoke import http_json

    end = time.monotonic() + timeout
    last = ""
    while True:
        try:
            status, body = http_json("GET", f"{endpoint}/v2/models/{name}/ready", timeout=5,
                                     headers=headers)
            if status == 200:
                break
            last = f"answered {status}: {body}"
        except SmokeTestError as e:
            last = str(e)
        if time.monotonic() > end:
            raise DeployError(f"{endpoint} reports Ready but model {name!r} does not answer "
                              f"({last}).")
        time.sleep(1)
    if record is not None:
        status, meta = http_json("GET", f"{endpoint}/v2/models/{name}", timeout=5,
                                 headers=headers)
        if status != 200 or not isinstance(meta, dict):
            raise DeployError(f"{endpoint}: model metadata answered {status}: {meta}")
        diffs = [k for k in ("inputs", "outputs") if meta.get(k) != getattr(record, k)]
        if diffs:
            raise DeployError(f"{endpoint} serves a model {name!r} whose {diffs} differ from "
                              "the record: another model is behind this name.")


def deploy_kubernetes(target: str, model: str | None, *, name: str = "",
                      namespace: str = "default", storage_uri: str = "",
                      canary_percent: int = 0, dry_run: bool = False,
                      output_dir: str | None = None, timeout: float = 300.0,
                      poll: float = 2.0, client=None, endpoint: str = "",
                      answer_timeout: float = 60.0, log: Callable[[str], None] = print,
                      **options: Any) -> dict:
    """Render, validate, (dry run or) apply, wait for Ready, confirm, roll back on failure.

    Args:
        target: ``kserve``, ``seldon`` or ``seldon-v2``.
        model: the model folder or ONNX file with its record.
        storage_uri: where the model was uploaded (see :mod:`kfp_interop.storage`).
        canary_percent: 0, or the share of traffic the new version gets.
        dry_run: only write ``<output_dir>/<target>.yaml`` (no cluster needed).
        client: a ``kubernetes.client.ApiClient`` (default: in-cluster or kubeconfig).
        endpoint: override the OIP base URL read from the status (e.g. an ingress).
        options: target-specific spec fields (service_account, implementation, cpu, ...).

    Returns:
        The deployment: target, name, namespace, endpoint, manifest, created, previous,
        canary_percent, manifest_path (dry run).

    Raises:
        ManifestValidationError, KubernetesPermissionError (403), KubernetesNotFoundError
        (404), KubernetesAPIError, DeployTimeoutError, DeployError.
    """
    from kfp_interop.targets import TARGET_SPECS, SeldonSpec

    spec_cls = TARGET_SPECS.get(target)
    record = None
    if model:
        from kfp_interop.metadata import load_metadata

        record = load_metadata(model_file(model))
    api = None
    if spec_cls is SeldonSpec and canary_percent and not dry_run \
            and "stable_storage_uri" not in options:
        api = _api(client)
        current = api.get(spec_cls.resource, namespace, name or record.name)
        if current:
            options["stable_storage_uri"] = \
                current["spec"]["predictors"][0]["graph"]["modelUri"]
    spec, manifest = render_manifest(target, name=name, namespace=namespace,
                                     storage_uri=storage_uri, canary_percent=canary_percent,
                                     record=record, **options)
    info: dict[str, Any] = {"target": target, "name": spec.name, "model_name": spec.name,
                            "namespace": namespace, "canary_percent": canary_percent,
                            "manifest": manifest, "resource": dataclasses.asdict(spec.resource)}
    if dry_run:
        path = _write_yaml(manifest, os.path.join(output_dir or ".", f"{target}.yaml"))
        import yaml

        log(f"# dry run: {target} manifest written to {path}\n"
            + yaml.safe_dump(manifest, sort_keys=False))
        info.update(dry_run=True, manifest_path=path, endpoint=None)
        return info
    api = api or _api(client)
    res = spec.resource
    previous = api.get(res, namespace, spec.name)
    if previous is None:
        from kfp_interop.errors import KubernetesAPIError

        try:
            api.create(res, namespace, manifest)
            info["created"] = True
        except KubernetesAPIError as e:
            if e.status != 409:
                raise
            previous = api.get(res, namespace, spec.name)  # created meanwhile: patch it
            if previous is None:
                raise KubernetesAPIError(f"Conflict creating {res.kind} {namespace}/"
                                         f"{spec.name} ({e}), yet it does not exist; retry "
                                         "the deployment.", 409) from e
    if previous is not None:
        patch = {"metadata": {"labels": manifest["metadata"]["labels"],
                              "annotations": manifest["metadata"].get("annotations", {})},
                 "spec": manifest["spec"]}
        if target == "kserve" and not canary_percent:
            patch["spec"]["predictor"] = {**manifest["spec"]["predictor"],
                                          "canaryTrafficPercent": None}
        api.patch(res, namespace, spec.name, patch)
        info.update(created=False, previous=_clean(previous))
    log(f"{'created' if info['created'] else 'patched'} {res.kind} {namespace}/{spec.name}")
    try:
        obj = _wait_ready(api, spec, namespace, timeout, poll)
        info["endpoint"] = (endpoint or spec.endpoint(obj) or "").rstrip("/")
        if not info["endpoint"]:
            raise DeployError(f"{res.kind} {spec.name!r} is Ready but reports no URL; pass "
                              "the inference endpoint explicitly.")
        headers = {"Seldon-Model": spec.name} if target == "seldon-v2" else None
        _confirm_answers(info["endpoint"], spec.name, record, answer_timeout, headers)
    except DeployError as e:
        action = rollback(info, client=api)
        e.args = (f"{e} Rolled back: {action}.",)
        e.deployment = info
        raise
    log(f"{res.kind} {namespace}/{spec.name} is Ready and answers at {info['endpoint']}")
    return info


def _clean(obj: dict) -> dict:
    """An object as it can be written back: no status, no server-set metadata."""
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    meta = obj.get("metadata", {})
    for key in ("resourceVersion", "uid", "generation", "creationTimestamp",
                "managedFields", "selfLink"):
        meta.pop(key, None)
    return obj


def _wait_ready(api, spec, namespace: str, timeout: float, poll: float) -> dict:
    end = time.monotonic() + timeout
    while True:
        obj = api.get(spec.resource, namespace, spec.name) or {}
        ready, failure = spec.readiness(obj)
        if ready:
            return obj
        if failure:
            raise DeployError(f"{spec.resource.kind} {namespace}/{spec.name}: {failure}")
        if time.monotonic() >= end:
            raise DeployTimeoutError(
                f"{spec.resource.kind} {namespace}/{spec.name} was not Ready within "
                f"{timeout:g} s (status: {json.dumps(obj.get('status') or {})[:300]}).")
        time.sleep(poll)


def _resource(info: dict):
    from kfp_interop.kube import Resource

    return Resource(**info["resource"])


def _api(client):
    from kfp_interop.kube import CustomObjects

    return client if isinstance(client, CustomObjects) else CustomObjects(client)


def rollback(info: dict, *, client=None) -> str:
    """Undo a deployment: delete what it created, or restore the previous spec."""
    api = _api(client)
    res = _resource(info)
    if info.get("created"):
        api.delete(res, info["namespace"], info["name"])
        return f"deleted the new {res.kind} {info['namespace']}/{info['name']}"
    previous = info.get("previous")
    if previous:
        current = _clean(api.get(res, info["namespace"], info["name"]) or {})
        patch = merge_patch(current.get("spec") or {}, previous.get("spec") or {})
        if patch:
            api.patch(res, info["namespace"], info["name"], {"spec": patch})
        return f"restored the previous spec of {res.kind} {info['namespace']}/{info['name']}"
    return "nothing to roll back"


def merge_patch(current: dict, wanted: dict) -> dict:
    """The RFC 7386 JSON merge patch that turns ``current`` into ``wanted`` (keys only in
    ``current`` become null, i.e. removed; lists are replaced whole)."""
    patch: dict = {}
    for key in current.keys() - wanted.keys():
        patch[key] = None
    for key, value in wanted.items():
        old = current.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            sub = merge_patch(old, value)
            if sub:
                patch[key] = sub
        elif value != old:
            patch[key] = copy.deepcopy(value)
    return patch


def promote(info: dict, *, client=None) -> dict:
    """Give a canary all the traffic (after its smoke test passed)."""
    from kfp_interop.targets import TARGET_SPECS

    if not info.get("canary_percent"):
        return info
    spec_cls = TARGET_SPECS[info["target"]]
    manifest = info["manifest"]
    if info["target"] == "kserve":
        patch = {"spec": {"predictor": {"canaryTrafficPercent": 100}}}
    else:
        canary = manifest["spec"]["predictors"][-1]
        patch = {"spec": {"protocol": "v2", "predictors": [
            {**canary, "name": "default", "traffic": 100}]}}
    _api(client).patch(spec_cls.resource, info["namespace"], info["name"], patch)
    return {**info, "canary_percent": 0, "promoted": True}


def delete(target: str, name: str, namespace: str = "default", *, client=None) -> bool:
    """Delete a deployment; ``False`` when it did not exist."""
    from kfp_interop.targets import TARGET_SPECS, check_name

    check_name(name)
    if target not in TARGET_SPECS:
        DEPLOY_TARGETS.get(target)
    return _api(client).delete(TARGET_SPECS[target].resource, namespace, name)


for _target in ("kserve", "seldon", "seldon-v2"):
    DEPLOY_TARGETS.register(_target, lambda model, _t=_target, **kw: deploy_kubernetes(
        _t, model, **kw))
DEPLOY_TARGETS.register("local", deploy_local)


def deploy(target: str, model: str, **options: Any) -> dict:
    """Deploy ``model`` (ONNX file or model directory) to ``target``."""
    return DEPLOY_TARGETS.get(target)(model, **options)


def undeploy(deployment: dict, *, client=None) -> bool:
    """Stop what :func:`deploy` started (local: the server; Kubernetes: the object)."""
    if deployment.get("target") == "local":
        if deployment.get("pid"):
            from kfp_interop.serve import stop_server

            return stop_server(int(deployment["pid"]))
        return False
    if deployment.get("dry_run"):
        return False
    return delete(deployment["target"], deployment["name"], deployment["namespace"],
                  client=client)
