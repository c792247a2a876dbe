"""Rebuild by replay: the hub's views made again from every topic it consumes, compared with the live ones
row for row, and swapped in atomically (``cityhub hub rebuild``; docs/services/hub.md).

1. A fresh schema ``<hub>_rb_<id>`` is provisioned and migrated exactly as the runtime provisions the
   hub's (services/platform/db.set_up_database, its own role and owner role for now).
2. The end offsets of every input topic (the five domains' events and the hub's own) are snapshotted, and
   everything before them is replayed by a consumer of our own (partitions assigned, no group: nothing is
   committed anywhere) through the *same* projectors the live consumer runs, with ``outbox=None`` (a
   rebuild publishes nothing) — deduplicated by event id into the fresh schema's ``processed_events``
   exactly as the platform's idempotent consumer does, many events per transaction.
3. Every projection table (all but the platform's own and yoyo's) is compared with the live schema's:
   ``EXCEPT ALL`` both ways, counted, the first differing rows shown.
4. The swap, only while the live hub is stopped (its consumer group has no members and its role has no
   session): the live group's offsets are set to the snapshot and, in one transaction, the live schema is
   renamed ``<hub>_old_<id>``, the fresh one takes the live name and the live roles, and the platform's
   tables that are history rather than projection (outbox, requests, audit log, redeemed login links) are
   carried over; the hub restarted afterwards continues where the replay stopped.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from google.protobuf.message import Message
from psycopg import sql
from tqdm import tqdm

from services.hub.bootstrap import MIGRATIONS, PROJECTION_CONSUMER, config_of
from services.hub.projections import Projector, projector
from services.hub.repository import HubRepository
from services.hub.repository.memory import MemoryHub
from services.hub.settings import HubSettings
from services.hub.usecases.common import HUB_EVENTS_TOPIC, HubConfig, HubContext, HubTx
from services.platform.db import owner_role, set_up_database
from services.platform.kafka import (
    RECONNECT_BACKOFF_MAX_MS,
    EnvelopeError,
    EventEnvelope,
    decode_payload,
    envelope_from_record,
)
from services.platform.logs import get_logger

__all__ = [
    "HISTORY_TABLES",
    "RebuildError",
    "Replay",
    "SwapRefusedError",
    "TableDiff",
    "catch_up",
    "compare",
    "drop_rebuild",
    "live_group",
    "projection_tables",
    "rebuild",
    "replay",
    "swap",
]

# The tables that are operational memory and history, not projections (never compared): the platform's,
# and the hub's record of redeemed login links (made by calls, not events). The rebuild makes its own
# processed_events (the replay's ids); the others are carried over from the live schema.
HISTORY_TABLES = frozenset({"outbox", "processed_events", "requests", "audit_log", "login_links_redeemed"})
_CARRIED_OVER = ("outbox", "requests", "audit_log", "login_links_redeemed")
_SEQUENCES = {"outbox": "id", "audit_log": "id"}
_DEFAULT_BATCH = 5000
_POLL_MS = 500
# How often a rebuild waiting for the hub to stop looks.
_STOP_POLL_S = 0.5
# Rows of each side shown per differing table.
_SAMPLE_ROWS = 5
log = get_logger()

Echo = Callable[[str], None]
Engine = Literal["memory", "sql"]


class RebuildError(RuntimeError):
    """The rebuild cannot go on (a message for the operator)."""


class SwapRefusedError(RebuildError):
    """The live hub is running: a swap under it would lose what it writes meanwhile."""


@dataclass(frozen=True, slots=True)
class Partition:
    topic: str
    partition: int


@dataclass(slots=True)
class Replay:
    """What a replay did: the fresh schema, the offsets it stopped at, the counts and the speed."""

    rebuild_id: str
    live_schema: str
    fresh_schema: str
    snapshot: dict[Partition, int]
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Records replayed per second."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class TableDiff:
    """One table's rows only in the live schema and only in the fresh one (counts and the first few)."""

    table: str
    live_only: int = 0
    fresh_only: int = 0
    note: str = ""
    live_sample: list[dict[str, Any]] = field(default_factory=list)
    fresh_sample: list[dict[str, Any]] = field(default_factory=list)


