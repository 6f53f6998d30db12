"""Prometheus metrics of the OIP server, named and labelled as Triton names them.

Why Triton's convention (and not KServe's Python server's ``request_*_seconds``
histograms): a platform compares this runtime with Triton, KServe's default runtime for
ONNX, and the dashboards and alerts people already run for it read these names; and
Triton's set says what a batching server must show, inference count (rows) against
execution count (batches), so the mean batch size is their ratio. Durations are
cumulative microsecond counters as Triton's are (rate() of a duration counter over
rate() of the success counter is the mean). Labels: ``model``, ``version``; failures
add ``reason`` (``REJECTED`` for a bad request, ``OTHER`` otherwise), as Triton 2.4x does.

Each server has its own registry (several servers in one test process do not mix).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServerMetrics"]


class ServerMetrics:
    """The counters and gauges of one server."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("model", "version")

        def counter(name: str, doc: str, extra: tuple = ()) -> Any:
            return Counter(name, doc, labels + extra, registry=self.registry)

        # prometheus_client appends _total to counters; Triton's names have no suffix,
        # so these are written out by _TritonNames below
        self.success = counter("nv_inference_request_success",
                               "Number of successful inference requests, all batch sizes")
        self.failure = counter("nv_inference_request_failure",
                               "Number of failed inference requests, all batch sizes",
                               ("reason",))
        self.count = counter("nv_inference_count",
                             "Number of inferences performed (a request of N rows is N)")
        self.exec_count = counter("nv_inference_exec_count",
                                  "Number of model executions performed (batches)")
        self.request_us = counter("nv_inference_request_duration_us",
                                  "Cumulative inference request duration in microseconds "
                                  "(includes queue and compute)")
        self.queue_us = counter("nv_inference_queue_duration_us",
                                "Cumulative inference queuing duration in microseconds")
        self.input_us = counter("nv_inference_compute_input_duration_us",
                                "Cumulative compute input duration in microseconds "
                                "(decoding and checking the request)")
        self.infer_us = counter("nv_inference_compute_infer_duration_us",
                                "Cumulative compute inference duration in microseconds")
        self.output_us = counter("nv_inference_compute_output_duration_us",
                                 "Cumulative inference compute output duration in "
                                 "microseconds (encoding the answer)")
        self._children: dict[tuple[str, str], tuple] = {}
        self.pending = Gauge("nv_inference_pending_request_count",
                             "Instantaneous number of pending requests awaiting execution "
                             "per-model.", labels, registry=self.registry)

    def _of(self, model: str, version: str) -> tuple:
        """The labelled children of one model version, looked up once (``labels()``
        takes a lock and builds a key on every call)."""
        key = (model, version)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = tuple(
                metric.labels(model, version) for metric in (
                    self.success, self.count, self.request_us, self.queue_us,
                    self.input_us, self.infer_us, self.output_us, self.exec_count,
                    self.pending))
        return children

    def pending_of(self, model: str, version: str):
        """The in-flight gauge of one model version."""
        return self._of(model, version)[8]

    def executed(self, model: str, version: str) -> None:
        """One model execution (a batch, or an unbatched request)."""
        self._of(model, version)[7].inc()

    def observe(self, model: str, version: str, *, rows: int, request_s: float,
                queue_s: float, input_s: float, infer_s: float, output_s: float) -> None:
        """One successful request of ``rows`` inferences."""
        us = 1e6
        success, count, request, queue, input_, infer, output, *_ = self._of(model, version)
        success.inc()
        count.inc(rows)
        request.inc(request_s * us)
        queue.inc(queue_s * us)
        input_.inc(input_s * us)
        infer.inc(infer_s * us)
        output.inc(output_s * us)

    def failed(self, model: str, version: str, reason: str) -> None:
        self.failure.labels(model, version, reason).inc()

    def render(self) -> bytes:
        """The text exposition, with Triton's counter names (no ``_total`` suffix, no
        ``_created`` series)."""
        from prometheus_client import generate_latest

        lines = []
        for line in generate_latest(self.registry).decode().splitlines():
            if line.startswith(("# HELP ", "# TYPE ")):
                head, name, rest = line[:7], *line[7:].split(" ", 1)
            else:
                head, name, rest = "", line.split("{", 1)[0].split(" ", 1)[0], None
            if name.endswith("_created"):
                continue
            if name.endswith("_total"):
                name = name[:-len("_total")]
                line = (f"{head}{name} {rest}" if head
                        else name + line[len(name) + len("_total"):])
            lines.append(line)
        return ("\n".join(lines) + "\n").encode()


def serve_metrics(metrics: ServerMetrics, host: str, port: int):
    """``GET /metrics`` of ``metrics`` on a port of its own (a daemon thread), with the
    same names as on the HTTP port (prometheus_client's own server would add
    ``_total``). Returns the server (``shutdown()`` stops it)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404, "only /metrics here")
                return
            body = metrics.render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # no access log
            pass

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
