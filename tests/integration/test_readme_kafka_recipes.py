"""The README's "Reading topics with your own tools" recipes, run exactly as written (the shell blocks after
their ``<!-- recipe: NAME -->`` markers) against the real broker, on a topic of the test's own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cityhub.safety.v1 import events_pb2 as safety_events
from google.protobuf.timestamp_pb2 import Timestamp

from services.cli.infra import REPO_ROOT
from services.platform import kafka as bus
from tests.kafka_support import delete_topics
from tests.support import unique_name

README = REPO_ROOT / "README.md"
# Where the README's commands find Kafka's jars, relative to the repository root they run in.
KAFKA_LIBS = REPO_ROOT / ".local" / "kafka" / "libs"
_RECIPE = re.compile(r"<!-- recipe: ([\w-]+) -->\n```bash\n(.*?)```", re.DOTALL)


def _recipes() -> dict[str, str]:
    return dict(_RECIPE.findall(README.read_text()))


def _run(recipe: str, bootstrap: str, topic: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BOOTSTRAP": bootstrap, "TOPIC": topic}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _recipes()[recipe]],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"recipe {recipe} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def topic_with_events(kafka_bootstrap: str) -> Iterator[tuple[str, list[bus.EventEnvelope]]]:
    if not KAFKA_LIBS.is_dir() or shutil.which("java") is None:
        pytest.skip(
            "Kafka's jars are fetched by the local stack (`make infra-up`); this run uses another broker"
        )
    topic = unique_name("readme.recipes")
    bus.ensure_topics(kafka_bootstrap, [topic], partitions=2, replication=1, with_dlq=False)
    registered = Timestamp()
    registered.FromDatetime(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    sent = [
        bus.EventEnvelope.for_message(
            safety_events.SiteRegistered(site_id="S-001", name="No. 1 School", registered_at=registered),
            topic=topic,
            key="S-001",
            subject="S-001",
            source="/cityhub/tests",
        ),
        bus.EventEnvelope.for_message(
            safety_events.AlertRaised(alert_id="A-1", site_id="S-001", reasons=["crowding"]),
            topic=topic,
            key="A-1",
            subject="S-001",
            source="/cityhub/tests",
        ),
    ]
    producer = bus.make_producer(kafka_bootstrap)
    try:
        for partition, envelope in enumerate(sent):
            producer.send(
                topic,
                key=envelope.key_bytes,
                value=envelope.payload,
                headers=envelope.headers(),
                partition=partition,
            ).get(30)
    finally:
        producer.close(10)
    yield topic, sent
    delete_topics(kafka_bootstrap, [topic])


def test_the_readme_names_its_recipes() -> None:
    assert set(_recipes()) == {"read-topic", "decode-value"}


def test_console_consumer_recipe_reads_every_partition_with_headers_and_keys(
    kafka_bootstrap: str, topic_with_events: tuple[str, list[bus.EventEnvelope]]
) -> None:
    topic, sent = topic_with_events
    lines = [
        line for line in _run("read-topic", kafka_bootstrap, topic).stdout.splitlines() if "ce_id:" in line
    ]
    assert len(lines) == 2
    for envelope in sent:
        (line,) = [line for line in lines if f"ce_id:{envelope.id}" in line]
        assert f"ce_type:{envelope.type}" in line
        assert line.startswith("CreateTime:")
        assert line.rstrip().endswith(f"\t{envelope.key}")


def test_protoc_recipe_decodes_the_value_by_its_ce_type(
    kafka_bootstrap: str, topic_with_events: tuple[str, list[bus.EventEnvelope]]
) -> None:
    topic, _ = topic_with_events
    decoded = _run("decode-value", kafka_bootstrap, topic).stdout
    # Partition 0 holds the SiteRegistered; its Timestamp field needs protoc's google/protobuf includes.
    assert 'site_id: "S-001"' in decoded
    assert 'name: "No. 1 School"' in decoded
    assert "registered_at {" in decoded
    assert f"seconds: {int(datetime(2026, 3, 1, 8, 0, tzinfo=UTC).timestamp())}" in decoded
