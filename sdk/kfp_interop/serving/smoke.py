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

from kfp_interop.constants import DEFAULT_TOLERANCE
from kfp_interop.dtypes import by_oip
from kfp_interop.errors import SmokeTestError
from kfp_interop.onnx_model import compare_outputs, sample_inputs
from kfp_interop.serving.client import http_json, metadata_mismatches

__all__ = ["smoke_test", "request_tensors"]


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
