"""``zoo serve``: the gRPC prediction server (TF Serving API + Open Inference Protocol)."""

from zoo.commands.help import add_command

EXAMPLES = """
  zoo serve --model-repo model_repo/                      # every model, newest version, port 8500
  zoo serve --model-repo model_repo/ --port 9000 --metrics-port 9090
  zoo serve --model-config models.yaml                    # policies, labels, batching per model
  zoo serve --tls-cert server.pem --tls-key server.key --tls-client-ca ca.pem   # mutual TLS
  ZOO_AUTH_TOKEN=secret zoo serve                         # require 'authorization: Bearer secret'
"""


def add_parser(subparsers) -> None:
    from serving.settings import BatchingOptions, ServerSettings

    defaults, batching = ServerSettings(auth_token=""), BatchingOptions()
    parser = add_command(subparsers, "serve", "Serve a model repository over gRPC.", EXAMPLES, run)
    parser.add_argument(
        "--model-repo", default=defaults.model_repo, help="repository root (default: %(default)s)"
    )
    parser.add_argument(
        "--model-config", default="", help="YAML file listing the models (docs/serving.md)"
    )
    parser.add_argument("--host", default=defaults.host, help="interface (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=defaults.port, help="gRPC port (default: %(default)s)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=defaults.metrics_port,
        help="Prometheus HTTP port, -1 to disable (default: %(default)s)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=defaults.poll_seconds,
        help="repository scan interval (default: %(default)s)",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=defaults.max_message_bytes,
        help="largest request (default: %(default)s)",
    )
    parser.add_argument(
        "--max-request-batch",
        type=int,
        default=defaults.max_request_batch,
        help="largest batch per request (default: %(default)s)",
    )
    parser.add_argument("--no-batching", action="store_true", help="one model call per request")
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=batching.max_batch_size,
        help="most examples per merged call (default: %(default)s)",
    )
    parser.add_argument(
        "--max-wait-us",
        type=int,
        default=batching.max_wait_us,
        help="wait for more requests, microseconds (default: %(default)s, greedy)",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=batching.max_queue,
        help="most queued requests per model (default: %(default)s)",
    )
    parser.add_argument("--tls-cert", default="", help="PEM server certificate")
    parser.add_argument("--tls-key", default="", help="PEM server key")
    parser.add_argument("--tls-client-ca", default="", help="PEM CA for client certificates (mTLS)")
    parser.add_argument("--grace-seconds", type=float, default=defaults.grace_seconds,
                        help="time in-flight requests get on SIGTERM (default: %(default)s)")  # fmt: skip


def settings_from_args(args):
    from serving.settings import BatchingOptions, ServerSettings

    return ServerSettings(
        model_repo=args.model_repo, model_config=args.model_config, host=args.host,
        port=args.port, metrics_port=args.metrics_port, poll_seconds=args.poll_seconds,
        max_message_bytes=args.max_message_bytes, max_request_batch=args.max_request_batch,
        batching=BatchingOptions(enabled=not args.no_batching, max_batch_size=args.max_batch_size,
                                 max_wait_us=args.max_wait_us, max_queue=args.max_queue),
        tls_cert=args.tls_cert, tls_key=args.tls_key, tls_client_ca=args.tls_client_ca,
        grace_seconds=args.grace_seconds,
    )  # fmt: skip


def run(args) -> int:
    import asyncio
    import logging

    from serving.server import serve
    from zoo.errors import ZooError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = settings_from_args(args)
    if (settings.tls_cert or settings.tls_key) and not (settings.tls_cert and settings.tls_key):
        raise ZooError("TLS needs both --tls-cert and --tls-key.")
    asyncio.run(serve(settings))
    return 0
