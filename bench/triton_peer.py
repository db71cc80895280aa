"""The serving benchmark's peer: Triton Inference Server (its C++ gRPC front end and dynamic
batcher) serving the same exported SavedModel through PyTriton, as a user picking Triton for a
TensorFlow model on a CPU would run it.

It runs in its own environment (``scripts/setup-peer.sh`` makes ``.venv-peer``: PyTriton pins
numpy < 2, which the zoo's environment does not take) and imports nothing of the zoo:

    .venv-peer/bin/python bench/triton_peer.py --model-dir repo/mnist/1 --port 8601

The model answers the Open Inference Protocol (KServe v2) on ``--port`` as ``mnist``: input
``images`` (uint8, [-1, 28, 28, 1]), output ``probabilities`` (float32, [-1, 10]), the names the
zoo's export uses, so one client measures both servers.
"""

import argparse
import os
import sys
import sysconfig


def python_library_first() -> None:
    """Re-executes with this interpreter's own libpython first on ``LD_LIBRARY_PATH``: Triton's
    Python backend stub otherwise loads the system's libpython (another build) and fails."""
    library_dir = sysconfig.get_config_var("LIBDIR") or ""
    paths = os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)
    if library_dir and paths[0] != library_dir:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([library_dir, *filter(None, paths)])
        os.execv(sys.executable, [sys.executable, *sys.argv])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, help="an exported version folder")
    parser.add_argument("--port", type=int, required=True, help="gRPC port (KServe v2)")
    parser.add_argument("--instances", type=int, default=1, help="model instances")
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument(
        "--max-queue-delay-us",
        type=int,
        default=0,
        help="Triton's dynamic batcher delay; 0, its default, did best here side by side",
    )
    args = parser.parse_args()
    python_library_first()

    import numpy as np
    import tensorflow as tf
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

    signature = tf.saved_model.load(args.model_dir).signatures["serving_default"]

    @batch
    def infer(images):
        return {"probabilities": signature(images=tf.constant(images))["probabilities"].numpy()}

    config = TritonConfig(
        grpc_address="127.0.0.1",
        grpc_port=args.port,
        allow_http=False,
        allow_metrics=False,
        log_verbose=0,
    )
    # PyTriton restricts Triton's model-config and statistics endpoints to a token of its own by
    # default; perf_analyzer, like any Triton client, reads both.
    security = TritonSecurityConfig(restricted_endpoints=[])
    with Triton(config=config, security_config=security) as triton:
        triton.bind(
            model_name="mnist",
            infer_func=[infer] * args.instances,
            inputs=[Tensor(name="images", dtype=np.uint8, shape=(28, 28, 1))],
            outputs=[Tensor(name="probabilities", dtype=np.float32, shape=(10,))],
            config=ModelConfig(
                max_batch_size=args.max_batch_size,
                batcher=DynamicBatcher(max_queue_delay_microseconds=args.max_queue_delay_us),
            ),
            strict=True,
        )
        print(f"triton peer on {args.port}, pid {os.getpid()}", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
