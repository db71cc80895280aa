"""Image-folder datasets: layout, decoding, order, the decode cache, catalog datasets from folders,
and one clear error for each kind of bad folder."""

import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from helpers import write_image_folder

from core.errors import ConfigError, DatasetError
from training import datasets
from training.config import build_config
from training.datasets import image_folder
from training.datasets.catalog import CIFAR10_CLASSES

TARBALL = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10_jpeg.tar.gz"


@pytest.fixture(autouse=True)
def _fresh_caches():
    datasets._folder.cache_clear()
    datasets._base_arrays.cache_clear()
    yield
    datasets._folder.cache_clear()
    datasets._base_arrays.cache_clear()


def test_folder_dataset_classes_shapes_labels_and_spread_order(tmp_path):
    root = write_image_folder(tmp_path / "pets")
    info = datasets.get_info(str(root))
    assert info.class_names == ("cat", "dog", "owl")
    assert info.input_shape == (8, 8, 3) and info.task == "multiclass"
    assert info.split_sizes == {"train": 36, "test": 12}
    images, labels = datasets.load_arrays(str(root), "train")
    assert images.dtype == np.uint8 and images.shape == (36, 8, 8, 3)
    # the mean pixel encodes the class the helper drew it for: labels follow folder names
    np.testing.assert_array_equal(np.round((images.mean(axis=(1, 2, 3)) - 50) / 60), labels)
    assert len(set(labels[:6].tolist())) > 1, "a prefix must spread over the classes"
    again, _ = datasets.load_arrays(str(root), "train", limit=5)
    np.testing.assert_array_equal(again, images[:5])


def test_grayscale_folder_stays_one_channel_and_a_colour_image_makes_all_rgb(tmp_path):
    gray = write_image_folder(tmp_path / "gray", mode="L")
    assert datasets.get_info(str(gray)).input_shape == (8, 8, 1)
    mixed = write_image_folder(tmp_path / "mixed", mode="L", suffix=".jpg")
    write_image_folder(mixed, classes=("cat",), counts={"train": 1}, mode="RGB", suffix=".png")
    images, _ = datasets.load_arrays(str(mixed), "train")
    assert images.shape[1:] == (8, 8, 3)


def test_sizes_differ_refused_without_image_size_and_resized_with_it(tmp_path):
    root = write_image_folder(tmp_path / "sizes")
    write_image_folder(root, classes=("dog",), counts={"test": 1}, size=(10, 6), suffix=".jpg")
    with pytest.raises(DatasetError, match=r"differ in size.*--image-size"):
        datasets.get_info(str(root))
    info = datasets.get_info(str(root), image_size=(5, 7))
    assert info.input_shape == (5, 7, 3)
    images, _ = datasets.load_arrays(str(root), "test", image_size=(5, 7))
    assert images.shape == (13, 5, 7, 3)


def test_second_load_reads_the_cache_and_a_changed_file_decodes_again(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "pets")
    first = image_folder.load(root)
    cached = list(image_folder.cache_dir().glob("pets-*.npz"))
    assert len(cached) == 1

    def no_decoding(path, size):
        raise AssertionError(f"decoded {path} again")

    with monkeypatch.context() as patch:
        patch.setattr(image_folder, "_decode", no_decoding)
        second = image_folder.load(root)
    np.testing.assert_array_equal(first.splits["train"][0], second.splits["train"][0])

    target = root / "train" / "cat" / "000.png"
    os.utime(target, ns=(0, target.stat().st_mtime_ns + 10**9))
    decoded = []
    original = image_folder._decode
    monkeypatch.setattr(image_folder, "_decode", lambda p, s: decoded.append(p) or original(p, s))
    image_folder.load(root)
    assert len(decoded) == 48, "a touched file invalidates the cache"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: (root / "train" / "owl").mkdir(), r"train/owl holds no image"),
        (lambda root: (root / "train" / "cat" / "notes.txt").write_text("hi"),
         r"cat/notes.txt: not a JPEG or PNG"),
        (lambda root: (root / "train" / "dog" / "000.png").write_bytes(
            (root / "train" / "dog" / "000.png").read_bytes()[:60]), r"dog/000.png: cannot be decoded"),
        (lambda root: (root / "test" / "x.png").write_bytes((root / "test" / "cat" / "000.png")
                                                            .read_bytes()),
         r"test/x.png: files directly in test/"),
        (lambda root: os.rename(root / "test" / "dog", root / "test" / "wolf"),
         r"test/ lacks \['dog'\], has \['wolf'\]"),
        (lambda root: os.rename(root / "test", root / "tests"), r"has no test/ folder"),
    ],
    ids=["empty-class", "not-an-image", "truncated", "loose-file", "class-mismatch", "no-test"],
)  # fmt: skip
def test_bad_folders_get_one_error_naming_the_file(tmp_path, damage, message):
    root = write_image_folder(tmp_path / "pets", classes=("cat", "dog"))
    damage(root)
    with pytest.raises(DatasetError, match=message):
        image_folder.load(root)
    assert not list(image_folder.cache_dir().glob("*")), "nothing half-written"


def test_truncated_jpeg_is_refused_naming_it(tmp_path):
    root = write_image_folder(tmp_path / "pets", suffix=".jpg", size=(32, 32))
    victim = root / "train" / "owl" / "003.jpg"
    victim.write_bytes(victim.read_bytes()[:-200])
    with pytest.raises(DatasetError, match=r"owl/003.jpg: cannot be decoded"):
        image_folder.load(root)


def test_one_class_is_refused(tmp_path):
    root = write_image_folder(tmp_path / "one", classes=("cat",))
    with pytest.raises(DatasetError, match=r"at least two"):
        image_folder.load(root)