def _echo_stderr(text: str) -> None:
    print(text, file=sys.stderr)


def live_group(settings: HubSettings) -> str:
    """The live projection consumer's group (the platform names it "<service name>.<consumer>")."""
    return f"{settings.service_name}.{PROJECTION_CONSUMER}"


def _topics(settings: HubSettings) -> list[str]:
    return [*settings.domain_topics, settings.hub_events_topic]


def _live_role(settings: HubSettings) -> str:
    # As the runtime provisions it (set_up_database's default role name).
    return f"cityhub_{settings.service_name}"


# --- 1 + 2: the fresh schema and the replay ------------------------------------------------------------


class _NoUnitOfWork:
    """Projections write through the consumer's connection; a rebuild has no other."""

    @contextmanager
    def transaction(self) -> Iterator[HubTx]:
        raise RebuildError("a projection asked for a unit of work: projections must use the consumer's")
        yield  # pragma: no cover - makes this a generator

    @contextmanager
    def read(self) -> Iterator[HubRepository]:
        raise RebuildError("a projection asked for a unit of work: projections must use the consumer's")
        yield  # pragma: no cover - makes this a generator


def replay(
    settings: HubSettings,
    *,
    rebuild_id: str | None = None,
    batch_size: int = _DEFAULT_BATCH,
    progress: bool = True,
    echo: Echo = _echo_stderr,
    engine: Engine = "memory",
) -> Replay:
    """Provision ``<hub>_rb_<id>``, snapshot the input topics' end offsets and replay everything before
    them through the hub's projectors into it. On failure the fresh schema is dropped again.

    ``engine``: "memory" folds in memory and writes each table once (the fast way); "sql" applies each
    batch with SQL as the live consumer does (what memory falls back to; kept to check one against the
    other)."""
    rebuild_id = rebuild_id or secrets.token_hex(4)
    live = settings.service_name
    fresh = f"{live}_rb_{rebuild_id}"
    owner_role(fresh)  # a name too long for PostgreSQL fails here, before anything is made
    result = Replay(rebuild_id, live, fresh, {})
    consumer = _replay_consumer(settings, f"cityhub-{live}-rebuild-{rebuild_id}", batch_size)
    try:
        partitions = _partitions(settings, consumer)
        ends: dict[Any, int] = {tp: int(o) for tp, o in consumer.end_offsets(partitions).items()}
        starts: dict[Any, int] = {tp: int(o) for tp, o in consumer.beginning_offsets(partitions).items()}
        result.snapshot = {Partition(tp.topic, tp.partition): ends[tp] for tp in partitions}
        total = sum(max(ends[tp] - starts[tp], 0) for tp in partitions)
        echo(f"rebuild {rebuild_id}: replaying {total} records of {len(partitions)} partitions into {fresh}")
        pool = set_up_database(settings.dsn, fresh, MIGRATIONS, min_size=1, max_size=1)
        pool.close()
        try:
            with _fresh_connection(settings, fresh) as conn:
                pending = [tp for tp in partitions if ends[tp] > starts[tp]]
                source = _Source(consumer, pending, ends, total, batch_size, progress)
                _replay_into(conn, settings, source, result, engine, echo)
        except BaseException:
            drop_rebuild(settings, rebuild_id)
            raise
    finally:
        consumer.close(autocommit=False)
    echo(
        f"rebuild {rebuild_id}: {result.records} records in {result.seconds:.1f} s"
        f" ({result.rate:,.0f} events/s): {result.applied} applied,"
        f" {result.duplicates} duplicates, {result.skipped} skipped"
    )
    log.info(
        "hub_rebuild_replayed",
        rebuild_id=rebuild_id,
        records=result.records,
        applied=result.applied,
        duplicates=result.duplicates,
        skipped=result.skipped,
        events_per_second=round(result.rate),
    )
    return result


