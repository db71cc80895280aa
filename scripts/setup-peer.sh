#!/usr/bin/env bash
# Creates .venv-peer, the environment of the serving benchmark's peer (Triton Inference Server
# through PyTriton, bench/triton_peer.py), or refreshes it when bench/requirements-peer.txt
# changed. Only `zoo bench serve` uses it; the zoo itself never does.
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(sha256sum bench/requirements-peer.txt | cut -d' ' -f1)
if [ -f .venv-peer/.zoo-setup ] && [ "$(cat .venv-peer/.zoo-setup)" = "$want" ]; then
  exit 0
fi

python=$(command -v python3.11 || command -v python3)
echo "Setting up .venv-peer (Triton through PyTriton, bench/requirements-peer.txt)..." >&2
"$python" -m venv .venv-peer
.venv-peer/bin/pip install --quiet --disable-pip-version-check -r bench/requirements-peer.txt
.venv-peer/bin/pip check
echo "$want" > .venv-peer/.zoo-setup
echo "Peer set-up done." >&2
