"""Warm-up before a version serves: TensorFlow Serving's warm-up file replayed, zeros at each
batch size for numeric signatures, and models that take strings loading at all."""

import io
import logging
import shutil
import struct

import grpc
import numpy as np
import pytest
import tensorflow as tf
from helpers import loopback_settings
from PIL import Image
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from test_example_signatures import _export_estimator_like
from test_repository import wait_for

from serving.client import PredictionClient, predict_request
from serving.plane.runtime import LoadedVersion, Signature
from serving.plane.tfrecord import RecordError, masked_crc, read_records
from serving.plane.warmup import (
    MAX_WARMUP_RECORDS,
    WARMUP_FILE,
    WarmUpError,
    replay_warmup_file,
    warm_up,
    warm_up_sizes,
)
from serving.process.server import ServerThread


class _StringModel(tf.Module):
    """Takes PNG bytes, answers each image's mean pixel: a model no zeros can warm up."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def mean_pixel(self, image_bytes):
        def decode(data):
            return tf.cast(tf.io.decode_png(data, channels=1), tf.float32)

        spec = tf.TensorSpec([None, None, 1], tf.float32)
        images = tf.map_fn(decode, image_bytes, fn_output_signature=spec)
        return {"mean": tf.reduce_mean(images, axis=[1, 2, 3])}


def _png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 4), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_warmup_file(version_dir, logs) -> None:
    (version_dir / WARMUP_FILE).parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(version_dir / WARMUP_FILE)) as writer:
        for entry in logs:
            writer.write(entry if isinstance(entry, bytes) else entry.SerializeToString())


def _predict_log(images, signature="") -> prediction_log_pb2.PredictionLog:
    request = predict_request("mnist", images, signature=signature)
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )


def _classify_log(images) -> prediction_log_pb2.PredictionLog:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "mnist"
    for image in images:
        example = request.input.example_list.examples.add()
        values = feature_pb2.Int64List(value=image.reshape(-1).tolist())
        example.features.feature["images"].CopyFrom(feature_pb2.Feature(int64_list=values))
    log_entry = prediction_log_pb2.ClassifyLog(request=request)
    return prediction_log_pb2.PredictionLog(classify_log=log_entry)


def _regress_log() -> prediction_log_pb2.PredictionLog:
    request = regression_pb2.RegressionRequest()
    request.input.example_list.examples.add().CopyFrom(example_pb2.Example())
    return prediction_log_pb2.PredictionLog(
        regress_log=prediction_log_pb2.RegressLog(request=request)
    )


@pytest.fixture
def recorded_calls(monkeypatch):
    """(signature, {input: batch size}) of every signature call, in order."""
    calls = []
    original = Signature.__call__

    def recording(signature, inputs):
        calls.append((signature.name, {name: a.shape[0] for name, a in inputs.items()}))
        return original(signature, inputs)

    monkeypatch.setattr(Signature, "__call__", recording)
    return calls


def test_the_warm_up_file_is_replayed_then_zeros_run_at_each_batch_size(
    exported_version, tmp_path, test_images, recorded_calls, caplog
):
    version_dir = tmp_path / "1"
    shutil.copytree(exported_version, version_dir)
    images = test_images[0]
    logs = [_predict_log(images[:3]), _classify_log(images[:2]), _regress_log()]
    _write_warmup_file(version_dir, logs)
    version = LoadedVersion("mnist", 1, version_dir)
    with caplog.at_level(logging.WARNING, logger="zoo.serving"):
        warm_up(version, 4)
    replayed = [("serving_default", {"images": 3}), ("serving_default", {"images": 2})]
    zeros = [
        (name, {input_name: size for input_name in signature.inputs})
        for name, signature in version.signatures.items()
        for size in warm_up_sizes(4)
    ]
    assert recorded_calls == replayed + zeros
    assert "skipped records this server does not answer: {'regress_log': 1}" in caplog.text


def test_a_model_that_takes_strings_loads_and_answers(tmp_path):
    """Zeros are no image: the string signature is left to the warm-up file, not refused."""
    model = _StringModel()
    version_dir = tmp_path / "repo" / "pixels" / "1"
    tf.saved_model.save(model, str(version_dir), signatures={"serving_default": model.mean_pixel})
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "pixels"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([_png(10), _png(200)]))
    warmup_log = prediction_log_pb2.PredictLog(request=request)
    _write_warmup_file(version_dir, [prediction_log_pb2.PredictionLog(predict_log=warmup_log)])
    with (
        ServerThread(loopback_settings(tmp_path / "repo")) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=30)
    assert tf.make_ndarray(response.outputs["mean"]).tolist() == [10.0, 200.0]


@pytest.mark.parametrize(
    ("logs", "message"),
    [
        ([b"\x08\x01garbage"], "record 0: not a PredictionLog."),
        ("unknown_signature", "record 1 (predict_log): no signature 'nope'; the model has"),
        ("wrong_inputs", "record 0 (predict_log): signature 'serving_default' takes inputs "
                         "['images'], the record gives ['pixels']"),
        ("too_many", f"more than {MAX_WARMUP_RECORDS} records; keep at most that many."),
        ("not_a_tfrecord", "record 0 at byte 0: the length's checksum does not match"),
        ("forged_length", "record 0 at byte 0: claims 1,099,511,627,776 bytes, the file has 16"),
        ("flipped_byte", "record 0 at byte 0: the data's checksum does not match (corrupt)"),
        ("truncated", "record 1 at byte"),
    ],
)  # fmt: skip
def test_a_warm_up_file_that_fails_names_the_file_and_the_record(
    exported_version, tmp_path, test_images, logs, message
):
    version_dir = tmp_path / "1"
    shutil.copytree(exported_version, version_dir)
    image = test_images[0][:1]
    if logs == "unknown_signature":
        logs = [_predict_log(image), _predict_log(image, signature="nope")]
    elif logs == "wrong_inputs":
        logs = [_predict_log({"pixels": image})]
    elif logs == "too_many":
        logs = [_predict_log(image)] * (MAX_WARMUP_RECORDS + 1)
    if logs in ("not_a_tfrecord", "forged_length"):
        (version_dir / WARMUP_FILE).parent.mkdir(parents=True, exist_ok=True)
        (version_dir / WARMUP_FILE).write_bytes(
            b"not a record file at all" if logs == "not_a_tfrecord" else forged_length_record()
        )
    elif logs in ("flipped_byte", "truncated"):
        _write_warmup_file(version_dir, [_predict_log(image)] * 2)
        data = bytearray((version_dir / WARMUP_FILE).read_bytes())
        if logs == "flipped_byte":
            data[20] ^= 0x40
        (version_dir / WARMUP_FILE).write_bytes(data if logs == "flipped_byte" else data[:-3])
    else:
        _write_warmup_file(version_dir, logs)
    version = LoadedVersion("mnist", 1, version_dir)
    with pytest.raises(WarmUpError, match="Warm-up file .*tf_serving_warmup_requests") as error:
        replay_warmup_file(version, version_dir / WARMUP_FILE, 64)
    assert message in str(error.value)


def forged_length_record() -> bytes:
    """28 bytes whose length field, checksummed right, claims a record of 1 TiB: TensorFlow's
    own reader aborted the process on it."""
    length = struct.pack("<Q", 1 << 40)
    return length + struct.pack("<I", masked_crc(length)) + b"\0" * 16


def test_records_read_back_as_tensorflow_wrote_them(tmp_path):
    records = [b"", b"a", bytes(range(256)) * 40]
    with tf.io.TFRecordWriter(str(tmp_path / "file")) as writer:
        for record in records:
            writer.write(record)
    assert read_records(tmp_path / "file", max_records=3, max_bytes=1 << 20) == records
    with pytest.raises(RecordError, match="over the 100 read"):
        read_records(tmp_path / "file", max_records=3, max_bytes=100)


@pytest.mark.parametrize("forged", [False, True], ids=["failing-record", "forged-length"])
def test_a_version_whose_warm_up_fails_never_replaces_a_working_one(make_repo, test_images, forged):
    """A record that fails, or a length field claiming 1 TiB (which aborted TensorFlow's own
    reader): the new version fails, the server goes on with the old one."""
    repo = make_repo([1])
    staging = repo / "mnist" / ".staging"
    shutil.copytree(repo / "mnist" / "1", staging)
    if forged:
        (staging / WARMUP_FILE).parent.mkdir(parents=True, exist_ok=True)
        (staging / WARMUP_FILE).write_bytes(forged_length_record())
    else:
        _write_warmup_file(staging, [_predict_log(test_images[0][:1], "nope")])
    with ServerThread(loopback_settings(repo)) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        staging.rename(repo / "mnist" / "2")
        wait_for(lambda: {s.version: s.state for s in client.status("mnist")}.get(2) == 50)
        status = {s.version: s for s in client.status("mnist")}
        expected = "claims 1,099,511,627,776 bytes" if forged else "no signature 'nope'"
        assert expected in status[2].status.error_message
        assert "tf_serving_warmup_requests" in status[2].status.error_message
        assert client.predict("mnist", test_images[0][:1])["classes"].shape == (1,)


def test_a_version_is_warmed_up_at_each_batch_size_up_to_its_largest_model_call(
    make_repo, recorded_calls
):
    """Through the repository: the model config's max_batch_size is the largest size warmed."""
    repo = make_repo([1])
    config = repo / "models.yaml"
    config.write_text(
        "models:\n  mnist:\n    base_path: mnist\n    batching: {max_batch_size: 12}\n"
    )
    with ServerThread(loopback_settings(repo, model_config_file=str(config))) as running:
        signatures = running.dataplane.repository.loaded["mnist"][1].signatures
    expected = [
        (name, {input_name: size for input_name in signature.inputs})
        for name, signature in signatures.items()
        for size in (1, 2, 4, 8, 12)
    ]
    assert recorded_calls == expected


