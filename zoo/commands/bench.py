"""``zoo bench``: benchmarks measured side by side against a reference in one run."""

from zoo.commands.help import add_command, number_in

REQUIRES = ("bench", "training", "serving", "models")  # packages this command runs on

EXAMPLES = """
  zoo bench pipeline            # input pipeline vs the reference convnet's training speed
  zoo bench train               # keras-io recipe vs the zoo's configs, MNIST and Fashion-MNIST
  zoo bench train --quick       # 2 epochs each, one seed: a smoke run
  zoo bench train --data-dir ../shared/data   # where fashion_mnist.npz is
  zoo bench cifar --data-dir DIR          # CIFAR-10 quick recipe (3 seeds) vs Keras' ResNet-20
  zoo bench cifar --data-dir DIR --full   # and the full recipe (an hour more)
  zoo bench cards RUN_DIR ... --data-dir DIR   # runs -> models/pretrained/ weights and cards
  zoo bench serve               # zoo serve: bare model, naive server, then Triton (peer)
  zoo bench serve --peer-only   # zoo serve vs Triton, both driven by perf_analyzer
  zoo bench serve --peer-only --workers 2   # 2 zoo workers vs 2 Triton instances
  scripts/setup-peer.sh         # once, before `zoo bench serve`: Triton and perf_analyzer
"""


def add_parser(subparsers):
    """The command's entry in ``zoo --help``."""
    return add_command(
        subparsers, "bench", "Run a benchmark; results go to bench/results/.", EXAMPLES, run
    )


def add_arguments(parser) -> None:
    parser.add_argument("which", choices=["pipeline", "train", "cifar", "cards", "serve"])
    parser.add_argument("runs", nargs="*", metavar="RUN_DIR", help="cards: finished runs")
    parser.add_argument("--quick", action="store_true", help="train: 2 epochs and one seed")
    parser.add_argument(
        "--seeds", type=number_in(int, 1), default=3,
        help="train: seeds of the MNIST configs; cifar: of the quick recipe",
    )  # fmt: skip
    parser.add_argument("--full", action="store_true", help="cifar: the full recipe too")
    parser.add_argument(
        "--fashion-seeds",
        type=number_in(int, 1),
        default=2,
        help="train: seeds of the Fashion-MNIST config",
    )
    parser.add_argument(
        "--data-dir",
        help="train: folder with fashion_mnist.npz; cifar, cards: with cifar10/ "
        "(the JPEG copy extracted) (default: $ZOO_DATA_DIR)",
    )
    parser.add_argument(
        "--max-requests", type=number_in(int, 1), default=3000, help="serve: per concurrency level"
    )
    parser.add_argument(
        "--max-seconds",
        type=number_in(float, 0, open_interval=True),
        default=10.0,
        help="serve: per concurrency level",
    )
    parser.add_argument(
        "--rounds",
        type=number_in(int, 1),
        default=3,
        help="serve: turns per level of the side-by-side comparisons",
    )
    parser.add_argument(
        "--peer-only",
        action="store_true",
        help="serve: only the comparison with Triton through perf_analyzer",
    )
    parser.add_argument(
        "--workers",
        type=number_in(int, 1),
        default=1,
        help="serve: zoo workers and Triton instances in the comparison with Triton",
    )


def run(args) -> int:
    from core.errors import ConfigError
    from zoo.startup import start_tensorflow

    start_tensorflow()
    if args.runs and args.which != "cards":
        raise ConfigError(f"RUN_DIR arguments are for zoo bench cards, not {args.which}.")
    for option, given in (("--peer-only", args.peer_only), ("--workers", args.workers != 1)):
        if given and args.which != "serve":
            raise ConfigError(f"{option} is for zoo bench serve, not {args.which}.")
    if args.which == "pipeline":
        from bench import pipeline

        pipeline.run()
    elif args.which == "train":
        from bench import train

        train.run(
            seeds=1 if args.quick else args.seeds,
            fashion_seeds=1 if args.quick else args.fashion_seeds,
            quick=args.quick,
            data_dir=args.data_dir,
        )
    elif args.which == "cifar":
        import os

        from bench import cifar

        data_dir = args.data_dir or os.environ.get("ZOO_DATA_DIR")
        if not data_dir:
            raise ConfigError("zoo bench cifar needs --data-dir DIR with cifar10/ in it.")
        cifar.run(data_dir=data_dir, seeds=args.seeds, full=args.full)
    elif args.which == "cards":
        from bench import model_cards

        if not args.runs:
            raise ConfigError("zoo bench cards needs the finished runs: RUN_DIR [RUN_DIR ...]")
        model_cards.run(args.runs, data_dir=args.data_dir or "")
    elif args.peer_only:
        from bench import serve_peer

        serve_peer.run(rounds=args.rounds, workers=args.workers)
    else:
        from bench import serve

        serve.run(
            max_requests=args.max_requests,
            max_seconds=args.max_seconds,
            rounds=args.rounds,
            workers=args.workers,
        )
    return 0
