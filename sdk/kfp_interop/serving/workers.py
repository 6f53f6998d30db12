"""Large requests are served by worker processes, so the server's event loop keeps
answering while they are in flight.

Why processes and not threads: decoding a large JSON request (orjson, then NumPy) and
encoding a large JSON answer are long C calls that hold Python's GIL. Measured on a
32 MB request: ~180 ms in ``orjson.loads`` and ~60 ms in ``numpy.asarray``; in a thread
that still kept ``/v2/health/live`` waiting up to ~290 ms (``benchmarks/server_load.py``).
A worker process has its own GIL: the server only moves bytes to it and back. This is
what MLServer's parallel inference workers do too. Workers start with ``spawn`` (not
``fork``, which is unsafe in a threaded server) and load their own ONNX Runtime session.
"""

from __future__ import annotations

import concurrent.futures
import os
import multiprocessing
import threading
from typing import TYPE_CHECKING

from kfp_interop.errors import ModelNotReadyError
from kfp_interop.serving.codec import Limits, decode_request, encode_response

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.serving.runtime import ServedModel

__all__ = ["WorkerPool", "serve_rest"]

_MODEL = None  # the model of this worker process


def _exit_with_parent(parent: int) -> None:
    """End this worker when the server that started it is gone (a server killed with
    SIGKILL never shuts its pool down; its workers would live on, orphaned): on Linux
    the kernel signals it (PR_SET_PDEATHSIG); everywhere, a thread checks the parent."""
    import os
    import signal
    import threading
    import time

    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(0)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _load(path: str, name: str | None, threads: int, version: str | None,
          parent: int | None = None) -> None:
    global _MODEL
    from kfp_interop.serving.runtime import ServedModel

    if parent is not None:
        _exit_with_parent(parent)

    # large requests run alone: no batching in the workers
    _MODEL = ServedModel(path, name, threads=threads, version=version,
                         batching=False).load()


def _ping() -> bool:
    return _MODEL is not None


def serve_rest(body: bytes, header_length: str | None, limits: Limits
               ) -> tuple[tuple[bytes, int | None], int, float]:
    """Decode, infer and encode one REST request in the worker (its errors travel back):
    ``((payload, JSON size), rows, seconds in ONNX Runtime)``."""
    import time

    request, inputs, requested, binary = decode_request(body, header_length, limits)
    del body
    feeds, names = _MODEL.validate(inputs, requested)
    start = time.perf_counter()
    results = _MODEL.run(feeds, names)
    infer_s = time.perf_counter() - start
    from kfp_interop.serving.runtime import feed_rows

    rows = feed_rows(feeds)
    return encode_response(_MODEL, request, results, requested, binary), rows, infer_s


class WorkerPool:
    """``size`` worker processes serving one model, started on first use."""

    def __init__(self, model: "ServedModel", size: int):
        self.model = model
        self.size = max(1, size)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.size, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_load, initargs=(self.model.path, self.model.requested_name,
                                                 self.model.threads,
                                                 self.model.requested_version,
                                                 os.getpid()))
            return self._pool

    def warm(self) -> None:
        """Start the workers and load the model in them (blocks until they answer)."""
        pool = self._executor()
        for future in [pool.submit(_ping) for _ in range(self.size)]:
            future.result()

    def call(self, fn, *args):
        """``fn(*args)`` in a worker (a module-level function that reads the worker's
        model, ``_MODEL``); a worker that died is replaced (and this request answered
        503)."""
        try:
            return self._executor().submit(fn, *args).result()
        except concurrent.futures.process.BrokenProcessPool as e:
            with self._lock:
                self._pool = None
            raise ModelNotReadyError(f"The worker serving {self.model.name!r} stopped while "
                                     "answering this request; retry it (smaller batches "
                                     "need less memory).") from e

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
