"""The Open Inference Protocol's wire formats: JSON tensors, and the binary tensor data
extension (as Triton defines it, and as ``tritonclient.http`` uses by default for
outputs), both ways: an ``Inference-Header-Content-Length`` header gives the JSON size,
the tensors' raw little-endian bytes follow in input order, each sized by
``parameters.binary_data_size``. Datatypes come from :mod:`kfp_interop.dtypes`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from kfp_interop.dtypes import DTYPES
from kfp_interop.errors import InferenceRequestError, PayloadTooLargeError

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.serving.runtime import ServedModel

__all__ = ["Limits", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_ELEMENTS", "MAX_DIMS",
           "decode_request", "encode_response"]

# datatypes with a fixed-size binary form: name -> (numpy dtype, element size)
_NP = {d.oip: (d.numpy, d.size) for d in DTYPES if d.size and d.numpy}
# what a request may send: those, and BYTES (strings; length-prefixed when binary)
_DATATYPES = {*_NP, "BYTES"}


#: Default limits (``kfp-interop serve --max-body-mb/--max-elements`` change them).
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_ELEMENTS = 16 * 1024 * 1024
#: NumPy's own limit on dimensions; the protocol has none, so we state it.
MAX_DIMS = 32


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask of the server; above them it answers 413."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_elements: int = DEFAULT_MAX_ELEMENTS


def _loads(data: bytes) -> Any:
    """orjson first (fast); on failure the standard library, which also accepts the
    ``NaN``/``Infinity`` tokens Python clients write for missing values (JSON has none;
    binary tensor data is the portable way to send NaN). Both refuse documents nested
    deeper than about a thousand levels."""
    import json

    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if "recursion" in str(e).lower():
            raise InferenceRequestError("Request JSON is nested too deeply.") from e
    try:
        return json.loads(data)
    except RecursionError as e:
        raise InferenceRequestError("Request JSON is nested too deeply.") from e
    except ValueError as e:  # JSONDecodeError, and bytes that are not UTF-8
        raise InferenceRequestError(f"Request body is not valid JSON: {e}") from e


def _object(value: Any, what: str) -> dict:
    """``value`` when it is a JSON object or absent (``{}``), else a 400."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InferenceRequestError(f"{what} must be a JSON object, not "
                                    f"{type(value).__name__}.")
    return value


def _shape(name: str, shape: Any, limits: Limits) -> tuple[list[int], int]:
    """A checked shape and its element count (Python integers: no overflow)."""
    if (not isinstance(shape, list)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                       for d in shape)):
        raise InferenceRequestError(f"Input {name!r} needs 'shape' as a list of "
                                    f"non-negative integers, got {str(shape)[:100]}.")
    if len(shape) > MAX_DIMS:
        raise InferenceRequestError(f"Input {name!r} has {len(shape)} dimensions; at most "
                                    f"{MAX_DIMS} are accepted.")
    count = math.prod(shape)
    if count > limits.max_elements:
        raise PayloadTooLargeError(
            f"Input {name!r} of shape {shape} has {count} elements; this server accepts at "
            f"most {limits.max_elements} per input (--max-elements). Send smaller batches.")
    return shape, count


def _from_binary(name: str, datatype: str, shape: list[int], count: int, raw) -> Any:
    """A tensor from binary tensor data: raw little-endian values, or for BYTES each
    element as a 4-byte little-endian length and its bytes (Triton's encoding)."""
    import numpy as np

    if datatype != "BYTES":
        dtype, size = _NP[datatype]
        if len(raw) != count * size:
            raise InferenceRequestError(
                f"Input {name!r}: binary_data_size {len(raw)} does not match shape {shape} "
                f"of {datatype} ({count * size} bytes).")
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)
    items, pos = [], 0
    while pos < len(raw) and len(items) <= count:
        if pos + 4 > len(raw):
            break
        size = int.from_bytes(raw[pos:pos + 4], "little")
        if pos + 4 + size > len(raw):
            break
        items.append(_text(name, bytes(raw[pos + 4:pos + 4 + size])))
        pos += 4 + size
    if pos != len(raw) or len(items) != count:
        raise InferenceRequestError(
            f"Input {name!r}: the BYTES data is not {count} length-prefixed strings of "
            f"{len(raw)} bytes in all (shape {shape}).")
    return np.array(items, dtype=object).reshape(shape)


