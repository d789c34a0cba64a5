"""The settings object shared by every process.

Precedence, lowest first: defaults < config file (TOML, `SUBLIM_CONFIG` or `--config`) <
environment (`SUBLIM_*`, and the original's variables) < command-line flags. Unknown keys
are errors.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sublim.errors import ConfigError

DEFAULT_URL = "sqlite:///./sublim.db"
DEFAULT_UPDATES_TOPIC = "TaskExecutionUpdates"
#: Shortest push token or API token accepted: a short one is guessed, an empty one is none.
MIN_SECRET_LENGTH = 16


def _env(name: str, *original: str) -> AliasChoices:
    return AliasChoices(f"SUBLIM_{name.upper()}", *original, name)


#: The event loop of the serving commands (`sublim.core.runner`).
EventLoopKind = Literal["auto", "uvloop", "asyncio"]


class Settings(BaseSettings):
    """Every option of every Subliminal process, with its environment variable."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True, populate_by_name=True)

    store_url: str = Field(
        DEFAULT_URL,
        validation_alias=_env("store_url"),
        description="where tasks and executions are kept",
    )
    broker_url: str = Field(
        DEFAULT_URL,
        validation_alias=_env("broker_url"),
        description="the message queue between the API and executors",
    )
    updates_topic: str = Field(
        DEFAULT_UPDATES_TOPIC,
        validation_alias=_env("updates_topic", "GOOGLE_EXECUTION_UPDATES_TOPIC_ID"),
        description="topic carrying execution updates back from executors",
    )
    lease_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias=_env("lease_seconds"),
        description="how long a delivery is held before redelivery",
    )
    heartbeat_seconds: float = Field(
        10.0,
        gt=0,
        validation_alias=_env("heartbeat_seconds"),
        description="interval of a running attempt's heartbeat",
    )
    heartbeat_timeout_seconds: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("heartbeat_timeout_seconds"),
        description="silence after which the sweeper records a running attempt Incomplete",
    )
    outbox_grace_seconds: float = Field(
        10.0,
        gt=0,
        validation_alias=_env("outbox_grace_seconds"),
        description="age after which an unpublished execution is published by the sweeper",
    )
    record_linger_seconds: float = Field(
        0.01,
        ge=0,
        le=1,
        validation_alias=_env("record_linger_seconds"),
        description=(
            "after recording a partial batch of updates, how long the recorder waits for more "
            "before it pulls again (fewer, larger store transactions; 0: pull again at once)"
        ),
    )
    sweep_interval_seconds: float = Field(
        5.0,
        gt=0,
        validation_alias=_env("sweep_interval_seconds"),
        description="how often the sweeper runs",
    )
    shutdown_grace_seconds: float = Field(
        30.0,
        ge=0,
        validation_alias=_env("shutdown_grace_seconds"),
        description="time in-flight work gets to finish on SIGTERM before it is released",
    )
    cancel_grace_seconds: float = Field(
        5.0,
        ge=0,
        validation_alias=_env("cancel_grace_seconds"),
        description="time a cancelled thread or process task gets to return before it is stopped",
    )
    concurrency_limits: dict[str, int] = Field(
        default_factory=dict,
        validation_alias=_env("concurrency_limits"),
        description="most executions of a topic dispatched or running at once, across all "
        'executors, as JSON: {"Thumbnail": 10}',
    )
    max_attempts: int = Field(
        3, ge=1, validation_alias=_env("max_attempts"), description="default attempts per execution"
    )
    broker_max_deliveries: int | None = Field(
        None,
        ge=1,
        validation_alias=_env("broker_max_deliveries"),
        description="deliveries after which the broker itself dead-letters a message, the safety "
        "net behind max_attempts for a message no node settles (RabbitMQ, Pub/Sub: 5 to 100, "
        "NATS; a broker URL option overrides it); unset: 20, 100 and never",
    )
    host: str = Field(
        "127.0.0.1",
        validation_alias=_env("host"),
        description="address the API (or datastore) listens on",
    )
    port: int = Field(
        8080,
        ge=0,
        le=65535,
        validation_alias=_env("port", "PORT"),
        description="port of the HTTP API",
    )
    datastore_port: int = Field(
        50051,
        ge=0,
        le=65535,
        validation_alias=_env("datastore_port"),
        description="port of the gRPC datastore service",
    )
    datastore_address: str | None = Field(
        None,
        validation_alias=_env("datastore_address", "DATASTORE_ADDRESS"),
        description="host:port of a `sublim datastore`; when set, the store is grpc://ADDRESS",
    )
    use_tls: bool = Field(
        False,
        validation_alias=_env("use_tls", "USE_TLS"),
        description="talk to the datastore over TLS (grpcs://)",
    )
    project_id: str | None = Field(
        None,
        validation_alias=_env("project_id", "GOOGLE_PROJECT_ID"),
        description="Google Cloud project (pubsub:// and firestore://)",
    )
    api_tokens: dict[str, list[Literal["read", "write", "admin"]]] = Field(
        default_factory=dict,
        validation_alias=_env("api_tokens"),
        description="bearer tokens (16+ characters each) and their scopes, as JSON: "
        '{"TOKEN": ["read", "write"]}',
    )
    auth: Literal["auto", "required", "off"] = Field(
        "auto",
        validation_alias=_env("auth"),
        description="auto: required unless the API listens on loopback only",
    )
    push_token: str | None = Field(
        None,
        validation_alias=_env("push_token"),
        description="secret the push route requires (?token=…), 16+ characters",
    )
    pull_updates: bool = Field(
        True,
        validation_alias=_env("pull_updates"),
        description="record updates by pulling <updates_topic>-sub; turn off when a push "
        "subscription delivers them to /task_execution_update",
    )
    push_audience: str | None = Field(
        None,
        validation_alias=_env("push_audience"),
        description="when set, pushes must carry a Google-signed OIDC token for this audience "
        "(needs push_service_account)",
    )
    push_service_account: str | None = Field(
        None,
        validation_alias=_env("push_service_account"),
        description="with push_audience (required with it): the service account the OIDC "
        "token must name",
    )
    push_oidc_certs_url: str = Field(
        "https://www.googleapis.com/oauth2/v1/certs",
        validation_alias=_env("push_oidc_certs_url"),
        description="where the keys that sign push OIDC tokens are published",
    )
    max_body_bytes: int = Field(
        1_048_576,
        gt=0,
        validation_alias=_env("max_body_bytes"),
        description="largest request body the API accepts (413 above)",
    )
    datastore_token: str | None = Field(
        None,
        min_length=MIN_SECRET_LENGTH,
        validation_alias=_env("datastore_token"),
        description="shared secret of the gRPC datastore (16 characters or more): the datastore "
        "requires it, grpc:// and grpcs:// stores send it",
    )
    datastore_tls_cert: Path | None = Field(
        None,
        validation_alias=_env("datastore_tls_cert"),
        description="PEM certificate chain: the datastore's own (it serves TLS); a client's "
        "own, for mutual TLS",
    )
    datastore_tls_key: Path | None = Field(
        None,
        validation_alias=_env("datastore_tls_key"),
        description="PEM private key of datastore_tls_cert",
    )
    datastore_tls_ca: Path | None = Field(
        None,
        validation_alias=_env("datastore_tls_ca"),
        description="PEM CA bundle: on the datastore, the CA that client certificates must chain "
        "to (mutual TLS: clients without one are refused); on a client, the CA that the "
        "datastore's certificate must chain to (default: the system's)",
    )
    datastore_auth: Literal["auto", "platform"] = Field(
        "auto",
        validation_alias=_env("datastore_auth"),
        description="platform: the platform in front of the datastore authenticates every call "
        "(Cloud Run without --allow-unauthenticated); the datastore may then listen beyond "
        "loopback without a token, and clients send a Google ID token",
    )
    datastore_audience: str | None = Field(
        None,
        validation_alias=_env("datastore_audience"),
        description="with datastore_auth=platform: the audience of the clients' ID tokens "
        "(default: https://HOST of the store URL)",
    )
    idempotency_cache_bytes: int = Field(
        32 * 1024 * 1024,
        ge=0,
        validation_alias=_env("idempotency_cache_bytes"),
        description="memory for first responses kept for Idempotency-Key retries (their JSON "
        "size); the least recently stored go first, and a larger response is not kept",
    )
    max_header_bytes: int = Field(
        64 * 1024,
        gt=0,
        validation_alias=_env("max_header_bytes"),
        description="largest request line and headers the API reads (431 and closed above)",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        validation_alias=_env("header_timeout_seconds"),
        description="time a client gets to send a request's line and headers (408 and closed "
        "after)",
    )
    max_connections: int = Field(
        1000,
        gt=0,
        validation_alias=_env("max_connections"),
        description="open HTTP connections (and requests in progress) above which the API answers "
        "503; keep it under the process's file descriptor limit",
    )
    http_shutdown_seconds: float = Field(
        10.0,
        gt=0,
        validation_alias=_env("http_shutdown_seconds"),
        description="on SIGTERM/SIGINT, time requests in progress get to finish before they are "
        "cancelled (event streams end at once)",
    )
    max_event_streams: int = Field(
        500,
        gt=0,
        validation_alias=_env("max_event_streams"),
        description="open event streams in one API process (429 above)",
    )
    max_event_streams_per_token: int = Field(
        50,
        gt=0,
        validation_alias=_env("max_event_streams_per_token"),
        description="open event streams of one API token, or of all anonymous clients (429 above)",
    )
    event_stream_seconds: float = Field(
        300.0,
        gt=0,
        validation_alias=_env("event_stream_seconds"),
        description="lifetime of one event stream; it then ends with `event: reconnect` and the "
        "client resumes with Last-Event-ID",
    )
    event_stream_poll_seconds: float = Field(
        5.0,
        gt=0,
        validation_alias=_env("event_stream_poll_seconds"),
        description="how often an event stream re-reads the store, for changes recorded by another "
        "process (another API replica); changes made in this process arrive at once",
    )
    event_loop: EventLoopKind = Field(
        "auto",
        validation_alias=_env("event_loop"),
        description="event loop of the serving commands and ExecutionNode.run: uvloop where "
        "installed (auto; it comes with sublim on Linux and macOS), or the standard asyncio loop",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_env("log_level", "LOG_LEVEL"), description="log level"
    )

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Settings:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError("heartbeat_seconds must be shorter than lease_seconds")
        return self

    @model_validator(mode="after")
    def _secrets_long_enough(self) -> Settings:
        if self.push_token is not None and _too_short(self.push_token):
            raise ValueError(
                f"push_token (SUBLIM_PUSH_TOKEN) must be at least {MIN_SECRET_LENGTH} "
                f"characters, not {len(self.push_token.strip())}: {_MAKE_ONE}, or unset it"
            )
        if any(_too_short(token) for token in self.api_tokens):
            raise ValueError(
                "every API token (the keys of api_tokens, SUBLIM_API_TOKENS) must be at least "
                f"{MIN_SECRET_LENGTH} characters; {_shortest(self.api_tokens)}: {_MAKE_ONE}"
            )
        return self

    @model_validator(mode="after")
    def _push_identity_complete(self) -> Settings:
        # An audience alone accepts a token of any Google identity, anyone's push subscription.
        if self.push_audience == "" or bool(self.push_audience) != bool(self.push_service_account):
            raise ValueError(
                "push_audience and push_service_account go together: set both "
                "(SUBLIM_PUSH_AUDIENCE, and SUBLIM_PUSH_SERVICE_ACCOUNT: the service account "
                "the push subscription signs its OIDC tokens as), or neither"
            )
        return self

    @property
    def effective_store_url(self) -> str:
        """The store URL; grpc://DATASTORE_ADDRESS when that is set (the original's way)."""
        if self.datastore_address:
            return f"{'grpcs' if self.use_tls else 'grpc'}://{self.datastore_address}"
        return self.store_url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


