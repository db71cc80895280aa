"""Dynamic batching: concurrent requests for one signature merged into one model call.

Requests queue on the event loop, first in first out; one worker takes as many queued requests as
fit in ``max_batch_size`` examples, concatenates them along the batch axis, runs the model in a
thread, and splits the outputs back. Requests whose non-batch shapes differ from the head of the
queue wait for the next call.

How long a batch waits for more requests adapts to the traffic: the batch after a call of N
examples waits, up to ``max_wait_us`` after its first request came, until N examples are queued.
A lone client's request (the previous call had one example) runs at once; under concurrent load,
where answers go out together and the next requests come back spread over a millisecond or two,
the batch waits for them instead of running the first few alone: fewer, fuller model calls, and
less CPU per request. Before it starts, a batch also lets the event loop turn a few times, so that
requests whose handlers are already running join it.

Under overload the queue is bounded three ways: by length (``max_queue``, UNAVAILABLE at once), by
time (``max_queue_seconds``: a request that waited longer is answered UNAVAILABLE instead of
running late), and by controlled delay (``OverloadGuard``): once the queue has stood non-empty
for a while, requests come faster than the model can take them, and the excess is shed after a
short wait instead of everyone queueing up to ``max_queue_seconds``. A request whose client
deadline has passed is dropped before the model runs (DEADLINE_EXCEEDED): nobody waits for its
answer, and its examples would only delay the others.
"""

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from serving.errors import DeadlineExceeded, ServingError, Unavailable
from serving.settings import BatchingOptions
from serving.telemetry import tracing

RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

# Event-loop turns a batch lets pass before it starts. Under load, handlers of requests gRPC has
# already received are ready to run; a few turns (microseconds when idle) let them reach the
# queue, so the batch takes them too: fuller batches, more QPS and less CPU per request.
SETTLE_TURNS = 3


@dataclass
class _Pending:
    inputs: dict[str, np.ndarray]
    size: int
    future: asyncio.Future
    deadline: float | None = None  # time.perf_counter() by which the client gives up
    enqueued: float = field(default_factory=time.perf_counter)
    trace: tracing.RequestTrace | None = field(default_factory=tracing.active)

    @property
    def key(self):
        return tuple((name, a.shape[1:], a.dtype.str) for name, a in sorted(self.inputs.items()))


def split_outputs(outputs: dict[str, np.ndarray], sizes: list[int]) -> list[dict[str, np.ndarray]]:
    """Each request's rows of a merged call's outputs (``sizes``: examples per request, in
    order). ServingError when an output does not have one row per example (a signature whose
    outputs are not batched: a scalar, a fixed list), which the batcher meets by running each
    request alone."""
    if len(sizes) == 1:
        return [outputs]
    total = sum(sizes)
    for name, value in outputs.items():
        if value.ndim == 0 or value.shape[0] != total:
            raise ServingError(
                f"Output {name!r} has shape {list(value.shape)} for a batch of {total} examples, "
                "not one row per example: merged requests cannot be split back."
            )
    ends = np.cumsum(sizes)
    return [
        {k: v[end - n : end] for k, v in outputs.items()}
        for n, end in zip(sizes, ends, strict=True)
    ]


