"""The entities family's tables held in memory for the rebuild (repository/memory/__init__.py says why):
the same answers as :class:`services.hub.repository.entities.EntitiesSql` for every method the
projections call, and the same rows at the end."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from services.hub.domain.entities import (
    DOMAIN_ORDER,
    INVERSE,
    EntityKind,
    EntityRow,
    LinkChange,
    LinkRow,
    Mention,
)
from services.hub.repository.memory.tables import Tables

__all__ = ["MemoryEntities"]

Key = tuple[str, str]
LinkKey = tuple[str, str, str, str, str]
_ORDER = {d: i for i, d in enumerate(DOMAIN_ORDER)}
_APPLICANT_OF = "applicant_of"
# The entities table's columns, named as _Entity's attributes.
_ENTITY_COLUMNS = (
    "kind", "id", "name", "name_rank", "town", "division_code", "latitude", "longitude", "owner_domain",
    "registered", "first_seen_at", "name_at", "town_rank", "town_at",
)  # fmt: skip


class _Entity:
    """One row of ``entities`` (mutable while the replay runs)."""

    __slots__ = (
        "division_code", "first_seen_at", "id", "kind", "latitude", "longitude", "name", "name_at",
        "name_rank", "owner_domain", "registered", "town", "town_at", "town_rank",
    )  # fmt: skip

    def __init__(self, kind: str, id_: str, m: Mention, domain: str, at: datetime) -> None:
        self.kind, self.id = kind, id_
        self.name, self.name_rank, self.name_at = m.name, m.name_source_rank, at if m.name else None
        self.town, self.town_rank, self.town_at = m.town, m.town_source_rank, at if m.town else None
        self.division_code = m.division_code
        self.latitude, self.longitude = m.latitude, m.longitude
        self.owner_domain = domain if m.registers else ""
        self.registered = m.registers
        self.first_seen_at = at

    def merge(self, m: Mention, domain: str, at: datetime) -> None:
        """_UPSERT_MENTION's ON CONFLICT branch: every CASE reads the row as it was before."""
        if m.name and (m.name_source_rank, at, m.name) > _held(self.name_rank, self.name_at, self.name):
            self.name, self.name_rank, self.name_at = m.name, m.name_source_rank, at
        if m.town and (m.town_source_rank, at, m.town) > _held(self.town_rank, self.town_at, self.town):
            self.town, self.town_rank, self.town_at = m.town, m.town_source_rank, at
        if m.division_code and (m.registers or not self.division_code):
            self.division_code = m.division_code
        if m.latitude is not None and (m.registers or self.latitude is None):
            self.latitude, self.longitude = m.latitude, m.longitude
        if m.registers:
            self.owner_domain = domain
        self.registered = self.registered or m.registers
        self.first_seen_at = min(self.first_seen_at, at)


class _Never:
    """Below every datetime: COALESCE(at, '-infinity') in the SQL's row comparison."""

    def __lt__(self, other: object) -> bool:
        return True

    def __gt__(self, other: object) -> bool:
        return False


_NEVER: Any = _Never()


def _held(rank: int, at: datetime | None, value: str) -> tuple[int, Any, str]:
    return (rank, at if at is not None else _NEVER, value)