@contextmanager
def _fresh_connection(settings: HubSettings, schema: str) -> Iterator[psycopg.Connection[Any]]:
    """The one connection a replay or a catch-up writes the fresh schema through."""
    with psycopg.connect(settings.dsn, options=f"-c search_path={schema}") as conn:
        # A crash loses only this throw-away schema: no need to wait for each commit's flush.
        conn.execute("SET synchronous_commit = off")
        conn.commit()
        yield conn


def _admin(settings: HubSettings, live: str) -> Any:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_list, client_id=f"cityhub-{live}-rebuild"
    )


def _replay_consumer(settings: HubSettings, client_id: str, batch_size: int) -> Any:
    """A consumer of no group (nothing committed anywhere), reading committed records in large fetches."""
    from kafka import KafkaConsumer

    return KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_list,
        group_id=None,
        client_id=client_id,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_poll_records=batch_size,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
    )


def _partitions(settings: HubSettings, consumer: Any) -> list[Any]:
    from kafka import TopicPartition

    return [
        TopicPartition(topic, p)
        for topic in _topics(settings)
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]


def catch_up(
    settings: HubSettings,
    result: Replay,
    *,
    batch_size: int = _DEFAULT_BATCH,
    progress: bool = True,
    echo: Echo = _echo_stderr,
) -> int:
    """Replay into the fresh schema what reached the topics after its snapshot — the events the live hub
    went on consuming while the replay ran — and move the snapshot to the topics' ends now; returns the
    records replayed. Through SQL, as the live consumer applies them (the fold's tables are written by
    then): the tail is short, so is the wait. Call it once the live hub has stopped, so that nothing
    arrives after the new snapshot that the live views hold and the rebuilt ones do not."""
    consumer = _replay_consumer(
        settings, f"cityhub-{result.live_schema}-catch-up-{result.rebuild_id}", batch_size
    )
    tail = Replay(result.rebuild_id, result.live_schema, result.fresh_schema, {})
    try:
        partitions = _partitions(settings, consumer)
        ends: dict[Any, int] = {tp: int(o) for tp, o in consumer.end_offsets(partitions).items()}
        starts = {tp: result.snapshot.get(Partition(tp.topic, tp.partition), 0) for tp in partitions}
        pending = [tp for tp in partitions if ends[tp] > starts[tp]]
        total = sum(ends[tp] - starts[tp] for tp in pending)
        if pending:
            with _fresh_connection(settings, result.fresh_schema) as conn:
                started = time.monotonic()
                source = _Source(consumer, pending, ends, total, batch_size, progress, starts)
                _replay_sql(conn, projector(_context(settings)), source, tail)
                tail.seconds = time.monotonic() - started
    finally:
        consumer.close(autocommit=False)
    result.snapshot = {Partition(tp.topic, tp.partition): ends[tp] for tp in partitions}
    result.records += tail.records
    result.applied += tail.applied
    result.duplicates += tail.duplicates
    result.skipped += tail.skipped
    echo(
        f"rebuild {result.rebuild_id}: caught up with {tail.records} records that arrived during the replay"
        f" in {tail.seconds:.1f} s: {tail.applied} applied, {tail.duplicates} duplicates,"
        f" {tail.skipped} skipped"
    )
    log.info(
        "hub_rebuild_caught_up", rebuild_id=result.rebuild_id, records=tail.records, applied=tail.applied
    )
    return tail.records


