"""The server's settings: one object, built once by the CLI (or a test) and passed down."""

import os
from dataclasses import dataclass, field

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class BatchingOptions:
    """Dynamic batching of one model.

    Args:
        enabled: merge concurrent requests into one model call.
        max_batch_size: most examples in one merged call.
        max_wait_us: how long a batch may wait for more requests once the model is free. The
            default 0 is greedy batching: a lone request runs at once (no added latency), while
            under load the requests that queued during the previous call run together.
        max_queue: most requests waiting; beyond it requests get UNAVAILABLE.
    """

    enabled: bool = True
    max_batch_size: int = 64
    max_wait_us: int = 0
    max_queue: int = 1024


@dataclass(frozen=True)
class ServerSettings:
    """Everything ``zoo serve`` can be told.

    Args:
        model_repo: repository root: ``NAME/VERSION/saved_model.pb``; every model in it is served.
        model_config: optional YAML file listing the models to serve (docs/serving.md).
        host: interface to listen on.
        port: gRPC port (both protocols, health and reflection). 0 picks a free port.
        metrics_port: Prometheus metrics over HTTP; 0 picks a free port, -1 disables.
        poll_seconds: how often the repository is scanned for new or removed versions.
        max_message_bytes: largest request accepted (RESOURCE_EXHAUSTED beyond it).
        max_request_batch: largest batch one request may carry (INVALID_ARGUMENT beyond it).
        batching: default batching of every model (a model config may override it).
        tls_cert: PEM server certificate (enables TLS with ``tls_key``).
        tls_key: PEM private key of the certificate.
        tls_client_ca: PEM CA bundle; when set, clients must present a certificate (mutual TLS).
        auth_token: when set, every RPC but health needs ``authorization: Bearer TOKEN``.
        grace_seconds: on SIGTERM, how long in-flight requests get to finish.
    """

    model_repo: str = "model_repo"
    model_config: str = ""
    host: str = "0.0.0.0"
    port: int = 8500
    metrics_port: int = 8502
    poll_seconds: float = 1.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_request_batch: int = 1024
    batching: BatchingOptions = field(default_factory=BatchingOptions)
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    auth_token: str = field(default_factory=lambda: os.environ.get("ZOO_AUTH_TOKEN", ""))
    grace_seconds: float = 10.0
