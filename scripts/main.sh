#!/usr/bin/env bash
# The main job: set up .venv if needed; train an MNIST model (>= 99 % test accuracy in a few
# minutes on 2 CPU cores); export it to model_repo/; serve it; query the server with the 10,000
# MNIST test images and print the accuracy it answered with; say where the TensorBoard logs are.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
zoo=.venv/bin/zoo
port=${ZOO_PORT:-8500}

$zoo train --config configs/mnist_fastnet.yaml --name main "$@"
run_dir=$(ls -1d runs/main/*/ | sort | tail -n 1)
$zoo export "$run_dir" --name mnist --repo model_repo

$zoo serve --model-repo model_repo --port "$port" --metrics-port -1 2> runs/main/serve.log &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
$zoo predict --server "localhost:$port" --model mnist --dataset mnist --wait 120

echo
echo "Server log: runs/main/serve.log"
echo "TensorBoard: .venv/bin/tensorboard --logdir runs/   (then open http://localhost:6006)"