@dataclass(slots=True)
class _Source:
    """The records a replay reads: the consumer, the partitions with records and where they end."""

    consumer: Any
    pending: list[Any]
    ends: dict[Any, int]
    total: int
    batch_size: int
    progress: bool
    # Where to start per partition (a catch-up starts at the previous snapshot); None: the beginning.
    starts: dict[Any, int] | None = None

    def batches(self, desc: str) -> Iterator[list[Any]]:
        """Every record before the snapshot's end offsets, from the start, in polled batches."""
        consumer, pending = self.consumer, self.pending
        consumer.assign(pending)
        if self.starts is None:
            consumer.seek_to_beginning(*pending)
        else:
            for tp in pending:
                consumer.seek(tp, self.starts[tp])
        consumer.resume(*pending)
        remaining = set(pending)
        batch: list[Any] = []
        with tqdm(
            total=self.total,
            unit="ev",
            unit_scale=True,
            file=sys.stderr,
            disable=not self.progress,
            desc=desc,
        ) as bar:
            while remaining:
                polled = consumer.poll(timeout_ms=_POLL_MS, max_records=self.batch_size)
                for tp, records in polled.items():
                    end = self.ends[tp]
                    batch.extend(record for record in records if record.offset < end)
                for tp in list(remaining):
                    if consumer.position(tp) >= self.ends[tp]:
                        remaining.discard(tp)
                done = [tp for tp in pending if tp not in remaining]
                if done:
                    consumer.pause(*done)
                if len(batch) >= self.batch_size or (batch and not remaining):
                    yield batch
                    bar.update(len(batch))
                    batch = []


def _replay_into(  # noqa: PLR0917 - the replay's parts, in one place
    conn: psycopg.Connection[Any],
    settings: HubSettings,
    source: _Source,
    result: Replay,
    engine: Engine,
    echo: Echo,
) -> None:
    """Fold everything in memory and write each table once (repository/memory); if a projection fails
    on an event, which memory cannot undo, replay again through the SQL path, which can."""
    project = projector(_context(settings))
    if not source.pending:
        return
    started = time.monotonic()
    if engine == "sql":
        _replay_sql(conn, project, source, result)
    else:
        try:
            store, applied = _fold_all(project, source, result)
        except _ProjectionFailedError as failure:
            log.warning(
                "hub_rebuild_memory_fold_abandoned",
                event_id=failure.event_id,
                type=failure.ce_type,
                error=str(failure.__cause__),
            )
            echo(
                f"rebuild {result.rebuild_id}: a projection failed on event {failure.event_id}"
                f" ({failure.ce_type}) while folding in memory, which cannot undo half an event;"
                " replaying again through SQL, which can (slower)"
            )
            result.records = result.applied = result.duplicates = result.skipped = 0
            _replay_sql(conn, project, source, result)
        else:
            _write(conn, store, applied)
    result.seconds = time.monotonic() - started


def _context(settings: HubSettings) -> HubContext:
    return fold_context(config_of(settings), settings.hub_events_topic)


def fold_context(config: HubConfig, events_topic: str = HUB_EVENTS_TOPIC) -> HubContext:
    """The projectors' context outside the live consumer (a rebuild, a test's fold): they write through the
    store they are given, and publish nothing — the hub's own topic already holds what it published."""
    return HubContext(uow=_NoUnitOfWork(), config=config, peers={}, outbox=None, events_topic=events_topic)


def _fold_all(project: Projector, source: _Source, result: Replay) -> tuple[MemoryHub, set[str]]:
    """The tables folded in memory, and the ids of the events applied (processed_events' rows)."""
    store = MemoryHub()
    applied: set[str] = set()
    for batch in source.batches("replay"):
        _fold(store, project, batch, result, applied)
    return store, applied


class _ProjectionFailedError(Exception):
    def __init__(self, envelope: EventEnvelope) -> None:
        super().__init__(f"a projection failed on event {envelope.id} ({envelope.type})")
        self.event_id, self.ce_type = envelope.id, envelope.type


def _fold(
    store: MemoryHub, project: Projector, records: Sequence[Any], result: Replay, applied: set[str]
) -> None:
    """Apply a batch to the in-memory tables, each event id once (as processed_events would)."""
    decoded = _decoded(records, result)
    for envelope, message in decoded:
        if envelope.id in applied:
            result.duplicates += 1
            continue
        applied.add(envelope.id)
        try:
            project(store, envelope, message)
        except Exception as error:
            raise _ProjectionFailedError(envelope) from error
        result.applied += 1


