"""The model repository: hot reload under load, failed loads, removal, policies and labels."""

import gc
import json
import logging
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
import weakref

import grpc
import numpy as np
import pytest
from helpers import loopback_settings

from core.artifact import existing_versions, ignored_version_folders, versions_on_disk
from core.errors import ConfigError
from serving.client import PredictionClient, predict_request
from serving.healthcheck import check
from serving.plane.repository import ModelConfigError, VersionPolicy, read_model_config
from serving.process.server import ServerThread
from serving.settings import BatchingOptions


def wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def served_version(client, images) -> int:
    request = predict_request("mnist", images)
    return client.prediction.Predict(request, timeout=30).model_spec.version.value


def publish(source, target):
    """Copies a version the way export does: into a hidden folder, then one rename."""
    staging = target.parent / f".tmp-{target.name}"
    shutil.copytree(source, staging)
    staging.rename(target)


def test_hot_reload_under_concurrent_load_loses_no_request(
    make_repo, exported_version, test_images
):
    repo = make_repo([1])
    images = test_images[0][:4]
    with ServerThread(loopback_settings(repo)) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        seen, failures, stop = [], [], threading.Event()

        def load():
            while not stop.is_set():
                try:
                    seen.append(served_version(client, images))
                except grpc.RpcError as error:
                    failures.append(error)

        threads = [threading.Thread(target=load) for _ in range(8)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(seen) > 20)
        publish(exported_version, repo / "mnist" / "2")
        wait_for(lambda: seen and seen[-1] == 2 and seen.count(2) > 20)
        stop.set()
        for thread in threads:
            thread.join()
        assert failures == [], failures[:3]
        first_two = seen.index(2)
        assert set(seen[first_two + 16 :]) == {2}, "once v2 serves, v1 (latest(1) policy) is gone"
        statuses = {s.version: s.state for s in client.status("mnist")}
        assert statuses == {1: 50, 2: 30}  # END, AVAILABLE


def test_version_that_fails_to_load_never_replaces_a_working_one(make_repo, test_images):
    repo = make_repo([1])
    with ServerThread(loopback_settings(repo, rest_port=0)) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        broken = repo / "mnist" / "2"
        broken.mkdir()
        (broken / "saved_model.pb").write_bytes(b"not a saved model")
        wait_for(lambda: any(s.version == 2 and s.state == 50 for s in client.status("mnist")))
        status = next(s for s in client.status("mnist") if s.version == 2)
        assert status.status.error_code == 13 and status.status.error_message  # INTERNAL
        assert served_version(client, test_images[0][:1]) == 1
        assert {s.version: s.state for s in client.status("mnist")}[1] == 30
        # REST says the same status by name; the repository index says why it is unavailable.
        url = f"http://127.0.0.1:{running.rest_port}"
        with urllib.request.urlopen(f"{url}/v1/models/mnist/versions/2", timeout=10) as answer:
            (rest_status,) = json.loads(answer.read())["model_version_status"]
        assert rest_status["status"] == {"error_code": "INTERNAL",
                                         "error_message": status.status.error_message}  # fmt: skip
        request = urllib.request.Request(f"{url}/v2/repository/index", data=b"{}")
        with urllib.request.urlopen(request, timeout=10) as answer:
            index = {entry["version"]: entry for entry in json.loads(answer.read())}
        assert index["1"]["state"] == "READY" and index["2"]["state"] == "UNAVAILABLE"
        assert index["2"]["reason"] == status.status.error_message


def test_only_folders_named_in_ascii_digits_are_versions(tmp_path):
    # "²" passes str.isdigit but int() refuses it: it crashed every poll of the repository;
    # int("١") is 1, a folder that is not 1/.
    for name in ("1", "\u00b2", "\u0661", "2x"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "saved_model.pb").write_bytes(b"")
    assert existing_versions(tmp_path) == [1]
    assert list(versions_on_disk(tmp_path)) == [1]


def test_a_version_beyond_int64_or_with_a_leading_zero_is_skipped_and_said_once(
    make_repo, test_images, caplog
):
    repo = make_repo([1])
    beyond = str(2**70)
    for name in (beyond, "000123"):
        shutil.copytree(repo / "mnist" / "1", repo / "mnist" / name)
    assert ignored_version_folders(repo / "mnist") == {
        beyond: f"{beyond!r} is beyond int64, the largest version TensorFlow Serving's API carries",
        "000123": "'000123' has a leading zero; name the version folder 123",
    }
    with (
        caplog.at_level(logging.WARNING, logger="zoo.serving"),
        ServerThread(loopback_settings(repo)) as running,
    ):
        client = PredictionClient(f"127.0.0.1:{running.port}")
        time.sleep(0.5)  # a few polls
        assert served_version(client, test_images[0][:1]) == 1
        assert [s.version for s in client.status("mnist")] == [1]
    said = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert sorted(said) == sorted(
        f"Model mnist: folder {name} ignored: {why}"
        for name, why in ignored_version_folders(repo / "mnist").items()
    )


