"""``zoo predict``: classify image files with a running server and print the top classes."""

from zoo.commands.help import add_command, number_in

REQUIRES = ("serving",)  # packages this command runs on
MAX_IMAGE_FILE_BYTES = 64 << 20

EXAMPLES = """
  zoo predict --server localhost:8500 --model mnist digit.png
  zoo predict --model mnist --top-k 3 a.png b.png c.png
  zoo predict --model digits --threshold 0.3 canvas.png     # multilabel: labels over a threshold
  zoo predict --model mnist --dataset mnist --limit 2000    # accuracy on real test images
  zoo predict --model mnist --dataset mnist --wait 60       # wait for a starting server
"""


def add_parser(subparsers):
    """The command's entry in ``zoo --help``."""
    return add_command(
        subparsers, "predict", "Classify images with a running server.", EXAMPLES, run
    )


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="PNG or JPEG files")
    parser.add_argument("--dataset", help="query with this dataset's test split and print accuracy")
    parser.add_argument(
        "--limit", type=number_in(int, 1), default=10000, help="test images with --dataset"
    )
    parser.add_argument(
        "--wait", type=number_in(float, 0), default=0, help="seconds to wait for the server"
    )
    parser.add_argument(
        "--server", default="localhost:8500", help="host:port (default: %(default)s)"
    )
    parser.add_argument("--model", required=True, help="model name in the repository")
    parser.add_argument("--version", type=number_in(int, 0), help="model version (default: newest)")
    parser.add_argument(
        "--top-k", type=number_in(int, 1), default=5, help="classes to print (multiclass)"
    )
    parser.add_argument(
        "--threshold",
        type=number_in(float, 0, 1, open_interval=True),
        help="multilabel threshold (default: the model's)",
    )
    parser.add_argument("--token", default="", help="bearer token (or set ZOO_AUTH_TOKEN)")
    parser.add_argument("--ca", default="", help="PEM CA to verify a TLS server")
    parser.add_argument("--cert", default="", help="PEM client certificate (mutual TLS)")
    parser.add_argument("--key", default="", help="PEM private key of --cert")


def load_image(path: str, shape: tuple[int, int, int]):
    """An image file as uint8 [H, W, C], converted to the model's channels and size."""
    from pathlib import Path

    from core.errors import ZooError
    from core.images import ImageError, decode_image

    try:
        size = Path(path).stat().st_size
        if size > MAX_IMAGE_FILE_BYTES:
            raise ZooError(
                f"Image {path!r} is {size:,} bytes, over the {MAX_IMAGE_FILE_BYTES:,} that "
                "zoo predict reads; give a PNG or JPEG image file."
            )
        # The user's own files: PIL's own bound on pixels and its formats, not the server's (a
        # phone photo may pass 16 MP).
        data = Path(path).read_bytes()
        return decode_image(data, shape, f"Image {path!r}", max_pixels=None, formats=None)
    except OSError as error:
        raise ZooError(f"Cannot read image {path!r}: {error.strerror}.") from None
    except ImageError as error:
        raise ZooError(str(error)) from None


def run(args) -> int:
    import os
    from pathlib import Path

    import grpc
    import numpy as np

    from core.errors import ZooError
    from core.outputs import (
        DEFAULT_THRESHOLD,
        MULTILABEL,
        class_names_or_indices,
        labels_present,
        ranked,
    )
    from serving.client import PredictionClient

    if not args.images and not args.dataset:
        raise ZooError("Give image files, or --dataset NAME to evaluate on its test split.")
    if bool(args.cert) != bool(args.key):
        raise ZooError("Mutual TLS needs both --cert and --key.")
    if args.cert and not args.ca:
        raise ZooError("--cert and --key (mutual TLS) need --ca, the CA of the server.")
    pem = {}
    for flag in ("ca", "cert", "key"):
        path = getattr(args, flag)
        if path:
            try:
                pem[flag] = Path(path).read_bytes()
            except OSError as error:
                raise ZooError(f"--{flag} {path!r}: {error.strerror}.") from None
    client = PredictionClient(
        args.server,
        root_certificates=pem.get("ca"),
        client_certificate=(pem["key"], pem["cert"]) if "cert" in pem else None,
        token=args.token or os.environ.get("ZOO_AUTH_TOKEN", ""),
    )
    if args.wait:
        wait_until_ready(client.channel, args.server, args.wait)
    if args.dataset:
        return evaluate(client, args)
    try:
        signatures, metadata = client.metadata(args.model)
        dims = signatures["serving_default"].inputs["images"].tensor_shape.dim
        shape = tuple(d.size for d in dims[1:])
        images = np.stack([load_image(path, shape) for path in args.images])
        outputs = client.predict(args.model, images, version=args.version)
    except grpc.RpcError as error:
        raise ZooError(f"{args.server}: {error.code().name}: {error.details()}") from None
    probabilities = outputs["probabilities"]
    names = class_names_or_indices(metadata and metadata.class_names, probabilities.shape[1])
    multilabel = metadata is not None and metadata.task == MULTILABEL
    threshold = args.threshold if args.threshold is not None else (
        metadata.threshold if metadata else DEFAULT_THRESHOLD
    )  # fmt: skip
    for path, row in zip(args.images, probabilities, strict=True):
        order = ranked(row)
        if multilabel:
            chosen = [i for i in order if labels_present(row[i], threshold)]
            text = (
                ", ".join(f"{names[i]} ({row[i]:.3f})" for i in chosen) or f"none over {threshold}"
            )
        else:
            text = ", ".join(f"{names[i]} ({row[i]:.3f})" for i in order[: args.top_k])
        print(f"{path}: {text}")
    return 0


def wait_until_ready(channel, server: str, seconds: float) -> None:
    import grpc

    from core.errors import ZooError

    try:
        grpc.channel_ready_future(channel).result(timeout=seconds)
    except grpc.FutureTimeoutError:
        raise ZooError(f"No server answered at {server} within {seconds:g} s.") from None


def evaluate(client, args) -> int:
    """Sends a dataset's test images in requests of 100 and prints the accuracy they got back."""
    import time

    import grpc
    import numpy as np

    from core.errors import ZooError

    try:
        from training import datasets
    except ModuleNotFoundError:
        raise ZooError(
            "--dataset needs the training package, which this installation lacks "
            "(the server's container has none); query with image files."
        ) from None

    images, labels = datasets.load_arrays(args.dataset, "test", limit=args.limit)
    start = time.perf_counter()
    predicted = []
    try:
        for offset in range(0, len(images), 100):
            outputs = client.predict(
                args.model, images[offset : offset + 100], version=args.version
            )
            predicted.append(outputs["classes"])
    except grpc.RpcError as error:
        raise ZooError(f"{args.server}: {error.code().name}: {error.details()}") from None
    seconds = time.perf_counter() - start
    predicted = np.concatenate(predicted)
    if predicted.ndim == 1:
        score = float((predicted == labels).mean())
        print(
            f"{args.model} on {len(images)} {args.dataset} test images via {args.server}: "
            f"accuracy {score:.4f} ({len(images) / seconds:,.0f} images/s)"
        )
    else:
        score = float((predicted == labels).all(axis=1).mean())
        print(f"{args.model} on {len(images)} {args.dataset} test images: exact match {score:.4f}")
    return 0
