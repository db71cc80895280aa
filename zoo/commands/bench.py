"""``zoo bench``: benchmarks measured side by side against a reference in one run."""

from zoo.commands.help import add_command, number_in

REQUIRES = ("bench", "training", "serving", "models")  # packages this command runs on

EXAMPLES = """
  zoo bench pipeline            # input pipeline vs the reference convnet's training speed
  zoo bench train               # keras-io recipe vs the zoo's configs, MNIST and Fashion-MNIST
  zoo bench train --quick       # 2 epochs each, one seed: a smoke run
  zoo bench train --data-dir ../shared/data   # where fashion_mnist.npz is
  zoo bench serve               # zoo serve vs Triton (peer), bare model, naive server, c=1-64
  scripts/setup-peer.sh         # once, before `zoo bench serve`: the peer's environment
"""


def add_parser(subparsers):
    """The command's entry in ``zoo --help``."""
    return add_command(
        subparsers, "bench", "Run a benchmark; results go to bench/results/.", EXAMPLES, run
    )


def add_arguments(parser) -> None:
    parser.add_argument("which", choices=["pipeline", "train", "serve"])
    parser.add_argument("--quick", action="store_true", help="train: 2 epochs and one seed")
    parser.add_argument(
        "--seeds", type=number_in(int, 1), default=3, help="train: seeds of the MNIST configs"
    )
    parser.add_argument(
        "--fashion-seeds",
        type=number_in(int, 1),
        default=2,
        help="train: seeds of the Fashion-MNIST config",
    )
    parser.add_argument(
        "--data-dir", help="train: folder with fashion_mnist.npz (default: $ZOO_DATA_DIR)"
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
        help="serve: turns per level against the peer",
    )


def run(args) -> int:
    from zoo.startup import start_tensorflow

    start_tensorflow()
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
    else:
        from bench import serve

        serve.run(max_requests=args.max_requests, max_seconds=args.max_seconds, rounds=args.rounds)
    return 0