def _text(name: str, value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InferenceRequestError(f"Input {name!r}: a BYTES element is not UTF-8 text "
                                    f"({e}).") from e


def _from_json(name: str, datatype: str, shape: list[int], count: int, data: Any) -> Any:
    """A tensor from JSON ``data`` (a flat or nested list of the datatype's values)."""
    import numpy as np

    if not isinstance(data, list):
        raise InferenceRequestError(f"Input {name!r}: 'data' must be a list of "
                                    f"{datatype} values.")
    if datatype == "BYTES":
        flat = _flatten(name, data, count)
        if not all(isinstance(v, str) for v in flat):
            raise InferenceRequestError(f"Input {name!r}: BYTES data must be strings.")
        arr = np.array(flat, dtype=object)
    else:
        try:
            arr = np.asarray(data, dtype=_NP[datatype][0])
        except (ValueError, TypeError, OverflowError) as e:
            raise InferenceRequestError(
                f"Input {name!r}: data is not a list of {datatype} values ({e}).") from e
    if arr.size != count:
        raise InferenceRequestError(
            f"Input {name!r}: shape {shape} needs {count} values, data has {arr.size}.")
    return arr.reshape(shape)


def _flatten(name: str, data: list, count: int) -> list:
    out, stack = [], [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            out.append(v)
            if len(out) > count:
                raise InferenceRequestError(f"Input {name!r}: data has more than the "
                                            f"{count} values its shape needs.")
        else:
            stack.pop()
    return out


def decode_request(body: bytes, header_length: str | None, limits: Limits = Limits()
                   ) -> tuple[dict, dict, list | None, bool]:
    """Parse and check an OIP inference request (JSON, or JSON + binary tensors).

    Returns:
        ``(request, inputs, requested_outputs, binary_output_default)`` where ``inputs``
        maps name -> (datatype, ndarray) and ``requested_outputs`` is a list of
        ``{"name": str, "parameters": dict}`` or ``None``.

    Raises:
        InferenceRequestError: malformed JSON, missing or mistyped fields, data not
            matching its shape (HTTP 400).
        PayloadTooLargeError: more elements than ``limits`` allow (HTTP 413).
    """
    import numpy as np

    json_size = len(body)
    if header_length is not None:
        try:
            json_size = int(header_length)
        except ValueError as e:
            raise InferenceRequestError(
                f"Inference-Header-Content-Length {header_length!r} is not an integer.") from e
        if not 0 < json_size <= len(body):
            raise InferenceRequestError(f"Inference-Header-Content-Length {json_size} does not "
                                        f"fit a body of {len(body)} bytes.")
    request = _loads(body[:json_size])
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
        name, datatype = item.get("name"), item.get("datatype")
        if not isinstance(name, str):
            raise InferenceRequestError(f"inputs[{i}] needs a string 'name'.")
        if name in inputs:
            raise InferenceRequestError(f"Input {name!r} is given twice.")
        if not isinstance(datatype, str) or datatype not in _DATATYPES:
            raise InferenceRequestError(
                f"Input {name!r} has datatype {str(datatype)[:40]!r}; use one of "
                f"{sorted(_DATATYPES)}.")
        shape, count = _shape(name, item.get("shape"), limits)
        nbytes = _object(item.get("parameters"), f"Input {name!r} 'parameters'").get(
            "binary_data_size")
        if nbytes is not None:
            if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes < 0:
                raise InferenceRequestError(f"Input {name!r}: binary_data_size "
                                            f"{str(nbytes)[:40]} is not a byte count.")
            if offset + nbytes > len(body):
                raise InferenceRequestError(f"Input {name!r}: the body ends before its "
                                            f"{nbytes} binary bytes.")
            arr = _from_binary(name, datatype, shape, count,
                               memoryview(body)[offset:offset + nbytes])
            offset += nbytes
        else:
            if "data" not in item:
                raise InferenceRequestError(f"Input {name!r} has no 'data' (and no "
                                            "binary_data_size).")
            arr = _from_json(name, datatype, shape, count, item["data"])
        inputs[name] = (datatype, arr)
    if offset != len(body):
        raise InferenceRequestError(f"Request has {len(body) - offset} unexpected trailing bytes.")
    outputs = request.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list):
            raise InferenceRequestError("'outputs' must be a list of objects with a 'name'.")
        checked = []
        for i, o in enumerate(outputs):
            if not isinstance(o, dict) or not isinstance(o.get("name"), str):
                raise InferenceRequestError(f"outputs[{i}] must be an object with a string "
                                            "'name'.")
            checked.append({"name": o["name"],
                            "parameters": _object(o.get("parameters"),
                                                  f"outputs[{i}] 'parameters'")})
        outputs = checked
    if "id" in request and not isinstance(request["id"], str):
        raise InferenceRequestError("The request 'id' must be a string.")
    params = _object(request.get("parameters"), "Request 'parameters'")
    binary_default = params.get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise InferenceRequestError("'binary_data_output' must be true or false.")
    return request, inputs, outputs, binary_default


def _to_binary(datatype: str, arr: Any) -> bytes:
    import numpy as np

    if datatype != "BYTES":
        return np.ascontiguousarray(arr, dtype=_NP[datatype][0]).tobytes()
    parts = []
    for v in arr.reshape(-1).tolist():
        raw = v if isinstance(v, bytes) else str(v).encode("utf-8")
        parts.append(len(raw).to_bytes(4, "little") + raw)
    return b"".join(parts)


def encode_response(model: "ServedModel", request: dict, results: list, requested: list | None,
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
            raw = _to_binary(spec["datatype"], arr)
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        elif spec["datatype"] == "BYTES":
            entry["data"] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                             for v in arr.reshape(-1).tolist()]
        else:
            entry["data"] = arr.reshape(-1)
        out.append(entry)
    response: dict[str, Any] = {"model_name": model.name, "model_version": model.version,
                                "outputs": out}
    if "id" in request:
        response["id"] = request["id"]  # a string: decode_request checked it
    head = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)
