"""Does the server stay responsive while large requests are in flight?

Starts a real server process for an iris model on 127.0.0.1, then, in the same run:

* **idle**: ``GET /v2/health/live`` latency with nothing else in flight;
* **loaded**: the same while ``--clients`` threads each keep posting a ~``--mb`` MB JSON
  inference request (the server may accept or refuse it: what matters is that the
  health check does not wait behind it).

Prints p50 / p99 / max of both and the ratio of loaded to idle p99, plus the server's
peak resident memory. Usage: ``python benchmarks/server_load.py [--mb 32] [--clients 3]
[--seconds 10]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def percentiles(samples: list[float]) -> dict:
    a = np.asarray(samples)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "max_ms": float(a.max()), "n": len(samples)}


def probe(host: str, port: int, stop: threading.Event, out: list[float]) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    while not stop.is_set():
        t0 = time.perf_counter()
        conn.request("GET", "/v2/health/live")
        conn.getresponse().read()
        out.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.005)
    conn.close()


def big_body(mb: float, n_features: int = 4) -> bytes:
    rows = max(1, int(mb * 1e6 / (n_features * 10)))  # ~10 bytes per JSON float
    data = np.round(np.random.default_rng(0).normal(size=rows * n_features), 6).tolist()
    return json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                   "shape": [rows, n_features], "data": data}]}).encode()


def loader(host: str, port: int, body: bytes, stop: threading.Event, statuses: list) -> None:
    while not stop.is_set():
        conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            conn.request("POST", "/v2/models/iris/infer", body=body,
                         headers={"Content-Type": "application/json"})
            statuses.append(conn.getresponse().status)
        except (OSError, http.client.HTTPException) as e:
            statuses.append(type(e).__name__)
        finally:
            conn.close()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=float, default=32)
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10)
    args = p.parse_args()
    from kfp_interop.serving import start_server, stop_server
    from kfp_interop.steps import run_tabular

    tmp = tempfile.mkdtemp(prefix="kfp-interop-bench-")
    model = os.path.join(run_tabular(tmp, dataset="iris", model_name="iris")["model"],
                         "model.onnx")
    handle = start_server(model)
    host, port = "127.0.0.1", int(handle.endpoint.rsplit(":", 1)[1])
    try:
        idle: list[float] = []
        stop = threading.Event()
        t = threading.Thread(target=probe, args=(host, port, stop, idle))
        t.start()
        time.sleep(min(3.0, args.seconds / 3))
        stop.set()
        t.join()
        body = big_body(args.mb)
        loaded: list[float] = []
        statuses: list = []
        stop = threading.Event()
        threads = [threading.Thread(target=loader, args=(host, port, body, stop, statuses))
                   for _ in range(args.clients)]
        threads.append(threading.Thread(target=probe, args=(host, port, stop, loaded)))
        for th in threads:
            th.start()
        time.sleep(args.seconds)
        stop.set()
        for th in threads:
            th.join()
        result = {"idle": percentiles(idle), "loaded": percentiles(loaded)}
        print(f"body {len(body) / 1e6:.1f} MB x {args.clients} clients, {args.seconds:g} s; "
              f"large-request answers: { {s: statuses.count(s) for s in set(statuses)} }")
        print(f"{'health/live':<12}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'n':>8}")
        for name, r in result.items():
            print(f"{name:<12}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['max_ms']:>10.1f}"
                  f"{r['n']:>8}")
        print(f"loaded/idle p99: {result['loaded']['p99_ms'] / result['idle']['p99_ms']:.1f}x; "
              f"server peak RSS {rss_mb(handle.pid):.0f} MB")
    finally:
        stop_server(handle.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
