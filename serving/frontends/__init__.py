"""The protocol front ends: TensorFlow Serving's gRPC API, the Open Inference Protocol over
gRPC, both REST APIs, and the bounds on what their connections may hold (token, body budget,
idle connections). Each decodes a request, calls the data plane and encodes its answer."""
