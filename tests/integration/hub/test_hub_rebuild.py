"""Rebuild by replay on a real hub: a mix of every domain's events (repeats included) replayed into a fresh
schema equals the live views row for row; one altered live row is reported as exactly that; the swap is
refused while the hub consumes, and on a stopped hub it swaps and the restarted hub carries on."""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import psycopg
import pytest
from cityhub.commerce.v1 import events_pb2 as commerce
from cityhub.common.v1 import common_pb2
from cityhub.govservice.v1 import events_pb2 as govservice
from cityhub.hub.v1 import hub_pb2, hub_pb2_grpc
from cityhub.industry.v1 import events_pb2 as industry
from cityhub.industry.v1 import industry_pb2
from cityhub.kitchen.v1 import events_pb2 as kitchen
from cityhub.safety.v1 import events_pb2 as safety
from click.testing import CliRunner
from google.protobuf.message import Message
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from services.cli.__main__ import cli
from services.hub import rebuild as rb
from services.hub.bootstrap import build, config_of
from services.hub.projections import projector
from services.hub.repository import HubRepository
from services.hub.repository.memory import MemoryHub
from services.hub.settings import HubSettings
from services.platform.kafka import ensure_topics, make_producer
from services.platform.protoconv import to_timestamp
from services.platform.security import SecuritySettings, TokenIssuer
from tests.integration.hub.conftest import hub_settings
from tests.integration.hub.hub_support import Hub
from tests.kafka_support import delete_topics
from tests.support import wait_until

MEDIUM = common_pb2.SEVERITY_MEDIUM


def _scenario(hub: Hub, tag: str) -> int:
    """A realistic mix of every domain's events, with repeats; returns the number of distinct events."""
    now = datetime.now(UTC).replace(microsecond=0)
    sent = 0

    def send(message: Message, key: str, minutes: int, event_id: str | None = None) -> str:
        nonlocal sent
        sent += event_id is None
        return hub.publish(
            message, key=key, subject=key, time=now - timedelta(minutes=minutes), event_id=event_id
        ).id

    credit = f"91331004MA{tag.upper()[:6]:0<6}1X"
    site, kit, park, chamber = f"site-{tag}", f"kit-{tag}", f"park-{tag}", f"ch-{tag}"
    send(
        safety.SiteRegistered(site_id=site, name="Primary school", town="路桥街道", division_code="331004"),
        site,
        90,
    )
    send(industry.ParkRegistered(park_id=park, division_code="331004"), park, 90)
    send(industry.EnterpriseOnboarded(credit_code=credit, park_id=park, division_code="331004"), credit, 85)
    for n in range(3):
        send(
            industry.DeviceRegistered(
                device_id=f"d-{tag}-{n}", credit_code=credit, park_id=park, workshop="W1"
            ),
            f"d-{tag}-{n}",
            80,
        )
    send(
        kitchen.KitchenRegistered(
            kitchen_id=kit, site_id=site, name="School kitchen", operator_credit_code=credit, town="路桥街道"
        ),
        kit,
        80,
    )
    send(
        commerce.ChamberCreated(chamber_id=chamber, name="Auto parts chamber", division_code="331004"),
        chamber,
        80,
    )
    send(
        commerce.MembershipApproved(
            membership_id=f"m-{tag}", chamber_id=chamber, credit_code=credit, town="路桥街道"
        ),
        chamber,
        75,
    )
    for n in range(3):
        for hour in range(2):
            rolled = industry.UtilisationRolledUp(
                device_id=f"d-{tag}-{n}",
                credit_code=credit,
                park_id=park,
                workshop="W1",
                hour_started_at=to_timestamp(now.replace(minute=0, second=0) - timedelta(hours=hour + 1)),
                figures=industry_pb2.UtilisationFigures(
                    availability=0.1 * (n + hour + 1), oee=0.05 * (n + 1)
                ),
            )
            send(rolled, f"d-{tag}-{n}", 60 - hour)
    send(
        industry.DeviceAlertRaised(
            alert_id=f"da-{tag}", device_id=f"d-{tag}-0", credit_code=credit, park_id=park, severity=MEDIUM
        ),
        f"d-{tag}-0",
        50,
    )
    raised = send(safety.AlertRaised(alert_id=f"a-{tag}", site_id=site, severity=MEDIUM), f"a-{tag}", 40)
    send(safety.AlertAcknowledged(alert_id=f"a-{tag}", site_id=site, acknowledged_by="duty"), f"a-{tag}", 39)
    send(safety.AlertResolved(alert_id=f"a-{tag}", site_id=site, joint_response=True), f"a-{tag}", 30)
    send(
        kitchen.MorningCheckFailed(
            kitchen_id=kit, check_id=f"c-{tag}", shift_date="2024-05-14", alert_id=f"mc-{tag}"
        ),
        kit,
        35,
    )
    send(
        kitchen.ColdChainAlertRaised(
            kitchen_id=kit, equipment_id="fridge-1", alert_id=f"cc-{tag}", limit_c=4, temperature_c=9
        ),
        kit,
        34,
    )
    send(
        govservice.ApplicationFiled(
            application_no=f"ap-{tag}", filing_region="331004", handling_region="522632", credit_code=credit
        ),
        f"ap-{tag}",
        30,
    )
    send(
        govservice.ApplicationCompleted(application_no=f"ap-{tag}", handling_region="522632", on_time=True),
        f"ap-{tag}",
        20,
    )
    send(
        commerce.MembershipEnded(membership_id=f"m-{tag}", chamber_id=chamber, credit_code=credit),
        chamber,
        10,
    )
    # Repeats: a redelivery (same event id) and the same alert raised again under a new event id.
    send(
        safety.AlertRaised(alert_id=f"a-{tag}", site_id=site, severity=MEDIUM),
        f"a-{tag}",
        40,
        event_id=raised,
    )
    send(
        safety.AlertRaised(alert_id=f"a-{tag}", site_id=site, severity=MEDIUM),
        f"a-{tag}",
        40,
        event_id=str(uuid.uuid4()),
    )
    sent += 1
    return sent


