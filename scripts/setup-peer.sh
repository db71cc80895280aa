#!/usr/bin/env bash
# Creates .venv-peer, the environment of the serving benchmark's peer (Triton Inference Server
# through PyTriton, bench/triton_peer.py) and of its load generator, Triton's perf_analyzer, or
# refreshes it when this script or bench/requirements-peer.txt changed. Only `zoo bench serve`
# uses it; the zoo itself never does.
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(cat bench/requirements-peer.txt "$0" | sha256sum | cut -d' ' -f1)
if [ -f .venv-peer/.zoo-setup ] && [ "$(cat .venv-peer/.zoo-setup)" = "$want" ]; then
  exit 0
fi

python=$(command -v python3.11 || command -v python3)
echo "Setting up .venv-peer (Triton through PyTriton, bench/requirements-peer.txt)..." >&2
"$python" -m venv .venv-peer
.venv-peer/bin/pip install --quiet --disable-pip-version-check -r bench/requirements-peer.txt
.venv-peer/bin/pip check
# perf_analyzer: the binary from tritonclient 2.51's wheel (later wheels do not ship it; the
# package itself would pin an older protobuf than TensorFlow's), and Debian's libb64 it links,
# both unpacked into .venv-peer without installing anything system-wide.
(
  cd "$(mktemp -d)"
  "$OLDPWD/.venv-peer/bin/pip" download --quiet --disable-pip-version-check --no-deps \
    tritonclient==2.51.0
  unzip -q -j tritonclient-2.51.0-*.whl 'tritonclient-2.51.0.data/data/bin/perf_analyzer' \
    -d "$OLDPWD/.venv-peer/bin"
  apt-get download --quiet libb64-0d >/dev/null
  dpkg-deb -x libb64-0d_*.deb unpacked
  cp unpacked/usr/lib/x86_64-linux-gnu/libb64.so.0d* "$OLDPWD/.venv-peer/lib/"
)
echo "$want" > .venv-peer/.zoo-setup
echo "Peer set-up done." >&2
