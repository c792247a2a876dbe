"""The signed trail's pure rules: content, linking, signing and the first broken link."""

from __future__ import annotations

import base64
import itertools
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.govservice.adapters.signing import NewKey, new_signing_key
from services.govservice.domain.model import ApplicationStatus
from services.govservice.domain.trail import (
    ChainVerdict,
    RegionPublicKey,
    StepRecord,
    TrailSubject,
    content_of,
    link,
    load_private_key,
    sign_content,
    step_content,
    step_hash,
    verify_chain,
    verify_trail,
)
from services.govservice.usecases.trail import SEAL_PURPOSE, _KeyCache
from services.platform.vault import Vault

S = ApplicationStatus
FILING = "331004"  # Luqiao District (A)
HANDLING = "522632"  # Rongjiang County (B)
OTHER = "341621"  # Guoyang County: a third region, not party to the application
APP = "GS-331004-20261201-7K3QX9"
T0 = datetime(2026, 12, 1, 1, 2, 3, 456789, tzinfo=UTC)

KEYS: dict[str, NewKey] = {region: new_signing_key() for region in (FILING, HANDLING, OTHER)}
PUBLISHED: dict[str, RegionPublicKey] = {
    k.key_id: RegionPublicKey(region, k.public_key_pem) for region, k in KEYS.items()
}

# The filing, receipt and forwarding by A, acceptance and a supplement request by B, the supplement by A.
WALK: list[tuple[ApplicationStatus, str, str]] = [
    (S.SUBMITTED, FILING, ""),
    (S.RECEIVED, FILING, "materials complete"),
    (S.FORWARDED, FILING, ""),
    (S.ACCEPTED, HANDLING, ""),
    (S.SUPPLEMENT_REQUESTED, HANDLING, "payment record 2019-2021"),
    (S.SUPPLEMENTED, FILING, "payment record brought"),
]


def private(region: str) -> Ed25519PrivateKey:
    return load_private_key(KEYS[region].private_key_pem)


def chain(walk: list[tuple[ApplicationStatus, str, str]] = WALK) -> list[StepRecord]:
    steps: list[StepRecord] = []
    for i, (status, region, note) in enumerate(walk):
        steps.append(
            link(
                steps[-1] if steps else None,
                application_no=APP,
                status=status,
                region=region,
                actor=f"clerk-{region}",
                at=T0 + timedelta(hours=i),
                note=note,
                key_id=KEYS[region].key_id,
                private_key=private(region),
            )
        )
    return steps


def resigned(step: StepRecord, region: str, key_id: str | None = None) -> StepRecord:
    """``step`` re-hashed and re-signed with ``region``'s key (and naming ``key_id``)."""
    moved = replace(step, key_id=key_id or KEYS[region].key_id)
    content = content_of(moved)
    return replace(moved, hash=step_hash(content), signature=sign_content(content, private(region)))


def broken(verdict: ChainVerdict, sequence: int, *words: str) -> None:
    assert not verdict.intact
    assert verdict.first_broken == sequence, verdict.problem
    assert verdict.problem.startswith(f"step {sequence}: "), verdict.problem
    for word in words:
        assert word in verdict.problem, verdict.problem


def test_a_chain_of_six_steps_verifies() -> None:
    steps = chain()
    assert [s.sequence for s in steps] == [0, 1, 2, 3, 4, 5]
    assert steps[0].previous_hash == ""
    assert all(b.previous_hash == a.hash for a, b in itertools.pairwise(steps))
    assert verify_chain(steps, PUBLISHED) == ChainVerdict(True, 6, -1, "")
    assert verify_chain(steps, PUBLISHED, regions=(FILING, HANDLING)).intact
    subject = TrailSubject(FILING, HANDLING, "SUPPLEMENTED")
    assert verify_trail(subject, steps, PUBLISHED) == ChainVerdict(True, 6)


