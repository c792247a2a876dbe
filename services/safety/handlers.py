"""The safety service's use cases. Each command is one transaction that writes its state, its event rows
(transactional outbox) and, for alert changes, its ``pg_notify`` to watchers; nothing is stored,
published or announced unless all of it commits.

Requests are checked in full before anything is written: field checks first (the domain), then checks
against stored state (does the sensor exist?) inside the transaction but before any write, so a refused
request leaves nothing behind. Creates carry a client request id: the first request claims it, a replay
gets the same result, and another request reusing it is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from services.platform.errors import InvalidArgumentError, NotFoundError, Violations
from services.platform.identifiers import invalid_identity_number
from services.platform.logs import get_logger
from services.platform.outbox import OutboxWriter
from services.safety import mapping
from services.safety.alert_feed import CLOSED, RESYNC, AlertFeed, Change
from services.safety.domain import alerts as rules
from services.safety.domain.access import Viewer
from services.safety.domain.commands import (
    Acknowledge,
    Dispatch,
    Page,
    RaiseAlarm,
    RecordInspection,
    RecordPerson,
    RecordPurchase,
    RegisterSensor,
    RegisterSite,
    ReportDetections,
    Resolve,
    StatisticsQuery,
    UpdateUnit,
    fingerprint_material,
)
from services.safety.domain.model import (
    Alert,
    AlertChangeKind,
    AlertOutcome,
    AlertStatus,
    AlertTrigger,
    Detection,
    DetectionKind,
    DispatchedUnit,
    HazardousItem,
    Inspection,
    InspectionFinding,
    PersonRecord,
    PurchaseRecord,
    RiskFlag,
    RiskLevel,
    Sensor,
    SensorKind,
    Site,
    SiteKind,
    TimelineEntry,
    TimelineKind,
    UnitStatus,
)
from services.safety.domain.risk import (
    MIN_CONFIDENCE,
    PURCHASE_LOOKBACK,
    Assessment,
    Observation,
    PersonProfile,
    PurchaseFact,
    assess,
    panic_assessment,
)
from services.safety.domain.statistics import Figures, Mean, total
from services.safety.repository import PurchaseRow, SafetyRepository
from services.safety.vault import PersonVault

__all__ = ["ReportResult", "SafetyConfig", "SafetyUseCases", "SiteAssessment"]

log = get_logger()
Conn = psycopg.Connection[Any]
SYSTEM = "system"
_ALARM_SENSORS = frozenset({SensorKind.PANIC_BUTTON, SensorKind.PATROL_APP})
_UNIT_LABEL = {
    "police_station": "police station",
    "patrol_swat": "patrol/SWAT brigade",
    "police_drone": "police drone unit",
    "public_order": "public-order brigade",
    "site_guards": "site guards",
}


@dataclass(frozen=True, slots=True)
class SafetyConfig:
    risk_window: timedelta
    dedup_window: timedelta
    timezone: str
    alert_channel: str


@dataclass(frozen=True, slots=True)
class SiteAssessment:
    site_id: str
    level: RiskLevel
    reasons: tuple[str, ...]
    alert_id: str
    alert_raised: bool
    assessed_at: datetime


@dataclass(frozen=True, slots=True)
class ReportResult:
    detection_ids: tuple[str, ...]
    assessments: tuple[SiteAssessment, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "detection_ids": list(self.detection_ids),
            "assessments": [
                {
                    "site_id": a.site_id,
                    "level": a.level.value,
                    "reasons": list(a.reasons),
                    "alert_id": a.alert_id,
                    "alert_raised": a.alert_raised,
                    "assessed_at": a.assessed_at.isoformat(),
                }
                for a in self.assessments
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReportResult:
        return cls(
            tuple(data["detection_ids"]),
            tuple(
                SiteAssessment(
                    a["site_id"],
                    RiskLevel(a["level"]),
                    tuple(a["reasons"]),
                    a["alert_id"],
                    a["alert_raised"],
                    datetime.fromisoformat(a["assessed_at"]),
                )
                for a in data["assessments"]
            ),
        )


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def encode_cursor(at: datetime, ident: str) -> str:
    raw = json.dumps([at.isoformat(), ident], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, field: str = "page.page_token") -> tuple[datetime, str] | None:
    if not token:
        return None
    refused = InvalidArgumentError.of(field, "is not a token this service issued")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        at_text, ident = json.loads(raw)
        at = datetime.fromisoformat(at_text)
    except (binascii.Error, ValueError, TypeError):
        raise refused from None
    if not isinstance(ident, str) or at.tzinfo is None:
        raise refused
    return at, ident


def _require_site_id(site_id: str) -> None:
    if not site_id:
        raise InvalidArgumentError.of("site_id", "is required")


def _page(
    items: Sequence[Any], page: Page, key: Callable[[Any], tuple[datetime, str]]
) -> tuple[list[Any], str]:
    """``items`` fetched with ``page.size + 1``: the page and the next token ("" on the last page)."""
    if len(items) > page.size:
        shown = list(items[: page.size])
        return shown, encode_cursor(*key(shown[-1]))
    return list(items), ""


class SafetyUseCases:
    def __init__(
        self,
        pool: ConnectionPool,
        repository: SafetyRepository,
        outbox: OutboxWriter,
        vault: PersonVault,
        config: SafetyConfig,
        *,
        feed: AlertFeed,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._repo = repository
        self._outbox = outbox
        self._vault = vault
        self._config = config
        self._feed = feed
        self._clock = clock

    # --- request ids ------------------------------------------------------------------------------

    def _claim(self, conn: Conn, operation: str, request_id: str, command: object) -> dict[str, Any] | None:
        """None when this request is the first with its id; the stored result of the first otherwise."""
        if not request_id:
            return None
        fingerprint = self._vault.mac(fingerprint_material(command))
        if self._repo.claim_request(conn, operation, request_id, fingerprint):
            return None
        stored, result = self._repo.get_request(conn, operation, request_id)
        if stored != fingerprint:
            raise InvalidArgumentError.of("request_id", "was already used for a different request")
        log.info("request_replayed", operation=operation, request_id=request_id)
        return result or {}

    def _remember(self, conn: Conn, operation: str, request_id: str, result: dict[str, Any]) -> None:
        if request_id:
            self._repo.set_request_result(conn, operation, request_id, result)

    # --- sites and sensors ------------------------------------------------------------------------

    def register_site(self, command: RegisterSite) -> Site:
        command.check()
        assert command.kind is not None
        with self._pool.connection() as conn, conn.transaction():
            replay = self._claim(conn, "register_site", command.request_id, command)
            if replay is not None:
                return self._site(conn, replay["site_id"])
            site = Site(
                site_id=new_id("site"),
                name=command.name.strip(),
                kind=command.kind,
                address=command.address.strip(),
                division_code=command.division_code,
                town=command.town.strip(),
                latitude=command.latitude,
                longitude=command.longitude,
                duty_room_name=command.duty_room_name.strip(),
                duty_room_phone=command.duty_room_phone.strip(),
                registered_at=self._clock(),
            )
            self._repo.insert_site(conn, site)
            self._outbox.add(
                conn, key=site.site_id, subject=site.site_id, message=mapping.site_registered(site)
            )
            self._remember(conn, "register_site", command.request_id, {"site_id": site.site_id})
        log.info("site_registered", site_id=site.site_id, kind=site.kind.value)
        return site

    def _site(self, conn: Conn, site_id: str) -> Site:
        site = self._repo.get_site(conn, site_id)
        if site is None:
            raise NotFoundError(f"site {site_id} not found")
        return site

    def get_site(self, site_id: str, viewer: Viewer) -> Site:
        _require_site_id(site_id)
        viewer.require(site_id, f"site {site_id}")
        with self._pool.connection() as conn:
            return self._site(conn, site_id)

    def list_sites(
        self, viewer: Viewer, kind: SiteKind | None, division_code: str, town: str, page: Page
    ) -> tuple[list[Site], str]:
        after = decode_cursor(page.token)
        with self._pool.connection() as conn:
            sites = self._repo.list_sites(
                conn,
                site_ids=None if viewer.all_sites else viewer.site_ids,
                kind=kind,
                division_code=division_code,
                town=town,
                after=after,
                limit=page.size + 1,
            )
        return _page(sites, page, lambda s: (s.registered_at, s.site_id))

    def register_sensor(self, command: RegisterSensor) -> Sensor:
        command.check()
        assert command.kind is not None
        with self._pool.connection() as conn, conn.transaction():
            replay = self._claim(conn, "register_sensor", command.request_id, command)
            if replay is not None:
                return self._repo.get_sensors(conn, [replay["sensor_id"]])[replay["sensor_id"]]
            if self._repo.get_site(conn, command.site_id) is None:
                raise InvalidArgumentError.of("site_id", f"unknown site {command.site_id}")
            sensor = Sensor(
                sensor_id=new_id("sensor"),
                site_id=command.site_id,
                kind=command.kind,
                zone=" ".join(command.zone.split()),
                name=command.name.strip(),
                device_code=command.device_code.strip(),
                registered_at=self._clock(),
            )
            self._repo.insert_sensor(conn, sensor)
            self._outbox.add(
                conn,
                key=sensor.sensor_id,
                subject=sensor.sensor_id,
                message=mapping.sensor_registered(sensor),
            )
            self._remember(conn, "register_sensor", command.request_id, {"sensor_id": sensor.sensor_id})
        log.info(
            "sensor_registered", sensor_id=sensor.sensor_id, site_id=sensor.site_id, kind=sensor.kind.value
        )
        return sensor

    def list_sensors(self, site_id: str, kind: SensorKind | None, page: Page) -> tuple[list[Sensor], str]:
        _require_site_id(site_id)
        after = decode_cursor(page.token)
        with self._pool.connection() as conn:
            sensors = self._repo.list_sensors(conn, site_id, kind, after, page.size + 1)
        return _page(sensors, page, lambda s: (s.registered_at, s.sensor_id))

    # --- persons ----------------------------------------------------------------------------------

    def record_person(self, command: RecordPerson) -> tuple[str, bool]:
        """Record (or update) a person of concern; returns the token and whether the person was new."""
        command.check()
        token = self._vault.token_for(command.identity_number)
        flags = sorted({f for f in command.risk_flags if f is not None}, key=list(RiskFlag).index)
        with self._pool.connection() as conn, conn.transaction():
            replay = self._claim(conn, "record_person", command.request_id, command)
            if replay is not None:
                return str(replay["person_token"]), bool(replay["created"])
            sealed = self._vault.seal(
                "person",
                token,
                {
                    "identity_number": command.identity_number.strip().upper(),
                    "name": command.name.strip(),
                    "flags": [f.value for f in flags],
                },
            )
            created = self._repo.upsert_person(conn, token, sealed, self._clock())
            self._remember(
                conn, "record_person", command.request_id, {"person_token": token, "created": created}
            )
        log.info("person_recorded", person_token=token, created=created, flag_count=len(flags))
        return token, created

    def find_person(self, identity_number: str) -> str | None:
        problem = invalid_identity_number(identity_number.strip().upper())
        if problem:
            raise InvalidArgumentError.of("identity_number", problem)
        token = self._vault.token_for(identity_number)
        with self._pool.connection() as conn:
            return token if self._repo.person_exists(conn, token) else None

    def get_person(self, person_token: str) -> PersonRecord:
        if not person_token:
            raise InvalidArgumentError.of("person_token", "is required")
        with self._pool.connection() as conn:
            stored = self._repo.get_person(conn, person_token)
            if stored is None:
                raise NotFoundError(f"person {person_token} not found")
            purchases = self._repo.purchases_of(conn, [person_token])
        sealed, recorded_at, updated_at = stored
        profile = self._vault.open("person", person_token, sealed)
        return PersonRecord(
            person_token=person_token,
            identity_number=str(profile["identity_number"]),
            name=str(profile["name"]),
            risk_flags=tuple(RiskFlag(f) for f in profile["flags"]),
            purchases=tuple(self._open_purchase(row) for row in purchases),
            recorded_at=recorded_at,
            updated_at=updated_at,
        )

    def _open_purchase(self, row: PurchaseRow) -> PurchaseRecord:
        detail = self._vault.open("purchase", f"{row.person_token}/{row.purchase_id}", row.sealed)
        return PurchaseRecord(
            purchase_id=row.purchase_id,
            person_token=row.person_token,
            item=HazardousItem(detail["item"]),
            description=str(detail["description"]),
            quantity=float(detail["quantity"]),
            unit=str(detail["unit"]),
            purchased_at=row.purchased_at,
            place=str(detail["place"]),
        )

    def record_purchase(self, command: RecordPurchase) -> str:
        command.check(self._clock())
        assert command.item is not None
        assert command.purchased_at is not None
        with self._pool.connection() as conn, conn.transaction():
            replay = self._claim(conn, "record_purchase", command.request_id, command)
            if replay is not None:
                return str(replay["purchase_id"])
            if not self._repo.person_exists(conn, command.person_token):
                raise InvalidArgumentError.of("person_token", "is not a recorded person")
            purchase_id = new_id("purchase")
            sealed = self._vault.seal(
                "purchase",
                f"{command.person_token}/{purchase_id}",
                {
                    "item": command.item.value,
                    "description": command.description.strip(),
                    "quantity": command.quantity,
                    "unit": command.unit.strip(),
                    "place": command.place.strip(),
                },
            )
            self._repo.insert_purchase(
                conn,
                PurchaseRow(purchase_id, command.person_token, command.purchased_at, sealed),
                self._clock(),
            )
            self._remember(conn, "record_purchase", command.request_id, {"purchase_id": purchase_id})
        log.info("hazardous_purchase_recorded", purchase_id=purchase_id, person_token=command.person_token)
        return purchase_id

    def _profiles(self, conn: Conn, tokens: Sequence[str], at: datetime) -> dict[str, PersonProfile]:
        if not tokens:
            return {}
        sealed = self._repo.get_persons(conn, tokens)
        purchases: dict[str, list[PurchaseFact]] = {}
        for row in self._repo.purchases_of(conn, tokens, since=at - PURCHASE_LOOKBACK, until=at):
            record = self._open_purchase(row)
            purchases.setdefault(row.person_token, []).append(PurchaseFact(record.item, record.purchased_at))
        profiles = {}
        for token, blob in sealed.items():
            flags = frozenset(RiskFlag(f) for f in self._vault.open("person", token, blob)["flags"])
            profiles[token] = PersonProfile(token, flags, tuple(purchases.get(token, ())))
        return profiles

    # --- detections and alarms --------------------------------------------------------------------

    def report_detections(self, command: ReportDetections, viewer: Viewer) -> ReportResult:
        now = self._clock()
        command.check(now)
        with self._pool.connection() as conn, conn.transaction():
            replay = self._claim(conn, "report_detections", command.request_id, command)
            if replay is not None:
                return ReportResult.from_json(replay)
            sensors = self._repo.get_sensors(conn, (d.sensor_id for d in command.detections))
            known = self._repo.existing_persons(
                conn, (d.person_token for d in command.detections if d.person_token)
            )
            violations = Violations()
            for index, d in enumerate(command.detections):
                if d.sensor_id not in sensors:
                    violations.add(f"detections[{index}].sensor_id", f"unknown sensor {d.sensor_id}")
                if d.person_token and d.person_token not in known:
                    violations.add(f"detections[{index}].person_token", "is not a recorded person")
            violations.check()
            detections: list[Detection] = []
            for d in command.detections:
                sensor = sensors[d.sensor_id]
                assert d.kind is not None
                assert d.detected_at is not None
                detections.append(
                    Detection(
                        detection_id=new_id("det"),
                        site_id=sensor.site_id,
                        sensor_id=sensor.sensor_id,
                        zone=sensor.zone,
                        kind=d.kind,
                        detected_at=d.detected_at,
                        confidence=d.confidence,
                        snapshot_ref=d.snapshot_ref.strip(),
                        label=" ".join(d.label.split()),
                        person_token=d.person_token,
                        plate=d.plate.strip().upper(),
                    )
                )
            self._repo.insert_detections(conn, detections, now)
            assessments = [
                self._assess_site(
                    conn, site_id, [d for d in detections if d.site_id == site_id], now, viewer.actor
                )
                for site_id in sorted({d.site_id for d in detections})
            ]
            result = ReportResult(tuple(d.detection_id for d in detections), tuple(assessments))
            self._remember(conn, "report_detections", command.request_id, result.to_json())
        for a in assessments:
            log.info(
                "risk_assessed",
                site_id=a.site_id,
                level=a.level.value,
                alert_id=a.alert_id,
                raised=a.alert_raised,
            )
        return result

    def _assess_site(
        self, conn: Conn, site_id: str, batch: Sequence[Detection], now: datetime, actor: str
    ) -> SiteAssessment:
        # Held to the end of the transaction: two batches for one site cannot both open an alert.
        self._repo.lock_site_alerts(conn, site_id)
        at = max(d.detected_at for d in batch)
        window = self._repo.window_detections(conn, site_id, at - self._config.risk_window, at)
        observations = [
            Observation(d.kind, d.zone, d.detected_at, d.confidence, d.label, d.person_token, d.plate)
            for d in window
        ]
        faces = [d.person_token for d in window if d.kind is DetectionKind.FACE_MATCH and d.person_token]
        assessment = assess(observations, self._profiles(conn, sorted(set(faces)), at), at)
        counted = [d.detection_id for d in window if d.confidence >= MIN_CONFIDENCE]
        target = self._absorbing_alert(conn, site_id, assessment, at, panic=False)
        alert_id, raised = "", False
        if target is not None:
            detail = f"{len(batch)} more detection(s); level {assessment.level.value}"
            updated = self._absorb(
                conn,
                target,
                assessment,
                at=at,
                now=now,
                entry=TimelineEntry(now, TimelineKind.UPDATED, actor, detail),
            )
            self._repo.link_detections(conn, target.alert_id, counted)
            alert_id = updated.alert_id
        elif assessment.raises_alert:
            alert = self._raise(
                conn, site_id, assessment, trigger=AlertTrigger.RISK_ASSESSMENT, at=at, now=now, actor=actor
            )
            self._repo.link_detections(conn, alert.alert_id, counted)
            alert_id, raised = alert.alert_id, True
        self._outbox.add(
            conn,
            key=site_id,
            subject=site_id,
            message=mapping.risk_assessed(
                new_id("assessment"),
                site_id,
                assessment,
                detection_count=len(window),
                alert_id=alert_id,
                at=now,
            ),
        )
        return SiteAssessment(site_id, assessment.level, assessment.reasons, alert_id, raised, now)

    def _absorbing_alert(
        self, conn: Conn, site_id: str, assessment: Assessment, at: datetime, *, panic: bool
    ) -> Alert | None:
        if not panic and not assessment.detection_kinds:
            return None
        # Locked: an alert resolved meanwhile must not absorb the batch after it closed.
        candidates = self._repo.open_alerts(conn, [site_id], for_update=True)
        for alert in reversed(candidates):  # the newest open alert first
            if rules.absorbs(alert, assessment.detection_kinds, at, self._config.dedup_window, panic=panic):
                return alert
        return None

    def _raise(
        self,
        conn: Conn,
        site_id: str,
        assessment: Assessment,
        *,
        trigger: AlertTrigger,
        at: datetime,
        now: datetime,
        actor: str,
        note: str = "",
    ) -> Alert:
        site = self._site(conn, site_id)
        alert = Alert(
            alert_id=new_id("alert"),
            site_id=site_id,
            site_name=site.name,
            status=AlertStatus.RAISED,
            level=assessment.level,
            trigger=trigger,
            reasons=assessment.reasons,
            detection_kinds=assessment.detection_kinds,
            person_tokens=assessment.person_tokens,
            occurrences=1,
            first_detected_at=at,
            last_detected_at=at,
            raised_at=now,
            updated_at=now,
        )
        self._repo.insert_alert(conn, alert)
        detail = f"{assessment.level.value}: " + "; ".join(assessment.reasons)
        if note.strip():
            detail += f" (note: {' '.join(note.split())})"
        self._repo.add_timeline(
            conn, alert.alert_id, [TimelineEntry(now, TimelineKind.RAISED, actor, detail)]
        )
        self._outbox.add(
            conn, key=alert.alert_id, subject=alert.alert_id, message=mapping.alert_raised(alert)
        )
        self._notify(conn, alert, AlertChangeKind.RAISED)
        log.info(
            "alert_raised",
            alert_id=alert.alert_id,
            site_id=site_id,
            level=alert.level.value,
            trigger=trigger.value,
        )
        return alert

    def _absorb(
        self,
        conn: Conn,
        alert: Alert,
        assessment: Assessment,
        *,
        at: datetime,
        now: datetime,
        entry: TimelineEntry,
    ) -> Alert:
        merged = rules.merge(alert, assessment, at)
        self._repo.update_alert_assessment(
            conn,
            alert.alert_id,
            level=merged.level,
            reasons=merged.reasons,
            detection_kinds=merged.detection_kinds,
            person_tokens=merged.person_tokens,
            first_detected_at=merged.first_detected_at,
            last_detected_at=merged.last_detected_at,
            occurrences=merged.occurrences,
            updated_at=now,
        )
        self._repo.add_timeline(conn, alert.alert_id, [entry])
        updated = replace(
            alert,
            level=merged.level,
            reasons=merged.reasons,
            detection_kinds=merged.detection_kinds,
            person_tokens=merged.person_tokens,
            first_detected_at=merged.first_detected_at,
            last_detected_at=merged.last_detected_at,
            occurrences=merged.occurrences,
            updated_at=now,
        )
        self._outbox.add(
            conn, key=alert.alert_id, subject=alert.alert_id, message=mapping.alert_updated(updated)
        )
        self._notify(conn, updated, AlertChangeKind.UPDATED)
        log.info(
            "alert_updated", alert_id=alert.alert_id, level=merged.level.value, occurrences=merged.occurrences
        )
        return updated

    def raise_alarm(self, command: RaiseAlarm, viewer: Viewer) -> tuple[Alert, bool]:
        """The one-click alarm: a critical alert at once, or an open alert at the site made critical."""
        now = self._clock()
        command.check(now)
        with self._pool.connection() as conn, conn.transaction():
            replay = self._claim(conn, "raise_alarm", command.request_id, command)
            if replay is not None:
                return self._full_alert(conn, replay["alert_id"], viewer), bool(replay["raised"])
            violations = Violations()
            if self._repo.get_site(conn, command.site_id) is None:
                violations.add("site_id", f"unknown site {command.site_id}")
            sensor = self._repo.get_sensors(conn, [command.sensor_id]).get(command.sensor_id)
            if sensor is None:
                violations.add("sensor_id", f"unknown sensor {command.sensor_id}")
            elif sensor.site_id != command.site_id:
                violations.add("sensor_id", f"belongs to another site, not {command.site_id}")
            elif sensor.kind not in _ALARM_SENSORS:
                violations.add("sensor_id", "is not a panic button or patrol app")
            violations.check()
            assert sensor is not None
            at = command.pressed_at or now
            assessment = panic_assessment(sensor.zone)
            self._repo.lock_site_alerts(conn, command.site_id)
            target = self._absorbing_alert(conn, command.site_id, assessment, at, panic=True)
            if target is not None:
                detail = assessment.reasons[0] + (
                    f" (note: {' '.join(command.note.split())})" if command.note.strip() else ""
                )
                alert = self._absorb(
                    conn,
                    target,
                    assessment,
                    at=at,
                    now=now,
                    entry=TimelineEntry(now, TimelineKind.UPDATED, viewer.actor, detail),
                )
                raised = False
            else:
                alert = self._raise(
                    conn,
                    command.site_id,
                    assessment,
                    trigger=AlertTrigger.PANIC_BUTTON,
                    at=at,
                    now=now,
                    actor=viewer.actor,
                    note=command.note,
                )
                raised = True
            self._remember(
                conn, "raise_alarm", command.request_id, {"alert_id": alert.alert_id, "raised": raised}
            )
            return self._full_alert(conn, alert.alert_id, viewer), raised

    # --- alert lifecycle --------------------------------------------------------------------------

    def _notify(self, conn: Conn, alert: Alert, change: AlertChangeKind) -> None:
        self._repo.notify(
            conn,
            self._config.alert_channel,
            {"alert_id": alert.alert_id, "site_id": alert.site_id, "change": change.value},
        )

    def _full_alert(self, conn: Conn, alert_id: str, viewer: Viewer) -> Alert:
        alert = self._repo.get_alert(conn, alert_id, full=True)
        if alert is None:
            raise NotFoundError(f"alert {alert_id} not found")
        viewer.require(alert.site_id, f"alert {alert_id}")
        return alert

    def _locked_alert(self, conn: Conn, alert_id: str, viewer: Viewer) -> Alert:
        alert = self._repo.get_alert(conn, alert_id, for_update=True)
        if alert is None:
            raise NotFoundError(f"alert {alert_id} not found")
        viewer.require(alert.site_id, f"alert {alert_id}")
        return alert

    def get_alert(self, alert_id: str, viewer: Viewer) -> Alert:
        if not alert_id:
            raise InvalidArgumentError.of("alert_id", "is required")
        with self._pool.connection() as conn:
            return self._full_alert(conn, alert_id, viewer)

    def list_alerts(
        self,
        viewer: Viewer,
        site_id: str,
        *,
        statuses: Sequence[AlertStatus],
        raised_from: datetime | None,
        raised_until: datetime | None,
        page: Page,
    ) -> tuple[list[Alert], str]:
        sites = viewer.sites_for(site_id)
        before = decode_cursor(page.token)
        with self._pool.connection() as conn:
            found = self._repo.list_alerts(
                conn,
                site_ids=sites,
                statuses=statuses,
                raised_from=raised_from,
                raised_until=raised_until,
                before=before,
                limit=page.size + 1,
            )
        return _page(found, page, lambda a: (a.raised_at, a.alert_id))

    def acknowledge(self, command: Acknowledge, viewer: Viewer) -> Alert:
        command.check()
        with self._pool.connection() as conn, conn.transaction():
            if self._claim(conn, "acknowledge", command.request_id, command) is not None:
                return self._full_alert(conn, command.alert_id, viewer)
            alert = self._locked_alert(conn, command.alert_id, viewer)
            rules.check_acknowledge(alert)
            now = self._clock()
            self._repo.set_alert_status(
                conn, alert.alert_id, AlertStatus.ACKNOWLEDGED, now, acknowledged_at=now
            )
            detail = "acknowledged" + (f": {' '.join(command.note.split())}" if command.note.strip() else "")
            self._repo.add_timeline(
                conn, alert.alert_id, [TimelineEntry(now, TimelineKind.ACKNOWLEDGED, viewer.actor, detail)]
            )
            changed = replace(alert, status=AlertStatus.ACKNOWLEDGED, acknowledged_at=now, updated_at=now)
            self._outbox.add(
                conn,
                key=alert.alert_id,
                subject=alert.alert_id,
                message=mapping.alert_acknowledged(changed, viewer.actor),
            )
            self._notify(conn, changed, AlertChangeKind.ACKNOWLEDGED)
            self._remember(conn, "acknowledge", command.request_id, {"alert_id": alert.alert_id})
            log.info("alert_acknowledged", alert_id=alert.alert_id)
            return self._full_alert(conn, alert.alert_id, viewer)

    def dispatch(self, command: Dispatch, viewer: Viewer) -> tuple[Alert, list[str]]:
        command.check()
        with self._pool.connection() as conn, conn.transaction():
            replay = self._claim(conn, "dispatch", command.request_id, command)
            if replay is not None:
                return self._full_alert(conn, command.alert_id, viewer), list(replay["unit_ids"])
            alert = self._locked_alert(conn, command.alert_id, viewer)
            status = rules.status_after_dispatch(alert)
            now = self._clock()
            units = []
            for unit in command.units:
                assert unit.kind is not None
                units.append(
                    DispatchedUnit(
                        unit_id=new_id("unit"),
                        kind=unit.kind,
                        name=" ".join(unit.name.split()) or _UNIT_LABEL[unit.kind.value],
                        status=UnitStatus.NOTIFIED,
                        notified_at=now,
                    )
                )
            self._repo.insert_units(conn, alert.alert_id, units)
            stamps = {"dispatched_at": now} if alert.dispatched_at is None else {}
            self._repo.set_alert_status(conn, alert.alert_id, status, now, **stamps)
            self._repo.add_timeline(
                conn,
                alert.alert_id,
                [
                    TimelineEntry(
                        now,
                        TimelineKind.UNIT_DISPATCHED,
                        viewer.actor,
                        f"{_UNIT_LABEL[u.kind.value]} {u.name}: notified",
                    )
                    for u in units
                ],
            )
            changed = replace(alert, status=status, updated_at=now)
            self._outbox.add(
                conn,
                key=alert.alert_id,
                subject=alert.alert_id,
                message=mapping.alert_dispatched(changed, units, now),
            )
            self._notify(conn, changed, AlertChangeKind.DISPATCHED)
            unit_ids = [u.unit_id for u in units]
            self._remember(
                conn, "dispatch", command.request_id, {"alert_id": alert.alert_id, "unit_ids": unit_ids}
            )
            log.info("alert_dispatched", alert_id=alert.alert_id, units=[u.kind.value for u in units])
            return self._full_alert(conn, alert.alert_id, viewer), unit_ids

    def update_unit(self, command: UpdateUnit, viewer: Viewer) -> Alert:
        command.check()
        assert command.status is not None
        with self._pool.connection() as conn, conn.transaction():
            if self._claim(conn, "update_unit", command.request_id, command) is not None:
                return self._full_alert(conn, command.alert_id, viewer)
            alert = self._locked_alert(conn, command.alert_id, viewer)
            unit = next((u for u in alert.units if u.unit_id == command.unit_id), None)
            if unit is None:
                raise NotFoundError(f"unit {command.unit_id} not found in alert {alert.alert_id}")
            rules.check_unit_step(alert, unit, command.status)
            status = rules.status_after_unit_step(alert, command.status)
            now = self._clock()
            self._repo.set_unit_status(conn, unit.unit_id, command.status, now)
            entries = [
                TimelineEntry(
                    now,
                    TimelineKind.UNIT_STATUS_CHANGED,
                    viewer.actor,
                    f"{_UNIT_LABEL[unit.kind.value]} {unit.name}: {command.status.value.replace('_', ' ')}",
                )
            ]
            stamps: dict[str, Any] = {}
            if status is not alert.status:
                stamps["on_scene_at"] = now
                entries.append(
                    TimelineEntry(
                        now, TimelineKind.ON_SCENE, viewer.actor, f"on scene: {unit.name} arrived first"
                    )
                )
            self._repo.set_alert_status(conn, alert.alert_id, status, now, **stamps)
            self._repo.add_timeline(conn, alert.alert_id, entries)
            changed_unit = replace(unit, status=command.status)
            changed = replace(alert, status=status, updated_at=now)
            self._outbox.add(
                conn,
                key=alert.alert_id,
                subject=alert.alert_id,
                message=mapping.unit_status_changed(changed, changed_unit, now),
            )
            self._notify(conn, changed, AlertChangeKind.UNIT_STATUS_CHANGED)
            self._remember(conn, "update_unit", command.request_id, {"alert_id": alert.alert_id})
            log.info(
                "unit_status_changed",
                alert_id=alert.alert_id,
                unit_id=unit.unit_id,
                status=command.status.value,
            )
            return self._full_alert(conn, alert.alert_id, viewer)

    def resolve(self, command: Resolve, viewer: Viewer) -> Alert:
        command.check()
        assert command.outcome is not None
        with self._pool.connection() as conn, conn.transaction():
            if self._claim(conn, "resolve", command.request_id, command) is not None:
                return self._full_alert(conn, command.alert_id, viewer)
            alert = self._locked_alert(conn, command.alert_id, viewer)
            status = rules.check_close(alert, command.outcome)
            joint = rules.is_joint_response(command.outcome, alert.units)
            now = self._clock()
            note = " ".join(command.note.split())
            self._repo.set_alert_status(
                conn,
                alert.alert_id,
                status,
                now,
                closed_at=now,
                outcome=command.outcome.value,
                joint_response=joint,
                resolution_note=note,
            )
            kind = (
                TimelineKind.RESOLVED
                if command.outcome is AlertOutcome.RESOLVED
                else TimelineKind.FALSE_ALARM
            )
            detail = ("resolved as a joint response" if joint else kind.value.replace("_", " ")) + (
                f": {note}" if note else ""
            )
            self._repo.add_timeline(conn, alert.alert_id, [TimelineEntry(now, kind, viewer.actor, detail)])
            closed = replace(
                alert,
                status=status,
                closed_at=now,
                outcome=command.outcome,
                joint_response=joint,
                updated_at=now,
            )
            self._outbox.add(
                conn, key=alert.alert_id, subject=alert.alert_id, message=mapping.alert_resolved(closed)
            )
            self._notify(conn, closed, AlertChangeKind.RESOLVED)
            self._remember(conn, "resolve", command.request_id, {"alert_id": alert.alert_id})
            log.info(
                "alert_resolved", alert_id=alert.alert_id, outcome=command.outcome.value, joint_response=joint
            )
            return self._full_alert(conn, alert.alert_id, viewer)

    def watch_alerts(
        self,
        viewer: Viewer,
        site_id: str,
        *,
        include_open: bool,
        active: Callable[[], bool],
        on_live: Callable[[], None] = lambda: None,
    ) -> Iterator[tuple[AlertChangeKind, Alert]]:
        """Alerts in the caller's scope as they change, until the client goes or the service stops.

        Subscribes before reading the open alerts, so nothing committed in between is missed (it may be
        sent twice: a watcher keys by alert id). ``on_live`` runs once the subscription is listening."""
        sites = viewer.sites_for(site_id)
        with self._feed.subscribe(sites) as subscription:
            on_live()
            if include_open:
                yield from self._open_alerts(sites, viewer)
            while active():
                item = subscription.get(timeout=0.5)
                if item is None:
                    continue
                if item is CLOSED:
                    return
                if item is RESYNC:
                    yield from self._open_alerts(sites, viewer)
                    continue
                if not isinstance(item, Change):
                    continue
                with self._pool.connection() as conn:
                    alert = self._repo.get_alert(conn, item.alert_id, full=True)
                if alert is not None and viewer.sees(alert.site_id):
                    yield AlertChangeKind(item.change), alert

    def _open_alerts(
        self, sites: frozenset[str] | None, viewer: Viewer
    ) -> Iterator[tuple[AlertChangeKind, Alert]]:
        with self._pool.connection() as conn:
            ids = [a.alert_id for a in self._repo.open_alerts(conn, sites)]
            found = [self._repo.get_alert(conn, alert_id, full=True) for alert_id in ids]
        for alert in found:
            if alert is not None and viewer.sees(alert.site_id):
                yield AlertChangeKind.OPEN, alert

    # --- inspections ------------------------------------------------------------------------------

    def record_inspection(self, command: RecordInspection) -> Inspection:
        command.check(self._clock())
        assert command.method is not None
        assert command.inspected_at is not None
        with self._pool.connection() as conn, conn.transaction():
            replay = self._claim(conn, "record_inspection", command.request_id, command)
            if replay is not None:
                found = self._repo.get_inspection(conn, replay["inspection_id"])
                assert found is not None
                return found
            violations = Violations()
            site = self._repo.get_site(conn, command.site_id)
            if site is None:
                violations.add("site_id", f"unknown site {command.site_id}")
            elif site.kind is not SiteKind.RELIGIOUS_VENUE:
                violations.add("site_id", f"is a {site.kind.value.replace('_', ' ')}, not a religious venue")
            if command.sensor_id:
                sensor = self._repo.get_sensors(conn, [command.sensor_id]).get(command.sensor_id)
                if sensor is None or sensor.site_id != command.site_id:
                    violations.add("sensor_id", f"unknown sensor {command.sensor_id} at this site")
            violations.check()
            inspection = Inspection(
                inspection_id=new_id("inspection"),
                site_id=command.site_id,
                method=command.method,
                inspector=command.inspector.strip(),
                inspected_at=command.inspected_at,
                sensor_id=command.sensor_id,
                summary=command.summary.strip(),
                findings=tuple(
                    InspectionFinding(f.category.strip(), f.description.strip(), f.severity or "info")
                    for f in command.findings
                ),
                recorded_at=self._clock(),
            )
            self._repo.insert_inspection(conn, inspection)
            self._outbox.add(
                conn,
                key=inspection.inspection_id,
                subject=inspection.inspection_id,
                message=mapping.inspection_recorded(inspection),
            )
            self._remember(
                conn, "record_inspection", command.request_id, {"inspection_id": inspection.inspection_id}
            )
        log.info("inspection_recorded", inspection_id=inspection.inspection_id, site_id=inspection.site_id)
        return inspection

    def list_inspections(self, site_id: str, page: Page) -> tuple[list[Inspection], str]:
        _require_site_id(site_id)
        before = decode_cursor(page.token)
        with self._pool.connection() as conn:
            found = self._repo.list_inspections(conn, site_id, before, page.size + 1)
        return _page(found, page, lambda i: (i.inspected_at, i.inspection_id))

    # --- statistics -------------------------------------------------------------------------------

    def statistics(self, query: StatisticsQuery, viewer: Viewer) -> tuple[list[Figures], Figures]:
        query.check()
        assert query.start is not None
        assert query.end is not None
        sites = viewer.sites_for(query.site_id)
        with self._pool.connection() as conn:
            rows = self._repo.statistics(
                conn,
                site_ids=sites,
                start=query.start,
                end=query.end,
                bucket=query.bucket,
                timezone=self._config.timezone,
            )
        figures = [
            Figures(
                site_id=r.site_id,
                # A bucket cut by the requested period shows only the part inside it.
                period_start=max(r.bucket_start, query.start) if r.bucket_start else query.start,
                period_end=min(r.bucket_end, query.end) if r.bucket_end else query.end,
                warnings_raised=r.warnings,
                critical_warnings=r.critical,
                joint_responses=r.joint,
                false_alarms=r.false_alarms,
                to_acknowledge=Mean(r.ack_seconds, r.ack_count),
                to_dispatch=Mean(r.dispatch_seconds, r.dispatch_count),
                to_arrive=Mean(r.arrive_seconds, r.arrive_count),
            )
            for r in rows
        ]
        return figures, total(figures, query.start, query.end)
