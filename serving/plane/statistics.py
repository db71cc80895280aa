"""Per model and version statistics, as Triton's statistics extension reports them.

``success`` and ``fail`` count requests and their time in the server; ``queue`` their wait for a
model call; ``compute_input`` (merging a batch), ``compute_infer`` (the model call) and
``compute_output`` (splitting it) are counted per request, each request being charged the whole
call it took part in, as Triton does. ``inference_count`` counts examples, ``execution_count``
model calls, and ``batch_stats`` the calls by batch size. perf_analyzer reads these to split a
request's latency into its parts.
"""

import time
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class Duration:
    count: int = 0
    ns: int = 0

    def add(self, seconds: float, count: int = 1) -> None:
        self.count += count
        self.ns += int(seconds * 1e9) * count

    def as_json(self) -> dict:
        return {"count": self.count, "ns": self.ns}


COMPUTE_PARTS = ("compute_input", "compute_infer", "compute_output")
REQUEST_PARTS = ("success", "fail", "queue", *COMPUTE_PARTS)


def _durations(parts=COMPUTE_PARTS) -> dict[str, Duration]:
    return {part: Duration() for part in parts}


@dataclass
class VersionStatistics:
    last_inference_ms: int = 0
    inference_count: int = 0
    execution_count: int = 0
    requests: dict[str, Duration] = field(default_factory=lambda: _durations(REQUEST_PARTS))
    batches: dict[int, dict[str, Duration]] = field(default_factory=lambda: defaultdict(_durations))

    def as_json(self, name: str, version: int) -> dict:
        """Triton's ``ModelStatistics`` message as JSON (the REST answer; gRPC parses it)."""
        return {
            "name": name,
            "version": str(version),
            "last_inference": self.last_inference_ms,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {k: v.as_json() for k, v in self.requests.items()},
            "batch_stats": [
                {"batch_size": size, **{k: v.as_json() for k, v in parts.items()}}
                for size, parts in sorted(self.batches.items())
            ],
        }


class StatisticsBook:
    """The statistics of every (model, version) this process served since it started."""

    def __init__(self):
        self.versions: dict[tuple[str, int], VersionStatistics] = defaultdict(VersionStatistics)

    def record_request(self, name: str, version: int, seconds: float, ok: bool) -> None:
        entry = self.versions[name, version]
        entry.requests["success" if ok else "fail"].add(seconds)
        if ok:
            entry.last_inference_ms = int(time.time() * 1000)

    def record_call(self, name: str, version: int, size: int, waits: list[float],
                    seconds: tuple[float, float, float]) -> None:  # fmt: skip
        """One model call of ``size`` examples for ``len(waits)`` requests, each having waited
        its own time; ``seconds``: merging, the call, splitting."""
        entry = self.versions[name, version]
        entry.inference_count += size
        entry.execution_count += 1
        for wait in waits:
            entry.requests["queue"].add(wait)
        for part, spent in zip(COMPUTE_PARTS, seconds, strict=True):
            entry.requests[part].add(spent, count=len(waits))
            entry.batches[size][part].add(spent)

    def as_json(self, name: str, versions: list[int]) -> list[dict]:
        """The statistics of ``name``'s ``versions`` (zeros for a version that served nothing)."""
        return [
            self.versions.get((name, version), VersionStatistics()).as_json(name, version)
            for version in versions
        ]
