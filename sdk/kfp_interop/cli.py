"""The ``kfp-interop`` command line.

    kfp-interop pipelines
    kfp-interop compile NAME [-o FILE]
    kfp-interop run NAME --local [--param KEY=VALUE ...] [--output-dir DIR] [--keep-serving]
    kfp-interop serve MODEL.onnx [--name N] [--host 127.0.0.1] [--port 8080]
    kfp-interop upload MODEL.onnx --to URI [--layout triton|mlserver] [--name N]
    kfp-interop register MODEL.onnx --tracking-uri URI --name N [--alias A]
    kfp-interop deploy MODEL.onnx --target kserve|seldon|seldon-v2|local [--name N]
        [--namespace NS] [--storage-uri URI] [--canary N] [--dry-run] [--output-dir DIR]
    kfp-interop delete --target kserve|seldon|seldon-v2 --name N [--namespace NS]
    kfp-interop metadata show|validate MODEL.onnx
    kfp-interop metadata render --format oip|seldon|mlflow|triton|kfp|markdown MODEL.onnx

Exit codes: 0 success, 1 a pipeline step failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from typing import Any

from kfp_interop.errors import InteropError, InvalidInputError

__all__ = ["main"]

DEFAULT_OUTPUT_DIR = "kfp-interop-output"


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


# -- pipelines / compile -------------------------------------------------------------
def cmd_pipelines(args) -> int:
    from kfp_interop.pipelines import PIPELINES, describe

    width = max(len(n) for n in PIPELINES.names())
    for name in PIPELINES.names():
        print(f"{name:<{width}}  {describe(name)}")
    return 0


def compile_pipeline(name: str, output: str) -> str:
    """Compile a reference pipeline to KFP IR YAML at ``output`` (atomically)."""
    from kfp import compiler

    from kfp_interop.pipelines import load

    func = load(name)
    tmp = output + ".partial.yaml"
    compiler.Compiler().compile(func, tmp)
    os.replace(tmp, output)
    return output


def cmd_compile(args) -> int:
    out = args.output or f"{args.name}.yaml"
    compile_pipeline(args.name, out)
    print(f"Wrote {out}")
    return 0


# -- run ------------------------------------------------------------------------------
def parse_params(func, pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> typed pipeline arguments (by the pipeline's signature)."""
    import inspect

    sig = inspect.signature(getattr(func, "pipeline_func", func))
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInputError(f"--param {pair!r} must look like KEY=VALUE.")
        if key not in sig.parameters:
            raise InvalidInputError(f"Unknown pipeline parameter {key!r}; parameters: "
                                    f"{', '.join(sig.parameters)}.")
        kind = sig.parameters[key].annotation
        try:
            if kind is bool or kind == "bool":
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                params[key] = value.lower() in ("true", "1", "yes")
            elif kind is int or kind == "int":
                params[key] = int(value)
            elif kind is float or kind == "float":
                params[key] = float(value)
            else:
                params[key] = value
        except ValueError:
            raise InvalidInputError(f"--param {key}={value!r} is not a valid "
                                    f"{getattr(kind, '__name__', kind)}.") from None
    return params


class _Progress:
    """stdout stand-in during a local run: everything goes to the run log; task and
    pipeline status lines also go to the terminal (all of it with --verbose)."""

    KEYS = ("Executing task", "finished with status", "Pipeline '", "Pipeline \x1b")

    def __init__(self, log, terminal, verbose: bool):
        self.log, self.terminal, self.verbose = log, terminal, verbose
        self._buf = ""

    def write(self, text: str) -> int:
        self.log.write(text)
        if self.verbose:
            self.terminal.write(text)
            return len(text)
        self._buf += text
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            if any(k in line for k in self.KEYS) and not line.startswith(" "):
                self.terminal.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.log.flush()
        self.terminal.flush()

    def isatty(self) -> bool:
        return False


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