def test_other_image_formats_are_refused(tmp_path):
    from PIL import Image

    root = write_image_folder(tmp_path / "pets", classes=("cat", "dog"))
    Image.new("RGB", (8, 8)).save(root / "train" / "cat" / "odd.gif")
    with pytest.raises(
        DatasetError, match=r"odd.gif: a GIF image; image folders hold JPEG and PNG"
    ):
        image_folder.load(root)


def test_validation_folder_is_a_split_of_its_own(tmp_path):
    root = write_image_folder(tmp_path / "pets", counts={"train": 6, "validation": 2, "test": 3})
    assert datasets.get_info(str(root)).split_sizes == {"train": 18, "validation": 6, "test": 9}
    with pytest.raises(ConfigError, match="validation/ folder"):
        build_config({"dataset": str(root), "validation_split": 0.1})


def test_data_dir_without_the_dataset_is_an_error_not_a_fallback(tmp_path):
    root = write_image_folder(tmp_path / "myimages")
    with pytest.raises(DatasetError, match=r"does not hold 'mnist'(.|\n)*--dataset .*myimages"):
        datasets.load_arrays("mnist", "train", data_dir=root)


def test_config_checks_image_size_data_dir_and_names_runs_after_the_folder(tmp_path):
    root = write_image_folder(tmp_path / "pets", size=(6, 6))
    config = build_config({"dataset": str(root), "image_size": 4})
    assert config.image_hw == (4, 4) and config.run_name == "pets-mnist_cnn-softmax"
    assert build_config({"dataset": str(root), "image_size": [3, 5]}).image_size == "3x5"
    with pytest.raises(ConfigError, match=r"image_size resizes .* Received: image_size='32x32'"):
        build_config({"dataset": "mnist", "image_size": "32x32"})
    with pytest.raises(ConfigError, match=r"data_dir names .* Received: data_dir="):
        build_config({"dataset": str(root), "data_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"image_size=.0x3.*HxW"):
        build_config({"dataset": str(root), "image_size": "0x3"})
    with pytest.raises(DatasetError, match=r"Unknown dataset 'myimages'.*path of a folder"):
        build_config({"dataset": "myimages"})
    with pytest.raises(DatasetError, match=r"does not exist"):
        build_config({"dataset": str(tmp_path / "missing")})


def test_cifar10_from_an_image_folder_in_the_data_dir_maps_labels_by_name(tmp_path):
    classes = ("truck", "airplane", "cat")  # a subset, in no particular order
    write_image_folder(tmp_path / "cifar10", classes=classes, size=(32, 32), suffix=".jpg")
    images, labels = datasets.load_arrays("cifar10", "train", data_dir=tmp_path)
    assert images.shape == (36, 32, 32, 3)
    # the helper's brightness gives each image's position in ``classes``
    drawn_as = np.round((images.mean(axis=(1, 2, 3)) - 50) / 60).astype(int)
    names = np.array(classes)[drawn_as]
    np.testing.assert_array_equal(np.array(CIFAR10_CLASSES)[labels], names)


def test_catalog_folder_with_unknown_classes_is_refused(tmp_path):
    write_image_folder(tmp_path / "cifar10", classes=("cat", "unicorn"), size=(32, 32))
    with pytest.raises(DatasetError, match=r"\['unicorn'\] that cifar10 does not have"):
        datasets.load_arrays("cifar10", "train", data_dir=tmp_path)


@pytest.mark.skipif(not TARBALL.exists(), reason="needs ../shared/data/cifar10_jpeg.tar.gz")
def test_a_sample_of_the_cifar10_jpeg_copy_loads_as_cifar10(tmp_path):
    per_class = {"train": 20, "test": 5}
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(TARBALL) as tar:
        for member in tar:
            parts = Path(member.name).parts[-3:]
            if not member.isfile() or len(parts) < 3 or parts[0] not in per_class:
                continue
            key = (parts[0], parts[1])
            if taken.get(key, 0) >= per_class[parts[0]]:
                continue
            taken[key] = taken.get(key, 0) + 1
            target = tmp_path / "cifar10" / Path(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
            if len(taken) == 20 and all(taken[k] >= per_class[k[0]] for k in taken):
                break
    x_train, y_train = datasets.load_arrays("cifar10", "train", data_dir=tmp_path)
    x_test, y_test = datasets.load_arrays("cifar10", "test", data_dir=tmp_path)
    assert x_train.shape == (200, 32, 32, 3) and x_test.shape == (50, 32, 32, 3)
    assert np.bincount(y_train).tolist() == [20] * 10 and np.bincount(y_test).tolist() == [5] * 10
    assert 60 < x_train.mean() < 180, "real photographs, not blank tiles"


def test_zoo_train_and_export_an_image_folder_carry_its_class_names(tmp_path, monkeypatch):
    from core.artifact import read_metadata
    from zoo import cli

    monkeypatch.chdir(tmp_path)
    write_image_folder(tmp_path / "pets", counts={"train": 10, "test": 4}, size=(12, 12))
    argv = ["train", "--dataset", "pets", "--model", "mlp", "--epochs", "1", "--quiet",
            "--validation-split", "0.2", "--image-size", "10x10", "--runs-root", "runs"]  # fmt: skip
    assert cli.main(argv) == 0
    (run,) = (tmp_path / "runs" / "pets-mlp-softmax").iterdir()
    assert cli.main(["export", str(run), "--repo", "repo"]) == 0
    metadata = read_metadata(tmp_path / "repo" / "pets" / "1")
    assert metadata.class_names == ["cat", "dog", "owl"]
    assert metadata.input.shape == [10, 10, 3]
    assert metadata.calibration is not None, "calibrated on the held-out split"
