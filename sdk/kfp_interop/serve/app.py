"""A local Open Inference Protocol (KServe V2) REST server for ONNX models.

Built on FastAPI/uvicorn rather than MLServer, for three reasons:

* MLServer 1.7 does not implement the binary tensor data extension, which
  ``tritonclient.http`` uses by default for outputs; this server does, so Triton's client
  works unchanged (and KServe's ``InferenceRESTClient`` too, with plain JSON).
* MLServer pins starlette/fastapi versions that conflict with the KServe SDK, which
  users (and our tests) run as a client in the same environment.
* Latency: one process, no hop to a worker pool, orjson on the hot path and no pydantic
  models per request; the benchmark in ``benchmarks/`` holds it to raw ONNX Runtime
  + 1 ms at p50.

Routes: ``GET /v2/health/live``, ``/v2/health/ready``, ``/v2``,
``/v2/models/{name}[/versions/{v}]``, ``.../ready``, ``POST .../infer``. Errors are
``{"error": "..."}`` with the status from :data:`kfp_interop.serve.runtime.STATUS`.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the handlers'
# annotations (``Request``) at route creation.
import contextlib
from typing import Optional

import anyio.to_thread
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from kfp_interop import __version__
from kfp_interop.serve.runtime import (STATUS, ModelRepository, ServedModel,
                                       decode_request, encode_response)

__all__ = ["create_app", "SMALL_BATCH_ROWS"]

# Requests up to this many rows run on the event loop (a thread hop costs more than the
# model); larger ones run in a worker thread so the server keeps answering health checks.
SMALL_BATCH_ROWS = 64


def create_app(models: list, *, load_in_background: bool = True) -> FastAPI:
    """The FastAPI application serving ``models`` (loaded in the background by default)."""
    repo = ModelRepository(models)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        if load_in_background:
            for m in models:
                if not m.ready and not m.error:
                    m.load_in_background()
        yield

    app = FastAPI(title="kfp-interop OIP server", version=__version__, docs_url=None,
                  redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.repository = repo

    def _json(data, status: int = 200) -> Response:
        return Response(orjson.dumps(data), status_code=status, media_type="application/json")

    for exc_type, status in STATUS.items():
        async def handler(request: Request, exc: Exception, _status: int = status):
            return _json({"error": str(exc)}, _status)

        app.add_exception_handler(exc_type, handler)

    @app.get("/v2/health/live")
    async def live():
        return _json({"live": True})

    @app.get("/v2/health/ready")
    async def ready():
        if repo.ready:
            return _json({"ready": True})
        return _json({"ready": False, "error": "models not ready: " + ", ".join(
            m.name for m in models if not m.ready)}, 503)

    @app.get("/v2")
    async def server_metadata():
        return _json({"name": "kfp-interop", "version": __version__,
                      "extensions": ["binary_tensor_data"]})

    def _model(name: str, version: Optional[str]) -> ServedModel:
        return repo.get(name, version)

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def model_metadata(name: str, version: Optional[str] = None):
        model = _model(name, version)
        model.check_ready()
        return _json(model.metadata)

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_ready(name: str, version: Optional[str] = None):
        model = _model(name, version)
        model.check_ready()
        return _json({"name": model.name, "ready": True})

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request, version: Optional[str] = None):
        model = _model(name, version)
        model.check_ready()
        body = await request.body()
        req, inputs, requested, binary = decode_request(
            body, request.headers.get("inference-header-content-length"))
        rows = max((arr.shape[0] if arr.ndim else 1) for _, arr in inputs.values())
        if rows <= SMALL_BATCH_ROWS:
            results = model.infer(inputs, requested)
        else:
            results = await anyio.to_thread.run_sync(model.infer, inputs, requested)
        payload, json_size = encode_response(model, req, results, requested, binary)
        headers = {} if json_size is None else {"Inference-Header-Content-Length": str(json_size)}
        return Response(payload, media_type="application/json" if json_size is None
                        else "application/octet-stream", headers=headers)

    return app
