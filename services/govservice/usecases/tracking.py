"""Tracking an application by its number and the applicant's identity suffix, with repeated wrong tries
slowed down per caller (domain/tracking.py)."""

from __future__ import annotations

import hmac

from services.govservice.domain.applications import suffix_material
from services.govservice.domain.tracking import (
    NOT_TRACKED,
    TrackApplication,
    TrackedApplication,
    TrackLimiter,
)
from services.govservice.usecases.common import GovServiceContext
from services.platform.errors import NotFoundError
from services.platform.logs import get_logger

__all__ = ["ApplicationTracking"]

log = get_logger()
# Compared against when the number is unknown, so a missing row costs the same comparison as a wrong one.
_NO_DIGEST = "0" * 64


class ApplicationTracking:
    def __init__(self, ctx: GovServiceContext, limiter: TrackLimiter | None = None) -> None:
        self._ctx = ctx
        config = ctx.config
        self._limiter = limiter or TrackLimiter(
            free_failures=config.track_free_failures,
            window_s=config.track_window_s,
            max_wait_s=config.track_max_wait_s,
        )

    @property
    def limiter(self) -> TrackLimiter:
        return self._limiter

    def track(self, query: TrackApplication, caller: str) -> TrackedApplication:
        """The application when ``query`` pairs its number with the applicant's suffix. A wrong pairing and
        an unknown number raise the same NotFoundError after the same work (the digest is computed and
        compared, the steps read, either way); a caller past its free wrong tries is refused first
        (ResourceExhaustedError), without the pairing being looked at."""
        query.check()
        self._limiter.begin(caller)
        # Counted as wrong only once the pairing was compared: an outage in between holds nothing against
        # the caller.
        wrong = False
        try:
            digest = self._ctx.vault.mac(suffix_material(query.application_no, query.id_suffix))
            with self._ctx.uow.transaction() as tx:
                found = tx.repo.tracked_application(query.application_no)
            stored = found[1] if found is not None else _NO_DIGEST
            wrong = not hmac.compare_digest(digest.encode(), stored.encode()) or found is None
        finally:
            self._limiter.finish(caller, wrong=wrong)
        if wrong or found is None:
            # Neither the number nor the caller is logged: the log must not become a list of guesses.
            log.info("govservice_track_refused")
            raise NotFoundError(NOT_TRACKED)
        return found[0]