def _escalation_due(hub: Hub) -> bool:
    """The hub's escalator has a round to publish (an item applied since its last sweep is overdue)."""
    config = config_of(hub.settings)
    schema = hub.settings.service_name
    with psycopg.connect(hub.database_url, autocommit=True, options=f"-c search_path={schema}") as conn:
        due = HubRepository(conn).escalation_candidates(
            datetime.now(UTC),
            {name: after.total_seconds() for name, after in config.escalate_after.items()},
            config.reminder_interval.total_seconds(),
            1,
        )
    return bool(due)


def _settle(hub: Hub, at_least: int) -> None:
    """Until the hub has applied ``at_least`` events, escalated what is overdue, relayed its outbox and
    consumed its own topic too: only then are the live views what a replay of the topics makes. (Checking
    the outbox alone raced the escalator's next sweep, which then published after the replay's snapshot.)"""
    hub.wait_applied(at_least)
    group = rb.live_group(hub.settings)
    topics = [*hub.settings.domain_topics, hub.settings.hub_events_topic]
    admin: Any = KafkaAdminClient(bootstrap_servers=hub.kafka_bootstrap)
    probe: Any = KafkaConsumer(bootstrap_servers=hub.kafka_bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(probe.partitions_for_topic(t) or ())
        ]

        def quiet() -> bool | None:
            if _escalation_due(hub):
                return None
            with psycopg.connect(hub.database_url, autocommit=True) as conn:
                row = conn.execute(
                    f'SELECT count(*) FROM "{hub.settings.service_name}".outbox WHERE sent_at IS NULL'
                ).fetchone()
            if row is None or row[0]:
                return None
            ends = probe.end_offsets(partitions)
            committed = admin.list_group_offsets(group).get(group, {})
            behind = [
                tp
                for tp in partitions
                if ends[tp] > 0 and (committed.get(tp) is None or committed[tp].offset < ends[tp])
            ]
            return True if not behind else None

        wait_until(quiet, timeout_s=60, what="the hub caught up with every topic")
    finally:
        admin.close()
        probe.close()


def _env(settings: HubSettings) -> dict[str, str]:
    env = {
        "SERVICE_NAME": settings.service_name,
        "DATABASE_URL": settings.dsn,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "HUB_EVENTS_TOPIC": settings.hub_events_topic,
        "LOG_LEVEL": "warning",
    }
    for domain in ("safety", "industry", "kitchen", "commerce", "govservice"):
        env[f"HUB_{domain.upper()}_EVENTS_TOPIC"] = getattr(settings, f"hub_{domain}_events_topic")
    return env


def _schemas(database_url: str, like: str) -> list[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s ORDER BY 1", (like,)
        ).fetchall()
    return [str(r[0]) for r in rows]


