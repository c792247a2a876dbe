"""SQL of memberships."""

# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.commerce.domain.access import Visibility
from services.commerce.domain.memberships import EARTH_RADIUS_M, MapQuery
from services.commerce.domain.model import EnterpriseLookup, GeoPoint, Membership, MembershipStatus
from services.platform.repository import SqlPart

__all__ = ["MEMBERSHIP_COLUMNS", "MembershipsSql", "membership_of"]

MEMBERSHIP_COLUMNS = (
    "membership_id, chamber_id, credit_code, enterprise_name, park_id, sector, latitude, longitude, town, "
    "lookup, status, reason, applied_at, decided_at, auto_approved"
)


def membership_of(row: dict[str, Any]) -> Membership:
    location = None
    if row["latitude"] is not None and row["longitude"] is not None:
        location = GeoPoint(row["latitude"], row["longitude"])
    return Membership(
        membership_id=row["membership_id"],
        chamber_id=row["chamber_id"],
        credit_code=row["credit_code"],
        enterprise_name=row["enterprise_name"],
        park_id=row["park_id"],
        sector=row["sector"],
        location=location,
        town=row["town"],
        lookup=EnterpriseLookup(row["lookup"]),
        status=MembershipStatus(row["status"]),
        reason=row["reason"],
        applied_at=row["applied_at"],
        decided_at=row["decided_at"],
        auto_approved=row["auto_approved"],
    )


class MembershipsSql(SqlPart):
    def get_membership(self, membership_id: str, *, for_update: bool = False) -> Membership | None:
        lock = " FOR UPDATE" if for_update else ""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {MEMBERSHIP_COLUMNS} FROM memberships WHERE membership_id = %s{lock}",
                (membership_id,),
            ).fetchone()
        return membership_of(row) if row else None

    def add_membership(self, membership: Membership) -> None:
        location = membership.location
        self._conn.execute(
            f"INSERT INTO memberships ({MEMBERSHIP_COLUMNS})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                membership.membership_id,
                membership.chamber_id,
                membership.credit_code,
                membership.enterprise_name,
                membership.park_id,
                membership.sector,
                location.latitude if location else None,
                location.longitude if location else None,
                membership.town,
                membership.lookup.value,
                membership.status.value,
                membership.reason,
                membership.applied_at,
                membership.decided_at,
                membership.auto_approved,
            ),
        )

    def update_membership_status(self, membership: Membership) -> None:
        """Store a lifecycle step: status, reason and decision time."""
        self._conn.execute(
            "UPDATE memberships SET status = %s, reason = %s, decided_at = %s WHERE membership_id = %s",
            (membership.status.value, membership.reason, membership.decided_at, membership.membership_id),
        )

    def live_membership(self, chamber_id: str, credit_code: str) -> Membership | None:
        """The enterprise's pending, active or suspended membership of the chamber, if any."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {MEMBERSHIP_COLUMNS} FROM memberships WHERE chamber_id = %s AND credit_code = %s"
                " AND status IN ('PENDING', 'ACTIVE', 'SUSPENDED')",
                (chamber_id, credit_code),
            ).fetchone()
        return membership_of(row) if row else None

    def request_seen(self, operation: str, request_id: str) -> bool:
        """Whether the platform's request log already holds this request id (a replay is coming): lets a
        use case skip work it would throw away before claiming the id in its own transaction."""
        row = self._conn.execute(
            "SELECT 1 FROM requests WHERE operation = %s AND request_id = %s", (operation, request_id)
        ).fetchone()
        return row is not None

    def list_memberships(
        self,
        *,
        chamber_id: str,
        credit_code: str,
        statuses: tuple[MembershipStatus, ...],
        visibility: Visibility,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Membership]:
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        if chamber_id:
            where.append("chamber_id = %s")
            params.append(chamber_id)
        if credit_code:
            where.append("credit_code = %s")
            params.append(credit_code)
        if statuses:
            where.append("status = ANY(%s)")
            params.append([s.value for s in statuses])
        if not visibility.everything:
            where.append("(chamber_id = ANY(%s) OR credit_code = ANY(%s))")
            params.extend([sorted(visibility.chambers), sorted(visibility.enterprises)])
        if after is not None:
            where.append("(applied_at, membership_id) > (%s, %s)")
            params.extend(after)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {MEMBERSHIP_COLUMNS} FROM memberships WHERE {' AND '.join(where)}"
                " ORDER BY applied_at, membership_id LIMIT %s",
                (*params, limit),
            ).fetchall()
        return [membership_of(r) for r in rows]

    # --- the map -------------------------------------------------------------------------------------

    def _map_filter(self, query: MapQuery, visibility: Visibility) -> tuple[str, list[Any]]:
        where = ["status = 'ACTIVE'", "latitude IS NOT NULL", "longitude IS NOT NULL"]
        params: list[Any] = []
        if query.box is not None:
            sw, ne = query.box.south_west, query.box.north_east
            where.append("latitude BETWEEN %s AND %s")
            params.extend([sw.latitude, ne.latitude])
            joiner = "OR" if query.box.crosses_antimeridian else "AND"
            where.append(f"(longitude >= %s {joiner} longitude <= %s)")
            params.extend([sw.longitude, ne.longitude])
        if query.radius is not None:
            center, span = query.radius.center, query.radius.latitude_span
            # The latitude band is exact for any circle (a metre of latitude is the same everywhere) and
            # uses the map index; the haversine distance then decides, as domain.memberships computes it.
            where.append("latitude BETWEEN %s AND %s")
            params.extend([center.latitude - span, center.latitude + span])
            where.append(
                "2 * %s * asin(LEAST(1.0, sqrt("
                "power(sin(radians(latitude - %s) / 2), 2)"
                " + cos(radians(%s)) * cos(radians(latitude)) * power(sin(radians(longitude - %s) / 2), 2)"
                "))) <= %s"
            )
            params.extend(
                [EARTH_RADIUS_M, center.latitude, center.latitude, center.longitude, query.radius.meters]
            )
        if query.sector:
            where.append("sector = %s")
            params.append(query.sector)
        if query.chamber_id:
            where.append("chamber_id = %s")
            params.append(query.chamber_id)
        if not visibility.everything:
            where.append("chamber_id = ANY(%s)")
            params.append(sorted(visibility.chambers))
        return " AND ".join(where), params

    def map_members(
        self, query: MapQuery, visibility: Visibility, after: str, limit: int
    ) -> list[Membership]:
        where, params = self._map_filter(query, visibility)
        if after:
            where += " AND membership_id > %s"
            params.append(after)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {MEMBERSHIP_COLUMNS} FROM memberships WHERE {where} ORDER BY membership_id LIMIT %s",
                (*params, limit),
            ).fetchall()
        return [membership_of(r) for r in rows]

    def map_town_counts(self, query: MapQuery, visibility: Visibility) -> list[tuple[str, int]]:
        """Every matching member counted per town, most members first, then by town name."""
        where, params = self._map_filter(query, visibility)
        rows = self._conn.execute(
            f"SELECT town, count(*) FROM memberships WHERE {where} GROUP BY town"
            ' ORDER BY count(*) DESC, town COLLATE "C"',
            params,
        ).fetchall()
        return [(str(r[0]), int(r[1])) for r in rows]
