"""A local Open Inference Protocol (KServe V2) REST server for ONNX models: a plain ASGI
application run by uvicorn.

Why not MLServer, and why not FastAPI:

* MLServer 1.7 does not implement the binary tensor data extension, which
  ``tritonclient.http`` uses by default for outputs; this server does, so Triton's client
  works unchanged (and KServe's ``InferenceRESTClient`` too, with plain JSON). MLServer
  also pins starlette/fastapi versions that conflict with the KServe SDK, which users
  (and our tests) run as a client in the same environment.
* FastAPI's per-request machinery (routing, request objects, exception middleware) cost
  about 0.4 ms per call here, measured: the whole budget of "raw ONNX Runtime + 1 ms" at
  p50 for one row. The protocol has a handful of fixed routes and needs no validation
  models (requests are checked against the model's own tensors, in ``runtime.py``), so a
  small router over ASGI is both simpler and faster. ``benchmarks/inference.py`` measures
  the result.

Routes: ``GET /v2/health/live``, ``/v2/health/ready``, ``/v2``,
``/v2/models/{name}[/versions/{v}]``, ``.../ready``, ``POST .../infer``. Errors are
``{"error": "..."}`` with the status from :func:`kfp_interop.errors.http_status`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging

import orjson

from kfp_interop._version import __version__
from kfp_interop.errors import (MethodNotAllowedError, PayloadTooLargeError,
                                RouteNotFoundError, http_status)
from kfp_interop.serving.codec import Limits, decode_request, encode_response
from kfp_interop.serving.runtime import ModelRepository, ServedModel
from kfp_interop.serving.workers import WorkerPool

__all__ = ["OIPApp", "create_app", "SMALL_BATCH_ROWS", "SMALL_BODY_BYTES"]

log = logging.getLogger("kfp_interop.serving")

# Small requests run on the event loop (a thread hop costs more than the model): bodies up
# to SMALL_BODY_BYTES are decoded there (~5 ms for 1 MiB of JSON), and up to
# SMALL_BATCH_ROWS rows inferred there (more in a thread: ONNX Runtime releases the GIL).
# Larger bodies go to worker processes (``workers.py`` says why), at most
# ``large_requests`` at a time: the rest wait before their bodies are read, which bounds
# memory, while the loop keeps answering health checks.
SMALL_BATCH_ROWS = 64
SMALL_BODY_BYTES = 1024 * 1024

_JSON = [(b"content-type", b"application/json")]


class OIPApp:
    """ASGI application serving a list of :class:`ServedModel`."""

    def __init__(self, models: list[ServedModel], *, load_in_background: bool = True,
                 limits: Limits = Limits(), large_requests: int = 2):
        self.models = models
        self.repository = ModelRepository(models)
        self.load_in_background = load_in_background
        self.limits = limits
        self._large = asyncio.Semaphore(max(1, large_requests))
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, large_requests), thread_name_prefix="oip")
        # started on the first large request: most servers never see one
        self._workers = {id(m): WorkerPool(m, large_requests) for m in models}

    # -- ASGI -------------------------------------------------------------------------
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            status, payload, headers = await self._handle(scope, receive)
        except Exception as e:  # noqa: BLE001 - every error becomes an OIP error body
            status = http_status(e)
            if status is None:
                log.exception("internal error")
                status = 500
            payload, headers = orjson.dumps({"error": str(e)}), _JSON
        await send({"type": "http.response.start", "status": status,
                    "headers": headers + [(b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.load_in_background:
                    for m in self.models:
                        if not m.ready and not m.error:
                            m.load_in_background()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for pool in self._workers.values():
                    pool.close()
                self._executor.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _body(self, receive, declared: int | None) -> bytes:
        """The request body, refused (413) above the size cap: before reading a byte when
        ``Content-Length`` declares it, as soon as the cap is passed otherwise."""
        cap = self.limits.max_body_bytes
        if declared is not None and declared > cap:
            raise PayloadTooLargeError(f"Request body of {declared} bytes exceeds this "
                                       f"server's {cap} (--max-body-mb). Send smaller "
                                       "batches, or binary tensor data.")
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise PayloadTooLargeError(f"Request body exceeds this server's {cap} bytes "
                                           "(--max-body-mb). Send smaller batches.")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    # -- routing ----------------------------------------------------------------------
    async def _handle(self, scope, receive):
        method = scope["method"]
        parts = scope["path"].strip("/").split("/")
        if not parts or parts[0] != "v2":
            raise RouteNotFoundError(f"No route {scope['path']!r}: this server speaks the "
                                     "Open Inference Protocol under /v2.")
        rest = parts[1:]
        if rest in (["health", "live"], ["health", "ready"], []):
            self._method(method, "GET", scope)
            if rest == ["health", "live"]:
                return 200, orjson.dumps({"live": True}), _JSON
            if rest == ["health", "ready"]:
                if self.repository.ready:
                    return 200, orjson.dumps({"ready": True}), _JSON
                waiting = ", ".join(m.name for m in self.models if not m.ready)
                return 503, orjson.dumps({"ready": False,
                                          "error": f"models not ready: {waiting}"}), _JSON
            return 200, orjson.dumps({"name": "kfp-interop", "version": __version__,
                                      "extensions": ["binary_tensor_data"]}), _JSON
        if len(rest) < 2 or rest[0] != "models":
            raise RouteNotFoundError(f"No route {scope['path']!r}.")
        name, tail = rest[1], rest[2:]
        version = None
        if len(tail) >= 2 and tail[0] == "versions":
            version, tail = tail[1], tail[2:]
        if tail not in ([], ["ready"], ["infer"]):
            raise RouteNotFoundError(f"No route {scope['path']!r}.")
        model = self.repository.get(name, version)
        if tail == ["infer"]:
            self._method(method, "POST", scope)
            model.check_ready()
            return await self._infer(model, scope, receive)
        self._method(method, "GET", scope)
        model.check_ready()
        if tail == ["ready"]:
            return 200, orjson.dumps({"name": model.name, "ready": True}), _JSON
        return 200, orjson.dumps(model.metadata), _JSON

    @staticmethod
    def _method(got: str, want: str, scope) -> None:
        if got != want:
            raise MethodNotAllowedError(f"{got} is not allowed on {scope['path']!r}; use {want}.")

    async def _infer(self, model: ServedModel, scope, receive):
        headers = dict(scope["headers"])
        header_length = headers.get(b"inference-header-content-length")
        header_length = header_length.decode("latin-1") if header_length is not None else None
        try:
            declared = int(headers[b"content-length"]) if b"content-length" in headers else None
        except ValueError:
            declared = None  # the server (h11) refuses a malformed Content-Length itself
        if declared is not None and declared <= SMALL_BODY_BYTES:
            body = await self._body(receive, declared)
            request, inputs, requested, binary = decode_request(body, header_length,
                                                                self.limits)
            rows = max((arr.shape[0] if arr.ndim else 1) for _, arr in inputs.values())
            if rows <= SMALL_BATCH_ROWS:
                results = model.infer(inputs, requested)
            else:
                results = await asyncio.get_running_loop().run_in_executor(
                    self._executor, model.infer, inputs, requested)
            return self._response(encode_response(model, request, results, requested, binary))
        async with self._large:
            body = await self._body(receive, declared)
            return self._response(await asyncio.get_running_loop().run_in_executor(
                self._executor, self._workers[id(model)].serve, body, header_length,
                self.limits))

    @staticmethod
    def _response(encoded: tuple[bytes, int | None]):
        payload, json_size = encoded
        if json_size is None:
            return 200, payload, _JSON
        return 200, payload, [(b"content-type", b"application/octet-stream"),
                              (b"inference-header-content-length", str(json_size).encode())]


def create_app(models: list[ServedModel], *, load_in_background: bool = True,
               limits: Limits = Limits(), large_requests: int = 2) -> OIPApp:
    """The ASGI application serving ``models`` (loaded in the background by default)."""
    return OIPApp(models, load_in_background=load_in_background, limits=limits,
                  large_requests=large_requests)
