"""What tracing costs the server: ``zoo serve`` with tracing off, against another checkout (the
code before tracing existed, say) and against itself with ``--tracing`` on, exporting every
request's spans, or one trace in a hundred, over OTLP to a receiver in this process. The servers
run at once and take turns at each concurrency (``bench.serve.measure_side_by_side``); medians
over the rounds.

    python -m bench.tracing --against /tmp/before-checkout --rounds 3

Target (issue 32): tracing off costs nothing measurable, that is QPS and server CPU per request
within the spread of the rounds of the checkout before.
"""

import argparse
import statistics
import tempfile
from concurrent import futures
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from bench import servers as launch
from bench.report import describe_checkout, write_result
from bench.serve import CONCURRENCY, measure_side_by_side
from bench.servers import prepare_model
from training import datasets


class _Discard(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP receiver that counts the spans it is sent."""

    def __init__(self):
        self.spans = 0

    def Export(self, request, context):
        self.spans += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        return trace_service_pb2.ExportTraceServiceResponse()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout to take turns with")
    parser.add_argument("--rounds", type=int, default=3, help="turns per concurrency level")
    parser.add_argument("--seconds", type=float, default=8.0, help="load per turn")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0:
        parser.error(f"--rounds >= 1 and --seconds > 0. Received: {args.rounds}, {args.seconds}")
    if args.against is not None and not (args.against / "serving").is_dir():
        parser.error(f"--against must be a checkout of this project. Received: {args.against}")
    receiver, discard = grpc.server(futures.ThreadPoolExecutor(1)), _Discard()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(discard, receiver)
    otlp_port = receiver.add_insecure_port("127.0.0.1:0")
    receiver.start()
    on = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
          "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}  # fmt: skip
    images, _ = datasets.load_arrays("mnist", "test", limit=64)
    limits = {"max_requests": 100_000, "max_seconds": args.seconds}
    with tempfile.TemporaryDirectory() as folder:
        _, repo = prepare_model(Path(folder))
        servers = [launch.zoo_server("tracing off", repo, protocol="v2", workers=1)]
        servers.append(launch.zoo_server("tracing on", repo, protocol="v2", workers=1,
                                      extra=["--tracing"], env=on))  # fmt: skip
        sampled = {**on, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                   "OTEL_TRACES_SAMPLER_ARG": "0.01"}  # fmt: skip
        servers.append(launch.zoo_server("tracing 1 %", repo, protocol="v2", workers=1,
                                      extra=["--tracing"], env=sampled))  # fmt: skip
        if args.against:
            servers.append(launch.zoo_server("before", repo, protocol="v2", workers=1,
                                          root=args.against))  # fmt: skip
        measured, _ = measure_side_by_side(servers, images, limits, args.rounds)
    receiver.stop(0)
    off = measured["tracing off"]
    result = {
        "against_checkout": describe_checkout(args.against) if args.against else None,
        "servers": measured,
        "spans_received": discard.spans,
        "ratios": {
            name: {
                c: {
                    "qps": measured[name][c]["qps"] / off[c]["qps"],
                    "cpu_per_request": measured[name][c]["server_cpu_s_per_1000"]
                    / off[c]["server_cpu_s_per_1000"],
                }
                for c in off
            }
            for name in measured
            if name != "tracing off"
        },
    }
    path = write_result("tracing", result)
    for name, per_level in result["ratios"].items():
        qps = statistics.median(v["qps"] for v in per_level.values())
        print(f"{name} / tracing off: QPS x{qps:.3f} (median over c={list(CONCURRENCY)})")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
