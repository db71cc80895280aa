#!/usr/bin/env bash
# Creates .venv with the pinned package set, or refreshes it when requirements*.txt or
# pyproject.toml changed since it was built. Idempotent: an up-to-date .venv costs a second.
set -euo pipefail
cd "$(dirname "$0")/.."

serving_only=${ZOO_SETUP_SERVING:-0}  # 1: only what zoo serve runs on (the server's image)
with_jax=${ZOO_SETUP_JAX:-1}  # 0: leave JAX out (only the GPU bench and its tests train on it)
requirements=requirements.txt
if [ "$serving_only" = 1 ]; then
  requirements=requirements-serving.txt
  with_jax=0
fi
want=$( (cat requirements.txt requirements-serving.txt requirements-jax.txt pyproject.toml
  echo "jax=$with_jax serving=$serving_only") | sha256sum | cut -d' ' -f1)
if [ -f .venv/.zoo-setup ] && [ "$(cat .venv/.zoo-setup)" = "$want" ] \
    && .venv/bin/python -c "import zoo" 2>/dev/null; then
  exit 0
fi

python=$(command -v python3.11 || command -v python3)
echo "Setting up .venv with $($python --version) (pinned set in $requirements)..." >&2
"$python" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/pip install --quiet --disable-pip-version-check -r "$requirements"
.venv/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
.venv/bin/pip check
# Apart, so that TensorFlow never sees it (requirements-jax.txt says why).
if [ "$with_jax" != 0 ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps --upgrade \
    --target .venv/jax-site -r requirements-jax.txt
fi
echo "$want" > .venv/.zoo-setup
echo "Set-up done." >&2
