"""``python -m kfp_interop.serving MODEL_OR_REPOSITORY [--name N] [--host H] [--port P]
[--grpc-port G] [--max-batch-size B ...] [--model-control-mode none|explicit ...]``
(the flags of ``kfp-interop serve``)."""

import argparse
import sys

from kfp_interop.errors import InteropError
from kfp_interop.serving.process import batching_options, serve_forever


def add_serve_flags(p: argparse.ArgumentParser) -> None:
    """The server's flags, shared by ``kfp-interop serve`` and this module."""
    from kfp_interop.serving.repository import CONTROL_MODES

    p.add_argument("model", help="an ONNX file, a model folder, or a Triton-layout model "
                                 "repository (a folder or storage URI: every model in it)")
    p.add_argument("--name", help="serve this model only (of a repository: its folder)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--grpc-port", type=int, default=0, metavar="P",
                   help="serve the OIP gRPC service on this port too (0: off)")
    p.add_argument("--metrics-port", type=int, default=0, metavar="P",
                   help="serve Prometheus /metrics on this port too (always on the HTTP port)")
    p.add_argument("--max-body-mb", type=float, metavar="MB",
                   help="largest request body accepted (default 32; above: 413)")
    p.add_argument("--max-elements", type=int, metavar="N",
                   help="most tensor elements per input (default 16777216; above: 413)")
    p.add_argument("--max-batch-size", type=int, metavar="ROWS",
                   help="dynamic batching for every model, up to ROWS rows per ONNX Runtime "
                        "call (0: off; default: each model's config or record)")
    p.add_argument("--max-queue-delay-us", type=int, metavar="US",
                   help="longest a request waits for others to join its batch")
    p.add_argument("--preferred-batch-sizes", metavar="A,B",
                   help="batch sizes sent at once when no more requests wait")
    p.add_argument("--model-control-mode", choices=CONTROL_MODES, default="none",
                   help="none: every model of the repository at start; explicit: the "
                        "--load-model ones, then load/unload through the API")
    p.add_argument("--load-model", action="append", metavar="NAME",
                   help="with explicit control: a model to load at start (* = all)")
    p.add_argument("--intra-op-threads", type=int, default=1, metavar="N",
                   help="ONNX Runtime threads per model execution (default 1: the best "
                        "latency for small models under concurrency; 0: one per core, "
                        "for large models; Triton's onnxruntime backend defaults to 0)")
    p.add_argument("--strict-readiness", choices=("true", "false"), default="true",
                   help="ready only when no model failed to load (Triton's default)")


def serve_from_args(a, log_level: str = "warning", remote=None) -> None:
    serve_forever(a.model, remote=remote, name=a.name, host=a.host, port=a.port, log_level=log_level,
                  max_body_mb=a.max_body_mb, max_elements=a.max_elements,
                  grpc_port=a.grpc_port, metrics_port=a.metrics_port,
                  batching=batching_options(a.max_batch_size, a.max_queue_delay_us,
                                            a.preferred_batch_sizes),
                  control=a.model_control_mode, load_models=a.load_model,
                  strict_readiness=a.strict_readiness == "true",
                  threads=a.intra_op_threads)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m kfp_interop.serving")
    add_serve_flags(p)
    p.add_argument("--log-level", default="warning")
    a = p.parse_args(argv)
    try:
        serve_from_args(a, a.log_level)
    except InteropError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
