"""TensorFlow Serving's classification and regression signatures (serialized tf.Examples in, as
Estimators export them) answered by Classify, Regress and MultiInference over gRPC and by REST."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from helpers import loopback_settings
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from test_rest_api import call

from serving.errors import ServingError
from serving.plane.example_signatures import classifications, regressions
from serving.process.server import ServerThread


def _export_estimator_like(path) -> None:
    """A TensorFlow 1 SavedModel: feature ``x`` (2 floats) parsed from serialized examples;
    ``classify`` scores classes "low" and "high" by x's sum, ``regress`` answers the sum."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        serialized = tf.compat.v1.placeholder(tf.string, [None], name="examples")
        spec = {"x": tf.io.FixedLenFeature([2], tf.float32)}
        total = tf.reduce_sum(tf.io.parse_example(serialized, spec)["x"], axis=1)
        scores = tf.nn.softmax(tf.stack([-total, total], axis=1))
        classes = tf.tile(tf.constant([["low", "high"]]), [tf.shape(total)[0], 1])
        signatures = {
            "classify": tf.compat.v1.saved_model.classification_signature_def(
                serialized, classes, scores
            ),
            "regress": tf.compat.v1.saved_model.regression_signature_def(
                serialized, total[:, None]
            ),
        }
        signatures["serving_default"] = signatures["classify"]
        builder = tf.compat.v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map=signatures)
        builder.save()


def _example(*values) -> example_pb2.Example:
    example = example_pb2.Example()
    example.features.feature["x"].CopyFrom(
        feature_pb2.Feature(float_list=feature_pb2.FloatList(value=values))
    )
    return example


