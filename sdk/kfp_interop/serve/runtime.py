"""ONNX models behind the Open Inference Protocol: loading, request validation, the
JSON and binary tensor codecs, and inference. No web framework here (see ``app.py``).

Errors map to OIP statuses in one place, :data:`STATUS`: 400 bad request, 404 unknown
model or version, 503 model not ready.

The binary tensor data extension (as Triton defines it, and as ``tritonclient.http``
uses by default for outputs) is supported both ways: an ``Inference-Header-Content-
Length`` header gives the JSON size, the tensors' raw little-endian bytes follow in
input order, each sized by ``parameters.binary_data_size``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kfp_interop.errors import InteropError, MetadataValidationError

__all__ = ["InferenceRequestError", "ModelNotFoundError", "ModelNotReadyError", "STATUS",
           "ServedModel", "ModelRepository", "decode_request", "encode_response"]


class InferenceRequestError(InteropError, ValueError):
    """The request is malformed or does not fit the model (HTTP 400)."""


class ModelNotFoundError(InteropError, LookupError):
    """No such model or version (HTTP 404)."""


class ModelNotReadyError(InteropError, RuntimeError):
    """The model is loading or failed to load (HTTP 503)."""


STATUS: dict[type, int] = {InferenceRequestError: 400, ModelNotFoundError: 404,
                           ModelNotReadyError: 503}

# datatype -> (numpy dtype, element size in bytes)
_NP = {"BOOL": ("bool", 1), "UINT8": ("<u1", 1), "UINT16": ("<u2", 2), "UINT32": ("<u4", 4),
       "UINT64": ("<u8", 8), "INT8": ("<i1", 1), "INT16": ("<i2", 2), "INT32": ("<i4", 4),
       "INT64": ("<i8", 8), "FP16": ("<f2", 2), "FP32": ("<f4", 4), "FP64": ("<f8", 8)}


class ServedModel:
    """One ONNX model with its record; loads in the background (ready when loaded)."""

    def __init__(self, path: str, name: str | None = None, *, threads: int = 1):
        self.path = path
        self.threads = threads
        self.requested_name = name
        self.record = None
        self.metadata: dict[str, Any] | None = None
        self.error: str | None = None
        self._session = None
        self._inputs: dict[str, dict] = {}
        self._output_names: list[str] = []
        self._ready = threading.Event()
        self.name = name or "model"
        self.version = "1"

    # -- loading -------------------------------------------------------------
    def load(self) -> "ServedModel":
        """Load synchronously; on failure keep the error (the model stays not ready)."""
        try:
            self._load()
        except Exception as e:  # noqa: BLE001 - reported through /ready and the logs
            self.error = f"{type(e).__name__}: {e}"
            raise
        self._ready.set()
        return self

    def _load(self) -> None:
        from kfp_interop.export import tensor_specs
        from kfp_interop.metadata import METADATA_KEY, InferenceMetadata, read_onnx
        from kfp_interop.metadata.render import to_oip
        from kfp_interop.parity import ort_session

        model = read_onnx(self.path)
        inputs, outputs = tensor_specs(model)
        prop = next((p.value for p in model.metadata_props if p.key == METADATA_KEY), None)
        if prop is not None:
            record = InferenceMetadata.from_json(prop)
            if record.inputs != inputs or record.outputs != outputs:
                raise MetadataValidationError(
                    f"{self.path!r}: the record's tensors {record.inputs}/{record.outputs} "
                    f"differ from the graph's {inputs}/{outputs}; re-attach the metadata.")
            self.record = record
            self.name = self.requested_name or record.name
            self.version = record.version
            self.metadata = to_oip(record)
            self.metadata["name"] = self.name
        else:  # an ONNX file made elsewhere: describe it from its graph
            self.metadata = {"name": self.name, "versions": [self.version],
                             "platform": "onnxruntime_onnx", "inputs": inputs,
                             "outputs": outputs, "properties": {}}
        self._session = ort_session(self.path, threads=self.threads)
        self._inputs = {t["name"]: t for t in inputs}
        self._output_names = [t["name"] for t in outputs]
        self._outputs = {t["name"]: t for t in outputs}

    def load_in_background(self) -> threading.Thread:
        def run():
            try:
                self.load()
            except Exception:  # noqa: BLE001 - kept in self.error
                pass

        t = threading.Thread(target=run, name=f"load-{self.name}", daemon=True)
        t.start()
        return t

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def check_ready(self) -> None:
        if not self.ready:
            state = f"failed to load: {self.error}" if self.error else "is loading"
            raise ModelNotReadyError(f"Model {self.name!r} {state}.")

    # -- inference -----------------------------------------------------------
    def infer(self, inputs: dict[str, Any], requested: list[dict] | None):
        """Validate decoded inputs against the model, run it, return [(spec, array)]."""
        import numpy as np

        self.check_ready()
        missing = sorted(set(self._inputs) - set(inputs))
        if missing:
            raise InferenceRequestError(f"Missing input(s) {missing} for model {self.name!r}; "
                                        f"it takes {sorted(self._inputs)}.")
        feeds = {}
        for name, (datatype, arr) in inputs.items():
            spec = self._inputs.get(name)
            if spec is None:
                raise InferenceRequestError(f"Unknown input {name!r} for model {self.name!r}; "
                                            f"it takes {sorted(self._inputs)}.")
            if datatype != spec["datatype"]:
                raise InferenceRequestError(
                    f"Input {name!r} has datatype {datatype!r}; model {self.name!r} expects "
                    f"{spec['datatype']!r}.")
            want = spec["shape"]
            if len(arr.shape) != len(want) or any(w != -1 and w != g
                                                  for w, g in zip(want, arr.shape)):
                raise InferenceRequestError(
                    f"Input {name!r} has shape {list(arr.shape)}; model {self.name!r} expects "
                    f"{want} (-1 = any size).")
            feeds[name] = arr
        names = self._output_names
        if requested:
            unknown = [o.get("name") for o in requested if o.get("name") not in self._outputs]
            if unknown:
                raise InferenceRequestError(f"Unknown output(s) {unknown} for model "
                                            f"{self.name!r}; it returns {names}.")
            names = [o["name"] for o in requested]
        try:
            results = self._session.run(names, feeds)
        except Exception as e:  # onnxruntime raises its own Fail/InvalidArgument types
            raise InferenceRequestError(f"Model {self.name!r} rejected the input: {e}") from e
        return [(self._outputs[n], np.asarray(r)) for n, r in zip(names, results)]


class ModelRepository:
    """The models a server holds, by name."""

    def __init__(self, models: list[ServedModel]):
        self._models = models

    def names(self) -> list[str]:
        return [m.name for m in self._models]

    def get(self, name: str, version: str | None = None) -> ServedModel:
        for m in self._models:
            if m.name == name:
                if version is not None and m.ready and version != m.version:
                    raise ModelNotFoundError(f"Model {name!r} has no version {version!r}; "
                                             f"it serves version {m.version!r}.")
                return m
        raise ModelNotFoundError(f"Unknown model {name!r}; this server serves "
                                 f"{self.names()}.")

    @property
    def ready(self) -> bool:
        return all(m.ready for m in self._models)

    def wait_ready(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.ready or any(m.error for m in self._models):
                return self.ready
            time.sleep(0.01)
        return self.ready


def _loads(data: bytes) -> Any:
    """orjson first (fast); on failure the standard library, which also accepts the
    ``NaN``/``Infinity`` tokens Python clients write for missing values (JSON has none).
    Binary tensor data is the portable way to send NaN."""
    import json

    try:
        import orjson

        return orjson.loads(data)
    except ImportError:  # pragma: no cover - orjson comes with the serve extra
        pass
    except ValueError:
        pass
    return json.loads(data)


def decode_request(body: bytes, header_length: str | None) -> tuple[dict, dict, list | None, bool]:
    """Parse an OIP inference request (JSON, or JSON + binary tensors).

    Returns:
        ``(request, inputs, requested_outputs, binary_output_default)`` where ``inputs``
        maps name -> (datatype, ndarray).

    Raises:
        InferenceRequestError: malformed JSON, missing fields, data not matching shape.
    """
    import numpy as np

    json_size = len(body)
    if header_length is not None:
        try:
            json_size = int(header_length)
        except ValueError:
            raise InferenceRequestError(
                f"Inference-Header-Content-Length {header_length!r} is not an integer.") from None
        if not 0 < json_size <= len(body):
            raise InferenceRequestError(f"Inference-Header-Content-Length {json_size} does not "
                                        f"fit a body of {len(body)} bytes.")
    try:
        request = _loads(body[:json_size])
    except ValueError as e:
        raise InferenceRequestError(f"Request body is not valid JSON: {e}") from None
    if not isinstance(request, dict):
        raise InferenceRequestError("Request body must be a JSON object with an 'inputs' list.")
    raw_inputs = request.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InferenceRequestError("Request needs a non-empty 'inputs' list.")
    offset = json_size
    inputs: dict[str, Any] = {}
    for i, item in enumerate(raw_inputs):
        if not isinstance(item, dict):
            raise InferenceRequestError(f"inputs[{i}] must be an object.")
        name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
        if not isinstance(name, str):
            raise InferenceRequestError(f"inputs[{i}] needs a string 'name'.")
        if name in inputs:
            raise InferenceRequestError(f"Input {name!r} is given twice.")
        if datatype not in _NP:
            raise InferenceRequestError(
                f"Input {name!r} has datatype {datatype!r}; use one of {sorted(_NP)}.")
        if (not isinstance(shape, list)
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                           for d in shape)):
            raise InferenceRequestError(f"Input {name!r} needs 'shape' as a list of "
                                        f"non-negative integers, got {shape!r}.")
        dtype, size = _NP[datatype]
        count = int(np.prod(shape)) if shape else 1
        params = item.get("parameters") or {}
        nbytes = params.get("binary_data_size") if isinstance(params, dict) else None
        if nbytes is not None:
            if not isinstance(nbytes, int) or nbytes != count * size:
                raise InferenceRequestError(
                    f"Input {name!r}: binary_data_size {nbytes!r} does not match shape "
                    f"{shape} of {datatype} ({count * size} bytes).")
            if offset + nbytes > len(body):
                raise InferenceRequestError(f"Input {name!r}: the body ends before its "
                                            f"{nbytes} binary bytes.")
            arr = np.frombuffer(body, dtype=dtype, count=count, offset=offset).reshape(shape)
            offset += nbytes
        else:
            if "data" not in item:
                raise InferenceRequestError(f"Input {name!r} has no 'data' (and no "
                                            "binary_data_size).")
            try:
                arr = np.asarray(item["data"], dtype=dtype)
            except (ValueError, TypeError) as e:
                raise InferenceRequestError(
                    f"Input {name!r}: data is not a list of {datatype} values ({e}).") from None
            if arr.size != count:
                raise InferenceRequestError(
                    f"Input {name!r}: shape {shape} needs {count} values, data has {arr.size}.")
            arr = arr.reshape(shape)
        inputs[name] = (datatype, arr)
    if offset != len(body):
        raise InferenceRequestError(f"Request has {len(body) - offset} unexpected trailing bytes.")
    outputs = request.get("outputs")
    if outputs is not None and (not isinstance(outputs, list)
                                or not all(isinstance(o, dict) for o in outputs)):
        raise InferenceRequestError("'outputs' must be a list of objects with a 'name'.")
    params = request.get("parameters") or {}
    binary_default = bool(isinstance(params, dict) and params.get("binary_data_output"))
    return request, inputs, outputs, binary_default


def encode_response(model: ServedModel, request: dict, results: list, requested: list | None,
                    binary_default: bool) -> tuple[bytes, int | None]:
    """Build the response body; returns ``(body, json_size or None)``."""
    import numpy as np
    import orjson

    binary_for = {}
    for o in requested or []:
        p = o.get("parameters") or {}
        binary_for[o["name"]] = bool(p.get("binary_data", binary_default))
    out, blobs = [], []
    for spec, arr in results:
        entry = {"name": spec["name"], "datatype": spec["datatype"], "shape": list(arr.shape)}
        if binary_for.get(spec["name"], binary_default):
            raw = np.ascontiguousarray(arr, dtype=_NP[spec["datatype"]][0]).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            entry["data"] = arr.reshape(-1)
        out.append(entry)
    response: dict[str, Any] = {"model_name": model.name, "model_version": model.version,
                                "outputs": out}
    if "id" in request:
        response["id"] = request["id"]
    head = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)
