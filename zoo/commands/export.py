"""``zoo export``: a finished run, or a shipped checkpoint, as a SavedModel version in a
TensorFlow Serving repository, or as one ONNX or LiteRT file for other servers."""

from zoo.commands.help import add_command

REQUIRES = ("training", "models")  # packages this command runs on

EXAMPLES = """
  zoo export runs/mnist-mnist_fastnet-softmax/20261128-101500 --name mnist --repo model_repo/
  zoo export RUN_DIR --name mnist --version 7          # an explicit version number
  zoo export --pretrained resnet20:cifar10 --repo model_repo/   # shipped weights, no training
  zoo export --pretrained airnet:cifar10 --format onnx --output airnet.onnx   # Triton, ORT
  zoo export RUN_DIR --format litert-int8 --output mnist.tflite   # quantized for mobile
"""
FORMATS = ("savedmodel", "onnx", "litert", "litert-int8")


def add_parser(subparsers):
    """The command's entry in ``zoo --help``."""
    return add_command(
        subparsers, "export", "Export a run as model_repo/NAME/VERSION (SavedModel).", EXAMPLES, run
    )


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", nargs="?", help="a finished run directory")
    parser.add_argument(
        "--pretrained",
        metavar="MODEL:DATASET",
        help="export a checkpoint shipped with the zoo instead of a run (zoo models lists them)",
    )
    parser.add_argument(
        "--name",
        help="model name in the repository (default: the dataset, or the image folder's name)",
    )
    parser.add_argument("--repo", help="savedmodel: repository root (default: model_repo)")
    parser.add_argument("--version", type=int, help="savedmodel: version (default: next integer)")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="savedmodel",
        help="savedmodel (TF Serving layout, the default), onnx, litert, or litert-int8 "
        "(post-training int8 quantization)",
    )
    parser.add_argument("--output", help="onnx, litert: the file to write (default: NAME.onnx "
                        "or NAME.tflite)")  # fmt: skip
    parser.add_argument(
        "--data-dir", help="litert-int8: where the training images to calibrate on are"
    )


def run(args) -> int:
    from pathlib import Path

    from core.errors import ConfigError

    if args.run_dir and args.pretrained:
        raise ConfigError("Give a RUN_DIR or --pretrained MODEL:DATASET, not both.")
    if not args.run_dir and not args.pretrained:
        raise ConfigError("Give what to export: a RUN_DIR, or --pretrained MODEL:DATASET.")
    _check_format_options(args)
    from zoo.startup import start_tensorflow

    start_tensorflow()
    from training import export

    if args.pretrained:
        from models.pretrained import parse_key

        model, dataset = parse_key(args.pretrained)
        name = args.name or dataset
    else:
        from training.config import load_yaml, parse_config
        from training.run_dir import RunDir

        dataset = parse_config(load_yaml(RunDir.open(args.run_dir).config_path)).dataset
        name = args.name or Path(dataset).name  # an image folder's own name
    if args.format != "savedmodel":
        from training.portable import FORMATS as SUFFIXES
        from training.portable import export_loaded

        output = args.output or f"{name}{SUFFIXES[args.format]}"
        loaded = export.load_pretrained(model, dataset) if args.pretrained else (
            export.load_run(args.run_dir)
        )  # fmt: skip
        path = export_loaded(loaded, args.format, output, data_dir=args.data_dir)
    elif args.pretrained:
        path = export.export_pretrained(
            model, dataset, name=name, repo=args.repo or "model_repo", version=args.version
        )
    else:
        path = export.export_run(
            args.run_dir, name=name, repo=args.repo or "model_repo", version=args.version
        )
    print(f"Exported {path}")
    return 0


def _check_format_options(args) -> None:
    """Refuses options that would do nothing with the chosen format."""
    from core.errors import ConfigError

    if args.format == "savedmodel":
        unused = [f"--{flag.replace('_', '-')}" for flag in ("output", "data_dir")
                  if getattr(args, flag)]  # fmt: skip
        if unused:
            verb = "is" if len(unused) == 1 else "are"
            raise ConfigError(
                f"{', '.join(unused)} {verb} only for --format onnx, litert or litert-int8; a "
                "SavedModel goes into --repo."
            )
        return
    unused = [f"--{flag}" for flag in ("repo", "version") if getattr(args, flag) is not None]
    if args.data_dir and args.format != "litert-int8":
        unused.append("--data-dir")
    if unused:
        verb = "does" if len(unused) == 1 else "do"
        raise ConfigError(
            f"{', '.join(unused)} {verb} nothing with --format {args.format}: it writes one file "
            "(--output); --data-dir is for litert-int8's calibration images."
        )
