"""The inbox's in-memory twin (repository/memory/inbox.py) gives the answers and the rows the SQL gives.

The same calls go to the real :class:`HubRepository` over a fresh hub schema on the real PostgreSQL and to
a :class:`MemoryHub`; every answer is compared, and after every step so is every getter's answer about
everything made so far. At the end the twin's tables are written with COPY into a second fresh schema
and the rebuild's own comparison (services.hub.rebuild.compare) must find the two schemas identical —
the check a rebuild makes before it offers the swap."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg import sql

from services.hub.bootstrap import MIGRATIONS
from services.hub.domain.entities import EntityKind, Mention, NameRank
from services.hub.domain.inbox import (
    Action,
    EscalationFact,
    InboxItem,
    ItemAction,
    ItemKind,
    ItemStatus,
    Occurrence,
    OccurrenceFact,
    Severity,
    SourceSignal,
    item_state,
)
from services.hub.rebuild import compare, projection_tables
from services.hub.repository import HubRepository
from services.hub.repository.memory import MemoryHub
from services.platform.db import owner_role, set_up_database
from tests.support import unique_name

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SITE_1 = ("SITE", "site-1")
SITE_2 = ("SITE", "site-2")
KITCHEN = ("KITCHEN", "k-1")
NOBODY = ("SITE", "never-heard-of")  # no entity: name and town read as ''
SUBJECTS = (SITE_1, SITE_2, KITCHEN, NOBODY)
# Ids whose code-point order differs from a linguistic one (case, punctuation, a non-ASCII letter).
ITEM_IDS = ("itm_a", "itm_B", "itm-c", "itm_Z", "itm_ä", "itm_0", "itm_a1", "itm_b")
SOURCES = ("src-1", "src-2", "src-3", "")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- two fresh hub schemas ------------------------------------------------------------------------------


def _fresh_schema(database_url: str, prefix: str) -> str:
    schema = unique_name(prefix)
    set_up_database(database_url, schema, MIGRATIONS, min_size=1, max_size=1).close()
    return schema


def _drop_schema(database_url: str, schema: str) -> None:
    ident = sql.Identifier
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident(schema)))
        for role in (f"cityhub_{schema}", owner_role(schema)):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("DROP OWNED BY {}").format(ident(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(ident(role)))


@pytest.fixture(scope="module")
def module_schemas(database_url: str) -> Iterator[tuple[str, str]]:
    made: list[str] = []
    try:
        made.append(_fresh_schema(database_url, "memin_sql"))
        made.append(_fresh_schema(database_url, "memin_mem"))
        yield made[0], made[1]
    finally:
        for schema in made:
            _drop_schema(database_url, schema)


@pytest.fixture
def schemas(database_url: str, module_schemas: tuple[str, str]) -> tuple[str, str]:
    """(the schema the SQL repository writes, the schema the twin's tables are copied into), both empty:
    migrated once per module (slow), emptied for each test (fast)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for schema in module_schemas:
            tables = [sql.Identifier(schema, table) for table in projection_tables(conn, schema)]
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(tables)))
    return module_schemas


def _copy_into(database_url: str, schema: str, hub: MemoryHub) -> None:
    """The twin's tables into ``schema`` with COPY, as the rebuild writes them."""
    with psycopg.connect(database_url, options=f"-c search_path={schema}") as conn, conn.cursor() as cur:
        for table, (columns, rows) in hub.tables().items():
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)


# --- the twin harness ------------------------------------------------------------------------------------


REFUSED = object()  # what Twin.call returns when both repositories refused the call


