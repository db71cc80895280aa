"""The dynamic batcher merges concurrent requests, splits outputs back and bounds its queue."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from serving.errors import DeadlineExceeded, ServingError, Unavailable
from serving.plane.batching import DirectRunner, DynamicBatcher, split_outputs
from serving.settings import BatchingOptions


def test_concurrent_requests_are_merged_and_split_in_order():
    calls = []
    gate = threading.Event()

    def run(inputs):
        gate.wait(5)
        calls.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2}

    async def scenario():
        batcher = DynamicBatcher(run, BatchingOptions(max_batch_size=8), ThreadPoolExecutor(1))
        first = asyncio.create_task(batcher.submit({"x": np.array([[0]])}, 1))
        await asyncio.sleep(0.05)  # the first call is running; the next ones queue up
        rest = [
            asyncio.create_task(batcher.submit({"x": np.array([[i], [i]])}, 2)) for i in range(1, 6)
        ]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(first, *rest)
        await batcher.close()
        return results

    results = asyncio.run(scenario())
    assert calls[0] == 1 and calls[1] == 8 and sum(calls) == 11, calls
    np.testing.assert_array_equal(results[0]["y"], [[0]])
    for i, result in enumerate(results[1:], start=1):
        np.testing.assert_array_equal(result["y"], [[2 * i], [2 * i]])


def test_errors_reach_every_request_of_the_batch():
    def run(inputs):
        raise ValueError("boom")

    async def scenario():
        batcher = DynamicBatcher(run, BatchingOptions(), ThreadPoolExecutor(1))
        results = await asyncio.gather(
            *[batcher.submit({"x": np.zeros((1, 1))}, 1) for _ in range(3)], return_exceptions=True
        )
        await batcher.close()
        return results

    assert all(isinstance(r, ValueError) for r in asyncio.run(scenario()))


def test_a_merged_call_that_fails_runs_each_request_alone():
    """One request the model refuses fails alone, and outputs that do not split back (a scalar
    beside the batched ones) are answered request by request: the others merged with them get
    their answers."""
    gate = threading.Event()

    def run(inputs):
        gate.wait(5)
        if (inputs["x"] < 0).any():
            raise ValueError("negative input")
        return {"y": inputs["x"] * 2, "count": np.array(len(inputs["x"]))}

    async def scenario():
        batcher = DynamicBatcher(run, BatchingOptions(max_wait_us=0), ThreadPoolExecutor(1))
        first = asyncio.create_task(batcher.submit({"x": np.zeros((1, 1))}, 1))
        await asyncio.sleep(0.05)  # running: the next ones queue and merge
        merged = [
            asyncio.create_task(batcher.submit({"x": np.full((1, 1), v)}, 1)) for v in (1, -1, 2)
        ]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(first, *merged, return_exceptions=True)
        await batcher.close()
        return results

    first, one, refused, two = asyncio.run(scenario())
    assert int(first["count"]) == 1
    assert int(one["count"]) == 1 and one["y"].tolist() == [[2.0]]
    assert int(two["count"]) == 1 and two["y"].tolist() == [[4.0]]
    assert isinstance(refused, ValueError) and str(refused) == "negative input"


def test_split_outputs_gives_each_request_its_rows():
    outputs = {"y": np.arange(6).reshape(6, 1), "label": np.array(list("abcdef"), dtype=object)}
    parts = split_outputs(outputs, [1, 3, 2])
    assert [part["y"].ravel().tolist() for part in parts] == [[0], [1, 2, 3], [4, 5]]
    assert [part["label"].tolist() for part in parts] == [["a"], ["b", "c", "d"], ["e", "f"]]
    with pytest.raises(ServingError, match=r"Output 'y' has shape \[6, 1\] for a batch of 5"):
        split_outputs(outputs, [2, 3])


def test_full_queue_is_unavailable():
    gate = threading.Event()

    async def scenario():
        batcher = DynamicBatcher(
            lambda x: (gate.wait(5), x)[1], BatchingOptions(max_queue=2), ThreadPoolExecutor(1)
        )
        tasks = [asyncio.create_task(batcher.submit({"x": np.zeros((1, 1))}, 1))]
        await asyncio.sleep(0.05)  # the first request is in the model; two more fill the queue
        tasks += [asyncio.create_task(batcher.submit({"x": np.zeros((1, 1))}, 1)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(Unavailable, match="queue is full \\(2 requests waiting\\)"):
            await batcher.submit({"x": np.zeros((1, 1))}, 1)
        gate.set()
        await asyncio.gather(*tasks)
        await batcher.close()

    asyncio.run(scenario())


def _recording_batcher(sizes: list, gate: threading.Event, **options) -> DynamicBatcher:
    def run(inputs):
        gate.wait(5)
        sizes.append(len(inputs["x"]))
        return inputs

    return DynamicBatcher(run, BatchingOptions(**options), ThreadPoolExecutor(1))


def _submit(batcher: DynamicBatcher):
    return asyncio.create_task(batcher.submit({"x": np.zeros((1, 1))}, 1))


def test_a_lone_request_never_waits_for_company():
    import time

    sizes, gate = [], threading.Event()
    gate.set()

    async def scenario():
        batcher = _recording_batcher(sizes, gate, max_batch_size=8, max_wait_us=500_000)
        for _ in range(3):  # one client, one request at a time
            started = time.perf_counter()
            await _submit(batcher)
            assert time.perf_counter() - started < 0.2
        await batcher.close()

    asyncio.run(scenario())
    assert sizes == [1, 1, 1]


def _batch_of_four_then(batcher: DynamicBatcher, gate: threading.Event):
    """Runs one request, queues four behind it, lets them through as one batch of 4."""

    async def steps():
        first = _submit(batcher)
        await asyncio.sleep(0.05)  # the first call holds the model; four queue up
        four = [_submit(batcher) for _ in range(4)]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(first, *four)

    return steps()


def test_after_a_call_of_n_examples_the_next_batch_waits_for_n():
    sizes, gate = [], threading.Event()

    async def scenario():
        batcher = _recording_batcher(sizes, gate, max_batch_size=8, max_wait_us=500_000)
        await _batch_of_four_then(batcher, gate)
        spread = []
        for _ in range(4):  # as clients' next requests come back: spread over 60 ms
            spread.append(_submit(batcher))
            await asyncio.sleep(0.02)
        await asyncio.gather(*spread)
        await batcher.close()

    asyncio.run(scenario())
    assert sizes == [1, 4, 4]


def test_the_wait_for_a_fuller_batch_is_bounded_by_max_wait():
    import time

    sizes, gate = [], threading.Event()

    async def scenario():
        batcher = _recording_batcher(sizes, gate, max_batch_size=8, max_wait_us=100_000)
        await _batch_of_four_then(batcher, gate)
        started = time.perf_counter()
        await asyncio.gather(_submit(batcher), _submit(batcher))  # two of the four come back
        waited = time.perf_counter() - started
        await batcher.close()
        return waited

    waited = asyncio.run(scenario())
    assert sizes == [1, 4, 2]
    assert 0.09 <= waited < 1.0, waited


def test_requests_already_on_their_way_join_the_batch():
    sizes, gate = [], threading.Event()
    gate.set()

    async def one_turn_behind(batcher):
        await asyncio.sleep(0)  # a handler a loop turn behind the first
        await _submit(batcher)

    async def scenario():
        batcher = _recording_batcher(sizes, gate, max_batch_size=8, max_wait_us=500_000)
        await asyncio.gather(_submit(batcher), one_turn_behind(batcher), one_turn_behind(batcher))
        await batcher.close()

    asyncio.run(scenario())
    assert sizes == [3]


def test_zero_max_wait_is_greedy():
    sizes, gate = [], threading.Event()

    async def scenario():
        batcher = _recording_batcher(sizes, gate, max_batch_size=8, max_wait_us=0)
        await _batch_of_four_then(batcher, gate)
        spread = []
        for _ in range(2):
            spread.append(_submit(batcher))
            await asyncio.sleep(0.05)
        await asyncio.gather(*spread)
        await batcher.close()

    asyncio.run(scenario())
    assert sizes == [1, 4, 1, 1]


def test_expired_and_stale_requests_are_dropped_before_the_model_runs():
    """While a slow call runs: one queued request's deadline passes, another queues longer than
    max_queue_seconds, a third is fine. Only the third reaches the model."""
    import time

    from serving.errors import DeadlineExceeded

    ran, dropped = [], []
    gate = threading.Event()

    def run(inputs):
        gate.wait(5)
        ran.append(inputs["x"][:, 0].tolist())
        return {"y": inputs["x"]}

    async def scenario():
        options = BatchingOptions(max_batch_size=8, max_queue_seconds=0.2)
        batcher = DynamicBatcher(run, options, ThreadPoolExecutor(1), on_dropped=dropped.append)
        first = asyncio.create_task(batcher.submit({"x": np.array([[0]])}, 1))
        await asyncio.sleep(0.05)  # the first call holds the model
        expiring = asyncio.create_task(
            batcher.submit({"x": np.array([[1]])}, 1, deadline=time.perf_counter() + 0.05)
        )
        stale = asyncio.create_task(batcher.submit({"x": np.array([[2]])}, 1))
        await asyncio.sleep(0.3)  # the deadline passes, the stale request waits over 0.2 s
        fresh = asyncio.create_task(batcher.submit({"x": np.array([[3]])}, 1))
        await asyncio.sleep(0.01)
        gate.set()
        results = await asyncio.gather(first, expiring, stale, fresh, return_exceptions=True)
        await batcher.close()
        return results

    first, expiring, stale, fresh = asyncio.run(scenario())
    assert isinstance(expiring, DeadlineExceeded)
    assert isinstance(stale, Unavailable) and "max_queue_seconds=0.2" in str(stale)
    np.testing.assert_array_equal(fresh["y"], [[3]])
    assert ran == [[0], [3]] and sorted(dropped) == ["deadline", "queue_time"]


def test_without_batching_the_queue_is_bounded_by_length_time_and_deadline():
    """DirectRunner (batching off, or a signature without a batch axis) holds at most max_queue
    requests, and a request that waited past max_queue_seconds or its deadline never runs."""
    gate, ran, dropped = threading.Event(), [], []

    def run(inputs):
        gate.wait(5)
        ran.append(int(inputs["x"][0, 0]))
        return {"y": inputs["x"]}

    options = BatchingOptions(max_queue=3, max_queue_seconds=0.2)

    async def scenario():
        runner = DirectRunner(run, options, ThreadPoolExecutor(1), on_dropped=dropped.append)
        first = asyncio.create_task(runner.submit({"x": np.full((1, 1), 1)}, 1))
        await asyncio.sleep(0.05)  # running, holding the only model thread
        stale = asyncio.create_task(runner.submit({"x": np.full((1, 1), 2)}, 1))
        expiring = asyncio.create_task(
            runner.submit({"x": np.full((1, 1), 3)}, 1, deadline=time.perf_counter() + 0.1)
        )
        await asyncio.sleep(0.05)
        with pytest.raises(Unavailable, match=r"The model's queue is full \(3 requests waiting\)"):
            await runner.submit({"x": np.full((1, 1), 4)}, 1)
        await asyncio.sleep(0.3)  # past max_queue_seconds and the deadline
        gate.set()
        return await asyncio.gather(first, stale, expiring, return_exceptions=True)

    first, stale, expiring = asyncio.run(scenario())
    assert first["y"].tolist() == [[1]] and ran == [1]
    assert isinstance(stale, Unavailable) and "over max_queue_seconds=0.2" in str(stale)
    assert isinstance(expiring, DeadlineExceeded)
    assert sorted(dropped) == ["deadline", "queue_time"]


def _overloaded(runner_class, overload_wait_ms: float) -> tuple[list[float], list[Exception]]:
    """Twice as many requests a second as a 20 ms model answers one at a time, for 1.2 s: the
    latencies of the answered, and the errors of the rest."""
    options = BatchingOptions(max_batch_size=1, max_wait_us=0, overload_wait_ms=overload_wait_ms)

    def run(inputs):
        time.sleep(0.02)
        return {"y": inputs["x"]}

    async def timed(runner, index):
        start = time.perf_counter()
        await runner.submit({"x": np.full((1, 1), index)}, 1)
        return time.perf_counter() - start

    async def scenario():
        runner = runner_class(run, options, ThreadPoolExecutor(1))
        tasks = []
        for index in range(120):
            tasks.append(asyncio.create_task(timed(runner, index)))
            await asyncio.sleep(0.01)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await runner.close()
        return results

    results = asyncio.run(scenario())
    answered = [r for r in results if isinstance(r, float)]
    return answered, [r for r in results if not isinstance(r, float)]


@pytest.mark.parametrize("runner_class", [DynamicBatcher, DirectRunner])
def test_a_standing_queue_is_shed_and_the_answered_keep_their_latency(runner_class):
    """Past the model's capacity, requests that waited beyond one call plus overload_wait_ms are
    answered UNAVAILABLE, so the queue stays short; with the guard off every request queues and
    the last wait for most of the run."""
    answered, errors = _overloaded(runner_class, overload_wait_ms=10)
    assert len(errors) >= 30 and all(isinstance(e, Unavailable) for e in errors), errors[:3]
    assert "overloaded" in str(errors[0])
    assert max(answered) < 0.35, sorted(answered)[-5:]

    answered, errors = _overloaded(runner_class, overload_wait_ms=0)
    assert not errors and max(answered) > 0.6, sorted(answered)[-5:]