@pytest.fixture(scope="module")
def settled(hub: Hub) -> int:
    count = _scenario(hub, "one") + _scenario(hub, "two")
    _settle(hub, count)
    return count


def test_compare_only_reports_identical(hub: Hub, settled: int) -> None:
    lines: list[str] = []
    code = rb.rebuild(hub.settings, compare_only=True, progress=False, echo=lines.append)
    assert code == 0, "\n".join(lines)
    assert any("identical to the live views" in line for line in lines), lines
    replayed = next(line for line in lines if "events/s" in line)
    # The domains' events and the hub's own (opened, repeated, escalated, incidents) the live hub applied.
    assert settled < hub.applied()
    assert f"{hub.applied()} applied" in replayed
    # Nothing is left behind: the fresh schema and its roles are dropped again.
    assert _schemas(hub.database_url, f"{hub.settings.service_name}_rb_%") == []


def test_compare_only_through_the_command(hub: Hub, settled: int) -> None:
    del settled
    result = CliRunner().invoke(
        cli, ["hub", "rebuild", "--compare-only", "--no-progress"], env=_env(hub.settings)
    )
    assert result.exit_code == 0, result.output
    assert "identical to the live views" in result.output


@pytest.fixture
def altered_row(hub: Hub, settled: int) -> Iterator[None]:
    del settled
    schema = hub.settings.service_name
    query = (
        f'UPDATE "{schema}".dashboard_facts SET town = %s'
        " WHERE metric = 'warnings_raised' AND fact_key = 'a-one'"
    )
    with psycopg.connect(hub.database_url, autocommit=True) as conn:
        assert conn.execute(query, ("tampered",)).rowcount == 1
    yield
    with psycopg.connect(hub.database_url, autocommit=True) as conn:
        conn.execute(query, ("",))


def test_compare_names_the_altered_table_and_row(hub: Hub, altered_row: None) -> None:
    del altered_row
    replay = rb.replay(hub.settings, progress=False, echo=lambda _: None)
    try:
        diffs = rb.compare(hub.settings.dsn, replay.live_schema, replay.fresh_schema)
    finally:
        rb.drop_rebuild(hub.settings, replay.rebuild_id)
    assert [(d.table, d.live_only, d.fresh_only) for d in diffs] == [("dashboard_facts", 1, 1)]
    assert [(r["fact_key"], r["town"]) for r in diffs[0].live_sample] == [("a-one", "tampered")]
    assert [(r["fact_key"], r["town"]) for r in diffs[0].fresh_sample] == [("a-one", "")]
    lines: list[str] = []
    assert rb.rebuild(hub.settings, compare_only=True, progress=False, echo=lines.append) == 1
    assert any(
        line.startswith("dashboard_facts: 1 row(s) only in live, 1 only in the rebuild") for line in lines
    )
    assert any("tampered" in line for line in lines)


def test_the_fold_in_memory_writes_what_the_sql_replay_writes(hub: Hub, settled: int) -> None:
    """The fast path (every table folded in memory, written once) against the slow one (each event
    applied with the live consumer's SQL), on the same records: identical, row for row."""
    del settled
    fast = rb.replay(hub.settings, progress=False, echo=lambda _: None)
    slow = rb.replay(hub.settings, progress=False, echo=lambda _: None, engine="sql")
    try:
        diffs = rb.compare(hub.settings.dsn, slow.fresh_schema, fast.fresh_schema)
        assert diffs == [], "\n".join(rb.describe(diffs))
        assert (fast.records, fast.applied, fast.duplicates) == (slow.records, slow.applied, slow.duplicates)
        with psycopg.connect(hub.database_url, autocommit=True) as conn:
            counts = [
                conn.execute(f'SELECT count(*) FROM "{replay.fresh_schema}".processed_events').fetchone()
                for replay in (fast, slow)
            ]
        assert counts[0] == counts[1] == (fast.applied,)
    finally:
        rb.drop_rebuild(hub.settings, fast.rebuild_id)
        rb.drop_rebuild(hub.settings, slow.rebuild_id)