def _decoded(records: Sequence[Any], result: Replay) -> list[tuple[EventEnvelope, Message]]:
    """The batch's records read as events; one that is not an event is counted skipped (the live
    consumer dead-letters it)."""
    result.records += len(records)
    decoded: list[tuple[EventEnvelope, Message]] = []
    for record in records:
        try:
            envelope = envelope_from_record(record)
            decoded.append((envelope, decode_payload(envelope.type, envelope.payload)))
        except EnvelopeError:
            result.skipped += 1
    return decoded


def _write(conn: psycopg.Connection[Any], store: MemoryHub, applied: set[str]) -> None:
    """Every table of the fold with one COPY each, in one transaction; then their statistics."""
    tables = store.tables()
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy("COPY processed_events (consumer, event_id) FROM STDIN") as copy:
            for event_id in applied:
                copy.write_row((PROJECTION_CONSUMER, event_id))
        for table, (columns, rows) in tables.items():
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            )
            with cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        # Tables filled in one go have no statistics until autovacuum gets round to them: the catch-up's
        # statements, and the hub started on the swapped-in schema, would be planned blind meanwhile.
        for table in ("processed_events", *tables):
            cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def _replay_sql(conn: psycopg.Connection[Any], project: Projector, source: _Source, result: Replay) -> None:
    """The slow path: each batch applied with SQL as the live consumer applies a poll."""
    repo = HubRepository(conn)
    for batch in source.batches("replay (SQL)"):
        _apply(conn, repo, project, batch, result)


def _apply(
    conn: psycopg.Connection[Any],
    repo: HubRepository,
    project: Projector,
    records: Sequence[Any],
    result: Replay,
) -> None:
    """One batch as the live consumer applies a poll: new ids into processed_events and the projections
    in one transaction; a record that does not decode, or that a projection fails on, is left out (the
    live consumer dead-letters it) — found one by one when the batch as a whole fails."""
    decoded = _decoded(records, result)
    try:
        with conn.transaction():
            ids = list(dict.fromkeys(envelope.id for envelope, _ in decoded))
            fresh_ids = {
                str(row[0])
                for row in conn.execute(
                    "INSERT INTO processed_events (consumer, event_id)"
                    " SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
                    (PROJECTION_CONSUMER, ids),
                ).fetchall()
            }
            applied = 0
            for envelope, message in decoded:
                if envelope.id not in fresh_ids:
                    continue
                fresh_ids.discard(envelope.id)  # a repeat within the batch counts once
                project(repo, envelope, message)
                applied += 1
        result.applied += applied
        result.duplicates += len(decoded) - applied
    except psycopg.OperationalError:
        raise
    except Exception as error:  # noqa: BLE001 - as the live consumer: find the bad record one by one
        log.warning("hub_rebuild_batch_failed_applying_one_by_one", error=str(error))
        with conn.transaction():
            for envelope, message in decoded:
                _apply_one(conn, repo, project, envelope, message, result)


def _apply_one(  # noqa: PLR0917
    conn: psycopg.Connection[Any],
    repo: HubRepository,
    project: Projector,
    envelope: EventEnvelope,
    message: Message,
    result: Replay,
) -> None:
    try:
        with conn.transaction():
            inserted = conn.execute(
                "INSERT INTO processed_events (consumer, event_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (PROJECTION_CONSUMER, envelope.id),
            ).rowcount
            if inserted == 0:
                result.duplicates += 1
                return
            project(repo, envelope, message)
        result.applied += 1
    except psycopg.OperationalError:
        raise
    except Exception as error:  # noqa: BLE001 - the live consumer dead-letters it: so does the replay
        result.skipped += 1
        log.warning("hub_rebuild_record_skipped", event_id=envelope.id, type=envelope.type, error=str(error))


# --- 3: the comparison ---------------------------------------------------------------------------------


