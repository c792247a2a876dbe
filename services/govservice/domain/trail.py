"""The signed trail of an application's steps: pure rules (no database, no wire format).

Format (version ``govservice-trail/1``). The *content* of a step is the UTF-8 bytes of the compact JSON
object (keys sorted, separators ``,`` and ``:``, non-ASCII characters written as themselves)::

    {"actor": ..., "application_no": ..., "at": "2026-12-01T02:03:04.000005Z", "format": "govservice-trail/1",
     "key_id": ..., "note": ..., "previous_hash": ..., "region": ..., "sequence": 0, "status": "SUBMITTED"}

``at`` is the step's time in UTC with microseconds; ``status`` the ApplicationStatus name without the
enum prefix (``SUBMITTED``); ``sequence`` a JSON integer, 0 for the filing. ``hash`` is the SHA-256 of the
content as lowercase hex; ``previous_hash`` the previous step's ``hash`` ("" for the filing), so each
step commits to the whole trail before it. ``signature`` is the Ed25519 signature over the content bytes
themselves (not over the hash), standard base64 with padding, by the key ``key_id`` of the acting region
(``region``). Anyone holding the region keys published by GetRegionKeys can rebuild the content of every
step and check hash, link and signature offline (:func:`verify_chain`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.govservice.domain.model import ApplicationStatus

__all__ = [
    "ACTING_SIDE",
    "FORMAT",
    "ChainVerdict",
    "RegionPublicKey",
    "StepRecord",
    "TrailSubject",
    "link",
    "load_private_key",
    "sign_content",
    "step_content",
    "step_hash",
    "utc_text",
    "verify_chain",
    "verify_trail",
]

FORMAT = "govservice-trail/1"


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One stored step of an application's trail (``steps`` row)."""

    application_no: str
    sequence: int
    status: ApplicationStatus
    region: str
    actor: str
    at: datetime
    note: str
    previous_hash: str
    hash: str
    signature: str
    key_id: str


@dataclass(frozen=True, slots=True)
class TrailSubject:
    """What verifying a trail needs of the application itself: its two regions and its current status
    (stored text, so a tampered value is compared rather than refused)."""

    filing_region: str
    handling_region: str
    status: str


class RegionPublicKey(NamedTuple):
    """A published key: the region it belongs to and its SubjectPublicKeyInfo PEM."""

    region: str
    public_key_pem: str


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    intact: bool
    steps: int
    # The sequence of the first broken link (-1 when intact) and what is wrong with it.
    first_broken: int = -1
    problem: str = ""


# Which side of the application acts for each status: "filing" (region A), "handling" (region B), or
# "either" (a rejection is made by whichever region holds the application).
ACTING_SIDE: Mapping[ApplicationStatus, str] = {
    ApplicationStatus.SUBMITTED: "filing",
    ApplicationStatus.RECEIVED: "filing",
    ApplicationStatus.FORWARDED: "filing",
    ApplicationStatus.SUPPLEMENTED: "filing",
    ApplicationStatus.ACCEPTED: "handling",
    ApplicationStatus.SUPPLEMENT_REQUESTED: "handling",
    ApplicationStatus.COMPLETED: "handling",
    ApplicationStatus.REJECTED: "either",
}


