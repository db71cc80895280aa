"""TensorFlow Serving's API through its generated stubs: every RPC and every error path."""

import io

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.client import predict_request
from serving.converters import numpy_to_tensor_proto


@pytest.fixture(scope="module")
def stub(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def expect_error(call, request, code, *fragments):
    with pytest.raises(grpc.RpcError) as error:
        call(request, timeout=30)
    assert error.value.code() == code, error.value.details()
    for fragment in fragments:
        assert fragment in error.value.details(), error.value.details()


def test_predict_with_tensor_content_answers_typed_fields(stub, test_images):
    images, labels = test_images
    response = stub.Predict(predict_request("mnist", images[:8]), timeout=30)
    assert response.model_spec.name == "mnist" and response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    probabilities = response.outputs["probabilities"]
    assert not probabilities.tensor_content and len(probabilities.float_val) == 80
    scores = np.array(probabilities.float_val).reshape(8, 10)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    assert list(response.outputs["classes"].int64_val) == scores.argmax(axis=1).tolist()
    assert set(response.outputs) == {"probabilities", "log_probabilities", "classes", "logits"}


def test_predict_with_typed_value_fields_and_output_filter(stub, test_images):
    images, _ = test_images
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["images"].CopyFrom(numpy_to_tensor_proto(images[:2]))  # int_val
    request.output_filter.append("classes")
    response = stub.Predict(request, timeout=30)
    assert list(response.outputs) == ["classes"] and len(response.outputs["classes"].int64_val) == 2


def test_tf_serving_mnist_example_client_works_unchanged(stub, test_images):
    """What tensorflow/serving's mnist_client.py sends: predict_images, images [1, 784] floats."""
    images, labels = test_images
    image = images[0].reshape(784).astype(np.float32) / 255.0
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.model_spec.signature_name = "predict_images"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(image, shape=[1, image.size]))
    response = stub.Predict(request, 5.0)
    scores = np.array(response.outputs["scores"].float_val)
    assert scores.shape == (10,) and abs(scores.sum() - 1) < 1e-4


def test_classify_with_pixels_and_with_png(stub, test_images):
    images, _ = test_images
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "mnist"
    pixels = request.input.example_list.examples.add()
    pixels.features.feature["images"].int64_list.value.extend(images[0].ravel().tolist())
    png = io.BytesIO()
    Image.fromarray(images[1][..., 0]).save(png, format="PNG")
    encoded = request.input.example_list.examples.add()
    encoded.features.feature["images"].bytes_list.value.append(png.getvalue())
    response = stub.Classify(request, timeout=30)
    assert len(response.result.classifications) == 2
    for classification, image in zip(response.result.classifications, images[:2], strict=True):
        classes = classification.classes
        assert len(classes) == 10 and [c.score for c in classes] == sorted(
            (c.score for c in classes), reverse=True
        )
        expected = (
            stub.Predict(predict_request("mnist", image[None]), timeout=30)
            .outputs["classes"]
            .int64_val[0]
        )
        assert classes[0].label == str(expected)


@pytest.mark.parametrize("value", [float("nan"), 99999.0, -5.0, 1e30, 0.5])
def test_classify_refuses_pixel_values_outside_0_to_255_as_rest_does(stub, value):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "mnist"
    pixels = request.input.example_list.examples.add()
    pixels.features.feature["images"].float_list.value.extend([value] + [0.0] * 783)
    expect_error(stub.Classify, request, grpc.StatusCode.INVALID_ARGUMENT,
                 "is not a pixel value; expected integers 0-255")  # fmt: skip


@pytest.mark.parametrize("image_format", ["GIF", "BMP", "TIFF"])
def test_classify_decodes_png_and_jpeg_only(stub, test_images, image_format):
    encoded = io.BytesIO()
    Image.fromarray(test_images[0][0][..., 0]).resize((30, 30)).save(encoded, format=image_format)
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "mnist"
    example = request.input.example_list.examples.add()
    example.features.feature["images"].bytes_list.value.append(encoded.getvalue())
    expect_error(stub.Classify, request, grpc.StatusCode.INVALID_ARGUMENT,
                 "are not a PNG/JPEG image")  # fmt: skip


