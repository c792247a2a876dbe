"""The signed trail of hand-offs: every step of an application is appended here, in the transaction that
makes it, signed by the acting region's current key and linked to the previous step's hash; VerifyTrail
checks an application's chain against every key ever published (format: domain/trail.py).

How a region proves what was handed over and when, offline: it keeps GetRegionKeys' answer (key id ->
region, Ed25519 public key; retired keys stay listed) and the application's steps (GetApplication), and
for each step rebuilds the content (:func:`services.govservice.domain.trail.step_content`), checks the
SHA-256 hash, the link to the previous step and the Ed25519 signature of the key named by ``key_id``,
which must belong to the step's region (:func:`services.govservice.domain.trail.verify_chain`).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.govservice.domain.access import Visibility
from services.govservice.domain.model import ApplicationStatus
from services.govservice.domain.trail import ChainVerdict, link, load_private_key, verify_trail
from services.govservice.usecases.common import GovServiceContext, GovServiceTx
from services.platform.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError, shown
from services.platform.logs import get_logger
from services.platform.vault import Vault

__all__ = ["SEAL_PURPOSE", "TrailVerifier", "append_step"]

log = get_logger()
# The vault purpose the regions' private keys are sealed under (to their key id).
SEAL_PURPOSE = "region-key"
MAX_APPLICATION_NO_CHARS = 64


class _KeyCache:
    """Loaded private keys by key id, per vault: unsealing and parsing a PEM on every step is wasted work,
    and a key id names one key for good (derived from the public key). Bounded, least recently used out."""

    _LIMIT = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: weakref.WeakKeyDictionary[Vault, OrderedDict[str, Ed25519PrivateKey]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, vault: Vault, key_id: str, sealed: bytes) -> Ed25519PrivateKey:
        with self._lock:
            keys = self._keys.setdefault(vault, OrderedDict())
            found = keys.get(key_id)
            if found is not None:
                keys.move_to_end(key_id)
                return found
        key = load_private_key(str(vault.open(SEAL_PURPOSE, key_id, sealed)["pem"]))
        with self._lock:
            keys[key_id] = key
            while len(keys) > self._LIMIT:
                keys.popitem(last=False)
        return key


_KEYS = _KeyCache()


def append_step(
    tx: GovServiceTx,
    ctx: GovServiceContext,
    *,
    application_no: str,
    status: ApplicationStatus,
    region: str,
    actor: str,
    at: datetime,
    note: str = "",
) -> None:
    """Append the application's next step, signed by ``region``'s current key and linked to the previous
    step's hash. Sequence 0 is the filing. ``region`` is the acting region: the filing region for the
    filing, receipt, forwarding and a submitted supplement; the handling region for acceptance, a
    supplement request and completion; whichever region rejects."""
    # The application row is locked first: steps of one application take turns, the chain cannot fork.
    previous = tx.repo.last_step(application_no)
    current = tx.repo.current_key(region)
    if current is None:  # pragma: no cover - every region is registered with its first key
        raise FailedPreconditionError(f"region {shown(region)} has no signing key")
    key_id, sealed = current
    moment = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    step = link(
        previous,
        application_no=application_no,
        status=status,
        region=region,
        actor=actor,
        at=moment,
        note=note,
        key_id=key_id,
        private_key=_KEYS.get(ctx.vault, key_id, sealed),
    )
    tx.repo.add_step(step)


class TrailVerifier:
    def __init__(self, ctx: GovServiceContext) -> None:
        self._ctx = ctx

    def verify(self, application_no: str, visibility: Visibility) -> ChainVerdict:
        """The verdict on the application's trail; NOT_FOUND for an unknown number or one the caller's
        regions do not concern (the same answer: no way to learn that a number exists)."""
        if not application_no:
            raise InvalidArgumentError.of("application_no", "is required")
        if len(application_no) > MAX_APPLICATION_NO_CHARS:
            raise InvalidArgumentError.of(
                "application_no", f"is not an application number (longer than {MAX_APPLICATION_NO_CHARS})"
            )
        with self._ctx.uow.transaction() as tx:
            subject = tx.repo.trail_subject(application_no)
            if subject is None or not (
                visibility.covers(subject.filing_region) or visibility.covers(subject.handling_region)
            ):
                raise NotFoundError(f"application {shown(application_no)} not found")
            steps = tx.repo.list_steps(application_no)
            keys = tx.repo.public_keys()
        verdict = verify_trail(subject, steps, keys)
        if not verdict.intact:
            log.warning(
                "trail_broken",
                application_no=application_no,
                first_broken=verdict.first_broken,
                problem=verdict.problem,
            )
        return verdict
