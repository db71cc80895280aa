"""SavedModels not exported by the zoo, served as TensorFlow Serving serves them: signatures whose
outputs or inputs have no batch axis answer every concurrent request."""

import asyncio

import grpc
import numpy as np
import tensorflow as tf
from helpers import loopback_settings
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving.client import predict_request
from serving.server import ServerThread


class _Unbatched(tf.Module):
    """``total`` has no batch axis (a scalar per call); ``single`` takes exactly one example."""

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    def total(self, x):
        return {"doubled": x * 2.0, "examples": tf.shape(x)[0]}

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    def single(self, x):
        return {"doubled": x * 2.0}


def _answers(port: int, signature: str, count: int) -> list:
    async def all_at_once():
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            requests = [
                predict_request("m", {"x": np.full((1, 4), i, np.float32)}, signature=signature)
                for i in range(count)
            ]
            replies = await asyncio.gather(*[stub.Predict(r, timeout=20) for r in requests])
        return [{k: tf.make_ndarray(v) for k, v in reply.outputs.items()} for reply in replies]

    return asyncio.run(all_at_once())


def test_signatures_without_a_batch_axis_answer_concurrent_requests(tmp_path):
    module = _Unbatched()
    signatures = {"serving_default": module.total, "single": module.single}
    tf.saved_model.save(module, str(tmp_path / "m" / "1"), signatures=signatures)
    with ServerThread(loopback_settings(tmp_path)) as running:
        totals = _answers(running.port, "serving_default", 16)
        singles = _answers(running.port, "single", 16)
    for i, answer in enumerate(totals):
        assert answer["doubled"].tolist() == [[2.0 * i] * 4] and int(answer["examples"]) == 1
    for i, answer in enumerate(singles):
        assert answer["doubled"].tolist() == [[2.0 * i] * 4]
