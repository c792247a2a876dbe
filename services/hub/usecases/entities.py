"""The entities family's use cases: search, nearby, the entity 360 (from the projections, and with detail
the owning domains asked live, in parallel, within the detail timeout) and the timeline; and the
visibility rule every family calls (:func:`visible`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ALL_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.hub.domain.entities import (
    DOMAIN_ORDER,
    EntityRow,
    LinkRow,
    NearCommand,
    SearchCommand,
    TimelineCommand,
    bounding_box,
    facts_of,
    haversine_m,
)
from services.hub.repository import HubRepository
from services.hub.repository.entities import TimelineRow
from services.hub.usecases.common import HubContext
from services.platform.errors import DomainError, NotFoundError, Violations, shown
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = [
    "DetailCall",
    "Entity360",
    "EntityDirectory",
    "PartView",
    "Scopes",
    "visible",
]

log = get_logger()
Scopes = Mapping[str, frozenset[str]] | None
# Which domain RPC answers a part's live detail: (stub method name, request) for (kind, id, links), or
# None when the domain has nothing to add for that kind (mapping.entities builds the requests).
DetailCall = tuple[str, Any]
DetailPlanner = Callable[[str, str, str, Sequence[LinkRow]], DetailCall | None]
_DEFAULT_NEAR = 50
_SCORE_MILLI = 1000


def visible(repo: HubRepository, scopes: Scopes, kind: str, id_: str) -> bool:
    """The one visibility rule (see EntitiesSql.visible): every family calls this for a single read."""
    return repo.visible(scopes, kind, id_)


@dataclass(frozen=True, slots=True)
class PartView:
    domain: str
    status: str  # KNOWN, NOTHING_KNOWN, UNAVAILABLE
    facts: tuple[tuple[str, str], ...] = ()
    last_event_at: datetime | None = None
    freshness_seconds: int = 0
    detail: Any = None
    problem: str = ""


@dataclass(frozen=True, slots=True)
class Entity360:
    entity: EntityRow
    links: tuple[LinkRow, ...]
    parts: tuple[PartView, ...]
    open_items: int


@dataclass(slots=True)
class EntityDirectory:
    ctx: HubContext
    planner: DetailPlanner
    _pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        # One call per domain at most per request; a few requests' worth in flight at once.
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="hub-detail")

    # --------------------------------------------------------------------------------------------
    def search(self, command: SearchCommand, scopes: Scopes) -> tuple[list[tuple[EntityRow, float]], str]:
        command.check()
        page = page_of(command.page_size, command.page_token)
        after_raw = decode_cursor(page.token, int, str, str, str)
        after = None
        if after_raw is not None:
            after = (after_raw[0] / _SCORE_MILLI, after_raw[1], after_raw[2], after_raw[3])
        with self.ctx.uow.transaction() as tx:
            found = tx.repo.search(
                command.query,
                kinds=command.kinds,
                town=command.town,
                visible=tx.repo.visible_keys(scopes),
                after=after,
                limit=page.size + 1,
            )
        return paginate(
            found, page, lambda hit: (round(hit[1] * _SCORE_MILLI), hit[0].name, hit[0].kind, hit[0].id)
        )

    def near(self, command: NearCommand, scopes: Scopes) -> list[tuple[EntityRow, float]]:
        command.check()
        box = bounding_box(command.latitude, command.longitude, command.radius_m)
        with self.ctx.uow.transaction() as tx:
            rows = tx.repo.within_box(box, kinds=command.kinds, visible=tx.repo.visible_keys(scopes))
        found = []
        for row in rows:
            assert row.latitude is not None, "filtered in SQL"
            assert row.longitude is not None, "filtered in SQL"
            distance = haversine_m(command.latitude, command.longitude, row.latitude, row.longitude)
            if distance <= command.radius_m:
                found.append((row, distance))
        found.sort(key=lambda hit: (hit[1], hit[0].kind, hit[0].id))
        return found[: command.limit or _DEFAULT_NEAR]

    def timeline(self, command: TimelineCommand, scopes: Scopes) -> tuple[list[TimelineRow], str]:
        command.check()
        page = page_of(command.page_size, command.page_token)
        after = decode_cursor(page.token, datetime, str)
        with self.ctx.uow.transaction() as tx:
            self._require(tx.repo, scopes, command.kind, command.id)
            rows = tx.repo.timeline(
                command.kind,
                command.id,
                domains=command.domains,
                kinds=command.kinds,
                start=command.start,
                end=command.end,
                after=(after[0], after[1]) if after else None,
                limit=page.size + 1,
            )
        return paginate(rows, page, lambda r: (r.at, r.event_id))

    # --------------------------------------------------------------------------------------------
    def entity_360(
        self, kind: str, id_: str, problems: Sequence[tuple[str, str]], *, detail: bool, scopes: Scopes
    ) -> Entity360:
        violations = Violations()
        for path, problem in problems:
            violations.add(path, problem)
        violations.check()
        with self.ctx.uow.read() as repo:
            view = repo.entity_view(kind, id_)
            # An entity outside the caller's view is answered exactly as an unknown one.
            if view is None or not repo.visible(scopes, kind, id_, links=view.links):
                raise NotFoundError(f"no {kind.lower()} {shown(id_)}")
        entity, links, open_items = view.entity, view.links, view.open_items
        stored = {p.domain: p for p in view.parts}
        # The view's time: freshness is how old the last event was when served (not a projection).
        now = self.ctx.clock()
        parts: list[PartView] = []
        for domain in DOMAIN_ORDER:
            part = stored.get(domain)
            if part is None:
                parts.append(PartView(domain, "NOTHING_KNOWN"))
                continue
            parts.append(
                PartView(
                    domain,
                    "KNOWN",
                    tuple(facts_of(kind, domain, part.state)),
                    part.last_event_at,
                    max(0, int((now - part.last_event_at).total_seconds())),
                )
            )
        if detail:
            parts = self._with_detail(kind, id_, links, parts)
        return Entity360(entity, links, tuple(parts), open_items)

    def _require(self, repo: HubRepository, scopes: Scopes, kind: str, id_: str) -> EntityRow:
        entity = repo.entity(kind, id_)
        # An entity outside the caller's view is answered exactly as an unknown one.
        if entity is None or not repo.visible(scopes, kind, id_):
            raise NotFoundError(f"no {kind.lower()} {shown(id_)}")
        return entity

    def _with_detail(
        self, kind: str, id_: str, links: Sequence[LinkRow], parts: list[PartView]
    ) -> list[PartView]:
        """Each domain that knows the entity asked in parallel; the whole fetch bounded by the detail
        timeout; a domain not configured, failing or late leaves its part UNAVAILABLE with the reason."""
        budget = self.ctx.config.detail_timeout.total_seconds()
        started = time.monotonic()
        futures: dict[str, Future[Any]] = {}
        result: dict[str, PartView] = {}
        for part in parts:
            if part.status != "KNOWN":
                continue
            call = self.planner(kind, id_, part.domain, links)
            if call is None:
                continue
            peer = self.ctx.peers.get(part.domain)
            if peer is None:
                result[part.domain] = _unavailable(part, f"{part.domain}: not configured")
                continue
            method = getattr(peer.stub, call[0])
            futures[part.domain] = self._pool.submit(peer.call, method, call[1], timeout_s=budget)
        if futures:
            wait(futures.values(), timeout=budget, return_when=ALL_COMPLETED)
        elapsed = time.monotonic() - started
        for part in parts:
            future = futures.get(part.domain)
            if part.domain in result or future is None:
                continue
            if not future.done():
                future.cancel()
                result[part.domain] = _unavailable(part, f"{part.domain}: no answer within {budget:g} s")
                continue
            error = future.exception()
            if error is None:
                result[part.domain] = PartView(
                    part.domain, part.status, part.facts, part.last_event_at, part.freshness_seconds,
                    detail=future.result(),
                )  # fmt: skip
            else:
                reason = error.message if isinstance(error, DomainError) else type(error).__name__
                result[part.domain] = _unavailable(part, f"{part.domain}: {reason}")
        if result:
            log.info(
                "hub_detail_fetched",
                kind=kind,
                unavailable=sorted(d for d, p in result.items() if p.status == "UNAVAILABLE"),
                elapsed_ms=round(elapsed * 1000),
            )
        return [result.get(p.domain, p) for p in parts]


def _unavailable(part: PartView, problem: str) -> PartView:
    """The part's facts from the projections stay; its status says the live detail is missing."""
    return PartView(
        part.domain, "UNAVAILABLE", part.facts, part.last_event_at, part.freshness_seconds, problem=problem
    )
