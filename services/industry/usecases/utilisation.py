"""Utilisation figures (availability, performance, quality, OEE) of a device, workshop, enterprise or
park, per period and bucket, the change between two periods, and the device alerts list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.industry.domain import commands
from services.industry.domain.access import Visibility
from services.industry.domain.model import Alert, Granularity, Subject
from services.industry.domain.records import Bucket
from services.industry.domain.utilisation import Change, Totals, compare
from services.industry.usecases.common import IndustryConfig, IndustryStore, hide_unless_visible
from services.platform.errors import NotFoundError
from services.platform.paging import decode_cursor, page_of, paginate
from services.platform.uow import Transaction, UnitOfWork

__all__ = ["UtilisationQueries"]

Figures = tuple[datetime, datetime, Totals]


def _whole_hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    floor = start.replace(minute=0, second=0, microsecond=0)
    ceiling = end.replace(minute=0, second=0, microsecond=0)
    if ceiling < end:
        ceiling += timedelta(hours=1)
    return floor, ceiling


def _sum(buckets: list[Bucket]) -> Totals:
    total = Totals()
    for bucket in buckets:
        total = total + bucket.totals
    return total


class UtilisationQueries:
    def __init__(self, uow: UnitOfWork[IndustryStore], config: IndustryConfig) -> None:
        self._uow = uow
        self._zone = config.zone

    @staticmethod
    def _check_subject(tx: Transaction[IndustryStore], subject: Subject, visibility: Visibility) -> None:
        """The subject must exist; one outside the caller's scope answers as if it did not (NOT_FOUND)."""
        repo = tx.repo
        if subject.device_id:
            device = repo.get_device(subject.device_id)
            if device is None:
                raise NotFoundError(f"no device {subject.device_id}")
            hide_unless_visible(visibility, device.credit_code, device.park_id, f"device {subject.device_id}")
        elif subject.credit_code:
            enterprise = repo.get_enterprise(subject.credit_code)
            if enterprise is None:
                raise NotFoundError(f"no enterprise {subject.credit_code}")
            hide_unless_visible(
                visibility, enterprise.credit_code, enterprise.park_id, f"enterprise {subject.credit_code}"
            )
        elif subject.park_id and (
            repo.get_park(subject.park_id) is None or not visibility.sees_park(subject.park_id)
        ):
            raise NotFoundError(f"no park {subject.park_id}")

    def get(self, query: commands.UtilisationQuery, visibility: Visibility) -> tuple[Totals, list[Figures]]:
        query.check()
        zone = ZoneInfo(query.time_zone) if query.time_zone else self._zone
        first, last = _whole_hours(*commands.bounds(query.period))
        with self._uow.transaction() as tx:
            self._check_subject(tx, query.subject, visibility)
            rows = tx.repo.utilisation(
                query.subject, first, last, granularity=query.granularity, time_zone=zone.key
            )
        total = Totals()
        buckets: list[Figures] = []
        for row in rows:
            total = total + row.totals
            if row.start is not None:
                if query.granularity == Granularity.HOUR:
                    bucket_end = row.start + timedelta(hours=1)
                else:
                    local = row.start.astimezone(zone)
                    bucket_end = datetime.combine(local.date() + timedelta(days=1), local.time(), zone)
                buckets.append((row.start, bucket_end.astimezone(UTC), row.totals))
        return total, buckets

    def compare(
        self, query: commands.CompareUtilisation, visibility: Visibility
    ) -> tuple[Totals, Totals, Change]:
        query.check()
        zone = self._zone.key
        with self._uow.transaction() as tx:
            self._check_subject(tx, query.subject, visibility)
            before = _sum(
                tx.repo.utilisation(
                    query.subject,
                    *_whole_hours(*commands.bounds(query.base_period)),
                    granularity=None,
                    time_zone=zone,
                )
            )
            after = _sum(
                tx.repo.utilisation(
                    query.subject,
                    *_whole_hours(*commands.bounds(query.compare_period)),
                    granularity=None,
                    time_zone=zone,
                )
            )
        return before, after, compare(before, after)

    def alerts(
        self,
        visibility: Visibility,
        *,
        credit_code: str,
        park_id: str,
        device_id: str,
        open_only: bool,
        page_size: int,
        page_token: str,
    ) -> tuple[list[Alert], str]:
        page = page_of(page_size, page_token)
        before = decode_cursor(page.token, datetime, str)
        with self._uow.transaction() as tx:
            rows = tx.repo.list_alerts(
                visibility,
                credit_code=credit_code,
                park_id=park_id,
                device_id=device_id,
                open_only=open_only,
                before=(before[0], before[1]) if before else None,
                limit=page.size + 1,
            )
        return paginate(rows, page, lambda a: (a.raised_at, a.alert_id))
