"""The Open Inference Protocol's gRPC service (``inference.GRPCInferenceService``) beside
REST, on the same event loop, models, batchers, limits and metrics (:mod:`.app`).

The messages come from the official proto (``proto/open_inference_grpc.proto``, with
Triton's repository RPCs added), built from its serialized descriptor in a descriptor
pool of their own (``scripts/gen_grpc_descriptor.py`` says why), and served with
grpcio's asyncio server through generic handlers. Requests carry their tensors as typed
``contents`` or as ``raw_input_contents`` (little-endian values; BYTES as 4-byte
length-prefixed strings, as Triton's clients send them); answers carry
``raw_output_contents``, as Triton's do.

Errors are the REST ones, mapped: 400 INVALID_ARGUMENT, 404 NOT_FOUND, 405
UNIMPLEMENTED, 413 RESOURCE_EXHAUSTED, 503 UNAVAILABLE. A message above the body cap
(``--max-body-mb``) is refused by grpcio before it is read (RESOURCE_EXHAUSTED);
messages above the in-process size go to the worker processes, like large REST bodies.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from kfp_interop._version import __version__
from kfp_interop.errors import (InferenceRequestError, ModelNotFoundError,
                                PayloadTooLargeError, http_status)

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.serving.runtime import ServedModel

__all__ = ["messages", "start_grpc", "decode_infer", "encode_infer", "SERVICE"]

log = logging.getLogger("kfp_interop.serving")

SERVICE = "inference.GRPCInferenceService"
_METHODS = {  # rpc -> (request, response) message names
    "ServerLive": ("ServerLiveRequest", "ServerLiveResponse"),
    "ServerReady": ("ServerReadyRequest", "ServerReadyResponse"),
    "ModelReady": ("ModelReadyRequest", "ModelReadyResponse"),
    "ServerMetadata": ("ServerMetadataRequest", "ServerMetadataResponse"),
    "ModelMetadata": ("ModelMetadataRequest", "ModelMetadataResponse"),
    "ModelInfer": ("ModelInferRequest", "ModelInferResponse"),
    "RepositoryIndex": ("RepositoryIndexRequest", "RepositoryIndexResponse"),
    "RepositoryModelLoad": ("RepositoryModelLoadRequest", "RepositoryModelLoadResponse"),
    "RepositoryModelUnload": ("RepositoryModelUnloadRequest",
                              "RepositoryModelUnloadResponse"),
}
#: typed ``contents`` field per datatype (FP16 and BF16 travel raw only)
_CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
             "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
             "UINT16": "uint_contents", "UINT32": "uint_contents",
             "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents",
             "BYTES": "bytes_contents"}
_STATUS_CODES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 405: "UNIMPLEMENTED",
                 413: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}


@functools.lru_cache(maxsize=1)
def messages() -> dict[str, Any]:
    """Message classes by name (``ModelInferRequest``, ...), from the service's
    descriptor in a pool of their own."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    from kfp_interop.serving.grpc_descriptor import DESCRIPTOR_SET

    files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(DESCRIPTOR_SET))
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    names = {n for pair in _METHODS.values() for n in pair}
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"inference.{n}"))
            for n in names}


# -- tensors ----------------------------------------------------------------------------
def decode_infer(request, limits) -> tuple[dict[str, Any], list[dict] | None]:
    """A ModelInferRequest's inputs as ``{name: (datatype, array)}`` and its requested
    outputs (``None``: all), checked like REST's.

    Raises:
        InferenceRequestError, PayloadTooLargeError: named.
    """
    import numpy as np

    from kfp_interop.serving.codec import _DATATYPES, MAX_DIMS, _from_binary

    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InferenceRequestError(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs: "
            "send every input raw, or none.")
    inputs: dict[str, Any] = {}
    for i, t in enumerate(request.inputs):
        name, datatype, shape = t.name, t.datatype, [int(d) for d in t.shape]
        if not name or name in inputs:
            raise InferenceRequestError(f"Input {name!r}: every input needs a name of its "
                                        "own.")
        if datatype not in _DATATYPES:
            raise InferenceRequestError(f"Input {name!r}: datatype {datatype!r} is not one "
                                        f"of {sorted(_DATATYPES)}.")
        if any(d < 0 for d in shape) or len(shape) > MAX_DIMS:
            raise InferenceRequestError(f"Input {name!r}: shape {shape} must be at most "
                                        f"{MAX_DIMS} non-negative dimensions.")
        count = math.prod(shape)
        if count > limits.max_elements:
            raise PayloadTooLargeError(
                f"Input {name!r} of shape {shape} has {count} elements; this server accepts "
                f"at most {limits.max_elements} per input (--max-elements).")
        if raw:
            arr = _from_binary(name, datatype, shape, count, raw[i])
        else:
            field = _CONTENTS.get(datatype)
            if field is None:
                raise InferenceRequestError(f"Input {name!r}: {datatype} has no typed "
                                            "contents field; send it in raw_input_contents.")
            values = getattr(t.contents, field)
            if len(values) != count:
                raise InferenceRequestError(f"Input {name!r}: shape {shape} needs {count} "
                                            f"values, {field} has {len(values)}.")
            if datatype == "BYTES":
                from kfp_interop.serving.codec import _text

                arr = np.array([_text(name, bytes(v)) for v in values],
                               dtype=object).reshape(shape)
            else:
                from kfp_interop.serving.codec import _NP

                try:
                    arr = np.array(values, dtype=_NP[datatype][0]).reshape(shape)
                except OverflowError as e:
                    raise InferenceRequestError(f"Input {name!r}: a value does not fit "
                                                f"{datatype} ({e}).") from e
        inputs[name] = (datatype, arr)
    requested = [{"name": o.name} for o in request.outputs] or None
    return inputs, requested


