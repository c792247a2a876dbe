"""Settings shared by every service, validated once at start-up.

Each service subclasses :class:`ServiceSettings`; nothing else in the code base reads ``os.environ``.
A missing or malformed value stops the process with a message that names the setting, because a
service that starts half-configured fails later in a place far from the cause.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PostgresDsn, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServiceSettings", "SettingsError", "StartupError", "known_time_zone", "load_settings"]


def known_time_zone(value: str) -> str:
    """``value`` when it names an IANA time zone; else the ValueError pydantic reports for the field."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone") from None
    return value


class ServiceSettings(BaseSettings):
    """What every CityHub process needs: where Kafka and PostgreSQL are, and how to present itself."""

    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=False,
        extra="ignore",
        # Kubernetes mounts Secrets as files; the same names work from a directory of files.
        secrets_dir=None,
    )

    service_name: Annotated[str, Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")]
    kafka_bootstrap_servers: Annotated[str, Field(min_length=1)]
    database_url: PostgresDsn
    grpc_host: str = "127.0.0.1"
    grpc_port: Annotated[int, Field(ge=0, le=65535)] = 0
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    log_level: str = "info"
    log_format: str = "auto"
    # Provision the schema and apply migrations at start-up (`make run`, the tests). In the cluster a Job
    # runs `cityhub db migrate` first and services start with this false: they then need no DDL and
    # refuse to start while a migration of their schema is missing.
    db_migrate_on_start: bool = True
    db_pool_min_size: Annotated[int, Field(ge=1)] = 1
    db_pool_max_size: Annotated[int, Field(ge=1)] = 10
    topic_partitions: Annotated[int, Field(ge=1, le=1024)] = 6
    topic_replication_factor: Annotated[int, Field(ge=1, le=16)] = 1
    outbox_batch_size: Annotated[int, Field(ge=1, le=100_000)] = 500
    outbox_poll_interval_s: Annotated[float, Field(gt=0, le=60)] = 0.2
    # How often the consumers' lag is read from the broker (end offsets minus committed offsets).
    consumer_lag_interval_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    grpc_shutdown_grace_s: Annotated[float, Field(ge=0, le=300)] = 10.0
    # Threads for unary calls (blocking PostgreSQL work). Streams do not take one: they live on the loop.
    grpc_max_workers: Annotated[int, Field(ge=1, le=1024)] = 16
    # Unary calls queued or running per replica before new ones are refused with RESOURCE_EXHAUSTED;
    # 0 means 16 per worker.
    grpc_max_pending: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    # Open server streams (watchers) per replica before new ones are refused with RESOURCE_EXHAUSTED.
    grpc_max_streams: Annotated[int, Field(ge=1, le=1_000_000)] = 2000
    # Start-up gives up on an unreachable database or broker after this long, naming the setting, rather
    # than hang (libpq counts whole seconds, at least 2).
    db_connect_timeout_s: Annotated[int, Field(ge=2, le=300)] = 5
    # While running: the longest a call waits for a pooled connection, and the longest one statement may
    # run; a caller's shorter deadline wins. Past them the caller gets UNAVAILABLE, not a hang.
    db_pool_timeout_s: Annotated[float, Field(gt=0, le=300)] = 2.0
    db_statement_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 15.0
    # After this many consecutive failures of a dependency, calls are answered UNAVAILABLE at once, and
    # one is let through every cooldown to probe for recovery.
    breaker_threshold: Annotated[int, Field(ge=1, le=1000)] = 3
    breaker_cooldown_s: Annotated[float, Field(gt=0, le=300)] = 2.0
    kafka_connect_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    # Static group membership (KIP-345, docs/adr/0018): a stable id of this replica (the pod's name in
    # Kubernetes). A replica restarted under the same id after a crash takes back its partitions at once,
    # where a dynamic member waits out the dead one's session (45 s). Unset: a dynamic member.
    kafka_group_instance_id: Annotated[str, Field(pattern=r"^[a-zA-Z0-9._-]{1,200}$")] | None = None
    # The district's IANA time zone: days, months and "today" in every domain start at its midnight.
    district_time_zone: str = "Asia/Shanghai"
    # The audit log's chain head goes to this topic, out of the database's reach, when it moved
    # (services/platform/security/anchors.py).
    audit_anchor_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    audit_anchor_topic: Annotated[str, Field(pattern=r"^[a-zA-Z0-9._-]{1,249}$")] = "cityhub.audit.anchors.v1"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        levels = {"debug", "info", "warning", "error", "critical"}
        if value.lower() not in levels:
            raise ValueError(f"must be one of {sorted(levels)}")
        return value.lower()

    @field_validator("district_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_time_zone(value)

    @property
    def district_zone(self) -> ZoneInfo:
        return ZoneInfo(self.district_time_zone)

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in {"auto", "json", "console"}:
            raise ValueError("must be one of ['auto', 'console', 'json']")
        return value

    @property
    def kafka_bootstrap_list(self) -> list[str]:
        return [part.strip() for part in self.kafka_bootstrap_servers.split(",") if part.strip()]

    @property
    def dsn(self) -> str:
        return str(self.database_url)


class SettingsError(SystemExit):
    """Raised (as a SystemExit) when settings are missing or malformed; its text names each setting."""


class StartupError(RuntimeError):
    """A resource a setting points at cannot be used at start-up (the database does not answer, the
    broker cannot be reached); the text starts with the setting's name, ``setting`` holds it."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


S = TypeVar("S", bound=BaseSettings)


def describe_validation_error(cls: type[BaseSettings], error: ValidationError) -> str:
    prefix = str(cls.model_config.get("env_prefix") or "")
    lines = [f"invalid settings for {cls.__name__}:"]
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "<settings>"
        env_name = (prefix + name).upper()
        problem = "is required but not set" if item["type"] == "missing" else item["msg"]
        lines.append(f"  {env_name}: {problem}")
    return "\n".join(lines)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build ``cls`` from the environment (plus explicit overrides) or stop with a readable message."""
    try:
        return cls(**overrides)
    except ValidationError as error:
        # SystemExit with a text prints it to stderr and exits 1: logging may not be configured yet.
        raise SettingsError(describe_validation_error(cls, error)) from None
