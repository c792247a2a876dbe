"""The entities projection: each domain event resolved to the entities it concerns (domain.entities.resolve)
— entities created or filled in, links made, each concerned entity's part of that domain updated and a
timeline row added. Uses only the event (payload, type, id, ce_time) and rows earlier events made."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.hub.domain.entities import DomainEvent, EntityKind, Resolution, apply_part
from services.hub.repository.store import ProjectionStore

__all__ = ["project_event"]


def project_event(repo: ProjectionStore, event: DomainEvent | None, found: Resolution | None) -> None:
    """``event`` as the rules read it and what it resolved to (None: no domain's event)."""
    if event is None or found is None or found.empty:
        return
    for mention in found.mentions:
        repo.upsert_mention(mention, event.domain, event.at)
    for change in found.links:
        repo.change_link(change, event.domain, event.at)
    concerns = list(found.concerns)
    if found.application:
        # A later application event concerns its applicant enterprise too (linked when it was filed).
        concerns += [(EntityKind.ENTERPRISE, c) for c in repo.applicants_of(found.application)]
    seen: set[tuple[EntityKind, str]] = set()
    for kind, id_ in concerns:
        if (kind, id_) in seen:
            continue
        seen.add((kind, id_))

        def step(state: Mapping[str, Any], kind: EntityKind = kind) -> Mapping[str, Any]:
            return apply_part(kind, state, event)

        repo.update_part(kind.value, id_, event.domain, event.at, step)
        repo.add_timeline(
            kind.value,
            id_,
            event_id=event.event_id,
            at=event.at,
            domain=event.domain,
            ce_type=event.ce_type,
            summary=found.summary,
        )