def _failure_reason(log_path: str) -> str | None:
    """The last typed error line a failing task printed."""
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
    tasks = sorted(d for d in os.listdir(run_dir) if os.path.isdir(os.path.join(run_dir, d)))
    summary["tasks"] = {t: ("succeeded" if os.path.exists(os.path.join(
        run_dir, t, "executor_output.json")) else "failed") for t in tasks}
    failed = [t for t, s in summary["tasks"].items() if s == "failed"]
    if failed:
        summary["failed_task"] = failed[0]
    # the pipeline's headline metrics: the transfer comparison, else the trained model's
    for task in ("compare-transfer", "train", "finetune", "train-deep", "warm-start"):
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
    model = _artifact(run_dir, "attach-metadata", "model")
    if model:
        src = os.path.join(model["uri"], "model.onnx")
        dst = os.path.join(out_dir, "model.onnx")
        shutil.copyfile(src, dst + ".partial")
        os.replace(dst + ".partial", dst)
        side = os.path.join(out_dir, "model.metadata.json")
        shutil.copyfile(os.path.join(model["uri"], "model.metadata.json"), side)
        from kfp_interop.native import sha256_file

        summary.update(onnx_path=dst, onnx_sha256=sha256_file(dst), metadata_path=side,
                       model_sha256=model["metadata"].get("onnx_sha256"),
                       model_name=model["metadata"].get("model_name"))
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
    smoke = _read_json(os.path.join(run_dir, "smoke-test", "smoke_report.json"))
    if smoke is not None:
        summary["smoke_test"] = smoke
    elif (summary.get("deployment") or {}).get("dry_run") and status == "succeeded":
        summary["smoke_test"] = {"passed": None, "skipped": "dry run"}
    elif "smoke-test" in summary["tasks"] or status == "failed":
        summary["smoke_test"] = {"passed": False, "error": "smoke test did not run"}
    if status == "failed":
        summary["error"] = _failure_reason(log_path)
    return summary


def _print_summary(s: dict[str, Any]) -> None:
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


def run_local(name: str, params: dict[str, Any], out_dir: str, *, keep_serving: bool = False,
              verbose: bool = False) -> dict[str, Any]:
    """Run a reference pipeline through kfp.local (SubprocessRunner, this environment)
    and write ``out_dir/summary.json``. Returns the summary."""
    from kfp import local

    from kfp_interop.pipelines import load

    func = load(name)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    # Embedded defaults: with no S3 or MLflow configured, a local model repository and a
    # local MLflow store (SQLite; MLflow 3 refuses its plain file store) in out_dir.
    import inspect

    accepted = inspect.signature(getattr(func, "pipeline_func", func)).parameters
    if "storage_uri" in accepted and "storage_uri" not in params:
        params = {**params, "storage_uri": os.path.join(out_dir, "model-repository")}
    if "tracking_uri" in accepted and not params.get("tracking_uri") and \
            not os.environ.get("MLFLOW_TRACKING_URI"):
        params = {**params, "tracking_uri": "sqlite:///" + os.path.join(out_dir, "mlflow.db")}
    for stale in ("summary.json", "model.onnx", "model.metadata.json"):
        if os.path.exists(os.path.join(out_dir, stale)):
            os.remove(os.path.join(out_dir, stale))
    runs_root = os.path.join(out_dir, "runs")
    os.makedirs(runs_root, exist_ok=True)
    before = set(os.listdir(runs_root))
    log_path = os.path.join(out_dir, "run.log")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=runs_root,
               raise_on_error=True)
    print(f"Running pipeline {name!r} locally (log: {log_path})")
    start = time.monotonic()
    status = "succeeded"
    real_stdout = sys.stdout
    import warnings

    with open(log_path, "w") as log, warnings.catch_warnings():
        # kfp.local warns that our image is not a plain Python image and that display
        # names have no local effect: both expected with the SubprocessRunner.
        warnings.filterwarnings("ignore", module=r"kfp\.local")
        sys.stdout = _Progress(log, real_stdout, verbose)
        try:
            func(**params)
        except Exception as e:  # noqa: BLE001 - kfp.local raises RuntimeError on failure
            status = "failed"
            log.write(f"\n{type(e).__name__}: {e}\n")
        finally:
            sys.stdout = real_stdout
    seconds = time.monotonic() - start
    new = sorted(set(os.listdir(runs_root)) - before)
    run_dir = os.path.join(runs_root, new[-1]) if new else None
    summary = build_summary(name, run_dir, out_dir, status, params, seconds, log_path)
    dep = summary.get("deployment")
    if dep and dep.get("target") != "local":
        dep = None  # a cluster deployment stays: that is what it is for
    if dep and not keep_serving:
        from kfp_interop.deploy import undeploy

        undeploy(dep)
        summary["server_stopped"] = True
    elif dep:
        summary["server_stopped"] = False
    tmp = os.path.join(out_dir, "summary.json.partial")
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2, default=str)
    os.replace(tmp, os.path.join(out_dir, "summary.json"))
    return summary


