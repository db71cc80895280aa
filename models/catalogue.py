"""The registered architectures as ``zoo models`` lists them, read from ``catalogue.json`` beside
this file rather than built: building them takes Keras, seconds, for a table. The file is written
from the registry by ``python -m bench.readme_table``, and a test keeps the two in step."""

import fnmatch
import json
from pathlib import Path

CATALOGUE = Path(__file__).resolve().parent / "catalogue.json"


def architectures(pattern: str = "*") -> list[dict]:
    """The catalogue's rows (name, parameters with 10 classes, default input, suits, heads,
    description) of the architectures matching a shell-style ``pattern``, sorted by name."""
    rows = json.loads(CATALOGUE.read_text())
    return [row for row in rows if fnmatch.fnmatchcase(row["name"], pattern)]
