"""SQL of the entities family: entities, their links, the domains' parts and the timeline (hub_0001), and
the visibility rule every family calls (:meth:`EntitiesSql.visible`, :meth:`EntitiesSql.visible_keys`).

Kinds are the common EntityKind names without the prefix ("SITE"); relations are read from the entity
asked about (an outgoing link by its name, an incoming one by its inverse, domain.entities.INVERSE)."""

# Queries are composed only from this module's constant fragments; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from services.hub.domain.entities import (
    DOMAIN_ORDER,
    FILED_IN,
    HANDLED_BY,
    INVERSE,
    NOT_VISIBILITY,
    SCOPE_OF_KIND,
    SCORE_EXACT,
    SCORE_PREFIX,
    SCORE_SUBSTRING,
    EntityKind,
    EntityRow,
    LinkChange,
    LinkRow,
    Mention,
    PartRow,
    held,
    region_prefix,
)
from services.platform.repository import SqlPart

__all__ = ["EntitiesSql", "EntityView", "TimelineRow"]

Row = dict[str, Any]
Key = tuple[str, str]

_ENTITY_COLUMNS = (
    "e.kind, e.id, e.name, e.town, e.division_code, e.latitude, e.longitude, e.owner_domain, e.registered,"
    " e.first_seen_at,"
    " COALESCE((SELECT array_agg(p.domain) FROM entity_parts p WHERE p.kind = e.kind AND p.id = e.id),"
    " '{}') AS domains"
)
_ORDER = {d: i for i, d in enumerate(DOMAIN_ORDER)}
_NOT_VISIBILITY = sorted(NOT_VISIBILITY)

_ENTITY_VIEW_NAMES = (
    "kind", "id", "name", "town", "division_code", "latitude", "longitude", "owner_domain", "registered",
    "first_seen_at",
)  # fmt: skip
# The 360's one statement (see EntitiesSql.entity_view). Links come as JSON (text only); the parts as
# parallel arrays so their jsonb state and timestamptz keep their exact types (the entity's domains are
# the parts' domains: read once, not again by _ENTITY_COLUMNS' subquery).
_ENTITY_VIEW = """
SELECT e.kind, e.id, e.name, e.town, e.division_code, e.latitude, e.longitude, e.owner_domain, e.registered,
  e.first_seen_at,
  (SELECT COALESCE(json_agg(json_build_array(l.other_kind, l.other_id, l.relation, l.domain, l.outgoing,
            COALESCE((SELECT o.name FROM entities o WHERE o.kind = l.other_kind AND o.id = l.other_id), ''))
          ORDER BY l.outgoing DESC, l.relation, l.other_kind, l.other_id), '[]'::json)
     FROM (SELECT to_kind AS other_kind, to_id AS other_id, relation, domain, TRUE AS outgoing
             FROM entity_links WHERE from_kind = e.kind AND from_id = e.id
           UNION ALL
           SELECT from_kind, from_id, relation, domain, FALSE
             FROM entity_links WHERE to_kind = e.kind AND to_id = e.id) l),
  p.domains, p.states, p.ats, p.counts,
  (SELECT count(*) FROM inbox_items i
    WHERE i.subject_kind = e.kind AND i.subject_id = e.id AND i.status <> 'RESOLVED')
FROM entities e
CROSS JOIN LATERAL (
  SELECT array_agg(domain) AS domains, array_agg(state) AS states, array_agg(last_event_at) AS ats,
         array_agg(event_count) AS counts
    FROM entity_parts WHERE kind = e.kind AND id = e.id) p
WHERE e.kind = %(k)s AND e.id = %(i)s"""

