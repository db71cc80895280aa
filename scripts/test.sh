#!/usr/bin/env bash
# The test suite: sets up .venv if needed, lints, checks the import contract (the layers in
# pyproject.toml), then runs pytest (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest "$@"