def utc_text(at: datetime) -> str:
    """``at`` in UTC with microseconds (``2026-12-01T02:03:04.000005Z``); a naive time is taken as UTC."""
    moment = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def step_content(
    *,
    application_no: str,
    sequence: int,
    status: str,
    region: str,
    actor: str,
    at: datetime,
    note: str,
    previous_hash: str,
    key_id: str,
) -> bytes:
    """The bytes a step's hash and signature are made over (the module text gives the format)."""
    document = {
        "format": FORMAT,
        "application_no": application_no,
        "sequence": sequence,
        "status": str(status),
        "region": region,
        "actor": actor,
        "at": utc_text(at),
        "note": note,
        "previous_hash": previous_hash,
        "key_id": key_id,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_of(step: StepRecord) -> bytes:
    return step_content(
        application_no=step.application_no,
        sequence=step.sequence,
        status=step.status,
        region=step.region,
        actor=step.actor,
        at=step.at,
        note=step.note,
        previous_hash=step.previous_hash,
        key_id=step.key_id,
    )


def step_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def load_private_key(pem: str) -> Ed25519PrivateKey:
    """A region's private key from its PKCS#8 PEM; TypeError when it is another kind of key."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("not an Ed25519 private key")
    return key


def sign_content(content: bytes, private_key: Ed25519PrivateKey) -> str:
    return base64.b64encode(private_key.sign(content)).decode("ascii")


def link(
    previous: StepRecord | None,
    *,
    application_no: str,
    status: ApplicationStatus,
    region: str,
    actor: str,
    at: datetime,
    note: str,
    key_id: str,
    private_key: Ed25519PrivateKey,
) -> StepRecord:
    """The step that follows ``previous`` (None: the filing, sequence 0), hashed, linked and signed."""
    sequence = previous.sequence + 1 if previous is not None else 0
    previous_hash = previous.hash if previous is not None else ""
    content = step_content(
        application_no=application_no,
        sequence=sequence,
        status=status,
        region=region,
        actor=actor,
        at=at,
        note=note,
        previous_hash=previous_hash,
        key_id=key_id,
    )
    return StepRecord(
        application_no=application_no,
        sequence=sequence,
        status=status,
        region=region,
        actor=actor,
        at=at,
        note=note,
        previous_hash=previous_hash,
        hash=step_hash(content),
        signature=sign_content(content, private_key),
        key_id=key_id,
    )


def _public_key(pem: str) -> Ed25519PublicKey | None:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnicodeError):
        return None
    return key if isinstance(key, Ed25519PublicKey) else None


def _signature(text: str) -> bytes | None:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeError):
        return None
    return raw if len(raw) == 64 else None


def _wrong_region(step: StepRecord, regions: tuple[str, str] | None) -> str | None:
    """Why ``step.region`` may not act for ``step.status`` in an application of ``regions``, if so."""
    if regions is None:
        return None
    filing, handling = regions
    side = ACTING_SIDE.get(step.status) if isinstance(step.status, ApplicationStatus) else None
    if side is None:
        return f"status {step.status!s:.40} is no known status"
    allowed = {"filing": {filing}, "handling": {handling}, "either": {filing, handling}}[side]
    if step.region not in allowed:
        who = "one of the application's two regions" if side == "either" else f"the {side} region"
        return f"region {step.region:.20} may not act for {step.status.value} ({who} does)"
    return None


def _problem(  # noqa: PLR0911 - one return per kind of broken link, in the order they are checked
    steps: Sequence[StepRecord],
    expected: int,
    previous: StepRecord | None,
    keys: Mapping[str, RegionPublicKey],
    regions: tuple[str, str] | None,
) -> str | None:
    """What is wrong with the step at position ``expected`` of the trail (None: a sound link)."""
    step = steps[expected]
    if step.sequence != expected:
        if any(later.sequence == expected for later in steps[expected + 1 :]):
            return f"out of order (step {step.sequence} stands where step {expected} belongs)"
        if step.sequence > expected:
            after = f"step {expected - 1}" if expected else "the start of the trail"
            return f"missing (step {step.sequence} follows {after})"
        return f"out of order (step {step.sequence} appears again where step {expected} belongs)"
    wanted_previous = previous.hash if previous is not None else ""
    if step.previous_hash != wanted_previous:
        if previous is None:
            return "the filing step must carry no previous hash"
        return f"previous_hash does not match the hash of step {previous.sequence}"
    wrong_region = _wrong_region(step, regions)
    if wrong_region is not None:
        return wrong_region
    published = keys.get(step.key_id)
    if published is None:
        return f"signed with an unknown key id {step.key_id!r:.40}"
    if published.region != step.region:
        return (
            f"key {step.key_id:.40} belongs to region {published.region}, not to the step's {step.region:.20}"
        )
    content = content_of(step)
    if step_hash(content) != step.hash:
        return "the step's content does not match its hash (a field was altered)"
    public_key = _public_key(published.public_key_pem)
    if public_key is None:
        return f"key {step.key_id:.40} is not a valid Ed25519 public key"
    signature = _signature(step.signature)
    if signature is None:
        return "the signature is not a base64 Ed25519 signature"
    try:
        public_key.verify(signature, content)
    except InvalidSignature:
        return f"the signature does not verify with key {step.key_id:.40}"
    return None


def verify_chain(
    steps: Sequence[StepRecord],
    keys: Mapping[str, RegionPublicKey],
    *,
    regions: tuple[str, str] | None = None,
) -> ChainVerdict:
    """Check an application's trail (``steps`` in stored order) against every key ever published.

    The first broken link is the first step whose sequence is not the expected one (a step missing or
    reordered), whose previous_hash is not the previous step's hash, whose region may not act for its
    status (when ``regions`` = (filing, handling) is given), whose key id is unknown or another region's,
    whose content does not match its hash, or whose signature fails. Malformed data (bad base64, a bad
    PEM, an unknown status) is a broken link with a reason, never an exception. A trail without its
    filing step is broken at 0."""
    if not steps:
        return ChainVerdict(False, 0, 0, "step 0: missing (the trail has no steps)")
    previous: StepRecord | None = None
    for expected, step in enumerate(steps):
        problem = _problem(steps, expected, previous, keys, regions)
        if problem is not None:
            return ChainVerdict(False, len(steps), expected, f"step {expected}: {problem}")
        previous = step
    return ChainVerdict(True, len(steps))


def verify_trail(
    subject: TrailSubject, steps: Sequence[StepRecord], keys: Mapping[str, RegionPublicKey]
) -> ChainVerdict:
    """:func:`verify_chain` for a stored application: each step's region must be the one that acts for
    its status, and the trail must end at the application's current status (a trail cut short at its
    end links up perfectly; the application row is the anchor that shows steps are gone)."""
    verdict = verify_chain(steps, keys, regions=(subject.filing_region, subject.handling_region))
    if not verdict.intact:
        return verdict
    last = steps[-1]
    if str(last.status) != subject.status:
        missing = len(steps)
        return ChainVerdict(
            False,
            len(steps),
            missing,
            f"step {missing}: missing (the application is {subject.status:.40}"
            f" but its trail ends at step {last.sequence}, {last.status!s:.40})",
        )
    return verdict
