"""Secrets and sensitive values never reach a log line."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog
from cityhub.testing.v1 import testing_pb2

from services.platform.logs import configure_logging, get_logger
from services.platform.security.redaction import (
    REDACTED,
    install_redaction,
    redact_event,
    redact_text,
    register_sensitive_keys,
)

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
IDENTITY = "331004198001011617"


def test_secret_keys_are_redacted_whatever_their_value() -> None:
    event = redact_event(
        None,
        "info",
        {
            "event": "x",
            "authorization": "Bearer abc",
            "password": "hunter2",
            "jwt_private_key": "...",
            "db_password": "pw",
            "identity_number": 123,
            "id_number": "x",
            "person_token": "P-1",
        },
    )
    for key in (
        "authorization",
        "password",
        "jwt_private_key",
        "db_password",
        "identity_number",
        "id_number",
    ):
        assert event[key] == REDACTED
    assert event["person_token"] == "P-1"  # pseudonymous on purpose: stays readable


def test_tokens_and_identity_numbers_inside_text_are_redacted() -> None:
    text = f"user sent Bearer {JWT} about {IDENTITY}, trace 4bf92f3577b34da6a3ce929d0e0e4736"
    cleaned = redact_text(text)
    assert JWT not in cleaned
    assert IDENTITY not in cleaned
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in cleaned
    assert "[REDACTED_ID]" in cleaned
    assert redact_text(f"id {IDENTITY[:-1]}x") == "id [REDACTED_ID]"


def test_numbers_that_are_not_identity_numbers_stay() -> None:
    for text in ("order 123456789012345678901", "phone 13800000017", "ts 1764000000000000000"):
        assert redact_text(text) == text


def test_private_keys_in_text_are_redacted() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----"
    assert "MIGH" not in redact_text(f"loaded {pem} ok")


def test_nested_values_and_messages_are_redacted() -> None:
    register_sensitive_keys(["psychiatric_history"])
    record = testing_pb2.PersonRecord(
        person_token="P-1",
        identity_number=IDENTITY,
        health=testing_pb2.HealthSummary(psychiatric_history=True, body_temperature_c=38.5),
    )
    event = redact_event(
        None,
        "info",
        {
            "event": "x",
            "context": {"token": "t", "notes": [f"saw {IDENTITY}"]},
            "record": record,
            "psychiatric_history": True,
        },
    )
    assert event["context"]["token"] == REDACTED
    assert event["context"]["notes"] == ["saw [REDACTED_ID]"]
    assert IDENTITY not in event["record"]
    assert "38.5" not in event["record"]
    assert "P-1" in event["record"]
    assert event["psychiatric_history"] == REDACTED


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    previous = structlog.get_config()
    out = io.StringIO()
    install_redaction()
    configure_logging("test", fmt="json")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(out))
    yield out
    structlog.configure(**previous)


def test_the_processor_runs_in_the_platform_logging_pipeline(json_logs: io.StringIO) -> None:
    get_logger().info("login_seen", authorization=f"Bearer {JWT}", note=f"for {IDENTITY}")
    line = json.loads(json_logs.getvalue().strip().splitlines()[-1])
    assert line["event"] == "login_seen"
    assert line["authorization"] == REDACTED
    assert IDENTITY not in json_logs.getvalue()
    assert JWT not in json_logs.getvalue()


def test_library_log_lines_pass_through_the_redactor(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    configure_logging("redaction-test", fmt="json")
    install_redaction()
    logging.getLogger("kafka.conn").warning("sending %s for %s", f"Bearer {JWT}", IDENTITY)
    out = capsys.readouterr().out
    line = json.loads(out.strip().splitlines()[-1])
    assert line["logger"] == "kafka.conn"
    assert JWT not in out
    assert IDENTITY not in out
