"""The audit log's hash chain, computed without a database."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.platform.security.audit import (
    GENESIS_HASH,
    Anchor,
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


# --- anchors: heads recorded outside the database -------------------------------------------------------


def _recomputed_from(rows: list[AuditRow], index: int, **changes: object) -> list[AuditRow]:
    """What a database superuser can do: change row ``index`` and recompute every hash from it on."""
    forged = list(rows[:index])
    previous = rows[index - 1].row_hash if index else GENESIS_HASH
    for n, row in enumerate(rows[index:]):
        entry = dataclasses.replace(row.entry, **changes) if n == 0 else row.entry  # type: ignore[arg-type]
        row_hash = chain_hash(previous, row.id, row.at, entry)
        forged.append(AuditRow(row.id, row.at, entry, previous, row_hash))
        previous = row_hash
    return forged


def _anchor(row: AuditRow) -> Anchor:
    return Anchor(row.id, row.row_hash, START, where=f"offset {row.id}")


def test_matching_anchors_are_counted_and_the_newest_reported() -> None:
    rows = _chain(6)
    report = verify_rows(rows, [_anchor(rows[4]), _anchor(rows[1]), _anchor(rows[4])])
    assert report.ok
    assert report.anchors_checked == 3
    assert report.newest_anchor_id == 5


def test_a_recomputed_chain_holds_alone_but_fails_at_the_first_anchor_after_the_change() -> None:
    rows = _chain(8)
    anchors = [_anchor(rows[1]), _anchor(rows[4]), _anchor(rows[6])]
    forged = _recomputed_from(rows, 3, actor="nobody")
    assert verify_rows(forged).ok  # the chain alone cannot tell
    report = verify_rows(forged, anchors)
    assert report.first_broken_id == 5
    assert report.broken_anchor == anchors[1]
    assert report.anchors_checked == 1  # the anchor of row 2, before the change, still holds
    assert "rewritten" in report.reason
    assert report.broken_anchor.describe().startswith("anchor of row 5 (offset 5, anchored 2026-03-01T08:00")


def test_rows_cut_off_the_end_fail_at_an_anchor_beyond_the_new_head() -> None:
    rows = _chain(6)
    report = verify_rows(rows[:3], [_anchor(rows[2]), _anchor(rows[5])])
    assert report.first_broken_id == 6
    assert "the log now ends at row 3" in report.reason
    assert verify_rows([], [_anchor(rows[0])]).first_broken_id == 1


def test_a_removed_row_with_the_chain_recomputed_fails_at_its_anchor() -> None:
    rows = _chain(5)
    shortened = [rows[0], rows[1], *_recomputed_from([rows[1], *rows[3:]], 1)[1:]]
    assert verify_rows(shortened).ok
    report = verify_rows(shortened, [_anchor(rows[2])])
    assert report.first_broken_id == 3
    assert "row 3 is gone" in report.reason


def test_the_anchor_topic_is_named_alike_in_the_runtime_the_cli_and_the_module() -> None:
    from services.cli.audit_commands import verify
    from services.platform.security.anchors import ANCHOR_TOPIC
    from services.platform.settings import ServiceSettings

    option = next(p for p in verify.params if p.name == "anchor_topic")
    assert option.default == ANCHOR_TOPIC == ServiceSettings.model_fields["audit_anchor_topic"].default
    assert ANCHOR_TOPIC == "cityhub.audit.anchors.v1"


def test_an_anchor_record_reads_back_with_where_and_when() -> None:
    from types import SimpleNamespace

    from services.platform.security.anchors import AnchorReadError, _anchor_of, anchor_envelope

    envelope = anchor_envelope("safety", 42, "ab" * 32, topic="anchors", at=START)
    assert envelope.key == "safety"
    assert envelope.type == "cityhub.audit.v1.AuditChainAnchored"
    record = SimpleNamespace(
        topic="anchors",
        partition=0,
        offset=7,
        key=b"safety",
        value=envelope.payload,
        headers=envelope.headers(),
    )
    assert _anchor_of(record, "safety") == Anchor(42, "ab" * 32, START, "anchors partition 0 offset 7")
    with pytest.raises(AnchorReadError, match="malformed"):
        _anchor_of(record, "industry")
    with pytest.raises(AnchorReadError, match="not an anchor"):
        _anchor_of(SimpleNamespace(**{**vars(record), "headers": []}), "safety")