def test_classify_runs_the_signature_named_if_it_classifies(stub, test_images):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "mnist"
    example = request.input.example_list.examples.add()
    example.features.feature["images"].int64_list.value.extend(test_images[0][0].ravel().tolist())
    request.model_spec.signature_name = "serving_default"
    assert stub.Classify(request, timeout=30).model_spec.signature_name == "serving_default"
    request.model_spec.signature_name = "predict_images"  # answers 'scores', not 'probabilities'
    expect_error(stub.Classify, request, grpc.StatusCode.INVALID_ARGUMENT,
                 "'predict_images' takes ['images'] and answers ['scores']")  # fmt: skip
    request.model_spec.signature_name = "nope"
    expect_error(stub.Classify, request, grpc.StatusCode.NOT_FOUND, "has no signature 'nope'")


def test_classify_merges_the_context_into_each_example(stub, test_images):
    """ExampleListWithContext: the context's features join every example (input.proto)."""
    images, _ = test_images
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "mnist"
    listed = request.input.example_list_with_context
    listed.context.features.feature["images"].int64_list.value.extend(images[0].ravel().tolist())
    listed.examples.add()  # the context's image
    own = listed.examples.add()  # its own image wins over the context's
    own.features.feature["images"].int64_list.value.extend(images[1].ravel().tolist())
    classifications = stub.Classify(request, timeout=30).result.classifications
    for classification, image in zip(classifications, images[:2], strict=True):
        outputs = stub.Predict(predict_request("mnist", image[None]), timeout=30).outputs
        top = classification.classes[0]
        assert top.label == str(outputs["classes"].int64_val[0])
        assert top.score == pytest.approx(max(outputs["probabilities"].float_val), rel=1e-5)


def test_get_model_metadata_returns_signature_defs(stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "mnist"
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=30)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    serving = signature_map.signature_def["serving_default"]
    assert serving.inputs["images"].dtype == tf.uint8.as_datatype_enum
    assert [d.size for d in serving.inputs["images"].tensor_shape.dim] == [-1, 28, 28, 1]
    assert set(serving.outputs) == {"probabilities", "log_probabilities", "classes", "logits"}
    assert "predict_images" in signature_map.signature_def


def test_get_model_status(channel):
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "mnist"
    (status,) = stub.GetModelStatus(request, timeout=30).model_version_status
    assert status.version == 1 and status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0


def test_not_found_errors(stub, test_images):
    images, _ = test_images
    expect_error(
        stub.Predict,
        predict_request("nope", images[:1]),
        grpc.StatusCode.NOT_FOUND,
        "Model 'nope' not found. Serving: mnist",
    )
    expect_error(
        stub.Predict,
        predict_request("mnist", images[:1], version=9),
        grpc.StatusCode.NOT_FOUND,
        "version 9 not found. Available versions: [1]",
    )
    expect_error(
        stub.Predict,
        predict_request("mnist", images[:1], signature="nope"),
        grpc.StatusCode.NOT_FOUND,
        "no signature 'nope'",
        "predict_images, serving_default",
    )
    request = predict_request("mnist", images[:1])
    request.model_spec.version_label = "stable"
    expect_error(stub.Predict, request, grpc.StatusCode.NOT_FOUND, "no version label 'stable'")


def string_tensor_request(value: bytes) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto([value]))
    return request


@pytest.mark.parametrize(
    ("make_request", "fragments"),
    [
        (
            lambda x: predict_request("mnist", {"pixels": x[:2]}),
            ["missing input(s) ['images']", "unexpected input(s) ['pixels']"],
        ),
        (
            lambda x: predict_request("mnist", x[:2].astype(np.float32)),
            ["Input 'images': expected dtype uint8, received float32"],
        ),
        (
            lambda x: string_tensor_request(b"a PNG, but sent as a string tensor"),
            ["Input 'images': expected dtype uint8, received string"],
        ),
        (
            lambda x: predict_request("mnist", x[:2].reshape(2, 784)),
            ["Input 'images': expected shape [-1, 28, 28, 1], received [2, 784]"],
        ),
        (lambda x: predict_request("mnist", x[:0]), ["Input 'images': the batch is empty"]),
        (
            lambda x: predict_request("mnist", np.zeros((65, 28, 28, 1), np.uint8)),
            ["batch of 65 examples exceeds the limit of 64"],
        ),
        (
            lambda x: predict_request(
                "mnist", np.full((1, 784), np.nan, np.float32), signature="predict_images"
            ),
            ["Input 'images': 784 value(s) are NaN or Inf"],
        ),
    ],
    ids=["missing-extra", "dtype", "string", "shape", "empty", "over-limit", "nan"],
)
def test_invalid_arguments_name_tensor_expected_and_received(
    stub, test_images, make_request, fragments
):
    expect_error(
        stub.Predict, make_request(test_images[0]), grpc.StatusCode.INVALID_ARGUMENT, *fragments
    )