def test_the_content_format_is_fixed() -> None:
    content = step_content(
        application_no=APP,
        sequence=3,
        status=S.ACCEPTED,
        region=HANDLING,
        actor="clerk-7",
        at=datetime(2026, 12, 1, 9, 30, tzinfo=timezone(timedelta(hours=8))),
        note="受理",
        previous_hash="ab" * 32,
        key_id="r_0123456789abcdef",
    )
    assert (
        content
        == (
            '{"actor":"clerk-7","application_no":"GS-331004-20261201-7K3QX9","at":"2026-12-01T01:30:00.000000Z",'
            '"format":"govservice-trail/1","key_id":"r_0123456789abcdef","note":"受理",'
            f'"previous_hash":"{"ab" * 32}","region":"522632","sequence":3,"status":"ACCEPTED"}}'
        ).encode()
    )


def test_the_signature_is_over_the_content_bytes() -> None:
    step = chain()[3]
    public = private(HANDLING).public_key()
    public.verify(base64.b64decode(step.signature), content_of(step))
    assert step.hash == step_hash(content_of(step))


@pytest.mark.parametrize(
    "change",
    [
        {"note": "accepted without the payment record"},
        {"at": T0 + timedelta(hours=3, microseconds=1)},
        {"status": S.COMPLETED},
        {"actor": "someone-else"},
        {"application_no": "GS-331004-20261201-AAAAAA"},
    ],
    ids=["note", "at", "status", "actor", "application_no"],
)
def test_changing_a_field_of_step_3_breaks_step_3(change: dict[str, object]) -> None:
    steps = chain()
    steps[3] = replace(steps[3], **change)  # type: ignore[arg-type]
    broken(verify_chain(steps, PUBLISHED), 3, "does not match its hash")


def test_changing_the_region_of_step_3_breaks_step_3() -> None:
    steps = chain()
    steps[3] = replace(steps[3], region=FILING)
    broken(verify_chain(steps, PUBLISHED), 3, f"belongs to region {HANDLING}")
    # Knowing the application's regions, the wrong acting region is named first.
    broken(verify_chain(steps, PUBLISHED, regions=(FILING, HANDLING)), 3, "may not act for ACCEPTED")


def test_a_changed_field_with_a_recomputed_hash_fails_the_signature() -> None:
    steps = chain()
    altered = replace(steps[3], note="forged")
    steps[3] = replace(altered, hash=step_hash(content_of(altered)))
    broken(verify_chain(steps, PUBLISHED), 3, "signature does not verify")


def test_a_deleted_step_2_is_the_first_broken_link() -> None:
    steps = chain()
    del steps[2]
    broken(verify_chain(steps, PUBLISHED), 2, "missing", "step 3 follows step 1")


def test_a_deleted_filing_step_breaks_0() -> None:
    broken(verify_chain(chain()[1:], PUBLISHED), 0, "missing")
    broken(verify_chain([], PUBLISHED), 0, "missing", "no steps")


def test_swapped_steps_break_at_the_first_of_them() -> None:
    steps = chain()
    steps[2], steps[3] = steps[3], steps[2]
    broken(verify_chain(steps, PUBLISHED), 2, "out of order")


def test_swapped_sequence_numbers_break_at_the_first_of_them() -> None:
    # Swapping two rows' sequence numbers in the table: each row is then read in the other's place.
    steps = chain()
    two, three = steps[2], steps[3]
    steps[2], steps[3] = replace(three, sequence=2), replace(two, sequence=3)
    broken(verify_chain(steps, PUBLISHED), 2)


def test_a_relinked_step_breaks_at_the_link() -> None:
    steps = chain()
    steps[4] = resigned(replace(steps[4], previous_hash="00" * 32), HANDLING)
    broken(verify_chain(steps, PUBLISHED), 4, "previous_hash does not match the hash of step 3")
    first = chain()
    first[0] = resigned(replace(first[0], previous_hash="00" * 32), FILING)
    broken(verify_chain(first, PUBLISHED), 0, "no previous hash")


def test_step_3_re_signed_with_another_regions_key() -> None:
    steps = chain()
    steps[3] = resigned(steps[3], FILING)
    broken(verify_chain(steps, PUBLISHED), 3, f"belongs to region {FILING}", f"not to the step's {HANDLING}")
    third = chain()
    third[3] = resigned(third[3], OTHER)
    broken(verify_chain(third, PUBLISHED), 3, f"belongs to region {OTHER}")