# (rank, event time, value) of the incoming name / town beats the stored one: a total order, so the same
# mentions give the same entity in any arrival order.
_WINS = (
    "(EXCLUDED.{c} <> '' AND (EXCLUDED.{c}_rank, EXCLUDED.{c}_at, EXCLUDED.{c} COLLATE \"C\")"
    " > (e.{c}_rank, coalesce(e.{c}_at, '-infinity'), e.{c} COLLATE \"C\"))"
)
_UPSERT_MENTION = (
    """
    INSERT INTO entities AS e (kind, id, name, name_rank, name_at, town, town_rank, town_at,
                               division_code, latitude, longitude, owner_domain, registered, first_seen_at)
    VALUES (%(kind)s, %(id)s, %(name)s, %(rank)s, %(name_at)s, %(town)s, %(town_rank)s, %(town_at)s,
            %(code)s, %(lat)s, %(lon)s, %(owner)s, %(registers)s, %(at)s)
    ON CONFLICT (kind, id) DO UPDATE SET
"""
    + "\n".join(
        f"      {column} = CASE WHEN {_WINS.format(c=source)} THEN EXCLUDED.{column} ELSE e.{column} END,"
        for source in ("name", "town")
        for column in (source, f"{source}_rank", f"{source}_at")
    )
    + """
      division_code = CASE WHEN EXCLUDED.division_code <> '' AND (EXCLUDED.registered OR e.division_code = '')
                           THEN EXCLUDED.division_code ELSE e.division_code END,
      latitude = CASE WHEN EXCLUDED.latitude IS NOT NULL AND (EXCLUDED.registered OR e.latitude IS NULL)
                      THEN EXCLUDED.latitude ELSE e.latitude END,
      longitude = CASE WHEN EXCLUDED.latitude IS NOT NULL AND (EXCLUDED.registered OR e.latitude IS NULL)
                       THEN EXCLUDED.longitude ELSE e.longitude END,
      owner_domain = CASE WHEN EXCLUDED.registered THEN EXCLUDED.owner_domain ELSE e.owner_domain END,
      registered = e.registered OR EXCLUDED.registered,
      first_seen_at = LEAST(e.first_seen_at, EXCLUDED.first_seen_at)
"""
)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _entity(row: Row) -> EntityRow:
    return EntityRow(
        kind=row["kind"],
        id=row["id"],
        name=row["name"],
        town=row["town"],
        division_code=row["division_code"],
        latitude=row["latitude"],
        longitude=row["longitude"],
        owner_domain=row["owner_domain"],
        registered=row["registered"],
        first_seen_at=row["first_seen_at"],
        domains=tuple(sorted(row["domains"] or (), key=lambda d: _ORDER.get(d, 99))),
    )


@dataclass(frozen=True, slots=True)
class EntityView:
    """What the 360 reads about one entity, as of one statement."""

    entity: EntityRow
    links: tuple[LinkRow, ...]
    parts: tuple[PartRow, ...]
    open_items: int


class TimelineRow:
    """One timeline entry."""

    __slots__ = ("at", "ce_type", "domain", "event_id", "summary")

    def __init__(self, at: datetime, domain: str, ce_type: str, summary: str, event_id: str) -> None:
        self.at, self.domain, self.ce_type, self.summary, self.event_id = (
            at,
            domain,
            ce_type,
            summary,
            event_id,
        )


