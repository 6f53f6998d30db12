"""Serving on the Open Inference Protocol, locally, and checking a live endpoint.

* :mod:`.runtime` — ONNX models behind the protocol (loading, input checks, inference);
* :mod:`.codec` — JSON and binary tensor data on the wire;
* :mod:`.app` — the ASGI application (routes, errors to statuses);
* :mod:`.process` — server processes: foreground, detached, stop;
* :mod:`.client` — an OIP client and the endpoint-vs-record check;
* :mod:`.smoke` — the smoke test of a live endpoint.
"""

from kfp_interop.serving.process import (ServerHandle, locate_model, serve_forever,
                                         start_server, stop_server)

__all__ = ["ServerHandle", "start_server", "stop_server", "serve_forever", "locate_model"]
