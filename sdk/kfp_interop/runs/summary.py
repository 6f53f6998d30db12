"""What a local run produced, collected from its run folder into ``summary.json``, and
printed. A failed task's error comes from the ``error.json`` its stage left (see
:mod:`kfp_interop.steps.stage`); only errors raised before a stage ran (an import, a
bad argument to the component itself) are looked up in the run log."""

from __future__ import annotations

import json
import os
from typing import Any

from kfp_interop.constants import ONNX_FILENAME
from kfp_interop.files import atomic_copy, sha256_file
from kfp_interop.metadata import SIDECAR_SUFFIX
from kfp_interop.steps.stage import read_error

__all__ = ["build_summary", "print_summary", "failure_reason"]


def _read_json(path: str) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _artifact(run_dir: str, task: str, name: str) -> dict | None:
    out = _read_json(os.path.join(run_dir, task, "executor_output.json")) or {}
    arts = (out.get("artifacts") or {}).get(name, {}).get("artifacts") or []
    return arts[0] if arts else None


def failure_reason(log_path: str) -> str | None:
    """The last typed error line in the run log (for a task that failed before its
    stage could hand the error over)."""
    try:
        with open(log_path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        s = line.strip()
        if s.startswith("kfp_interop.") and "Error" in s.split(":", 1)[0]:
            return s
    for line in reversed(lines):
        s = line.strip()
        if "Error:" in s or "Exception:" in s:
            return s
    return None


def _task_states(run_dir: str, prefix: str = "") -> dict[str, str]:
    """``{task: succeeded|failed}``; a loop's iterations are folders of tasks (named
    ``<iteration>/<task>``), not tasks."""
    states: dict[str, str] = {}
    for name in sorted(os.listdir(run_dir)):
        path = os.path.join(run_dir, name)
        if not os.path.isdir(path):
            continue
        if os.path.exists(os.path.join(path, "executor_output.json")):
            states[prefix + name] = "succeeded"
            continue
        inner = _task_states(path, f"{prefix}{name}/") if name.startswith("for-loop-") else {}
        states.update(inner or {prefix + name: "failed"})
    return states


def build_summary(name: str, run_dir: str | None, out_dir: str, status: str,
                  params: dict, seconds: float, log_path: str) -> dict[str, Any]:
    """Collect the run's outputs into the summary written as ``summary.json``."""
    summary: dict[str, Any] = {
        "pipeline": name, "status": status, "parameters": params,
        "duration_s": round(seconds, 2), "run_dir": run_dir, "log": log_path,
        "onnx_path": None, "onnx_sha256": None, "metadata_path": None, "model_sha256": None,
        "parity": None, "metrics": None, "endpoint": None, "smoke_test": None,
    }
    if run_dir is None:
        return summary
    summary["tasks"] = _task_states(run_dir)
    failed = [t for t, s in summary["tasks"].items() if s == "failed"]
    if failed:
        summary["failed_task"] = failed[0]
    # the pipeline's headline metrics: the transfer comparison, else the trained model's
    fed = (_artifact(run_dir, "federated-finalize", "model")
           or _artifact(run_dir, "federated-flower", "model"))
    if fed:  # typed, from the model folder (artifact metadata turns ints into floats)
        federated = _federated_block(fed["uri"])
        summary.update(rounds=federated.get("rounds"), clients=federated.get("clients"),
                       strategy=federated.get("strategy"),
                       alpha=(federated.get("partition") or {}).get("alpha"),
                       engine=federated.get("engine", "simulation"), federated=federated)
    for task in ("federated-finalize", "federated-flower", "compare-transfer", "train", "finetune", "train-deep",
                 "warm-start"):
        metrics = _artifact(run_dir, task, "metrics")
        if metrics:
            summary["metrics"] = {k: v for k, v in (metrics.get("metadata") or {}).items()
                                  if not k.startswith("epoch_")}
            break
    onnx = _artifact(run_dir, "export-onnx", "onnx_model")
    if onnx:
        p = dict((onnx.get("metadata") or {}).get("parity") or {})
        p.pop("task", None)
        summary["parity"] = p
    # the served model: attached to a trained one, or an adopted ONNX file
    model = _artifact(run_dir, "attach-metadata", "model") or _artifact(run_dir, "adopt-onnx",
                                                                        "model")
    if model:
        dst = atomic_copy(os.path.join(model["uri"], ONNX_FILENAME),
                          os.path.join(out_dir, ONNX_FILENAME))
        side = atomic_copy(os.path.join(model["uri"], "model" + SIDECAR_SUFFIX),
                           os.path.join(out_dir, "model" + SIDECAR_SUFFIX))
        summary.update(onnx_path=dst, onnx_sha256=sha256_file(dst), metadata_path=side,
                       model_sha256=model["metadata"].get("onnx_sha256"),
                       model_name=model["metadata"].get("model_name"))
        optimization = (_read_json(side) or {}).get("optimization")
        if optimization:
            summary["optimization"] = optimization
    dep = _artifact(run_dir, "deploy", "deployment")
    dep_meta = (dep or {}).get("metadata") or _read_json(
        os.path.join(run_dir, "deploy", "deployment", "deployment.json"))
    if dep_meta:
        summary["endpoint"] = dep_meta.get("endpoint")
        summary["deployment"] = dep_meta
        if dep_meta.get("dry_run"):
            summary["manifest_path"] = dep_meta.get("manifest_path")
    for task, art, key in (("upload-model", "upload", "upload"),
                           ("register-model", "registration", "registration"),
                           ("promote", "promotion", "promotion")):
        found = _artifact(run_dir, task, art)
        if found:
            summary[key] = found.get("metadata")
    smoke = _read_json(os.path.join(run_dir, "smoke-test", "report"))
    if smoke is not None:
        summary["smoke_test"] = smoke
    elif (summary.get("deployment") or {}).get("dry_run") and status == "succeeded":
        summary["smoke_test"] = {"passed": None, "skipped": "dry run"}
    elif "smoke-test" in summary["tasks"] or status == "failed":
        summary["smoke_test"] = {"passed": False, "error": "smoke test did not run"}
    if status == "failed":
        handed_over = read_error(os.path.join(run_dir, failed[0])) if failed else None
        summary["error"] = (f"{handed_over['type']}: {handed_over['message']}" if handed_over
                            else failure_reason(log_path))
    return summary


def print_summary(s: dict[str, Any]) -> None:
    rows = [("pipeline", s["pipeline"]), ("status", s["status"].upper()),
            ("duration", f"{s['duration_s']} s")]
    if s.get("failed_task"):
        rows.append(("failed task", s["failed_task"]))
    if s.get("error"):
        rows.append(("error", s["error"]))
    for k, v in sorted((s.get("metrics") or {}).items()):
        rows.append((f"metric {k}", f"{v:.4f}" if isinstance(v, float) else v))
    if s.get("parity"):
        p = s["parity"]
        rows.append(("parity", f"{'passed' if p.get('passed') else 'FAILED'} max_abs_diff="
                     f"{p.get('max_abs_diff'):.3g} label_agreement={p.get('label_agreement')} "
                     f"tolerance={p.get('tolerance')}"))
    if s.get("optimization"):
        o = s["optimization"]
        size, acc = o["size_bytes"], o["accuracy"]
        latency = o["latency_ms"]
        rows.append(("optimized", f"{o['kind']} (graph {o['graph_level']}): size "
                     f"{size['before']} -> {size['after']} bytes "
                     f"({size['before'] / max(1, size['after']):.2f}x smaller), "
                     f"{acc['metric']} {_num(acc.get('before'))} -> {_num(acc['after'])}, "
                     f"latency at 64 rows {_num(latency['before'].get('rows_64'))} -> "
                     f"{_num(latency['after'].get('rows_64'))} ms"))
    if s.get("onnx_path"):
        rows += [("onnx", s["onnx_path"]), ("onnx sha256", s["onnx_sha256"]),
                 ("metadata", s["metadata_path"])]
    if s.get("upload") and not s["upload"].get("skipped"):
        rows.append(("stored", s["upload"].get("model_uri")))
    if s.get("registration") and not s["registration"].get("skipped"):
        r = s["registration"]
        rows.append(("registered", f"{r.get('name')} v{r.get('version')} @{r.get('alias')} "
                                   f"({r.get('tracking_uri')})"))
    if s.get("promotion") and not s["promotion"].get("skipped"):
        rows.append(("promoted", json.dumps(s["promotion"])))
    if s.get("manifest_path"):
        rows.append(("manifest (dry run)", s["manifest_path"]))
    if s.get("endpoint"):
        rows.append(("endpoint", s["endpoint"] + (" (stopped)" if s.get("server_stopped")
                                                  else " (serving)")))
    elif (s.get("deployment") or {}).get("mode") == "in-task":
        rows.append(("endpoint", "served inside the smoke-test task (stopped with it)"))
    if s.get("smoke_test") and s["smoke_test"].get("skipped"):
        rows.append(("smoke test", f"skipped ({s['smoke_test']['skipped']})"))
    elif s.get("smoke_test"):
        st = s["smoke_test"]
        rows.append(("smoke test", ("passed" if st.get("passed") else "FAILED")
                     + (f" rows={st.get('rows')} max_abs_diff={st.get('max_abs_diff'):.3g}"
                        if st.get("passed") else f" {st.get('error', '')}")))
    width = max(len(k) for k, _ in rows)
    print("-" * 72)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("-" * 72)


def _federated_block(model_dir: str) -> dict[str, Any]:
    """The federated block of a model folder's facts ({} when they cannot be read: the
    summary reports what is there)."""
    from kfp_interop.errors import InvalidInputError
    from kfp_interop.steps.model_dir import read_model_meta

    try:
        return read_model_meta(model_dir).federated or {}
    except InvalidInputError:
        return {}


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"
