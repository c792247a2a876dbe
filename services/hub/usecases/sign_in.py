"""RedeemLoginLink: the web's one-time login links, accepted once across every web replica and restart.

The web verifies a link's token itself (signature, issuer, audience, age) and then asks the hub, with that
token as the call's bearer, to record its id; the hub's database is the one place all replicas share."""

from __future__ import annotations

from datetime import UTC, datetime

from services.hub.usecases.common import HubContext
from services.platform.errors import FailedPreconditionError, InvalidArgumentError
from services.platform.logs import get_logger
from services.platform.security.tokens import Caller

__all__ = ["LoginLinks"]

log = get_logger()


class LoginLinks:
    def __init__(self, ctx: HubContext) -> None:
        self._uow = ctx.uow
        self._clock = ctx.clock

    def redeem(self, caller: Caller) -> datetime:
        """When the caller's token was redeemed as a link (now); FailedPrecondition if it was before."""
        if not caller.token_id:
            raise InvalidArgumentError.of(
                "authorization", "the bearer token carries no id (jti), so it cannot be used once only"
            )
        now = self._clock()
        expires_at = datetime.fromtimestamp(caller.expires_at, UTC)
        with self._uow.transaction() as tx:
            first = tx.repo.redeem_login_link(caller.token_id, caller.sub, now, expires_at)
        if not first:
            log.warning("login_link_reused", sub=caller.sub, token_id=caller.token_id)
            raise FailedPreconditionError("this login link has already been used")
        log.info("login_link_redeemed", sub=caller.sub, roles=sorted(caller.roles))
        return now