def test_removed_version_is_unloaded(make_repo, test_images):
    repo = make_repo([1, 2])
    config = repo / "models.yaml"
    config.write_text("models:\n  mnist:\n    base_path: mnist\n    version_policy: {all: {}}\n")
    with ServerThread(loopback_settings(repo, model_config_file=str(config))) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        assert client.predict("mnist", test_images[0][:1], version=1)["classes"].shape == (1,)
        shutil.rmtree(repo / "mnist" / "1")
        wait_for(lambda: {s.version: s.state for s in client.status("mnist")}.get(1) == 50)
        with pytest.raises(grpc.RpcError) as error:
            client.predict("mnist", test_images[0][:1], version=1)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        assert "Available versions: [2]" in error.value.details()


def test_the_baseline_is_frozen_and_an_unloaded_version_is_freed_without_unfreezing_it(
    make_repo, test_images, monkeypatch
):
    """What the process holds before the first load is frozen out of the collector's full
    passes; loaded versions are not, so removing one frees its cycles with a pass over the
    unfrozen objects only, never unfreezing (and walking) the whole heap."""
    repo = make_repo([1, 2])
    config = repo / "models.yaml"
    config.write_text("models:\n  mnist:\n    base_path: mnist\n    version_policy: {all: {}}\n")
    gc.unfreeze()  # what earlier tests in this process froze

    def no_unfreeze():
        raise AssertionError("the heap was unfrozen")

    monkeypatch.setattr(gc, "unfreeze", no_unfreeze)
    with ServerThread(loopback_settings(repo, model_config_file=str(config))) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        assert client.predict("mnist", test_images[0][:1], version=1)["classes"].shape == (1,)
        assert gc.get_freeze_count() > 10_000
        loaded = running.dataplane.repository.loaded["mnist"][1]._saved_model
        assert any(obj is loaded for obj in gc.get_objects())  # not frozen
        saved_model = weakref.ref(loaded)
        del loaded
        shutil.rmtree(repo / "mnist" / "1")
        wait_for(lambda: saved_model() is None)
        assert client.predict("mnist", test_images[0][:1], version=2)["classes"].shape == (1,)


def test_model_config_policies_labels_and_batching(make_repo, test_images):
    repo = make_repo([1, 2, 3])
    config = repo / "models.yaml"
    config.write_text(
        "models:\n"
        "  digits:\n"
        "    base_path: mnist\n"
        "    version_policy: {specific: [1, 3]}\n"
        "    version_labels: {stable: 1, canary: 3}\n"
        "    batching: {max_batch_size: 8, enabled: false}\n"
    )
    with ServerThread(loopback_settings(repo, model_config_file=str(config))) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        assert sorted(s.version for s in client.status("digits") if s.state == 30) == [1, 3]
        for label, version in (("stable", 1), ("canary", 3)):
            request = predict_request("digits", test_images[0][:1])
            request.model_spec.version_label = label
            assert (
                client.prediction.Predict(request, timeout=30).model_spec.version.value == version
            )
        assert running.dataplane.repository.configs["digits"].batching.enabled is False


def test_a_changed_model_config_is_applied_without_a_restart(make_repo, test_images, caplog):
    """The model config file is polled as the repository is: new policies and labels apply, a
    file that does not validate leaves the last good config serving, and a model dropped from it
    is unloaded while a model added to it loads."""
    repo = make_repo([1, 2])
    shutil.copytree(repo / "mnist", repo / "fashion")
    config = repo / "models.yaml"

    def write(text):
        staging = repo / ".models.yaml"  # written whole, then renamed over the old file
        staging.write_text(text)
        staging.rename(config)

    def label_version(client, model, label):
        request = predict_request(model, test_images[0][:1])
        request.model_spec.version_label = label
        return client.prediction.Predict(request, timeout=30).model_spec.version.value

    write("models:\n  mnist:\n    version_policy: {specific: [1]}\n")
    settings = loopback_settings(repo, model_config_file=str(config), rest_port=0)
    with ServerThread(settings) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        assert served_version(client, test_images[0][:1]) == 1
        write(
            "models:\n  mnist:\n    version_policy: {all: {}}\n"
            "    version_labels: {stable: 1, canary: 2}\n"
        )
        wait_for(lambda: served_version(client, test_images[0][:1]) == 2)
        assert label_version(client, "mnist", "stable") == 1
        assert label_version(client, "mnist", "canary") == 2

        write("models:\n  mnist:\n    version_polcy: {all: {}}\n")  # a typo
        wait_for(lambda: "Model config not applied" in caplog.text)
        assert "unknown key(s) ['version_polcy']" in caplog.text
        assert label_version(client, "mnist", "canary") == 2  # the last good config serves

        write("models:\n  fashion:\n    base_path: fashion\n")
        wait_for(lambda: running.dataplane.repository.loaded.get("fashion"))
        with pytest.raises(grpc.RpcError) as error:
            client.predict("mnist", test_images[0][:1])
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        assert "Model 'mnist' not found. Serving: fashion." in error.value.details()
        assert client.predict("fashion", test_images[0][:1])["classes"].shape == (1,)
        # Health agrees on both protocols: the dropped model is not serving, the server is.
        address = f"127.0.0.1:{running.port}"
        wait_for(lambda: not check(address, "mnist", timeout=5))
        assert check(address, "fashion") and check(address)
        url = f"http://127.0.0.1:{running.rest_port}"
        assert rest_status(f"{url}/v2/models/mnist/ready") == 404
        assert rest_status(f"{url}/v2/models/fashion/ready") == 200
        assert rest_status(f"{url}/v2/health/ready") == 200


