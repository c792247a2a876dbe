"""The telemetry record built byte by byte parses to exactly the TelemetryBatch built message by message,
and the record keys agree with Kafka's default partitioner."""

from __future__ import annotations

from cityhub.industry.v1 import telemetry_pb2

from services.industry.adapters.telemetry_wire import bucket_keys, device_partitioner, pack_batch


def _samples(count: int, id_length: int = 20) -> list[telemetry_pb2.TelemetrySample]:
    return [
        telemetry_pb2.TelemetrySample(
            device_id=f"dev-{i:0{id_length - 4}d}",
            time_unix_ms=1_800_000_000_000 + i * 1000,
            state=telemetry_pb2.DEVICE_STATE_RUNNING if i % 4 else telemetry_pb2.DEVICE_STATE_FAULT,
            good_count=i % 3,
            reject_count=i % 2,
            power_kw=11.5 + i,
            spindle_load_pct=62.5,
            temperature_c=-5.0 + i,
        )
        for i in range(count)
    ]


def test_the_packed_bytes_are_the_batch_message() -> None:
    samples = _samples(300)
    packed = telemetry_pb2.TelemetryBatch.FromString(pack_batch(samples, "req-1", 1_800_000_000_123))
    expected = telemetry_pb2.TelemetryBatch(
        samples=samples, request_id="req-1", received_unix_ms=1_800_000_000_123
    )
    assert packed == expected


def test_samples_longer_than_127_bytes_are_framed_with_a_longer_length() -> None:
    samples = _samples(3, id_length=200)
    assert all(s.ByteSize() >= 128 for s in samples)
    packed = telemetry_pb2.TelemetryBatch.FromString(pack_batch(samples, "r", 1))
    assert list(packed.samples) == samples


def test_zero_value_samples_survive_packing() -> None:
    empty = telemetry_pb2.TelemetrySample(device_id="dev-1")
    packed = telemetry_pb2.TelemetryBatch.FromString(pack_batch([empty, empty], "r", 1))
    assert len(packed.samples) == 2


def test_each_partition_has_a_key_that_kafka_would_send_there() -> None:
    from kafka.partitioner.default import murmur2

    keys = bucket_keys(6)
    assert [(murmur2(key) & 0x7FFFFFFF) % 6 for key in keys] == list(range(6))
    bucket_of = device_partitioner(6)
    assert bucket_of("dev-0001") == (murmur2(b"dev-0001") & 0x7FFFFFFF) % 6
