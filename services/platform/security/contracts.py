"""Discovery of the generated contracts: every ``cityhub.*_pb2`` module, its files, services and messages.

Policy completeness and the "events carry no sensitive field" rule are checked over *every* contract,
including ones added after this code was written, so discovery walks the generated package instead of
keeping a list.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from types import ModuleType

from google.protobuf.descriptor import Descriptor, FileDescriptor, ServiceDescriptor

__all__ = [
    "EVENTS_FILE",
    "event_files",
    "files",
    "generated_modules",
    "iter_messages",
    "published_files",
    "services",
]

# cityhub/<domain>/v1/events.proto, where each domain publishes its facts.
EVENTS_FILE = re.compile(r"^cityhub/[a-z][a-z0-9_]*/v1/events\.proto$")


def generated_modules(package: str = "cityhub") -> list[ModuleType]:
    """Import and return every ``*_pb2`` module under the generated package."""
    root = importlib.import_module(package)
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}.")
        if info.name.endswith("_pb2")
    ]


def files(package: str = "cityhub") -> list[FileDescriptor]:
    found: list[FileDescriptor] = []
    for module in generated_modules(package):
        descriptor = getattr(module, "DESCRIPTOR", None)
        if isinstance(descriptor, FileDescriptor):
            found.append(descriptor)
    return found


def services(package: str = "cityhub") -> list[ServiceDescriptor]:
    return [service for file in files(package) for service in file.services_by_name.values()]


def event_files(package: str = "cityhub") -> list[FileDescriptor]:
    return [file for file in files(package) if EVENTS_FILE.match(file.name)]


def published_files(package: str = "cityhub") -> list[FileDescriptor]:
    """Every contract file that declares no gRPC service: events, telemetry batches, shared types — all
    that may be written to Kafka. Only a service's own request/response file may mark fields sensitive."""
    return [file for file in files(package) if not file.services_by_name]


def iter_messages(file: FileDescriptor) -> Iterator[Descriptor]:
    """Every message declared in ``file``, nested declarations included."""
    stack = list(file.message_types_by_name.values())
    while stack:
        message = stack.pop()
        yield message
        stack.extend(message.nested_types)
