"""Smoke tests against a live Open Inference Protocol endpoint.

Two checks, both of which must pass:

1. **metadata**: ``GET /v2/models/{name}`` agrees with the attached record (name,
   version, platform, input and output tensors, and the ``onnx_sha256`` property when the
   server reports one): the endpoint serves *this* model, not just *a* model.
2. **inference**: sample rows sent through ``POST .../infer`` come back equal to what
   ONNX Runtime computes locally on the same file (labels exactly, probabilities or values
   within the parity tolerance).
"""

from __future__ import annotations

import time
from typing import Any

from kfp_interop.constants import DEFAULT_TOLERANCE, LABEL_OUTPUT
from kfp_interop.dtypes import by_oip
from kfp_interop.errors import InvalidInputError, SmokeTestError
from kfp_interop.serving.client import http_json, metadata_mismatches

__all__ = ["smoke_test", "sample_inputs", "request_tensors", "compare_outputs"]


def request_tensors(inputs: dict[str, Any], specs: list[dict]) -> tuple[list[dict], bytes | None]:
    """OIP request tensors for ``inputs`` (name -> array): JSON data, except float tensors
    with NaN or infinity, which travel as binary tensor data (JSON has no NaN)."""
    import numpy as np

    tensors, blobs = [], []
    for spec in specs:
        arr = np.asarray(inputs[spec["name"]])
        tensor = {"name": spec["name"], "datatype": spec["datatype"], "shape": list(arr.shape)}
        if spec["datatype"] == "BYTES":
            tensor["data"] = [v.decode() if isinstance(v, bytes) else str(v)
                              for v in arr.reshape(-1).tolist()]
        elif arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raw = np.ascontiguousarray(arr, dtype=by_oip(spec["datatype"]).numpy).tobytes()
            tensor["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            tensor["data"] = arr.reshape(-1).tolist()
        tensors.append(tensor)
    return tensors, (b"".join(blobs) if blobs else None)


def compare_outputs(expected: dict[str, Any], served: dict[str, Any], specs: list[dict]
                    ) -> tuple[float, list[str]]:
    """``(max absolute difference of float outputs, problems)``: integer, boolean and
    BYTES outputs must be equal, float ones within the caller's tolerance."""
    import numpy as np

    max_diff, problems = 0.0, []
    for spec in specs:
        name = spec["name"]
        exp, got = np.asarray(expected[name]), served.get(name)
        if got is None or list(np.shape(got)) != list(exp.shape):
            problems.append(f"output {name!r} shape "
                            f"{None if got is None else list(np.shape(got))} != {list(exp.shape)}")
            continue
        if spec["datatype"] == "BYTES" or exp.dtype.kind not in "fc":
            same = np.asarray(got, dtype=object if spec["datatype"] == "BYTES" else exp.dtype)
            unequal = int(np.sum(same.astype(str) != exp.astype(str)) if spec["datatype"]
                          == "BYTES" else np.sum(same != exp))
            if unequal:
                what = "labels differ" if name == LABEL_OUTPUT else f"output {name!r} differs"
                problems.append(f"{what} on {unequal} value(s)")
            continue
        got = np.asarray(got, dtype=np.float64)
        exp = exp.astype(np.float64)
        both_nan = np.isnan(got) & np.isnan(exp)
        diff = np.where(both_nan, 0.0, np.abs(got - exp))
        max_diff = max(max_diff, float(np.nanmax(diff, initial=0.0)) if diff.size else 0.0)
        if np.isnan(diff).any():
            problems.append(f"output {name!r} is NaN where it should not be")
    return max_diff, problems


def smoke_test(endpoint: str, model_path: str, X, *, tolerance: float = DEFAULT_TOLERANCE,
               timeout: float = 10.0, model_name: str | None = None) -> dict[str, Any]:
    """Check a live endpoint against the ONNX file (and record) it should serve.

    Args:
        endpoint: base URL, e.g. ``http://127.0.0.1:8080``.
        model_path: the ONNX file with its attached record.
        X: sample rows: a 2-D array (n, n_features) for a single-input model, or a dict
            of arrays by input name (several inputs, any datatype).
        tolerance: max absolute difference allowed for float outputs (others: equal).
        model_name: the served name (default: the record's name).

    Returns:
        The report: ``passed``, ``checks``, ``max_abs_diff``, ``rows``, ``latency_ms``.

    Raises:
        SmokeTestError: a check failed or the endpoint is unreachable (``.report``
            holds the report).
    """
    import numpy as np

    from kfp_interop.metadata import load_metadata
    from kfp_interop.onnx_model import ort_session

    record = load_metadata(model_path)
    name = model_name or record.name
    inputs = sample_inputs(X, record.inputs)
    rows = int(next(iter(inputs.values())).shape[0]) if record.inputs[0]["shape"] else 1
    base = endpoint.rstrip("/")
    report: dict[str, Any] = {"endpoint": base, "model": name, "rows": rows,
                              "tolerance": tolerance, "checks": {}, "passed": False}

    def fail(msg: str):
        report["error"] = msg
        raise SmokeTestError(f"Smoke test of {name!r} at {base} failed: {msg}", report)

    status, meta = http_json("GET", f"{base}/v2/models/{name}", timeout=timeout)
    if status != 200:
        fail(f"GET /v2/models/{name} answered {status}: {meta}")
    diffs = metadata_mismatches(meta, record)
    report["checks"]["metadata"] = {"passed": not diffs, "mismatched": diffs}
    if diffs:
        fail(f"served metadata differs from the record in {diffs}: the endpoint serves "
             "another model (or another version).")

    tensors, binary = request_tensors(inputs, record.inputs)
    request = {"id": "kfp-interop-smoke", "inputs": tensors}
    t0 = time.perf_counter()
    status, resp = http_json("POST", f"{base}/v2/models/{name}/infer", request,
                             timeout=timeout, binary=binary)
    report["latency_ms"] = round((time.perf_counter() - t0) * 1000, 3)
    if status != 200:
        fail(f"POST /v2/models/{name}/infer answered {status}: {resp}")
    try:
        served = {o["name"]: np.asarray(o["data"], dtype=object if o["datatype"] == "BYTES"
                                        else np.float64).reshape(o["shape"])
                  for o in resp["outputs"]}
    except (KeyError, TypeError, ValueError) as e:
        fail(f"inference response is not an OIP response ({e}): {str(resp)[:300]}")
    sess = ort_session(model_path)
    expected = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, inputs)))
    max_diff, problems = compare_outputs(expected, served, record.outputs)
    report["max_abs_diff"] = max_diff
    ok = not problems and max_diff <= tolerance
    report["checks"]["inference"] = {"passed": ok, "max_abs_diff": max_diff,
                                     "problems": problems}
    if not ok:
        fail("; ".join(problems) or f"max difference {max_diff:.3g} exceeds {tolerance:g}")
    report["passed"] = True
    return report


def sample_inputs(X: Any, specs: list[dict]) -> dict[str, Any]:
    """The sample as ``{input name: array}`` in each input's datatype.

    Raises:
        InvalidInputError: a missing or unknown input, an empty sample.
    """
    import numpy as np

    if not isinstance(X, dict):
        if len(specs) != 1:
            raise InvalidInputError(f"The model takes {len(specs)} inputs "
                                    f"({[s['name'] for s in specs]}): give the sample as a "
                                    "dict of arrays by input name.")
        X = {specs[0]["name"]: X}
    names = [s["name"] for s in specs]
    if sorted(X) != sorted(names):
        raise InvalidInputError(f"The sample has inputs {sorted(X)}; the model takes "
                                f"{sorted(names)}.")
    out = {}
    for spec in specs:
        dtype = object if spec["datatype"] == "BYTES" else by_oip(spec["datatype"]).numpy
        arr = np.ascontiguousarray(X[spec["name"]], dtype=dtype)
        if arr.size == 0:
            raise InvalidInputError(f"The sample of input {spec['name']!r} is empty.")
        out[spec["name"]] = arr
    return out