def test_a_projection_failing_in_memory_falls_back_to_sql(
    hub: Hub, settled: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory cannot undo half an event: when a projection raises there, the whole replay runs again
    through SQL (which rolls back to a savepoint) and the result is still the live views."""
    del settled
    real = projector
    failed: list[str] = []

    def failing_once_in_memory(ctx: Any) -> Any:
        project = real(ctx)

        def first(repo: Any, envelope: Any, message: Any) -> None:
            project(repo, envelope, message)  # the event is applied: what memory cannot undo
            if isinstance(repo, MemoryHub) and not failed:
                failed.append(envelope.id)
                raise RuntimeError("a projection's bug")

        return first

    monkeypatch.setattr(rb, "projector", failing_once_in_memory)
    lines: list[str] = []
    assert rb.rebuild(hub.settings, compare_only=True, progress=False, echo=lines.append) == 0, lines
    assert len(failed) == 1
    assert any(f"a projection failed on event {failed[0]}" in line for line in lines), lines
    assert any("identical to the live views" in line for line in lines), lines


def test_swap_is_refused_while_the_live_hub_consumes(hub: Hub, settled: int) -> None:
    del settled
    group = rb.live_group(hub.settings)
    with pytest.raises(rb.SwapRefusedError, match=group):
        rb.rebuild(hub.settings, progress=False, echo=lambda _: None)
    assert _schemas(hub.database_url, f"{hub.settings.service_name}_rb_%") == []
    assert _schemas(hub.database_url, f"{hub.settings.service_name}_old_%") == []
    result = CliRunner().invoke(cli, ["hub", "rebuild", "--yes", "--no-progress"], env=_env(hub.settings))
    assert result.exit_code == 1
    assert group in result.output


def _warnings(hub: Hub) -> float:
    response = hub.call("GetDashboard", hub_pb2.GetDashboardRequest(granularity=hub_pb2.GRANULARITY_DAY))
    return float(next(f.value for f in response.figures if f.name == "warnings_raised"))


def _redeem(hub: Hub, token: str) -> None:
    metadata = (("authorization", f"Bearer {token}"),)
    hub.stub.RedeemLoginLink(hub_pb2.RedeemLoginLinkRequest(), metadata=metadata, timeout=30)


def _assert_used(hub: Hub, token: str) -> None:
    with pytest.raises(grpc.RpcError) as reused:
        _redeem(hub, token)
    assert reused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@dataclass
class _OwnHub:
    """A hub's settings on topics of its own, the producer feeding them and its security, for tests that
    start, stop and restart the hub themselves (around a swap)."""

    settings: HubSettings
    producer: Any
    security: SecuritySettings
    kafka_bootstrap: str
    database_url: str

    @contextmanager
    def running(self) -> Iterator[Hub]:
        with build(self.settings, configure_logs=False, security=self.security) as runtime:
            runtime.start()
            with grpc.insecure_channel(runtime.address) as channel:
                yield Hub(
                    runtime,
                    self.settings,
                    hub_pb2_grpc.HubServiceStub(channel),
                    TokenIssuer.from_settings(self.security),
                    self.kafka_bootstrap,
                    self.database_url,
                    self.producer,
                )


@contextmanager
def _own_hub(kafka_bootstrap: str, database_url: str, security: SecuritySettings) -> Iterator[_OwnHub]:
    settings = hub_settings(kafka_bootstrap, database_url, secrets.token_hex(4))
    topics = [*settings.domain_topics, settings.hub_events_topic]
    ensure_topics(kafka_bootstrap, topics, partitions=3, replication=1)
    producer = make_producer(kafka_bootstrap)
    schema = settings.service_name
    try:
        yield _OwnHub(settings, producer, security, kafka_bootstrap, database_url)
    finally:
        producer.close(timeout=5)
        with psycopg.connect(database_url, autocommit=True) as conn:
            for name in _schemas(database_url, f"{schema}_old_%") + _schemas(database_url, f"{schema}_rb_%"):
                conn.execute(f'DROP SCHEMA "{name}" CASCADE')
        delete_topics(kafka_bootstrap, [*topics, *(f"{t}.dlq" for t in topics)])


def test_swap_on_a_stopped_hub_and_the_restarted_hub_continues(
    kafka_bootstrap: str, database_url: str, hub_security: SecuritySettings
) -> None:
    with _own_hub(kafka_bootstrap, database_url, hub_security) as own:
        settings, schema = own.settings, own.settings.service_name
        # A hub runs, consumes a mix of events, and its views are damaged behind its back; then it stops.
        with own.running() as first:
            count = _scenario(first, "swap")
            # A login link redeemed before the swap: history the rebuild must carry over.
            link = first.issuer.issue(sub="web-person", roles=("duty_room",), scopes=("site:S-1",), ttl_s=600)
            _redeem(first, link)
            _settle(first, count)
            warnings_before = _warnings(first)
            applied_before = first.applied()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DELETE FROM \"{schema}\".dashboard_facts WHERE metric = 'warnings_raised'")
        admin: Any = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            group = rb.live_group(settings)
            wait_until(
                lambda: not admin.describe_groups([group])[group]["members"] or None,
                timeout_s=60,
                what="the stopped hub left its group",
            )
        finally:
            admin.close()

        lines: list[str] = []
        assert rb.rebuild(settings, confirm=lambda _: True, progress=False, echo=lines.append) == 0
        assert any(
            line.startswith("dashboard_facts: 0 row(s) only in live, 1 only in the rebuild") for line in lines
        ), lines
        old = _schemas(database_url, f"{schema}_old_%")
        assert len(old) == 1
        assert any(f"kept as {old[0]}" in line for line in lines)
        assert _schemas(database_url, f"{schema}_rb_%") == []

        # The hub restarted on the swapped schema: the repaired views, and it carries on from the snapshot.
        with own.running() as again:
            assert _warnings(again) == warnings_before
            # The link used before the swap stays used (carried over, not forgotten by the replay).
            _assert_used(again, link)
            # It starts from the replay's snapshot: the replayed ids are there, nothing is applied twice.
            assert again.applied() >= applied_before
            after = again.publish(
                safety.AlertRaised(alert_id="a-after", site_id="site-swap", severity=MEDIUM),
                key="a-after",
                subject="a-after",
            )
            again.wait_event_applied(after.id)
            assert _warnings(again) == warnings_before + 1


class _BackgroundRebuild:
    """``rb.rebuild(..., wait_for_stop_s=...)`` in a thread, which says when it asks for the hub to stop."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.lines: list[str] = []
        self.asked = threading.Event()
        self.code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="rebuild", daemon=True)

    def _echo(self, line: str) -> None:
        self.lines.append(line)
        if "stop the hub now" in line:
            self.asked.set()

    def _run(self) -> None:
        try:
            self.code = rb.rebuild(
                self.settings, confirm=lambda _: True, progress=False, echo=self._echo, wait_for_stop_s=120
            )
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            self.error = error
            self.asked.set()

    def start_and_wait_for_the_ask(self) -> None:
        self.thread.start()
        assert self.asked.wait(timeout=120), self.lines
        assert self.error is None, self.error

    def finish(self) -> list[str]:
        self.thread.join(timeout=180)
        assert not self.thread.is_alive(), self.lines
        assert self.error is None, self.error
        assert self.code == 0, self.lines
        return self.lines


