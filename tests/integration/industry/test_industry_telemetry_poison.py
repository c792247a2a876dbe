"""Telemetry records the rollup cannot apply go to the dead-letter topic, and the partition moves on.

IngestTelemetry never publishes a sample of an unregistered device, so such a record on the topic came
from somewhere else (a gateway writing to Kafka itself, a topic replayed into another environment). It is
a poison record like an undecodable one: dead-lettered with the reason, not applied, not lost
(issue #16, defect 5). A record naming known and unknown devices goes to the DLQ whole."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cityhub.common.v1 import common_pb2
from cityhub.industry.v1 import industry_pb2, telemetry_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.industry.bootstrap import ROLLUP_CONSUMER
from services.platform.kafka import EventEnvelope, dlq_topic
from tests.integration.industry.industry_support import Industry, credit_code
from tests.kafka_support import raw_producer, read_records
from tests.support import wait_until

pytestmark = pytest.mark.integration

MINUTE = 60_000
HOUR = 3_600_000
# Two whole hours three days ago: the mixed record's samples fall in the first, the good one's in the second.
FIRST_HOUR = int(
    (datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)).timestamp() * 1000
)
SECOND_HOUR = FIRST_HOUR + HOUR


def _samples(device_id: str, start_ms: int, count: int) -> list[telemetry_pb2.TelemetrySample]:
    return [
        telemetry_pb2.TelemetrySample(
            device_id=device_id,
            time_unix_ms=start_ms + i * MINUTE,
            state=telemetry_pb2.DEVICE_STATE_RUNNING,
            good_count=1,
            power_kw=9.0,
            spindle_load_pct=50.0,
            temperature_c=40.0,
        )
        for i in range(count)
    ]


def _record(topic: str, samples: list[telemetry_pb2.TelemetrySample]) -> EventEnvelope:
    batch = telemetry_pb2.TelemetryBatch(
        samples=samples, request_id=secrets.token_hex(8), received_unix_ms=SECOND_HOUR + HOUR
    )
    return EventEnvelope.for_message(
        batch, topic=topic, key="telemetry-0", subject="telemetry-0", source="/cityhub/poison-test"
    )


def _running_seconds(industry: Industry, device_id: str, start_ms: int) -> float:
    period = common_pb2.TimeRange(start_time=Timestamp(), end_time=Timestamp())
    period.start_time.FromMilliseconds(start_ms)
    period.end_time.FromMilliseconds(start_ms + HOUR)
    response = industry.call(
        "GetUtilisation",
        industry_pb2.GetUtilisationRequest(
            subject=industry_pb2.UtilisationSubject(device_id=device_id), period=period
        ),
    )
    return float(response.total.running_seconds)


def test_telemetry_of_unknown_devices_goes_to_the_dlq_and_a_good_record_after_it_is_applied(
    industry: Industry,
) -> None:
    park = industry.park()
    enterprise = industry.enterprise(credit_code(301), park.park_id, "Poison Test Co.")
    known = industry.device(enterprise.credit_code, sample_interval_ms=MINUTE).device_id
    topic = industry.settings.industry_telemetry_topic

    unknown_only = _record(topic, _samples("dev-nosuchdevice", FIRST_HOUR, 5))
    mixed = _record(topic, [*_samples(known, FIRST_HOUR, 10), *_samples("dev-ghost", FIRST_HOUR, 3)])
    good = _record(topic, _samples(known, SECOND_HOUR, 20))
    # One partition, in this order: the good record is behind both poison records.
    raw = raw_producer(industry.kafka_bootstrap)
    try:
        for envelope in (unknown_only, mixed, good):
            raw.send(
                topic, value=envelope.payload, key=envelope.key_bytes, headers=envelope.headers(), partition=0
            )
        raw.flush(timeout=10)
    finally:
        raw.close(timeout=5)

    wait_until(
        lambda: _running_seconds(industry, known, SECOND_HOUR) == 20 * 60,
        timeout_s=30,
        what="the good record behind the poison ones to be applied",
        interval_s=0.3,
    )
    industry.telemetry_consumed()

    dead = read_records(industry.kafka_bootstrap, dlq_topic(topic), 2, timeout_s=30)
    assert len(dead) == 2
    by_id = {dict(record.headers)["ce_id"].decode(): dict(record.headers) for record in dead}
    assert set(by_id) == {unknown_only.id, mixed.id}
    for envelope, named in ((unknown_only, "dev-nosuchdevice"), (mixed, "dev-ghost")):
        headers = by_id[envelope.id]
        error = headers["dlq_error"].decode()
        assert "unknown device" in error
        assert named in error
        assert known not in error
        assert headers["dlq_error_type"].decode().endswith("UnusableTelemetryError")
        assert headers["dlq_consumer"].decode() == ROLLUP_CONSUMER
        assert headers["dlq_original_topic"].decode() == topic
    assert "3 of 13 samples" in by_id[mixed.id]["dlq_error"].decode()
    # The mixed record was not applied in part: its known device's samples wait in the DLQ with it.
    assert _running_seconds(industry, known, FIRST_HOUR) == 0
    # Neither poison record is marked processed, so a replay after the device is registered applies it.
    with industry.runtime.pool.connection() as conn:
        rows: list[Any] = conn.execute(
            "SELECT event_id FROM processed_events WHERE event_id = ANY(%s)",
            ([unknown_only.id, mixed.id, good.id],),
        ).fetchall()
    assert {str(row[0]) for row in rows} == {good.id}
