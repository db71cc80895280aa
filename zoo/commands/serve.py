"""``zoo serve``: the gRPC prediction server (TF Serving API + Open Inference Protocol)."""

from zoo.commands.help import add_command, add_settings_flags, given_values

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
    add_settings_flags(parser, ServerSettings, skip=SERVER_SKIP)
    group = parser.add_argument_group("dynamic batching (defaults of every model)")
    group.add_argument("--no-batching", action="store_true", help="one model call per request")
    add_settings_flags(group, BatchingOptions, skip=BATCHING_SKIP)


def settings_from_args(args):
    """The validated settings: flags given, then ``ZOO_`` environment variables, then defaults."""
    from serving.settings import BatchingOptions, ServerSettings, build_settings

    server = given_values(args, [n for n in ServerSettings.model_fields if n not in SERVER_SKIP])
    batching = given_values(
        args, [n for n in BatchingOptions.model_fields if n not in BATCHING_SKIP]
    )
    if args.no_batching:
        batching["enabled"] = False
    return build_settings(**server, batching=batching)


def run(args) -> int:
    import asyncio
    import logging

    from serving.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(settings_from_args(args)))
    return 0
