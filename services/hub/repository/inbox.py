"""SQL of the inbox family: items, their occurrences and sources, incidents, escalation rounds and the
hub events waiting for their item (hub_0002_inbox.sql). The subject's name and town are joined from the
entities family's table when an item is read."""

# Queries are composed only from this module's constant fragments; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf.message import Message
from psycopg.rows import dict_row

from services.hub.domain.inbox import (
    Action,
    EscalationFact,
    InboxFilter,
    InboxItem,
    Incident,
    ItemAction,
    ItemKind,
    ItemState,
    ItemStatus,
    Occurrence,
    OccurrenceFact,
    Severity,
    SourceSignal,
    item_state,
)
from services.platform.outbox import OutboxWriter
from services.platform.repository import SqlPart

__all__ = ["INBOX_CHANNEL_SQL", "EscalationCandidate", "InboxSql"]

# The NOTIFY channel of the inbox's changes, per schema (LISTEN is per database; tests share one, and a
# rebuild's fresh schema would have a channel of its own).
INBOX_CHANNEL_SQL = "left('cityhub_inbox_' || current_schema(), 63)"

Row = dict[str, Any]

_ITEM_COLUMNS = """
    i.item_id, i.kind, i.domain, i.severity, i.effective_severity, i.status, i.subject_kind, i.subject_id,
    i.title, i.source_id, i.opened_at, i.last_occurred_at, i.occurrence_count, i.escalated,
    i.escalation_round, i.incident_id, i.acknowledged_at, i.acknowledged_by, i.resolved_at, i.resolved_by,
    coalesce(e.name, '') AS subject_name, coalesce(e.town, '') AS town
"""
_ITEM_FROM = """
FROM inbox_items i
LEFT JOIN entities e ON e.kind = i.subject_kind AND e.id = i.subject_id
"""
_ITEM_SELECT = f"SELECT {_ITEM_COLUMNS} {_ITEM_FROM}"


@dataclass(frozen=True, slots=True)
class EscalationCandidate:
    item: InboxItem
    last_round: int
    last_at: datetime | None


def _item(row: Row) -> InboxItem:
    return InboxItem(
        item_id=row["item_id"],
        kind=ItemKind(row["kind"]),
        severity=Severity(row["severity"]),
        effective_severity=Severity(row["effective_severity"]),
        status=ItemStatus(row["status"]),
        subject_kind=row["subject_kind"],
        subject_id=row["subject_id"],
        domain=row["domain"],
        title=row["title"],
        opened_at=row["opened_at"],
        last_occurred_at=row["last_occurred_at"],
        occurrence_count=row["occurrence_count"],
        source_id=row["source_id"],
        escalated=row["escalated"],
        escalation_round=row["escalation_round"],
        incident_id=row["incident_id"],
        acknowledged_at=row["acknowledged_at"],
        acknowledged_by=row["acknowledged_by"],
        resolved_at=row["resolved_at"],
        resolved_by=row["resolved_by"],
        subject_name=row["subject_name"],
        town=row["town"],
    )


def _subjects_sql(subjects: set[tuple[str, str]] | None, where: list[str], params: dict[str, Any]) -> None:
    """Only items whose subject is in ``subjects`` (None: every item)."""
    if subjects is None:
        return
    where.append(
        "(i.subject_kind, i.subject_id) IN (SELECT * FROM unnest(%(s_kinds)s::text[], %(s_ids)s::text[]))"
    )
    ordered = sorted(subjects)
    params["s_kinds"] = [k for k, _ in ordered]
    params["s_ids"] = [i for _, i in ordered]


def _filter_sql(flt: InboxFilter) -> tuple[list[str], dict[str, Any]]:
    where: list[str] = []
    params: dict[str, Any] = {}
    if flt.towns:
        where.append("coalesce(e.town, '') = ANY(%(towns)s)")
        params["towns"] = sorted(flt.towns)
    if flt.min_severity is not None:
        where.append("i.effective_severity = ANY(%(severities)s)")
        params["severities"] = [s.value for s in Severity if s.rank >= flt.min_severity.rank]
    if flt.domains:
        where.append("i.domain = ANY(%(domains)s)")
        params["domains"] = sorted(flt.domains)
    if flt.statuses:
        where.append("i.status = ANY(%(statuses)s)")
        params["statuses"] = sorted(s.value for s in flt.statuses)
    return where, params