@pytest.mark.parametrize(
    ("largest", "sizes"),
    [
        (1, [1]),
        (2, [1, 2]),
        (5, [1, 2, 4, 5]),
        (64, [1, 2, 4, 8, 16, 32, 64]),
        (65, [1, 2, 4, 8, 16, 32, 64, 65]),
    ],
)
def test_warm_up_sizes(largest, sizes):
    assert warm_up_sizes(largest) == sizes


def test_warm_up_sizes_refuse_a_batch_below_one():
    with pytest.raises(ValueError, match="largest_batch must be at least 1. Received: 0"):
        warm_up_sizes(0)


def test_classify_and_regress_records_warm_classification_and_regression_signatures(
    tmp_path, recorded_calls
):
    """An Estimator's warm-up file holds Classify and Regress records for its SignatureDefs of
    those methods: they run on serialized examples, as the requests they stand for will."""
    version_dir = tmp_path / "1"
    _export_estimator_like(version_dir)
    example = example_pb2.Example()
    example.features.feature["x"].float_list.value.extend([1.0, 2.0])
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.signature_name = "classify"
    classify.input.example_list.examples.extend([example, example])
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.signature_name = "regress"
    regress.input.example_list.examples.append(example)
    _write_warmup_file(version_dir, [
        prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(request=classify)),
        prediction_log_pb2.PredictionLog(regress_log=prediction_log_pb2.RegressLog(request=regress)),
    ])  # fmt: skip
    warm_up(LoadedVersion("est", 1, version_dir), 4)
    assert recorded_calls == [("classify", {"inputs": 2}), ("regress", {"inputs": 1})]