def projection_tables(conn: psycopg.Connection[Any], schema: str) -> list[str]:
    """The tables of ``schema`` that are projections: all but the platform's and yoyo's."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY table_name",
        (schema,),
    ).fetchall()
    return [
        str(name)
        for (name,) in rows
        if name not in HISTORY_TABLES and not str(name).startswith(("_yoyo", "yoyo"))
    ]


def _columns(conn: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()
    return [str(name) for (name,) in rows]


def compare(dsn: str, live: str, fresh: str, *, sample: int = _SAMPLE_ROWS) -> list[TableDiff]:
    """Every projection table of the two schemas, row for row; the tables that differ (none: identical)."""
    diffs: list[TableDiff] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        live_tables, fresh_tables = projection_tables(conn, live), projection_tables(conn, fresh)
        for table in sorted(set(live_tables) | set(fresh_tables)):
            if table not in fresh_tables or table not in live_tables:
                where = "live" if table in live_tables else "fresh"
                diffs.append(TableDiff(table, note=f"only in the {where} schema"))
                continue
            columns = _columns(conn, fresh, table)
            if columns != _columns(conn, live, table):
                diffs.append(TableDiff(table, note="the columns differ"))
                continue
            diff = _compare_table(conn, live, fresh, table, columns, sample)
            if diff is not None:
                diffs.append(diff)
    return diffs


def _compare_table(  # noqa: PLR0917
    conn: psycopg.Connection[Any], live: str, fresh: str, table: str, columns: list[str], sample: int
) -> TableDiff | None:
    # Every column as text: EXCEPT needs an equality every type has then (json, geometric types), and
    # PostgreSQL prints floats exactly (shortest round-trip form).
    cols = sql.SQL(", ").join(
        sql.SQL("{}::text AS {}").format(sql.Identifier(c), sql.Identifier(c)) for c in columns
    )
    live_t, fresh_t = sql.Identifier(live, table), sql.Identifier(fresh, table)
    only = sql.SQL("SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b}")
    live_only = only.format(cols=cols, a=live_t, b=fresh_t)
    fresh_only = only.format(cols=cols, a=fresh_t, b=live_t)
    counted = sql.SQL("SELECT (SELECT count(*) FROM ({l}) x), (SELECT count(*) FROM ({f}) y)").format(
        l=live_only, f=fresh_only
    )
    row = conn.execute(counted).fetchone()
    n_live, n_fresh = (int(row[0]), int(row[1])) if row else (0, 0)
    if n_live == 0 and n_fresh == 0:
        return None
    order = sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(columns)))

    def first(query: sql.Composed) -> list[dict[str, Any]]:
        rows = conn.execute(
            sql.SQL("SELECT * FROM ({q}) z ORDER BY {o} LIMIT {n}").format(
                q=query, o=order, n=sql.Literal(sample)
            )
        ).fetchall()
        return [dict(zip(columns, r, strict=True)) for r in rows]

    return TableDiff(table, n_live, n_fresh, live_sample=first(live_only), fresh_sample=first(fresh_only))


def describe(diffs: Sequence[TableDiff]) -> list[str]:
    """The differences as lines for the operator."""
    lines: list[str] = []
    for diff in diffs:
        if diff.note:
            lines.append(f"{diff.table}: {diff.note}")
            continue
        lines.append(
            f"{diff.table}: {diff.live_only} row(s) only in live, {diff.fresh_only} only in the rebuild"
        )
        lines.extend(f"  live:    {row}" for row in diff.live_sample)
        lines.extend(f"  rebuild: {row}" for row in diff.fresh_sample)
    return lines


# --- 4: the swap ---------------------------------------------------------------------------------------


def _check_stopped(settings: HubSettings, admin: Any) -> None:
    group = live_group(settings)
    described = admin.describe_groups([group]).get(group, {})
    members = described.get("members") or []
    if members:
        raise SwapRefusedError(
            f"the live hub is consuming: consumer group {group} has {len(members)} active member(s)"
            f" (state {described.get('group_state')}); stop the hub and run the rebuild again"
        )
    role = _live_role(settings)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND datname = current_database()",
            (role,),
        ).fetchone()
    if row is not None and int(row[0]) > 0:
        raise SwapRefusedError(
            f"the live hub is still connected to the database as {role} ({int(row[0])} session(s)),"
            f" though consumer group {group} has no members; stop the hub and run the rebuild again"
        )


def _wait_stopped(settings: HubSettings, result: Replay, timeout_s: float, echo: Echo) -> None:
    """Until the live hub has stopped (no group member, no database session), or RebuildError."""
    echo(
        f"rebuild {result.rebuild_id}: replayed up to the snapshot; stop the hub now"
        f" (waiting up to {timeout_s:g} s), then what arrived meanwhile is caught up"
    )
    admin = _admin(settings, result.live_schema)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                _check_stopped(settings, admin)
            except SwapRefusedError as running:
                if time.monotonic() >= deadline:
                    raise RebuildError(f"the hub was not stopped within {timeout_s:g} s: {running}") from None
                time.sleep(_STOP_POLL_S)
            else:
                break
    finally:
        admin.close()
    echo(f"rebuild {result.rebuild_id}: the hub has stopped")


def swap(settings: HubSettings, result: Replay, *, echo: Echo = _echo_stderr) -> str:
    """Put the rebuilt schema in the live one's place; returns the name the live one was kept under."""
    from kafka import OffsetAndMetadata, TopicPartition

    live, fresh = result.live_schema, result.fresh_schema
    old = f"{live}_old_{result.rebuild_id}"
    group = live_group(settings)
    admin = _admin(settings, live)
    try:
        _check_stopped(settings, admin)
        before: dict[Any, Any] = admin.list_group_offsets(group).get(group, {})
        offsets = {
            TopicPartition(p.topic, p.partition): OffsetAndMetadata(offset, "", -1)
            for p, offset in result.snapshot.items()
        }
        _alter_offsets(admin, group, offsets)
        try:
            _swap_schemas(settings, live, fresh, old)
        except BaseException:
            # The live schema stays: so do the offsets it had (best effort; the failure is what matters).
            if before:
                _alter_offsets(admin, group, before)
            raise
    finally:
        admin.close()
    echo(f"rebuild {result.rebuild_id}: the live schema {live} is kept as {old}")
    echo(f"rebuild {result.rebuild_id}: the rebuilt schema {fresh} is now {live}")
    echo(
        f"rebuild {result.rebuild_id}: consumer group {group} set to the replay's end offsets"
        f" ({len(offsets)} partitions): the hub started now continues from there"
    )
    log.info("hub_rebuild_swapped", rebuild_id=result.rebuild_id, live=live, old=old)
    return old


