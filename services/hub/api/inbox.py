"""HubService methods of the inbox family: list, read, acknowledge and resolve items, watch them, list
incidents. Thin: a command from the request (mapping), one use case, the response from mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from cityhub.hub.v1 import hub_pb2

from services.hub.api import current_scopes, scopes_of
from services.hub.mapping import inbox as mapping
from services.hub.usecases.common import HubContext
from services.hub.usecases.inbox import InboxUseCases
from services.platform.security import Role, current_access, current_caller

__all__ = ["WATCH_LIVE_METADATA", "InboxApi"]

WATCH_LIVE_METADATA = "x-watch-live"


class InboxApi:
    _inbox: InboxUseCases

    def _init_inbox(self, ctx: HubContext) -> None:
        self._inbox = InboxUseCases(ctx)

    def ListInboxItems(  # noqa: N802
        self,
        request: hub_pb2.ListInboxItemsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> hub_pb2.ListInboxItemsResponse:
        items, token = self._inbox.list_items(mapping.list_items(request), current_scopes())
        return mapping.list_items_response(items, token)

    def GetInboxItem(  # noqa: N802
        self,
        request: hub_pb2.GetInboxItemRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> hub_pb2.GetInboxItemResponse:
        view = self._inbox.get_item(mapping.get_item(request), current_scopes())
        return mapping.get_item_response(view.item, view.occurrences, view.incident)

    def AcknowledgeInboxItem(  # noqa: N802
        self,
        request: hub_pb2.AcknowledgeInboxItemRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> hub_pb2.AcknowledgeInboxItemResponse:
        item = self._inbox.acknowledge(mapping.acknowledge(request, current_caller().sub), current_scopes())
        return mapping.acknowledge_response(item)

    def ResolveInboxItem(  # noqa: N802
        self,
        request: hub_pb2.ResolveInboxItemRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> hub_pb2.ResolveInboxItemResponse:
        item = self._inbox.resolve(mapping.resolve(request, current_caller().sub), current_scopes())
        return mapping.resolve_response(item)

    async def WatchInbox(  # noqa: N802
        self, request: hub_pb2.WatchInboxRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[hub_pb2.WatchInboxResponse]:
        # An async generator: the platform serves it on the event loop, so a watcher holds no thread.
        async def live() -> None:
            # Response headers tell the client the watch is live: changes committed from now on reach it.
            await context.send_initial_metadata(((WATCH_LIVE_METADATA, "true"),))

        access = current_access()
        items = self._inbox.watch(
            mapping.watch_filter(request),
            scopes_of(access),
            include_open=request.include_open,
            # Escalated items are routed to the district operator: they reach its watch whatever the filter.
            route_escalated=Role.DISTRICT_OPERATOR.value in access.roles,
            on_live=live,
        )
        async for item in items:
            yield mapping.watch_response(item)

    def ListIncidents(  # noqa: N802
        self,
        request: hub_pb2.ListIncidentsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> hub_pb2.ListIncidentsResponse:
        incidents, token = self._inbox.list_incidents(mapping.list_incidents(request), current_scopes())
        return mapping.list_incidents_response(incidents, token)
