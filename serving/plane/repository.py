"""The model repository: which versions exist on disk, which should serve, loading and unloading.

Layout (TensorFlow Serving's): ``BASE_PATH/VERSION/saved_model.pb`` with integer versions. The
repository is polled; a new version is loaded and warmed up in a worker thread and only then
takes traffic; a version that fails to load is reported (status and log) and never replaces a
working one; a removed version stops taking new requests at once and is dropped once the
requests it is serving have finished.
"""

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from core import yaml_text
from core.artifact import ignored_version_folders, versions_on_disk
from core.errors import ConfigError, shown
from core.settings import validation_message
from serving.errors import NotFound, ServingError
from serving.plane.runtime import LoadedVersion
from serving.plane.tfserving_config import (
    TextProtoError,
    is_model_config_list,
    models_from_text_proto,
)
from serving.plane.warmup import warm_up
from serving.settings import BatchingOptions

log = logging.getLogger("zoo.serving")

# ModelVersionStatus.State values of TensorFlow Serving.
START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


class ModelConfigError(ConfigError):
    """The model config file is invalid."""


@dataclass(frozen=True)
class VersionPolicy:
    """Which on-disk versions serve: ``latest`` N, ``all``, or ``specific`` versions."""

    kind: str = "latest"
    count: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: list[int]) -> set[int]:
        if self.kind == "all":
            return set(available)
        if self.kind == "specific":
            return set(available) & set(self.versions)
        return set(sorted(available)[-self.count :])

    @classmethod
    def parse(cls, spec, model: str) -> "VersionPolicy":
        if spec in (None, {}):
            return cls()
        if isinstance(spec, dict) and len(spec) == 1:
            ((kind, value),) = spec.items()
            if kind == "latest" and isinstance(value, int) and value >= 1:
                return cls("latest", value)
            if kind == "all":
                return cls("all")
            if (
                kind == "specific"
                and isinstance(value, list)
                and all(isinstance(v, int) for v in value)
            ):
                return cls("specific", versions=tuple(value))
        raise ModelConfigError(
            f"Model {model!r}: invalid version_policy {spec!r}; expected {{latest: N}}, "
            "{all: {}} or {specific: [1, 2]}."
        )


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: Path
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: dict[str, int] = field(default_factory=dict)
    batching: BatchingOptions = field(default_factory=BatchingOptions)


@dataclass
class VersionStatus:
    state: str
    error: str = ""
    stamp: float = 0.0  # newest mtime in the version's tree when it failed; a change retries


def read_model_config(path: str, defaults: BatchingOptions) -> list[ModelConfig]:
    """Models from a YAML file: ``models: {NAME: {base_path, version_policy, version_labels,
    batching}}``, or from TensorFlow Serving's ``model_config_list`` text format (without
    per-model batching); relative base paths are relative to the file."""
    try:
        text = Path(path).read_text()
        if is_model_config_list(text):  # TensorFlow Serving's --model_config_file
            data = {"models": models_from_text_proto(text, path)}
        else:
            data = yaml_text.load(text) or {}
    except TextProtoError as error:
        raise ModelConfigError(str(error)) from None
    except (OSError, UnicodeDecodeError, yaml_text.YamlError) as error:
        raise ModelConfigError(f"Cannot read model config {path!r}: {error}") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict) or not models:
        raise ModelConfigError(f"Model config {path!r} needs a non-empty 'models:' mapping.")
    configs = []
    for name, spec in models.items():
        spec = spec or {}
        if not isinstance(spec, dict):
            raise ModelConfigError(
                f"Model {shown(name)}: expected a mapping of keys, got {shown(spec)}."
            )
        unknown = set(spec) - {"base_path", "version_policy", "version_labels", "batching"}
        if unknown:
            raise ModelConfigError(
                f"Model {name!r}: unknown key(s) {sorted(unknown)}; valid keys: base_path, "
                "version_policy, version_labels, batching."
            )
        base = Path(str(spec.get("base_path", name)))
        try:
            batching = BatchingOptions.model_validate(
                {**defaults.model_dump(), **(spec.get("batching") or {})}
            )
        except (ValidationError, TypeError) as error:
            detail = validation_message(error) if isinstance(error, ValidationError) else error
            raise ModelConfigError(f"Model {name!r}: batching: {detail}") from None
        configs.append(
            ModelConfig(
                name=str(name),
                base_path=base if base.is_absolute() else Path(path).parent / base,
                policy=VersionPolicy.parse(spec.get("version_policy"), name),
                labels=_version_labels(spec.get("version_labels"), name),
                batching=batching,
            )
        )
    return configs


