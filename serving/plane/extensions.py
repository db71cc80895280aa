"""Triton's protocol extensions as JSON: a version's model configuration and the repository
index. The REST front end answers this JSON as it is; the gRPC servicer parses it into
tritonclient's messages, so both protocols say the same."""

from core.errors import shown
from serving.converters import NUMPY_TO_V2
from serving.errors import InvalidArgument
from serving.plane.repository import AVAILABLE, LOADING, UNLOADING, ModelConfig
from serving.plane.runtime import LoadedVersion, Signature

PLATFORM = "tensorflow_savedmodel"
EXTENSIONS = ["model_configuration", "model_repository", "statistics"]
STATES = {AVAILABLE: "READY", LOADING: "LOADING", UNLOADING: "UNLOADING"}  # else UNAVAILABLE


def _tensors(specs, batchable: bool) -> list[dict]:
    """Inputs or outputs in Triton's terms: one value per example (``classes`` of a multiclass
    model) is ``dims [1]`` reshaped to ``[]``, as Triton writes it."""
    tensors = []
    for spec in specs.values():
        dims = list(spec.shape[1:] if batchable else spec.shape)
        tensor = {"name": spec.name, "data_type": f"TYPE_{NUMPY_TO_V2[spec.dtype]}", "dims": dims}
        if not dims:
            tensor.update(dims=[1], reshape={"shape": []})
        tensors.append(tensor)
    return tensors


def _version_policy(config: ModelConfig) -> dict:
    policy = config.policy
    if policy.kind == "all":
        return {"all": {}}
    if policy.kind == "specific":
        return {"specific": {"versions": list(policy.versions)}}
    return {"latest": {"num_versions": policy.count}}


def model_config_json(servable: LoadedVersion, signature: Signature, config: ModelConfig) -> dict:
    """What Triton's ``ModelConfig`` says of a SavedModel it serves, for this version's
    ``signature``: the batch axis left out of the dims when requests can be batched along it."""
    batching, batchable = config.batching, signature.batchable
    answer = {
        "name": servable.name,
        "platform": PLATFORM,
        "backend": "tensorflow",
        "version_policy": _version_policy(config),
        "max_batch_size": batching.max_batch_size if batchable else 0,
        "input": _tensors(signature.inputs, batchable),
        "output": _tensors(signature.outputs, batchable),
        "instance_group": [{"name": servable.name, "kind": "KIND_CPU", "count": 1}],
        "parameters": {"signature_name": {"string_value": signature.name}},
    }
    if batching.enabled and batchable:
        answer["dynamic_batching"] = {
            "max_queue_delay_microseconds": batching.max_wait_us,
            "default_queue_policy": {
                "timeout_action": "REJECT",
                "default_timeout_microseconds": int(batching.max_queue_seconds * 1e6),
                "max_queue_size": batching.max_queue,
            },
        }
    return answer


def repository_index_json(repository) -> list[dict]:
    """Every model and version the repository knows, with Triton's state names; a failed one
    says why, and so does a model unloaded on request."""
    index = []
    for name in repository.model_names():
        for version, status in sorted(repository.statuses(name).items()):
            entry = {"name": name, "version": str(version),
                     "state": STATES.get(status.state, "UNAVAILABLE")}  # fmt: skip
            if status.error:
                entry["reason"] = status.error
            index.append(entry)
    for name in sorted(repository.unloaded_by_request):
        versions = sorted(repository.status.get(name, {})) or [""]
        index += [
            {"name": name, "version": str(v), "state": "UNAVAILABLE", "reason": "unloaded"}
            for v in versions
        ]
    return sorted(index, key=lambda entry: (entry["name"], int(entry["version"] or -1)))


def check_model_control_parameters(names, operation: str) -> None:
    """InvalidArgument for a load or unload parameter the zoo does not act on: Triton's
    ``config`` override and ``file:`` contents (the repository on disk is what loads);
    ``unload_dependents`` is accepted (no zoo model has dependents)."""
    refused = sorted(n for n in names if operation == "load" or n != "unload_dependents")
    if refused:
        raise InvalidArgument(
            f"Model {operation} takes no parameters {', '.join(shown(n, 60) for n in refused[:5])}: the "
            "zoo loads the model as the repository on disk holds it."
        )