def test_tensor_bytes_that_do_not_match_the_shape(stub, test_images):
    request = predict_request("mnist", test_images[0][:2])
    request.inputs["images"].tensor_content = request.inputs["images"].tensor_content[:100]
    expect_error(
        stub.Predict,
        request,
        grpc.StatusCode.INVALID_ARGUMENT,
        "tensor_content has 100 bytes, but shape [2, 28, 28, 1] of DT_UINT8 needs 1568",
    )


def test_bad_requests_never_affect_good_ones(stub, test_images):
    from concurrent.futures import ThreadPoolExecutor

    images, _ = test_images
    good = predict_request("mnist", images[:1])
    bad = predict_request("mnist", images[:1].astype(np.float32))

    def call(index):
        try:
            stub.Predict(bad if index % 2 else good, timeout=30)
            return "ok"
        except grpc.RpcError as error:
            return error.code()

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(call, range(64)))
    assert outcomes[::2] == ["ok"] * 32
    assert set(outcomes[1::2]) == {grpc.StatusCode.INVALID_ARGUMENT}


def test_concurrent_requests_are_batched_and_answered_correctly(stub, server, test_images):
    from concurrent.futures import ThreadPoolExecutor

    images, _ = test_images
    expected = [
        stub.Predict(predict_request("mnist", images[i : i + 1]), timeout=30)
        .outputs["classes"]
        .int64_val[0]
        for i in range(32)
    ]
    with ThreadPoolExecutor(32) as pool:
        answers = list(
            pool.map(
                lambda i: stub.Predict(predict_request("mnist", images[i : i + 1]), timeout=30)
                .outputs["classes"]
                .int64_val[0],
                list(range(32)) * 4,
            )
        )
    assert answers == expected * 4
    histogram = server.dataplane.metrics.batch_size.labels("mnist")
    samples = {
        s.name + str(s.labels.get("le", "")): s.value for s in histogram.collect()[0].samples
    }
    assert samples["zoo_batch_size_count"] > samples["zoo_batch_size_bucket1.0"], (
        "some batches merged"
    )


def test_regress_and_multi_inference_on_an_image_classifier_say_what_to_send_instead(stub):
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = "nope"
    expect_error(stub.Regress, regress, grpc.StatusCode.NOT_FOUND, "Model 'nope' not found")
    regress.model_spec.name = "mnist"
    expect_error(
        stub.Regress, regress, grpc.StatusCode.UNIMPLEMENTED,
        "Regress needs a regression signature (method tensorflow/serving/regress, serialized "
        "tf.Examples in); signature 'serving_default' of model 'mnist' is not one.",
    )  # fmt: skip
    multi = inference_pb2.MultiInferenceRequest()
    expect_error(stub.MultiInference, multi, grpc.StatusCode.INVALID_ARGUMENT, "at least one task")
    multi.tasks.add(method_name="tensorflow/serving/classify").model_spec.name = "mnist"
    expect_error(
        stub.MultiInference, multi, grpc.StatusCode.INVALID_ARGUMENT,
        "Task 0: method 'tensorflow/serving/classify' needs a signature of that method",
    )  # fmt: skip


def test_reload_config_requests_point_to_the_polled_config_file(channel):
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    expect_error(
        stub.HandleReloadConfigRequest, model_management_pb2.ReloadConfigRequest(),
        grpc.StatusCode.UNIMPLEMENTED, "Edit the --model-config file instead",
    )  # fmt: skip
