"""The serving tail every reference pipeline shares, as stages over files: store the
model, register it, deploy it, smoke-test the live endpoint (rolling the deployment back
when it fails), and promote what passed. Each writes a JSON file into its output folder
(``upload.json``, ``registration.json``, ``deployment.json``, the smoke report,
``promotion.json``) and returns what the component puts on its artifact."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from kfp_interop.constants import DEFAULT_TOLERANCE
from kfp_interop.files import atomic_write_json
from kfp_interop.steps.stage import stage

__all__ = ["check_settings_step", "serving_options", "upload_model_step", "register_model_step", "deploy_step", "read_deployment",
           "endpoint_smoke_test",
           "smoke_test_step", "promote_step", "DEPLOYMENT_FILE"]

DEPLOYMENT_FILE = "deployment.json"
# fields of a deployment too large or too nested for artifact metadata
_NOT_METADATA = ("manifest", "previous", "resource")


def check_settings_step(*, deploy_target: str, storage_uri: str = "", register: bool = True,
                        tracking_uri: str = "", dry_run: bool = False, runtime: str = "",
                        cpu: str = "", memory: str = "", gpus: int = 0,
                        deploy_options: str = "") -> str:
    """Check the serving settings a pipeline run was started with, where it runs, before
    any work: a run on a cluster that could only fail at its end stops here, naming the
    parameters to set.

    Returns:
        A one-line summary of what the run will do.

    Raises:
        UnknownNameError: an unknown deploy target (the message lists them).
        InvalidInputError: a cluster target without ``storage_uri``; ``register`` with
            no tracking server on a cluster (no ``tracking_uri``, no
            ``MLFLOW_TRACKING_URI`` from the kfp-interop-mlflow Secret).
    """
    from kfp_interop.deploy import DEPLOY_TARGETS
    from kfp_interop.deploy.local import in_kubernetes_pod, serves_in_task
    from kfp_interop.errors import InvalidInputError

    target = DEPLOY_TARGETS.get(deploy_target)
    serving_options(deploy_target, runtime=runtime, cpu=cpu, memory=memory, gpus=gpus,
                    options_json=deploy_options)
    problems = []
    if target.renders_manifests and not dry_run and not storage_uri:
        problems.append(f"deploy_target={deploy_target} serves the model from object "
                        "storage: set storage_uri (e.g. s3://models/repo, with the "
                        "kfp-interop-s3 Secret), or dry_run=true to render the manifests only")
    on_cluster = in_kubernetes_pod()
    if (register and on_cluster and not tracking_uri
            and not os.environ.get("MLFLOW_TRACKING_URI")):
        problems.append("register=true needs an MLflow server: set tracking_uri (e.g. "
                        "http://mlflow.mlflow:5000) or MLFLOW_TRACKING_URI in the "
                        "kfp-interop-mlflow Secret, or register=false")
    if problems:
        raise InvalidInputError("This run cannot finish as started: " + "; ".join(problems)
                                + ".")
    where = "on a cluster" if on_cluster else "locally"
    served = ("served inside the smoke-test task" if target.stops_with_local_run
              and serves_in_task()
              else f"deployed to {deploy_target}" + (" (dry run)" if dry_run else ""))
    return (f"running {where}: model {served}; "
            + ("registered in MLflow" if register else "not registered") + "; "
            + (f"stored under {storage_uri}" if storage_uri else "kept as a KFP artifact"))


@stage("out_dir")
def upload_model_step(*, model_dir: str, storage_uri: str = "", layout: str = "triton",
                name: str = "", create_bucket: bool = False, dry_run: bool = False,
                deploy_target: str = "", deploy_options: str = "",
                out_dir: str) -> tuple[str, dict]:
    """Upload to ``storage_uri`` (``''`` skips: local serving needs no storage; a dry run
    writes nothing and returns the URI as if uploaded). ``layout`` ``''``: the one the
    deploy target reads with its options (``triton`` for a target that reads none).

    Returns:
        ``(storage root or '', artifact metadata)``.
    """
    from kfp_interop.storage import upload

    if not layout:
        from kfp_interop.deploy import DEPLOY_TARGETS

        options = serving_options(deploy_target, options_json=deploy_options) \
            if deploy_target else {}
        layout = (DEPLOY_TARGETS.get(deploy_target).layout(options)
                  if deploy_target else "") or "triton"
    if not storage_uri:
        return "", {"skipped": True}
    if dry_run:
        return storage_uri, {"skipped": True, "dry_run": True, "storage_uri": storage_uri}
    result = upload(model_dir, storage_uri, layout=layout, name=name,
                    create_bucket=create_bucket)
    atomic_write_json(os.path.join(out_dir, "upload.json"), result)
    return storage_uri, {"storage_uri": storage_uri, "model_uri": result["model_uri"],
                         "layout": layout, "objects": result["objects"],
                         "uploaded": len(result["uploaded"]), "skipped": len(result["skipped"])}


@stage("out_dir")
def register_model_step(*, model_dir: str, register: bool = True, tracking_uri: str = "",
                  name: str = "", alias: str = "candidate", out_dir: str) -> dict:
    """Register in MLflow (``register=False`` skips); returns the registration."""
    if not register:
        return {"skipped": True}
    from kfp_interop.model_registry import register_model

    result = register_model(model_dir, tracking_uri=tracking_uri, name=name, alias=alias)
    atomic_write_json(os.path.join(out_dir, "registration.json"), result)
    return result


def serving_options(target: str, *, runtime: str = "", cpu: str = "", memory: str = "",
                    gpus: int = 0, options_json: str = "", **extra) -> dict:
    """The options given for a deploy target's manifest (the pipelines' ``runtime``,
    ``cpu``, ``memory``, ``gpus``, and any other the target declares), checked and typed
    by the target itself; empty values mean the target's defaults. ``options_json``: the
    target's other options as a JSON object (what a pipeline's ``deploy_options`` holds).

    Raises:
        UnknownNameError: an unknown target.
        InvalidInputError / ManifestValidationError: an option the target does not take
            (the message lists those it does), or a bad value.
    """
    import json

    from kfp_interop.deploy import DEPLOY_TARGETS
    from kfp_interop.errors import InvalidInputError

    try:
        parsed = json.loads(options_json) if options_json.strip() else {}
    except ValueError as e:
        raise InvalidInputError(f"deploy_options={options_json!r} is not JSON ({e}): give an "
                                'object, e.g. {"replicas": 2}.') from None
    if not isinstance(parsed, dict) or not all(
            isinstance(v, (str, int, bool)) for v in parsed.values()):
        raise InvalidInputError(f"deploy_options={options_json!r} must be a JSON object of "
                                'option names to strings, numbers or booleans, e.g. '
                                '{"replicas": 2}.')
    given = {k: v for k, v in (("runtime", runtime), ("cpu", cpu), ("memory", memory),
                               ("gpus", gpus), *parsed.items(), *extra.items()) if v}
    return DEPLOY_TARGETS.get(target).check_options(given)


@stage("out_dir")
def deploy_step(*, model_dir: str, target: str = "local", name: str = "",
                namespace: str = "default", storage_uri: str = "", canary_percent: int = 0,
                dry_run: bool = False, timeout_s: int = 600, endpoint: str = "",
                runtime: str = "", cpu: str = "", memory: str = "", gpus: int = 0,
                deploy_options: str = "", out_dir: str) -> tuple[dict, dict]:
    """Deploy to ``target``, wait until Ready and confirm the model answers (the target
    rolls back on failure); the deployment goes to ``out_dir/deployment.json``, a dry
    run's manifest beside it. ``runtime`` (kserve: ``triton`` or ``kfp-interop``),
    ``cpu``, ``memory`` and ``gpus`` go into the manifest when given.

    Returns:
        ``(deployment, artifact metadata)``.
    """
    from kfp_interop.deploy import deploy

    options = serving_options(target, runtime=runtime, cpu=cpu, memory=memory, gpus=gpus,
                              options_json=deploy_options)
    os.makedirs(out_dir, exist_ok=True)
    info = deploy(target, model_dir, name=name, namespace=namespace, storage_uri=storage_uri,
                  canary_percent=canary_percent, dry_run=dry_run, output_dir=out_dir,
                  timeout=timeout_s, endpoint=endpoint, **options)
    atomic_write_json(os.path.join(out_dir, DEPLOYMENT_FILE), info, sort_keys=False)
    return info, {k: v for k, v in info.items() if k not in _NOT_METADATA}


def read_deployment(out_dir: str) -> dict:
    """The deployment :func:`deploy_step` wrote into ``out_dir``."""
    with open(os.path.join(out_dir, DEPLOYMENT_FILE)) as f:
        return json.load(f)


@stage("report_path")
def smoke_test_step(*, deployment_dir: str, model_dir: str, test_path: str | None = None,
                    rows: int = 20, tolerance: float = DEFAULT_TOLERANCE,
                    report_path: str) -> dict:
    """Compare served metadata with the record and served predictions with local ONNX
    Runtime on held-out rows (``test_path``, a split), or on the sample an adopted model
    was run on (``sample.npz`` in its folder); on a mismatch, roll the deployment back
    (what that means is the target's business) and raise. The full report goes to
    ``report_path`` either way.

    Returns:
        The report's headline numbers (``passed``, ``max_abs_diff``, ``rows``,
        ``latency_ms``), or ``{"skipped": True}`` for a dry-run deployment.

    Raises:
        SmokeTestError: a check failed (``.report`` holds the report and the rollback).
    """
    from kfp_interop.deploy import rollback
    from kfp_interop.export.adopt import SAMPLE_FILE, load_tensors
    from kfp_interop.errors import SmokeTestError
    from kfp_interop.onnx_model import find_onnx
    from kfp_interop.serving.smoke import smoke_test

    info = read_deployment(deployment_dir)
    if info.get("dry_run"):
        return {"skipped": True}
    X = (_test_rows(model_dir, test_path, max(1, rows)) if test_path
         else {k: v[:max(1, rows)] for k, v in load_tensors(
             os.path.join(model_dir, SAMPLE_FILE)).items()})
    with _served(info, model_dir) as endpoint:
        try:
            report = smoke_test(endpoint, find_onnx(model_dir), X, tolerance=tolerance,
                                model_name=info.get("model_name"))
        except SmokeTestError as e:
            e.report["rollback"] = rollback(info)
            atomic_write_json(report_path, e.report)
            raise
    report["served"] = info.get("mode") or "deployed"
    atomic_write_json(report_path, report)
    return {key: report[key] for key in ("passed", "max_abs_diff", "rows", "latency_ms")}


@contextlib.contextmanager
def _served(info: dict, model_dir: str):
    """The endpoint to check: the deployment's, or, for a local deployment on a cluster
    (``mode: in-task``, see :mod:`kfp_interop.deploy.local`), a server started here from
    the model and stopped after."""
    from kfp_interop.deploy.local import IN_TASK

    if info.get("mode") != IN_TASK:
        yield info["endpoint"]
        return
    from kfp_interop.onnx_model import find_onnx
    from kfp_interop.serving import start_server, stop_server

    handle = start_server(find_onnx(model_dir), name=info.get("model_name") or None)
    try:
        yield handle.endpoint
    finally:
        stop_server(handle.pid)


def endpoint_smoke_test(url: str, model: str, *, sample: str = "", name: str = "",
                        rows: int = 20, tolerance: float = DEFAULT_TOLERANCE,
                        timeout: float = 30.0) -> dict:
    """The smoke test of any live Open Inference Protocol endpoint (ours, Triton, KServe,
    MLServer) against the ONNX file it should serve (``model``: the file or its folder,
    carrying its record): served metadata vs the record, served predictions vs local ONNX
    Runtime on ``rows`` rows of ``sample`` (CSV/Parquet with the feature columns, or
    ``.npz``/``.npy`` of inputs by name); with no sample, the ``sample.npz`` an adopted
    model keeps beside it, else rows drawn from the record's input tensors (seeded; they
    check agreement, not accuracy). Returns the report (``passed`` true).

    Raises:
        SmokeTestError: a check failed, or the endpoint cannot be reached (``.report``).
        InvalidInputError: a sample that does not fit the model.
    """
    from kfp_interop.errors import InvalidInputError
    from kfp_interop.export.adopt import SAMPLE_FILE, load_tensors
    from kfp_interop.metadata import load_metadata
    from kfp_interop.onnx_model import find_onnx
    from kfp_interop.serving.smoke import smoke_test

    if not url.startswith(("http://", "https://")):
        raise InvalidInputError(f"Endpoint {url!r} is not an http(s) URL: give the server's "
                                "base URL, e.g. http://127.0.0.1:8000.")
    path = find_onnx(model)
    record = load_metadata(path)
    beside = os.path.join(os.path.dirname(path), SAMPLE_FILE)
    n = max(1, rows)
    if sample.endswith((".npz", ".npy")):
        X, where = {k: v[:n] for k, v in load_tensors(sample, record.inputs).items()}, sample
    elif sample:
        X, where = _test_rows(path, sample, n), sample
    elif os.path.isfile(beside):
        X, where = {k: v[:n] for k, v in load_tensors(beside, record.inputs).items()}, beside
    else:
        X, where = _drawn_rows(record.inputs, n), "drawn from the record's inputs"
    import time as _time

    deadline = _time.monotonic() + timeout
    report = smoke_test(url, path, X, tolerance=tolerance, model_name=name or None,
                        timeout=max(1.0, deadline - _time.monotonic()))
    report["sample"] = where
    return report


def _drawn_rows(specs: list[dict], rows: int) -> dict:
    """Seeded rows for each input tensor (numbers ~ N(0, 1), rounded for integer types;
    text: short tokens); dims of -1 take ``rows`` first, then 1."""
    import numpy as np

    rng = np.random.default_rng(0)
    out = {}
    for spec in specs:
        shape, first = [], True
        for d in spec["shape"] or [rows]:
            shape.append(int(d) if d and int(d) > 0 else (rows if first else 1))
            first = False
        if spec["datatype"] == "BYTES":
            out[spec["name"]] = rng.choice(["a", "b", "c"], size=shape).astype(object)
        elif spec["datatype"] == "BOOL":
            out[spec["name"]] = rng.random(shape) > 0.5
        else:
            values = rng.standard_normal(shape)
            out[spec["name"]] = (np.abs(np.round(values)) if spec["datatype"].startswith("U")
                                 else np.round(values) if spec["datatype"].startswith("INT")
                                 else values)
    return out


def _test_rows(model_dir: str, test_path: str, rows: int):
    """The model's inputs from a split, or from any CSV/Parquet with its feature columns."""
    from kfp_interop.data import model_inputs, read_features
    from kfp_interop.metadata import load_metadata
    from kfp_interop.onnx_model import find_onnx

    record = load_metadata(find_onnx(model_dir))
    text = ([i["name"] for i in record.inputs if i["datatype"] == "BYTES"]
            if len(record.inputs) > 1 else [])
    return model_inputs(read_features(test_path, record.feature_names or [], text)[:rows], text)


@stage("out_dir")
def promote_step(*, deployment_dir: str, registration: dict, tracking_uri: str = "",
                 to_alias: str = "champion", out_dir: str) -> dict:
    """After a passing smoke test: give a canary all the traffic and move the registry
    alias to ``to_alias``. Returns what was done (``{"skipped": True}`` if nothing)."""
    from kfp_interop.deploy import promote

    info = read_deployment(deployment_dir)
    done: dict[str, Any] = {}
    promoted = promote(info)
    if promoted.get("promoted"):
        done["traffic"] = 100
    if registration.get("name") and not registration.get("skipped"):
        from kfp_interop.model_registry import promote as promote_alias

        done["alias"] = to_alias
        done["version"] = promote_alias(registration["name"], from_alias=registration["alias"],
                                        to_alias=to_alias,
                                        tracking_uri=tracking_uri or registration.get(
                                            "tracking_uri", ""))
    done = done or {"skipped": True}
    atomic_write_json(os.path.join(out_dir, "promotion.json"), done)
    return done