class Twin:
    """One call, both repositories: the answers (or the refusals) must be the same."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.sql = HubRepository(conn)
        self.mem = MemoryHub()
        self.items: set[str] = set()
        self.incidents: set[str] = set()
        self.sources: set[tuple[ItemKind, str]] = set()
        self.steps = 0

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.steps += 1
        outcome: list[tuple[str, Any]] = []
        for repo in (self.sql, self.mem):
            try:
                outcome.append(("ok", getattr(repo, method)(*args, **kwargs)))
            except (psycopg.Error, ValueError) as error:
                outcome.append(("refused", type(error).__name__))
        (sql_kind, sql_value), (mem_kind, mem_value) = outcome
        assert sql_kind == mem_kind, (
            f"step {self.steps} {method}{args}: SQL {sql_value!r}, memory {mem_value!r}"
        )
        if sql_kind == "ok":
            assert sql_value == mem_value, f"step {self.steps} {method}{args}"
        return sql_value if sql_kind == "ok" else REFUSED

    def mention(self, key: tuple[str, str], name: str, town: str, rank: int, minutes: float) -> None:
        m = Mention(EntityKind(key[0]), key[1], name=name, name_rank=rank, town=town, registers=rank == 3)
        self.call("upsert_mention", m, "safety", at(minutes))

    def open(self, item_id: str, kind: ItemKind, subject: tuple[str, str], minutes: float, **kw: Any) -> None:
        """What the projection does for an alert: the item (when new), its occurrence, the refresh."""
        source = kw.get("source", "")
        severity = kw.get("severity", Severity.MEDIUM)
        if not self.call("inbox_item_exists", item_id):
            self.call(
                "insert_inbox_item",
                _item(item_id, kind, subject, at(minutes), source=source, severity=severity),
            )
        self.items.add(item_id)
        self.sources.add((kind, source))
        occurrence = Occurrence(kw.get("event", f"ev-{item_id}-{minutes}"), at(minutes), "s", source)
        self.call("add_inbox_occurrence", item_id, occurrence, severity)
        self.call("refresh_inbox_item", item_id)

    def check(self) -> None:
        """Every getter, about everything made so far (and some things never made)."""
        c = self.call
        ids = sorted(self.items)
        for item_id in [*ids, "itm_never"]:
            c("inbox_item", item_id)
            c("inbox_item_exists", item_id)
            item = self.mem.inbox_item(item_id)
            if item is not None:
                facts = [self._facts(repo, item_id, item.kind) for repo in (self.sql, self.mem)]
                assert facts[0] == facts[1], f"step {self.steps}: the facts of {item_id}"
        c("inbox_items_by_ids", [*ids, "itm_never", *ids[:1]])
        c("inbox_items_by_ids", [])
        opened = sorted(i.opened_at for i in self.mem.inbox_items_by_ids(ids).values())
        c("items_opened_between", at(-10_000), at(10_000))
        for when in opened[:3]:  # both ends included, ties in id order
            c("items_opened_between", when, when)
            c("items_opened_between", when, when + timedelta(minutes=30))
            c("items_opened_between", when - timedelta(minutes=30), when)
        c("items_opened_between", at(10), at(0))  # an empty range
        c("inbox_items_at", list(SUBJECTS))
        c("inbox_items_at", [SITE_1, SITE_1])
        c("inbox_items_at", [])
        for kind, source in sorted(self.sources | {(ItemKind.DEVICE_FAULT, "src-1")}):
            c("inbox_items_with_source", kind, source)
        for incident_id in [*sorted(self.incidents), "inc_never"]:
            c("inbox_incident", incident_id)

    @staticmethod
    def _facts(repo: Any, item_id: str, kind: ItemKind) -> list[Counter[Any]]:
        # The SQL reads the facts in no particular order (item_state does not depend on it): as multisets.
        return [Counter(part) for part in repo.inbox_item_facts(item_id, kind)]

    def step(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A call, then every getter."""
        result = self.call(method, *args, **kwargs)
        self.check()
        return result


def _item(
    item_id: str, kind: ItemKind, subject: tuple[str, str], when: datetime, *, source: str, severity: Severity
) -> InboxItem:
    return InboxItem(
        item_id=item_id,
        kind=kind,
        severity=severity,
        effective_severity=severity,
        status=ItemStatus.OPEN,
        subject_kind=subject[0],
        subject_id=subject[1],
        domain="safety" if kind is ItemKind.SAFETY_ALERT else "industry",
        title=f"title of {item_id}",
        opened_at=when,
        last_occurred_at=when,
        occurrence_count=1,
        source_id=source,
        # What insert_inbox_item does not write: both must ignore these.
        escalated=True,
        escalation_round=7,
        incident_id="inc_ignored",
        acknowledged_by="nobody",
        subject_name="not a column",
        town="not a column",
    )


