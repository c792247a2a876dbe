"""Person data protection: stable tokens, sealed values bound to their owner, the key settings."""

from __future__ import annotations

import base64
import secrets
import stat
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from services.platform.identifiers import identity_check_char
from services.platform.settings import SettingsError, load_settings
from services.safety.settings import SafetySettings
from services.safety.vault import PersonKeyError, PersonVault, ensure_dev_person_key, load_person_key

REQUIRED = {"kafka_bootstrap_servers": "127.0.0.1:9", "database_url": "postgresql://u@127.0.0.1:5/db"}


def identity(seq: str) -> str:
    first17 = "33100419900101" + seq
    return first17 + identity_check_char(first17)


def key() -> bytes:
    return secrets.token_bytes(32)


def test_the_same_identity_gets_the_same_token_and_another_key_another_token() -> None:
    master = key()
    one, again, other = PersonVault(master), PersonVault(master), PersonVault(key())
    number = identity("123")
    assert one.token_for(number) == again.token_for(number)
    assert one.token_for(number) != one.token_for(identity("125"))
    assert one.token_for(number) != other.token_for(number)
    assert one.token_for(number).startswith("p_")
    assert number not in one.token_for(number)


def test_a_sealed_value_opens_only_for_its_owner_and_purpose_and_hides_its_content() -> None:
    vault = PersonVault(key())
    number = identity("123")
    sealed = vault.seal("person", "p_a", {"identity_number": number, "name": "Zhang San"})
    assert number.encode() not in sealed
    assert b"Zhang" not in sealed
    assert vault.open("person", "p_a", sealed) == {"identity_number": number, "name": "Zhang San"}
    with pytest.raises(ValueError, match="does not belong"):
        vault.open("person", "p_b", sealed)
    with pytest.raises(ValueError, match="does not belong"):
        vault.open("purchase", "p_a", sealed)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(ValueError, match="does not belong"):
        vault.open("person", "p_a", tampered)


def test_a_value_sealed_under_another_key_is_recognised() -> None:
    sealed = PersonVault(key()).seal("person", "p_a", {"x": 1})
    with pytest.raises(ValueError, match="another person key"):
        PersonVault(key()).open("person", "p_a", sealed)


def test_the_key_setting_must_be_32_bytes_of_base64_and_the_error_does_not_echo_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short = base64.b64encode(b"0123456789").decode()
    monkeypatch.setenv("SAFETY_PERSON_KEY", short)
    with pytest.raises(SettingsError) as error:
        load_settings(SafetySettings, **REQUIRED)
    assert "SAFETY_PERSON_KEY" in str(error.value)
    assert short not in str(error.value)


def test_without_a_key_or_the_dev_flag_the_service_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SAFETY_PERSON_KEY", "SAFETY_PERSON_KEY_FILE", "SAFETY_DEV_KEYS", "CITYHUB_DEV_KEYS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(PersonKeyError, match="SAFETY_PERSON_KEY"):
        load_person_key(load_settings(SafetySettings, **REQUIRED))


def test_a_configured_key_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    master = key()
    monkeypatch.setenv("SAFETY_PERSON_KEY", base64.b64encode(master).decode())
    assert load_person_key(load_settings(SafetySettings, **REQUIRED)) == master


def test_the_dev_flag_generates_one_shared_key_readable_by_its_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAFETY_PERSON_KEY", raising=False)
    monkeypatch.setenv("CITYHUB_DEV_KEYS", "true")
    monkeypatch.setenv("SAFETY_DEV_SECRETS_DIR", str(tmp_path))
    settings = load_settings(SafetySettings, **REQUIRED)
    with capture_logs() as logs:
        first = load_person_key(settings)
        assert load_person_key(settings) == first == ensure_dev_person_key(tmp_path)
    # Created once, and said so (without the key itself).
    assert [entry["event"] for entry in logs] == ["dev_person_key_created"]
    assert base64.b64encode(first).decode() not in repr(logs)
    mode = stat.S_IMODE((tmp_path / "safety-person-key").stat().st_mode)
    assert mode == 0o600


def test_the_district_time_zone_is_the_platform_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTRICT_TIME_ZONE", "Asia/Urumqi")
    assert load_settings(SafetySettings, **REQUIRED).district_zone.key == "Asia/Urumqi"
    with pytest.raises(SettingsError, match="DISTRICT_TIME_ZONE"):
        load_settings(SafetySettings, district_time_zone="Mars/Olympus", **REQUIRED)


def test_the_events_topic_carries_the_domain_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFETY_EVENTS_TOPIC", "cityhub.safety.events.v1.elsewhere")
    assert (
        load_settings(SafetySettings, **REQUIRED).safety_events_topic == "cityhub.safety.events.v1.elsewhere"
    )
