"""The patch-whitening stem: fitted to data it decorrelates 2x2 patches, it is never trained, and
it saves and loads with the model."""

import keras
import numpy as np
import pytest

import models
from models.layers import PatchWhitening


def correlated_images(n=64, seed=0) -> np.ndarray:
    """Images whose neighbouring pixels and channels are strongly correlated, as photos' are."""
    rng = np.random.default_rng(seed)
    base = rng.random((n, 9, 9, 1)).repeat(2, axis=1).repeat(2, axis=2)[:, :16, :16]
    tint = np.array([1.0, 0.8, 0.5]) + 0.1 * rng.standard_normal((n, 1, 1, 3))
    return (base * tint + 0.02 * rng.standard_normal((n, 16, 16, 3))).astype("float32")


def test_adapted_filters_whiten_the_patches_of_their_data():
    images = correlated_images()
    layer = PatchWhitening(2, epsilon=1e-6)
    layer.build(images.shape)
    layer.adapt(images)
    outputs = keras.ops.convert_to_numpy(layer(images)).reshape(-1, 24)
    first, negated = outputs[:, :12], outputs[:, 12:]
    np.testing.assert_allclose(negated, -first, atol=1e-5)
    np.testing.assert_allclose(first.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(np.cov(first, rowvar=False), np.eye(12), atol=2e-2)


def test_epsilon_damps_the_smallest_directions_only():
    images = correlated_images()
    layer = PatchWhitening(2)  # epsilon 5e-4 of the mean eigenvalue
    layer.build(images.shape)
    layer.adapt(images)
    outputs = keras.ops.convert_to_numpy(layer(images)).reshape(-1, 24)[:, :12]
    variances = np.var(outputs, axis=0)
    assert variances[0] == pytest.approx(1, abs=1e-2)  # the largest direction: whitened
    assert variances[-1] < 0.97  # the noise directions: damped


def test_airnet_with_the_whitening_stem_trains_all_but_it_and_round_trips(tmp_path):
    model = models.create_model("airnet", stem="whitening", widths=(8, 8, 8), head="logits")
    stem = model.get_layer("whitening")
    assert not stem.trainable and stem.trainable_weights == []
    assert all("whitening" not in w.path for w in model.trainable_weights)
    stem.adapt(correlated_images(8, seed=1).repeat(2, axis=1).repeat(2, axis=2))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(
        loaded.get_layer("whitening").get_weights()[0], stem.get_weights()[0]
    )
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_a_stem_width_with_the_whitening_stem_is_refused():
    with pytest.raises(ValueError, match="stem_width is set by the data"):
        models.create_model("airnet", stem="whitening", stem_width=32)
    with pytest.raises(ValueError, match="stem must be 'conv' or 'whitening'"):
        models.create_model("airnet", stem="pca")