@pytest.fixture
def twin(database_url: str, schemas: tuple[str, str]) -> Iterator[Twin]:
    with psycopg.connect(database_url, autocommit=True, options=f"-c search_path={schemas[0]}") as conn:
        yield Twin(conn)


def _assert_same_tables(database_url: str, schemas: tuple[str, str], twin: Twin) -> None:
    live, fresh = schemas
    with psycopg.connect(database_url) as conn:
        for table, (columns, _) in twin.mem.tables().items():
            migrated = conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (fresh, table),
            ).fetchall()
            assert list(columns) == [name for (name,) in migrated], table
    _copy_into(database_url, fresh, twin.mem)
    assert compare(database_url, live, fresh) == []
    with psycopg.connect(database_url) as conn:
        for table in ("inbox_items", "inbox_occurrences", "inbox_incidents"):
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(fresh, table))
            row = conn.execute(query).fetchone()
            assert row is not None
            assert row[0] > 0, f"{table} is empty: the comparison proved nothing about it"


# --- the tests ---------------------------------------------------------------------------------------------


def _facts_before_their_item(t: Twin) -> None:
    """A hub acknowledgement, a domain clearing and an escalation round before the item opens; then the
    item, and an occurrence EARLIER than its first (opened_at moves back); replays and refusals."""
    ack = ItemAction("ev-ack-a", Action.ACKNOWLEDGED, at(5), "ann")
    assert t.step("add_inbox_action", "itm_a", ack) is True
    assert t.step("add_inbox_action", "itm_a", ack) is False
    cleared = SourceSignal("src-2", Action.CLEARED, at(40))
    assert t.step("add_inbox_source_signal", ItemKind.SAFETY_ALERT, cleared) is True
    assert t.step("record_inbox_escalation", "itm_a", 1, Severity.HIGH, at(20)) is True
    assert t.step("record_inbox_escalation", "itm_a", 1, Severity.CRITICAL, at(21)) is False
    assert t.step("refresh_inbox_item", "itm_a") == (None, None)

    t.open("itm_a", ItemKind.SAFETY_ALERT, SITE_1, 10, source="src-1", severity=Severity.MEDIUM)
    t.check()
    t.open("itm_a", ItemKind.SAFETY_ALERT, SITE_1, 2, source="src-2", severity=Severity.HIGH)
    t.check()
    occurrence = Occurrence("ev-itm_a-2", at(2), "s", "src-2")
    assert t.step("add_inbox_occurrence", "itm_a", occurrence, Severity.HIGH) is False  # replayed
    # An occurrence of an item that does not exist, an item inserted twice: both refuse them.
    assert t.call("add_inbox_occurrence", "itm_never", occurrence, Severity.HIGH) is REFUSED
    again = _item("itm_a", ItemKind.SAFETY_ALERT, SITE_1, at(2), source="", severity=Severity.LOW)
    assert t.call("insert_inbox_item", again) is REFUSED

    # Items opened at the same instant (ties read in id order), at subjects with and without an entity.
    t.open("itm_B", ItemKind.DEVICE_FAULT, KITCHEN, 2, source="src-1")
    t.open("itm_ä", ItemKind.DEVICE_FAULT, NOBODY, 2, source="src-3")
    t.open("itm-c", ItemKind.SAFETY_ALERT, SITE_2, 2)
    t.check()


def _an_incident_forms_grows_splits_and_is_renamed(t: Twin) -> None:
    t.incidents |= {"inc_1", "inc_2"}
    t.step("put_inbox_incident", "inc_1", at(2), Severity.HIGH, ["both at site No. 3", "a link"])
    t.step("set_inbox_incident_of", ["itm_a", "itm_B"], "inc_1")
    t.step("put_inbox_incident", "inc_1", at(2), Severity.CRITICAL, ["a link", "within 20 m", "zz"])
    t.step("set_inbox_incident_of", ["itm_B", "itm_ä", "itm-c", "itm_never"], "inc_1")
    t.step("set_inbox_incident_of", ["itm-c"], "")  # split off
    t.step("drop_empty_inbox_incidents", ["inc_1", "inc_never"])  # still has items: kept
    t.step("put_inbox_incident", "inc_2", at(2), Severity.HIGH, [])
    t.step("set_inbox_incident_of", ["itm_a", "itm_B", "itm_ä"], "inc_2")  # renamed
    t.step("drop_empty_inbox_incidents", ["inc_1", "inc_2"])  # inc_1 left empty: gone
    assert t.mem.inbox_incident("inc_1") is None
    incident = t.mem.inbox_incident("inc_2")
    assert incident is not None
    # Earliest first, ties in code-point order; the town is the earliest item's subject's.
    assert incident.item_ids == ("itm_B", "itm_a", "itm_ä")
    assert incident.town == "South"


