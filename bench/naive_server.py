"""The naive server of the serving benchmark: TF Serving's Predict API, written the way a user
would by hand — a thread-pool gRPC server that calls the Keras model once per request.

    python -m bench.naive_server --model model.keras --port 8600
"""

import argparse
import os
from concurrent import futures

import grpc
import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

import models  # noqa: F401  (registers the zoo's classes, which the saved model uses)


class NaivePredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, model: keras.Model):
        self.model = model

    def Predict(self, request, context):
        images = tf.make_ndarray(request.inputs["images"]).astype(np.float32) / 255.0
        probabilities = np.asarray(self.model(images))
        response = predict_pb2.PredictResponse()
        response.outputs["probabilities"].CopyFrom(tf.make_tensor_proto(probabilities))
        response.outputs["classes"].CopyFrom(tf.make_tensor_proto(probabilities.argmax(axis=1)))
        return response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    model = keras.saving.load_model(args.model, compile=False)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        NaivePredictionService(model), server
    )
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"naive server on {args.port}, pid {os.getpid()}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