def _alter_offsets(admin: Any, group: str, offsets: dict[Any, Any]) -> None:
    if not offsets:
        return
    errors = {
        tp: error for tp, error in admin.alter_group_offsets(group, offsets).items() if error.errno != 0
    }
    if errors:
        names = sorted({e.__name__ for e in errors.values()})
        raise SwapRefusedError(
            f"consumer group {group} refused the new offsets ({', '.join(names)}): is the hub running?"
        )


def _swap_schemas(settings: HubSettings, live: str, fresh: str, old: str) -> None:
    live_role, fresh_role = _live_role(settings), f"cityhub_{fresh}"
    live_owner, fresh_owner = owner_role(live), owner_role(fresh)
    ident = sql.Identifier
    with psycopg.connect(settings.dsn, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('cityhub_provision'))")
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (old,)).fetchone():
            raise RebuildError(f"schema {old} exists already")
        # The platform's history stays with the hub: its unsent events, request memory and audit chain.
        for table in _CARRIED_OVER:
            columns = sql.SQL(", ").join(ident(c) for c in _columns(conn, fresh, table))
            conn.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                    ident(fresh, table), columns, columns, ident(live, table)
                )
            )
        for table, column in _SEQUENCES.items():
            _carry_sequence(conn, f'"{live}".{table}', f'"{fresh}".{table}', column)
        conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(ident(live), ident(old)))
        conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(ident(fresh), ident(live)))
        # The rebuilt objects change hands as provisioning would have made them: the schema and the audit
        # log the owner role's, the rest the service role's.
        conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(ident(fresh_role), ident(live_role)))
        conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(ident(fresh_owner), ident(live_owner)))
        for role in (fresh_role, fresh_owner):
            conn.execute(sql.SQL("DROP OWNED BY {}").format(ident(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(ident(role)))
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(ident(live), ident(live_role)))
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT ON TABLE {} TO {}").format(
                ident(live, "audit_log"), ident(live_role)
            )
        )
        conn.execute(
            sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(
                ident(live, "audit_log_id_seq"), ident(live_role)
            )
        )


