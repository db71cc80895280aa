"""The ceiling of the serving benchmark: the same Predict API answering a fixed response at once,
without decoding the request or running a model. What it reaches is what Python gRPC and the load
generator alone allow on this machine.

    python -m bench.noop_server --port 8601
"""

import argparse
import asyncio

import grpc
import numpy as np
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.converters import numpy_to_tensor_proto


class NoopPredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self):
        self.response = predict_pb2.PredictResponse()
        self.response.outputs["probabilities"].CopyFrom(
            numpy_to_tensor_proto(np.full((1, 10), 0.1, np.float32))
        )

    async def Predict(self, request, context):
        return self.response


async def serve(port: int) -> None:
    server = grpc.aio.server()
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        NoopPredictionService(), server
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))
