"""``python -m serving`` is ``zoo serve``."""

import sys

from zoo.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
