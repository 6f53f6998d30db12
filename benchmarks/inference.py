"""Inference latency: native predict_proba vs ONNX Runtime vs the kfp-interop OIP server.

For a scikit-learn random forest and an XGBoost model (breast_cancer, 30 features), one
row and 1,000 rows, it measures in the same run:

* native ``predict_proba``;
* raw ONNX Runtime (``InferenceSession.run``, one intra-op thread, as the server uses);
* the server over HTTP on 127.0.0.1 (a real process, keep-alive connection, request body
  serialized before timing, so the figure is the server's and the network's, not the
  client's JSON encoding), with JSON and with binary tensor data.

and prints p50 latencies and the two ratios the targets are about:

* ``ort_speedup_1row`` = native p50 / ONNX Runtime p50, one row (target >= 10);
* ``server_overhead_ms_1row`` = server p50 - ONNX Runtime p50, one row (target <= 1 ms).

Usage: ``python benchmarks/inference.py [--repeat 300] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np


def p50_ms(fn, repeat: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def report(results: dict, *, target: str, ok: bool, json_path: str | None,
           digits: int = 3) -> None:
    """Print the results table (one column per model) and the target verdict; optionally
    write them as JSON."""
    keys = list(next(iter(results.values())))
    width = max(len(k) for k in keys) + 2
    print(f"{'measure (p50)':<{width}}" + "".join(f"{name:>12}" for name in results))
    for k in keys:
        print(f"{k:<{width}}" + "".join(f"{results[n][k]:>12.{digits}f}" for n in results))
    print(f"{target}: {'met' if ok else 'NOT met'}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=2)


def build(tmp: str, framework: str) -> str:
    from kfp_interop.steps import run_tabular

    estimator = "random_forest" if framework == "sklearn" else ""
    return run_tabular(os.path.join(tmp, framework), dataset="breast_cancer",
                       framework=framework, estimator=estimator,
                       model_name=f"bench-{framework}")["model"]


def bench_model(model_dir: str, framework: str, repeat: int) -> dict:
    from kfp_interop.data import load_dataset
    from kfp_interop.frameworks import load_native
    from kfp_interop.onnx_model import ort_session
    from kfp_interop.serving import start_server, stop_server

    native_dir = os.path.join(os.path.dirname(model_dir), "native")
    native = load_native(native_dir, framework=framework, task="classification")
    X = load_dataset("breast_cancer").X
    X1000 = np.resize(X, (1000, X.shape[1]))
    onnx_path = os.path.join(model_dir, "model.onnx")
    sess = ort_session(onnx_path, threads=1)
    handle = start_server(onnx_path)
    conn = http.client.HTTPConnection("127.0.0.1", int(handle.endpoint.rsplit(":", 1)[1]))
    path = f"/v2/models/{handle.model_name}/infer"

    def json_body(rows):
        return json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                       "shape": list(rows.shape),
                                       "data": rows.astype(np.float32).reshape(-1).tolist()}]}
                          ).encode()

    def binary_body(rows):
        raw = rows.astype("<f4").tobytes()
        head = json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                       "shape": list(rows.shape),
                                       "parameters": {"binary_data_size": len(raw)}}],
                           "outputs": [{"name": "label", "parameters": {"binary_data": True}},
                                       {"name": "probabilities",
                                        "parameters": {"binary_data": True}}]}).encode()
        return head + raw, {"Inference-Header-Content-Length": str(len(head))}

    def post(body, headers=None):
        conn.request("POST", path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        assert r.status == 200, data[:300]

    out = {}
    try:
        for n, rows, rep in (("1row", X[:1], repeat), ("1000rows", X1000, max(20, repeat // 10))):
            rows32 = rows.astype(np.float32)
            out[f"native_{n}_ms"] = p50_ms(lambda: native.predict_proba(rows), rep)
            out[f"ort_{n}_ms"] = p50_ms(lambda: sess.run(None, {"input": rows32}), rep)
            body = json_body(rows)
            out[f"server_json_{n}_ms"] = p50_ms(lambda: post(body), rep)
            bbody, headers = binary_body(rows)
            out[f"server_binary_{n}_ms"] = p50_ms(lambda: post(bbody, headers), rep)
    finally:
        conn.close()
        stop_server(handle.pid)
    out["ort_speedup_1row"] = out["native_1row_ms"] / out["ort_1row_ms"]
    out["ort_speedup_1000rows"] = out["native_1000rows_ms"] / out["ort_1000rows_ms"]
    out["server_overhead_ms_1row"] = out["server_json_1row_ms"] - out["ort_1row_ms"]
    out["server_overhead_ms_1000rows_binary"] = (out["server_binary_1000rows_ms"]
                                                 - out["ort_1000rows_ms"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for framework in ("sklearn", "xgboost"):
            results[framework] = bench_model(build(tmp, framework), framework, args.repeat)
    ok = all(r["ort_speedup_1row"] >= 10 and r["server_overhead_ms_1row"] <= 1.0
             for r in results.values())
    report(results, target="targets (ORT >= 10x native at 1 row; server <= ORT + 1 ms at "
                           "1 row)", ok=ok, json_path=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
