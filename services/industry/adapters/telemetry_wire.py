"""The telemetry record's wire framing and the partitioner that keeps a device's samples in one
partition. No gRPC, no SQL: bytes and Kafka's default partitioner only."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cityhub.industry.v1 import telemetry_pb2

from services.industry.domain.telemetry import SampleLike

__all__ = ["bucket_keys", "device_partitioner", "pack_batch", "varint"]


def bucket_keys(partitions: int) -> list[bytes]:
    """For each partition, a record key that Kafka's default partitioner (murmur2) maps to it: records
    keep key and partition consistent, so a replay that re-sends by key lands where the original did."""
    from kafka.partitioner.default import murmur2

    keys: list[bytes] = []
    for partition in range(partitions):
        candidate = 0
        while True:
            key = f"telemetry-{candidate}".encode()
            if (murmur2(key) & 0x7FFFFFFF) % partitions == partition:
                keys.append(key)
                break
            candidate += 1
    return keys


def device_partitioner(partitions: int) -> Callable[[str], int]:
    """The partition Kafka's default partitioner picks for a record keyed by the device id."""
    from kafka.partitioner.default import murmur2

    def bucket_of(device_id: str) -> int:
        return int((murmur2(device_id.encode()) & 0x7FFFFFFF) % partitions)

    return bucket_of


# Field 1 of TelemetryBatch (repeated TelemetrySample samples), wire type 2: tag byte 0x0a, then the length.
_SAMPLE_TAG = b"\x0a"
_FRAMES = [_SAMPLE_TAG + bytes((n,)) for n in range(128)]


def varint(value: int) -> bytes:
    """A protobuf base-128 varint (the benchmark's hand encoder writes samples with it too)."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _framed(chunk: bytes) -> bytes:
    size = len(chunk)
    return (_FRAMES[size] if size < 128 else _SAMPLE_TAG + varint(size)) + chunk


def pack_batch(samples: Sequence[SampleLike], request_id: str, received_ms: int) -> bytes:
    """The serialized TelemetryBatch of ``samples``, built from each sample's own serialization.

    Protobuf's wire format lets a message be written field by field in any order, and a repeated
    message field is its elements one after another, each as tag + length + bytes. Serializing each
    sample and framing it costs half as much as copying the sample messages into a new TelemetryBatch
    (``samples.extend``) and serializing that, which was the largest item of the ingest path after
    screening. The result parses to exactly the message the slow way builds (a unit test checks).
    ``samples`` must be TelemetrySample messages (the ingest RPC's own)."""
    head = telemetry_pb2.TelemetryBatch(request_id=request_id, received_unix_ms=received_ms)
    serialize: Callable[[SampleLike], bytes] = telemetry_pb2.TelemetrySample.SerializeToString  # type: ignore[assignment]
    return b"".join([head.SerializeToString(), *map(_framed, map(serialize, samples))])
