"""One code over real gRPC, PostgreSQL and Kafka: member codes valid, expired, suspended, revoked, forged
and of an unknown key, each verified offline (the pure verifier with GetVerificationKeys' PEMs) and online
(VerifyMemberCode); key rotation; who may issue."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from cityhub.commerce.v1 import commerce_pb2, commerce_pb2_grpc, events_pb2

from services.commerce.adapters.signing import new_signing_key
from services.commerce.bootstrap import build
from services.commerce.domain.codes import CodeClaims, CodeVerdict, PublishedKey, sign_code, verify
from services.platform.protoconv import datetime_of
from services.platform.security import SecuritySettings
from tests.integration.commerce.commerce_support import Commerce, rid
from tests.support import wait_until

PUBLIC = ("public",)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def chamber(commerce: Commerce) -> tuple[commerce_pb2.Federation, commerce_pb2.Chamber]:
    return commerce.federation_and_chamber()


def join(commerce: Commerce, chamber: commerce_pb2.Chamber) -> commerce_pb2.Membership:
    """A known enterprise joins (auto-approved to ACTIVE)."""
    code = commerce.industry.onboard()
    membership: commerce_pb2.Membership = commerce.call(
        "ApplyForMembership",
        commerce_pb2.ApplyForMembershipRequest(
            request_id=rid(), chamber_id=chamber.chamber_id, credit_code=code
        ),
    ).membership
    assert membership.status == commerce_pb2.MEMBERSHIP_STATUS_ACTIVE
    return membership


def as_member(membership: commerce_pb2.Membership) -> dict[str, tuple[str, ...]]:
    return {"roles": ("enterprise_user",), "scopes": (f"enterprise:{membership.credit_code}",)}


def issue(commerce: Commerce, membership: commerce_pb2.Membership) -> commerce_pb2.MemberCode:
    found: commerce_pb2.MemberCode = commerce.call(
        "IssueMemberCode",
        commerce_pb2.IssueMemberCodeRequest(membership_id=membership.membership_id),
        **as_member(membership),
    ).code
    return found


def published_keys(commerce: Commerce) -> dict[str, PublishedKey]:
    """What an office downloads for offline verification (the public role may)."""
    keys = commerce.call("GetVerificationKeys", commerce_pb2.GetVerificationKeysRequest(), roles=PUBLIC).keys
    return {
        k.key_id: PublishedKey(
            k.key_id,
            k.federation_id,
            k.algorithm,
            k.public_key_pem,
            datetime_of(k, "created_at") or datetime.now(UTC),
            datetime_of(k, "retires_at"),
        )
        for k in keys
    }


def offline(commerce: Commerce, text: str) -> CodeVerdict:
    return verify(
        text, published_keys(commerce), datetime.now(UTC), commerce.settings.commerce_code_leeway_s
    ).verdict


def online(commerce: Commerce, text: str) -> commerce_pb2.VerifyMemberCodeResponse:
    found: commerce_pb2.VerifyMemberCodeResponse = commerce.call(
        "VerifyMemberCode", commerce_pb2.VerifyMemberCodeRequest(text=text), roles=PUBLIC
    )
    return found


def verdict_of(response: commerce_pb2.VerifyMemberCodeResponse) -> str:
    return commerce_pb2.CodeVerdict.Name(response.verdict)


def flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def refusal(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    return raised.value


# --- valid ------------------------------------------------------------------------------------------


def test_a_fresh_code_verifies_offline_and_online_and_names_its_member(
    commerce: Commerce, chamber: tuple[commerce_pb2.Federation, commerce_pb2.Chamber]
) -> None:
    federation, room = chamber
    membership = join(commerce, room)
    code = issue(commerce, membership)

    keys = published_keys(commerce)
    assert code.key_id in keys
    assert keys[code.key_id].federation_id == federation.federation_id
    assert keys[code.key_id].algorithm == "ES256"
    assert keys[code.key_id].retires_at is None
    assert code.key_id == federation.current_key_id
    window = datetime_of(code, "expires_at") - datetime_of(code, "not_before")  # type: ignore[operator]
    assert window == timedelta(seconds=300)
    assert code.qr_png.startswith(PNG_SIGNATURE)
    assert len(code.qr_png) > 200

    result = verify(code.text, keys, datetime.now(UTC), 30)
    assert result.verdict is CodeVerdict.VALID
    assert result.claims is not None
    assert (result.claims.membership_id, result.claims.chamber_id, result.claims.credit_code) == (
        membership.membership_id,
        room.chamber_id,
        membership.credit_code,
    )

    answer = online(commerce, code.text)
    assert verdict_of(answer) == "CODE_VERDICT_VALID"
    assert answer.membership_id == membership.membership_id
    assert answer.chamber_id == room.chamber_id
    assert answer.credit_code == membership.credit_code
    assert answer.enterprise_name == membership.enterprise_name


def test_issuing_publishes_member_code_issued_without_the_code(
    commerce: Commerce, chamber: tuple[commerce_pb2.Federation, commerce_pb2.Chamber]
) -> None:
    membership = join(commerce, chamber[1])
    code = issue(commerce, membership)

    def issued() -> list[events_pb2.MemberCodeIssued] | None:
        found = [
            m
            for t, m in commerce.events({membership.membership_id})
            if isinstance(m, events_pb2.MemberCodeIssued)
        ]
        return found or None

    (event,) = wait_until(issued, timeout_s=15, what="MemberCodeIssued")
    assert event.membership_id == membership.membership_id
    assert event.chamber_id == chamber[1].chamber_id
    assert event.credit_code == membership.credit_code
    assert event.key_id == code.key_id
    assert event.expires_at == code.expires_at
    serialized = event.SerializeToString()
    signature = code.text.rsplit(".", 1)[1]
    assert code.text.encode() not in serialized
    assert signature.encode() not in serialized


# --- expired ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def behind(commerce: Commerce, commerce_security: SecuritySettings) -> Iterator[Commerce]:
    """A second replica on the same schema whose clock runs an hour behind: the codes it issues expired
    long ago for everyone else, without waiting out a validity window."""
    runtime = build(
        commerce.settings,
        configure_logs=False,
        security=commerce_security,
        clock=lambda: datetime.now(UTC) - timedelta(hours=1),
    )
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    try:
        yield Commerce(
            runtime,
            commerce.settings,
            commerce_pb2_grpc.CommerceServiceStub(channel),
            commerce.issuer,
            commerce.kafka_bootstrap,
            commerce.database_url,
            commerce.industry,
        )
    finally:
        channel.close()
        runtime.close()


def test_an_expired_code_is_expired_offline_and_online(
    commerce: Commerce, behind: Commerce, chamber: tuple[commerce_pb2.Federation, commerce_pb2.Chamber]
) -> None:
    membership = join(commerce, chamber[1])
    code = issue(behind, membership)
    assert datetime_of(code, "expires_at") < datetime.now(UTC) - timedelta(minutes=50)  # type: ignore[operator]

    assert offline(commerce, code.text) is CodeVerdict.EXPIRED
    answer = online(commerce, code.text)
    assert verdict_of(answer) == "CODE_VERDICT_EXPIRED"
    # The signature verified, so the answer still says whose screenshot it is.
    assert answer.membership_id == membership.membership_id
    assert answer.credit_code == membership.credit_code
    # A fresh code for the same member is valid: clients refresh by issuing again.
    assert verdict_of(online(commerce, issue(commerce, membership).text)) == "CODE_VERDICT_VALID"


# --- suspended and revoked --------------------------------------------------------------------------


def test_suspending_fails_the_code_online_at_once_while_offline_it_still_verifies(
    commerce: Commerce, chamber: tuple[commerce_pb2.Federation, commerce_pb2.Chamber]
) -> None:
    membership = join(commerce, chamber[1])
    code = issue(commerce, membership)
    commerce.call(
        "SuspendMembership",
        commerce_pb2.SuspendMembershipRequest(membership_id=membership.membership_id, reason="dues unpaid"),
    )

    answer = online(commerce, code.text)
    assert verdict_of(answer) == "CODE_VERDICT_SUSPENDED"
    assert answer.membership_id == membership.membership_id
    assert offline(commerce, code.text) is CodeVerdict.VALID
    # A suspended member gets no new code.
    error = refusal(lambda: issue(commerce, membership))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SUSPENDED" in (error.details() or "")

    commerce.call(
        "ReinstateMembership", commerce_pb2.ReinstateMembershipRequest(membership_id=membership.membership_id)
    )
    assert verdict_of(online(commerce, code.text)) == "CODE_VERDICT_VALID"


def test_an_ended_membership_revokes_its_code_online(
    commerce: Commerce, chamber: tuple[commerce_pb2.Federation, commerce_pb2.Chamber]
) -> None:
    membership = join(commerce, chamber[1])
    code = issue(commerce, membership)
    commerce.call(
        "EndMembership",
        commerce_pb2.EndMembershipRequest(membership_id=membership.membership_id, reason="left"),
    )

    answer = online(commerce, code.text)
    assert verdict_of(answer) == "CODE_VERDICT_REVOKED"
    assert answer.membership_id == membership.membership_id
    assert offline(commerce, code.text) is CodeVerdict.VALID


# --- forged and unknown key -------------------------------------------------------------------------


def test_one_character_flipped_is_forged_offline_and_online(
    commerce: Commerce, chamber: tuple[commerce_pb2.Federation, commerce_pb2.Chamber]
) -> None:
    membership = join(commerce, chamber[1])
    text = issue(commerce, membership).text
    in_signature = flip(text, text.rindex(".") + 10)
    in_payload = flip(text, (text.index(".") + text.rindex(".")) // 2)
    for forged in (in_signature, in_payload):
        assert offline(commerce, forged) is CodeVerdict.FORGED
        answer = online(commerce, forged)
        assert verdict_of(answer) == "CODE_VERDICT_FORGED"
        # Nothing of a forged code is repeated back as if it were true.
        assert (answer.membership_id, answer.credit_code, answer.enterprise_name) == ("", "", "")


@pytest.mark.parametrize("text", ["hello", "a.b.c", "码.码.码", "eyJhbGciOiJub25lIn0.e30.", "x" * 499])
def test_text_that_is_no_code_is_forged_online(commerce: Commerce, text: str) -> None:
    assert verdict_of(online(commerce, text)) == "CODE_VERDICT_FORGED"
    assert offline(commerce, text) is CodeVerdict.FORGED


@pytest.mark.parametrize("text", ["", "x" * 5000])
def test_empty_or_overlong_text_is_invalid_argument_naming_text(commerce: Commerce, text: str) -> None:
    error = refusal(lambda: online(commerce, text))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "text" in (error.details() or "")


def test_a_code_signed_with_a_key_never_published_is_unknown_key(
    commerce: Commerce, chamber: tuple[commerce_pb2.Federation, commerce_pb2.Chamber]
) -> None:
    membership = join(commerce, chamber[1])
    stranger = new_signing_key()
    now = datetime.now(UTC).replace(microsecond=0)
    claims = CodeClaims(
        chamber[1].chamber_id,
        membership.membership_id,
        membership.credit_code,
        now,
        now + timedelta(minutes=5),
    )
    text = sign_code(claims, f"k_{secrets.token_hex(8)}", stranger.private_key_pem)

    assert offline(commerce, text) is CodeVerdict.UNKNOWN_KEY
    answer = online(commerce, text)
    assert verdict_of(answer) == "CODE_VERDICT_UNKNOWN_KEY"
    assert answer.membership_id == ""
    # The same stranger's signature under the federation's published key id is a forgery.
    impostor = sign_code(claims, chamber[0].current_key_id, stranger.private_key_pem)
    assert offline(commerce, impostor) is CodeVerdict.FORGED
    assert verdict_of(online(commerce, impostor)) == "CODE_VERDICT_FORGED"


# --- rotation ---------------------------------------------------------------------------------------


def test_after_a_rotation_old_codes_verify_until_the_old_key_retires_and_new_codes_use_the_new_key(
    commerce: Commerce,
) -> None:
    federation, room = commerce.federation_and_chamber()
    membership = join(commerce, room)
    old = issue(commerce, membership)
    assert old.key_id == federation.current_key_id

    before = datetime.now(UTC)
    key = commerce.call(
        "RotateFederationKey", commerce_pb2.RotateFederationKeyRequest(federation_id=federation.federation_id)
    ).key
    assert key.key_id != old.key_id
    assert key.federation_id == federation.federation_id
    assert not key.HasField("retires_at")

    keys = published_keys(commerce)
    retired = keys[old.key_id]
    assert retired.retires_at is not None
    retire_after = timedelta(seconds=commerce.settings.commerce_key_retire_after_s)
    assert (
        before + retire_after - timedelta(seconds=5) <= retired.retires_at <= datetime.now(UTC) + retire_after
    )
    assert keys[key.key_id].retires_at is None

    assert offline(commerce, old.text) is CodeVerdict.VALID
    assert verdict_of(online(commerce, old.text)) == "CODE_VERDICT_VALID"
    new = issue(commerce, membership)
    assert new.key_id == key.key_id
    assert offline(commerce, new.text) is CodeVerdict.VALID
    assert verdict_of(online(commerce, new.text)) == "CODE_VERDICT_VALID"


def test_concurrent_rotations_leave_exactly_one_current_key(commerce: Commerce) -> None:
    federation, _ = commerce.federation_and_chamber()
    request = commerce_pb2.RotateFederationKeyRequest(federation_id=federation.federation_id)
    with ThreadPoolExecutor(max_workers=4) as pool:
        rotated = list(pool.map(lambda _: commerce.call("RotateFederationKey", request).key.key_id, range(4)))

    mine = [k for k in published_keys(commerce).values() if k.federation_id == federation.federation_id]
    assert len(mine) == 5
    assert len(set(rotated)) == 4
    current = [k for k in mine if k.retires_at is None]
    assert len(current) == 1
    assert current[0].key_id in rotated


def test_rotation_is_for_federation_staff_and_names_a_federation(commerce: Commerce) -> None:
    request = commerce_pb2.RotateFederationKeyRequest(federation_id="fed_nowhere")
    assert refusal(lambda: commerce.call("RotateFederationKey", request)).code() == grpc.StatusCode.NOT_FOUND
    empty = refusal(lambda: commerce.call("RotateFederationKey", commerce_pb2.RotateFederationKeyRequest()))
    assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "federation_id" in (empty.details() or "")
    denied = refusal(
        lambda: commerce.call("RotateFederationKey", request, roles=("chamber_staff",), scopes=("chamber:x",))
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED


# --- who may issue ----------------------------------------------------------------------------------


def test_only_the_member_itself_or_its_chamber_issues_its_code(
    commerce: Commerce, chamber: tuple[commerce_pb2.Federation, commerce_pb2.Chamber]
) -> None:
    membership = join(commerce, chamber[1])
    other = join(commerce, chamber[1])
    request = commerce_pb2.IssueMemberCodeRequest(membership_id=membership.membership_id)

    staff = commerce.call(
        "IssueMemberCode", request, roles=("chamber_staff",), scopes=(f"chamber:{chamber[1].chamber_id}",)
    )
    assert verdict_of(online(commerce, staff.code.text)) == "CODE_VERDICT_VALID"
    for roles, scopes in (
        (("enterprise_user",), (f"enterprise:{other.credit_code}",)),
        (("chamber_staff",), ("chamber:ch_elsewhere",)),
    ):
        error = refusal(
            lambda r=roles, s=scopes: commerce.call("IssueMemberCode", request, roles=r, scopes=s)
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND
    public = refusal(lambda: commerce.call("IssueMemberCode", request, roles=PUBLIC))
    assert public.code() == grpc.StatusCode.PERMISSION_DENIED
    unknown = commerce_pb2.IssueMemberCodeRequest(membership_id="mem_nowhere")
    assert refusal(lambda: commerce.call("IssueMemberCode", unknown)).code() == grpc.StatusCode.NOT_FOUND
