"""The ``kfp-interop`` argument parser. Every choice list is read from a registry (deploy
targets, storage layouts, metadata formats), so an extension shows up here by itself."""

from __future__ import annotations

import argparse

from kfp_interop.cli import commands
from kfp_interop.constants import DEFAULT_OPSET, DEFAULT_TOLERANCE
from kfp_interop.runs import DEFAULT_OUTPUT_DIR

__all__ = ["build_parser", "DEFAULT_OUTPUT_DIR"]

USAGE = """\
    kfp-interop pipelines | frameworks | targets
    kfp-interop compile NAME [-o FILE] [--profile cluster|local] [--image REF]
    kfp-interop compile --all [--output-dir D]
    kfp-interop submit NAME --host URL [--namespace NS] [--experiment E] [--run-name R]
        [--param KEY=VALUE ...] [--wait] [--token-file F]
    kfp-interop run NAME --local [--param KEY=VALUE ...] [--output-dir DIR] [--keep-serving]
    kfp-interop export MODEL --framework F --sample DATA [--target-column C]
        [--architecture module:Class --init-args JSON] [--labels a,b] [--output-dir DIR]
    kfp-interop adopt MODEL.onnx [--name N] [--task T] [--labels a,b] [--sample S.npz]
        [--expected E.npz] [--output-dir DIR]
    kfp-interop optimize MODEL.onnx [--sample S.npz] [--graph-level basic|extended|none]
        [--quantize none|int8-dynamic|int8-static|fp16] [--max-accuracy-drop D]
        [--output-dir OUT]
    kfp-interop serve MODEL.onnx|REPOSITORY [--name N] [--host 127.0.0.1] [--port 8080]
        [--grpc-port P] [--max-batch-size B [--max-queue-delay-us D]]
        [--model-control-mode none|explicit [--load-model NAME ...]]
    kfp-interop upload MODEL.onnx --to URI [--layout LAYOUT] [--name N] [--version V]
    kfp-interop download MODEL_URI --to DIR   (a model folder uploaded by upload)
    kfp-interop validate-repo ROOT   (a folder or a storage URI; Triton layout)
    kfp-interop register MODEL.onnx --tracking-uri URI --name N [--alias A]
    kfp-interop deploy MODEL.onnx --target TARGET [--name N] [--namespace NS]
        [--storage-uri URI] [--canary N] [--dry-run] [--output-dir DIR]
    kfp-interop delete --target TARGET --name N [--namespace NS]
    kfp-interop dask-cluster [--workers N] [--cpu C] [--memory M] [--namespace NS]
        [--image REF] [-o FILE]   (the DaskCluster engine=dask's operator mode creates)
    kfp-interop federation up --nodes N --dir D [--dataset NAME] [--alpha A]
        [--partition iid|dirichlet] [--seed S] [--tls] [--results URI]
        (a SuperLink and N SuperNodes on this machine)
    kfp-interop federation down --dir D [--node I]
    kfp-interop metadata show|validate MODEL.onnx
    kfp-interop metadata render --format FORMAT MODEL.onnx
    kfp-interop metadata import --from oip|seldon|mlflow|triton|adlik FILE [--onnx MODEL.onnx]
        [--name N] [--output-dir DIR]

Exit codes: 0 success, 1 a pipeline step failed, 2 bad input.
"""


