"""Each sample counts once through the real service (issue 17): a gateway re-sending its last ten minutes
in a later request, a re-send that reaches the topic anyway, and request ids reused for other content.

Figures are hand-computed: an hour of one-minute samples, 30 idle then 30 running, each running minute
one good and one rejected part at an ideal cycle of 30 s: planned 3,600 s, availability 0.5, performance
1.0, quality 0.5, OEE 0.25."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from cityhub.common.v1 import common_pb2
from cityhub.industry.v1 import industry_pb2, telemetry_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.platform.kafka import EventEnvelope
from tests.integration.industry.industry_support import Industry, credit_code
from tests.kafka_support import raw_producer
from tests.support import violations, wait_until

pytestmark = pytest.mark.integration

MINUTE = 60_000
HOUR = 3_600_000
# Whole hours two and three hours ago: inside the late-data window, and finished.
HOUR_A = int(
    (datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)).timestamp() * 1000
)
HOUR_B = HOUR_A + HOUR


def _hour_of_samples(device_id: str, hour_ms: int) -> list[telemetry_pb2.TelemetrySample]:
    return [
        telemetry_pb2.TelemetrySample(
            device_id=device_id,
            time_unix_ms=hour_ms + m * MINUTE,
            state=telemetry_pb2.DEVICE_STATE_IDLE if m < 30 else telemetry_pb2.DEVICE_STATE_RUNNING,
            good_count=0 if m < 30 else 1,
            reject_count=0 if m < 30 else 1,
            power_kw=1.0 if m < 30 else 9.0,
            spindle_load_pct=0.0 if m < 30 else 55.0,
            temperature_c=40.0,
        )
        for m in range(60)
    ]


def _figures(industry: Industry, device_id: str, hour_ms: int) -> industry_pb2.UtilisationFigures:
    period = common_pb2.TimeRange(start_time=Timestamp(), end_time=Timestamp())
    period.start_time.FromMilliseconds(hour_ms)
    period.end_time.FromMilliseconds(hour_ms + HOUR)
    response = industry.call(
        "GetUtilisation",
        industry_pb2.GetUtilisationRequest(
            subject=industry_pb2.UtilisationSubject(device_id=device_id), period=period
        ),
    )
    return response.total  # type: ignore[no-any-return]


def _ingest(
    industry: Industry, request_id: str, samples: list[telemetry_pb2.TelemetrySample]
) -> industry_pb2.IngestTelemetryResponse:
    return industry.call(  # type: ignore[no-any-return]
        "IngestTelemetry", industry_pb2.IngestTelemetryRequest(request_id=request_id, samples=samples)
    )


def test_a_window_resent_in_a_later_request_is_reported_as_duplicates_and_counted_once(
    industry: Industry,
) -> None:
    park = industry.park()
    enterprise = industry.enterprise(credit_code(401), park.park_id, "Resend Test Co.")
    device_id = industry.device(
        enterprise.credit_code, ideal_cycle_seconds=30.0, sample_interval_ms=MINUTE
    ).device_id
    hour = _hour_of_samples(device_id, HOUR_A)

    first = _ingest(industry, secrets.token_hex(8), hour)
    assert (first.accepted_count, first.rejected_count, first.duplicate_count) == (60, 0, 0)
    # The gateway reconnects and sends its last ten minutes again, under a new request id.
    again = _ingest(industry, secrets.token_hex(8), hour[-10:])
    assert (again.accepted_count, again.rejected_count, again.duplicate_count) == (0, 10, 10)
    assert {r.reason for r in again.rejections} == {industry_pb2.REJECTION_REASON_DUPLICATE}
    assert [r.field for r in again.rejections] == [f"samples[{i}].time_unix_ms" for i in range(10)]

    # A re-send the ingest did not recognise (another replica, a restart, a gateway writing to Kafka
    # itself) reaches the rollup: it still counts nothing twice.
    topic = industry.settings.industry_telemetry_topic
    batch = telemetry_pb2.TelemetryBatch(
        samples=hour[-10:], request_id=secrets.token_hex(8), received_unix_ms=HOUR_A + 2 * HOUR
    )
    envelope = EventEnvelope.for_message(
        batch, topic=topic, key="telemetry-0", subject="telemetry-0", source="/cityhub/resend-test"
    )
    raw = raw_producer(industry.kafka_bootstrap)
    try:
        raw.send(
            topic, value=envelope.payload, key=envelope.key_bytes, headers=envelope.headers(), partition=0
        )
        raw.flush(timeout=10)
    finally:
        raw.close(timeout=5)
    wait_until(
        lambda: _figures(industry, device_id, HOUR_A).planned_seconds >= 3600,
        timeout_s=30,
        what="the hour to be rolled up",
        interval_s=0.3,
    )
    industry.telemetry_consumed()

    total = _figures(industry, device_id, HOUR_A)
    assert (total.running_seconds, total.idle_seconds, total.fault_seconds, total.planned_seconds) == (
        1800,
        1800,
        0,
        3600,
    )
    assert (total.good_count, total.reject_count, total.ideal_seconds) == (30, 30, 1800)
    assert (total.availability, total.performance, total.quality, total.oee) == (0.5, 1.0, 0.5, 0.25)


def test_a_request_id_reused_for_another_batch_is_refused_and_nothing_of_it_counted(
    industry: Industry,
) -> None:
    park = industry.park()
    enterprise = industry.enterprise(credit_code(402), park.park_id, "Reused Id Co.")
    device_id = industry.device(enterprise.credit_code, sample_interval_ms=MINUTE).device_id
    request_id = secrets.token_hex(8)
    batch = _hour_of_samples(device_id, HOUR_B)[30:35]
    other = _hour_of_samples(device_id, HOUR_A)[30:35]

    first = _ingest(industry, request_id, batch)
    assert (first.accepted_count, first.duplicate_count) == (5, 0)
    with pytest.raises(grpc.RpcError) as caught:
        _ingest(industry, request_id, other)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == {"request_id"}
    # The same batch again is a retry: the first answer, not five duplicates.
    assert _ingest(industry, request_id, batch) == first

    wait_until(
        lambda: _figures(industry, device_id, HOUR_B).running_seconds == 300,
        timeout_s=30,
        what="the first batch to be rolled up",
        interval_s=0.3,
    )
    industry.telemetry_consumed()
    assert _figures(industry, device_id, HOUR_B).running_seconds == 300
    assert _figures(industry, device_id, HOUR_A).planned_seconds == 0


def test_every_create_refuses_a_request_id_reused_with_other_content(industry: Industry) -> None:
    park = industry.park()
    request_id = secrets.token_hex(8)
    onboard = industry_pb2.OnboardEnterpriseRequest(
        request_id=request_id,
        credit_code=credit_code(403),
        name="First Co.",
        sector=industry_pb2.SECTOR_MACHINERY,
        park_id=park.park_id,
    )
    first = industry.call("OnboardEnterprise", onboard).enterprise
    second = industry_pb2.OnboardEnterpriseRequest()
    second.CopyFrom(onboard)
    second.credit_code = credit_code(404)
    second.name = "Second Co."
    order = industry_pb2.CreateOrderRequest(
        request_id=secrets.token_hex(8),
        credit_code=first.credit_code,
        customer="Wenling Pump Works",
        product="Valve body",
        promised_date=(datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
    )
    industry.call("CreateOrder", order)
    other_order = industry_pb2.CreateOrderRequest()
    other_order.CopyFrom(order)
    other_order.product = "Pump housing"
    device = industry_pb2.RegisterDeviceRequest(
        request_id=secrets.token_hex(8),
        serial_number=f"BOX-{secrets.token_hex(6)}",
        credit_code=first.credit_code,
        workshop="W1",
        machine_type=industry_pb2.MACHINE_TYPE_LATHE,
        rated_power_kw=10.0,
        ideal_cycle_seconds=20.0,
    )
    industry.call("RegisterDevice", device)
    other_device = industry_pb2.RegisterDeviceRequest()
    other_device.CopyFrom(device)
    other_device.serial_number = f"BOX-{secrets.token_hex(6)}"
    park_request = industry_pb2.RegisterParkRequest(
        request_id=secrets.token_hex(8), name="Reuse park", division_code="331004"
    )
    industry.call("RegisterPark", park_request)
    other_park = industry_pb2.RegisterParkRequest()
    other_park.CopyFrom(park_request)
    other_park.name = "Another park"

    for rpc, request in (
        ("OnboardEnterprise", second),
        ("CreateOrder", other_order),
        ("RegisterDevice", other_device),
        ("RegisterPark", other_park),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            industry.call(rpc, request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, rpc
        assert set(violations(caught.value)) == {"request_id"}, rpc
    # Nothing of the refused onboarding was stored.
    with pytest.raises(grpc.RpcError) as missing:
        industry.call("GetEnterprise", industry_pb2.GetEnterpriseRequest(credit_code=second.credit_code))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