class MemoryEntities:
    def __init__(self) -> None:
        super().__init__()
        self._entities: dict[Key, _Entity] = {}
        self._links: dict[LinkKey, tuple[str, datetime]] = {}  # -> (domain, linked_at)
        self._links_from: dict[Key, set[LinkKey]] = {}
        self._links_to: dict[Key, set[LinkKey]] = {}
        self._parts: dict[Key, dict[str, list[Any]]] = {}  # -> domain -> [state, last_event_at, count]
        self._timeline: dict[Key, dict[str, tuple[datetime, str, str, str]]] = {}

    # --- getters the projections read ----------------------------------------------------------------

    def entities(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], EntityRow]:
        found = {key: self.entity(*key) for key in keys}
        return {key: row for key, row in found.items() if row is not None}

    def entity(self, kind: str, id_: str) -> EntityRow | None:
        e = self._entities.get((kind, id_))
        if e is None:
            return None
        parts = self._parts.get((kind, id_), {})
        return EntityRow(
            kind=e.kind,
            id=e.id,
            name=e.name,
            town=e.town,
            division_code=e.division_code,
            latitude=e.latitude,
            longitude=e.longitude,
            owner_domain=e.owner_domain,
            registered=e.registered,
            first_seen_at=e.first_seen_at,
            domains=tuple(sorted(parts, key=lambda d: _ORDER.get(d, 99))),
        )

    def links_of(self, kind: str, id_: str, *, names: bool = True) -> list[LinkRow]:
        """As EntitiesSql.links_of: outgoing then incoming, by stored relation, other kind, other id."""
        # (outgoing, relation, other kind, other id, domain)
        rows = [(True, k[2], k[3], k[4], self._links[k][0]) for k in self._links_from.get((kind, id_), ())]
        rows += [(False, k[2], k[0], k[1], self._links[k][0]) for k in self._links_to.get((kind, id_), ())]
        rows.sort(key=lambda r: (not r[0], r[1], r[2], r[3]))
        return [
            LinkRow(
                kind=other_kind,
                id=other_id,
                relation=relation if outgoing else INVERSE.get(relation, relation),
                domain=domain,
                name=self._name(other_kind, other_id) if names else "",
                outgoing=outgoing,
            )
            for outgoing, relation, other_kind, other_id, domain in rows
        ]

    def subject_name_town(self, kind: str, id_: str) -> tuple[str, str]:
        """(name, town) of an entity, '' when unknown: what every inbox item read joins (MemoryInbox)."""
        e = self._entities.get((kind, id_))
        return ("", "") if e is None else (e.name, e.town)

    def _name(self, kind: str, id_: str) -> str:
        e = self._entities.get((kind, id_))
        return e.name if e is not None else ""

    def applicants_of(self, application_no: str) -> list[str]:
        enterprise = EntityKind.ENTERPRISE.value
        return sorted(
            key[1]
            for key in self._links_to.get((EntityKind.APPLICATION.value, application_no), ())
            if key[0] == enterprise and key[2] == _APPLICANT_OF
        )

    # --- the projection's writes ---------------------------------------------------------------------

    def upsert_mention(self, mention: Mention, domain: str, at: datetime) -> None:
        key = (mention.kind.value, mention.id)
        held = self._entities.get(key)
        if held is None:
            self._entities[key] = _Entity(key[0], key[1], mention, domain, at)
        else:
            held.merge(mention, domain, at)

    def change_link(self, change: LinkChange, domain: str, at: datetime) -> None:
        key = (change.from_kind.value, change.from_id, change.relation, change.to_kind.value, change.to_id)
        ends = ((key[0], key[1]), (key[3], key[4]))
        if change.remove:
            if self._links.pop(key, None) is not None:
                self._links_from[ends[0]].discard(key)
                self._links_to[ends[1]].discard(key)
            return
        held = self._links.get(key)
        if held is None:
            self._links[key] = (domain, at)
            self._links_from.setdefault(ends[0], set()).add(key)
            self._links_to.setdefault(ends[1], set()).add(key)
        elif at < held[1]:
            # The first domain to make the link stays its domain; the earliest time is kept.
            self._links[key] = (held[0], at)

    def update_part(
        self,
        kind: str,
        id_: str,
        domain: str,
        at: datetime,
        step: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    ) -> None:
        parts = self._parts.setdefault((kind, id_), {})
        held = parts.get(domain)
        if held is None:
            parts[domain] = [dict(step({})), at, 1]
        else:
            held[0] = dict(step(held[0]))
            held[1] = max(held[1], at)
            held[2] += 1

    def add_timeline(
        self, kind: str, id_: str, *, event_id: str, at: datetime, domain: str, ce_type: str, summary: str
    ) -> None:
        rows = self._timeline.setdefault((kind, id_), {})
        if event_id not in rows:
            rows[event_id] = (at, domain, ce_type, summary)

    # --- the rows at the end -------------------------------------------------------------------------

    def tables(self) -> Tables:
        entities = (tuple(getattr(e, c) for c in _ENTITY_COLUMNS) for e in self._entities.values())
        links = ((*key, domain, linked_at) for key, (domain, linked_at) in self._links.items())
        parts = (
            (kind, id_, domain, Jsonb(state), last, count)
            for (kind, id_), held in self._parts.items()
            for domain, (state, last, count) in held.items()
        )
        timeline = (
            (kind, id_, event_id, at, domain, ce_type, summary)
            for (kind, id_), rows in self._timeline.items()
            for event_id, (at, domain, ce_type, summary) in rows.items()
        )
        return {
            "entities": (_ENTITY_COLUMNS, entities),
            "entity_links": (
                ("from_kind", "from_id", "relation", "to_kind", "to_id", "domain", "linked_at"),
                links,
            ),
            "entity_parts": (("kind", "id", "domain", "state", "last_event_at", "event_count"), parts),
            "entity_timeline": (("kind", "id", "event_id", "at", "domain", "ce_type", "summary"), timeline),
        }