def build_parser() -> argparse.ArgumentParser:
    from kfp_interop._version import __version__
    from kfp_interop.deploy import DEPLOY_TARGETS
    from kfp_interop.metadata.render import RENDERERS
    from kfp_interop.storage import LAYOUTS

    p = _Parser(
        prog="kfp-interop", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train, export to ONNX with a parity gate, attach standard inference "
                    "metadata, store, register, deploy and smoke-test models.",
        epilog=USAGE)
    p.add_argument("--version", action="version", version=f"kfp-interop {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("pipelines", help="list reference pipelines").set_defaults(
        fn=commands.cmd_pipelines)
    sub.add_parser("frameworks", help="list frameworks and their exporters").set_defaults(
        fn=commands.cmd_frameworks)
    sub.add_parser("targets", help="list deploy targets").set_defaults(
        fn=commands.cmd_targets)

    c = sub.add_parser("compile", help="compile a reference pipeline (or --all, with the "
                                       "components) to KFP IR YAML")
    c.add_argument("name", nargs="?", help="a reference pipeline or path/file.py:function")
    c.add_argument("-o", "--output")
    c.add_argument("--all", action="store_true", help="every reference pipeline and "
                                                      "component, under --output-dir")
    c.add_argument("--output-dir", default=".", help="with --all: where pipelines/ and "
                                                     "components/ go")
    c.add_argument("--profile", default="cluster", choices=["cluster", "local"],
                   help="defaults for where it runs (cluster: nothing registered unless "
                        "tracking_uri is given)")
    c.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a graph parameter (e.g. rounds=10), or a parameter's default")
    c.add_argument("--image", default="", help="the image the tasks run, e.g. a private "
                                               "registry's copy by digest (default: "
                                               "$KFP_INTEROP_IMAGE, else the release's)")
    c.add_argument("--serving-image", default="", help="with --all: the ServingRuntimes' "
                   "image (default: $KFP_INTEROP_SERVING_IMAGE, else the release's serving "
                   "image)")
    _compute_options(c)
    c.set_defaults(fn=commands.cmd_compile)

    sb = sub.add_parser("submit", help="compile and start a run on a Kubeflow Pipelines "
                                       "cluster (kfp.Client)")
    sb.add_argument("name", help="a reference pipeline or path/file.py:function")
    sb.add_argument("--host", required=True, metavar="URL",
                    help="the Kubeflow Pipelines API, e.g. http://localhost:8080 "
                         "(kubectl port-forward svc/ml-pipeline-ui)")
    sb.add_argument("--namespace", default="", help="the user namespace (multi-user)")
    sb.add_argument("--experiment", default="", help="an existing experiment (default: "
                                                     "'kfp-interop', created when missing)")
    sb.add_argument("--run-name", default="")
    sb.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    sb.add_argument("--wait", action="store_true", help="follow the run to its end; exit 1 "
                                                        "when it does not succeed")
    sb.add_argument("--timeout", type=float, default=6 * 3600, metavar="SECONDS")
    sb.add_argument("--token-file", default="", help="a file holding a bearer token (else "
                                                     "$KF_PIPELINES_SA_TOKEN_PATH, else the "
                                                     "kube config's user token)")
    sb.add_argument("--profile", default="cluster", choices=["cluster", "local"])
    sb.add_argument("--image", default="", help="as for compile")
    _compute_options(sb)
    sb.set_defaults(fn=commands.cmd_submit)

    r = sub.add_parser("run", help="run a reference pipeline")
    r.add_argument("name")
    r.add_argument("--local", action="store_true", help="run through kfp.local (no cluster)")
    r.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR)
    r.add_argument("--keep-serving", action="store_true",
                   help="leave the local server running after the run")
    r.add_argument("-v", "--verbose", action="store_true", help="show every task's output")
    r.add_argument("--profile", default="local", choices=["local", "cluster"],
                   help="cluster: the compiled YAML's defaults (nothing stored or registered "
                        "unless given), a rehearsal of a run started in the Kubeflow UI")
    r.add_argument("--runner", default="subprocess", choices=["subprocess", "docker"],
                   help="docker: every task in its own container of the image the compiled "
                        "YAML names (build it with scripts/image.sh), through Docker or "
                        "podman's socket ($DOCKER_HOST)")
    r.add_argument("--image", default="", help="with --runner docker: another image (default: "
                                               "$KFP_INTEROP_IMAGE, else the release's)")
    r.set_defaults(fn=commands.cmd_run)

    from kfp_interop.frameworks import FRAMEWORKS

    x = sub.add_parser("export", help="convert a model file made elsewhere to ONNX (parity "
                                      "on a sample, record attached)")
    x.add_argument("model", help="the native model file (or SavedModel folder)")
    x.add_argument("--framework", required=True, choices=FRAMEWORKS.names())
    x.add_argument("--sample", required=True, metavar="DATA",
                   help="rows to check parity on: CSV/Parquet with the feature columns, or "
                        ".npy/.npz (rows x features)")
    x.add_argument("--target-column", default="", help="the sample's label column (dropped; "
                                                       "its values name the classes)")
    x.add_argument("--task", default="", choices=["", "classification", "regression"],
                   help="what the model does (default: what the file says)")
    x.add_argument("--labels", default="", help="class labels in output order: a,b,c")
    x.add_argument("--architecture", default="", metavar="module:Class",
                   help="PyTorch state dicts: the nn.Module to load the weights into "
                        "(its module must be in $KFP_INTEROP_ALLOWED_MODULES)")
    x.add_argument("--init-args", default="", metavar="JSON",
                   help="PyTorch state dicts: the class's constructor arguments")
    x.add_argument("--trusted-types", default="",
                   help="skops files: exact type names to trust beyond scikit-learn's")
    x.add_argument("--name", default="", help="serving name (default: from the file name)")
    x.add_argument("--version", default="1")
    x.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    x.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    x.add_argument("--output-dir", default="exported")
    x.set_defaults(fn=commands.cmd_export)

    a = sub.add_parser("adopt", help="check and describe an ONNX file made elsewhere")
    a.add_argument("model", help="the ONNX file")
    a.add_argument("--name", default="", help="serving name (default: from the file name)")
    a.add_argument("--version", default="1")
    a.add_argument("--task", default="auto", choices=["auto", "classification", "regression",
                                                      "other"])
    a.add_argument("--labels", default="", help="class labels in output order: a,b,c")
    a.add_argument("--sample", default="", help="inputs to run, .npz by input name (or .npy)")
    a.add_argument("--expected", default="", help="outputs the model should give on the "
                                                  "sample, .npz by output name")
    a.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    a.add_argument("--dynamic-batch", action="store_true",
                   help="a graph with a fixed batch size gets a symbolic one, checked "
                        "against the original on the sample (docs/optimize.md)")
    a.add_argument("--output-dir", default="adopted")
    a.set_defaults(fn=commands.cmd_adopt)

    s = sub.add_parser("serve", help="serve an ONNX model, or a model repository, on a "
                                     "local OIP endpoint (foreground)")
    from kfp_interop.serving.__main__ import add_serve_flags

    add_serve_flags(s)
    s.set_defaults(fn=commands.cmd_serve)

    o = sub.add_parser("optimize", help="graph optimization and quantization behind an "
                                        "accuracy gate")
    o.add_argument("model", help="an ONNX file with its record (or its folder)")
    o.add_argument("--sample", default="", help="inputs by name (.npz; an array 'labels' "
                   "= the true labels); default: the sample.npz beside the model")
    o.add_argument("--graph-level", default="basic", help="none, basic (standard ONNX "
                   "operators, portable), extended (ONNX Runtime's fused operators)")
    o.add_argument("--quantize", default="none",
                   help="none, int8-dynamic, int8-static (QDQ, calibrated on the sample), "
                        "fp16 (inputs and outputs kept FP32)")
    o.add_argument("--max-accuracy-drop", type=float, default=0.01,
                   help="largest loss of accuracy (or agreement, or relative error) "
                        "allowed, a fraction (default 0.01)")
    o.add_argument("--dynamic-batch", action="store_true",
                   help="first make a fixed batch size symbolic (checked against the "
                        "original on the sample)")
    o.add_argument("--output-dir", default="optimized")
    o.set_defaults(fn=commands.cmd_optimize)

    u = sub.add_parser("upload", help="store a model in a serving runtime's layout")
    u.add_argument("model")
    u.add_argument("--to", required=True, metavar="URI",
                   help="s3://bucket/prefix, gs://bucket/prefix, "
                        "https://ACCOUNT.blob.core.windows.net/container/prefix or a folder")
    u.add_argument("--layout", choices=LAYOUTS.names(), default="triton")
    u.add_argument("--name")
    u.add_argument("--version", default="", help="the Triton version folder (default: the "
                   "record's version); a new one switches Triton to it at once")
    u.add_argument("--create-bucket", action="store_true")
    u.set_defaults(fn=commands.cmd_upload)

    d = sub.add_parser("download", help="fetch a model folder written by upload, every "
                                        "object checked against its manifest")
    d.add_argument("uri", help="the model's URI: <upload URI>/<name>, e.g. "
                               "gs://bucket/models/iris")
    d.add_argument("--to", required=True, metavar="DIR",
                   help="the folder to fill (left as it was when anything fails)")
    d.set_defaults(fn=commands.cmd_download)

    v = sub.add_parser("validate-repo", help="check a Triton-layout model repository as "
                                             "Triton and KServe will read it")
    v.add_argument("root", help="a folder or a storage URI (s3://, gs://, Azure, pvc://) "
                                "holding model folders")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(fn=commands.cmd_validate_repo)

    k = sub.add_parser("smoke-test", help="check a live OIP endpoint (ours, Triton, KServe, "
                                          "MLServer) against the ONNX file it should serve")
    k.add_argument("url", help="the server's base URL, e.g. http://127.0.0.1:8000")
    k.add_argument("model", help="the ONNX file (or its folder) carrying its record")
    k.add_argument("--sample", default="", help="rows to send: CSV/Parquet with the feature "
                   "columns, or .npz/.npy of inputs by name (default: the sample.npz beside "
                   "an adopted model, else rows drawn from the record's inputs)")
    k.add_argument("--name", default="", help="the served name (default: the record's)")
    k.add_argument("--rows", type=int, default=20)
    k.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    k.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS")
    k.add_argument("--json", action="store_true", help="print the report as JSON")
    k.set_defaults(fn=commands.cmd_smoke_test)

    g = sub.add_parser("register", help="log and register a model in MLflow")
    g.add_argument("model")
    g.add_argument("--tracking-uri", default="")
    g.add_argument("--name")
    g.add_argument("--alias", default="candidate")
    g.set_defaults(fn=commands.cmd_register)

    targets = DEPLOY_TARGETS.names()
    d = sub.add_parser("deploy", help="deploy a model (see 'kfp-interop targets')")
    d.add_argument("model")
    d.add_argument("--target", required=True, choices=targets)
    d.add_argument("--name")
    d.add_argument("--namespace", default="default")
    d.add_argument("--storage-uri")
    d.add_argument("--canary", type=int, default=0, metavar="PERCENT")
    d.add_argument("--dry-run", action="store_true", help="only write DIR/<target>.yaml")
    d.add_argument("--output-dir", default=".")
    d.add_argument("--timeout", type=float, default=600)
    d.add_argument("--endpoint", help="OIP base URL, if not the one in the status")
    d.add_argument("--kubeconfig")
    d.add_argument("--port", type=int, default=0,
                   help="local target: the server's port (0 = a free one)")
    d.add_argument("--runtime", default="", help="kserve: triton (default) or kfp-interop "
                                                 "(the kfp-interop-onnx ServingRuntime)")
    d.add_argument("--cpu", default="", help="model server CPU request and limit (cluster)")
    d.add_argument("--memory", default="", help="model server memory (cluster), e.g. 4Gi")
    d.add_argument("--gpus", type=int, default=0, help="model server GPUs (cluster)")
    d.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other option the target declares (kfp-interop targets lists "
                        "them), e.g. replicas=2, service_account=NAME")
    d.set_defaults(fn=commands.cmd_deploy)

    k = sub.add_parser("dask-cluster", help="render the DaskCluster dask_cluster=operator "
                                            "creates (checked against the operator's CRD)")
    k.add_argument("--name", default="kfp-interop-dask-review")
    k.add_argument("--namespace", default="default")
    k.add_argument("--workers", type=int, default=2)
    k.add_argument("--cpu", default="1")
    k.add_argument("--memory", default="4Gi")
    k.add_argument("--image", default="", help="default: kfp-interop's release image")
    k.add_argument("-o", "--output", default="", help="write the YAML here (default: print)")
    k.set_defaults(fn=commands.cmd_dask_cluster)

    f = sub.add_parser("federation", help="a Flower federation on this machine (SuperLink "
                                          "and SuperNodes on 127.0.0.1, no TLS) for "
                                          "engine=deployment")
    fsub = f.add_subparsers(dest="action", required=True)
    fu = fsub.add_parser("up", help="split a data set among N nodes and start them")
    fu.add_argument("--nodes", type=int, required=True)
    fu.add_argument("--dir", required=True, help="the federation's folder (one per node)")
    fu.add_argument("--dataset", default="digits",
                    help="a bundled classification set or a CSV/Parquet file")
    fu.add_argument("--target-column", default="")
    fu.add_argument("--partition", default="dirichlet", choices=("iid", "dirichlet"))
    fu.add_argument("--alpha", type=float, default=1.0)
    fu.add_argument("--seed", type=int, default=42)
    fu.add_argument("--test-size", type=float, default=0.25)
    fu.add_argument("--tls", action="store_true",
                    help="TLS with a throwaway CA (its certificate: DIR/tls/ca.crt)")
    fu.add_argument("--results", default="",
                    help="where the ServerApp writes (default DIR/results; or a storage "
                         "URI, written with this shell's credentials)")
    fd = fsub.add_parser("down", help="stop the federation (or one node)")
    fd.add_argument("--dir", required=True)
    fd.add_argument("--node", type=int, default=None, help="stop only this node")
    f.set_defaults(fn=commands.cmd_federation)

    x = sub.add_parser("delete", help="delete a deployment")
    x.add_argument("--target", required=True, choices=targets)
    x.add_argument("--name", required=True)
    x.add_argument("--namespace", default="default")
    x.add_argument("--kubeconfig")
    x.set_defaults(fn=commands.cmd_delete)

    m = sub.add_parser("metadata", help="show, validate or render a model's record")
    msub = m.add_subparsers(dest="action", required=True)
    for action in ("show", "validate"):
        a = msub.add_parser(action)
        a.add_argument("model")
    rr = msub.add_parser("render")
    rr.add_argument("--format", required=True, choices=RENDERERS.names())
    rr.add_argument("model")
    rr.add_argument("--output-dir", default="", help="write the rendering as files here "
                                                     "(acumos: metadata.json and "
                                                     "model.proto) instead of printing it")
    from kfp_interop.metadata.importers import IMPORTERS

    im = msub.add_parser("import", help="read another system's metadata into a record")
    im.add_argument("--from", dest="dialect", required=True, choices=IMPORTERS.names())
    im.add_argument("model", metavar="FILE", help="OIP/Seldon JSON, MLmodel, config.pbtxt")
    im.add_argument("--onnx", default="", help="the ONNX model it describes (checked "
                                               "against it; the record is embedded)")
    im.add_argument("--name", default="")
    im.add_argument("--version", default="")
    im.add_argument("--task", default="", choices=["", "classification", "regression",
                                                   "other"])
    im.add_argument("--labels", default="", help="class labels in output order: a,b,c")
    im.add_argument("--output-dir", default="imported")
    m.set_defaults(fn=commands.cmd_metadata)
    _no_abbreviations(p)
    return p


