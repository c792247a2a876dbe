"""Order independence of the hub's projections: two hubs, each on its own schema and topics, are given the
SAME set of domain events of all five domains in DIFFERENT orders (interleaved differently, and under
other keys so they land in other partitions and are consumed in yet another interleaving). Every
projection table of the two schemas must come out identical row for row — compared with the rebuild's own
comparison (services/hub/rebuild.compare) — because live consumption and a replay see different orders.

Events of one key keep their relative order in both (Kafka keeps a partition's order and a domain keys
an entity's events alike); across keys anything goes — deliberately including an acknowledgement of a
safety alert published under another key than the alert, so it may arrive first."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import zip_longest
from typing import Any

import grpc
import psycopg
from cityhub.commerce.v1 import events_pb2 as commerce
from cityhub.common.v1 import common_pb2
from cityhub.govservice.v1 import events_pb2 as govservice
from cityhub.govservice.v1 import govservice_pb2
from cityhub.hub.v1 import hub_pb2_grpc
from cityhub.industry.v1 import events_pb2 as industry
from cityhub.industry.v1 import industry_pb2, telemetry_pb2
from cityhub.kitchen.v1 import events_pb2 as kitchen
from cityhub.safety.v1 import events_pb2 as safety
from cityhub.safety.v1 import safety_pb2
from google.protobuf.message import Message

from services.hub import rebuild as rb
from services.hub.bootstrap import PROJECTION_CONSUMER, build
from services.hub.domain.inbox import bucket_start
from services.platform.kafka import ensure_topics, make_producer
from services.platform.protoconv import to_timestamp
from services.platform.security import SecuritySettings, TokenIssuer
from tests.integration.hub.conftest import hub_settings
from tests.integration.hub.hub_support import Hub
from tests.kafka_support import delete_topics
from tests.support import wait_until

MEDIUM, HIGH = common_pb2.SEVERITY_MEDIUM, common_pb2.SEVERITY_HIGH
# Nothing escalates during the test: an escalation's time is the escalator's clock, not an event's.
_NO_ESCALATION = {f"hub_escalate_{s}_s": 30 * 86400.0 for s in ("critical", "high", "medium", "low")} | {
    "hub_escalation_check_interval_s": 3600.0
}


@dataclass(frozen=True)
class Spec:
    message: Message
    key: str
    at: datetime
    event_id: str


def _streams(tag: str) -> list[list[Spec]]:
    """The events, one list per key (in that key's order). Times sit inside one dedup bucket."""
    base = bucket_start(datetime.now(UTC) - timedelta(hours=3), timedelta(hours=1)) + timedelta(minutes=2)
    streams: dict[str, list[Spec]] = {}

    def put(key: str, minutes: float, message: Message) -> None:
        at = base + timedelta(minutes=minutes)
        streams.setdefault(key, []).append(Spec(message, key, at, str(uuid.uuid4())))

    site, near, kit = f"site-{tag}", f"site2-{tag}", f"kit-{tag}"
    park, credit = f"park-{tag}", f"91331004MA{tag.upper()[:6]:0<6}1X"
    ch1, ch2, app = f"ch1-{tag}", f"ch2-{tag}", f"ap-{tag}"
    here = common_pb2.GeoPoint(latitude=28.5801, longitude=121.3801)
    # Registrations (some will arrive after the alerts about them in one order or the other).
    put(
        site,
        0,
        safety.SiteRegistered(
            site_id=site,
            name="No. 3 Primary School",
            town="路桥街道",
            division_code="331004",
            location=here,
            kind=safety_pb2.SITE_KIND_SCHOOL,
        ),
    )
    put(
        near,
        1,
        safety.SiteRegistered(
            site_id=near,
            name="Riverside Market",
            town="路北街道",
            division_code="331004",
            location=common_pb2.GeoPoint(latitude=28.5831, longitude=121.3821),
        ),
    )
    put(park, 0, industry.ParkRegistered(park_id=park, division_code="331004"))
    put(credit, 1, industry.EnterpriseOnboarded(credit_code=credit, park_id=park, division_code="331004"))
    for n in range(3):
        put(
            f"d{n}-{tag}",
            2,
            industry.DeviceRegistered(
                device_id=f"d{n}-{tag}", credit_code=credit, park_id=park, workshop="W1"
            ),
        )
    put(
        kit,
        2,
        kitchen.KitchenRegistered(
            kitchen_id=kit,
            site_id=site,
            name="Sunrise Kitchen",
            operator_credit_code=credit,
            operator_name="Sunrise Catering",
            town="路桥街道",
            location=here,
        ),
    )
    put(ch1, 3, commerce.ChamberCreated(chamber_id=ch1, name="Auto parts chamber", division_code="331004"))
    put(ch2, 3, commerce.ChamberCreated(chamber_id=ch2, name="Catering chamber", division_code="331004"))
    # Two chambers name the enterprise differently (one rank, different partitions).
    put(
        ch1,
        4,
        commerce.MembershipApproved(
            membership_id=f"m1-{tag}",
            chamber_id=ch1,
            credit_code=credit,
            enterprise_name="Sunrise Co.",
            town="路桥街道",
            sector="auto",
        ),
    )
    put(
        ch2,
        5,
        commerce.MembershipApproved(
            membership_id=f"m2-{tag}",
            chamber_id=ch2,
            credit_code=credit,
            enterprise_name="Sunrise Catering Ltd",
            town="路北街道",
            sector="food",
        ),
    )
    # Hourly summaries of three devices of the enterprise, two hours each; device states.
    for n in range(3):
        for hour in (1, 2):
            put(
                f"d{n}-{tag}",
                6 + hour,
                industry.UtilisationRolledUp(
                    device_id=f"d{n}-{tag}",
                    credit_code=credit,
                    park_id=park,
                    workshop="W1",
                    hour_started_at=to_timestamp(base.replace(minute=0) - timedelta(hours=3 - hour)),
                    figures=industry_pb2.UtilisationFigures(
                        availability=0.3 + 0.1 * n, oee=0.2 + 0.05 * n + hour / 100
                    ),
                ),
            )
        put(
            f"d{n}-{tag}",
            9 + n,
            industry.DeviceStateChanged(
                device_id=f"d{n}-{tag}",
                credit_code=credit,
                park_id=park,
                state=(
                    telemetry_pb2.DEVICE_STATE_RUNNING,
                    telemetry_pb2.DEVICE_STATE_FAULT,
                    telemetry_pb2.DEVICE_STATE_IDLE,
                )[n],
            ),
        )
    # Device faults of two devices (one item of the enterprise), one of them cleared.
    put(
        f"d0-{tag}",
        20,
        industry.DeviceAlertRaised(
            alert_id=f"da0-{tag}", device_id=f"d0-{tag}", credit_code=credit, park_id=park, severity=MEDIUM
        ),
    )
    put(
        f"d1-{tag}",
        21,
        industry.DeviceAlertRaised(
            alert_id=f"da1-{tag}", device_id=f"d1-{tag}", credit_code=credit, park_id=park, severity=HIGH
        ),
    )
    put(
        f"d0-{tag}",
        26,
        industry.DeviceAlertCleared(
            alert_id=f"da0-{tag}", device_id=f"d0-{tag}", credit_code=credit, park_id=park
        ),
    )
    # The school's safety alert and its kitchen's cold-chain alert near in time; a market nearby alerts too.
    put(
        f"a1-{tag}",
        22,
        safety.AlertRaised(
            alert_id=f"a1-{tag}", site_id=site, severity=HIGH, level=safety_pb2.RISK_LEVEL_HIGH
        ),
    )
    put(
        f"a1-{tag}",
        24,
        safety.AlertUpdated(
            alert_id=f"a1-{tag}",
            site_id=site,
            severity=HIGH,
            occurrences=2,
            level=safety_pb2.RISK_LEVEL_CRITICAL,
        ),
    )
    # Acknowledged under another key: it may arrive before the alert.
    put(
        f"ack-a1-{tag}",
        23,
        safety.AlertAcknowledged(alert_id=f"a1-{tag}", site_id=site, acknowledged_by="duty-room"),
    )
    put(
        f"a2-{tag}",
        23,
        safety.AlertRaised(
            alert_id=f"a2-{tag}", site_id=site, severity=MEDIUM, level=safety_pb2.RISK_LEVEL_LOW
        ),
    )
    put(f"a2-{tag}", 40, safety.AlertResolved(alert_id=f"a2-{tag}", site_id=site))
    put(
        f"a3-{tag}",
        25,
        safety.AlertRaised(
            alert_id=f"a3-{tag}", site_id=near, severity=MEDIUM, level=safety_pb2.RISK_LEVEL_ELEVATED
        ),
    )
    put(
        kit,
        23,
        kitchen.ColdChainAlertRaised(
            kitchen_id=kit, equipment_id="fridge-1", alert_id=f"cc-{tag}", limit_c=4, temperature_c=9.5
        ),
    )
    put(kit, 30, kitchen.ColdChainAlertCleared(kitchen_id=kit, equipment_id="fridge-1", alert_id=f"cc-{tag}"))
    put(kit, 24, kitchen.EquipmentOffline(kitchen_id=kit, equipment_id="fridge-2", alert_id=f"eo-{tag}"))
    # Commerce and govservice items and their closing events.
    put(
        ch1,
        30,
        commerce.ServiceRequestOverdue(service_request_id=f"sr-{tag}", chamber_id=ch1, credit_code=credit),
    )
    put(
        ch1,
        45,
        commerce.ServiceRequestResolved(service_request_id=f"sr-{tag}", chamber_id=ch1, credit_code=credit),
    )
    put(
        app,
        10,
        govservice.ApplicationFiled(
            application_no=app,
            filing_region="331004",
            handling_region="331004",
            credit_code=credit,
            applicant_kind=govservice_pb2.APPLICANT_KIND_ENTERPRISE,
        ),
    )
    put(
        app,
        35,
        govservice.ApplicationOverdue(application_no=app, handling_region="331004", due_date="2024-05-20"),
    )
    put(app, 50, govservice.ApplicationCompleted(application_no=app, handling_region="331004", on_time=False))
    return list(streams.values())  # fmt: skip


def _round_robin(streams: list[list[Spec]]) -> list[Spec]:
    return [spec for row in zip_longest(*streams) for spec in row if spec is not None]


def _stream_after_stream(streams: list[list[Spec]]) -> list[Spec]:
    return [spec for stream in reversed(streams) for spec in stream]


def _publish(hub: Hub, specs: list[Spec], key_suffix: str) -> None:
    for spec in specs:
        key = spec.key + key_suffix
        hub.publish(spec.message, key=key, subject=key, time=spec.at, event_id=spec.event_id)


def _wait_all_applied(hub: Hub, event_ids: list[str]) -> None:
    schema = hub.settings.service_name

    def done() -> bool | None:
        with psycopg.connect(hub.database_url, autocommit=True) as conn:
            row = conn.execute(
                f'SELECT count(*) FROM "{schema}".processed_events'
                " WHERE consumer = %s AND event_id = ANY(%s)",
                (PROJECTION_CONSUMER, event_ids),
            ).fetchone()
        return True if row and row[0] == len(event_ids) else None

    wait_until(done, timeout_s=60, what=f"{len(event_ids)} events applied by {schema}")


@contextmanager
def _running_hub(kafka_bootstrap: str, database_url: str, security: SecuritySettings) -> Iterator[Hub]:
    settings = hub_settings(kafka_bootstrap, database_url, secrets.token_hex(4), **_NO_ESCALATION)
    topics = [*settings.domain_topics, settings.hub_events_topic]
    ensure_topics(kafka_bootstrap, topics, partitions=3, replication=1)
    producer = make_producer(kafka_bootstrap)
    runtime = build(settings, configure_logs=False, security=security)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    try:
        yield Hub(
            runtime,
            settings,
            hub_pb2_grpc.HubServiceStub(channel),
            TokenIssuer.from_settings(security),
            kafka_bootstrap,
            database_url,
            producer,
        )
    finally:
        producer.close(timeout=5)
        channel.close()
        runtime.close()
        delete_topics(kafka_bootstrap, [*topics, *(f"{t}.dlq" for t in topics)])
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{settings.service_name}" CASCADE')


def _rows(hub: Hub, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(
        hub.database_url, autocommit=True, options=f"-c search_path={hub.settings.service_name}"
    ) as conn:
        return list(conn.execute(query).fetchall())


def test_the_same_events_in_different_orders_make_identical_projections(
    kafka_bootstrap: str, database_url: str, hub_security: SecuritySettings
) -> None:
    tag = secrets.token_hex(3)
    streams = _streams(tag)
    specs = [spec for stream in streams for spec in stream]
    ids = [spec.event_id for spec in specs]
    with (
        _running_hub(kafka_bootstrap, database_url, hub_security) as first,
        _running_hub(kafka_bootstrap, database_url, hub_security) as second,
    ):
        _publish(first, _round_robin(streams), "")
        _publish(second, _stream_after_stream(streams), "~b")
        _wait_all_applied(first, ids)
        _wait_all_applied(second, ids)

        diffs = rb.compare(first.settings.dsn, first.settings.service_name, second.settings.service_name)
        assert diffs == [], "\n".join(rb.describe(diffs))
        # A rebuild (folded in memory, in yet another order: partition by partition) makes them too.
        lines: list[str] = []
        assert rb.rebuild(first.settings, compare_only=True, progress=False, echo=lines.append) == 0, (
            "\n".join(lines)
        )

        # And the views are what the events say (not merely equally wrong).
        items = _rows(
            first,
            "SELECT kind, subject_kind, status, occurrence_count, incident_id, subject_id FROM inbox_items",
        )
        # The market nearby (site2) has a safety alert of its own: by kind, the others' items.
        by_kind = {(k, s): (st, n, inc) for k, s, st, n, inc, sid in items if sid != f"site2-{tag}"}
        assert by_kind[("DEVICE_FAULT", "ENTERPRISE")][:2] == ("OPEN", 2)  # two devices, one still faulty
        # The school's alerts: a1 (acknowledged, possibly before it arrived) and a2 (resolved) in one item.
        assert by_kind[("SAFETY_ALERT", "SITE")][:2] == ("ACKNOWLEDGED", 3)
        assert by_kind[("COLD_CHAIN", "KITCHEN")][:2] == ("RESOLVED", 1)
        assert by_kind[("APPLICATION_OVERDUE", "APPLICATION")][0] == "RESOLVED"
        assert by_kind[("SERVICE_REQUEST_OVERDUE", "CHAMBER")][0] == "RESOLVED"
        incidents = _rows(first, "SELECT incident_id, reasons FROM inbox_incidents")
        assert len(incidents) == 1
        incident_id, reasons = incidents[0]
        assert list(reasons) == sorted(reasons)
        members = [i for i in items if i[4] == incident_id]
        # The school, its kitchen (two items), the kitchen's operator, the market within the distance.
        assert len(members) >= 4
        assert any(str(r).startswith("within ") for r in reasons)
        names = _rows(first, "SELECT name, town FROM entities WHERE kind = 'ENTERPRISE'")
        # Of two approvals of one rank, the later one's name and town.
        assert names == [("Sunrise Catering Ltd", "路北街道")]