def rest_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_version_policies():
    assert VersionPolicy().select([1, 5, 3]) == {5}
    assert VersionPolicy("latest", 2).select([1, 5, 3]) == {3, 5}
    assert VersionPolicy("all").select([1, 2]) == {1, 2}
    assert VersionPolicy("specific", versions=(2, 9)).select([1, 2]) == {2}


TF_SERVING_CONFIG = """# TensorFlow Serving's --model_config_file, as users write it
model_config_list {
  config {
    name: "digits"
    base_path: "mnist"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 3 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 3 }
  }
}
"""


def test_tf_servings_model_config_list_serves_as_the_yaml_does(make_repo, test_images):
    repo = make_repo([1, 2, 3])
    config = repo / "models.config"
    config.write_text(TF_SERVING_CONFIG)
    with ServerThread(loopback_settings(repo, model_config_file=str(config))) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        assert sorted(s.version for s in client.status("digits") if s.state == 30) == [1, 3]
        request = predict_request("digits", test_images[0][:1])
        request.model_spec.version_label = "canary"
        assert client.prediction.Predict(request, timeout=30).model_spec.version.value == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_config_list { config { name: 'a' base_path: 'a' nope: 1 } }", "nope"),
        ("model_config_list { config { base_path: 'a' } }", "a config without a name"),
        ("model_config_list { config { name: 'a' model_platform: 'pytorch' } }",
         "model_platform 'pytorch'; the zoo serves TensorFlow SavedModels"),
        ("model_config_list { config { name: 'a' } config { name: 'a' } }", "'a' appears twice"),
    ],
)  # fmt: skip
def test_tf_serving_model_config_errors_name_the_problem(tmp_path, text, message):
    path = tmp_path / "models.config"
    path.write_text(text)
    with pytest.raises(ModelConfigError, match=re.escape(message)):
        read_model_config(str(path), BatchingOptions())


def test_tf_servings_batching_parameters_become_the_batching_defaults(tmp_path, caplog):
    from zoo import cli
    from zoo.commands.serve import settings_from_args

    path = tmp_path / "batching.config"
    path.write_text(
        "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 500 }  # half a ms\n"
        "max_enqueued_batches { value: 100 }\nnum_batch_threads { value: 8 }\n"
    )
    argv = ["serve", "--model-repo", str(tmp_path), "--batching-parameters", str(path)]
    with caplog.at_level(logging.WARNING, logger="zoo.serving"):
        settings = settings_from_args(cli.build_parser().parse_args(argv))
    batching = settings.batching
    assert (batching.max_batch_size, batching.max_wait_us, batching.max_queue) == (32, 500, 3200)
    assert "num_batch_threads has no effect in zoo serve" in caplog.text
    flags_win = settings_from_args(cli.build_parser().parse_args([*argv, "--max-batch-size", "4"]))
    assert flags_win.batching.max_batch_size == 4 and flags_win.batching.max_wait_us == 500
    path.write_text("max_batch_size { value: 32 }\nmax_batch_sise { value: 1 }\n")
    with pytest.raises(ConfigError, match="unknown field 'max_batch_sise'"):
        settings_from_args(cli.build_parser().parse_args(argv))
    path.write_text("max_batch_size = 32\n")
    with pytest.raises(ConfigError, match="cannot read 'max_batch_size = 32'"):
        settings_from_args(cli.build_parser().parse_args(argv))