def _compute_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("resources of the tasks that train and export")
    g.add_argument("--cpu", default="", help="CPU request and limit, e.g. 4")
    g.add_argument("--memory", default="", help="memory request and limit, e.g. 8Gi")
    g.add_argument("--accelerator", default="", metavar="TYPE[:COUNT]",
                   help="e.g. nvidia.com/gpu:1")
    g.add_argument("--storage-pvc", action="append", default=[], metavar="CLAIM",
                   help="mount this PersistentVolumeClaim into the tasks that read or write "
                        "storage, for storage_uri / data sets at pvc://CLAIM/... "
                        "(repeatable)")


class _Parser(argparse.ArgumentParser):
    """argparse, except that arguments it does not know are named without their values
    (a mistyped option such as ``--token SECRET`` must not echo the secret)."""

    def error(self, message: str):
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            names = [a for a in message[len(prefix):].split() if a.startswith("-")]
            message = (prefix + (" ".join(names) or "(values not shown)")
                       + " (values not shown; credentials are read from files or the "
                         "environment, never from arguments)")
        super().error(message)


def _no_abbreviations(parser: argparse.ArgumentParser) -> None:
    """Options must be spelled out: with abbreviations, ``--token SECRET`` would be taken
    as ``--token-file SECRET`` (and the secret named in the error as a file)."""
    parser.allow_abbrev = False
    for action in parser._actions:  # noqa: SLF001 - argparse keeps subparsers here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for sub in action.choices.values():
                _no_abbreviations(sub)
