"""``python -m serving.healthcheck HOST:PORT [SERVICE]``: exit 0 if the gRPC health service
answers SERVING, 1 otherwise (the Dockerfile's HEALTHCHECK)."""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(target: str, service: str = "", timeout: float = 3.0) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return response.status == health_pb2.HealthCheckResponse.SERVING


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "localhost:8500"
    service = sys.argv[2] if len(sys.argv) > 2 else ""
    sys.exit(0 if check(target, service) else 1)
