"""SQL of the sign-in family: the one-time login links redeemed (``login_links_redeemed``)."""

from __future__ import annotations

from datetime import datetime

from services.platform.repository import SqlPart

__all__ = ["SignInSql"]

# Two replicas redeeming the same link at once: the second INSERT waits for the first to commit, then
# inserts nothing, so exactly one of them is told the link was new.
_REDEEM = """
INSERT INTO login_links_redeemed (token_id, subject, redeemed_at, expires_at)
VALUES (%s, %s, %s, %s)
ON CONFLICT (token_id) DO NOTHING
RETURNING token_id
"""


class SignInSql(SqlPart):
    def redeem_login_link(self, token_id: str, subject: str, now: datetime, expires_at: datetime) -> bool:
        """Record the first use of ``token_id``; False when it was recorded before. Ids of tokens expired
        by ``now`` are forgotten first (such a token is refused before it gets here)."""
        self._conn.execute("DELETE FROM login_links_redeemed WHERE expires_at < %s", (now,))
        row = self._conn.execute(_REDEEM, (token_id, subject, now, expires_at)).fetchone()
        return row is not None
