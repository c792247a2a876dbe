"""The safety service's sites, asked over gRPC through the platform's peer client (deadline, retries on
UNAVAILABLE, the service's own token): the kitchen's :class:`SiteDirectory`."""

from __future__ import annotations

from cityhub.safety.v1 import safety_pb2, safety_pb2_grpc

from services.kitchen.usecases.common import SiteInfo
from services.platform.errors import NotFoundError
from services.platform.grpc_client import PeerClient

__all__ = ["SafetySites"]


class SafetySites:
    def __init__(self, client: PeerClient[safety_pb2_grpc.SafetyServiceStub]) -> None:
        self._client = client

    def get_site(self, site_id: str) -> SiteInfo | None:
        try:
            reply = self._client.call(self._client.stub.GetSite, safety_pb2.GetSiteRequest(site_id=site_id))
        except NotFoundError:
            return None
        site = reply.site
        located = site.HasField("location")
        return SiteInfo(
            site_id=site.site_id,
            name=site.name,
            kind=safety_pb2.SiteKind.Name(site.kind).removeprefix("SITE_KIND_"),
            town=site.town,
            division_code=site.division_code,
            latitude=site.location.latitude if located else None,
            longitude=site.location.longitude if located else None,
        )