def encode_infer(response_class, model: "ServedModel", request_id: str, results: list):
    """A ModelInferResponse with ``raw_output_contents``."""
    from kfp_interop.serving.codec import _to_binary

    response = response_class(model_name=model.name, model_version=model.version,
                              id=request_id)
    for spec, arr in results:
        response.outputs.add(name=spec["name"], datatype=spec["datatype"],
                             shape=list(arr.shape))
        response.raw_output_contents.append(_to_binary(spec["datatype"], arr))
    return response


def _serve_in_worker(data: bytes, limits) -> tuple[bytes, int, float]:
    """Worker process (see :mod:`.workers`): one serialized ModelInferRequest ->
    ``(serialized response, rows, seconds in ONNX Runtime)``."""
    from kfp_interop.serving import workers

    msgs = messages()
    request = msgs["ModelInferRequest"].FromString(data)
    del data
    inputs, requested = decode_infer(request, limits)
    model = workers._MODEL
    feeds, names = model.validate(inputs, requested)
    start = time.perf_counter()
    results = model.run(feeds, names)
    infer_s = time.perf_counter() - start
    from kfp_interop.serving.runtime import feed_rows

    rows = feed_rows(feeds)
    response = encode_infer(msgs["ModelInferResponse"], model, request.id, results)
    return response.SerializeToString(), rows, infer_s


# -- the service ------------------------------------------------------------------------
class _Service:
    def __init__(self, app: Any):  # the OIPApp (not imported: app imports this module)
        self.app = app
        self.m = messages()

    async def ServerLive(self, request, context):
        return self.m["ServerLiveResponse"](live=True)

    async def ServerReady(self, request, context):
        return self.m["ServerReadyResponse"](ready=self.app.repository.ready)

    async def ModelReady(self, request, context):
        try:
            model = self.app.repository.get(request.name, request.version or None)
        except ModelNotFoundError:
            return self.m["ModelReadyResponse"](ready=False)
        return self.m["ModelReadyResponse"](ready=model.ready)

    async def ServerMetadata(self, request, context):
        return self.m["ServerMetadataResponse"](
            name="kfp-interop", version=__version__,
            extensions=["binary_tensor_data", "model_repository"])

    async def ModelMetadata(self, request, context):
        model = self.app.repository.get(request.name, request.version or None)
        model.check_ready()
        meta = model.metadata
        response = self.m["ModelMetadataResponse"](
            name=model.name, versions=[model.version], platform=meta["platform"])
        for kind in ("inputs", "outputs"):
            for t in meta[kind]:
                getattr(response, kind).add(name=t["name"], datatype=t["datatype"],
                                            shape=t["shape"])
        return response

    async def ModelInfer(self, data: bytes, context):
        """Takes the serialized request: a large one goes to a worker process as it is."""
        from google.protobuf.message import DecodeError

        app = self.app
        start = time.perf_counter()
        try:
            request = self.m["ModelInferRequest"].FromString(data)
        except DecodeError as e:
            raise InferenceRequestError(f"The message is not a ModelInferRequest ({e}).") \
                from e
        model = app.repository.get(request.model_name, request.model_version or None)
        model.check_ready()
        if len(data) > app.small_body_bytes:
            del request

            async def large():
                async with app._large:
                    return await app.serve_large(model, _serve_in_worker, data, app.limits)

            return await app.track(model, large())

        async def infer():
            inputs, requested = decode_infer(request, app.limits)
            return await app.serve_decoded(
                model, inputs, requested, start,
                lambda results: encode_infer(self.m["ModelInferResponse"], model,
                                             request.id, results).SerializeToString())

        return await app.track(model, infer())

    async def RepositoryIndex(self, request, context):
        response = self.m["RepositoryIndexResponse"]()
        for row in self.app.repository.index(request.ready):
            response.models.add(**row)
        return response

    async def RepositoryModelLoad(self, request, context):
        await asyncio.get_running_loop().run_in_executor(
            self.app._executor, self.app.repository.load, request.model_name)
        return self.m["RepositoryModelLoadResponse"]()

    async def RepositoryModelUnload(self, request, context):
        self.app.repository.unload(request.model_name)
        return self.m["RepositoryModelUnloadResponse"]()


def _guarded(method):
    """Our errors as gRPC statuses (a bug: INTERNAL, logged)."""
    import grpc

    @functools.wraps(method)
    async def call(request, context):
        try:
            return await method(request, context)
        except Exception as e:  # noqa: BLE001 - every error becomes a status
            status = http_status(e)
            if status is None:
                log.exception("internal error")
            code = getattr(grpc.StatusCode, _STATUS_CODES.get(status, "INTERNAL"))
            await context.abort(code, str(e))
    return call


async def start_grpc(app: Any, address: str):
    """Start the gRPC server on ``address`` (``host:port``) in the running loop."""
    import grpc

    service = _Service(app)
    handlers = {}
    for rpc, (req, resp) in _METHODS.items():
        raw = rpc == "ModelInfer"
        handlers[rpc] = grpc.unary_unary_rpc_method_handler(
            _guarded(getattr(service, rpc)),
            request_deserializer=None if raw else service.m[req].FromString,
            response_serializer=(lambda b: b) if raw else service.m[resp].SerializeToString)
    cap = app.limits.max_body_bytes
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", cap),
                                      ("grpc.max_send_message_length", -1)])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE,
                                                                          handlers)])
    if server.add_insecure_port(address) == 0:
        raise InferenceRequestError(f"Cannot listen for gRPC on {address}.")
    await server.start()
    return server
