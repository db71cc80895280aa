"""The dynamic batcher merges concurrent requests, splits outputs back and bounds its queue."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from serving.batching import DynamicBatcher
from serving.errors import Unavailable
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


def test_max_wait_collects_a_fuller_batch():
    sizes = []

    def run(inputs):
        sizes.append(len(inputs["x"]))
        return inputs

    async def scenario():
        batcher = DynamicBatcher(
            run, BatchingOptions(max_batch_size=4, max_wait_us=200_000), ThreadPoolExecutor(1)
        )
        tasks = []
        for _ in range(4):
            tasks.append(asyncio.create_task(batcher.submit({"x": np.zeros((1, 1))}, 1)))
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        await batcher.close()

    asyncio.run(scenario())
    assert sizes == [4]
