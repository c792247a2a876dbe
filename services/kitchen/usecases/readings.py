"""Readings: the ingest hot path (straight to Kafka, like industry's telemetry) and the rules the readings
consumer applies (cold chain, disinfection cycles, UV minutes, per-day figures).

Readings are a stream, not state changes: IngestReadings screens each reading on its own, groups the
accepted ones per kitchen into one ``ReadingBatch`` record keyed by the kitchen id (so a unit's readings
stay in one partition, in order) and answers only once Kafka acknowledged them (acks=all). The request id
is claimed in a short transaction before anything is sent and the answer remembered in another after the
acknowledgement (no connection is held while Kafka acknowledges): after a Kafka failure the caller's retry
with the same id finds the claim unanswered and sends again, and the records it repeats carry the same
ids, which the consumer skips. What is derived from readings (alerts, figures,
status) is state again, written by :class:`ReadingsRules` in the consumer's transaction and published
through the outbox.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from cityhub.kitchen.v1 import kitchen_pb2
from kafka.errors import KafkaError

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.equipment import (
    AlertCleared,
    AlertRaised,
    CycleFinished,
    DayFigures,
    Equipment,
    OfflineCleared,
    Reading,
    ReadingRejection,
    UnitRef,
    UnitState,
    apply_readings,
    check_ingest,
    screen_readings,
)
from services.kitchen.domain.model import AlertKind, Kitchen, KitchenAlert, Severity
from services.kitchen.mapping import equipment as mapping
from services.kitchen.repository import KitchenRepository
from services.kitchen.usecases.common import KitchenContext, new_id
from services.platform import deadlines
from services.platform.breaker import Breaker
from services.platform.errors import UnavailableError
from services.platform.kafka import EventEnvelope
from services.platform.logs import get_logger

__all__ = ["IngestResult", "ReadingsIngest", "ReadingsRules"]

log = get_logger()
_INGEST = "IngestReadings"
# Namespace of reading record ids: uuid5(request id / kitchen id), so a retried request repeats them.
_READINGS_NS = uuid.UUID("0b7e4d1a-6c39-4f0e-9d52-7a1c8e3f5b60")
# An id the lookup may carry: anything else cannot name a unit (and PostgreSQL text holds no NUL).
_ID_MAX = 128


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    rejections: list[ReadingRejection]


@dataclass(frozen=True, slots=True)
class IngestCommand:
    """What a replay of a request id must repeat exactly (the platform fingerprints it)."""

    request_id: str
    readings: tuple[tuple[str, int, int, bool, float, bool], ...]


def _command(request_id: str, readings: Sequence[kitchen_pb2.EquipmentReading]) -> IngestCommand:
    return IngestCommand(
        request_id,
        tuple(
            (
                r.equipment_id,
                r.read_at.seconds,
                r.read_at.nanos,
                r.HasField("read_at"),
                r.temperature_c,
                r.running,
            )
            for r in readings
        ),
    )


def _result_json(result: IngestResult) -> dict[str, Any]:
    return {
        "accepted": result.accepted,
        "rejections": [[r.index, r.field, r.reason] for r in result.rejections],
    }


def _result_of(data: dict[str, Any]) -> IngestResult:
    return IngestResult(
        int(data["accepted"]), [ReadingRejection(int(i), str(f), str(r)) for i, f, r in data["rejections"]]
    )


def _lookable(equipment_id: str) -> bool:
    return 0 < len(equipment_id) <= _ID_MAX and equipment_id.isprintable()


class ReadingsIngest:
    def __init__(self, ctx: KitchenContext) -> None:
        self._uow = ctx.uow
        self._config = ctx.config
        self._clock = ctx.clock
        self._producer = ctx.producer
        self._topic = ctx.readings_topic
        self._source = ctx.source
        self._breaker = ctx.kafka_breaker or Breaker("Kafka")

    def ingest(
        self, request_id: str, readings: Sequence[kitchen_pb2.EquipmentReading], visibility: Visibility
    ) -> IngestResult:
        check_ingest(request_id, len(readings), self._config.readings_max_per_request)
        command = _command(request_id, readings)
        inputs = [mapping.reading_input(r, i) for i, r in enumerate(readings)]
        # The claim commits on its own, and no connection is held while Kafka acknowledges: the same id
        # with other readings is refused here, before anything is sent; a repeat of a claim whose answer was
        # never stored (Kafka failed) sends again, with the same record ids, which the consumer skips.
        with self._uow.transaction() as tx:
            replay = tx.claim(_INGEST, request_id, command, resumable=True)
            if replay is not None:
                return _result_of(replay)
            # One query for the batch's distinct units, however many readings name them.
            found = tx.repo.equipment_by_ids(r.equipment_id for r in inputs if _lookable(r.equipment_id))
        units = {
            unit_id: UnitRef(equipment.kitchen_id, site_id, equipment.kind)
            for unit_id, (equipment, site_id) in found.items()
        }
        now = self._clock()
        screened = screen_readings(
            inputs,
            units,
            lambda unit: visibility.sees(unit.kitchen_id, unit.site_id),
            now=now,
            max_future=timedelta(seconds=self._config.readings_max_future_s),
            max_age=timedelta(seconds=self._config.readings_max_age_s),
        )
        if screened.accepted:
            self._publish(screened.accepted, readings, request_id, now)
        result = IngestResult(screened.accepted_count, screened.rejections)
        with self._uow.transaction() as tx:
            tx.remember(_INGEST, request_id, _result_json(result))
        log.info(
            "readings_ingested",
            accepted=result.accepted,
            rejected=len(result.rejections),
            request_id=request_id,
        )
        return result

    def _publish(
        self,
        groups: dict[str, list[int]],
        readings: Sequence[kitchen_pb2.EquipmentReading],
        request_id: str,
        now: datetime,
    ) -> None:
        """Send one record per kitchen and wait for acks=all, within the caller's deadline (capped at the
        ack timeout). A broker that does not acknowledge in time is UNAVAILABLE; after a few, the breaker
        answers at once."""
        self._breaker.before()
        wait_s = deadlines.budget(self._config.readings_ack_timeout_s, "sending readings to Kafka")
        until = time.monotonic() + wait_s
        received_ms = int(now.timestamp() * 1000)
        try:
            futures = []
            for kitchen_id, indexes in groups.items():
                batch = mapping.reading_batch(
                    kitchen_id, [readings[i] for i in indexes], request_id, received_ms
                )
                envelope = EventEnvelope.for_message(
                    batch,
                    topic=self._topic,
                    key=kitchen_id,
                    subject=kitchen_id,
                    source=self._source,
                    event_id=str(uuid.uuid5(_READINGS_NS, f"{request_id}/{kitchen_id}")),
                    time=now,
                )
                futures.append(
                    self._producer.send(
                        self._topic,
                        value=envelope.payload,
                        key=envelope.key_bytes,
                        headers=envelope.headers(),
                        timestamp_ms=received_ms,
                    )
                )
            for future in futures:
                future.get(timeout=max(0.001, until - time.monotonic()))
        except KafkaError as error:
            self._breaker.failed()
            log.warning("readings_not_acknowledged", error=type(error).__name__, waited_s=round(wait_s, 3))
            raise UnavailableError(
                f"Kafka did not acknowledge the readings within {wait_s:.1f}s; retry with the same request_id"
            ) from None
        self._breaker.succeeded()


# --- the consumer's side -------------------------------------------------------------------------------


def _alert_message(equipment: Equipment, what: str) -> str:
    label = equipment.name or equipment.kind.value.lower().replace("_", " ")
    return f"{label}: {what}"


class ReadingsRules:
    """The readings topic's rules, run in the consumer's transaction on the connection it hands over:
    each unit's readings (of every record of the poll) applied in read_at order to its locked state."""

    def __init__(self, ctx: KitchenContext) -> None:
        self._config = ctx.config
        self._clock = ctx.clock
        assert ctx.outbox is not None, "bootstrap gives the consumer the outbox"
        self._outbox = ctx.outbox

    def apply(self, conn: psycopg.Connection[Any], batches: Sequence[Any]) -> None:
        repo = KitchenRepository(conn)
        by_unit: dict[str, list[Reading]] = {}
        skipped = 0
        for batch in batches:
            for message in batch.readings:
                reading = mapping.reading_of(message)
                if reading is None:
                    skipped += 1
                    continue
                by_unit.setdefault(reading.equipment_id, []).append(reading)
        units = repo.lock_units(uid for uid in by_unit if _lookable(uid))
        unknown = [uid for uid in by_unit if uid not in units]
        if unknown or skipped:
            # Screened at ingest, so only a record that did not come through IngestReadings gets here.
            log.warning("readings_unusable", unknown_units=len(unknown), unusable_readings=skipped)
        kitchens: dict[str, Kitchen | None] = {}
        days: list[DayFigures] = []
        now = self._clock()
        for unit_id, row in units.items():
            equipment = row.equipment
            if equipment.kitchen_id not in kitchens:
                kitchens[equipment.kitchen_id] = repo.get_kitchen(equipment.kitchen_id)
            kitchen = kitchens[equipment.kitchen_id]
            state = UnitState.from_json(row.state)
            outcome = apply_readings(
                equipment,
                state,
                by_unit[unit_id],
                zone=self._config.zone,
                service=kitchen.service_minutes() if kitchen else [],
                now=now,
                new_alert_id=lambda: new_id("kal"),
            )
            for happening in outcome.happenings:
                self._happened(conn, repo, equipment, happening)
            repo.save_unit(
                unit_id,
                status=state.status(equipment.kind),
                last_reading_at=state.last_at,
                last_temperature_c=state.last_temperature_c,
                state=state.as_json(),
            )
            days.extend(outcome.days.values())
        repo.add_equipment_days(days)

    def _happened(
        self,
        conn: psycopg.Connection[Any],
        repo: KitchenRepository,
        equipment: Equipment,
        happening: AlertRaised | AlertCleared | CycleFinished | OfflineCleared,
    ) -> None:
        key, subject = equipment.kitchen_id, equipment.equipment_id
        if isinstance(happening, AlertRaised):
            minutes = int((happening.at - happening.since).total_seconds() // 60)
            repo.add_alert(
                KitchenAlert(
                    happening.alert_id,
                    equipment.kitchen_id,
                    AlertKind.COLD_CHAIN,
                    Severity.HIGH,
                    equipment.equipment_id,
                    _alert_message(
                        equipment, f"out of range ({happening.limit_c:g} °C limit) for {minutes} minutes"
                    ),
                    happening.at,
                )
            )
            event: Any = mapping.cold_chain_alert_raised(
                equipment,
                happening.alert_id,
                since=happening.since,
                limit_c=happening.limit_c,
                temperature_c=happening.temperature_c,
                at=happening.at,
            )
            self._outbox.add(conn, key=key, subject=subject, message=event)
            log.info("cold_chain_alert_raised", equipment_id=subject, alert_id=happening.alert_id)
        elif isinstance(happening, AlertCleared):
            repo.clear_alert(happening.alert_id, happening.at)
            event = mapping.cold_chain_alert_cleared(
                equipment,
                happening.alert_id,
                minutes_out_of_range=happening.minutes_out_of_range,
                at=happening.at,
            )
            self._outbox.add(conn, key=key, subject=subject, message=event)
            log.info("cold_chain_alert_cleared", equipment_id=subject, alert_id=happening.alert_id)
        elif isinstance(happening, CycleFinished):
            if happening.short:
                alert_id = new_id("kal")
                repo.add_alert(
                    KitchenAlert(
                        alert_id,
                        equipment.kitchen_id,
                        AlertKind.DISINFECTION_SHORT,
                        Severity.MEDIUM,
                        equipment.equipment_id,
                        _alert_message(
                            equipment,
                            f"disinfection cycle of {happening.minutes} minutes, lowest"
                            f" {happening.min_temperature_c:g} °C, fell short",
                        ),
                        happening.ended,
                    )
                )
                event = mapping.equipment_violation_found(
                    equipment,
                    alert_id,
                    AlertKind.DISINFECTION_SHORT,
                    minutes=happening.minutes,
                    min_temperature_c=happening.min_temperature_c,
                    day=happening.ended.astimezone(self._config.zone).date(),
                    at=happening.ended,
                )
                self._outbox.add(conn, key=key, subject=subject, message=event)
                log.info("disinfection_cycle_short", equipment_id=subject, alert_id=alert_id)
        else:
            repo.clear_alert(happening.alert_id, happening.at)
            log.info("equipment_back_online", equipment_id=subject, alert_id=happening.alert_id)