class EntitiesSql(SqlPart):
    # ------------------------------------------------------------------------------------------------
    # Getters other families use

    def entity(self, kind: str, id_: str) -> EntityRow | None:
        """The entity (kind as the common EntityKind name, e.g. "SITE"), or None when unknown."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_ENTITY_COLUMNS} FROM entities e WHERE e.kind = %s AND e.id = %s", (kind, id_)
            ).fetchone()
        return _entity(row) if row else None

    def entities(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], EntityRow]:
        """The known ones of many entities in one statement, by (kind, id)."""
        if not keys:
            return {}
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_ENTITY_COLUMNS} FROM entities e"
                " JOIN unnest(%s::text[], %s::text[]) AS k(kind, id) ON e.kind = k.kind AND e.id = k.id",
                ([k for k, _ in keys], [i for _, i in keys]),
            ).fetchall()
        return {(row["kind"], row["id"]): _entity(row) for row in rows}

    def entity_view(self, kind: str, id_: str) -> EntityView | None:
        """The entity, its links (named, ordered as :meth:`links_of`), its parts and its open inbox items
        in ONE statement: the 360 is the hub's hottest read, and each round trip costs more than the
        lookups themselves (all are primary-key or index probes)."""
        row = self._conn.execute(_ENTITY_VIEW, {"k": kind, "i": id_}).fetchone()
        if row is None:
            return None
        links_raw, domains, states, ats, counts, open_items = row[len(_ENTITY_VIEW_NAMES) :]
        fields = dict(zip(_ENTITY_VIEW_NAMES, row[: len(_ENTITY_VIEW_NAMES)], strict=True))
        entity = _entity({**fields, "domains": domains})
        links = tuple(
            LinkRow(
                kind=other_kind,
                id=other_id,
                relation=str(relation if outgoing else INVERSE.get(relation, relation)),
                domain=domain,
                name=name,
                outgoing=outgoing,
            )
            for other_kind, other_id, relation, domain, outgoing, name in links_raw
        )
        parts = tuple(
            sorted(
                (
                    PartRow(domain=d, state=st, last_event_at=at, event_count=n)
                    for d, st, at, n in zip(domains or (), states or (), ats or (), counts or (), strict=True)
                ),
                key=lambda p: _ORDER.get(p.domain, 99),
            )
        )
        return EntityView(entity, links, parts, int(open_items))

    def linked(self, kind: str, id_: str) -> list[tuple[str, str, str]]:
        """The entities one link away, both directions: (kind, id, relation read from this end)."""
        return [(link.kind, link.id, link.relation) for link in self.links_of(kind, id_, names=False)]

    def links_of(self, kind: str, id_: str, *, names: bool = True) -> list[LinkRow]:
        """Every link of the entity, outgoing then incoming, with the other end's name when asked."""
        name = (
            "COALESCE((SELECT o.name FROM entities o WHERE o.kind = l.other_kind AND o.id = l.other_id), '')"
            if names
            else "''"
        )
        sql = f"""
            SELECT l.*, {name} AS other_name FROM (
                SELECT to_kind AS other_kind, to_id AS other_id, relation, domain, TRUE AS outgoing
                  FROM entity_links WHERE from_kind = %(k)s AND from_id = %(i)s
                UNION ALL
                SELECT from_kind, from_id, relation, domain, FALSE
                  FROM entity_links WHERE to_kind = %(k)s AND to_id = %(i)s
            ) l ORDER BY l.outgoing DESC, l.relation, l.other_kind, l.other_id"""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(sql, {"k": kind, "i": id_}).fetchall()
        return [
            LinkRow(
                kind=r["other_kind"],
                id=r["other_id"],
                relation=str(r["relation"] if r["outgoing"] else INVERSE.get(r["relation"], r["relation"])),
                domain=r["domain"],
                name=r["other_name"],
                outgoing=r["outgoing"],
            )
            for r in rows
        ]

    def _application_regions(self, numbers: Sequence[str]) -> dict[str, list[str]]:
        if not numbers:
            return {}
        rows = self._conn.execute(
            "SELECT from_id, to_id FROM entity_links WHERE from_kind = %s AND from_id = ANY(%s)"
            " AND relation = ANY(%s)",
            (EntityKind.APPLICATION.value, list(numbers), [FILED_IN, HANDLED_BY]),
        ).fetchall()
        found: dict[str, list[str]] = {}
        for number, code in rows:
            found.setdefault(number, []).append(code)
        return found

    def visible(
        self,
        scopes: Mapping[str, frozenset[str]] | None,
        kind: str,
        id_: str,
        *,
        links: Sequence[LinkRow] | None = None,
    ) -> bool:
        """Whether a caller with ``scopes`` (api.scopes_of: None = everything) may see the entity: its own
        scope is held, or an entity one link away (not a region's containment) is held. ``links``: the
        entity's links when the caller has already read them (saves the query)."""
        if scopes is None:
            return True
        if not any(scopes.values()):
            return False
        candidates: list[Key] = [(kind, id_)]
        blocked = NOT_VISIBILITY | {INVERSE[r] for r in NOT_VISIBILITY}
        if links is None:
            links = self.links_of(kind, id_, names=False)
        candidates += [(link.kind, link.id) for link in links if link.relation not in blocked]
        apps = [i for k, i in candidates if k == EntityKind.APPLICATION]
        regions = self._application_regions(apps)
        return any(held(scopes, k, i, regions.get(i, ())) for k, i in candidates)

    def visible_keys(self, scopes: Mapping[str, frozenset[str]] | None) -> set[Key] | None:
        """Every (kind, id) a caller with ``scopes`` may see (None: everything) — for filtering lists."""
        if scopes is None:
            return None
        held_keys: set[Key] = set()
        for kind, scope in SCOPE_OF_KIND.items():
            if kind == EntityKind.REGION:
                continue
            held_keys |= {(kind.value, i) for i in scopes.get(scope, frozenset())}
        prefixes = [_like(region_prefix(code)) + "%" for code in scopes.get("region", frozenset()) if code]
        if prefixes:
            held_keys |= {(EntityKind.REGION.value, code) for code in scopes.get("region", frozenset())}
            rows = self._conn.execute(
                "SELECT kind, id FROM entities WHERE kind = %s AND id LIKE ANY(%s)"
                " UNION SELECT from_kind, from_id FROM entity_links"
                " WHERE from_kind = %s AND relation = ANY(%s) AND to_id LIKE ANY(%s)",
                (
                    EntityKind.REGION.value,
                    prefixes,
                    EntityKind.APPLICATION.value,
                    [FILED_IN, HANDLED_BY],
                    prefixes,
                ),
            ).fetchall()
            held_keys |= {(r[0], r[1]) for r in rows}
        if not held_keys:
            return set()
        kinds = [k for k, _ in held_keys]
        ids = [i for _, i in held_keys]
        rows = self._conn.execute(
            "WITH h(kind, id) AS (SELECT * FROM unnest(%(kinds)s::text[], %(ids)s::text[]))"
            " SELECT l.to_kind, l.to_id FROM entity_links l"
            "  JOIN h ON l.from_kind = h.kind AND l.from_id = h.id WHERE l.relation <> ALL(%(not)s)"
            " UNION SELECT l.from_kind, l.from_id FROM entity_links l"
            "  JOIN h ON l.to_kind = h.kind AND l.to_id = h.id WHERE l.relation <> ALL(%(not)s)",
            {"kinds": kinds, "ids": ids, "not": _NOT_VISIBILITY},
        ).fetchall()
        return held_keys | {(r[0], r[1]) for r in rows}

    def open_items(self, kind: str, id_: str) -> int:
        """Open inbox items at the entity (the inbox family's table; 0 until it exists)."""
        exists = self._conn.execute("SELECT to_regclass('inbox_items') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return 0
        row = self._conn.execute(
            "SELECT count(*) FROM inbox_items WHERE subject_kind = %s AND subject_id = %s"
            " AND status <> 'RESOLVED'",
            (kind, id_),
        ).fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------------------------------------
    # The projection's writes

    def upsert_mention(self, mention: Mention, domain: str, at: datetime) -> None:
        """Create the entity (a stub unless ``mention.registers``) or fill in what the event says. The name
        and the town are chosen by a total order on their source — (rank, event time, value): a stronger
        source, then the latest event, then the greater value — so mentions of one rank arriving from
        different partitions in either order give the same entity. A code or location comes from the
        entity's own registration (its events share one partition) and other events only fill blanks; the
        earliest time seen is kept."""
        self._conn.execute(
            _UPSERT_MENTION,
            {
                "kind": mention.kind.value,
                "id": mention.id,
                "name": mention.name,
                "rank": mention.name_source_rank,
                "name_at": at if mention.name else None,
                "town": mention.town,
                "town_rank": mention.town_source_rank,
                "town_at": at if mention.town else None,
                "code": mention.division_code,
                "lat": mention.latitude,
                "lon": mention.longitude,
                "owner": domain if mention.registers else "",
                "registers": mention.registers,
                "at": at,
            },
        )

    def change_link(self, change: LinkChange, domain: str, at: datetime) -> None:
        key = (change.from_kind.value, change.from_id, change.relation, change.to_kind.value, change.to_id)
        if change.remove:
            self._conn.execute(
                "DELETE FROM entity_links WHERE from_kind = %s AND from_id = %s AND relation = %s"
                " AND to_kind = %s AND to_id = %s",
                key,
            )
            return
        self._conn.execute(
            "INSERT INTO entity_links (from_kind, from_id, relation, to_kind, to_id, domain, linked_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (from_kind, from_id, relation, to_kind, to_id)"
            " DO UPDATE SET linked_at = LEAST(entity_links.linked_at, EXCLUDED.linked_at)",
            (*key, domain, at),
        )

    def applicants_of(self, application_no: str) -> list[str]:
        """The credit codes of the enterprises linked as applicants of an application."""
        rows = self._conn.execute(
            "SELECT from_id FROM entity_links WHERE from_kind = %s AND relation = 'applicant_of'"
            " AND to_kind = %s AND to_id = %s ORDER BY from_id",
            (EntityKind.ENTERPRISE.value, EntityKind.APPLICATION.value, application_no),
        ).fetchall()
        return [r[0] for r in rows]

    def update_part(
        self,
        kind: str,
        id_: str,
        domain: str,
        at: datetime,
        step: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    ) -> None:
        """Apply ``step`` to the (entity, domain) part's state; the latest event time and the count kept."""
        row = self._conn.execute(
            "SELECT state FROM entity_parts WHERE kind = %s AND id = %s AND domain = %s FOR UPDATE",
            (kind, id_, domain),
        ).fetchone()
        state = step(row[0] if row else {})
        self._conn.execute(
            "INSERT INTO entity_parts AS p (kind, id, domain, state, last_event_at, event_count)"
            " VALUES (%s, %s, %s, %s, %s, 1)"
            " ON CONFLICT (kind, id, domain) DO UPDATE SET state = EXCLUDED.state,"
            " last_event_at = GREATEST(p.last_event_at, EXCLUDED.last_event_at),"
            " event_count = p.event_count + 1",
            (kind, id_, domain, Jsonb(dict(state)), at),
        )

    def add_timeline(
        self, kind: str, id_: str, *, event_id: str, at: datetime, domain: str, ce_type: str, summary: str
    ) -> None:
        self._conn.execute(
            "INSERT INTO entity_timeline (kind, id, event_id, at, domain, ce_type, summary)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (kind, id_, event_id, at, domain, ce_type, summary),
        )

    # ------------------------------------------------------------------------------------------------
    # Reads for the RPCs

    def parts_of(self, kind: str, id_: str) -> list[PartRow]:
        rows = self._conn.execute(
            "SELECT domain, state, last_event_at, event_count FROM entity_parts WHERE kind = %s AND id = %s",
            (kind, id_),
        ).fetchall()
        return sorted(
            (PartRow(domain=r[0], state=r[1], last_event_at=r[2], event_count=r[3]) for r in rows),
            key=lambda p: _ORDER.get(p.domain, 99),
        )

    def search(
        self,
        query: str,
        *,
        kinds: Sequence[str],
        town: str,
        visible: set[Key] | None,
        after: tuple[float, str, str, str] | None,
        limit: int,
    ) -> list[tuple[EntityRow, float]]:
        """Entities matching ``query`` ranked: an exact id 1.0, a name or id prefix 0.8, a substring 0.5;
        then by name, kind and id. ``after``: the last (score, name, kind, id) of the previous page."""
        q = query.strip().lower()
        params: dict[str, Any] = {
            "q": q,
            "prefix": _like(q) + "%",
            "sub": "%" + _like(q) + "%",
            "exact": SCORE_EXACT,
            "pre": SCORE_PREFIX,
            "subs": SCORE_SUBSTRING,
            "limit": limit,
        }
        where = ["(lower(e.name) LIKE %(sub)s OR lower(e.id) LIKE %(sub)s)"]
        if kinds:
            where.append("e.kind = ANY(%(kinds)s)")
            params["kinds"] = list(kinds)
        if town:
            where.append("e.town = %(town)s")
            params["town"] = town
        if visible is not None:
            if not visible:
                return []
            where.append("(e.kind, e.id) IN (SELECT * FROM unnest(%(vk)s::text[], %(vi)s::text[]))")
            params["vk"] = [k for k, _ in visible]
            params["vi"] = [i for _, i in visible]
        score = (
            "CASE WHEN lower(e.id) = %(q)s THEN %(exact)s"
            " WHEN lower(e.name) LIKE %(prefix)s OR lower(e.id) LIKE %(prefix)s THEN %(pre)s"
            " ELSE %(subs)s END"
        )
        page = ""
        if after is not None:
            params.update({"as": after[0], "an": after[1], "ak": after[2], "ai": after[3]})
            page = (
                'WHERE s.score < %(as)s OR (s.score = %(as)s AND (s.name COLLATE "C", s.kind COLLATE "C",'
                ' s.id COLLATE "C") > (%(an)s, %(ak)s, %(ai)s))'
            )
        sql = f"""
            SELECT * FROM (
                SELECT {_ENTITY_COLUMNS}, ({score})::float8 AS score
                  FROM entities e WHERE {" AND ".join(where)}
            ) s {page}
            ORDER BY s.score DESC, s.name COLLATE "C", s.kind COLLATE "C", s.id COLLATE "C"
            LIMIT %(limit)s"""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(sql, params).fetchall()
        return [(_entity(r), float(r["score"])) for r in rows]

    def within_box(
        self,
        box: tuple[float, float, float, float],
        *,
        kinds: Sequence[str],
        visible: set[Key] | None,
    ) -> list[EntityRow]:
        """Entities with a location inside the box (min_lat, max_lat, min_lon, max_lon)."""
        params: dict[str, Any] = {"a": box[0], "b": box[1], "c": box[2], "d": box[3]}
        where = ["e.latitude IS NOT NULL", "e.latitude BETWEEN %(a)s AND %(b)s"]
        if box[2] >= -180.0 and box[3] <= 180.0:
            where.append("e.longitude BETWEEN %(c)s AND %(d)s")
        if kinds:
            where.append("e.kind = ANY(%(kinds)s)")
            params["kinds"] = list(kinds)
        if visible is not None:
            if not visible:
                return []
            where.append("(e.kind, e.id) IN (SELECT * FROM unnest(%(vk)s::text[], %(vi)s::text[]))")
            params["vk"] = [k for k, _ in visible]
            params["vi"] = [i for _, i in visible]
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_ENTITY_COLUMNS} FROM entities e WHERE {' AND '.join(where)}", params
            ).fetchall()
        return [_entity(r) for r in rows]

    def timeline(
        self,
        kind: str,
        id_: str,
        *,
        domains: Sequence[str],
        kinds: Sequence[str],
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[TimelineRow]:
        """The entity's timeline oldest first (then by event id), filtered; ``after`` the last (at, id)."""
        params: dict[str, Any] = {"k": kind, "i": id_, "limit": limit}
        where = ["kind = %(k)s", "id = %(i)s"]
        if domains:
            where.append("domain = ANY(%(domains)s)")
            params["domains"] = list(domains)
        if kinds:
            where.append("ce_type = ANY(%(kinds)s)")
            params["kinds"] = list(kinds)
        if start is not None:
            where.append("at >= %(start)s")
            params["start"] = start
        if end is not None:
            where.append("at < %(end)s")
            params["end"] = end
        if after is not None:
            where.append("(at, event_id) > (%(aat)s, %(aid)s)")
            params["aat"], params["aid"] = after
        rows = self._conn.execute(
            f"SELECT at, domain, ce_type, summary, event_id FROM entity_timeline WHERE {' AND '.join(where)}"
            " ORDER BY at, event_id LIMIT %(limit)s",
            params,
        ).fetchall()
        return [TimelineRow(*r) for r in rows]
