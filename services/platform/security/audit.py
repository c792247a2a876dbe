"""The append-only, hash-chained audit log (table ``audit_log`` in each service's schema).

``row_hash = sha256(prev_hash + canonical_json(row))`` where the canonical JSON has sorted keys, no
whitespace and the time in UTC with microseconds, so the hash can be recomputed from what is stored.
Appends are serialised per table with a transaction-scoped advisory lock keyed by the table's oid: two
appends can never both link to the same predecessor, and readers are never blocked.

The chain shows any row changed, removed or inserted in the middle. It cannot show a history rewritten
with the chain recomputed after it (what a database superuser could do), nor rows cut off the end: for
that the service publishes its head (last id and hash) as an :class:`Anchor` outside the database
(:mod:`services.platform.security.anchors`), and :func:`verify_rows` checks every anchor still matches.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from services.platform.logs import get_logger
from services.platform.security.redaction import redact_text

__all__ = [
    "GENESIS_HASH",
    "Anchor",
    "AuditEntry",
    "AuditLog",
    "AuditRow",
    "ChainReport",
    "canonical_json",
    "chain_hash",
    "verify_rows",
]

GENESIS_HASH = "0" * 64
# Advisory-lock keys for audit tables live above every oid, away from other users of advisory locks.
_LOCK_BASE = 0x0A0D17 << 32
_MAX_TEXT = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
log = get_logger()

JsonValue = str | int | bool | None | Sequence["JsonValue"] | Mapping[str, "JsonValue"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What happened. ``action``: ``read`` (sensitive fields shown), ``refused`` (a sensitive read turned
    away) or ``access_change`` (who may see what changed: a token issued, a role granted...)."""

    actor: str
    actor_roles: tuple[str, ...]
    action: str
    rpc: str
    subject: str
    fields: tuple[str, ...]
    purpose: str
    outcome: str
    request_id: str = ""
    trace_id: str = ""
    details: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    entry: AuditEntry
    prev_hash: str
    row_hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            **_content(self.id, self.at, self.entry),
            "prev_hash": self.prev_hash,
            "row_hash": self.row_hash,
        }


