"""The serving tail every reference pipeline shares, as stages over files: store the
model, register it, deploy it, smoke-test the live endpoint (rolling the deployment back
when it fails), and promote what passed. Each writes a JSON file into its output folder
(``upload.json``, ``registration.json``, ``deployment.json``, the smoke report,
``promotion.json``) and returns what the component puts on its artifact."""

from __future__ import annotations

import json
import os
from typing import Any

from kfp_interop.constants import DEFAULT_TOLERANCE
from kfp_interop.files import atomic_write_json
from kfp_interop.steps.stage import stage

__all__ = ["upload_step", "register_step", "deploy_step", "read_deployment",
           "smoke_test_step", "promote_step", "DEPLOYMENT_FILE"]

DEPLOYMENT_FILE = "deployment.json"
# fields of a deployment too large or too nested for artifact metadata
_NOT_METADATA = ("manifest", "previous", "resource")


@stage("out_dir")
def upload_step(*, model_dir: str, storage_uri: str = "", layout: str = "triton",
                name: str = "", create_bucket: bool = False, dry_run: bool = False,
                out_dir: str) -> tuple[str, dict]:
    """Upload to ``storage_uri`` (``''`` skips: local serving needs no storage; a dry run
    writes nothing and returns the URI as if uploaded).

    Returns:
        ``(storage root or '', artifact metadata)``.
    """
    from kfp_interop.storage import upload

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
def register_step(*, model_dir: str, register: bool = True, tracking_uri: str = "",
                  name: str = "", alias: str = "candidate", out_dir: str) -> dict:
    """Register in MLflow (``register=False`` skips); returns the registration."""
    if not register:
        return {"skipped": True}
    from kfp_interop.model_registry import register_model

    result = register_model(model_dir, tracking_uri=tracking_uri, name=name, alias=alias)
    atomic_write_json(os.path.join(out_dir, "registration.json"), result)
    return result


@stage("out_dir")
def deploy_step(*, model_dir: str, target: str = "local", name: str = "",
                namespace: str = "default", storage_uri: str = "", canary_percent: int = 0,
                dry_run: bool = False, timeout_s: int = 600, endpoint: str = "",
                out_dir: str) -> tuple[dict, dict]:
    """Deploy to ``target``, wait until Ready and confirm the model answers (the target
    rolls back on failure); the deployment goes to ``out_dir/deployment.json``, a dry
    run's manifest beside it.

    Returns:
        ``(deployment, artifact metadata)``.
    """
    from kfp_interop.deploy import deploy

    os.makedirs(out_dir, exist_ok=True)
    info = deploy(target, model_dir, name=name, namespace=namespace, storage_uri=storage_uri,
                  canary_percent=canary_percent, dry_run=dry_run, output_dir=out_dir,
                  timeout=timeout_s, endpoint=endpoint)
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
    try:
        report = smoke_test(info["endpoint"], find_onnx(model_dir), X, tolerance=tolerance,
                            model_name=info.get("model_name"))
    except SmokeTestError as e:
        e.report["rollback"] = rollback(info)
        atomic_write_json(report_path, e.report)
        raise
    atomic_write_json(report_path, report)
    return {key: report[key] for key in ("passed", "max_abs_diff", "rows", "latency_ms")}


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
