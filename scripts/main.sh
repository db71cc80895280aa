#!/usr/bin/env bash
# The main job: sets up .venv if needed, then runs the end-to-end demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/zoo datasets "$@"