@dataclass(frozen=True, slots=True)
class Anchor:
    """A chain head recorded outside the database: row ``head_id`` had ``head_hash`` when it was taken.
    ``where`` says where it was found (topic, partition, offset), for messages."""

    head_id: int
    head_hash: str
    anchored_at: datetime | None = None
    where: str = ""

    def describe(self) -> str:
        details = [self.where] if self.where else []
        if self.anchored_at is not None:
            details.append(f"anchored {self.anchored_at.astimezone(UTC).isoformat(timespec='seconds')}")
        return f"anchor of row {self.head_id}" + (f" ({', '.join(details)})" if details else "")


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of checking one table's chain (and the anchors given with it).

    ``broken_anchor`` is set when the chain holds up to it but no longer matches an anchor (then
    ``first_broken_id`` is the anchored row's id); ``anchors_checked`` counts the anchors found matching and
    ``newest_anchor_id`` is the highest anchored id given."""

    rows: int
    first_broken_id: int | None
    reason: str
    head_id: int | None
    head_hash: str
    anchors_checked: int = 0
    newest_anchor_id: int | None = None
    broken_anchor: Anchor | None = None

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


def _clean(text: str, limit: int = _MAX_TEXT) -> str:
    # Free text (a stated purpose, a subject taken from a request) must not smuggle an identity number
    # into the log in clear, nor characters PostgreSQL text cannot hold.
    return redact_text(_CONTROL.sub(" ", text))[:limit]


def _check_json(value: object, where: str) -> None:
    # Only types that survive a JSONB round trip exactly, or the stored hash could not be recomputed.
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_json(item, where)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be strings")
            _check_json(item, where)
        return
    raise TypeError(f"{where}: {type(value).__name__} is not allowed (str, int, bool, None, list, dict)")


def _content(row_id: int, at: datetime, entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": row_id,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "actor_roles": list(entry.actor_roles),
        "action": entry.action,
        "rpc": entry.rpc,
        "subject": entry.subject,
        "fields": list(entry.fields),
        "purpose": entry.purpose,
        "outcome": entry.outcome,
        "request_id": entry.request_id,
        "trace_id": entry.trace_id,
        "details": dict(entry.details),
    }


def canonical_json(row_id: int, at: datetime, entry: AuditEntry) -> str:
    return json.dumps(_content(row_id, at, entry), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, row_id: int, at: datetime, entry: AuditEntry) -> str:
    return hashlib.sha256((prev_hash + canonical_json(row_id, at, entry)).encode("utf-8")).hexdigest()


def verify_rows(rows: Iterator[AuditRow] | Sequence[AuditRow], anchors: Iterable[Anchor] = ()) -> ChainReport:
    """Check a chain given in id order, and that each anchored row still has its anchored hash.

    Names the first problem in chain order: a row whose link or content does not match, or the first anchor
    whose row now hashes differently (history rewritten and the chain recomputed up to it) or is gone
    (removed, or cut off the end)."""
    pending = sorted(anchors, key=lambda a: a.head_id)
    newest = pending[-1].head_id if pending else None
    next_anchor = 0
    checked = 0
    previous = GENESIS_HASH
    previous_id: int | None = None
    count = 0

    def broken(row_id: int, reason: str, anchor: Anchor | None = None) -> ChainReport:
        return ChainReport(count, row_id, reason, previous_id, previous, checked, newest, anchor)

    for row in rows:
        count += 1
        if next_anchor < len(pending) and pending[next_anchor].head_id < row.id:
            anchor = pending[next_anchor]
            return broken(
                anchor.head_id, f"row {anchor.head_id} is gone (removed and the chain recomputed)", anchor
            )
        if row.prev_hash != previous:
            where = f"row {previous_id}" if previous_id is not None else "the start of the log"
            return broken(row.id, f"prev_hash does not match {where} (a row removed or inserted)")
        if chain_hash(row.prev_hash, row.id, row.at, row.entry) != row.row_hash:
            return broken(row.id, "content does not match row_hash (the row was changed)")
        while next_anchor < len(pending) and pending[next_anchor].head_id == row.id:
            anchor = pending[next_anchor]
            if anchor.head_hash != row.row_hash:
                return broken(
                    row.id,
                    f"row {row.id} now hashes to {row.row_hash[:12]}…, anchored as {anchor.head_hash[:12]}… "
                    f"(history up to row {row.id} was rewritten and the chain recomputed)",
                    anchor,
                )
            checked += 1
            next_anchor += 1
        previous, previous_id = row.row_hash, row.id
    if next_anchor < len(pending):
        anchor = pending[next_anchor]
        end = f"ends at row {previous_id}" if previous_id is not None else "is empty"
        return broken(
            anchor.head_id, f"row {anchor.head_id} is gone: the log now {end} (rows cut off)", anchor
        )
    return ChainReport(count, None, "", previous_id, previous, checked, newest)


_COLUMNS = (
    "id, at, actor, actor_roles, action, rpc, subject, fields, purpose, outcome, request_id, trace_id, "
    "details, prev_hash, row_hash"
)


def _row(record: Sequence[Any]) -> AuditRow:
    (
        row_id,
        at,
        actor,
        roles,
        action,
        rpc,
        subject,
        fields,
        purpose,
        outcome,
        request_id,
        trace_id,
        details,
        prev_hash,
        row_hash,
    ) = record
    entry = AuditEntry(
        actor=actor,
        actor_roles=tuple(roles),
        action=action,
        rpc=rpc,
        subject=subject,
        fields=tuple(fields),
        purpose=purpose,
        outcome=outcome,
        request_id=request_id,
        trace_id=trace_id,
        details=details,
    )
    return AuditRow(row_id, at, entry, prev_hash, row_hash)


class AuditLog:
    """The audit log of one schema. ``schema`` may be left out when the pool's search_path points at it
    (as the pools from :func:`services.platform.db.set_up_database` do)."""

    def __init__(self, pool: ConnectionPool, schema: str | None = None) -> None:
        self._pool = pool
        self._schema = schema
        self._table = sql.Identifier(schema, "audit_log") if schema else sql.Identifier("audit_log")
        self._regclass = f'"{schema}".audit_log' if schema else "audit_log"
        self._sequence = f'"{schema}".audit_log_id_seq' if schema else "audit_log_id_seq"

    def append(self, entry: AuditEntry, *, at: datetime | None = None) -> AuditRow:
        """Append one row (its own transaction, committed before this returns)."""
        _check_json(dict(entry.details), "details")
        clean = AuditEntry(
            actor=_clean(entry.actor, 200),
            actor_roles=tuple(sorted(_clean(r, 64) for r in entry.actor_roles)),
            action=_clean(entry.action, 64),
            rpc=_clean(entry.rpc, 200),
            subject=_clean(entry.subject, 200),
            fields=tuple(sorted({_clean(f, 200) for f in entry.fields})),
            purpose=_clean(entry.purpose),
            outcome=_clean(entry.outcome, 64),
            request_id=_clean(entry.request_id, 64),
            trace_id=_clean(entry.trace_id, 64),
            details=entry.details,
        )
        when = (at or datetime.now(UTC)).astimezone(UTC)
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s::bigint + %s::regclass::oid::bigint)",
                (_LOCK_BASE, self._regclass),
            )
            last = conn.execute(
                sql.SQL("SELECT row_hash FROM {} ORDER BY id DESC LIMIT 1").format(self._table)
            ).fetchone()
            prev_hash = str(last[0]) if last else GENESIS_HASH
            next_id = conn.execute("SELECT nextval(%s::regclass)", (self._sequence,)).fetchone()
            assert next_id is not None
            row_id = int(next_id[0])
            row_hash = chain_hash(prev_hash, row_id, when, clean)
            conn.execute(
                sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    self._table, sql.SQL(_COLUMNS), sql.SQL(", ".join(["%s"] * 15))
                ),
                (
                    row_id,
                    when,
                    clean.actor,
                    list(clean.actor_roles),
                    clean.action,
                    clean.rpc,
                    clean.subject,
                    list(clean.fields),
                    clean.purpose,
                    clean.outcome,
                    clean.request_id,
                    clean.trace_id,
                    Jsonb(dict(clean.details)),
                    prev_hash,
                    row_hash,
                ),
            )
        log.info("audit_row_appended", audit_id=row_id, action=clean.action, outcome=clean.outcome)
        return AuditRow(row_id, when, clean, prev_hash, row_hash)

    def rows(self) -> Iterator[AuditRow]:
        """Every row in chain order, streamed with a server-side cursor (the log can be long)."""
        with self._pool.connection() as conn, conn.transaction():
            cursor = conn.cursor(name="audit_log_rows")
            cursor.itersize = 2000
            cursor.execute(sql.SQL("SELECT {} FROM {} ORDER BY id").format(sql.SQL(_COLUMNS), self._table))
            for record in cursor:
                yield _row(record)

    def head(self) -> tuple[int, str] | None:
        """The chain's last row as (id, row_hash), or None while the log is empty. Appends commit in id
        order (they hold the append lock until they commit), so this is always a committed prefix's head."""
        with self._pool.connection() as conn:
            last = conn.execute(
                sql.SQL("SELECT id, row_hash FROM {} ORDER BY id DESC LIMIT 1").format(self._table)
            ).fetchone()
        return None if last is None else (int(last[0]), str(last[1]))

    def check(self, anchors: Iterable[Anchor] = ()) -> ChainReport:
        return verify_rows(self.rows(), anchors)

    def verify(self) -> int | None:
        """The id of the first broken row, or None when the chain holds."""
        return self.check().first_broken_id

    def search(
        self,
        *,
        subject: str | None = None,
        caller: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[AuditRow]:
        """Rows about ``subject``, by ``caller``, in ``[since, until)``; oldest first."""
        conditions: list[sql.Composable] = []
        params: list[Any] = []
        for column, value in (("subject", subject), ("actor", caller)):
            if value:
                conditions.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
                params.append(value)
        if since is not None:
            conditions.append(sql.SQL("at >= %s"))
            params.append(since)
        if until is not None:
            conditions.append(sql.SQL("at < %s"))
            params.append(until)
        where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
        query = sql.SQL("SELECT {} FROM {}{} ORDER BY id LIMIT %s").format(
            sql.SQL(_COLUMNS), self._table, where
        )
        with self._pool.connection() as conn:
            records = conn.execute(query, [*params, limit]).fetchall()
        return [_row(record) for record in records]
