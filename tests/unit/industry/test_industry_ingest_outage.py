"""Telemetry ingest while Kafka does not acknowledge: UNAVAILABLE within the caller's budget (never an
INTERNAL after 30 s), and after a few such answers the breaker refuses at once without touching Kafka."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pytest
from cityhub.industry.v1 import telemetry_pb2
from kafka.errors import KafkaTimeoutError

from services.industry.domain.access import Visibility
from services.industry.domain.telemetry import DeviceProfile, SampleLimits
from services.industry.usecases.telemetry import TelemetryIngest
from services.platform import deadlines
from services.platform.breaker import Breaker
from services.platform.errors import DeadlineExceededError, UnavailableError
from services.platform.uow import FakeUnitOfWork
from tests.unit.industry.fakes import FakeIndustryRepository

NOW_MS = 1_790_000_000_000
DEVICE = DeviceProfile("dev_1", "91331004MA2AAAAAA1", None, "W1", 15.0, 30.0, 1000, bucket=0)
LIMITS = SampleLimits(
    max_future_ms=300_000,
    max_age_ms=86_400_000,
    power_rated_multiple=2.0,
    temperature_min_c=-40,
    temperature_max_c=150,
    spindle_load_max_pct=200,
    max_parts_per_sample=1000,
)


class Directory:
    profiles: Mapping[str, DeviceProfile] = {"dev_1": DEVICE}

    def resolve(self, device_ids: Iterable[str]) -> Mapping[str, DeviceProfile]:  # noqa: ARG002
        return self.profiles


@dataclass
class SilentBroker:
    """A producer whose acknowledgements never come, as while the broker is down."""

    sends: int = 0
    waited: float = 0.0

    def send(self, topic: str, **_: object) -> SilentBroker:  # noqa: ARG002
        self.sends += 1
        return self

    def get(self, timeout: float | None = None) -> None:
        self.waited += timeout or 0.0
        raise KafkaTimeoutError(f"no ack in {timeout}s")

    def flush(self, timeout: float | None = None) -> None:  # noqa: ARG002
        return None


def ingest(broker: SilentBroker, breaker: Breaker) -> TelemetryIngest:
    return TelemetryIngest(
        Directory(),
        broker,  # type: ignore[arg-type]
        FakeUnitOfWork(FakeIndustryRepository()),
        topic="t",
        partitions=1,
        source="test",
        limits=LIMITS,
        max_samples=1000,
        ack_timeout_s=5.0,
        breaker=breaker,
        clock_ms=lambda: NOW_MS,
    )


def sample() -> telemetry_pb2.TelemetrySample:
    return telemetry_pb2.TelemetrySample(
        device_id="dev_1", time_unix_ms=NOW_MS - 1000, state=telemetry_pb2.DEVICE_STATE_RUNNING
    )


def test_unacknowledged_samples_are_unavailable_within_the_callers_budget_then_the_breaker_answers() -> None:
    broker = SilentBroker()
    breaker = Breaker("Kafka", threshold=3, cooldown_s=60)
    use_case = ingest(broker, breaker)
    for attempt in range(3):
        with deadlines.bound(time.monotonic() + 0.2), pytest.raises(UnavailableError, match="Kafka"):
            use_case.ingest(f"req-{attempt}", [sample()], Visibility.of(everything=True))
    # Each wait was the caller's 0.2 s budget, not the 5 s ceiling (let alone kafka-python's 30 s).
    assert broker.waited <= 3 * 0.2
    sends = broker.sends
    with pytest.raises(UnavailableError, match="Kafka is unavailable"):
        use_case.ingest("req-4", [sample()], Visibility.of(everything=True))
    assert broker.sends == sends, "an open breaker must not send"


def test_a_caller_out_of_time_sends_nothing() -> None:
    broker = SilentBroker()
    with deadlines.bound(time.monotonic() - 0.01), pytest.raises(DeadlineExceededError):
        ingest(broker, Breaker("Kafka")).ingest("req", [sample()], Visibility.of(everything=True))
    assert broker.sends == 0
