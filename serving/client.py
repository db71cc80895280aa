"""A Python client of the server's TensorFlow Serving API, used by ``zoo predict``, the tests and
the benchmarks. Requests carry tensors in ``tensor_content`` (no per-value encoding)."""

import grpc
import numpy as np
from google.protobuf import wrappers_pb2

from core.artifact import ModelMetadata, parse_metadata
from core.package_init import without_package_init

with without_package_init("tensorflow"):  # a client starts without TensorFlow's runtime
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    from serving.converters import NUMPY_TO_TF, tensor_proto_to_numpy


def numpy_to_request_tensor(array: np.ndarray):
    """A TensorProto with the array's bytes in ``tensor_content``."""
    array = np.ascontiguousarray(array)
    return tensor_pb2.TensorProto(
        dtype=NUMPY_TO_TF[array.dtype],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape]
        ),
        tensor_content=array.tobytes(),
    )


def predict_request(model: str, inputs: dict[str, np.ndarray] | np.ndarray, *,
                    signature: str = "", version: int | None = None) -> predict_pb2.PredictRequest:  # fmt: skip
    """A PredictRequest for ``inputs`` (a dict, or one array for the single input ``images``)."""
    if isinstance(inputs, np.ndarray):
        inputs = {"images": inputs}
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if signature:
        request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for name, array in inputs.items():
        request.inputs[name].CopyFrom(numpy_to_request_tensor(array))
    return request


class PredictionClient:
    """Talks to ``zoo serve`` (or TensorFlow Serving) over gRPC.

    Args:
        target: ``host:port``.
        root_certificates: PEM CA bundle to verify a TLS server; None for plaintext.
        client_certificate: ``(key PEM, certificate PEM)`` for mutual TLS.
        token: bearer token, sent as ``authorization`` metadata.
        timeout: seconds per call.
        own_connection: open a connection of its own even if another client in this process
            talks to the same server (gRPC shares them by default), as a separate client would.
    """

    def __init__(
        self,
        target: str,
        *,
        root_certificates: bytes | None = None,
        client_certificate: tuple[bytes, bytes] | None = None,
        token: str = "",
        timeout: float = 30.0,
        server_name: str = "",
        own_connection: bool = False,
    ):
        options = [
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 256 * 1024 * 1024),
            ("grpc.use_local_subchannel_pool", int(own_connection)),
        ]
        if root_certificates is not None:
            key, cert = client_certificate or (None, None)
            credentials = grpc.ssl_channel_credentials(root_certificates, key, cert)
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            self.channel = grpc.secure_channel(target, credentials, options)
        else:
            self.channel = grpc.insecure_channel(target, options)
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.metadata_headers = [("authorization", f"Bearer {token}")] if token else None
        self.timeout = timeout

    def predict(
        self,
        model: str,
        inputs: dict[str, np.ndarray] | np.ndarray,
        *,
        signature: str = "serving_default",
        version: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Runs ``inputs`` (a dict, or one array for the signature's single input ``images``)."""
        request = predict_request(model, inputs, signature=signature, version=version)
        response = self.prediction.Predict(
            request, timeout=self.timeout, metadata=self.metadata_headers
        )
        return {
            name: tensor_proto_to_numpy(proto, name) for name, proto in response.outputs.items()
        }

    def metadata(self, model: str) -> tuple[dict, ModelMetadata | None]:
        """``(signature_defs, zoo metadata)`` of the model's newest version; the metadata is None
        for SavedModels exported elsewhere."""
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = model
        request.metadata_field.extend(["signature_def", "zoo"])
        response = self.prediction.GetModelMetadata(
            request, timeout=self.timeout, metadata=self.metadata_headers
        )
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        zoo = wrappers_pb2.StringValue()
        response.metadata["zoo"].Unpack(zoo)
        found = zoo.value not in ("", "{}")
        metadata = parse_metadata(zoo.value, f"{model}'s zoo.json") if found else None
        return dict(signature_map.signature_def), metadata

    def status(self, model: str) -> list:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = model
        return list(
            self.models.GetModelStatus(
                request, timeout=self.timeout, metadata=self.metadata_headers
            ).model_version_status
        )

    def close(self) -> None:
        self.channel.close()
