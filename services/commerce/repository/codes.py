"""SQL of the code-signing keys: one current key per federation, retired keys kept with ``retires_at`` (so
codes signed just before a rotation verify until then, and a key id is never reused)."""

# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.commerce.domain.codes import PublishedKey, SealedKey
from services.platform.repository import SqlPart

__all__ = ["CodesSql"]

_KEY_COLUMNS = "key_id, federation_id, algorithm, public_key_pem, created_at, retires_at"


def _key_of(row: dict[str, Any]) -> PublishedKey:
    return PublishedKey(
        key_id=row["key_id"],
        federation_id=row["federation_id"],
        algorithm=row["algorithm"],
        public_key_pem=row["public_key_pem"],
        created_at=row["created_at"],
        retires_at=row["retires_at"],
    )


class CodesSql(SqlPart):
    def add_signing_key(
        self,
        *,
        key_id: str,
        federation_id: str,
        algorithm: str,
        public_key_pem: str,
        sealed_private: bytes,
        created_at: datetime,
    ) -> None:
        """Add a federation's new current key (the caller retires the previous one first)."""
        self._conn.execute(
            "INSERT INTO signing_keys (key_id, federation_id, algorithm, public_key_pem, sealed_private,"
            " is_current, created_at) VALUES (%s, %s, %s, %s, %s, TRUE, %s)",
            (key_id, federation_id, algorithm, public_key_pem, sealed_private, created_at),
        )

    def current_key_id(self, federation_id: str) -> str:
        row = self._conn.execute(
            "SELECT key_id FROM signing_keys WHERE federation_id = %s AND is_current", (federation_id,)
        ).fetchone()
        return str(row[0]) if row else ""

    def current_signing_key(self, federation_id: str) -> SealedKey | None:
        """The federation's current key with its sealed private half (None before its first key)."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_KEY_COLUMNS}, sealed_private FROM signing_keys"
                " WHERE federation_id = %s AND is_current",
                (federation_id,),
            ).fetchone()
        return SealedKey(_key_of(row), bytes(row["sealed_private"])) if row else None

    def get_signing_key(self, key_id: str) -> PublishedKey | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_KEY_COLUMNS} FROM signing_keys WHERE key_id = %s", (key_id,)
            ).fetchone()
        return _key_of(row) if row else None

    def list_signing_keys(self) -> list[PublishedKey]:
        """Every key ever published, by federation and age (a handful per federation)."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_KEY_COLUMNS} FROM signing_keys ORDER BY federation_id, created_at, key_id"
            ).fetchall()
        return [_key_of(row) for row in rows]

    def lock_federation_keys(self, federation_id: str) -> bool:
        """Serialise key rotations of one federation (False when it does not exist).

        The federation's row is locked rather than its current key's: a rotation waiting on the key row
        would, once the first commits, find that row no longer current and see no current key at all."""
        row = self._conn.execute(
            "SELECT 1 FROM federations WHERE federation_id = %s FOR UPDATE", (federation_id,)
        ).fetchone()
        return row is not None

    def retire_current_key(self, federation_id: str, retires_at: datetime) -> str:
        """Make the federation's current key a retiring one; its id ("" when it had none)."""
        row = self._conn.execute(
            "UPDATE signing_keys SET is_current = FALSE, retires_at = %s"
            " WHERE federation_id = %s AND is_current RETURNING key_id",
            (retires_at, federation_id),
        ).fetchone()
        return str(row[0]) if row else ""