def test_step_3_signed_by_an_unknown_key() -> None:
    steps = chain()
    stranger = new_signing_key()
    moved = replace(steps[3], key_id=stranger.key_id)
    content = content_of(moved)
    steps[3] = replace(
        moved,
        hash=step_hash(content),
        signature=sign_content(content, load_private_key(stranger.private_key_pem)),
    )
    broken(verify_chain(steps, PUBLISHED), 3, "unknown key id", stranger.key_id)


@pytest.mark.parametrize(
    ("signature", "words"),
    [
        ("not base64 at all!", "not a base64 Ed25519 signature"),
        ("", "not a base64 Ed25519 signature"),
        (base64.b64encode(b"short").decode(), "not a base64 Ed25519 signature"),
        (base64.b64encode(secrets.token_bytes(64)).decode(), "signature does not verify"),
        ("ü" * 10, "not a base64 Ed25519 signature"),
    ],
    ids=["garbage", "empty", "short", "random-64-bytes", "non-ascii"],
)
def test_a_garbage_signature_on_step_3(signature: str, words: str) -> None:
    steps = chain()
    steps[3] = replace(steps[3], signature=signature)
    broken(verify_chain(steps, PUBLISHED), 3, words)


def test_a_bad_published_key_is_a_broken_link_not_an_error() -> None:
    steps = chain()
    keys = dict(PUBLISHED)
    keys[KEYS[HANDLING].key_id] = RegionPublicKey(HANDLING, "-----BEGIN PUBLIC KEY-----\ngarbage\n")
    broken(verify_chain(steps, keys), 3, "not a valid Ed25519 public key")


def test_an_unknown_status_text_is_a_broken_link() -> None:
    steps = chain()
    steps[3] = replace(steps[3], status="ALMOST_DONE")  # type: ignore[arg-type]
    broken(verify_chain(steps, PUBLISHED), 3, "does not match its hash")
    broken(verify_chain(steps, PUBLISHED, regions=(FILING, HANDLING)), 3, "no known status")


def test_a_step_by_the_wrong_region_is_named_even_when_properly_signed() -> None:
    # B signing a receipt that is A's to make: its own key, but not its turn.
    walk = [*WALK[:1], (S.RECEIVED, HANDLING, "")]
    broken(verify_chain(chain(walk), PUBLISHED, regions=(FILING, HANDLING)), 1, "the filing region")


def test_either_region_may_reject() -> None:
    for region in (FILING, HANDLING):
        walk = [*WALK[:4], (S.REJECTED, region, "not entitled")]
        assert verify_chain(chain(walk), PUBLISHED, regions=(FILING, HANDLING)).intact
    walk = [*WALK[:4], (S.REJECTED, OTHER, "not entitled")]
    broken(verify_chain(chain(walk), PUBLISHED, regions=(FILING, HANDLING)), 4, "two regions")


def test_a_trail_cut_short_at_its_end_is_found_by_the_application_status() -> None:
    steps = chain()
    subject = TrailSubject(FILING, HANDLING, "SUPPLEMENTED")
    broken(verify_trail(subject, steps[:4], PUBLISHED), 4, "missing", "SUPPLEMENTED", "ends at step 3")


def test_the_time_is_taken_in_utc_whatever_its_zone() -> None:
    local = T0.astimezone(timezone(timedelta(hours=8)))
    base = {
        "application_no": APP,
        "sequence": 0,
        "status": S.SUBMITTED,
        "region": FILING,
        "actor": "a",
        "note": "",
        "previous_hash": "",
        "key_id": "k",
    }
    assert step_content(at=T0, **base) == step_content(at=local, **base)  # type: ignore[arg-type]


def test_loaded_private_keys_are_cached_per_vault() -> None:
    vault = Vault(secrets.token_bytes(32), "govservice")
    key = KEYS[FILING]
    sealed = vault.seal(SEAL_PURPOSE, key.key_id, {"pem": key.private_key_pem})
    cache = _KeyCache()
    first = cache.get(vault, key.key_id, sealed)
    # The second time nothing is unsealed: a blob that would not open proves it.
    assert cache.get(vault, key.key_id, b"") is first
    with pytest.raises(ValueError, match="another person key"):
        cache.get(Vault(secrets.token_bytes(32), "govservice"), key.key_id, sealed)
