"""The Open Inference Protocol's wire formats: JSON tensors, and the binary tensor data
extension (as Triton defines it, and as ``tritonclient.http`` uses by default for
outputs), both ways: an ``Inference-Header-Content-Length`` header gives the JSON size,
the tensors' raw little-endian bytes follow in input order, each sized by
``parameters.binary_data_size``. Datatypes come from :mod:`kfp_interop.dtypes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kfp_interop.dtypes import DTYPES
from kfp_interop.errors import InferenceRequestError

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.serving.runtime import ServedModel

__all__ = ["decode_request", "encode_response"]

# datatypes with a fixed-size binary form: name -> (numpy dtype, element size)
_NP = {d.oip: (d.numpy, d.size) for d in DTYPES if d.size and d.numpy}


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
        except ValueError as e:
            raise InferenceRequestError(
                f"Inference-Header-Content-Length {header_length!r} is not an integer.") from e
        if not 0 < json_size <= len(body):
            raise InferenceRequestError(f"Inference-Header-Content-Length {json_size} does not "
                                        f"fit a body of {len(body)} bytes.")
    try:
        request = _loads(body[:json_size])
    except ValueError as e:
        raise InferenceRequestError(f"Request body is not valid JSON: {e}") from e
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
                    f"Input {name!r}: data is not a list of {datatype} values ({e}).") from e
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
