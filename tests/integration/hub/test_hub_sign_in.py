"""RedeemLoginLink on the real hub and PostgreSQL: a link's token is accepted once — also when two web
replicas present it at the same moment — for whichever role it was made for, and the ids of expired
tokens are forgotten, so the table stays as small as the links alive."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import psycopg
import pytest
from cityhub.hub.v1 import hub_pb2

from tests.integration.hub.hub_support import Hub


def _redeem(hub: Hub, token: str) -> hub_pb2.RedeemLoginLinkResponse:
    metadata = (("authorization", f"Bearer {token}"),)
    reply: hub_pb2.RedeemLoginLinkResponse = hub.stub.RedeemLoginLink(
        hub_pb2.RedeemLoginLinkRequest(), metadata=metadata, timeout=30
    )
    return reply


def _code(hub: Hub, token: str) -> grpc.StatusCode:
    try:
        _redeem(hub, token)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


def _rows(hub: Hub) -> dict[str, str]:
    with psycopg.connect(hub.database_url, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT token_id, subject FROM "{hub.settings.service_name}".login_links_redeemed'
        ).fetchall()
    return {str(token_id): str(subject) for token_id, subject in rows}


def test_a_link_is_redeemed_once_and_then_refused(hub: Hub) -> None:
    token = hub.issuer.issue(sub="duty-room-person", roles=("duty_room",), scopes=("site:S-1",), ttl_s=600)
    reply = _redeem(hub, token)
    assert reply.redeemed_at.seconds > 0
    assert "duty-room-person" in _rows(hub).values()

    with pytest.raises(grpc.RpcError) as again:
        _redeem(hub, token)
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already been used" in (again.value.details() or "")

    # Another link for the same person is another token: accepted.
    assert _code(hub, hub.issuer.issue(sub="duty-room-person", roles=("duty_room",), ttl_s=600)) == (
        grpc.StatusCode.OK
    )


def test_every_role_a_link_can_be_made_for_may_redeem_it(hub: Hub) -> None:
    for role in ("public", "auditor", "district_operator"):
        assert _code(hub, hub.issuer.issue(sub=f"{role}-person", roles=(role,), ttl_s=600)) == (
            grpc.StatusCode.OK
        ), role


def test_two_replicas_presenting_the_same_link_at_once_sign_in_one_person(hub: Hub) -> None:
    for _ in range(3):
        token = hub.issuer.issue(sub="racer", roles=("district_operator",), ttl_s=600)
        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(_code, [hub] * 8, [token] * 8))
        assert codes.count(grpc.StatusCode.OK) == 1, codes
        assert codes.count(grpc.StatusCode.FAILED_PRECONDITION) == 7, codes


def test_the_ids_of_expired_tokens_are_forgotten(hub: Hub) -> None:
    schema = hub.settings.service_name
    with psycopg.connect(hub.database_url, autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{schema}".login_links_redeemed (token_id, subject, redeemed_at, expires_at)'
            " VALUES ('expired-jti', 'gone', now() - interval '9 hours', now() - interval '1 hour')"
        )
    assert "expired-jti" in _rows(hub)
    _redeem(
        hub, hub.issuer.issue(sub="next-person", roles=("gov_clerk",), scopes=("region:522632",), ttl_s=60)
    )
    rows = _rows(hub)
    assert "expired-jti" not in rows
    assert "next-person" in rows.values()
