"""``zoo serve``: the gRPC prediction server (TF Serving API + Open Inference Protocol)."""

from zoo.commands.help import add_command, add_dataclass_flags, given_values

EXAMPLES = """
  zoo serve --model-repo model_repo/                      # every model, newest version, port 8500
  zoo serve --model-repo model_repo/ --port 9000 --metrics-port 9090
  zoo serve --model-config models.yaml                    # policies, labels, batching per model
  zoo serve --no-batching                                 # one model call per request
  zoo serve --tls-cert server.pem --tls-key server.key --tls-client-ca ca.pem   # mutual TLS
  ZOO_AUTH_TOKEN=secret zoo serve                         # require 'authorization: Bearer secret'
"""
# The token comes from ZOO_AUTH_TOKEN only: a secret on the command line shows in `ps`.
SERVER_SKIP = ("batching", "auth_token")
BATCHING_SKIP = ("enabled",)  # spelled --no-batching


def add_parser(subparsers) -> None:
    from serving.settings import BatchingOptions, ServerSettings

    parser = add_command(subparsers, "serve", "Serve a model repository over gRPC.", EXAMPLES, run)
    add_dataclass_flags(parser, ServerSettings, skip=SERVER_SKIP)
    group = parser.add_argument_group("dynamic batching (defaults of every model)")
    group.add_argument("--no-batching", action="store_true", help="one model call per request")
    add_dataclass_flags(group, BatchingOptions, skip=BATCHING_SKIP)


def settings_from_args(args):
    from dataclasses import fields

    from serving.settings import BatchingOptions, ServerSettings

    def names(cls, skip):
        return [f.name for f in fields(cls) if f.name not in skip]

    batching = BatchingOptions(
        enabled=not args.no_batching, **given_values(args, names(BatchingOptions, BATCHING_SKIP))
    )
    return ServerSettings(
        **given_values(args, names(ServerSettings, SERVER_SKIP)), batching=batching
    )


def run(args) -> int:
    import asyncio
    import logging

    from serving.server import serve
    from zoo.errors import ZooError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = settings_from_args(args)
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ZooError("TLS needs both --tls-cert and --tls-key.")
    asyncio.run(serve(settings))
    return 0
