"""``python -m kfp_interop.serving MODEL.onnx [--name N] [--host H] [--port P]``."""

import argparse
import sys

from kfp_interop.errors import InteropError
from kfp_interop.serving.process import serve_forever


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m kfp_interop.serving")
    p.add_argument("model")
    p.add_argument("--name")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--log-level", default="warning")
    p.add_argument("--max-body-mb", type=float)
    p.add_argument("--max-elements", type=int)
    a = p.parse_args(argv)
    try:
        serve_forever(a.model, name=a.name, host=a.host, port=a.port, log_level=a.log_level,
                      max_body_mb=a.max_body_mb, max_elements=a.max_elements)
    except InteropError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
