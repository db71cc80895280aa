"""The server's settings: declared once, with types, bounds and descriptions, built once by the CLI
(or a test) and passed down.

``ServerSettings`` is a pydantic-settings model: every field can come from a flag (``zoo serve
--port 9000``, generated from these declarations), from a ``ZOO_`` environment variable
(``ZOO_PORT=9000``), or from its default, in that order. :func:`build_settings` turns a value out
of bounds into one ConfigError line naming the key, the value and what is allowed; the checks that
need the file system (TLS files, the repository) run there too, before any port opens.
"""

import ssl
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.cpu import usable_cores
from core.errors import ConfigError
from core.settings import validation_message

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
GRPC_MAX_MESSAGE_BYTES = 2**31 - 1


class BatchingOptions(BaseModel):
    """Dynamic batching of one model (a model config may override the server's defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(True, description="merge concurrent requests into one model call")
    max_batch_size: int = Field(
        64,
        ge=1,
        le=65536,
        description="most examples in one model call; larger requests run in chunks of this size",
    )
    max_wait_us: int = Field(
        2000,
        ge=0,
        le=1_000_000,
        description="longest a batch waits for as many examples as the previous model call had "
        "(a lone client's request never waits); 0 is greedy batching: whatever queued while the "
        "model was busy runs at once",
    )
    max_queue: int = Field(
        1024, ge=1, le=1_000_000, description="most requests waiting; beyond it UNAVAILABLE"
    )
    max_queue_seconds: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="longest a request may wait for the model; beyond it UNAVAILABLE instead of "
        "an answer that comes too late (0: no limit)",
    )
    overload_wait_ms: float = Field(
        10.0,
        ge=0,
        le=3_600_000,
        description="under sustained overload (the queue has not emptied for 100 ms), longest a "
        "request may wait beyond one model call; beyond it UNAVAILABLE at once, so the excess is "
        "shed and answered requests keep their latency (0: off, max_queue_seconds alone)",
    )


class ServerSettings(BaseSettings):
    """Everything ``zoo serve`` can be told."""

    model_config = SettingsConfigDict(
        env_prefix="ZOO_", frozen=True, extra="forbid", allow_inf_nan=False
    )

    model_repo: str = Field(
        "model_repo", description="repository root: NAME/VERSION/saved_model.pb; every model in it"
    )
    model_config_file: str = Field(
        "",
        description="YAML file listing the models to serve, with version policies, labels and "
        "batching (docs/serving.md)",
        json_schema_extra={"flag": "--model-config"},
    )
    host: str = Field(
        "0.0.0.0",
        description="interface the gRPC port listens on: all of them by default, as TensorFlow "
        "Serving; 127.0.0.1 for this machine only",
    )
    port: int = Field(8500, ge=0, le=65535, description="gRPC port (both protocols); 0: any free")
    rest_port: int = Field(
        8501,
        ge=-1,
        le=65535,
        description="REST port: TensorFlow Serving's REST API and the Open Inference Protocol's "
        "REST binding; 0: any free, -1: off",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="interface of the Prometheus metrics port: this machine only by default; "
        "0.0.0.0 to let a scraper elsewhere in (the metrics carry no token)",
    )
    metrics_port: int = Field(
        8502, ge=-1, le=65535, description="Prometheus metrics over HTTP; 0: any free, -1: off"
    )
    poll_seconds: float = Field(
        1.0, ge=0.05, le=86400, description="seconds between scans of the repository"
    )
    max_message_bytes: int = Field(
        DEFAULT_MAX_MESSAGE_BYTES,
        ge=1024,
        le=GRPC_MAX_MESSAGE_BYTES,
        description="largest request and largest tensor accepted (RESOURCE_EXHAUSTED beyond)",
    )
    body_budget_bytes: int = Field(
        4 * DEFAULT_MAX_MESSAGE_BYTES,
        ge=1024,
        le=1 << 40,
        description="REST request bodies held at once across all connections, from their "
        "headers to their answer (one without Content-Length counts as max_message_bytes); a "
        "request beyond it is answered 503 at once, unread",
    )
    max_request_batch: int = Field(
        1024, ge=1, le=1_000_000, description="most examples in one request (INVALID_ARGUMENT)"
    )
    batching: BatchingOptions = Field(default_factory=BatchingOptions)
    tls_cert: str = Field("", description="PEM server certificate (TLS, with --tls-key)")
    tls_key: str = Field("", description="PEM private key of the certificate")
    tls_client_ca: str = Field(
        "", description="PEM CA bundle: clients must present a certificate it signed (mutual TLS)"
    )
    auth_token: str = Field(
        "",
        repr=False,
        description="bearer token every RPC but overall health needs (ZOO_AUTH_TOKEN only: a "
        "secret on the command line shows in ps)",
    )
    workers: int = Field(
        0,
        ge=0,
        le=64,
        description="processes serving the same ports (SO_REUSEPORT), each with its own loaded "
        "models, batchers and event loop; 0: one per core this process may use (its CPU "
        "affinity, capped by the container's CPU quota)",
    )
    loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto",
        description="event loop: uvloop (auto: when installed; less CPU per request) or asyncio's "
        "own",
    )
    model_control: Literal["off", "explicit"] = Field(
        "off",
        description="explicit: clients may load and unload models (Triton's RepositoryModelLoad "
        "and RepositoryModelUnload, gRPC and REST; behind the auth token when one is set); an "
        "unloaded model stays unloaded until loaded again. Needs one worker (0 workers then "
        "means 1): a request reaches one worker only",
    )
    tracing: bool = Field(
        False,
        description="OpenTelemetry: a span per request (decode, queue, batch, model, encode), "
        "child of the client's W3C traceparent, exported as the OTEL_* environment variables "
        "say (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_TRACES_SAMPLER...)",
    )
    grace_seconds: float = Field(
        10.0, ge=0, le=3600, description="on SIGTERM, how long in-flight requests get to finish"
    )
    max_connection_age_seconds: float = Field(
        0,
        ge=0,
        le=86400,
        description="end each gRPC connection gracefully after this long (GOAWAY: clients "
        "reconnect, in-flight calls get --grace-seconds), so long-lived clients spread over "
        "workers and replicas started later; 0: never",
    )
    idle_timeout_seconds: float = Field(
        120.0,
        ge=0,
        le=86400,
        description="close a connection that carries no request for this long: a gRPC connection "
        "with no call in flight (clients reconnect by themselves) or one that never completes its "
        "handshake; a REST connection between requests, or one that has not sent a whole request "
        "(headers, then body) within it; 0: never",
    )

    @model_validator(mode="after")
    def _workers_need_fixed_ports(self):
        if self.worker_count > 1 and (self.port == 0 or self.rest_port == 0):
            raise ValueError(
                "several workers share fixed ports: give --port and --rest-port (not 0), or "
                "--workers 1"
            )
        return self

    @model_validator(mode="after")
    def _budget_takes_the_largest_body(self):
        if self.body_budget_bytes < self.max_message_bytes:
            raise ValueError(
                f"body_budget_bytes={self.body_budget_bytes} is below max_message_bytes="
                f"{self.max_message_bytes}: the largest request could never be read"
            )
        return self

    @model_validator(mode="after")
    def _model_control_needs_one_worker(self):
        if self.model_control == "explicit" and self.workers > 1:
            raise ValueError(
                f"model_control=explicit with workers={self.workers}: a load or unload request "
                "reaches one worker only, so the workers would serve different models; use "
                "--workers 1, or a model config file (every worker polls it)"
            )
        return self

    @model_validator(mode="after")
    def _idle_timeout_is_never_or_a_second_at_least(self):
        if 0 < self.idle_timeout_seconds < 1:
            raise ValueError(
                f"idle_timeout_seconds={self.idle_timeout_seconds:g}: 0 (never) or at least 1 s, "
                "or handshakes and requests in progress would be cut off"
            )
        return self

    @model_validator(mode="after")
    def _tls_fits_together(self):
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("TLS needs both tls_cert and tls_key")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError(
                "tls_client_ca (mutual TLS) needs tls_cert and tls_key too: without them the "
                "server would accept plaintext"
            )
        return self

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @property
    def worker_count(self) -> int:
        """``workers``, with 0 resolved to the cores this process may run on (its affinity and
        its container's CPU quota), or to 1 under explicit model control."""
        if self.workers == 0 and self.model_control == "explicit":
            return 1
        return self.workers or usable_cores()


def check_files(settings: ServerSettings) -> None:
    """ConfigError unless the repository, model config and TLS files are usable."""
    if settings.model_config_file:
        if not Path(settings.model_config_file).is_file():
            raise ConfigError(f"model_config {settings.model_config_file!r} is not a file.")
    else:
        repo = Path(settings.model_repo)
        if not repo.is_dir():
            kind = "is a file" if repo.exists() else "does not exist"
            raise ConfigError(
                f"model_repo {settings.model_repo!r} {kind}; give the folder that holds "
                "NAME/VERSION/saved_model.pb."
            )
    for key in ("tls_cert", "tls_key", "tls_client_ca"):
        path = getattr(settings, key)
        if path and not Path(path).is_file():
            raise ConfigError(f"{key} {path!r} is not a readable file.")
    if settings.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(settings.tls_cert, settings.tls_key)
        except ssl.SSLError as error:
            raise ConfigError(
                f"tls_key {settings.tls_key!r} does not fit tls_cert {settings.tls_cert!r} "
                f"(or one is not PEM): {error.reason or error}."
            ) from None
    if settings.tls_client_ca:
        try:
            ssl.create_default_context(cafile=settings.tls_client_ca)
        except ssl.SSLError as error:
            raise ConfigError(
                f"tls_client_ca {settings.tls_client_ca!r} holds no PEM certificate: {error}."
            ) from None


def build_settings(**values) -> ServerSettings:
    """Settings from explicit values (flags), ``ZOO_`` environment variables and defaults,
    validated; ConfigError naming the key, the value and what is allowed."""
    try:
        settings = ServerSettings(**values)
    except ValidationError as error:
        raise ConfigError(validation_message(error)) from None
    check_files(settings)
    return settings
