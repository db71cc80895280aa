"""The gRPC prediction server (TensorFlow Serving API and Open Inference Protocol) and its client."""