def cmd_run(args) -> int:
    from kfp_interop.pipelines import load

    if not args.local:
        raise InvalidInputError("Only local runs are supported by 'run' (add --local). For a "
                                "cluster, compile the pipeline (kfp-interop compile NAME) and "
                                "upload the YAML in the Kubeflow UI.")
    params = parse_params(load(args.name), args.param)
    summary = run_local(args.name, params, args.output_dir, keep_serving=args.keep_serving,
                        verbose=args.verbose)
    _print_summary(summary)
    print(f"Summary: {os.path.join(os.path.abspath(args.output_dir), 'summary.json')}")
    if summary.get("server_stopped") is False:
        print(f"Serving at {summary['endpoint']} (pid {summary['deployment']['pid']}); "
              f"stop it with: kill {summary['deployment']['pid']}")
    return 0 if summary["status"] == "succeeded" else 1


# -- serve / metadata -----------------------------------------------------------------
def cmd_serve(args) -> int:
    from kfp_interop.serve import serve_forever

    print(f"Serving {args.model} on http://{args.host}:{args.port} (Ctrl-C to stop)")
    serve_forever(args.model, name=args.name, host=args.host, port=args.port)
    return 0


def cmd_metadata(args) -> int:
    from kfp_interop.metadata import load_metadata, verify_onnx_sha256

    if args.action == "validate":
        record = (verify_onnx_sha256(args.model) if not args.model.endswith(".json")
                  else load_metadata(args.model))
        print(f"OK: {args.model} carries a valid schema v{record.schema_version} record for "
              f"{record.name!r} v{record.version}"
              + ("" if args.model.endswith(".json") else " matching its graph") + ".")
        return 0
    record = load_metadata(args.model)
    if args.action == "show":
        print(record.to_json(indent=2))
        return 0
    from kfp_interop.metadata.render import render

    out = render(record, args.format)
    print(out if isinstance(out, str) else json.dumps(out, indent=2))
    return 0


def cmd_upload(args) -> int:
    from kfp_interop.storage import upload

    result = upload(args.model, args.to, layout=args.layout, name=args.name or "",
                    create_bucket=args.create_bucket)
    print(json.dumps({k: result[k] for k in ("model_uri", "layout", "uploaded", "skipped")},
                     indent=2))
    return 0


def cmd_register(args) -> int:
    import contextlib

    from kfp_interop.registry_mlflow import register_model

    with contextlib.redirect_stdout(sys.stderr):  # MLflow's own chatter; stdout = the result
        result = register_model(args.model, tracking_uri=args.tracking_uri,
                                name=args.name or "", alias=args.alias)
    print(json.dumps(result, indent=2))
    return 0


def cmd_deploy(args) -> int:
    from kfp_interop.deploy import deploy

    options: dict[str, Any] = {"name": args.name or "", "dry_run": args.dry_run}
    if args.target == "local":
        if args.dry_run:
            raise InvalidInputError("--dry-run renders Kubernetes manifests; the local target "
                                    "has none (use kfp-interop serve).")
        from kfp_interop.serve import serve_forever

        print(f"Serving {args.model} on http://127.0.0.1:{args.port} (Ctrl-C to stop)")
        serve_forever(args.model, name=args.name, port=args.port)
        return 0
    options.update(namespace=args.namespace, storage_uri=args.storage_uri or "",
                   canary_percent=args.canary, output_dir=args.output_dir,
                   timeout=args.timeout, endpoint=args.endpoint or "")
    if not args.dry_run:
        from kfp_interop.kube import api_client

        options["client"] = api_client(kubeconfig=args.kubeconfig)
    info = deploy(args.target, args.model, **options)
    if not args.dry_run:
        print(json.dumps({k: info.get(k) for k in ("target", "name", "namespace", "endpoint",
                                                    "created", "canary_percent")}, indent=2))
    return 0


