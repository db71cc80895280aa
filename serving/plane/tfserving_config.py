"""TensorFlow Serving's own config files, read into the zoo's: ``--model-config`` in its
``model_config_list`` text format (``--model_config_file``), and ``--batching-parameters`` in its
``BatchingParameters`` text format (``--batching_parameters_file``).

The model list becomes the mapping of the zoo's YAML file (names, base paths, version policies,
labels), so both are checked by the same code with the same errors; the batching parameters map
onto the zoo's batching options.
"""

import re

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from core.errors import ConfigError


class TextProtoError(ConfigError):
    """A TensorFlow Serving config file that does not read or fit."""


TEXT_PROTO_START = re.compile(r"\A(\s*#[^\n]*\n|\s)*model_config_list\s*\{")
MAX_QUEUE = 1_000_000  # BatchingOptions.max_queue's bound
BATCHING_FIELD = re.compile(r"(\w+)\s*(?::\s*(\d+)|\{\s*value\s*:\s*(\d+)\s*\})")
# BatchingParameters fields the zoo's batcher has no use for: read, and said to do nothing.
BATCHING_WITHOUT_EFFECT = {
    "num_batch_threads": "model calls run on the server's own two threads",
    "allowed_batch_sizes": "batches take any size up to max_batch_size",
    "pad_variable_length_inputs": "inputs are not padded",
    "enable_large_batch_splitting": "a request larger than max_batch_size always runs in chunks",
}


def is_model_config_list(text: str) -> bool:
    """Whether a model config file is TensorFlow Serving's text proto (else the zoo's YAML)."""
    return bool(TEXT_PROTO_START.match(text))


def models_from_text_proto(text: str, path: str) -> dict:
    """``model_config_list { config { ... } }`` as the zoo's ``models:`` mapping."""
    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise TextProtoError(f"Model config {path!r} (model_config_list): {error}") from None
    models = {}
    for entry in config.model_config_list.config:
        if not entry.name:
            raise TextProtoError(f"Model config {path!r}: a config without a name.")
        if entry.model_platform not in ("", "tensorflow"):
            raise TextProtoError(
                f"Model {entry.name!r}: model_platform {entry.model_platform!r}; the zoo serves "
                'TensorFlow SavedModels (model_platform: "tensorflow").'
            )
        if entry.name in models:
            raise TextProtoError(f"Model config {path!r}: model {entry.name!r} appears twice.")
        spec = {"base_path": entry.base_path or entry.name}
        policy = entry.model_version_policy
        chosen = policy.WhichOneof("policy_choice")
        if chosen == "latest":
            spec["version_policy"] = {"latest": policy.latest.num_versions or 1}
        elif chosen == "all":
            spec["version_policy"] = {"all": {}}
        elif chosen == "specific":
            spec["version_policy"] = {"specific": list(policy.specific.versions)}
        if entry.version_labels:
            spec["version_labels"] = dict(entry.version_labels)
        models[entry.name] = spec
    return models


def batching_from_text_proto(text: str, path: str) -> tuple[dict, list[str]]:
    """``max_batch_size { value: 128 } batch_timeout_micros { value: 1000 } ...`` as the zoo's
    batching options, and one note per field that has no effect here (the server logs them:
    nothing a user set is dropped unsaid). ``max_enqueued_batches`` bounds the queue at that
    many full batches of requests."""
    uncommented = re.sub(r"#[^\n]*", "", text)
    leftover = BATCHING_FIELD.sub("", uncommented).strip()
    if leftover:
        raise TextProtoError(
            f"Batching parameters {path!r}: cannot read {leftover[:80]!r}; expected fields such as "
            "'max_batch_size { value: 64 }' (TensorFlow Serving's BatchingParameters)."
        )
    values, notes = {}, []
    for name, plain, wrapped in BATCHING_FIELD.findall(uncommented):
        if name in BATCHING_WITHOUT_EFFECT:
            notes.append(f"{name} has no effect in zoo serve: {BATCHING_WITHOUT_EFFECT[name]}")
        elif name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches"):
            values[name] = int(plain or wrapped)
        else:
            raise TextProtoError(
                f"Batching parameters {path!r}: unknown field {name!r}; TensorFlow Serving's are "
                "max_batch_size, batch_timeout_micros, max_enqueued_batches, num_batch_threads, "
                "allowed_batch_sizes, pad_variable_length_inputs, enable_large_batch_splitting."
            )
    options = {"enabled": True}
    if "max_batch_size" in values:
        options["max_batch_size"] = values["max_batch_size"]
    if "batch_timeout_micros" in values:
        options["max_wait_us"] = values["batch_timeout_micros"]
    if "max_enqueued_batches" in values:
        queue = values["max_enqueued_batches"] * values.get("max_batch_size", 1)
        options["max_queue"] = min(queue, MAX_QUEUE)
        if queue > MAX_QUEUE:
            notes.append(f"max_enqueued_batches allows {queue:,} requests waiting; zoo serve "
                         f"holds at most {MAX_QUEUE:,}")  # fmt: skip
    return options, notes
