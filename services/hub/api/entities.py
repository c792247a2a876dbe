"""HubService methods of the entities family: SearchEntities, ListEntitiesNear, GetEntity360, GetTimeline."""

from __future__ import annotations

import grpc
from cityhub.common.v1 import common_pb2
from cityhub.hub.v1 import hub_pb2

from services.hub.api import current_scopes
from services.hub.mapping.entities import (
    detail_call,
    entity_pb,
    link_pb,
    near_command,
    part_pb,
    ref_of,
    search_command,
    timeline_command,
    timeline_entry_pb,
)
from services.hub.usecases.common import HubContext
from services.hub.usecases.entities import EntityDirectory

__all__ = ["EntitiesApi"]


class EntitiesApi:
    _entity_directory: EntityDirectory

    def _init_entities(self, ctx: HubContext) -> None:
        self._entity_directory = EntityDirectory(ctx, detail_call)

    def SearchEntities(  # noqa: N802
        self,
        request: hub_pb2.SearchEntitiesRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> hub_pb2.SearchEntitiesResponse:
        hits, token = self._entity_directory.search(search_command(request), current_scopes())
        return hub_pb2.SearchEntitiesResponse(
            hits=[hub_pb2.SearchHit(entity=entity_pb(row), score=score) for row, score in hits],
            page=common_pb2.PageResponse(next_page_token=token, total_size=-1),
        )

    def ListEntitiesNear(  # noqa: N802
        self,
        request: hub_pb2.ListEntitiesNearRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> hub_pb2.ListEntitiesNearResponse:
        found = self._entity_directory.near(near_command(request), current_scopes())
        return hub_pb2.ListEntitiesNearResponse(
            entities=[hub_pb2.NearbyEntity(entity=entity_pb(row), distance_meters=d) for row, d in found]
        )

    def GetEntity360(  # noqa: N802
        self,
        request: hub_pb2.GetEntity360Request,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> hub_pb2.GetEntity360Response:
        problems: list[tuple[str, str]] = []
        kind, id_ = ref_of(request.ref, "ref", problems)
        view = self._entity_directory.entity_360(
            kind, id_, problems, detail=request.detail, scopes=current_scopes()
        )
        return hub_pb2.GetEntity360Response(
            entity=entity_pb(view.entity),
            links=[link_pb(link) for link in view.links],
            parts=[
                part_pb(
                    p.domain,
                    status=p.status,
                    facts=p.facts,
                    last_event_at=p.last_event_at,
                    freshness_seconds=p.freshness_seconds,
                    detail=p.detail,
                    problem=p.problem,
                )
                for p in view.parts
            ],
            open_items=view.open_items,
        )

    def GetTimeline(  # noqa: N802
        self,
        request: hub_pb2.GetTimelineRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> hub_pb2.GetTimelineResponse:
        rows, token = self._entity_directory.timeline(timeline_command(request), current_scopes())
        return hub_pb2.GetTimelineResponse(
            entries=[timeline_entry_pb(r.at, r.domain, r.ce_type, r.summary, r.event_id) for r in rows],
            page=common_pb2.PageResponse(next_page_token=token, total_size=-1),
        )
