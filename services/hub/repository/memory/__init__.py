"""The hub's projection tables held in memory, for the rebuild by replay (ADR 0016).

The live consumer applies each event with a few SQL statements, each a round trip; replaying a million
events that way is ~6 million round trips (483 events/s measured). The rebuild instead runs the *same*
projectors over :class:`MemoryHub` — every method the projections call, with the answers the SQL gives,
over Python dicts and the indexes those calls need — and writes each table once with COPY at the end.

Equivalence with the SQL is not argued but checked: the rebuild compares every table it writes with the
live schema row for row, and tests/integration/hub/test_hub_memory_*.py drive the SQL repository and this
one with the same calls. Comparisons of text follow Python's code-point order, which is the database's
(``cityhub infra`` creates the cluster with the builtin C.UTF-8 collation).

A projection that fails half-way through an event cannot be undone here (the SQL path rolls back to a
savepoint), so the rebuild falls back to the SQL path when one does (services/hub/rebuild.py)."""

from __future__ import annotations

from services.hub.repository.memory.dashboard import MemoryDashboard
from services.hub.repository.memory.entities import MemoryEntities
from services.hub.repository.memory.inbox import MemoryInbox
from services.hub.repository.memory.tables import Tables

__all__ = ["MemoryHub", "Tables"]


class MemoryHub(MemoryEntities, MemoryInbox, MemoryDashboard):
    """Every family's tables in memory (the in-memory counterpart of HubRepository)."""

    def tables(self) -> Tables:
        return {**MemoryEntities.tables(self), **MemoryInbox.tables(self), **MemoryDashboard.tables(self)}