def test_a_rebuild_replays_while_the_hub_runs_and_catches_up_once_it_stops(
    kafka_bootstrap: str, database_url: str, hub_security: SecuritySettings
) -> None:
    """--wait-for-stop: the hub serves through the replay; what it consumed meanwhile (after the replay's
    snapshot) is caught up once it stops, so the rebuild still equals the live views and is swapped in."""
    with _own_hub(kafka_bootstrap, database_url, hub_security) as own:
        rebuilding = _BackgroundRebuild(own.settings)
        with own.running() as live:
            first = _scenario(live, "before")
            _settle(live, first)
            rebuilding.start_and_wait_for_the_ask()
            # The hub still serves and consumes: events after the snapshot, applied live.
            tail = _scenario(live, "during")
            _settle(live, first + tail)
            warnings_live = _warnings(live)
            applied_live = live.applied()
        # The hub has stopped (the runtime closed): the rebuild catches up, compares and swaps.
        lines = rebuilding.finish()
        caught = next(line for line in lines if "caught up with" in line)
        assert int(caught.split("caught up with ")[1].split()[0]) >= tail, caught
        assert any("identical to the live views" in line for line in lines), lines

        with own.running() as again:
            # The swapped-in views hold the tail too, and nothing is applied twice.
            assert _warnings(again) == warnings_live
            assert again.applied() >= applied_live


def test_a_rebuild_waiting_for_a_hub_that_is_not_stopped_gives_up_and_drops_itself(
    hub: Hub, settled: int
) -> None:
    del settled
    lines: list[str] = []
    with pytest.raises(rb.RebuildError, match="not stopped within 2 s"):
        rb.rebuild(hub.settings, confirm=lambda _: True, progress=False, echo=lines.append, wait_for_stop_s=2)
    assert any("stop the hub now" in line for line in lines), lines
    assert _schemas(hub.database_url, f"{hub.settings.service_name}_rb_%") == []
