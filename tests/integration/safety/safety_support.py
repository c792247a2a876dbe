"""Helpers for the safety service's integration tests: a client over a real gRPC channel with tokens signed
by a throwaway key pair, alert watchers, reading events back from Kafka (with tests/kafka_support.py),
looking at the service's own tables, made-up identity numbers, bounded waits."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import grpc
import psycopg
from cityhub.common.v1 import common_pb2
from cityhub.safety.v1 import safety_pb2, safety_pb2_grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.platform.identifiers import identity_check_char
from services.platform.kafka import decode_payload, envelope_from_record
from services.platform.runtime import ServiceRuntime
from services.platform.security import TokenIssuer
from services.safety.grpc_api import WATCH_LIVE_METADATA
from services.safety.settings import SafetySettings
from tests.kafka_support import read_records
from tests.support import wait_until

T = TypeVar("T")
OPERATOR = ("district_operator",)
SERVICE = ("service",)
POLICE = ("police",)
PURPOSE = quote("incident at the north wall, 学校 duty 2026-031")


def made_up_identity(seed: int) -> str:
    """A well-formed (valid check digit) but invented resident identity number."""
    first17 = f"33100419850317{seed % 1000:03d}"
    return first17 + identity_check_char(first17)


def wrong_check_digit(number: str) -> str:
    return number[:17] + ("0" if number[17] != "0" else "1")


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Watcher:
    """A WatchAlerts stream read in a background thread."""

    call: Any
    received: list[safety_pb2.WatchAlertsResponse] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)
    error: grpc.RpcError | None = None

    def start(self) -> Watcher:
        # Headers arrive once the service is listening: nothing committed after this is missed.
        headers = dict(self.call.initial_metadata())
        assert headers.get(WATCH_LIVE_METADATA) == "true", headers
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        try:
            for response in self.call:
                self.received.append(response)
        except grpc.RpcError as error:
            self.error = error
        finally:
            self.ended.set()

    def changes(self, alert_id: str) -> list[int]:
        return [r.change for r in self.received if r.alert.alert_id == alert_id]

    def wait_for(
        self, predicate: Callable[[safety_pb2.WatchAlertsResponse], bool], what: str, timeout_s: float = 15
    ) -> safety_pb2.WatchAlertsResponse:
        return wait_until(
            lambda: next((r for r in self.received if predicate(r)), None), timeout_s=timeout_s, what=what
        )

    def cancel(self) -> None:
        self.call.cancel()
        self.ended.wait(5)


@dataclass
class Safety:
    runtime: ServiceRuntime
    settings: SafetySettings
    stub: safety_pb2_grpc.SafetyServiceStub
    issuer: TokenIssuer
    kafka_bootstrap: str
    database_url: str

    def token(self, roles: Sequence[str], scopes: Sequence[str] = (), sub: str = "") -> str:
        return self.issuer.issue(
            sub=sub or f"tester-{secrets.token_hex(3)}", roles=roles, scopes=scopes, ttl_s=3600
        )

    def metadata(
        self, roles: Sequence[str], scopes: Sequence[str] = (), *, purpose: str | None = None, sub: str = ""
    ) -> tuple[tuple[str, str | bytes], ...]:
        found: list[tuple[str, str | bytes]] = [("authorization", f"Bearer {self.token(roles, scopes, sub)}")]
        if purpose is not None:
            found.append(("x-purpose", purpose))
        return tuple(found)

    def call(
        self,
        rpc: str,
        request: Message,
        *,
        roles: Sequence[str] = OPERATOR,
        scopes: Sequence[str] = (),
        purpose: str | None = None,
        sub: str = "",
    ) -> Any:
        method = getattr(self.stub, rpc)
        return method(request, metadata=self.metadata(roles, scopes, purpose=purpose, sub=sub), timeout=30)

    def refused(self, rpc: str, request: Message, **kwargs: Any) -> grpc.RpcError:
        try:
            self.call(rpc, request, **kwargs)
        except grpc.RpcError as error:
            return error
        raise AssertionError(f"{rpc} was accepted")

    def watch(
        self,
        roles: Sequence[str],
        scopes: Sequence[str] = (),
        *,
        site_id: str = "",
        include_open: bool = False,
        sub: str = "",
    ) -> Watcher:
        call = self.stub.WatchAlerts(
            safety_pb2.WatchAlertsRequest(site_id=site_id, include_open=include_open),
            metadata=self.metadata(roles, scopes, sub=sub),
            timeout=120,
        )
        return Watcher(call).start()

    def duty_room(self, site_id: str) -> dict[str, Any]:
        """Call keyword arguments acting as ``site_id``'s duty room."""
        return {"roles": ("duty_room",), "scopes": (f"site:{site_id}",), "sub": f"duty-{site_id[-6:]}"}

    # --- shortcuts ----------------------------------------------------------------------------------

    def register_site(
        self,
        name: str,
        kind: safety_pb2.SiteKind.ValueType = safety_pb2.SITE_KIND_SCHOOL,
        town: str = "Luqiao Street",
    ) -> safety_pb2.Site:
        response = self.call(
            "RegisterSite",
            safety_pb2.RegisterSiteRequest(
                request_id=f"site-{secrets.token_hex(6)}",
                name=name,
                kind=kind,
                address="18 Tongyu Road, Luqiao District, Taizhou",
                division_code="331004",
                town=town,
                location=common_pb2.GeoPoint(latitude=28.58, longitude=121.38),
                duty_room=safety_pb2.DutyRoomContact(name="Gate duty room", phone="0576-8288 1234"),
            ),
        )
        return response.site  # type: ignore[no-any-return]

    def register_sensor(
        self, site_id: str, kind: safety_pb2.SensorKind.ValueType, zone: str, name: str = ""
    ) -> safety_pb2.Sensor:
        response = self.call(
            "RegisterSensor",
            safety_pb2.RegisterSensorRequest(
                request_id=f"sensor-{secrets.token_hex(6)}", site_id=site_id, kind=kind, zone=zone, name=name
            ),
        )
        return response.sensor  # type: ignore[no-any-return]

    def record_person(
        self, seed: int, flags: Sequence[safety_pb2.RiskFlag.ValueType], name: str = "Made-up Person"
    ) -> str:
        response = self.call(
            "RecordPerson",
            safety_pb2.RecordPersonRequest(
                request_id=f"person-{secrets.token_hex(6)}",
                identity_number=made_up_identity(seed),
                name=name,
                risk_flags=list(flags),
            ),
            roles=POLICE,
        )
        return response.person_token  # type: ignore[no-any-return]

    def detection(
        self,
        sensor_id: str,
        kind: safety_pb2.DetectionKind.ValueType,
        *,
        confidence: float = 0.9,
        at: datetime | None = None,
        **extra: Any,
    ) -> safety_pb2.DetectionInput:
        return safety_pb2.DetectionInput(
            sensor_id=sensor_id,
            kind=kind,
            detected_at=ts(at or now() - timedelta(seconds=5)),
            confidence=confidence,
            snapshot_ref=f"snapshots/{secrets.token_hex(4)}.jpg",
            **extra,
        )

    def report(self, *detections: safety_pb2.DetectionInput, request_id: str = "") -> Any:
        return self.call(
            "ReportDetections",
            safety_pb2.ReportDetectionsRequest(
                request_id=request_id or f"batch-{secrets.token_hex(6)}", detections=list(detections)
            ),
            roles=SERVICE,
        )

    # --- looking behind the API ---------------------------------------------------------------------

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Read the service's own tables (as the admin user, in the service's schema)."""
        schema = self.settings.service_name
        with psycopg.connect(self.database_url, options=f"-c search_path={schema}") as conn:
            return list(conn.execute(query, params).fetchall())

    def outbox_subjects(self) -> list[str]:
        return [row[0] for row in self.sql("SELECT ce_subject FROM outbox ORDER BY id")]

    def _outbox_drained(self) -> tuple[int] | None:
        unsent, total = self.sql("SELECT count(*) FILTER (WHERE sent_at IS NULL), count(*) FROM outbox")[0]
        return None if unsent else (int(total),)

    def published(self) -> list[Any]:
        """Every record the service has published so far: waits until its outbox relay has sent every
        event committed before the call, then reads (at least) that many records off the topic."""
        (count,) = wait_until(self._outbox_drained, timeout_s=30, what="the outbox relay to send every event")
        return read_records(self.kafka_bootstrap, self.settings.safety_events_topic, count, timeout_s=30)

    def events(self, subjects: set[str]) -> list[tuple[str, Message]]:
        """Published events whose subject is one of ``subjects``: (ce_type, message), in order per key."""
        found: list[tuple[str, Message]] = []
        for record in self.published():
            envelope = envelope_from_record(record)
            if envelope.subject in subjects:
                found.append((envelope.type, decode_payload(envelope.type, envelope.payload)))
        return found

    def raw_event_payloads(self) -> list[bytes]:
        """Every record value on the events topic (to check what never appears in any of them)."""
        return [bytes(record.value) for record in self.published()]

    def wait_for_events(
        self, subjects: set[str], done: Callable[[list[tuple[str, Message]]], bool], *, what: str
    ) -> list[tuple[str, Message]]:
        """The events of ``subjects`` once everything committed so far is on the topic; ``done`` must
        hold for them (the RPCs that made them have returned, so nothing more is coming)."""
        found = self.events(subjects)
        assert done(found), f"{what}: not among the published events {[t for t, _ in found]}"
        return found
