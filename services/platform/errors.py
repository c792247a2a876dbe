"""Domain errors: raised by domain rules and use cases, mapped to gRPC status codes in one place
(:mod:`services.platform.grpc_server`). Domain code imports only this module, never grpc."""

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
]


class DomainError(Exception):
    """Base class: a rule of the domain refused the request; nothing was stored or published."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field, named by its path in the request message (``detections[2].confidence``)."""

    field: str
    description: str


class InvalidArgumentError(DomainError):
    """The request is malformed; ``violations`` names every bad field (google.rpc.BadRequest)."""

    def __init__(self, violations: list[FieldViolation] | FieldViolation) -> None:
        self.violations = [violations] if isinstance(violations, FieldViolation) else list(violations)
        if not self.violations:
            raise ValueError("InvalidArgumentError needs at least one field violation")
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))

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
