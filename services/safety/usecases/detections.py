"""Reported detections: stored, assessed per site over the risk window, and turned into a new alert or
an update of the open one. A batch is one transaction; a replay answers with the first assessment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.platform.logs import get_logger
from services.safety import mapping
from services.safety.domain.access import Viewer
from services.safety.domain.commands import ReportDetections
from services.safety.domain.model import (
    AlertTrigger,
    Detection,
    DetectionKind,
    RiskFlag,
    RiskLevel,
    TimelineEntry,
    TimelineKind,
)
from services.safety.domain.risk import (
    MIN_CONFIDENCE,
    PURCHASE_LOOKBACK,
    Observation,
    PersonProfile,
    PurchaseFact,
    assess,
)
from services.safety.usecases.common import (
    Clock,
    Preconditions,
    SafetyConfig,
    SafetyTransaction,
    SafetyUnitOfWork,
    new_id,
    open_purchase,
    utc_now,
)
from services.safety.usecases.raising import absorb, absorbing_alert, raise_alert
from services.safety.vault import PersonVault

__all__ = ["DetectionUseCases", "ReportResult", "SiteAssessment"]

log = get_logger()


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


class DetectionUseCases:
    def __init__(
        self, uow: SafetyUnitOfWork, vault: PersonVault, config: SafetyConfig, *, clock: Clock = utc_now
    ) -> None:
        self._uow = uow
        self._vault = vault
        self._config = config
        self._clock = clock

    def report_detections(self, command: ReportDetections, viewer: Viewer) -> ReportResult:
        now = self._clock()
        command.check(now)
        with self._uow.transaction() as tx:
            replay = tx.claim("report_detections", command.request_id, command)
            if replay is not None:
                return ReportResult.from_json(replay)
            sensors = tx.repo.get_sensors(d.sensor_id for d in command.detections)
            known = tx.repo.existing_persons(d.person_token for d in command.detections if d.person_token)
            refused = Preconditions()
            for index, d in enumerate(command.detections):
                if d.sensor_id not in sensors:
                    refused.add(f"detections[{index}].sensor_id", f"sensor {d.sensor_id} does not exist")
                if d.person_token and d.person_token not in known:
                    refused.add(f"detections[{index}].person_token", "is not a recorded person")
            refused.check()
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
                        # The plate itself is never kept: it identifies the car's owner.
                        vehicle_token=(
                            self._vault.vehicle_token_for(d.plate)
                            if d.kind is DetectionKind.VEHICLE_MATCH and d.plate
                            else ""
                        ),
                    )
                )
            tx.repo.insert_detections(detections, now)
            assessments = [
                self._assess_site(
                    tx, site_id, [d for d in detections if d.site_id == site_id], now, viewer.actor
                )
                for site_id in sorted({d.site_id for d in detections})
            ]
            result = ReportResult(tuple(d.detection_id for d in detections), tuple(assessments))
            tx.remember("report_detections", command.request_id, result.to_json())
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
        self, tx: SafetyTransaction, site_id: str, batch: Sequence[Detection], now: datetime, actor: str
    ) -> SiteAssessment:
        # Held to the end of the transaction: two batches for one site cannot both open an alert.
        tx.repo.lock_site_alerts(site_id)
        at = max(d.detected_at for d in batch)
        window = tx.repo.window_detections(site_id, at - self._config.risk_window, at)
        observations = [
            Observation(d.kind, d.zone, d.detected_at, d.confidence, d.label, d.person_token, d.vehicle_token)
            for d in window
        ]
        plates = {d.vehicle_token for d in window if d.vehicle_token}
        # Who each plate seen is linked to now (a vehicle removed since no longer brings anyone in).
        owners = tx.repo.vehicle_owners(plates) if plates else {}
        linked = {
            d.person_token
            for d in window
            if d.person_token and d.kind in (DetectionKind.FACE_MATCH, DetectionKind.VEHICLE_MATCH)
        }
        profiles = self._profiles(tx, sorted(linked | set(owners.values())), at)
        assessment = assess(observations, profiles, at, vehicle_owners=owners)
        counted = [d.detection_id for d in window if d.confidence >= MIN_CONFIDENCE]
        target = absorbing_alert(tx, self._config, site_id, assessment, at, panic=False)
        alert_id, raised = "", False
        if target is not None:
            detail = f"{len(batch)} more detection(s); level {assessment.level.value}"
            entry = TimelineEntry(now, TimelineKind.UPDATED, actor, detail)
            updated = absorb(tx, self._config, target, assessment, at=at, now=now, entry=entry)
            tx.repo.link_detections(target.alert_id, counted)
            alert_id = updated.alert_id
        elif assessment.raises_alert:
            alert = raise_alert(
                tx,
                self._config,
                site_id,
                assessment,
                trigger=AlertTrigger.RISK_ASSESSMENT,
                at=at,
                now=now,
                actor=actor,
            )
            tx.repo.link_detections(alert.alert_id, counted)
            alert_id, raised = alert.alert_id, True
        tx.publish(
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

    def _profiles(
        self, tx: SafetyTransaction, tokens: Sequence[str], at: datetime
    ) -> dict[str, PersonProfile]:
        """What the risk rules may know of the persons seen: flag categories and recent purchases."""
        if not tokens:
            return {}
        persons = tx.repo.get_persons(tokens)
        purchases: dict[str, list[PurchaseFact]] = {}
        for row in tx.repo.purchases_of(tokens, since=at - PURCHASE_LOOKBACK, until=at):
            record = open_purchase(self._vault, row)
            purchases.setdefault(row.person_token, []).append(PurchaseFact(record.item, record.purchased_at))
        profiles = {}
        for token, person in persons.items():
            flags = frozenset(RiskFlag(f) for f in self._vault.open("person", token, person.sealed)["flags"])
            profiles[token] = PersonProfile(token, flags, tuple(purchases.get(token, ())))
        return profiles