def test_a_model_config_that_is_not_text_is_refused(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_bytes(b"models:\n  \xc6\xff: {}\n")
    with pytest.raises(ModelConfigError, match="Cannot read model config .*utf-8"):
        read_model_config(str(path), BatchingOptions())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: {}", "needs a non-empty 'models:' mapping"),
        ("models:\n  m: {base: x}", "unknown key(s) ['base']"),
        ("models:\n  m: {version_policy: {newest: 1}}", "invalid version_policy"),
        ("models:\n  m: {batching: {size: 3}}", "batching: Invalid setting size=3: Extra inputs"),
        (
            "models:\n  m: {batching: {max_batch_size: big}}",
            "batching: Invalid setting max_batch_size='big': Input should be a valid integer",
        ),
        ("models:\n  m: {batching: {max_queue: 0}}", "max_queue=0: Input should be greater"),
        ("models:\n  m: {version_labels: {stable: one}}", "invalid version_labels"),
        ("models:\n  m: 3", "Model 'm': expected a mapping of keys, got 3"),
    ],
)
def test_model_config_errors(tmp_path, text, message):
    path = tmp_path / "models.yaml"
    path.write_text(text)
    with pytest.raises(ModelConfigError, match=re.escape(message)):
        read_model_config(str(path), BatchingOptions())


def test_empty_repository_serves_nothing_but_runs(tmp_path):
    with ServerThread(loopback_settings(tmp_path)) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        with pytest.raises(grpc.RpcError) as error:
            client.predict("mnist", np.zeros((1, 28, 28, 1), np.uint8))
        assert (
            error.value.code() == grpc.StatusCode.NOT_FOUND
            and "Serving: none" in error.value.details()
        )


def _predict_until(client, images, stop: threading.Event, codes: list) -> None:
    """Predicts in a loop until ``stop``, noting each failure's status code."""
    while not stop.is_set():
        try:
            client.predict("digits", images)
        except grpc.RpcError as error:
            codes.append(error.code())


def test_a_new_base_path_loads_before_the_old_one_unloads(make_repo, test_images):
    """A base_path change once unloaded the model before loading the new path: 27-36 requests
    per switch answered NOT_FOUND."""
    repo = make_repo([1])
    shutil.copytree(repo / "mnist" / "1", repo / "moved" / "5")
    (repo / "empty").mkdir()
    config = repo / "models.yaml"

    def point_at(folder: str) -> None:
        staging = repo / ".models.yaml"
        staging.write_text(f"models:\n  digits:\n    base_path: {folder}\n")
        staging.rename(config)

    point_at("mnist")
    images = test_images[0][:1]
    with ServerThread(loopback_settings(repo, model_config_file=str(config))) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        loaded = running.dataplane.repository.loaded
        stop, codes = threading.Event(), []
        load = threading.Thread(target=_predict_until, args=(client, images, stop, codes))
        load.start()
        try:
            point_at("empty")  # nothing to load there: version 1 serves on
            time.sleep(1.0)
            assert sorted(loaded["digits"]) == [1]
            point_at("moved")
            wait_for(lambda: sorted(loaded.get("digits", {})) == [5])
        finally:
            stop.set()
            load.join()
        assert codes == []
        request = predict_request("digits", images)
        assert client.prediction.Predict(request, timeout=30).model_spec.version.value == 5


def test_a_slow_disk_never_stalls_requests(make_repo, test_images, monkeypatch):
    """Scanning the repository and parsing the model config run off the event loop: with each
    taking a second, requests are still answered at once."""
    import serving.plane.dataplane
    import serving.plane.repository

    def slowly(function):
        def slow(*args, **kwargs):
            time.sleep(1.0)
            return function(*args, **kwargs)

        return slow

    repo = make_repo([1])
    config = repo / "models.yaml"
    config.write_text("models:\n  digits:\n    base_path: mnist\n")
    with ServerThread(loopback_settings(repo, model_config_file=str(config))) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        monkeypatch.setattr(
            serving.plane.repository,
            "versions_on_disk",
            slowly(serving.plane.repository.versions_on_disk),
        )
        monkeypatch.setattr(
            serving.plane.dataplane,
            "read_model_config",
            slowly(serving.plane.dataplane.read_model_config),
        )
        staging = repo / ".models.yaml"
        staging.write_text("models:\n  digits:\n    base_path: mnist\n    version_labels: {a: 1}\n")
        staging.rename(config)
        time.sleep(0.3)  # a poll is reading the disk and the config
        slowest = 0.0
        for _ in range(20):
            start = time.perf_counter()
            client.predict("digits", test_images[0][:1])
            slowest = max(slowest, time.perf_counter() - start)
            time.sleep(0.05)
        assert slowest < 0.5
        wait_for(lambda: running.dataplane.repository.configs["digits"].labels == {"a": 1})