def _sources_resolutions_and_escalations_after_the_item(t: Twin) -> None:
    for signal in (
        SourceSignal("src-1", Action.ACKNOWLEDGED, at(12), "bob", "ev-s1"),
        SourceSignal("src-1", Action.CLEARED, at(50), "", "ev-s2"),
    ):
        t.step("add_inbox_source_signal", ItemKind.SAFETY_ALERT, signal)
        for item_id in t.call("inbox_items_with_source", ItemKind.SAFETY_ALERT, "src-1"):
            t.step("refresh_inbox_item", item_id)
    resolved = t.mem.inbox_item("itm_a")
    assert resolved is not None
    assert resolved.status is ItemStatus.RESOLVED  # both its sources cleared

    # The hub resolves an item, which then occurs again (open again); more escalation rounds.
    t.step("add_inbox_action", "itm_B", ItemAction("ev-res-b", Action.RESOLVED, at(30), "cy"))
    t.step("refresh_inbox_item", "itm_B")
    t.open("itm_B", ItemKind.DEVICE_FAULT, KITCHEN, 45, source="src-2")
    t.step("record_inbox_escalation", "itm_B", 2, Severity.HIGH, at(60))
    t.step("record_inbox_escalation", "itm_B", 1, Severity.MEDIUM, at(50))
    t.step("refresh_inbox_item", "itm_B")
    reopened = t.mem.inbox_item("itm_B")
    assert reopened is not None
    assert (reopened.status, reopened.escalation_round) == (ItemStatus.OPEN, 2)


def test_a_story_of_items_and_incidents_gives_the_same_answers_and_rows(
    twin: Twin, database_url: str, schemas: tuple[str, str]
) -> None:
    t = twin
    t.mention(SITE_1, "No. 3 Primary School", "North", NameRank.OWN, 0)
    t.mention(KITCHEN, "Sunrise Kitchen", "South", NameRank.MENTION, 0)
    t.check()
    _facts_before_their_item(t)
    _an_incident_forms_grows_splits_and_is_renamed(t)
    _sources_resolutions_and_escalations_after_the_item(t)

    # The entities change after the items: the names and towns read change with them.
    t.mention(KITCHEN, "Sunrise Kitchen No. 2", "East", NameRank.OWN, 70)
    t.mention(NOBODY, "", "West", NameRank.MENTION, 70)
    t.check()
    incident = t.mem.inbox_incident("inc_2")
    assert incident is not None
    assert incident.town == "East"
    item = t.mem.inbox_item("itm_ä")
    assert item is not None
    assert (item.subject_name, item.town) == ("", "West")

    _assert_same_tables(database_url, schemas, t)


