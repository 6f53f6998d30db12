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
from kfp_interop.errors import InvalidInputError, SmokeTestError
from kfp_interop.serving.client import http_json, metadata_mismatches

__all__ = ["smoke_test"]


def smoke_test(endpoint: str, model_path: str, X, *, tolerance: float = DEFAULT_TOLERANCE,
               timeout: float = 10.0, model_name: str | None = None) -> dict[str, Any]:
    """Check a live endpoint against the ONNX file (and record) it should serve.

    Args:
        endpoint: base URL, e.g. ``http://127.0.0.1:8080``.
        model_path: the ONNX file with its attached record.
        X: sample rows (n, n_features).
        tolerance: max absolute difference allowed for probabilities/values.
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
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] == 0:
        raise InvalidInputError(f"Smoke test needs a non-empty 2-D array of rows, got shape "
                                f"{list(X.shape)}.")
    base = endpoint.rstrip("/")
    report: dict[str, Any] = {"endpoint": base, "model": name, "rows": int(X.shape[0]),
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

    tensor = {"name": record.inputs[0]["name"], "datatype": record.inputs[0]["datatype"],
              "shape": list(X.shape)}
    binary = None
    if np.isfinite(X).all():
        tensor["data"] = X.reshape(-1).tolist()
    else:  # JSON has no NaN: send missing values as binary tensor data
        binary = X.astype("<f4").tobytes()
        tensor["parameters"] = {"binary_data_size": len(binary)}
    request = {"id": "kfp-interop-smoke", "inputs": [tensor]}
    t0 = time.perf_counter()
    status, resp = http_json("POST", f"{base}/v2/models/{name}/infer", request,
                             timeout=timeout, binary=binary)
    report["latency_ms"] = round((time.perf_counter() - t0) * 1000, 3)
    if status != 200:
        fail(f"POST /v2/models/{name}/infer answered {status}: {resp}")
    try:
        served = {o["name"]: np.asarray(o["data"], dtype=np.float64).reshape(o["shape"])
                  for o in resp["outputs"]}
    except (KeyError, TypeError, ValueError) as e:
        fail(f"inference response is not an OIP response ({e}): {str(resp)[:300]}")
    sess = ort_session(model_path)
    names = [o.name for o in sess.get_outputs()]
    expected = dict(zip(names, sess.run(None, {record.inputs[0]["name"]: X})))
    max_diff, problems = 0.0, []
    for out_name, exp in expected.items():
        got = served.get(out_name)
        exp = np.asarray(exp, dtype=np.float64)
        if got is None or got.shape != exp.shape:
            problems.append(f"output {out_name!r} shape {None if got is None else list(got.shape)}"
                            f" != {list(exp.shape)}")
            continue
        diff = float(np.max(np.abs(got - exp))) if exp.size else 0.0
        if out_name == LABEL_OUTPUT and diff != 0.0:
            problems.append(f"labels differ on {int(np.sum(got != exp))} row(s)")
        max_diff = max(max_diff, diff)
    report["max_abs_diff"] = max_diff
    ok = not problems and max_diff <= tolerance
    report["checks"]["inference"] = {"passed": ok, "max_abs_diff": max_diff,
                                     "problems": problems}
    if not ok:
        fail("; ".join(problems) or f"max difference {max_diff:.3g} exceeds {tolerance:g}")
    report["passed"] = True
    return report