def _carry_sequence(conn: psycopg.Connection[Any], live_table: str, fresh_table: str, column: str) -> None:
    """The fresh table's id sequence continues where the live one is (ids carried over stay unique)."""
    names = conn.execute(
        "SELECT pg_get_serial_sequence(%s, %s), pg_get_serial_sequence(%s, %s)",
        (live_table, column, fresh_table, column),
    ).fetchone()
    if names is None or names[0] is None or names[1] is None:
        return
    # pg_get_serial_sequence answers a quoted, schema-qualified name.
    state = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(names[0]))).fetchone()
    if state is not None:
        conn.execute("SELECT setval(%s::regclass, %s, %s)", (names[1], state[0], state[1]))


def drop_rebuild(settings: HubSettings, rebuild_id: str) -> None:
    """Drop a rebuild's fresh schema and its roles (what --compare-only and a failed rebuild leave)."""
    fresh = f"{settings.service_name}_rb_{rebuild_id}"
    ident = sql.Identifier
    with psycopg.connect(settings.dsn, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('cityhub_provision'))")
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident(fresh)))
        for role in (f"cityhub_{fresh}", owner_role(fresh)):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("DROP OWNED BY {}").format(ident(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(ident(role)))


# --- the whole command ---------------------------------------------------------------------------------


def rebuild(
    settings: HubSettings,
    *,
    compare_only: bool = False,
    confirm: Callable[[str], bool] | None = None,
    progress: bool = True,
    echo: Echo = _echo_stderr,
    batch_size: int = _DEFAULT_BATCH,
    wait_for_stop_s: float | None = None,
) -> int:
    """Replay, compare, then swap (unless ``compare_only``, or ``confirm`` says no). The exit code: with
    ``compare_only`` 0 when the rebuilt views equal the live ones and 1 when they differ; otherwise 0 once
    swapped, 1 when not.

    ``wait_for_stop_s``: the hub may run while the replay does; after it the command waits this long for
    the hub to be stopped, then catches up with what arrived meanwhile, so the hub is down only for the
    tail, the comparison and the swap instead of the whole replay."""
    result = replay(settings, progress=progress, echo=echo, batch_size=batch_size)
    try:
        if wait_for_stop_s is not None:
            _wait_stopped(settings, result, wait_for_stop_s, echo)
            catch_up(settings, result, batch_size=batch_size, progress=progress, echo=echo)
        diffs = compare(settings.dsn, result.live_schema, result.fresh_schema)
    except BaseException:
        drop_rebuild(settings, result.rebuild_id)
        raise
    for line in describe(diffs):
        echo(line)
    if diffs:
        echo(f"rebuild {result.rebuild_id}: {len(diffs)} table(s) differ from the live views")
    else:
        echo(f"rebuild {result.rebuild_id}: identical to the live views, row for row")
    if compare_only:
        drop_rebuild(settings, result.rebuild_id)
        echo(f"rebuild {result.rebuild_id}: compare only: {result.fresh_schema} dropped, the live views kept")
        return 1 if diffs else 0
    if confirm is not None and not confirm(f"swap {result.fresh_schema} in for {result.live_schema}?"):
        drop_rebuild(settings, result.rebuild_id)
        echo(f"rebuild {result.rebuild_id}: not swapped; {result.fresh_schema} dropped")
        return 1
    try:
        swap(settings, result, echo=echo)
    except SwapRefusedError:
        drop_rebuild(settings, result.rebuild_id)
        raise
    return 0