def test_a_random_interleaving_of_calls_gives_the_same_answers_and_rows(
    twin: Twin, database_url: str, schemas: tuple[str, str]
) -> None:
    """Calls in an order no projection would make (facts before items, repeats, splits): the twin must
    still answer as the SQL does. Seeded, so a failure replays."""
    rng = random.Random(20260302)
    t = twin
    kinds = (ItemKind.SAFETY_ALERT, ItemKind.DEVICE_FAULT)
    item_kind = {item_id: kinds[i % 2] for i, item_id in enumerate(ITEM_IDS)}
    t.mention(SITE_1, "Site one", "North", NameRank.OWN, 0)
    t.mention(KITCHEN, "Kitchen", "South", NameRank.OWN, 0)
    for _ in range(160):
        item_id = rng.choice(ITEM_IDS)
        kind = item_kind[item_id]
        minutes = rng.choice((0, 0, 5, 5, 30, 61, 120))  # ties on purpose
        op = rng.randrange(9)
        if op <= 2:
            t.open(
                item_id,
                kind,
                rng.choice(SUBJECTS),
                minutes,
                source=rng.choice(SOURCES),
                severity=rng.choice(list(Severity)),
                event=f"ev-{rng.randrange(12)}",
            )
        elif op == 3:
            action = rng.choice((Action.ACKNOWLEDGED, Action.RESOLVED))
            t.call(
                "add_inbox_action", item_id, ItemAction(f"ev-{rng.randrange(12)}", action, at(minutes), "x")
            )
            t.call("refresh_inbox_item", item_id)
        elif op == 4:
            source = rng.choice(SOURCES)
            signal = rng.choice((Action.ACKNOWLEDGED, Action.CLEARED))
            t.sources.add((kind, source))
            t.call(
                "add_inbox_source_signal",
                kind,
                SourceSignal(source, signal, at(minutes), "y", f"ev-{rng.randrange(12)}"),
            )
            for found in t.call("inbox_items_with_source", kind, source):
                t.call("refresh_inbox_item", found)
        elif op == 5:
            t.call(
                "record_inbox_escalation",
                item_id,
                rng.randrange(1, 4),
                rng.choice(list(Severity)),
                at(minutes),
            )
            t.call("refresh_inbox_item", item_id)
        elif op == 6:
            incident_id = f"inc_{rng.randrange(3)}"
            t.incidents.add(incident_id)
            reasons = rng.sample(["b", "a", "within 10 m", "Z"], rng.randrange(4))
            t.call("put_inbox_incident", incident_id, at(minutes), rng.choice(list(Severity)), reasons)
            t.call("set_inbox_incident_of", rng.sample(ITEM_IDS, 3), incident_id)
        elif op == 7:
            t.call("set_inbox_incident_of", rng.sample(ITEM_IDS, 2), rng.choice(("", "inc_0", "inc_1")))
            t.call("drop_empty_inbox_incidents", sorted(t.incidents))
        else:
            t.mention(
                rng.choice(SUBJECTS),
                rng.choice(("Alpha", "beta", "")),
                rng.choice(("North", "South")),
                rng.choice((1, 3)),
                minutes,
            )
        t.check()
    _assert_same_tables(database_url, schemas, t)


# --- unit-level: what the SQL would do that Python could get wrong ----------------------------------------


def _memory_with(*items: tuple[str, datetime]) -> MemoryHub:
    hub = MemoryHub()
    for item_id, when in items:
        hub.insert_inbox_item(
            _item(item_id, ItemKind.DEVICE_FAULT, SITE_1, when, source="", severity=Severity.LOW)
        )
    return hub


def test_ties_on_opened_at_are_read_in_code_point_order_of_the_ids() -> None:
    same = at(0)
    hub = _memory_with(("itm_b", same), ("itm_B", same), ("itm-c", same), ("itm_ä", same), ("itm_a", at(-1)))
    found = [i.item_id for i in hub.items_opened_between(at(-1), same)]
    # The database's collation is the builtin C.UTF-8: code points, so "-" < "B" < "_" < "b" < "ä".
    assert found == ["itm_a", "itm-c", "itm_B", "itm_b", "itm_ä"]
    assert [i.item_id for i in hub.items_opened_between(same, same)] == found[1:]
    assert hub.items_opened_between(same, at(-1)) == []
    assert hub.inbox_items_at([SITE_1]) == sorted(found)


def test_an_item_whose_first_occurrence_moves_back_is_found_at_its_new_opened_at() -> None:
    hub = _memory_with(("itm_a", at(10)))
    for minutes in (10, 3):
        assert hub.add_inbox_occurrence("itm_a", Occurrence(f"ev-{minutes}", at(minutes), "s"), Severity.LOW)
    before, after = hub.refresh_inbox_item("itm_a")
    assert before is not None
    assert after is not None
    assert (before.opened_at, after.opened_at) == (at(10), at(3))
    assert [i.item_id for i in hub.items_opened_between(at(3), at(3))] == ["itm_a"]
    assert hub.items_opened_between(at(4), at(10)) == []