def _version_labels(spec, model: str) -> dict[str, int]:
    """``version_labels: {stable: 1, canary: 2}``; ModelConfigError for anything else."""
    spec = spec or {}
    if not isinstance(spec, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in spec.values()
    ):
        raise ModelConfigError(
            f"Model {model!r}: invalid version_labels {spec!r}; expected labels mapped to "
            "version numbers, such as {stable: 1, canary: 2}."
        )
    return {str(k): v for k, v in spec.items()}


class ModelRepository:
    """Loaded versions by model, kept in step with the disk by :meth:`poll`.

    Args:
        root: the repository folder (every subfolder is a model) when ``configs`` is None.
        configs: an explicit list of models (from a model config file).
        defaults: batching options of models without their own.
        executor: thread pool for loading (so requests keep flowing meanwhile).
        on_change: ``on_change(name, serving: bool)`` after a model gains or loses its last version.
        on_unload: ``on_unload(version)`` after a version stops taking new requests.
    """

    def __init__(
        self,
        root,
        configs,
        defaults: BatchingOptions,
        executor: Executor,
        on_change=None,
        on_unload=None,
    ):
        self.root = Path(root) if root else None
        self.fixed_configs = {c.name: c for c in configs} if configs else None
        self.defaults = defaults
        self.executor = executor
        self.on_change = on_change or (lambda name, serving: None)
        self.configs: dict[str, ModelConfig] = dict(self.fixed_configs or {})
        self.loaded: dict[str, dict[int, LoadedVersion]] = {}
        self.status: dict[str, dict[int, VersionStatus]] = {}
        self.on_unload = on_unload or (lambda version: None)
        self.ignored_logged: set[tuple[str, str]] = set()  # (model, folder): said once
        self.unloaded_by_request: set[str] = set()  # model control: left alone by polls

    def replace_configs(self, configs: list[ModelConfig]) -> None:
        """A new model list (the model config file changed): models no longer listed have their
        versions unloaded at once (requests in flight finish) and are forgotten; the others take
        their new version policy and labels on the next poll, and their new batching options with
        the versions loaded after it. A model given another base path keeps serving its old
        versions until the next poll has loaded one from the new path."""
        new = {c.name: c for c in configs}
        for name, old in list(self.configs.items()):
            if name in new:
                if new[name].base_path != old.base_path:  # the old path's failures do not count
                    loaded = self.loaded.get(name, {})
                    statuses = self.status.get(name, {})
                    self.status[name] = {v: s for v, s in statuses.items() if v in loaded}
                continue
            for version in sorted(self.loaded.get(name, {})):
                self._unload(name, version)
            self.loaded.pop(name, None)
            self.status.pop(name, None)
        self.fixed_configs = new
        self.configs = {n: c for n, c in new.items() if n not in self.unloaded_by_request}

    def _new_folders(self, known: set[str]) -> list[Path]:
        """Model folders of the repository's root that are not in ``known`` (a disk read: called
        off the event loop)."""
        if self.fixed_configs is not None or self.root is None or not self.root.is_dir():
            return []
        return [
            entry
            for entry in sorted(self.root.iterdir())
            if entry.name not in known and entry.is_dir() and not entry.name.startswith(".")
        ]

    async def poll(self) -> None:
        """One pass: load wanted new versions, then unload versions no longer wanted. The disk
        is read on a thread, so a repository of many files never stalls the requests."""
        known = set(self.configs) | self.unloaded_by_request
        for entry in await asyncio.to_thread(self._new_folders, known):
            if entry.name not in self.configs and entry.name not in self.unloaded_by_request:
                self.configs[entry.name] = ModelConfig(entry.name, entry, batching=self.defaults)
        for config in list(self.configs.values()):
            await self._sync_model(config)

    async def _sync_model(self, config: ModelConfig) -> None:
        on_disk, ignored = await asyncio.to_thread(
            lambda: (versions_on_disk(config.base_path), ignored_version_folders(config.base_path))
        )
        for name, why in ignored.items():
            if (config.name, name) not in self.ignored_logged:
                self.ignored_logged.add((config.name, name))
                log.warning("Model %s: folder %s ignored: %s", config.name, name, why)
        statuses = self.status.setdefault(config.name, {})
        self.loaded.setdefault(config.name, {})

        # A failed version counts as absent until its folder changes, so it never displaces a
        # working version and is not retried on every poll.
        def wanted() -> set[int]:
            return config.policy.select(
                [
                    v
                    for v, stamp in on_disk.items()
                    if not (statuses.get(v) and statuses[v].error and statuses[v].stamp == stamp)
                ]
            )

        def current() -> set[int]:  # loaded from the model's base path (not a former one)
            loaded = self.loaded[config.name]
            return {v for v, s in loaded.items() if s.path.parent == config.base_path}

        # 1. Load what the policy wants; when a load fails the policy picks again (an older
        #    version, say), until every wanted version is loaded.
        while missing := sorted(wanted() - current()):
            await self._load(config, missing[-1], on_disk[missing[-1]])
        # 2. Only then unload what is no longer wanted, and what a former base path holds once
        #    the new one serves: there is no gap in service.
        fresh = current()  # none: nothing loads from a new base path yet, the old versions serve
        keep = wanted() & fresh if fresh else set(self.loaded[config.name])
        for version in sorted(set(self.loaded[config.name]) - keep):
            self._unload(config.name, version)
        for version in list(statuses):
            if version not in on_disk and statuses[version].error:
                del statuses[version]

    async def _load(self, config: ModelConfig, version: int, stamp: float) -> None:
        statuses = self.status[config.name]
        statuses[version] = VersionStatus(LOADING)
        path = config.base_path / str(version)
        log.info("Loading model %s version %d from %s", config.name, version, path)

        def load_and_warm_up() -> LoadedVersion:
            loaded = LoadedVersion(config.name, version, path)
            warm_up(loaded, config.batching.max_batch_size)
            return loaded

        try:
            servable = await asyncio.get_running_loop().run_in_executor(
                self.executor, load_and_warm_up
            )
        except Exception as error:
            message = f"{type(error).__name__}: {error}".splitlines()[0][:500]
            statuses[version] = VersionStatus(END, message, stamp)
            log.error("Failed to load model %s version %d: %s", config.name, version, message)
            return
        was_serving = bool(self.loaded[config.name])
        replaced = self.loaded[config.name].get(version)  # the same version from a former path
        self.loaded[config.name] = {**self.loaded[config.name], version: servable}
        if replaced is not None:
            self.on_unload(replaced)
        statuses[version] = VersionStatus(AVAILABLE)
        log.info(
            "Loaded model %s version %d; now serving versions %s",
            config.name,
            version,
            sorted(self.loaded[config.name]),
        )
        if not was_serving:
            self.on_change(config.name, True)

    def _unload(self, name: str, version: int) -> None:
        self.status[name][version] = VersionStatus(UNLOADING)
        remaining = {v: s for v, s in self.loaded[name].items() if v != version}
        servable = self.loaded[name][version]
        self.loaded[name] = remaining  # new requests no longer see it
        self.on_unload(servable)
        self.status[name][version] = VersionStatus(END)
        log.info(
            "Unloaded model %s version %d; now serving versions %s",
            name,
            version,
            sorted(remaining),
        )
        if not remaining:
            self.on_change(name, False)

    def _config_on_request(self, name: str) -> ModelConfig:
        """The config of a model a client asks to load: listed in the model config file, or a
        folder of the repository; NotFound naming what there is otherwise."""
        if self.fixed_configs is not None:
            known = self.fixed_configs
        else:
            folders = self.root.iterdir() if self.root and self.root.is_dir() else []
            known = {
                entry.name: ModelConfig(entry.name, entry, batching=self.defaults)
                for entry in folders
                if entry.is_dir() and not entry.name.startswith(".")
            }
        if name not in known:
            raise NotFound(
                f"Model {shown(name)} is not in the model repository. It holds: "
                f"{', '.join(sorted(known)) or 'nothing'}."
            )
        return known[name]

    async def load_model(self, name: str) -> None:
        """Model control: serves ``name`` again (or for the first time) and loads the versions
        its policy wants, returning once they are loaded; a model already served picks up what
        changed on disk. ServingError naming each version's failure when none loads."""
        config = self.configs.get(name) or self._config_on_request(name)
        self.unloaded_by_request.discard(name)
        self.configs[name] = config
        await self._sync_model(config)
        if not self.loaded[name]:
            failures = "; ".join(
                f"version {v}: {s.error}" for v, s in sorted(self.status[name].items()) if s.error
            )
            raise ServingError(
                f"Model {name!r} has no version that loads from {config.base_path}: "
                f"{failures or 'no version folder'}."
            )

    def unload_model(self, name: str) -> None:
        """Model control: stops serving every version of ``name`` (requests in flight finish)
        until :meth:`load_model`; polls leave it alone meanwhile."""
        if name not in self.configs:
            raise NotFound(
                f"Model {shown(name)} is not served. Serving: "
                f"{', '.join(self.model_names()) or 'none'}."
            )
        for version in sorted(self.loaded.get(name, {})):
            self._unload(name, version)
        self.loaded.pop(name, None)
        del self.configs[name]
        self.unloaded_by_request.add(name)
        log.info("Model %s unloaded on request", name)

    def model_names(self) -> list[str]:
        return sorted(self.configs)

    def get(self, name: str, version: int | None = None, label: str | None = None) -> LoadedVersion:
        """The version to serve a request; NotFound naming what exists."""
        if name not in self.configs:
            raise NotFound(
                f"Model {shown(name)} not found. Serving: {', '.join(self.model_names()) or 'none'}."
            )
        versions = self.loaded.get(name, {})
        if label:
            labels = self.configs[name].labels
            if label not in labels:
                raise NotFound(
                    f"Model {name!r} has no version label {shown(label)}. "
                    f"Labels: {', '.join(sorted(labels)) or 'none'}."
                )
            version = labels[label]
        if version is None:
            if not versions:
                raise NotFound(f"Model {name!r} has no version available yet.")
            return versions[max(versions)]
        if version not in versions:
            raise NotFound(
                f"Model {name!r} version {version} not found. "
                f"Available versions: {sorted(versions) or 'none'}."
            )
        return versions[version]

    def statuses(self, name: str, version: int | None = None) -> dict[int, VersionStatus]:
        if name not in self.configs:
            raise NotFound(
                f"Model {shown(name)} not found. Serving: {', '.join(self.model_names()) or 'none'}."
            )
        statuses = self.status.get(name, {})
        if version is not None:
            if version not in statuses:
                raise NotFound(f"Model {name!r} version {version} not found.")
            return {version: statuses[version]}
        return dict(statuses)

    def ready(self) -> bool:
        """True once there is a model and every configured model serves at least one version: an
        empty repository (a typo in the path, a volume not mounted) is not ready."""
        return bool(self.configs) and all(self.loaded.get(name) for name in self.configs)
