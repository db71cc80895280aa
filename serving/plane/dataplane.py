"""The data plane: repository lookup, validation, batching and metrics, shared by every front end.

Servicers translate their protocol's messages to calls on this API (ready, model lookup, status,
``infer``, ``classify``) on numpy arrays and back; they never reach the repository themselves.
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.errors import ConfigError, shown
from core.outputs import class_names_or_indices
from serving.errors import InvalidArgument, NotFound, Unavailable
from serving.plane import example_signatures
from serving.plane.batching import DirectRunner, DynamicBatcher
from serving.plane.extensions import model_config_json, repository_index_json
from serving.plane.heap import release_unloaded
from serving.plane.repository import ModelRepository, VersionStatus, read_model_config
from serving.plane.runtime import DEFAULT_SIGNATURE, LoadedVersion, Signature
from serving.plane.statistics import StatisticsBook
from serving.plane.validation import validate_inputs
from serving.settings import ServerSettings
from serving.telemetry import tracing
from serving.telemetry.metrics import ServerMetrics

UNKNOWN_MODEL_LABEL = "_unknown"
DECODE_IN_FLIGHT = 4  # requests decoding at once; more wait their turn off the loop
log = logging.getLogger("zoo.serving")


class DataPlane:
    """Runs requests against the repository's loaded versions.

    Args:
        settings: the server settings.
        metrics: where request, batch and version metrics go.
        on_model_change: ``on_model_change(name, serving)`` (the health service listens).
    """

    def __init__(self, settings: ServerSettings, metrics: ServerMetrics, on_model_change=None):
        self.settings = settings
        self.metrics = metrics
        # Model calls run on two threads: TensorFlow already spreads one call over the cores,
        # and a second thread overlaps one call's Python overhead with the other's compute.
        self.model_threads = ThreadPoolExecutor(2, thread_name_prefix="zoo-model")
        self.load_threads = ThreadPoolExecutor(1, thread_name_prefix="zoo-load")
        # Parsing JSON, decoding images and converting tensors run here, not on the event loop,
        # which then only moves bytes: one large request cannot stall every other connection.
        self.decode_threads = ThreadPoolExecutor(2, thread_name_prefix="zoo-decode")
        self.decode_slots = asyncio.Semaphore(DECODE_IN_FLIGHT)
        configs = (
            read_model_config(settings.model_config_file, settings.batching)
            if settings.model_config_file
            else None
        )
        self.repository = ModelRepository(
            settings.model_repo,
            configs,
            settings.batching,
            self.load_threads,
            on_change=on_model_change,
            on_unload=self._version_unloaded,
        )
        self.statistics = StatisticsBook()
        self.closing: set[asyncio.Task] = set()
        self.poll_lock = asyncio.Lock()
        self.config_stamp = self._config_stamp()

    def _version_unloaded(self, servable: LoadedVersion) -> None:
        """Closes the version's batchers once the requests they hold have finished, then gives
        its memory back."""
        servable.unloaded = True
        runners, servable.runners = list(servable.runners.values()), {}
        task = asyncio.get_running_loop().create_task(self._retire(runners))
        self.closing.add(task)  # the set keeps the task alive until it is done
        task.add_done_callback(self.closing.discard)

    async def _retire(self, runners: list) -> None:
        for runner in runners:
            await runner.close()
        await asyncio.get_running_loop().run_in_executor(self.load_threads, release_unloaded)

    def _refresh_version_gauge(self) -> None:
        for name in self.repository.model_names():
            self.metrics.versions.labels(name).set(len(self.repository.loaded.get(name, {})))

    def _config_stamp(self) -> float | None:
        """The model config file's modification time (None: no file, or unreadable)."""
        if not self.settings.model_config_file:
            return None
        try:
            return Path(self.settings.model_config_file).stat().st_mtime
        except OSError:
            return None

    async def _reread_model_config(self) -> None:
        """Takes a changed model config file, as TensorFlow Serving polls its own: a file that
        does not read or validate is logged, once per change, and the models keep being served
        as the last good file said."""
        stamp = self._config_stamp()
        if stamp is None or stamp == self.config_stamp:
            return
        self.config_stamp = stamp
        try:
            configs = await asyncio.to_thread(  # parsing a large file must not stall requests
                read_model_config, self.settings.model_config_file, self.settings.batching
            )
        except ConfigError as error:
            log.error("Model config not applied; still serving the last good one: %s", error)
            return
        log.info("Model config %s changed; applying it", self.settings.model_config_file)
        removed = set(self.repository.configs) - {config.name for config in configs}
        self.repository.replace_configs(configs)
        for name in removed:
            self.metrics.versions.labels(name).set(0)

    async def poll(self) -> None:
        """Brings the loaded versions in step with the model config file and the disk (one poll
        at a time)."""
        async with self.poll_lock:
            await self._reread_model_config()
            await self.repository.poll()
            self._refresh_version_gauge()

    async def off_loop(self, function, *args):
        """``function(*args)`` on a decode thread, at most ``DECODE_IN_FLIGHT`` at once."""
        async with self.decode_slots:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.decode_threads, function, *args)

    def signature(self, servable: LoadedVersion, name: str) -> Signature:
        name = name or DEFAULT_SIGNATURE
        if not isinstance(name, str):
            raise InvalidArgument(f"signature_name must be a string. Received: {shown(name)}")
        if name not in servable.signatures:
            raise NotFound(
                f"Model {servable.name!r} version {servable.version} has no signature {name!r}. "
                f"Signatures: {', '.join(sorted(servable.signatures))}."
            )
        return servable.signatures[name]

    def classifier(self, servable: LoadedVersion, name: str | None = None) -> Signature:
        """The signature Classify runs (``serving_default`` unless named): it must take one input
        and answer ``probabilities``; InvalidArgument naming what it has otherwise."""
        signature = self.signature(servable, name or DEFAULT_SIGNATURE)
        if len(signature.inputs) != 1 or "probabilities" not in signature.outputs:
            raise InvalidArgument(
                f"Classify needs a signature with one input and a 'probabilities' output; "
                f"{signature.name!r} takes {sorted(signature.inputs)} and answers "
                f"{sorted(signature.outputs)}. Use {DEFAULT_SIGNATURE!r}, or Predict."
            )
        return signature

    def _runner(self, servable: LoadedVersion, signature: Signature):
        """The batcher of a version's signature, attached to the version on first use."""
        runner = servable.runners.get(signature.name)
        if runner is not None:
            return runner
        config = self.repository.configs[servable.name]

        def observe(size, waits, seconds, model=servable.name, version=servable.version):
            self.metrics.record_batch(model, size, waits)
            self.statistics.record_call(model, version, size, waits, seconds)

        def dropped(reason, model=servable.name):
            self.metrics.record_dropped(model, reason)

        if servable.unloaded or not config.batching.enabled or not signature.batchable:
            # A request that picked a version just before it was unloaded runs on its own, and
            # so does every request of a signature whose inputs or outputs have no batch axis.
            runner = DirectRunner(signature, config.batching, self.model_threads, observe, dropped)
        else:
            runner = DynamicBatcher(
                signature, config.batching, self.model_threads, observe, on_dropped=dropped
            )
        if not servable.unloaded:
            servable.runners[signature.name] = runner
        return runner

    def ready(self) -> bool:
        """Server readiness: at least one model, and every configured model serving."""
        return self.repository.ready()

    def model_names(self) -> list[str]:
        return self.repository.model_names()

    def model_ready(self, name: str, version: int | None = None) -> bool:
        try:
            self.repository.get(name, version)
        except NotFound:
            return False
        return True

    def servable(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> LoadedVersion:
        """The loaded version a request names (newest when none); NotFound naming what exists."""
        return self.repository.get(name, version, label)

    def loaded_versions(self, name: str) -> list[int]:
        return sorted(self.repository.loaded.get(name, {}))

    def statuses(self, name: str, version: int | None = None) -> dict[int, VersionStatus]:
        return self.repository.statuses(name, version)

    def metric_label(self, name: str) -> str:
        """``name`` if the repository knows it, else one shared label: clients cannot grow the
        metrics with names of their choosing."""
        return name if name in self.repository.configs else UNKNOWN_MODEL_LABEL

    async def infer(
        self,
        name: str,
        inputs: dict[str, np.ndarray],
        *,
        version: int | None = None,
        label: str | None = None,
        signature_name: str = DEFAULT_SIGNATURE,
        deadline: float | None = None,
    ) -> tuple[LoadedVersion, Signature, dict[str, np.ndarray]]:
        """Validates ``inputs`` against the signature, runs them (batched), returns the outputs.

        Args:
            deadline: ``time.perf_counter()`` by which the client gives up; a request still
                queued then is dropped unrun (DEADLINE_EXCEEDED). Defaults to None (none).
        """
        trace = tracing.active()
        if trace is not None:
            trace.reached_data_plane()
        servable = self.repository.get(name, version, label)
        started = time.perf_counter()
        try:
            answer = await self._infer(servable, inputs, signature_name, deadline)
        except Exception:
            self.statistics.record_request(
                servable.name, servable.version, time.perf_counter() - started, ok=False
            )
            raise
        self.statistics.record_request(
            servable.name, servable.version, time.perf_counter() - started, ok=True
        )
        if trace is not None:
            trace.answered()
        return answer

    async def _infer(self, servable: LoadedVersion, inputs, signature_name: str, deadline):
        signature = self.signature(servable, signature_name)
        size = validate_inputs(signature, inputs, self.settings.max_request_batch)
        runner = self._runner(servable, signature)
        chunk = self.repository.configs[servable.name].batching.max_batch_size
        if size <= chunk or not signature.batchable:  # outputs without a batch axis: whole
            return servable, signature, await runner.submit(inputs, size, deadline)
        # A request larger than a model call runs in chunks of max_batch_size, in order, so its
        # memory stays that of one batch; other requests interleave between the chunks.
        parts = []
        for start in range(0, size, chunk):
            piece = {k: v[start : start + chunk] for k, v in inputs.items()}
            parts.append(await runner.submit(piece, min(chunk, size - start), deadline))
        outputs = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
        return servable, signature, outputs

    def examples_signature(
        self, servable: LoadedVersion, name: str, method: str
    ) -> Signature | None:
        """The signature ``name`` (``serving_default`` when empty) if its SignatureDef's method is
        ``method`` (TensorFlow Serving's classify or regress) and it takes one string input, else
        None; NotFound, naming the version's signatures, if it has no such signature."""
        signature = self.signature(servable, name or DEFAULT_SIGNATURE)
        return signature if example_signatures.has_method(servable, signature, method) else None

    async def run_examples(
        self, servable: LoadedVersion, signature: Signature, examples: list, deadline
    ) -> dict[str, np.ndarray]:
        """An examples signature's outputs for ``examples`` (tf.Example messages), serialized as
        its input: Classify, Regress and MultiInference on TensorFlow Serving's signatures."""
        if not examples:
            raise InvalidArgument("The request holds no examples; give at least one.")
        inputs = example_signatures.serialized_inputs(signature, examples)
        _, _, outputs = await self.infer(
            servable.name, inputs, version=servable.version, signature_name=signature.name,
            deadline=deadline,
        )  # fmt: skip
        return outputs

    async def classify(
        self,
        name: str,
        inputs: dict[str, np.ndarray],
        *,
        version: int | None = None,
        signature_name: str = DEFAULT_SIGNATURE,
        deadline: float | None = None,
    ) -> tuple[LoadedVersion, list[str], np.ndarray]:
        """Probabilities from a :meth:`classifier` signature with the model's class names."""
        servable, _, outputs = await self.infer(
            name, inputs, version=version, signature_name=signature_name, deadline=deadline
        )
        probabilities = outputs["probabilities"]
        return (
            servable,
            class_names_or_indices(servable.class_names, probabilities.shape[1]),
            probabilities,
        )

    def model_config(self, name: str, version: int | None = None) -> dict:
        """Triton's model configuration of a loaded version (the newest when none), as JSON."""
        servable = self.repository.get(name, version)
        signature = self.signature(servable, DEFAULT_SIGNATURE)
        return model_config_json(servable, signature, self.repository.configs[servable.name])

    def model_statistics(self, name: str = "", version: int | None = None) -> list[dict]:
        """Triton's statistics of a model's loaded versions (one version when given; every
        model when ``name`` is empty), as JSON."""
        if not name:
            names = self.model_names()
        else:
            self.repository.get(name, version)  # NotFound naming what exists
            names = [name]
        return [
            entry
            for model in names
            for entry in self.statistics.as_json(
                model, [version] if version is not None else self.loaded_versions(model)
            )
        ]

    def _model_control(self) -> None:
        if self.settings.model_control != "explicit":
            raise Unavailable(
                "Model control is off: this server loads and unloads models as the repository "
                "changes. Start it with --model-control explicit to load and unload through the API."
            )

    async def load_model(self, name: str) -> None:
        """Model control: loads ``name`` from the repository (again), answering once loaded."""
        self._model_control()
        async with self.poll_lock:
            try:
                await self.repository.load_model(name)
            finally:
                self._refresh_version_gauge()

    async def unload_model(self, name: str) -> None:
        """Model control: stops serving ``name`` until it is loaded again."""
        self._model_control()
        async with self.poll_lock:
            self.repository.unload_model(name)
            self.metrics.versions.labels(name).set(0)

    def repository_index(self) -> list[dict]:
        return repository_index_json(self.repository)

    async def close(self) -> None:
        for versions in self.repository.loaded.values():
            for servable in versions.values():
                for runner in servable.runners.values():
                    await runner.close()
        if self.closing:
            await asyncio.gather(*self.closing)
        self.model_threads.shutdown(wait=True)
        self.decode_threads.shutdown(wait=False, cancel_futures=True)
        self.load_threads.shutdown(wait=False, cancel_futures=True)
