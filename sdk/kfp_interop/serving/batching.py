"""Dynamic batching: concurrent requests for one model merged into one ONNX Runtime call
and split back, as Triton's dynamic batcher does.

One :class:`Batcher` per served model version runs on the server's event loop. A request
(already validated, :meth:`ServedModel.validate`) joins the queue; the batcher takes
requests in arrival order while they fit (``max_batch_size`` rows, the same outputs
asked for, the same dimensions after the batch one) and sends the batch when it is
full, when it reaches a preferred size and nobody else waits, or when its first request
has waited ``max_queue_delay_us``. One batch runs at a time per model (Triton's one
instance): while it runs, the next one forms, so batches grow with the load instead of
with a longer delay. A request larger than ``max_batch_size`` runs alone. A batch that
ONNX Runtime refuses is run again request by request, so each request gets its own
answer or its own error.

Why not a thread with a queue: the requests arrive on the event loop (REST and gRPC
share it), and asyncio futures cost microseconds; the ONNX Runtime call itself runs in
a thread (it releases the GIL), so the loop keeps accepting requests meanwhile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING, Any, Callable

from kfp_interop.serving.runtime import feed_rows

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.serving.runtime import ServedModel

__all__ = ["Batcher", "BatchStats"]


@dataclasses.dataclass
class _Pending:
    feeds: dict[str, Any]
    names: list[str]
    rows: int
    future: asyncio.Future
    enqueued: float
    key: tuple


@dataclasses.dataclass(frozen=True)
class BatchStats:
    """What one request went through, for the metrics: its wait and the batch's run."""

    queue_s: float
    compute_s: float
    batch_rows: int
    batch_requests: int


def _key(feeds: dict[str, Any], names: list[str]) -> tuple:
    """Requests with the same key can share a batch: outputs asked for, and each input's
    dimensions after the batch one."""
    return (tuple(names), tuple(sorted((n, a.shape[1:]) for n, a in feeds.items())))


#: executions faster than this run on the event loop, slower ones in a thread
INLINE_S = 0.0003


class Batcher:
    """The dynamic batcher of one model; ``run_in_thread(fn, *args)`` runs a call off
    the event loop (the server's executor)."""

    def __init__(self, model: "ServedModel", run_in_thread: Callable[..., Any],
                 on_execution: Callable[[], None] = lambda: None):
        self.model = model
        self.config = model.batching
        self._run_in_thread = run_in_thread
        self._on_execution = on_execution
        self._queue: list[_Pending] = []
        #: a running mean of one execution's seconds: models faster than INLINE_S run on
        #: the event loop (a thread hop would cost more than the model)
        self._mean_s = 0.001
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False

    async def infer(self, feeds: dict[str, Any], names: list[str]
                    ) -> tuple[list, BatchStats]:
        """Run validated ``feeds`` in a batch: ``(results, stats)``."""
        rows = feed_rows(feeds)
        if rows > self.config.max_batch_size:  # larger than any batch: alone
            start = time.perf_counter()
            results = await self._run_in_thread(self.model.run, feeds, names)
            self._on_execution()
            return results, BatchStats(0.0, time.perf_counter() - start, rows, 1)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(feeds, names, rows, future, time.perf_counter(),
                                    _key(feeds, names)))
        self._wake.set()
        return await future

    async def close(self) -> None:
        """Finish every queued request, then stop (an unloaded model drains)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    # -- the loop ---------------------------------------------------------------------
    def _take(self) -> tuple[list[_Pending], bool]:
        """The next batch from the head of the queue: ``(requests, full)``; ``full``
        when nothing more could join it (the maximum reached, or the next compatible
        request does not fit)."""
        first = self._queue[0]
        batch, rows = [first], first.rows
        for item in self._queue[1:]:
            if item.key != first.key:
                continue
            if rows + item.rows > self.config.max_batch_size:
                return batch, True
            batch.append(item)
            rows += item.rows
        return batch, rows >= self.config.max_batch_size

    async def _loop(self) -> None:
        delay = self.config.max_queue_delay_us / 1e6
        preferred = set(self.config.preferred_batch_sizes)
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, full = self._take()
            rows = sum(p.rows for p in batch)
            waited = time.perf_counter() - batch[0].enqueued
            others_waiting = len(batch) < len(self._queue)
            ready = (full or waited >= delay or self._closing
                     or (rows in preferred and not others_waiting))
            if not ready:
                self._wake.clear()
                try:  # until the first request's deadline, or someone new arrives
                    await asyncio.wait_for(self._wake.wait(), delay - waited)
                except asyncio.TimeoutError:
                    pass
                continue
            taken = {id(p) for p in batch}
            self._queue = [p for p in self._queue if id(p) not in taken]
            await self._run(batch, rows)

    async def _execute(self, feeds, names):
        start = time.perf_counter()
        if self._mean_s < INLINE_S:
            results = self.model.run(feeds, names)
        else:
            results = await self._run_in_thread(self.model.run, feeds, names)
        self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - start)
        return results

    async def _run(self, batch: list[_Pending], rows: int) -> None:
        import numpy as np

        start = time.perf_counter()
        names = batch[0].names
        try:
            if len(batch) == 1:
                results = await self._execute(batch[0].feeds, names)
                parts = [results]
            else:
                feeds = {n: np.concatenate([p.feeds[n] for p in batch])
                         for n in batch[0].feeds}
                results = await self._execute(feeds, names)
                if any(arr.ndim == 0 or arr.shape[0] != rows for _, arr in results):
                    raise ValueError("an output's first dimension is not the batch")
                parts, offset = [], 0
                for p in batch:
                    parts.append([(spec, arr[offset:offset + p.rows]) for spec, arr in results])
                    offset += p.rows
        except Exception as e:  # noqa: BLE001 - each request gets its own answer below
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(e)
                return
            for p in batch:  # rerun one by one: each its own result or error
                await self._run([p], p.rows)
            return
        compute = time.perf_counter() - start
        self._on_execution()
        for p, part in zip(batch, parts):
            if not p.future.done():  # a client that went away leaves a cancelled future
                p.future.set_result((part, BatchStats(start - p.enqueued, compute, rows,
                                                      len(batch))))
