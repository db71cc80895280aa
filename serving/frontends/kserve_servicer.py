"""The Open Inference Protocol (KServe v2) gRPC API, as ``tritonclient.grpc`` and perf_analyzer
speak it, with Triton's model configuration, statistics and repository index extensions.

The service definition and messages come from tritonclient's generated stubs (docs/serving.md
says why). The RPCs the zoo does not serve (shared memory, trace and log
settings) answer UNIMPLEMENTED with one log line, not the generated base class' traceback.
"""

import grpc
import numpy as np
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc

from core import __version__
from core.artifact import parse_version
from serving.converters import NUMPY_TO_V2, infer_tensor_to_numpy, numpy_to_raw
from serving.errors import InvalidArgument, Unimplemented, deadline_of, grpc_errors
from serving.plane.dataplane import DEFAULT_SIGNATURE, DataPlane
from serving.plane.extensions import EXTENSIONS, PLATFORM, check_model_control_parameters
from serving.telemetry.metrics import ServerMetrics

UNSERVED = (
    "CudaSharedMemoryRegister", "CudaSharedMemoryStatus", "CudaSharedMemoryUnregister",
    "SystemSharedMemoryRegister", "SystemSharedMemoryStatus", "SystemSharedMemoryUnregister",
    "TraceSetting", "LogSettings",
)  # fmt: skip


def _version(text: str) -> int | None:
    if not text:
        return None
    version = parse_version(text)
    if version is None:
        raise InvalidArgument(
            f"model_version must be a non-negative integer string. Received: {text!r}"
        )
    return version


def _tensor_metadata(spec) -> service_pb2.ModelMetadataResponse.TensorMetadata:
    return service_pb2.ModelMetadataResponse.TensorMetadata(
        name=spec.name, datatype=NUMPY_TO_V2[spec.dtype], shape=list(spec.shape)
    )


class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    SERVICE = "inference.GRPCInferenceService"

    def __init__(self, dataplane: DataPlane, metrics: ServerMetrics):
        self.dataplane, self.metrics = dataplane, metrics

    async def ServerLive(self, request, context):
        return service_pb2.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return service_pb2.ServerReadyResponse(ready=self.dataplane.ready())

    async def ServerMetadata(self, request, context):
        return service_pb2.ServerMetadataResponse(
            name="zoo", version=__version__, extensions=EXTENSIONS
        )

    @grpc_errors
    async def ModelReady(self, request, context):
        ready = self.dataplane.model_ready(request.name, _version(request.version))
        return service_pb2.ModelReadyResponse(ready=ready)

    @grpc_errors
    async def ModelMetadata(self, request, context):
        servable = self.dataplane.servable(request.name, _version(request.version))
        signature = self.dataplane.signature(servable, DEFAULT_SIGNATURE)
        return service_pb2.ModelMetadataResponse(
            name=servable.name,
            versions=[str(v) for v in self.dataplane.loaded_versions(servable.name)],
            platform=PLATFORM,
            inputs=[_tensor_metadata(s) for s in signature.inputs.values()],
            outputs=[_tensor_metadata(s) for s in signature.outputs.values()],
        )

    @grpc_errors
    async def ModelConfig(self, request, context):
        config = self.dataplane.model_config(request.name, _version(request.version))
        return service_pb2.ModelConfigResponse(
            config=json_format.ParseDict(config, model_config_pb2.ModelConfig())
        )

    @grpc_errors
    async def ModelStatistics(self, request, context):
        stats = self.dataplane.model_statistics(request.name, _version(request.version))
        return json_format.ParseDict({"model_stats": stats}, service_pb2.ModelStatisticsResponse())

    @grpc_errors
    async def RepositoryIndex(self, request, context):
        response = service_pb2.RepositoryIndexResponse()
        for entry in self.dataplane.repository_index():
            if request.ready and entry["state"] != "READY":
                continue
            response.models.add(**entry)
        return response

    @grpc_errors
    async def RepositoryModelLoad(self, request, context):
        check_model_control_parameters(request.parameters, "load")
        await self.dataplane.load_model(request.model_name)
        return service_pb2.RepositoryModelLoadResponse()

    @grpc_errors
    async def RepositoryModelUnload(self, request, context):
        check_model_control_parameters(request.parameters, "unload")
        await self.dataplane.unload_model(request.model_name)
        return service_pb2.RepositoryModelUnloadResponse()

    async def ModelStreamInfer(self, request_iterator, context):
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "zoo serves ModelInfer; streaming is not served."
        )

    @grpc_errors
    async def ModelInfer(self, request, context):
        raw = list(request.raw_input_contents)
        if raw and len(raw) != len(request.inputs):
            raise InvalidArgument(
                f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs; "
                "send one per input, in order, or none."
            )

        def convert() -> dict:
            inputs = {}
            for index, tensor in enumerate(request.inputs):
                if tensor.name in inputs:
                    raise InvalidArgument(f"Input {tensor.name!r} appears twice.")
                inputs[tensor.name] = infer_tensor_to_numpy(
                    tensor, raw[index] if raw else None, self.dataplane.settings.max_message_bytes
                )
            return inputs

        # raw_input_contents is one copy each; typed contents convert value by value, off the loop.
        inputs = convert() if raw else await self.dataplane.off_loop(convert)
        signature_name = DEFAULT_SIGNATURE
        if "signature_name" in request.parameters:
            parameter = request.parameters["signature_name"]
            if parameter.WhichOneof("parameter_choice") != "string_param":
                raise InvalidArgument(
                    "The 'signature_name' parameter must be a string_param. Received: "
                    f"{parameter.WhichOneof('parameter_choice')}"
                )
            signature_name = parameter.string_param
        servable, _, outputs = await self.dataplane.infer(
            request.model_name,
            inputs,
            version=_version(request.model_version),
            signature_name=signature_name,
            deadline=deadline_of(context),
        )
        names = [o.name for o in request.outputs] or list(outputs)
        unknown = sorted(set(names) - set(outputs))
        if unknown:
            raise InvalidArgument(
                f"Requested unknown output(s) {unknown}; outputs: {sorted(outputs)}."
            )
        response = service_pb2.ModelInferResponse(
            model_name=servable.name, model_version=str(servable.version), id=request.id
        )
        for name in names:
            array = np.asarray(outputs[name])
            response.outputs.add(
                name=name, datatype=NUMPY_TO_V2[array.dtype], shape=list(array.shape)
            )
            response.raw_output_contents.append(numpy_to_raw(array))
        return response


def _unserved(rpc: str):
    async def method(self, request, context):
        raise Unimplemented(f"{rpc} is not served by zoo (see docs/serving.md).")

    method.__name__ = method.__qualname__ = rpc
    return grpc_errors(method)


for _rpc in UNSERVED:
    setattr(InferenceServicer, _rpc, _unserved(_rpc))
