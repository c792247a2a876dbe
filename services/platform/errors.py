"""Domain errors: raised by domain rules and use cases, mapped to gRPC status codes in one place
(:mod:`services.platform.grpc_server`). Domain code imports only this module, never grpc.

Everything an error carries travels back in the call's trailers (``grpc-message``, percent-encoded, and
``grpc-status-details-bin``), which a client refuses beyond its metadata limit (8 KiB by default): a
status the client cannot read is RESOURCE_EXHAUSTED, not the answer. So an error never carries unbounded
input: its message is cut to :data:`MAX_MESSAGE_BYTES`, a field violation to :data:`MAX_FIELD_CHARS` and
:data:`MAX_DESCRIPTION_CHARS`, at most :data:`MAX_VIOLATIONS` violations are listed (the message counts the
rest), and :func:`shown` bounds a value a message quotes."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AlreadyExistsError",
    "DeadlineExceededError",
    "DomainError",
    "FailedPreconditionError",
    "FieldViolation",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "Violations",
    "shown",
]

# Limits that keep every error's trailers far below a client's 8 KiB metadata limit, whatever the input
# (see the module text and docs/status-codes.md).
MAX_MESSAGE_BYTES = 1024
MAX_VIOLATIONS = 20
MAX_FIELD_CHARS = 200
MAX_DESCRIPTION_CHARS = 300
MAX_SHOWN_CHARS = 64
_ELLIPSIS = "\u2026"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


def _cut_bytes(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    # Cut on a character boundary, leaving room for the ellipsis (3 bytes in UTF-8).
    return encoded[: limit - 3].decode("utf-8", errors="ignore") + _ELLIPSIS


def shown(value: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """``value`` as an error message may quote it: at most ``limit`` characters, control characters
    escaped (an id a caller sent is echoed bounded, never as sent)."""
    text = str(value)
    safe = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text[:limit])
    return safe + _ELLIPSIS if len(text) > limit else safe


class DomainError(Exception):
    """Base class: a rule of the domain refused the request; nothing was stored or published."""

    def __init__(self, message: str) -> None:
        bounded = _cut_bytes(message, MAX_MESSAGE_BYTES)
        super().__init__(bounded)
        self.message = bounded


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field, named by its path in the request message (``detections[2].confidence``)."""

    field: str
    description: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "field", _cut(self.field, MAX_FIELD_CHARS))
        object.__setattr__(self, "description", _cut(self.description, MAX_DESCRIPTION_CHARS))


class InvalidArgumentError(DomainError):
    """The request is malformed; ``violations`` names the bad fields (google.rpc.BadRequest): every one
    of them up to :data:`MAX_VIOLATIONS`, and the message says how many more there are."""

    def __init__(self, violations: list[FieldViolation] | FieldViolation) -> None:
        found = [violations] if isinstance(violations, FieldViolation) else list(violations)
        if not found:
            raise ValueError("InvalidArgumentError needs at least one field violation")
        self.violations = found[:MAX_VIOLATIONS]
        self.unlisted = len(found) - len(self.violations)
        message = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        if self.unlisted:
            message = f"{self.unlisted} more bad fields not listed; {message}"
        super().__init__(message)

    @classmethod
    def of(cls, field: str, description: str) -> InvalidArgumentError:
        return cls(FieldViolation(field, description))


class NotFoundError(DomainError):
    """The named entity does not exist."""


class AlreadyExistsError(DomainError):
    """An entity with that identity already exists (and the request is not an idempotent replay)."""


class FailedPreconditionError(DomainError):
    """The entity is not in a state that allows this (e.g. a lifecycle step was skipped)."""


class PermissionDeniedError(DomainError):
    """The caller is known but not allowed; the message says why."""


class UnauthenticatedError(DomainError):
    """The caller could not be identified."""


class UnavailableError(DomainError):
    """A dependency (another service, the database, the broker) cannot be reached now; the caller may
    retry later. The message names the dependency, never its credentials."""


class ResourceExhaustedError(DomainError):
    """This replica is at a configured limit (open streams, queued calls); nothing was done. The message
    names the limit. Retry later or elsewhere; retrying at once only adds to the load."""


class DeadlineExceededError(DomainError):
    """The caller's deadline passed before the work could start or finish; nothing was committed."""


class Violations:
    """Collects every bad field of a request, so one answer names them all; raise with :meth:`check`."""

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._items.append(FieldViolation(field, description))

    def add_if(self, problem: str | None, field: str) -> None:
        """Add ``problem`` (from a validator returning ``str | None``) for ``field`` when there is one."""
        if problem is not None:
            self._items.append(FieldViolation(field, problem))

    def __bool__(self) -> bool:
        return bool(self._items)

    def check(self) -> None:
        if self._items:
            raise InvalidArgumentError(self._items)