def test_times_are_kept_as_instants_and_naive_ones_refused() -> None:
    plus3 = timezone(timedelta(hours=3))
    hub = _memory_with(("itm_a", at(0).astimezone(plus3)))
    item = hub.inbox_item("itm_a")
    assert item is not None
    assert item.opened_at == at(0)
    assert item.opened_at.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="naive"):
        hub.record_inbox_escalation("itm_a", 1, Severity.HIGH, datetime(2026, 3, 2, 8, 0))  # noqa: DTZ001


def test_the_twin_never_publishes() -> None:
    hub = MemoryHub()
    with pytest.raises(RuntimeError, match="rebuild"):
        hub.notify_inbox_change("itm_a", "opened")


def test_an_items_state_does_not_depend_on_the_order_its_facts_are_read_in() -> None:
    """The SQL reads an item's facts in no particular order, the twin in insertion order: item_state must
    give the same state either way — ties on time included (broken by event id, by, domain)."""
    occurrences = [
        OccurrenceFact("ev-2", at(0), Severity.LOW, "src-2"),
        OccurrenceFact("ev-1", at(0), Severity.HIGH, "src-1"),
        OccurrenceFact("ev-3", at(9), Severity.HIGH, ""),
    ]
    signals = [
        SourceSignal("src-1", Action.CLEARED, at(20), "", "ev-c1"),
        SourceSignal("src-2", Action.CLEARED, at(20), "", "ev-c2"),
        SourceSignal("src-2", Action.ACKNOWLEDGED, at(5), "zed", "ev-a2"),
        SourceSignal("src-1", Action.ACKNOWLEDGED, at(5), "amy", "ev-a1"),
    ]
    actions = [
        ItemAction("ev-r2", Action.RESOLVED, at(20), "bob"),
        ItemAction("ev-r1", Action.RESOLVED, at(20), "industry"),
        ItemAction("ev-k", Action.ACKNOWLEDGED, at(5), "kim"),
    ]
    escalations = [EscalationFact(2, Severity.HIGH, at(7)), EscalationFact(1, Severity.CRITICAL, at(6))]
    rng = random.Random(7)
    states = set()
    for _ in range(200):
        states.add(
            item_state(
                "industry",
                rng.sample(occurrences, len(occurrences)),
                rng.sample(signals, len(signals)),
                rng.sample(actions, len(actions)),
                rng.sample(escalations, len(escalations)),
            )
        )
    assert len(states) == 1
    (state,) = states
    assert (state.opened_at, state.source_id, state.acknowledged_by) == (at(0), "src-1", "amy")


def test_an_entitys_name_does_not_depend_on_which_mention_came_first(
    database_url: str, schemas: tuple[str, str]
) -> None:
    # A member's stub named by nobody (a membership event without the name), and a park's mention naming
    # it weakly: in either order the name is the one that names it, in SQL and in memory alike.
    nameless = Mention(EntityKind.ENTERPRISE, "91331004MA0000001X", name="", name_rank=NameRank.MEMBERSHIP)
    named = Mention(
        EntityKind.ENTERPRISE, "91331004MA0000001X", name="Luqiao Valves", name_rank=NameRank.NONE
    )
    rows = []
    for first, second in ((nameless, named), (named, nameless)):
        with psycopg.connect(database_url, options=f"-c search_path={schemas[0]}") as conn:
            conn.execute("TRUNCATE entities")
            repo = HubRepository(conn)
            repo.upsert_mention(first, "commerce", at(0))
            repo.upsert_mention(second, "industry", at(1))
            sql_row = conn.execute("SELECT name, name_rank FROM entities").fetchall()
            conn.rollback()
        memory = MemoryHub()
        memory.upsert_mention(first, "commerce", at(0))
        memory.upsert_mention(second, "industry", at(1))
        columns, table = memory.tables()["entities"]
        memory_row = [(r[columns.index("name")], r[columns.index("name_rank")]) for r in table]
        assert sql_row == memory_row
        rows.append(sql_row)
    assert rows[0] == rows[1] == [("Luqiao Valves", NameRank.NONE)]
