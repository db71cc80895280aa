"""``zoo serve``: the gRPC prediction server (TF Serving API + Open Inference Protocol)."""

from zoo.commands.help import add_command, add_settings_flags, given_values

REQUIRES = ("serving",)  # packages this command runs on

EXAMPLES = """
  zoo serve --model-repo model_repo/                      # every model, newest version, port 8500
  zoo serve --model-repo model_repo/ --port 9000 --metrics-port 9090
  zoo serve --model-config models.yaml                    # policies, labels, batching per model
  zoo serve --model-config models.config --batching-parameters batching.config   # TF Serving's
  zoo serve --workers 4                                   # 4 processes sharing the ports
  zoo serve --no-batching                                 # one model call per request
  zoo serve --tls-cert server.pem --tls-key server.key --tls-client-ca ca.pem   # mutual TLS
  ZOO_AUTH_TOKEN=secret zoo serve                         # require 'authorization: Bearer secret'
  zoo serve --model-control explicit                      # clients may load and unload models
  OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 zoo serve --tracing   # OpenTelemetry spans
"""
# The token comes from ZOO_AUTH_TOKEN only: a secret on the command line shows in `ps`.
SERVER_SKIP = ("batching", "auth_token")
BATCHING_SKIP = ("enabled",)  # spelled --no-batching


def add_parser(subparsers):
    """The command's entry in ``zoo --help``."""
    return add_command(subparsers, "serve", "Serve a model repository over gRPC.", EXAMPLES, run)


def add_arguments(parser) -> None:
    from serving.settings import BatchingOptions, ServerSettings

    add_settings_flags(parser, ServerSettings, skip=SERVER_SKIP)
    group = parser.add_argument_group("dynamic batching (defaults of every model)")
    group.add_argument("--no-batching", action="store_true", help="one model call per request")
    group.add_argument(
        "--batching-parameters",
        metavar="FILE",
        help="TensorFlow Serving's --batching_parameters_file (text format); flags win over it",
    )
    add_settings_flags(group, BatchingOptions, skip=BATCHING_SKIP)


def settings_from_args(args):
    """The validated settings: flags given, then ``ZOO_`` environment variables, then defaults."""
    from serving.settings import BatchingOptions, ServerSettings, build_settings

    server = given_values(args, [n for n in ServerSettings.model_fields if n not in SERVER_SKIP])
    batching = given_values(
        args, [n for n in BatchingOptions.model_fields if n not in BATCHING_SKIP]
    )
    if args.batching_parameters:
        batching = {**batching_parameters(args.batching_parameters), **batching}
    if args.no_batching:
        batching["enabled"] = False
    return build_settings(**server, batching=batching)


def batching_parameters(path: str) -> dict:
    """The batching options of a TensorFlow Serving batching parameters file; each field that
    does nothing here is logged."""
    import logging
    from pathlib import Path

    from core.errors import ConfigError
    from serving.plane.tfserving_config import batching_from_text_proto

    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"Cannot read --batching-parameters {path!r}: {error}") from None
    options, notes = batching_from_text_proto(text, path)
    for note in notes:
        logging.getLogger("zoo.serving").warning("%s: %s", path, note)
    return options


def skip_tensorflows_keras_import() -> None:
    """Keeps TensorFlow from importing Keras into the server process.

    TensorFlow 2.21 imports ``keras.src.optimizers`` (about 500 modules) when it loads, only to
    register Keras optimizers for SavedModels that hold them; exported zoo models hold none, and
    the server never touches ``tf.keras``. With ``TF_USE_LEGACY_KERAS=1`` and no ``tf_keras``
    installed, TensorFlow skips that import: 0.8 s and about 46 MB less at start
    (bench/results/serve_start.json). Only for a process that has not loaded TensorFlow yet.
    """
    import importlib.util
    import os
    import sys

    if "tensorflow" not in sys.modules and importlib.util.find_spec("tf_keras") is None:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def run(args) -> int:
    import logging

    skip_tensorflows_keras_import()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = settings_from_args(args)
    if settings.tracing:
        from serving.telemetry.tracing import configured_exporter

        configured_exporter()  # a bad OTEL_* setting is refused before any worker starts
    if settings.worker_count > 1:
        from serving.process.workers import run_workers

        return run_workers(settings)
    from zoo.startup import start_tensorflow

    start_tensorflow()
    from serving.process import event_loop
    from serving.process.server import serve

    event_loop.run(serve(settings), settings.loop)
    return 0
