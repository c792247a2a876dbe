"""SQL of the trail family: the signed steps of each application and the region keys they verify with."""

# The column list is a constant of this module, never input.
# ruff: noqa: S608

from __future__ import annotations

from typing import Any, cast

from psycopg.rows import dict_row

from services.govservice.domain.model import ApplicationStatus
from services.govservice.domain.trail import RegionPublicKey, StepRecord, TrailSubject
from services.platform.repository import SqlPart

__all__ = ["TrailSql"]

_STEP_COLUMNS = (
    "application_no, sequence, status, region, actor, at, note, previous_hash, hash, signature, key_id"
)
_KNOWN_STATUS = frozenset(s.value for s in ApplicationStatus)


def _step(row: dict[str, Any]) -> StepRecord:
    text = str(row["status"])
    # A status text that names no status can only be a tampered row: it is kept as it is (and fails
    # verification) instead of making the whole trail unreadable.
    status = ApplicationStatus(text) if text in _KNOWN_STATUS else cast(ApplicationStatus, text)
    return StepRecord(
        application_no=str(row["application_no"]),
        sequence=int(row["sequence"]),
        status=status,
        region=str(row["region"]),
        actor=str(row["actor"]),
        at=row["at"],
        note=str(row["note"]),
        previous_hash=str(row["previous_hash"]),
        hash=str(row["hash"]),
        signature=str(row["signature"]),
        key_id=str(row["key_id"]),
    )


class TrailSql(SqlPart):
    def list_steps(self, application_no: str) -> list[StepRecord]:
        """The application's steps in sequence order."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_STEP_COLUMNS} FROM steps WHERE application_no = %s ORDER BY sequence",
                (application_no,),
            ).fetchall()
        return [_step(row) for row in rows]

    def last_step(self, application_no: str) -> StepRecord | None:
        """The application's last step, with the application row locked FOR UPDATE first, so concurrent
        steps of one application take turns and cannot fork the chain (the lock is taken on the
        application rather than on the last step: under READ COMMITTED a waiter on the last step would
        wake up still seeing the old last step). None before the filing step."""
        self._conn.execute(
            "SELECT 1 FROM applications WHERE application_no = %s FOR UPDATE", (application_no,)
        )
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_STEP_COLUMNS} FROM steps WHERE application_no = %s"
                " ORDER BY sequence DESC LIMIT 1 FOR UPDATE",
                (application_no,),
            ).fetchone()
        return _step(row) if row else None

    def add_step(self, step: StepRecord) -> None:
        self._conn.execute(
            f"INSERT INTO steps ({_STEP_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                step.application_no,
                step.sequence,
                str(step.status),
                step.region,
                step.actor,
                step.at,
                step.note,
                step.previous_hash,
                step.hash,
                step.signature,
                step.key_id,
            ),
        )

    def public_keys(self) -> dict[str, RegionPublicKey]:
        """Every key ever published (current and retired): key id -> (region, public PEM)."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute("SELECT key_id, division_code, public_key_pem FROM region_keys").fetchall()
        return {
            str(row["key_id"]): RegionPublicKey(str(row["division_code"]), str(row["public_key_pem"]))
            for row in rows
        }

    def trail_subject(self, application_no: str) -> TrailSubject | None:
        """The application's regions and status (None: no such application)."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT filing_region, handling_region, status FROM applications WHERE application_no = %s",
                (application_no,),
            ).fetchone()
        if row is None:
            return None
        return TrailSubject(str(row["filing_region"]), str(row["handling_region"]), str(row["status"]))
