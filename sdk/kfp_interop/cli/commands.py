"""The ``kfp-interop`` subcommands: each parses nothing and decides nothing itself, it
calls the library and prints the result."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

from kfp_interop.errors import InvalidInputError

__all__ = ["cmd_submit", "cmd_pipelines", "cmd_frameworks", "cmd_targets", "cmd_compile", "cmd_run",
           "cmd_adopt", "cmd_export", "cmd_validate_repo",
           "cmd_serve", "cmd_metadata", "cmd_optimize", "cmd_upload", "cmd_download", "cmd_register",
           "cmd_deploy",
           "cmd_delete"]


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def cmd_pipelines(args) -> int:
    from kfp_interop.pipelines import PIPELINES, describe

    _table([(name, describe(name)) for name in PIPELINES.names()])
    return 0


def cmd_frameworks(args) -> int:
    from kfp_interop.export import EXPORTERS
    from kfp_interop.frameworks import FRAMEWORKS

    rows = [("name", "family", "native format", "ONNX exporter", "estimators / architectures")]
    for name, fw in FRAMEWORKS.items():
        rows.append((name, fw.family, fw.native_format, "yes" if name in EXPORTERS else "no",
                     ", ".join(fw.choices()) or "-"))
    _table(rows)
    return 0


def cmd_targets(args) -> int:
    from kfp_interop.deploy import DEPLOY_TARGETS

    rows = [("name", "renders manifests", "reads layout", "description")]
    for name, target in DEPLOY_TARGETS.items():
        doc = ((getattr(target, "spec", None) or type(target)).__doc__ or "").strip()
        rows.append((name, "yes" if target.renders_manifests else "no",
                     target.layout() or "-", doc.splitlines()[0] if doc else ""))
    _table(rows)
    print("\noptions (deploy --option KEY=VALUE; cpu, memory, gpus, runtime also as flags):")
    for name, target in DEPLOY_TARGETS.items():
        opts = ", ".join(f"{o.name}={o.default!r}" for o in target.options().values())
        print(f"  {name:<10} {opts or '(none)'}")
    return 0


def _compute(args):
    from kfp_interop.pipelines.common import Compute

    return Compute.parse(cpu=args.cpu, memory=args.memory, accelerator=args.accelerator,
                         claims=getattr(args, "storage_pvc", None) or ())


def cmd_compile(args) -> int:
    from kfp_interop.pipelines import compile_all, compile_pipeline

    if args.all == bool(args.name):
        raise InvalidInputError("Name one pipeline, or pass --all (not both).")
    compute = _compute(args)
    if args.all:
        for path in compile_all(args.output_dir, profile=args.profile, image=args.image,
                                compute=compute, serving_image=args.serving_image):
            print(f"Wrote {path}")
        return 0
    from kfp_interop.cli.params import parse_params
    from kfp_interop.pipelines import load, split_graph_params

    graph, rest = split_graph_params(args.name, args.param)
    defaults = parse_params(load(args.name, graph), rest, require_all=False)
    out = args.output or f"{os.path.basename(args.name.split(':')[-1])}.yaml"
    compile_pipeline(args.name, out, profile=args.profile, image=args.image, compute=compute,
                     graph=graph, defaults=defaults)
    print(f"Wrote {out}")
    return 0


def cmd_submit(args) -> int:
    """Exit 0 when the run started (with --wait: succeeded), 1 when it failed."""
    from kfp_interop.cli.params import parse_params
    from kfp_interop.runs.cluster import submit
    from kfp_interop.errors import PipelineRunError
    from kfp_interop.pipelines import load, split_graph_params

    graph, rest = split_graph_params(args.name, args.param)
    params = parse_params(load(args.name, graph), rest)
    try:
        result = submit(args.name, params, host=args.host, namespace=args.namespace,
                        graph=graph,
                        experiment=args.experiment, run_name=args.run_name,
                        token_file=args.token_file, profile=args.profile, image=args.image,
                        compute=_compute(args), wait=args.wait, timeout=args.timeout)
    except PipelineRunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


def cmd_run(args) -> int:
    from kfp_interop.cli.params import parse_params
    from kfp_interop.runs.summary import print_summary
    from kfp_interop.pipelines import load

    if not args.local:
        raise InvalidInputError("'run' runs on this machine (add --local). For a cluster: "
                                "kfp-interop submit NAME --host URL (or compile NAME and "
                                "upload the YAML in the Kubeflow UI).")
    if args.keep_serving and args.runner == "docker":
        raise InvalidInputError("--keep-serving needs --runner subprocess: with --runner "
                                "docker the model is served inside the smoke-test task's "
                                "container, which ends with it (serve it afterwards with "
                                "kfp-interop serve, or the serving image).")
    if args.image and args.runner != "docker":
        raise InvalidInputError("--image names the tasks' image for --runner docker; the "
                                "subprocess runner uses this environment.")
    from kfp_interop.pipelines import split_graph_params

    graph, rest = split_graph_params(args.name, args.param)
    params = parse_params(load(args.name, graph), rest)
    from kfp_interop.runs.local import run_local

    summary = run_local(args.name, params, args.output_dir, keep_serving=args.keep_serving,
                        profile=args.profile, graph=graph, verbose=args.verbose,
                        runner=args.runner, image=args.image)
    print_summary(summary)
    print(f"Summary: {os.path.join(os.path.abspath(args.output_dir), 'summary.json')}")
    if summary.get("server_stopped") is False:
        print(f"Serving at {summary['endpoint']} (pid {summary['deployment']['pid']}); "
              f"stop it with: kill {summary['deployment']['pid']}")
    return 0 if summary["status"] == "succeeded" else 1


def cmd_adopt(args) -> int:
    from kfp_interop.steps import adopt_onnx_step

    record = adopt_onnx_step(model_path=args.model, name=args.name, version=args.version,
                        task=args.task, labels=args.labels, sample_path=args.sample,
                        expected_path=args.expected, tolerance=args.tolerance,
                        dynamic_batch=args.dynamic_batch, out_dir=args.output_dir)
    print(json.dumps({"model": os.path.join(args.output_dir, "model.onnx"),
                      "name": record.name, "task": record.task,
                      "inputs": record.inputs, "outputs": record.outputs,
                      "checks": record.checks, "parity": record.parity}, indent=2))
    return 0


def cmd_export(args) -> int:
    from kfp_interop.steps import export_file_step

    record = export_file_step(
        model_path=args.model, framework=args.framework, sample_path=args.sample,
        target_column=args.target_column, task=args.task, labels=args.labels,
        architecture=args.architecture,
        init_args=args.init_args,
        trusted_types=args.trusted_types, name=args.name, version=args.version,
        opset=args.opset, tolerance=args.tolerance, out_dir=args.output_dir)
    print(json.dumps({"model": os.path.join(args.output_dir, "model.onnx"),
                      "name": record.name, "task": record.task,
                      "framework": record.framework, "origin": record.origin,
                      "inputs": record.inputs, "outputs": record.outputs,
                      "class_labels": record.class_labels, "parity": record.parity},
                     indent=2))
    return 0


def cmd_serve(args) -> int:
    from kfp_interop.serving.__main__ import serve_from_args
    from kfp_interop.steps.serving_source import remote_source

    print(f"Serving {args.model} on http://{args.host}:{args.port}"
          + (f" and gRPC {args.host}:{args.grpc_port}" if args.grpc_port else "")
          + " (Ctrl-C to stop)")
    serve_from_args(args, remote=remote_source(args.model))
    return 0


def cmd_smoke_test(args) -> int:
    """Exit 0 when every check passed; 1 with the report when one failed."""
    import json

    from kfp_interop.errors import SmokeTestError
    from kfp_interop.steps import endpoint_smoke_test

    try:
        report = endpoint_smoke_test(args.url, args.model, sample=args.sample, name=args.name,
                                     rows=args.rows, tolerance=args.tolerance,
                                     timeout=args.timeout)
    except SmokeTestError as e:
        print(json.dumps(e.report, indent=2, default=str) if args.json else
              f"FAILED: {e}\n" + _checks(e.report))
        return 1
    print(json.dumps(report, indent=2, default=str) if args.json else
          f"PASSED: {report['model']!r} at {report['endpoint']} ({report['rows']} rows, "
          f"{report['sample']}; max |diff| {report['max_abs_diff']:.3g}, "
          f"{report['latency_ms']} ms)\n" + _checks(report))
    return 0


def _checks(report: dict) -> str:
    return "\n".join(f"  {name:<10} {'passed' if c.get('passed') else 'FAILED'}"
                     + (f"  {c.get('mismatched') or c.get('problems')}"
                        if not c.get("passed") else "")
                     for name, c in report.get("checks", {}).items())


def cmd_metadata(args) -> int:
    from kfp_interop.metadata import load_metadata, verify_onnx_sha256

    if args.action == "import":
        from kfp_interop.steps import import_metadata_step

        record = import_metadata_step(path=args.model, dialect=args.dialect,
                                      onnx_path=args.onnx, name=args.name,
                                      version=args.version, task=args.task,
                                      labels=args.labels, out_dir=args.output_dir)
        print(record.to_json(indent=2))
        return 0
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

    from kfp_interop.metadata.render import Files

    out = render(record, args.format)
    if args.output_dir:
        from kfp_interop.files import atomic_write

        texts = (out.texts() if isinstance(out, Files) else
                 {f"{args.format}.{'txt' if isinstance(out, str) else 'json'}":
                  out if isinstance(out, str) else json.dumps(out, indent=2) + "\n"})
        os.makedirs(args.output_dir, exist_ok=True)
        for name, text in texts.items():
            atomic_write(os.path.join(args.output_dir, name), text)
        print(json.dumps({"written": [os.path.join(args.output_dir, n) for n in texts]}))
        return 0
    print(out if isinstance(out, str) else json.dumps(out, indent=2))
    return 0


def cmd_optimize(args) -> int:
    from kfp_interop.steps import optimize_step

    record, report = optimize_step(model_path=args.model, sample_path=args.sample,
                                   graph_level=args.graph_level, quantize=args.quantize,
                                   max_accuracy_drop=args.max_accuracy_drop,
                                   dynamic_batch=args.dynamic_batch,
                                   out_dir=args.output_dir)
    print(json.dumps({"model": os.path.join(args.output_dir, "model.onnx"),
                      "onnx_sha256": record.model["onnx_sha256"], **report}, indent=2))
    return 0


def cmd_upload(args) -> int:
    from kfp_interop.storage import upload

    result = upload(args.model, args.to, layout=args.layout, name=args.name or "",
                    version=args.version, create_bucket=args.create_bucket)
    print(json.dumps({k: result[k] for k in ("model_uri", "layout", "uploaded", "skipped")},
                     indent=2))
    return 0


def cmd_download(args) -> int:
    from kfp_interop.storage import download

    result = download(args.uri, args.to)
    print(json.dumps({"uri": result["uri"], "dest": result["dest"],
                      "objects": sorted(result["objects"])}, indent=2))
    return 0


def cmd_validate_repo(args) -> int:
    """Exit 0 when every model would load, 1 when there are problems (each named)."""
    from kfp_interop.storage import validate_repository

    report = validate_repository(args.root)
    problems = report["problems"]
    if args.json:
        print(json.dumps({**report, "problems": [vars(p) for p in problems]}, indent=2))
    else:
        for name, info in report["models"].items():
            print(f"{name}: versions {', '.join(info['versions']) or 'none'}"
                  + (", manifest" if info.get("manifest") else ""))
        for problem in problems:
            print(f"PROBLEM {problem}")
        print(f"{len(report['models'])} model(s), {len(problems)} problem(s) in {args.root}.")
    return 1 if problems else 0


def cmd_register(args) -> int:
    from kfp_interop.model_registry import register_model

    with contextlib.redirect_stdout(sys.stderr):  # MLflow's own chatter; stdout = the result
        result = register_model(args.model, tracking_uri=args.tracking_uri,
                                name=args.name or "", alias=args.alias)
    print(json.dumps(result, indent=2))
    return 0


def cmd_deploy(args) -> int:
    from kfp_interop.deploy import DEPLOY_TARGETS

    from kfp_interop.steps.release import serving_options

    target = DEPLOY_TARGETS.get(args.target)
    extra = {}
    for pair in args.option:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--option {pair!r} must look like KEY=VALUE.")
        extra[key] = value
    compute = serving_options(args.target, runtime=args.runtime, cpu=args.cpu,
                              memory=args.memory, gpus=args.gpus, **extra)
    if args.dry_run and not target.renders_manifests:
        raise InvalidInputError(f"--dry-run renders manifests; the {args.target!r} target "
                                "has none.")
    options: dict[str, Any] = dict(
        name=args.name or "", namespace=args.namespace, storage_uri=args.storage_uri or "",
        canary_percent=args.canary, dry_run=args.dry_run, output_dir=args.output_dir,
        timeout=args.timeout, endpoint=args.endpoint or "", port=args.port,
        kubeconfig=args.kubeconfig, **compute)
    info = target.deploy(args.model, **options)
    if not args.dry_run:
        print(json.dumps({k: info.get(k) for k in ("target", "name", "namespace", "endpoint",
                                                    "created", "canary_percent", "pid")
                          if k in info}, indent=2))
    return 0


def cmd_dask_cluster(args) -> int:
    """The DaskCluster manifest a dask_cluster=operator task creates, for review (a dry
    run: nothing is created)."""
    import yaml

    from kfp_interop._version import __version__
    from kfp_interop.constants import IMAGE_REPOSITORY
    from kfp_interop.deploy.dask_operator import render_dask_cluster
    from kfp_interop.steps.tabular import DASK_POD_SECRETS

    manifest = render_dask_cluster(args.name, namespace=args.namespace,
                                   image=args.image or f"{IMAGE_REPOSITORY}:{__version__}",
                                   workers=args.workers, cpu=args.cpu, memory=args.memory,
                                   secrets=DASK_POD_SECRETS)
    text = yaml.safe_dump(manifest, sort_keys=False)
    if args.output:
        from kfp_interop.files import atomic_write

        atomic_write(args.output, text)
        print(f"wrote {args.output} (valid against the DaskCluster CRD schema)")
    else:
        print(text, end="")
    return 0


def cmd_federation(args) -> int:
    """Start or stop a federation on this machine (kfp_interop.flower.local_federation)."""
    from kfp_interop.flower.local_federation import down, up

    if args.action == "down":
        for name in down(args.dir, node=args.node):
            print(f"stopped {name}")
        return 0
    state = up(args.dir, nodes=args.nodes, dataset=args.dataset,
               target_column=args.target_column, partition=args.partition, alpha=args.alpha,
               seed=args.seed, test_size=args.test_size, tls=args.tls,
               results=args.results)
    for node in state["nodes"]:
        print(f"node-{node['node']}  {node['rows']} rows  {node['data_path']}")
    tls = state["tls"]
    print(f"SuperLink {state['superlink']} ("
          + (f"TLS, CA certificate {state['ca_certificate']}" if tls else "insecure")
          + f", 127.0.0.1); stop with: kfp-interop federation down --dir {args.dir}\n"
          "Run the pipeline on it:\n"
          + (f"  export KFP_INTEROP_SUPERLINK_CA=\"$(cat {state['ca_certificate']})\"\n"
             if tls else "")
          + f"  kfp-interop run federated-learning --local --param engine=deployment "
          f"--param clients={len(state['nodes'])} --param superlink={state['superlink']} "
          + ("" if tls else "--param superlink_insecure=true ")
          + f"--param federation_results={state['results']} "
          f"--param dataset={state['eval_data']} "
          f"--param target_column={state['target_column']}")
    return 0


def cmd_delete(args) -> int:
    from kfp_interop.deploy import delete

    gone = delete(args.target, args.name, args.namespace, kubeconfig=args.kubeconfig)
    print(f"{'deleted' if gone else 'not found'}: {args.target} {args.namespace}/{args.name}")
    return 0