def cmd_delete(args) -> int:
    from kfp_interop.deploy import delete
    from kfp_interop.kube import api_client

    gone = delete(args.target, args.name, args.namespace,
                  client=api_client(kubeconfig=args.kubeconfig))
    print(f"{'deleted' if gone else 'not found'}: {args.target} {args.namespace}/{args.name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from kfp_interop import __version__

    p = argparse.ArgumentParser(prog="kfp-interop", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"kfp-interop {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("pipelines", help="list reference pipelines").set_defaults(fn=cmd_pipelines)

    c = sub.add_parser("compile", help="compile a reference pipeline to KFP IR YAML")
    c.add_argument("name")
    c.add_argument("-o", "--output")
    c.set_defaults(fn=cmd_compile)

    r = sub.add_parser("run", help="run a reference pipeline")
    r.add_argument("name")
    r.add_argument("--local", action="store_true", help="run through kfp.local (no cluster)")
    r.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR)
    r.add_argument("--keep-serving", action="store_true",
                   help="leave the local server running after the run")
    r.add_argument("-v", "--verbose", action="store_true", help="show every task's output")
    r.set_defaults(fn=cmd_run)

    s = sub.add_parser("serve", help="serve an ONNX model on a local OIP endpoint")
    s.add_argument("model")
    s.add_argument("--name")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.set_defaults(fn=cmd_serve)

    u = sub.add_parser("upload", help="store a model in a serving runtime's layout")
    u.add_argument("model")
    u.add_argument("--to", required=True, metavar="URI", help="s3://bucket/prefix or a folder")
    u.add_argument("--layout", choices=["triton", "mlserver"], default="triton")
    u.add_argument("--name")
    u.add_argument("--create-bucket", action="store_true")
    u.set_defaults(fn=cmd_upload)

    g = sub.add_parser("register", help="log and register a model in MLflow")
    g.add_argument("model")
    g.add_argument("--tracking-uri", default="")
    g.add_argument("--name")
    g.add_argument("--alias", default="candidate")
    g.set_defaults(fn=cmd_register)

    d = sub.add_parser("deploy", help="deploy to KServe, Seldon or a local server")
    d.add_argument("model")
    d.add_argument("--target", required=True, choices=["kserve", "seldon", "seldon-v2", "local"])
    d.add_argument("--name")
    d.add_argument("--namespace", default="default")
    d.add_argument("--storage-uri")
    d.add_argument("--canary", type=int, default=0, metavar="PERCENT")
    d.add_argument("--dry-run", action="store_true", help="only write DIR/<target>.yaml")
    d.add_argument("--output-dir", default=".")
    d.add_argument("--timeout", type=float, default=600)
    d.add_argument("--endpoint", help="OIP base URL, if not the one in the status")
    d.add_argument("--kubeconfig")
    d.add_argument("--port", type=int, default=8080, help="local target only")
    d.set_defaults(fn=cmd_deploy)

    x = sub.add_parser("delete", help="delete a deployment")
    x.add_argument("--target", required=True, choices=["kserve", "seldon", "seldon-v2"])
    x.add_argument("--name", required=True)
    x.add_argument("--namespace", default="default")
    x.add_argument("--kubeconfig")
    x.set_defaults(fn=cmd_delete)

    m = sub.add_parser("metadata", help="show, validate or render a model's record")
    msub = m.add_subparsers(dest="action", required=True)
    for action in ("show", "validate"):
        a = msub.add_parser(action)
        a.add_argument("model")
    rr = msub.add_parser("render")
    rr.add_argument("--format", required=True,
                    choices=["oip", "seldon", "mlflow", "triton", "kfp", "markdown"])
    rr.add_argument("model")
    m.set_defaults(fn=cmd_metadata)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except InteropError as e:
        _err(str(e))
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
