"""The fault drills' verdict (tests/drills/drill_support.check) catches what it claims to: a drill whose
checker could not fail would prove nothing."""

from __future__ import annotations

from cityhub.safety.v1 import events_pb2

from tests.drills.drill_support import Change, Record, check

SITE_REGISTERED = "cityhub.safety.v1.SiteRegistered"


def change(name: str, *codes: str, entity: str = "") -> Change:
    found = Change(f"rid-{name}", "safety", "RegisterSite", SITE_REGISTERED, name, started=0.0)
    found.codes.extend(codes)
    found.entity = entity
    return found


def record(name: str, ce_id: str, *, subject: str = "", offset: int = 0) -> Record:
    payload = events_pb2.SiteRegistered(site_id=subject, name=name).SerializeToString()
    return Record("t", 0, offset, subject.encode(), payload, ce_id, SITE_REGISTERED, subject, at=1.0)


def test_acknowledged_changes_seen_once_and_a_redelivery_pass() -> None:
    verdict = check(
        [change("a", "OK", entity="site-a"), change("b", "UNAVAILABLE", "OK", entity="site-b")],
        [
            record("a", "e1", subject="site-a"),
            record("b", "e2", subject="site-b"),
            record("b", "e2", subject="site-b", offset=1),
        ],
    )
    assert verdict.problems == []
    assert verdict.figures["events"]["redelivered_records"] == 1
    assert verdict.copies == {"e1": 1, "e2": 2}


def test_an_acknowledged_change_missing_or_made_twice_fails() -> None:
    verdict = check(
        [change("a", "OK"), change("b", "OK")],
        [record("b", "e1"), record("b", "e2")],
    )
    assert any(p.startswith("rule 1: acknowledged RegisterSite rid-a has no event") for p in verdict.problems)
    assert any(p.startswith("rule 1/2: RegisterSite rid-b") for p in verdict.problems)
    assert verdict.figures["events"]["duplicates"] == 1
    assert verdict.figures["events"]["missing_acknowledged"] == 1


def test_an_unacknowledged_change_may_appear_once_but_not_twice() -> None:
    once = check([change("a", "UNAVAILABLE", "DEADLINE_EXCEEDED")], [record("a", "e1")])
    assert once.problems == []
    assert once.figures["changes"]["unacknowledged_but_committed"] == 1
    twice = check([change("a", "UNAVAILABLE")], [record("a", "e1"), record("a", "e2")])
    assert [p[:9] for p in twice.problems] == ["rule 1/2:"]


def test_an_event_nobody_asked_for_fails() -> None:
    verdict = check([change("a", "OK")], [record("a", "e1"), record("ghost", "e2")])
    assert any(p.startswith("rule 3:") for p in verdict.problems)


def test_the_subject_must_be_what_the_acknowledgement_named() -> None:
    verdict = check([change("a", "OK", entity="site-a")], [record("a", "e1", subject="site-z")])
    assert any("acknowledged site-a but its event is about site-z" in p for p in verdict.problems)


def test_copies_of_one_ce_id_must_be_the_same_record() -> None:
    verdict = check([change("a", "OK")], [record("a", "e1", subject="x"), record("a", "e1", subject="y")])
    assert any(p.startswith("rule 4:") for p in verdict.problems)


def test_a_status_code_other_than_ok_unavailable_or_deadline_fails() -> None:
    verdict = check([change("a", "UNAVAILABLE", "ALREADY_EXISTS")], [])
    assert any(p.startswith("rule 5:") for p in verdict.problems)
