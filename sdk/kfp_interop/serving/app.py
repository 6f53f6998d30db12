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
``/v2/models/{name}[/versions/{v}]``, ``.../ready``, ``POST .../infer``; the repository
extension ``POST /v2/repository/index``, ``/v2/repository/models/{name}/load`` and
``.../unload`` (:mod:`.repository`); ``GET /metrics`` (Prometheus, :mod:`.metrics`).
Errors are ``{"error": "..."}`` with the status from
:func:`kfp_interop.errors.http_status`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time

import orjson

from kfp_interop._version import __version__
from kfp_interop.errors import (InferenceRequestError, MethodNotAllowedError,
                                PayloadTooLargeError, RouteNotFoundError, http_status)
from kfp_interop.serving.batching import Batcher
from kfp_interop.serving.codec import Limits, decode_request, encode_response
from kfp_interop.serving.metrics import ServerMetrics
from kfp_interop.serving.repository import ModelRepository
from kfp_interop.serving.runtime import ServedModel, feed_rows
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
_METRICS = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
#: failure reasons as Triton labels them: the request's fault, or anything else
_REJECTED = (400, 404, 413)


class OIPApp:
    """ASGI application serving a :class:`ModelRepository` (or a list of
    :class:`ServedModel`)."""

    #: requests larger than this are served by worker processes (REST and gRPC)
    small_body_bytes = SMALL_BODY_BYTES

    def __init__(self, models: "list[ServedModel] | ModelRepository", *,
                 load_in_background: bool = True, limits: Limits = Limits(),
                 large_requests: int = 2):
        self.repository = (models if isinstance(models, ModelRepository)
                           else ModelRepository(models))
        self.repository.on_retired = self._retire
        self.load_in_background = load_in_background
        self.limits = limits
        self.metrics = ServerMetrics()
        self._large_requests = max(1, large_requests)
        self._large = asyncio.Semaphore(self._large_requests)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._large_requests + 1, thread_name_prefix="oip")
        self._loop: asyncio.AbstractEventLoop | None = None
        #: ``host:port`` of the gRPC service started with the server ('' = none)
        self.grpc_address = ""
        self._grpc = None
        # both by id(model), made on first use: most servers never see a large request
        self._workers: dict[int, WorkerPool] = {}
        self._batchers: dict[int, Batcher] = {}

    @property
    def models(self) -> list[ServedModel]:
        return self.repository.models()

    def _retire(self, models: list[ServedModel]) -> None:
        """Models a load or unload took out of service: their batches drain, their
        worker processes stop (called from the thread that loaded)."""
        for m in models:
            pool = self._workers.pop(id(m), None)
            if pool is not None:
                pool.close()
            batcher = self._batchers.pop(id(m), None)
            if batcher is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(
                    lambda b=batcher: self._loop.create_task(b.close()))

    def _batcher(self, model: ServedModel) -> Batcher:
        batcher = self._batchers.get(id(model))
        if batcher is None:
            loop = asyncio.get_running_loop()

            async def in_thread(fn, *args):
                return await loop.run_in_executor(self._executor, fn, *args)

            batcher = self._batchers[id(model)] = Batcher(
                model, in_thread,
                on_execution=lambda: self.metrics.executed(model.name, model.version))
        return batcher

    def _pool(self, model: ServedModel) -> WorkerPool:
        pool = self._workers.get(id(model))
        if pool is None:
            pool = self._workers[id(model)] = WorkerPool(model, self._large_requests)
        return pool

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
                self._loop = asyncio.get_running_loop()
                if self.grpc_address:
                    from kfp_interop.serving.grpc_server import start_grpc

                    try:
                        self._grpc = await start_grpc(self, self.grpc_address)
                    except Exception as e:  # noqa: BLE001 - the server must not start
                        await send({"type": "lifespan.startup.failed", "message": str(e)})
                        return
                if self.load_in_background:
                    for m in self.models:
                        if not m.ready and not m.error:
                            m.load_in_background()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._grpc is not None:
                    await self._grpc.stop(grace=2)
                for pool in list(self._workers.values()):
                    pool.close()
                for batcher in list(self._batchers.values()):
                    await batcher.close()
                self._executor.shutdown(wait=False, cancel_futures=True)
                self.repository.close()
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
        if parts == ["metrics"]:
            self._method(method, "GET", scope)
            return 200, self.metrics.render(), _METRICS
        if parts[:2] == ["v2", "repository"]:
            return await self._repository(method, parts[2:], scope, receive)
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
                waiting = "; ".join(self.repository.not_ready())
                return 503, orjson.dumps({"ready": False,
                                          "error": f"not ready: {waiting}"}), _JSON
            return 200, orjson.dumps({"name": "kfp-interop", "version": __version__,
                                      "extensions": ["binary_tensor_data",
                                                     "model_repository"]}), _JSON
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

    async def _repository(self, method: str, rest: list[str], scope, receive):
        """The repository extension: index, load, unload."""
        if rest == ["index"]:
            self._method(method, "POST", scope)
            body = await self._body(receive, None)
            try:
                ready_only = bool(orjson.loads(body).get("ready")) if body.strip() else False
            except (orjson.JSONDecodeError, AttributeError) as e:
                raise InferenceRequestError("The index request body is a JSON object, e.g. "
                                            '{"ready": true}.') from e
            return 200, orjson.dumps(self.repository.index(ready_only)), _JSON
        if len(rest) == 3 and rest[0] == "models" and rest[2] in ("load", "unload"):
            self._method(method, "POST", scope)
            await self._body(receive, None)  # parameters (config overrides) are not taken
            name = rest[1]
            if rest[2] == "load":
                await asyncio.get_running_loop().run_in_executor(
                    self._executor, self.repository.load, name)
            else:
                self.repository.unload(name)
            return 200, b"{}", _JSON
        raise RouteNotFoundError(f"No route {scope['path']!r}: the repository extension has "
                                 "POST /v2/repository/index and "
                                 "/v2/repository/models/{name}/load|unload.")

    @staticmethod
    def _method(got: str, want: str, scope) -> None:
        if got != want:
            raise MethodNotAllowedError(f"{got} is not allowed on {scope['path']!r}; use {want}.")

    async def track(self, model: ServedModel, work):
        """Await ``work`` (one inference request of ``model``), counted: in flight while
        it runs, a failure by its reason (REST and gRPC alike)."""
        pending = self.metrics.pending_of(model.name, model.version)
        pending.inc()
        try:
            return await work
        except Exception as e:
            status = http_status(e)
            self.metrics.failed(model.name, model.version,
                                "REJECTED" if status in _REJECTED else "OTHER")
            raise
        finally:
            pending.dec()

    async def serve_decoded(self, model: ServedModel, inputs, requested, start: float,
                            encode):
        """Validate decoded ``inputs``, run them (batched when the model is), and
        ``encode(results)``; the durations go to the metrics."""
        feeds, names = model.validate(inputs, requested)
        decoded = time.perf_counter()
        rows = feed_rows(feeds)
        queue_s = 0.0
        if model.batching is not None:
            results, stats = await self._batcher(model).infer(feeds, names)
            queue_s, infer_s = stats.queue_s, stats.compute_s
        else:
            if rows <= SMALL_BATCH_ROWS:
                results = model.run(feeds, names)
            else:
                results = await asyncio.get_running_loop().run_in_executor(
                    self._executor, model.run, feeds, names)
            self.metrics.executed(model.name, model.version)
            infer_s = time.perf_counter() - decoded
        encode_start = time.perf_counter()
        response = encode(results)
        end = time.perf_counter()
        self.metrics.observe(model.name, model.version, rows=rows, request_s=end - start,
                             queue_s=queue_s, input_s=decoded - start, infer_s=infer_s,
                             output_s=end - encode_start)
        return response

    async def serve_large(self, model: ServedModel, fn, *args):
        """A large request in a worker process (``fn(*args)`` there returns
        ``(answer, rows, seconds in ONNX Runtime)``); the caller holds ``_large`` (at
        most ``large_requests`` at a time, bodies included)."""
        start = time.perf_counter()
        answer, rows, infer_s = await asyncio.get_running_loop().run_in_executor(
            self._executor, self._pool(model).call, fn, *args)
        self.metrics.executed(model.name, model.version)
        self.metrics.observe(model.name, model.version, rows=rows,
                             request_s=time.perf_counter() - start, queue_s=0.0,
                             input_s=0.0, infer_s=infer_s, output_s=0.0)
        return answer

    async def _infer(self, model: ServedModel, scope, receive):
        return await self.track(model, self._infer_rest(model, scope, receive))

    async def _infer_rest(self, model: ServedModel, scope, receive):
        start = time.perf_counter()
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
            return await self.serve_decoded(
                model, inputs, requested, start,
                lambda results: self._response(encode_response(model, request, results,
                                                               requested, binary)))
        from kfp_interop.serving.workers import serve_rest

        async with self._large:  # the body is read only when a worker can take it
            body = await self._body(receive, declared)
            payload, json_size = await self.serve_large(model, serve_rest, body,
                                                        header_length, self.limits)
        return self._response((payload, json_size))

    @staticmethod
    def _response(encoded: tuple[bytes, int | None]):
        payload, json_size = encoded
        if json_size is None:
            return 200, payload, _JSON
        return 200, payload, [(b"content-type", b"application/octet-stream"),
                              (b"inference-header-content-length", str(json_size).encode())]


def create_app(models: "list[ServedModel] | ModelRepository", *,
               load_in_background: bool = True, limits: Limits = Limits(),
               large_requests: int = 2) -> OIPApp:
    """The ASGI application serving ``models`` (loaded in the background by default)."""
    return OIPApp(models, load_in_background=load_in_background, limits=limits,
                  large_requests=large_requests)
