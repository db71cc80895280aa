"""TensorFlow Serving's gRPC API: PredictionService (Predict, Classify, Regress,
GetModelMetadata) and ModelService (GetModelStatus), translated to data-plane calls.
"""

import numpy as np
from google.protobuf import wrappers_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
    status_pb2,
)

from core.images import ImageError, example_image, input_examples
from core.outputs import ranked
from serving.converters import numpy_to_tensor_proto, tensor_proto_to_numpy
from serving.errors import InvalidArgument, Unimplemented, deadline_of, grpc_errors
from serving.plane import example_signatures as tf_signatures
from serving.plane.dataplane import DEFAULT_SIGNATURE, DataPlane
from serving.telemetry.metrics import ServerMetrics

SIGNATURE_DEF_FIELD = "signature_def"
ZOO_METADATA_FIELD = "zoo"  # our extension: the exported zoo.json as a StringValue
STATE_CODES = get_model_status_pb2.ModelVersionStatus.State


def _requested_version(model_spec) -> int | None:
    return model_spec.version.value if model_spec.HasField("version") else None


def _fill_model_spec(target, servable, signature_name: str) -> None:
    target.name = servable.name
    target.version.value = servable.version
    target.signature_name = signature_name


def _fill_classifications(result, per_example) -> None:
    """A ClassificationResult from ``(label, score)`` pairs per example."""
    for pairs in per_example:
        classification = result.classifications.add()
        for label, score in pairs:
            classification.classes.add(label=label, score=score)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    SERVICE = "tensorflow.serving.PredictionService"

    def __init__(self, dataplane: DataPlane, metrics: ServerMetrics):
        self.dataplane, self.metrics = dataplane, metrics

    @grpc_errors
    async def Predict(self, request, context):
        spec = request.model_spec
        limit = self.dataplane.settings.max_message_bytes

        def convert() -> dict:
            return {
                name: tensor_proto_to_numpy(proto, name, limit)
                for name, proto in request.inputs.items()
            }

        # tensor_content is one copy; typed value fields convert value by value, off the loop.
        packed = all(proto.tensor_content for proto in request.inputs.values())
        inputs = convert() if packed else await self.dataplane.off_loop(convert)
        signature_name = spec.signature_name or DEFAULT_SIGNATURE
        servable, signature, outputs = await self.dataplane.infer(
            spec.name,
            inputs,
            version=_requested_version(spec),
            label=spec.version_label or None,
            signature_name=signature_name,
            deadline=deadline_of(context),
        )
        names = list(request.output_filter) or list(outputs)
        unknown = sorted(set(names) - set(outputs))
        if unknown:
            raise InvalidArgument(
                f"output_filter names unknown output(s) {unknown}; outputs: {sorted(outputs)}."
            )
        response = predict_pb2.PredictResponse()
        _fill_model_spec(response.model_spec, servable, signature_name)
        for name in names:
            response.outputs[name].CopyFrom(numpy_to_tensor_proto(outputs[name]))
        return response

    @grpc_errors
    async def Classify(self, request, context):
        spec = request.model_spec
        servable = self.dataplane.servable(
            spec.name, _requested_version(spec), spec.version_label or None
        )
        signature_name = spec.signature_name or DEFAULT_SIGNATURE
        tf_classifier = self.dataplane.examples_signature(
            servable, signature_name, tf_signatures.CLASSIFY_METHOD
        )
        if tf_classifier is not None:
            examples = input_examples(request.input)
            outputs = await self.dataplane.run_examples(
                servable, tf_classifier, examples, deadline_of(context)
            )
            response = classification_pb2.ClassificationResponse()
            _fill_model_spec(response.model_spec, servable, signature_name)
            per_example = tf_signatures.classifications(outputs, len(examples))
            _fill_classifications(response.result, per_example)
            return response
        signature = self.dataplane.classifier(servable, signature_name)
        ((input_name, input_spec),) = signature.inputs.items()
        examples = input_examples(request.input)
        images = await self.dataplane.off_loop(_decode_images, examples, input_name, input_spec)
        servable, names, probabilities = await self.dataplane.classify(
            spec.name,
            {input_name: images.astype(input_spec.dtype)},
            version=servable.version,
            signature_name=signature.name,
            deadline=deadline_of(context),
        )
        response = classification_pb2.ClassificationResponse()
        _fill_model_spec(response.model_spec, servable, signature.name)
        for row in probabilities:
            classification = response.result.classifications.add()
            for index in ranked(row):
                classification.classes.add(label=names[index], score=float(row[index]))
        return response

    @grpc_errors
    async def Regress(self, request, context):
        spec = request.model_spec
        servable = self.dataplane.servable(
            spec.name, _requested_version(spec), spec.version_label or None
        )
        signature_name = spec.signature_name or DEFAULT_SIGNATURE
        regressor = self.dataplane.examples_signature(
            servable, signature_name, tf_signatures.REGRESS_METHOD
        )
        if regressor is None:
            raise Unimplemented(tf_signatures.not_a_regressor(servable, signature_name))
        examples = input_examples(request.input)
        outputs = await self.dataplane.run_examples(
            servable, regressor, examples, deadline_of(context)
        )
        response = regression_pb2.RegressionResponse()
        _fill_model_spec(response.model_spec, servable, signature_name)
        for value in tf_signatures.regressions(outputs, len(examples)):
            response.result.regressions.add(value=value)
        return response

    @grpc_errors
    async def MultiInference(self, request, context):
        """Classify and Regress tasks of one model version on the same examples, each on a
        classification or regression signature (TensorFlow Serving's rules)."""
        if not request.tasks:
            raise InvalidArgument("MultiInference needs at least one task.")
        first = request.tasks[0].model_spec
        servable = self.dataplane.servable(
            first.name, _requested_version(first), first.version_label or None
        )
        examples = input_examples(request.input)
        response = inference_pb2.MultiInferenceResponse()
        for index, task in enumerate(request.tasks):
            spec = task.model_spec
            if (spec.name, _requested_version(spec), spec.version_label) != (
                first.name, _requested_version(first), first.version_label
            ):  # fmt: skip
                raise InvalidArgument(
                    f"Task {index}: every task must name the model, version and label of the "
                    f"first ({first.name!r})."
                )
            signature_name = spec.signature_name or DEFAULT_SIGNATURE
            methods = (tf_signatures.CLASSIFY_METHOD, tf_signatures.REGRESS_METHOD)
            signature = self.dataplane.examples_signature(
                servable, signature_name, task.method_name
            )
            if task.method_name not in methods or signature is None:
                raise InvalidArgument(
                    f"Task {index}: method {task.method_name!r} needs a signature of that method "
                    f"({' or '.join(methods)}, serialized tf.Examples in); {signature_name!r} of "
                    f"model {servable.name!r} is not one."
                )
            outputs = await self.dataplane.run_examples(
                servable, signature, examples, deadline_of(context)
            )
            result = response.results.add()
            _fill_model_spec(result.model_spec, servable, signature_name)
            if task.method_name == tf_signatures.CLASSIFY_METHOD:
                per_example = tf_signatures.classifications(outputs, len(examples))
                _fill_classifications(result.classification_result, per_example)
            else:
                for value in tf_signatures.regressions(outputs, len(examples)):
                    result.regression_result.regressions.add(value=value)
        return response

    @grpc_errors
    async def GetModelMetadata(self, request, context):
        spec = request.model_spec
        fields = list(request.metadata_field) or [SIGNATURE_DEF_FIELD]
        unknown = sorted(set(fields) - {SIGNATURE_DEF_FIELD, ZOO_METADATA_FIELD})
        if unknown:
            raise InvalidArgument(
                f"Unknown metadata_field {unknown}; supported: {SIGNATURE_DEF_FIELD!r}, "
                f"{ZOO_METADATA_FIELD!r}."
            )
        servable = self.dataplane.servable(
            spec.name, _requested_version(spec), spec.version_label or None
        )
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        _fill_model_spec(response.model_spec, servable, "")
        if SIGNATURE_DEF_FIELD in fields:
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for name, signature_def in servable.signature_defs.items():
                signature_map.signature_def[name].CopyFrom(signature_def)
            response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        if ZOO_METADATA_FIELD in fields:
            text = servable.metadata.model_dump_json() if servable.metadata else "{}"
            response.metadata[ZOO_METADATA_FIELD].Pack(wrappers_pb2.StringValue(value=text))
        return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    SERVICE = "tensorflow.serving.ModelService"

    def __init__(self, dataplane: DataPlane, metrics: ServerMetrics):
        self.dataplane, self.metrics = dataplane, metrics

    @grpc_errors
    async def GetModelStatus(self, request, context):
        spec = request.model_spec
        statuses = self.dataplane.statuses(spec.name, _requested_version(spec))
        response = get_model_status_pb2.GetModelStatusResponse()
        for version, status in sorted(statuses.items()):
            entry = response.model_version_status.add(
                version=version, state=STATE_CODES.Value(status.state)
            )
            entry.status.CopyFrom(
                status_pb2.StatusProto(
                    error_code=13
                    if status.error
                    else 0,  # 13: INTERNAL, as TF Serving reports load errors
                    error_message=status.error,
                )
            )
        return response

    @grpc_errors
    async def HandleReloadConfigRequest(self, request, context):
        raise Unimplemented(
            "HandleReloadConfigRequest is not served: with several workers it would reach only "
            "one of them. Edit the --model-config file instead: every worker polls it and applies "
            "a change (docs/serving.md, Model repository)."
        )


def _decode_images(examples, input_name: str, input_spec) -> np.ndarray:
    """The examples' images as one uint8 batch (on a decode thread); InvalidArgument naming the
    example's problem."""
    shape = tuple(input_spec.shape[1:])
    try:
        decoded = [example_image(example, input_name, shape) for example in examples]
    except ImageError as error:
        raise InvalidArgument(str(error)) from None
    return np.stack(decoded) if decoded else np.zeros((0, *shape), input_spec.dtype)
