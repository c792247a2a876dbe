"""One code (一码服务): issuing member codes, publishing and rotating the federations' verification keys,
and the online verification (the offline verdict, then the membership's current status).

How an office verifies offline: it fetches GetVerificationKeys now and then (public keys as PEM by key id,
each with ``retires_at`` once rotated out) and runs :func:`services.commerce.domain.codes.verify` (or any
JWS library: ES256, the key picked by the header's ``kid``, ``nbf``/``exp`` checked with a little leeway)
on the scanned text. Offline it cannot see a suspension; VerifyMemberCode can.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta

import qrcode
import qrcode.constants
import qrcode.image.pure

from services.commerce.adapters.signing import ALGORITHM, new_signing_key
from services.commerce.domain.access import Visibility
from services.commerce.domain.codes import (
    MAX_CODE_CHARS,
    CodeClaims,
    CodeVerdict,
    IssuedCode,
    OnlineVerification,
    PublishedKey,
    key_id_of,
    online_verdict,
    sign_code,
    verify,
)
from services.commerce.domain.model import MembershipStatus
from services.commerce.mapping import codes as mapping
from services.commerce.usecases.common import CommerceContext, CommerceTx, require_membership
from services.platform.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from services.platform.logs import get_logger

__all__ = ["MemberCodes", "render_qr", "verify_online"]

log = get_logger()
# The vault purpose the federations' private keys are sealed under (to their key id).
SEAL_PURPOSE = "signing-key"


def render_qr(text: str) -> bytes:
    """The QR of ``text`` as PNG, drawn by qrcode's pure-Python PNG writer (no imaging library needed)."""
    image = qrcode.make(
        text,
        image_factory=qrcode.image.pure.PyPNGImage,
        # M: a phone's photo of a slightly worn printout still reads; the code text is short.
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=4,
        border=4,
    )
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def check_code_text(field: str, text: str) -> None:
    """Empty or far too long is a malformed request; anything else gets a verdict."""
    if not text:
        raise InvalidArgumentError.of(field, "is required (the scanned member code)")
    if len(text) > MAX_CODE_CHARS:
        raise InvalidArgumentError.of(
            field, f"is not a member code (longer than {MAX_CODE_CHARS} characters)"
        )


def verify_online(tx: CommerceTx, ctx: CommerceContext, text: str) -> OnlineVerification:
    """The online verdict inside ``tx``: the offline verifier with the key the code names, then the
    membership's current status (suspended, ended, rejected or missing: the code fails at once)."""
    kid = key_id_of(text)
    key = tx.repo.get_signing_key(kid) if kid else None
    keys = {key.key_id: key} if key is not None else {}
    offline = verify(text, keys, ctx.clock(), ctx.config.code_leeway_s)
    claims = offline.claims
    if claims is None:
        return OnlineVerification(offline.verdict)
    membership = tx.repo.get_membership(claims.membership_id)
    # A code names its membership and that membership's chamber: one that names another is no code of
    # ours (it could only be signed here, so this guards against a bug, not a forger).
    if membership is not None and (
        membership.chamber_id != claims.chamber_id or membership.credit_code != claims.credit_code
    ):
        membership = None
    verdict = online_verdict(offline.verdict, membership.status if membership else None)
    return OnlineVerification(
        verdict,
        membership_id=claims.membership_id,
        chamber_id=claims.chamber_id,
        credit_code=claims.credit_code,
        enterprise_name=membership.enterprise_name if membership else "",
    )


class MemberCodes:
    def __init__(self, ctx: CommerceContext) -> None:
        self._ctx = ctx

    def issue(self, membership_id: str, visibility: Visibility) -> IssuedCode:
        """A fresh code for an ACTIVE membership the caller sees, signed with its federation's current key."""
        if not membership_id:
            raise InvalidArgumentError.of("membership_id", "is required")
        config = self._ctx.config
        with self._ctx.uow.transaction() as tx:
            membership = require_membership(tx, membership_id, visibility)
            if membership.status is not MembershipStatus.ACTIVE:
                raise FailedPreconditionError(
                    f"membership_id: the membership is {membership.status.value};"
                    " only an ACTIVE one has a code"
                )
            chamber = tx.repo.get_chamber(membership.chamber_id)
            current = tx.repo.current_signing_key(chamber.federation_id) if chamber else None
            if current is None:  # pragma: no cover - every federation is created with its first key
                raise FailedPreconditionError("membership_id: the chamber's federation has no signing key")
            private_pem = str(
                self._ctx.vault.open(SEAL_PURPOSE, current.key.key_id, current.sealed_private)["pem"]
            )
            now = self._ctx.clock().replace(microsecond=0)
            claims = CodeClaims(
                chamber_id=membership.chamber_id,
                membership_id=membership.membership_id,
                credit_code=membership.credit_code,
                not_before=now,
                expires_at=now + timedelta(seconds=config.code_validity_s),
            )
            text = sign_code(claims, current.key.key_id, private_pem)
            issued = IssuedCode(
                text=text,
                qr_png=b"",
                key_id=current.key.key_id,
                membership_id=claims.membership_id,
                chamber_id=claims.chamber_id,
                credit_code=claims.credit_code,
                not_before=claims.not_before,
                expires_at=claims.expires_at,
            )
            tx.publish(
                key=membership.chamber_id,
                subject=membership.membership_id,
                message=mapping.member_code_issued(issued, now),
            )
        log.info(
            "member_code_issued",
            membership_id=issued.membership_id,
            key_id=issued.key_id,
            expires_at=issued.expires_at.isoformat(),
        )
        # Drawn after the transaction: a QR takes milliseconds nobody should hold a connection for.
        return replace(issued, qr_png=render_qr(text))

    def verification_keys(self) -> list[PublishedKey]:
        """Every federation's keys: current ones, and rotated-out ones with their ``retires_at``."""
        with self._ctx.uow.transaction() as tx:
            return tx.repo.list_signing_keys()

    def rotate(self, federation_id: str, visibility: Visibility) -> PublishedKey:
        """A new current key for the federation; the previous one verifies until now + key_retire_after_s.
        Concurrent rotations of one federation take turns on the federation's row."""
        if not federation_id:
            raise InvalidArgumentError.of("federation_id", "is required")
        if not visibility.everything:
            raise NotFoundError(f"no federation {federation_id!r}")
        key = new_signing_key()
        with self._ctx.uow.transaction() as tx:
            if not tx.repo.lock_federation_keys(federation_id):
                raise NotFoundError(f"no federation {federation_id!r}")
            now = self._ctx.clock()
            retired = tx.repo.retire_current_key(
                federation_id, now + timedelta(seconds=self._ctx.config.key_retire_after_s)
            )
            tx.repo.add_signing_key(
                key_id=key.key_id,
                federation_id=federation_id,
                algorithm=ALGORITHM,
                public_key_pem=key.public_key_pem,
                sealed_private=self._ctx.vault.seal(SEAL_PURPOSE, key.key_id, {"pem": key.private_key_pem}),
                created_at=now,
            )
            published = tx.repo.get_signing_key(key.key_id)
        assert published is not None, "just added"
        log.info("federation_key_rotated", federation_id=federation_id, key_id=key.key_id, retired=retired)
        return published

    def verify(self, text: str) -> OnlineVerification:
        check_code_text("text", text)
        with self._ctx.uow.transaction() as tx:
            result = verify_online(tx, self._ctx, text)
        if result.verdict is not CodeVerdict.VALID:
            log.info("member_code_refused", verdict=result.verdict.value, membership_id=result.membership_id)
        return result
