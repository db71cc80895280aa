"""Images as uint8 pixel arrays of a model's input shape: from PNG/JPEG bytes or files, and from
the tf.Example features that TensorFlow Serving's ``Classify`` carries. One decoder for the server
(``Classify``) and the client (``zoo predict``)."""

import io
import math

import numpy as np


class ImageError(ValueError):
    """Bytes or a feature that do not hold an image of the expected shape."""


MAX_IMAGE_PIXELS = 4096 * 4096
"""Largest image decoded, checked from its header. A PNG of one colour compresses thousands to one:
without a bound, a 17 KB request had the server decode 144 megapixels (PIL itself refuses only past
179 megapixels, and raised an error the server answered as internal)."""


FORMATS = ("PNG", "JPEG")  # what the protocols promise; PIL would also open GIF, BMP, TIFF...


def resize(image, width: int, height: int):
    """A PIL image at ``width`` x ``height`` (bicubic, as it is unless the size differs): the one
    resampling of images the server decodes and of image folders the zoo trains on."""
    from PIL import Image

    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.BICUBIC)


def decode_image(
    data: bytes,
    shape: tuple[int, int, int],
    what: str = "image",
    max_pixels: int | None = MAX_IMAGE_PIXELS,
    formats: tuple[str, ...] | None = FORMATS,
) -> np.ndarray:
    """PNG/JPEG bytes as uint8 ``shape``, converted to the model's channels (L or RGB) and
    resized to its height and width; ImageError for anything else or over ``max_pixels``
    (checked from the header, before any pixel is decoded). None for ``max_pixels`` and
    ``formats``: PIL's own limit and formats, for a client reading its user's own files."""
    from PIL import Image, UnidentifiedImageError

    height, width, channels = shape
    try:
        with Image.open(io.BytesIO(data), formats=formats) as image:
            if max_pixels is not None and image.width * image.height > max_pixels:
                raise ImageError(
                    f"{what}: {image.width}x{image.height} pixels, over the {max_pixels:,} decoded."
                )
            converted = resize(image.convert("L" if channels == 1 else "RGB"), width, height)
    except ImageError:
        raise
    except Image.DecompressionBombError as error:  # PIL's own check of the header
        raise ImageError(f"{what}: too many pixels to decode ({error}).") from None
    except UnidentifiedImageError:
        expected = "a PNG/JPEG" if formats == FORMATS else "an"
        raise ImageError(f"{what}: {len(data)} bytes are not {expected} image.") from None
    except (OSError, ValueError) as error:
        raise ImageError(f"{what}: {len(data)} bytes are not a PNG/JPEG image ({error}).") from None
    return np.asarray(converted, np.uint8).reshape(shape)


def image_from_bytes(data: bytes, shape: tuple[int, int, int], what: str = "image") -> np.ndarray:
    """Exactly H*W*C raw pixel bytes, or a PNG/JPEG, as uint8 ``shape``."""
    if len(data) == math.prod(shape):
        return np.frombuffer(data, np.uint8).reshape(shape)
    return decode_image(data, shape, f"{what} (not {math.prod(shape)} raw pixels)")


def input_examples(request_input) -> list:
    """The tf.Examples of a Classify request's ``Input``: an ``example_list`` as it is, an
    ``example_list_with_context`` with the context's features merged into each example, as
    TensorFlow Serving's input.proto says (where both name a feature, the example's own wins)."""
    kind = request_input.WhichOneof("kind")
    if kind is None:
        return []
    examples = list(getattr(request_input, kind).examples)
    if kind != "example_list_with_context":
        return examples
    context = request_input.example_list_with_context.context
    merged = []
    for example in examples:
        combined = type(context)()
        combined.CopyFrom(context)
        for name, feature in example.features.feature.items():
            combined.features.feature[name].CopyFrom(feature)
        merged.append(combined)
    return merged


def example_image(example, feature_name: str, shape: tuple[int, int, int]) -> np.ndarray:
    """The image in a tf.Example's feature: pixel values (int64_list or float_list, 0-255), raw
    pixel bytes, or an encoded PNG/JPEG (bytes_list)."""
    if feature_name not in example.features.feature:
        raise ImageError(
            f"Example lacks feature {feature_name!r}: expected pixel values or image bytes of "
            f"shape {list(shape)}."
        )
    feature = example.features.feature[feature_name]
    kind = feature.WhichOneof("kind")
    if kind == "bytes_list":
        data = feature.bytes_list.value[0] if feature.bytes_list.value else b""
        return image_from_bytes(data, shape, f"Feature {feature_name!r}")
    values = feature.float_list.value if kind == "float_list" else feature.int64_list.value
    if len(values) != math.prod(shape):
        raise ImageError(
            f"Feature {feature_name!r}: {len(values)} values, expected {math.prod(shape)} "
            f"(shape {list(shape)})."
        )
    pixels = np.asarray(values, np.float64)
    wrong = ~np.isfinite(pixels) | (pixels < 0) | (pixels > 255) | (pixels != np.round(pixels))
    if wrong.any():
        raise ImageError(
            f"Feature {feature_name!r}: value {pixels[wrong][0]:g} is not a pixel value; expected "
            "integers 0-255."
        )
    return pixels.astype(np.uint8).reshape(shape)