def _broadcast_log(shape) -> prediction_log_pb2.PredictionLog:
    """A few bytes asking for ``shape``: one value repeated, as TensorProto allows."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    proto = request.inputs["images"]
    proto.dtype = tf.uint8.as_datatype_enum
    proto.tensor_shape.dim.extend([proto.tensor_shape.Dim(size=d) for d in shape])
    proto.int_val.append(7)
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((80_000, 28, 28, 1), "80000 examples in one request, over max_batch_size=4"),
        ((4, 28, 28, 100_000), "bytes"),  # 313 MB from a few bytes: over the byte cap
    ],
)
def test_a_warm_up_record_cannot_ask_for_more_than_the_server_runs(
    exported_version, tmp_path, recorded_calls, shape, message
):
    version_dir = tmp_path / "1"
    shutil.copytree(exported_version, version_dir)
    _write_warmup_file(version_dir, [_broadcast_log(shape)])
    assert len((version_dir / WARMUP_FILE).read_bytes()) < 100
    with pytest.raises(WarmUpError, match="record 0") as error:
        warm_up(LoadedVersion("mnist", 1, version_dir), 4)
    assert message in str(error.value) and recorded_calls == []


def test_zeros_stop_below_the_batch_whose_inputs_pass_the_byte_cap(
    exported_version, tmp_path, recorded_calls, monkeypatch, caplog
):
    monkeypatch.setattr("serving.plane.warmup.MAX_WARMUP_BYTES", 3 * 784)  # 3 MNIST images
    version_dir = tmp_path / "1"
    shutil.copytree(exported_version, version_dir)
    with caplog.at_level(logging.INFO, logger="zoo.serving"):
        warm_up(LoadedVersion("mnist", 1, version_dir), 64)
    assert {sizes["images"] for _, sizes in recorded_calls} == {1, 2}
    assert "stops below batch 4: its inputs would take" in caplog.text