class InboxSql(SqlPart):
    # --- publishing and change notices (in the caller's transaction) ------------------------------------

    def publish_inbox_event(
        self, outbox: OutboxWriter, *, topic: str, key: str, message: Message, event_id: str, time: datetime
    ) -> None:
        """A hub event into the outbox on this connection (the consumer's transaction)."""
        outbox.add(
            self._conn, key=key, subject=key, message=message, topic=topic, event_id=event_id, time=time
        )

    def notify_inbox_change(self, item_id: str, change: str) -> None:
        """Tell the watch feeds (every replica) once this transaction commits."""
        payload = json.dumps({"item_id": item_id, "change": change}, separators=(",", ":"))
        self._conn.execute(f"SELECT pg_notify({INBOX_CHANNEL_SQL}, %s)", (payload,))

    def inbox_channel(self) -> str:
        row = self._conn.execute(f"SELECT {INBOX_CHANNEL_SQL}").fetchone()
        return str(row[0]) if row else ""

    # --- items ------------------------------------------------------------------------------------------

    def inbox_item(self, item_id: str, *, for_update: bool = False) -> InboxItem | None:
        if for_update:
            # Lock the item's row (not the joined entity's) before reading it whole.
            self._conn.execute("SELECT 1 FROM inbox_items WHERE item_id = %s FOR UPDATE", (item_id,))
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"{_ITEM_SELECT} WHERE i.item_id = %s", (item_id,)).fetchone()
        return None if row is None else _item(row)

    def inbox_items_by_ids(self, item_ids: Sequence[str]) -> dict[str, InboxItem]:
        if not item_ids:
            return {}
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(f"{_ITEM_SELECT} WHERE i.item_id = ANY(%s)", (list(item_ids),)).fetchall()
        return {row["item_id"]: _item(row) for row in rows}

    def inbox_item_exists(self, item_id: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM inbox_items WHERE item_id = %s", (item_id,)).fetchone()
        return row is not None

    def insert_inbox_item(self, item: InboxItem) -> None:
        self._conn.execute(
            """
            INSERT INTO inbox_items
                (item_id, kind, domain, severity, effective_severity, status, subject_kind, subject_id, title,
                 source_id, opened_at, last_occurred_at, occurrence_count)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (
                item.item_id,
                item.kind.value,
                item.domain,
                item.severity.value,
                item.effective_severity.value,
                item.status.value,
                item.subject_kind,
                item.subject_id,
                item.title,
                item.source_id,
                item.opened_at,
                item.last_occurred_at,
                item.occurrence_count,
            ),
        )

    def set_inbox_item_state(self, item_id: str, state: ItemState) -> None:
        """The item's row as its facts decide (domain.inbox.item_state)."""
        self._conn.execute(
            """
            UPDATE inbox_items SET severity = %s, effective_severity = %s, status = %s, opened_at = %s,
                last_occurred_at = %s, occurrence_count = %s, source_id = %s, escalated = %s,
                escalation_round = %s, acknowledged_at = %s, acknowledged_by = %s, resolved_at = %s,
                resolved_by = %s
            WHERE item_id = %s
            """,
            (
                state.severity.value,
                state.effective_severity.value,
                state.status.value,
                state.opened_at,
                state.last_occurred_at,
                state.occurrence_count,
                state.source_id,
                state.escalated,
                state.escalation_round,
                state.acknowledged_at,
                state.acknowledged_by,
                state.resolved_at,
                state.resolved_by,
                item_id,
            ),
        )

    def list_inbox_items(
        self,
        flt: InboxFilter,
        after: tuple[datetime, str] | None,
        limit: int,
        subjects: set[tuple[str, str]] | None = None,
    ) -> list[InboxItem]:
        """Newest first (opened_at, item_id descending), after the cursor; ``subjects``: the visible ones."""
        where, params = _filter_sql(flt)
        _subjects_sql(subjects, where, params)
        if after is not None:
            where.append("(i.opened_at, i.item_id) < (%(after_at)s, %(after_id)s)")
            params.update(after_at=after[0], after_id=after[1])
        params["limit"] = limit
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"{_ITEM_SELECT} {clause} ORDER BY i.opened_at DESC, i.item_id DESC LIMIT %(limit)s", params
            ).fetchall()
        return [_item(row) for row in rows]

    def items_opened_between(self, start: datetime, end: datetime) -> list[InboxItem]:
        """Every item opened in [start, end] (resolved or not: correlation decides), oldest first."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"{_ITEM_SELECT} WHERE i.opened_at BETWEEN %s AND %s ORDER BY i.opened_at, i.item_id",
                (start, end),
            ).fetchall()
        return [_item(row) for row in rows]

    def inbox_items_at(self, subjects: Sequence[tuple[str, str]]) -> list[str]:
        """The ids of every item at one of ``subjects`` (kind, id)."""
        if not subjects:
            return []
        rows = self._conn.execute(
            "SELECT item_id FROM inbox_items WHERE (subject_kind, subject_id) IN"
            " (SELECT * FROM unnest(%s::text[], %s::text[])) ORDER BY item_id",
            ([k for k, _ in subjects], [i for _, i in subjects]),
        ).fetchall()
        return [str(r[0]) for r in rows]

    # --- occurrences and sources ------------------------------------------------------------------------

    def add_inbox_occurrence(self, item_id: str, occurrence: Occurrence, severity: Severity) -> bool:
        """False when this event is already an occurrence of the item (a replayed event)."""
        row = self._conn.execute(
            "INSERT INTO inbox_occurrences (item_id, event_id, at, summary, source_id, severity)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (item_id, occurrence.event_id, occurrence.at, occurrence.summary, occurrence.source_id,
             severity.value),
        ).fetchone()  # fmt: skip
        return row is not None

    def inbox_occurrences(self, item_id: str) -> list[Occurrence]:
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT event_id, at, summary, source_id FROM inbox_occurrences WHERE item_id = %s"
                " ORDER BY at, event_id",
                (item_id,),
            ).fetchall()
        return [Occurrence(r["event_id"], r["at"], r["summary"], r["source_id"]) for r in rows]

    def add_inbox_source_signal(self, kind: ItemKind, signal: SourceSignal) -> bool:
        """Record what the domain said about a source; False when this event is recorded already."""
        row = self._conn.execute(
            "INSERT INTO inbox_source_signals (kind, source_id, signal, event_id, at, by)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (kind.value, signal.source_id, signal.signal.value, signal.event_id, signal.at, signal.by),
        ).fetchone()
        return row is not None

    def inbox_items_with_source(self, kind: ItemKind, source_id: str) -> list[str]:
        """The items (of ``kind``) with an occurrence of the source."""
        rows = self._conn.execute(
            "SELECT DISTINCT o.item_id FROM inbox_occurrences o JOIN inbox_items i USING (item_id)"
            " WHERE i.kind = %s AND o.source_id = %s ORDER BY o.item_id",
            (kind.value, source_id),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def add_inbox_action(self, item_id: str, action: ItemAction) -> bool:
        """Record the hub's acknowledgement or resolution of an item (opened yet or not)."""
        row = self._conn.execute(
            "INSERT INTO inbox_item_actions (item_id, event_id, action, at, by) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            (item_id, action.event_id, action.action.value, action.at, action.by),
        ).fetchone()
        return row is not None

    def refresh_inbox_item(self, item_id: str) -> tuple[InboxItem | None, InboxItem | None]:
        """Recompute the item's row from its facts; (before, after), both None when no such item."""
        before = self.inbox_item(item_id, for_update=True)
        if before is None:
            return None, None
        facts = self.inbox_item_facts(item_id, before.kind)
        self.set_inbox_item_state(item_id, item_state(before.domain, *facts))
        return before, self.inbox_item(item_id)

    def inbox_item_facts(
        self, item_id: str, kind: ItemKind
    ) -> tuple[list[OccurrenceFact], list[SourceSignal], list[ItemAction], list[EscalationFact]]:
        """Everything recorded about an item, from which its state is computed."""
        occurrences = [
            OccurrenceFact(r[0], r[1], Severity(r[2]) if r[2] else Severity.INFO, r[3])
            for r in self._conn.execute(
                "SELECT event_id, at, severity, source_id FROM inbox_occurrences WHERE item_id = %s",
                (item_id,),
            ).fetchall()
        ]
        sources = sorted({o.source_id for o in occurrences if o.source_id})
        signals = [
            SourceSignal(r[0], Action(r[1]), r[2], r[3], r[4])
            for r in self._conn.execute(
                "SELECT source_id, signal, at, by, event_id FROM inbox_source_signals"
                " WHERE kind = %s AND source_id = ANY(%s)",
                (kind.value, sources),
            ).fetchall()
        ]
        actions = [
            ItemAction(r[0], Action(r[1]), r[2], r[3])
            for r in self._conn.execute(
                "SELECT event_id, action, at, by FROM inbox_item_actions WHERE item_id = %s", (item_id,)
            ).fetchall()
        ]
        escalations = [
            EscalationFact(r[0], Severity(r[1]), r[2])
            for r in self._conn.execute(
                "SELECT round, severity, published_at FROM inbox_escalations WHERE item_id = %s", (item_id,)
            ).fetchall()
        ]
        return occurrences, signals, actions, escalations

    def inbox_open_sources(self, item_id: str, kind: ItemKind) -> list[str]:
        """The item's sources the domain has neither acknowledged nor cleared."""
        rows = self._conn.execute(
            "SELECT DISTINCT o.source_id FROM inbox_occurrences o WHERE o.item_id = %s AND o.source_id <> ''"
            " AND NOT EXISTS (SELECT 1 FROM inbox_source_signals s WHERE s.kind = %s"
            "                 AND s.source_id = o.source_id) ORDER BY o.source_id",
            (item_id, kind.value),
        ).fetchall()
        return [str(r[0]) for r in rows]

    # --- incidents --------------------------------------------------------------------------------------

    def put_inbox_incident(
        self, incident_id: str, opened_at: datetime, severity: Severity, reasons: Sequence[str]
    ) -> None:
        self._conn.execute(
            "INSERT INTO inbox_incidents (incident_id, opened_at, severity, reasons) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (incident_id) DO UPDATE SET opened_at = excluded.opened_at,"
            " severity = excluded.severity, reasons = excluded.reasons",
            (incident_id, opened_at, severity.value, list(reasons)),
        )

    def set_inbox_incident_of(self, item_ids: Sequence[str], incident_id: str) -> None:
        """Put the items in the incident ('' for none)."""
        self._conn.execute(
            "UPDATE inbox_items SET incident_id = %s WHERE item_id = ANY(%s) AND incident_id <> %s",
            (incident_id, list(item_ids), incident_id),
        )

    def drop_empty_inbox_incidents(self, incident_ids: Sequence[str]) -> None:
        """Remove the incidents no item belongs to any more (their component split or was renamed)."""
        self._conn.execute(
            "DELETE FROM inbox_incidents n WHERE n.incident_id = ANY(%s)"
            " AND NOT EXISTS (SELECT 1 FROM inbox_items i"
            " WHERE i.incident_id = n.incident_id AND i.incident_id <> '')",
            (list(incident_ids),),
        )

    def inbox_incident(self, incident_id: str) -> Incident | None:
        found = self._incidents("WHERE n.incident_id = %(id)s", {"id": incident_id}, "")
        return found[0] if found else None

    def list_inbox_incidents(
        self,
        towns: Sequence[str],
        *,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
        subjects: set[tuple[str, str]] | None = None,
    ) -> list[Incident]:
        """Newest first; ``subjects``: only incidents with an item at one of them (the visible ones)."""
        where: list[str] = []
        params: dict[str, Any] = {"limit": limit}
        if subjects is not None:
            inner: list[str] = []
            _subjects_sql(subjects, inner, params)
            where.append(
                f"EXISTS (SELECT 1 FROM inbox_items i WHERE i.incident_id = n.incident_id"
                f" AND i.incident_id <> '' AND {inner[0]})"
            )
        if start is not None:
            where.append("n.opened_at >= %(start)s")
            params["start"] = start
        if end is not None:
            where.append("n.opened_at < %(end)s")
            params["end"] = end
        if towns:
            where.append("t.town = ANY(%(towns)s)")
            params["towns"] = list(towns)
        if after is not None:
            where.append("(n.opened_at, n.incident_id) < (%(after_at)s, %(after_id)s)")
            params.update(after_at=after[0], after_id=after[1])
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self._incidents(
            clause, params, "ORDER BY n.opened_at DESC, n.incident_id DESC LIMIT %(limit)s"
        )

    def _incidents(self, where: str, params: dict[str, Any], tail: str) -> list[Incident]:
        # An incident's town is its earliest item's subject's town: read through the first of the ordered
        # ids, by primary key. ("incident_id <> ''" lets PostgreSQL use the partial index
        # inbox_items_incident: a parameter does not prove the index's predicate. Without it, and with a
        # "LIMIT 1" over the items, each read walked every item in the inbox — 30 ms at 40,000 items, three
        # reads per alert correlated, so the consumer fell to ~80 events/s as the inbox grew. "OFFSET 0"
        # keeps the planner from pulling x up into the query, which put its ARRAY subplan in both places
        # x.item_ids is used: the incident's items were read twice.)
        sql = f"""
            SELECT n.incident_id, n.opened_at, n.severity, n.reasons, x.item_ids, t.town
            FROM inbox_incidents n
            CROSS JOIN LATERAL (
                SELECT ARRAY(SELECT m.item_id FROM inbox_items m
                             WHERE m.incident_id = n.incident_id AND m.incident_id <> ''
                             ORDER BY m.opened_at, m.item_id) AS item_ids
                OFFSET 0
            ) x
            LEFT JOIN LATERAL (
                SELECT coalesce(e.town, '') AS town FROM inbox_items i
                LEFT JOIN entities e ON e.kind = i.subject_kind AND e.id = i.subject_id
                WHERE i.item_id = x.item_ids[1]
            ) t ON TRUE
            {where} {tail}
        """
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(sql, params).fetchall()
        return [
            Incident(
                incident_id=r["incident_id"],
                item_ids=tuple(r["item_ids"]),
                reasons=tuple(r["reasons"]),
                opened_at=r["opened_at"],
                severity=Severity(r["severity"]),
                town=r["town"] or "",
            )
            for r in rows
        ]

    # --- escalation -------------------------------------------------------------------------------------

    def try_escalation_lock(self) -> bool:
        """One escalator at a time across replicas (released with the transaction)."""
        row = self._conn.execute(
            "SELECT pg_try_advisory_xact_lock(hashtext('cityhub_hub_escalation'),"
            " 'inbox_items'::regclass::oid::int)"
        ).fetchone()
        return bool(row and row[0])

    def escalation_candidates(
        self, now: datetime, deadlines_s: Mapping[str, float], reminder_s: float, limit: int
    ) -> list[EscalationCandidate]:
        """OPEN items whose next round is due at ``now`` (round 1: opened_at + the severity's deadline; then
        the last round + the reminder interval), the most overdue first, with their last published round."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"""
                SELECT * FROM (
                    SELECT {_ITEM_COLUMNS}, coalesce(x.round, 0) AS last_round, x.published_at AS last_at,
                           CASE WHEN x.round IS NULL
                                THEN i.opened_at + make_interval(
                                    secs => coalesce((%(deadlines)s::jsonb ->> i.severity)::float8, 0))
                                ELSE x.published_at + make_interval(secs => %(reminder)s) END AS due_at
                    {_ITEM_FROM}
                    LEFT JOIN LATERAL (
                        SELECT round, published_at FROM inbox_escalations s WHERE s.item_id = i.item_id
                        ORDER BY round DESC LIMIT 1
                    ) x ON TRUE
                    WHERE i.status = 'OPEN'
                ) c
                WHERE c.due_at <= %(now)s ORDER BY c.due_at, c.item_id LIMIT %(limit)s
                """,
                {
                    "deadlines": json.dumps(dict(deadlines_s)),
                    "reminder": reminder_s,
                    "now": now,
                    "limit": limit,
                },
            ).fetchall()
        return [EscalationCandidate(_item(r), r["last_round"], r["last_at"]) for r in rows]

    def record_inbox_escalation(self, item_id: str, round_: int, severity: Severity, at: datetime) -> bool:
        """False when that round is recorded already (published by another replica, or applied)."""
        row = self._conn.execute(
            "INSERT INTO inbox_escalations (item_id, round, severity, published_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            (item_id, round_, severity.value, at),
        ).fetchone()
        return row is not None