@pytest.fixture(scope="module")
def estimator(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    _export_estimator_like(root / "est" / "1")
    with ServerThread(loopback_settings(root)) as running:
        yield running


def _expected_scores(total: float) -> list[float]:
    return [float(v) for v in tf.nn.softmax([-total, total]).numpy()]


def test_grpc_classify_runs_a_classification_signature_on_serialized_examples(estimator):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "est"
    request.input.example_list.examples.extend([_example(1.0, 2.0), _example(-1.0, 0.5)])
    with grpc.insecure_channel(f"127.0.0.1:{estimator.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Classify(request, timeout=30)
        request.model_spec.signature_name = "classify"
        with_context = classification_pb2.ClassificationRequest(model_spec=request.model_spec)
        context_input = with_context.input.example_list_with_context
        context_input.context.CopyFrom(_example(3.0, 3.0))
        context_input.examples.add()  # takes x from the context
        from_context = stub.Classify(with_context, timeout=30)
    assert response.model_spec.signature_name == "serving_default"
    for result, total in zip(response.result.classifications, [3.0, -0.5], strict=True):
        assert [c.label for c in result.classes] == ["low", "high"]
        np.testing.assert_allclose([c.score for c in result.classes], _expected_scores(total),
                                   rtol=1e-6)  # fmt: skip
    (result,) = from_context.result.classifications
    np.testing.assert_allclose([c.score for c in result.classes], _expected_scores(6.0), rtol=1e-6)


def test_grpc_regress_runs_a_regression_signature(estimator):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "est"
    request.model_spec.signature_name = "regress"
    request.input.example_list.examples.extend([_example(1.0, 2.0), _example(0.25, 0.5)])
    with grpc.insecure_channel(f"127.0.0.1:{estimator.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Regress(request, timeout=30)
        request.model_spec.signature_name = "classify"
        with pytest.raises(grpc.RpcError) as error:
            stub.Regress(request, timeout=30)
    assert [r.value for r in response.result.regressions] == [3.0, 0.75]
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "signature 'classify' of model 'est' is not one" in error.value.details()


def test_multi_inference_runs_classify_and_regress_tasks_on_the_same_examples(estimator):
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in [("classify", "classify"), ("regress", "regress")]:
        task = request.tasks.add(method_name=f"tensorflow/serving/{method}")
        task.model_spec.name, task.model_spec.signature_name = "est", signature
    request.input.example_list.examples.extend([_example(1.0, 2.0), _example(0.5, 0.0)])
    with grpc.insecure_channel(f"127.0.0.1:{estimator.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.MultiInference(request, timeout=30)
        request.tasks[1].model_spec.name = "other"
        with pytest.raises(grpc.RpcError) as error:
            stub.MultiInference(request, timeout=30)
    classified, regressed = response.results
    assert classified.model_spec.signature_name == "classify"
    scores = [
        [c.score for c in r.classes] for r in classified.classification_result.classifications
    ]
    np.testing.assert_allclose(scores, [_expected_scores(3.0), _expected_scores(0.5)], rtol=1e-6)
    assert [r.value for r in regressed.regression_result.regressions] == [3.0, 0.5]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Task 1: every task must name the model, version and label of the first" in str(
        error.value.details()
    )


def test_rest_classify_and_regress_take_json_examples(estimator):
    port = estimator.rest_port
    status, body = call(port, "/v1/models/est:classify", {"examples": [{"x": [1.0, 2.0]}]})
    assert status == 200, body
    ((low, high),) = body["results"]
    assert [low[0], high[0]] == ["low", "high"]
    np.testing.assert_allclose([low[1], high[1]], _expected_scores(3.0), rtol=1e-6)
    request = {"signature_name": "regress", "context": {"x": [0.5, 0.5]},
               "examples": [{}, {"x": [2.0, 2.0]}]}  # fmt: skip
    status, body = call(port, "/v1/models/est:regress", request)
    assert status == 200 and body["results"] == [1.0, 4.0], body


def test_examples_the_model_cannot_parse_are_refused_with_its_reason(estimator):
    body = {"signature_name": "regress", "examples": [{"x": [1, 2]}]}  # int64, not float
    status, answer = call(estimator.rest_port, "/v1/models/est:regress", body)
    assert status == 400
    assert answer["error"].startswith("The model refused the input: Name: <unknown>, Key: x")
    assert "Data types don't match. Data type: int64 but expected type: float" in answer["error"]


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ([{"x": [1, "a"]}], "Feature 'x': values must be all numbers or all strings"),
        ([[1, 2]], "Each example must be an object of features. Received: list."),
        ([], "'examples' must be a non-empty list of objects."),
    ],
)
def test_rest_examples_that_are_not_features_are_refused(estimator, examples, message):
    body = {"signature_name": "regress", "examples": examples}
    status, answer = call(estimator.rest_port, "/v1/models/est:regress", body)
    assert status == 400 and message in answer["error"], answer


def test_classifications_fill_what_the_signature_leaves_out_as_tensorflow_serving_does():
    scores = np.array([[0.25, 0.75]], np.float32)
    classes = np.array([[b"a", b"b"]], dtype=object)
    assert classifications({"scores": scores}, 1) == [[("", 0.25), ("", 0.75)]]
    assert classifications({"classes": classes}, 1) == [[("a", 0.0), ("b", 0.0)]]
    both = classifications({"classes": classes, "scores": scores}, 1)
    assert both == [[("a", 0.25), ("b", 0.75)]]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: classifications({"logits": np.zeros((1, 2))}, 1),
         "answers 'classes' and/or 'scores'; this one answers ['logits']"),
        (lambda: classifications({"classes": np.zeros((1, 3), object),
                                  "scores": np.zeros((1, 2))}, 1),
         "have shapes [1, 3] and [1, 2]"),
        (lambda: classifications({"scores": np.zeros((2, 2))}, 3),
         "Output 'scores' has shape [2, 2] for 3 examples"),
        (lambda: regressions({"outputs": np.zeros((2, 2))}, 2),
         "Output 'outputs' has 2 values per example; a regression answers one."),
        (lambda: regressions({"y": np.zeros(2)}, 2), "answers 'outputs'; this one answers ['y']"),
    ],
)  # fmt: skip
def test_outputs_a_classification_or_regression_cannot_be_read_from(call, message):
    with pytest.raises(ServingError) as error:
        call()
    assert message in str(error.value)
