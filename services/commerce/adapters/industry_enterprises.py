"""The industry service's enterprises, asked over gRPC through the platform's peer client (deadline,
retries on UNAVAILABLE, the service's own token): the commerce :class:`EnterpriseDirectory`."""

from __future__ import annotations

from cityhub.industry.v1 import industry_pb2, industry_pb2_grpc

from services.commerce.usecases.common import EnterpriseInfo
from services.platform.errors import NotFoundError
from services.platform.grpc_client import PeerClient

__all__ = ["IndustryEnterprises"]


class IndustryEnterprises:
    def __init__(self, client: PeerClient[industry_pb2_grpc.IndustryServiceStub]) -> None:
        self._client = client

    def get_enterprise(self, credit_code: str) -> EnterpriseInfo | None:
        try:
            reply = self._client.call(
                self._client.stub.GetEnterprise, industry_pb2.GetEnterpriseRequest(credit_code=credit_code)
            )
        except NotFoundError:
            return None
        enterprise = reply.enterprise
        sector = (
            industry_pb2.Sector.Name(enterprise.sector).removeprefix("SECTOR_") if enterprise.sector else ""
        )
        return EnterpriseInfo(enterprise.credit_code, enterprise.name, enterprise.park_id, sector)