_MAKE_ONE = "use a random secret, such as the output of `openssl rand -hex 24`"


def _too_short(secret: str) -> bool:
    return len(secret.strip()) < MIN_SECRET_LENGTH


def _shortest(tokens: dict[str, Any]) -> str:
    """How short the shortest token is, without showing it."""
    return f"one has {min(len(token.strip()) for token in tokens)} characters"


def is_loopback(host: str) -> bool:
    """Whether `host` names the loopback interface only: `localhost`, or an IP literal in
    127.0.0.0/8 or ::1 (brackets allowed). A name such as `127.attacker.example` is not."""
    name = host.strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, a TOML file, the environment and `overrides` (CLI flags).

    Overrides whose value is None are left out, so unset flags do not hide the environment.
    """
    flags = {key: value for key, value in overrides.items() if value is not None}
    try:
        env_and_flags = Settings(**flags)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    if config_file is None:
        return env_and_flags
    file_values = _read_toml(Path(config_file))
    explicit = env_and_flags.model_dump(exclude_defaults=True)
    try:
        return Settings(**(file_values | explicit))
    except ValidationError as exc:
        raise ConfigError(f"{config_file}: {_describe(exc)}") from exc


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    return dict(data.get("sublim", data))


def _describe(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(x) for x in err['loc']) or 'settings'}: {err['msg']}"
        for err in exc.errors()
    ]
    return "invalid settings: " + "; ".join(parts)
