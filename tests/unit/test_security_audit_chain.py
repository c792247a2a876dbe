"""The audit log's hash chain, computed without a database."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone

from services.platform.security.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditRow,
    canonical_json,
    chain_hash,
    verify_rows,
)

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _entry(n: int) -> AuditEntry:
    return AuditEntry(
        actor=f"officer-{n}",
        actor_roles=("police",),
        action="read",
        rpc="/cityhub.testing.v1.ProbeService/GetPersonRecord",
        subject=f"P-{n}",
        fields=("record.identity_number",),
        purpose="事件调查 incident 42",
        outcome="shown",
        details={"effective_roles": ["police"], "n": n},
    )


def _chain(count: int) -> list[AuditRow]:
    rows: list[AuditRow] = []
    previous = GENESIS_HASH
    for n in range(1, count + 1):
        at = START + timedelta(seconds=n, microseconds=n)
        row_hash = chain_hash(previous, n, at, _entry(n))
        rows.append(AuditRow(n, at, _entry(n), previous, row_hash))
        previous = row_hash
    return rows


def test_the_row_hash_covers_the_previous_hash_and_a_canonical_json() -> None:
    at = START
    expected = hashlib.sha256((GENESIS_HASH + canonical_json(1, at, _entry(1))).encode()).hexdigest()
    assert chain_hash(GENESIS_HASH, 1, at, _entry(1)) == expected


def test_canonical_json_is_stable_across_time_zones_and_key_order() -> None:
    shanghai = timezone(timedelta(hours=8))
    same_moment = START.astimezone(shanghai)
    reordered = dataclasses.replace(_entry(1), details={"n": 1, "effective_roles": ["police"]})
    assert canonical_json(1, same_moment, reordered) == canonical_json(1, START, _entry(1))
    assert '"at":"2026-03-01T08:00:00.000000+00:00"' in canonical_json(1, START, _entry(1))
    assert "事件调查" in canonical_json(1, START, _entry(1))  # stored as text, hashed as UTF-8


def test_an_intact_chain_verifies() -> None:
    report = verify_rows(_chain(5))
    assert report.ok
    assert report.rows == 5
    assert report.head_id == 5


def test_an_empty_chain_verifies() -> None:
    assert verify_rows([]).ok


def test_a_changed_row_is_named() -> None:
    rows = _chain(5)
    rows[2] = dataclasses.replace(rows[2], entry=dataclasses.replace(rows[2].entry, purpose="nothing to see"))
    report = verify_rows(rows)
    assert report.first_broken_id == 3
    assert "changed" in report.reason


def test_a_removed_row_breaks_the_link_of_the_next() -> None:
    rows = _chain(5)
    del rows[1]
    report = verify_rows(rows)
    assert report.first_broken_id == 3
    assert "removed or inserted" in report.reason


def test_a_rehashed_row_still_breaks_the_next_link() -> None:
    rows = _chain(4)
    forged_entry = dataclasses.replace(rows[1].entry, subject="P-999")
    rows[1] = dataclasses.replace(
        rows[1], entry=forged_entry, row_hash=chain_hash(rows[1].prev_hash, 2, rows[1].at, forged_entry)
    )
    assert verify_rows(rows).first_broken_id == 3