def _timed(run: RunFn, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
    """``run(inputs)`` and the seconds it took (on a model thread)."""
    started = time.perf_counter()
    outputs = run(inputs)
    return outputs, time.perf_counter() - started


def queue_full(limit: int) -> Unavailable:
    return Unavailable(f"The model's queue is full ({limit} requests waiting); retry.")


class OverloadGuard:
    """Controlled delay (CoDel, as servers apply it to request queues) for one model's queue.

    A queue that empties now and then is absorbing bursts: its requests may wait up to
    ``max_queue_seconds``. One that has not emptied for ``INTERVAL`` is a standing
    queue: requests arrive faster than the model takes them, and letting them all wait only
    makes every answer late. Then a request that waited longer than one model call plus
    ``overload_wait_ms`` is answered UNAVAILABLE at once, which keeps the queue, and the latency
    of the requests that are answered, short. The batcher's own wait for a fuller batch
    (``max_wait_us``) is added to both bounds: it is not overload."""

    INTERVAL = 0.1  # seconds a queue may stay non-empty before it counts as standing

    def __init__(self, options: BatchingOptions):
        batch_wait = options.max_wait_us / 1e6 if options.enabled else 0.0
        self.allowance = options.overload_wait_ms / 1000 + batch_wait
        self.enabled = options.overload_wait_ms > 0
        self.interval = self.INTERVAL + batch_wait
        self.drained = time.perf_counter()  # when the queue was last seen empty
        self.call_seconds = 0.0  # the last model call's duration

    def limit(self, now: float) -> float | None:
        """The longest a request may have waited by ``now``: None while the queue is not
        standing (or the guard is off)."""
        if not self.enabled or now - self.drained <= self.interval:
            return None
        return self.allowance + self.call_seconds


def stale_reason(
    enqueued: float,
    deadline: float | None,
    options: BatchingOptions,
    now: float,
    overload_limit: float | None = None,
) -> tuple[str, Exception] | None:
    """Why a request that waited since ``enqueued`` must not run now: ``("deadline", error)``
    when its client's deadline passed, ``("queue_time", error)`` when it waited longer than
    ``max_queue_seconds``, ``("overload", error)`` when it waited longer than ``overload_limit``
    (``OverloadGuard.limit``); None when it may run."""
    if deadline is not None and now >= deadline:
        error = DeadlineExceeded("The request's deadline passed while it waited for the model.")
        return "deadline", error
    limit = options.max_queue_seconds
    if limit and now - enqueued > limit:
        return "queue_time", Unavailable(
            f"The request waited {now - enqueued:.2f} s for the model, over "
            f"max_queue_seconds={limit:g}: the server is overloaded; retry."
        )
    if overload_limit is not None and now - enqueued > overload_limit:
        return "overload", Unavailable(
            f"The server is overloaded: requests come faster than the model answers them, and "
            f"this one waited {1000 * (now - enqueued):.0f} ms; retry later."
        )
    return None


class DynamicBatcher:
    """Merges concurrent ``submit`` calls into batched calls of ``run``.

    Args:
        run: the model call (blocking); it runs in ``executor``.
        options: batch size, wait and queue limits.
        executor: the thread pool model calls run in.
        observe: ``observe(batch_size, queue_seconds_of_each_request, (merge_seconds,
            call_seconds, split_seconds))`` after every call.
        on_dropped: ``on_dropped(reason)`` for each request dropped unrun (``"deadline"``,
            ``"overload"`` or ``"queue_time"``).
    """

    def __init__(
        self, run: RunFn, options: BatchingOptions, executor: Executor, observe=None,
        on_dropped=None,
    ):  # fmt: skip
        self.run, self.options, self.executor = run, options, executor
        self.observe = observe or (lambda size, waits, seconds: None)
        self.on_dropped = on_dropped or (lambda reason: None)
        self.queue: deque[_Pending] = deque()
        self.expected = 1  # examples in the previous model call: what the next batch waits for
        self.overload = OverloadGuard(options)
        self.wakeup = asyncio.Event()
        self.closing = False
        self.worker = asyncio.get_running_loop().create_task(self._work())

    async def submit(
        self, inputs: dict[str, np.ndarray], size: int, deadline: float | None = None
    ) -> dict[str, np.ndarray]:
        if len(self.queue) >= self.options.max_queue:
            raise queue_full(self.options.max_queue)
        pending = _Pending(inputs, size, asyncio.get_running_loop().create_future(), deadline)
        if not self.queue:
            self.overload.drained = pending.enqueued
        self.queue.append(pending)
        self.wakeup.set()
        return await pending.future

    def _drop_stale(self) -> None:
        """Answers, without running them, the queued requests whose deadline passed or that
        waited longer than ``max_queue_seconds`` or, in overload, than the guard allows."""
        now = time.perf_counter()
        overload_limit = self.overload.limit(now)
        kept = deque()
        for pending in self.queue:
            if pending.future.done():
                continue
            stale = stale_reason(
                pending.enqueued, pending.deadline, self.options, now, overload_limit
            )
            if stale:
                reason, error = stale
                pending.future.set_exception(error)
                self.on_dropped(reason)
            else:
                kept.append(pending)
        self.queue = kept

    def _take_batch(self) -> list[_Pending]:
        batch = [self.queue.popleft()]
        total, key = batch[0].size, batch[0].key
        while self.queue and total + self.queue[0].size <= self.options.max_batch_size:
            if self.queue[0].key != key:
                break
            pending = self.queue.popleft()
            batch.append(pending)
            total += pending.size
        return batch

    def _batch_is_ready(self) -> bool:
        """Whether as many examples are queued as the previous model call had (or a full batch)."""
        target = min(self.expected, self.options.max_batch_size)
        return sum(p.size for p in self.queue) >= target

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.queue:
                if self.closing:
                    return
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            if self.options.max_wait_us and not self._batch_is_ready():
                deadline = self.queue[0].enqueued + self.options.max_wait_us / 1e6
                while (
                    not self._batch_is_ready() and (remaining := deadline - time.perf_counter()) > 0
                ):
                    self.wakeup.clear()
                    try:
                        await asyncio.wait_for(self.wakeup.wait(), remaining)
                    except TimeoutError:
                        break
            if self.options.max_wait_us:
                for _ in range(SETTLE_TURNS):  # requests already on their way join this batch
                    await asyncio.sleep(0)
            self._drop_stale()
            if not self.queue:
                continue
            batch = [p for p in self._take_batch() if not p.future.cancelled()]
            if not self.queue:
                self.overload.drained = time.perf_counter()
            if not batch:
                continue
            started = time.perf_counter()
            size = self.expected = sum(p.size for p in batch)
            try:
                merged = (
                    batch[0].inputs
                    if len(batch) == 1
                    else {
                        name: np.concatenate([p.inputs[name] for p in batch])
                        for name in batch[0].inputs
                    }
                )
                outputs, call_seconds = await loop.run_in_executor(
                    self.executor, _timed, self.run, merged
                )
                called = time.perf_counter()
                self.overload.call_seconds = call_seconds
                parts = split_outputs(outputs, [p.size for p in batch])
            except Exception as error:
                if len(batch) == 1:
                    if not batch[0].future.done():
                        batch[0].future.set_exception(error)
                else:  # one request's input the model refuses must not fail the others
                    await self._run_each_alone(batch)
                continue
            ended = time.perf_counter()
            split, merge = ended - called, max(called - started - call_seconds, 0.0)
            self.observe(size, [started - p.enqueued for p in batch], (merge, call_seconds, split))
            for pending in batch:
                if pending.trace is not None:
                    call = (called - call_seconds, called)
                    pending.trace.batched(pending.enqueued, started, call, ended, size, len(batch))
            for pending, part in zip(batch, parts, strict=True):
                if not pending.future.done():
                    pending.future.set_result(part)

    async def _run_each_alone(self, batch: list[_Pending]) -> None:
        """After a merged call failed: each request's own call, its own answer or error."""
        loop = asyncio.get_running_loop()
        for pending in batch:
            if pending.future.done():
                continue
            started = time.perf_counter()
            try:
                outputs, call_seconds = await loop.run_in_executor(
                    self.executor, _timed, self.run, pending.inputs
                )
            except Exception as error:
                pending.future.set_exception(error)
            else:
                self.observe(pending.size, [0.0], (0.0, call_seconds, 0.0))
                if pending.trace is not None:
                    ended = time.perf_counter()
                    call = (ended - call_seconds, ended)
                    pending.trace.batched(pending.enqueued, started, call, ended, pending.size, 1)
                pending.future.set_result(outputs)

    async def close(self) -> None:
        """Finishes the requests already queued or running, then stops the worker."""
        self.closing = True
        self.wakeup.set()
        await self.worker


class DirectRunner:
    """The same interface without batching: every request is its own model call, on the same
    bounds as the batcher's queue (``max_queue`` requests waiting or running, ``max_queue_seconds``
    of waiting, the overload guard, and the client's deadline, checked when a model thread takes
    the request)."""

    def __init__(self, run: RunFn, options: BatchingOptions, executor: Executor, observe=None,
                 on_dropped=None):  # fmt: skip
        self.run, self.options, self.executor = run, options, executor
        self.observe = observe or (lambda size, waits, seconds: None)
        self.on_dropped = on_dropped or (lambda reason: None)
        self.waiting = 0  # requests submitted and not answered yet
        self.queued = 0  # of which no model thread has taken yet
        self.queued_lock = threading.Lock()
        self.overload = OverloadGuard(options)

    async def submit(
        self, inputs: dict[str, np.ndarray], size: int, deadline: float | None = None
    ) -> dict[str, np.ndarray]:
        if deadline is not None and time.perf_counter() >= deadline:
            raise DeadlineExceeded("The request's deadline passed before the model could run it.")
        if self.waiting >= self.options.max_queue:
            raise queue_full(self.options.max_queue)
        self.waiting += 1
        enqueued = time.perf_counter()
        with self.queued_lock:
            if not self.queued:
                self.overload.drained = enqueued
            self.queued += 1
        try:
            loop = asyncio.get_running_loop()
            outputs, waited, call_seconds = await loop.run_in_executor(
                self.executor, self._run_unless_stale, inputs, enqueued, deadline
            )
        finally:
            self.waiting -= 1
        self.observe(size, [waited], (0.0, call_seconds, 0.0))
        trace = tracing.active()
        if trace is not None:
            started = enqueued + waited
            call = (started, started + call_seconds)
            trace.batched(enqueued, started, call, time.perf_counter(), size, 1)
        return outputs

    def _run_unless_stale(self, inputs, enqueued: float, deadline: float | None):
        """On a model thread: the model call, unless the request went stale while it waited;
        ``(outputs, seconds waited, seconds of the call)``."""
        now = time.perf_counter()
        with self.queued_lock:
            self.queued -= 1
            if not self.queued:
                self.overload.drained = now
        stale = stale_reason(enqueued, deadline, self.options, now, self.overload.limit(now))
        if stale:
            reason, error = stale
            self.on_dropped(reason)
            raise error
        outputs, seconds = _timed(self.run, inputs)
        self.overload.call_seconds = seconds
        return outputs, now - enqueued, seconds

    async def close(self) -> None:
        return None
