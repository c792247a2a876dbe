"""The district dashboard over real gRPC: domain events put on the hub's input topics, the figures read
back per town and for the district, against the previous period; repeats count once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
import pytest
from cityhub.commerce.v1 import events_pb2 as commerce
from cityhub.govservice.v1 import events_pb2 as govservice
from cityhub.hub.v1 import hub_pb2
from cityhub.industry.v1 import events_pb2 as industry
from cityhub.industry.v1 import industry_pb2
from cityhub.kitchen.v1 import events_pb2 as kitchen
from cityhub.safety.v1 import events_pb2 as safety
from google.protobuf.message import Message

from services.platform.protoconv import to_timestamp
from tests.integration.hub.hub_support import Hub

T1, T2 = "路桥街道", "新桥镇"
E1, E2 = "91331004MA2AAAAA1X", "91331004MA2BBBBB2Y"
# The week asked for is Monday 13 to Sunday 19 May 2024 (district time); the previous one 6 to 12 May.
PREVIOUS = datetime(2024, 5, 8, 2, tzinfo=UTC)
THIS = datetime(2024, 5, 14, 2, tzinfo=UTC)
# 17:30 UTC on Sunday 12 May is 01:30 on Monday 13 May in the district: this week.
JUST_AFTER_MIDNIGHT = datetime(2024, 5, 12, 17, 30, tzinfo=UTC)
WEEK = hub_pb2.GRANULARITY_WEEK


class _Publisher:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.count = 0

    def __call__(self, message: Message, key: str, at: datetime, *, event_id: str | None = None) -> str:
        envelope = self.hub.publish(message, key=key, subject=key, time=at, event_id=event_id)
        self.count += 1
        return envelope.id


@pytest.fixture(scope="module")
def published(hub: Hub) -> int:
    """Every event of the scenario, published once; yields the number of distinct events."""
    send = _Publisher(hub)
    distinct = 0
    # Entities with their towns: a school in T1, kitchens in T1 and T2.
    send(safety.SiteRegistered(site_id="site-1", name="Primary school", town=T1), "site-1", PREVIOUS)
    send(kitchen.KitchenRegistered(kitchen_id="k-1", site_id="site-1", town=T1), "k-1", PREVIOUS)
    send(kitchen.KitchenRegistered(kitchen_id="k-2", town=T2), "k-2", THIS)
    # Industry: E1 onboarded last week, E2 this week; a device each; hourly summaries this week.
    send(industry.EnterpriseOnboarded(credit_code=E1), E1, PREVIOUS)
    send(industry.EnterpriseOnboarded(credit_code=E2), E2, THIS)
    send(industry.DeviceRegistered(device_id="d-1", credit_code=E1), "d-1", PREVIOUS)
    send(industry.DeviceRegistered(device_id="d-2", credit_code=E2), "d-2", THIS)
    for device, credit, hour, availability, at in (
        ("d-1", E1, datetime(2024, 5, 14, 1, tzinfo=UTC), 0.5, THIS),
        ("d-1", E1, datetime(2024, 5, 14, 2, tzinfo=UTC), 0.7, THIS),
        ("d-2", E2, datetime(2024, 5, 15, 1, tzinfo=UTC), 0.9, THIS),
        ("d-1", E1, datetime(2024, 5, 7, 1, tzinfo=UTC), 0.4, PREVIOUS),
        # The first hour again after late samples (published later): it replaces 0.5.
        ("d-1", E1, datetime(2024, 5, 14, 1, tzinfo=UTC), 0.6, datetime(2024, 5, 14, 3, tzinfo=UTC)),
    ):
        rolled = industry.UtilisationRolledUp(
            device_id=device,
            credit_code=credit,
            hour_started_at=to_timestamp(hour),
            figures=industry_pb2.UtilisationFigures(availability=availability, oee=availability / 2),
        )
        send(rolled, device, at)
    # Safety: one warning last week, three this week (one just after local midnight), one joint response.
    send(safety.AlertRaised(alert_id="a-0", site_id="site-1"), "a-0", PREVIOUS)
    send(safety.AlertRaised(alert_id="a-1", site_id="site-1"), "a-1", THIS)
    repeated = send(safety.AlertRaised(alert_id="a-2", site_id="site-1"), "a-2", THIS)
    send(safety.AlertRaised(alert_id="a-3", site_id="site-1"), "a-3", JUST_AFTER_MIDNIGHT)
    send(safety.AlertResolved(alert_id="a-1", site_id="site-1", joint_response=True), "a-1", THIS)
    send(safety.AlertResolved(alert_id="a-2", site_id="site-1", joint_response=False), "a-2", THIS)
    # Kitchen: two failed morning checks at k-1 this week, one last week; a cold-chain alert at k-2.
    for check, at in (("c-1", THIS), ("c-2", THIS), ("c-0", PREVIOUS)):
        send(kitchen.MorningCheckFailed(kitchen_id="k-1", check_id=check), "k-1", at)
    send(kitchen.ColdChainAlertRaised(kitchen_id="k-2", alert_id="cc-1"), "k-2", THIS)
    # Commerce: m-1 joined in T1 last week and left this week; m-2 (T1) and m-3 (T2) joined this week.
    send(
        commerce.MembershipApproved(membership_id="m-1", chamber_id="ch", credit_code=E1, town=T1),
        "ch",
        PREVIOUS,
    )
    send(
        commerce.MembershipApproved(membership_id="m-2", chamber_id="ch", credit_code=E2, town=T1), "ch", THIS
    )
    send(
        commerce.MembershipApproved(membership_id="m-3", chamber_id="ch", credit_code="x", town=T2),
        "ch",
        THIS,
    )
    send(commerce.MembershipEnded(membership_id="m-1", chamber_id="ch", credit_code=E1), "ch", THIS)
    # Government services: one filed last week, completed late this week; one filed and done on time.
    send(govservice.ApplicationFiled(application_no="ap-0", credit_code=E1), "ap-0", PREVIOUS)
    send(govservice.ApplicationFiled(application_no="ap-1"), "ap-1", THIS)
    send(govservice.ApplicationCompleted(application_no="ap-0", on_time=False), "ap-0", THIS)
    send(govservice.ApplicationCompleted(application_no="ap-1", on_time=True), "ap-1", THIS)
    distinct = send.count
    # Repeats: the same event delivered twice (same id), and the same alert raised under a new event id.
    send(safety.AlertRaised(alert_id="a-2", site_id="site-1"), "a-2", THIS, event_id=repeated)
    send(safety.AlertRaised(alert_id="a-2", site_id="site-1"), "a-2", THIS, event_id=str(uuid.uuid4()))
    distinct += 1
    hub.wait_applied(distinct)
    return distinct


def _figures(response: hub_pb2.GetDashboardResponse) -> dict[str, tuple[float, float]]:
    return {f.name: (f.value, f.previous) for f in response.figures}


def _dashboard(
    hub: Hub, town: str = "", granularity: hub_pb2.Granularity.ValueType = WEEK, day: str = "2024-05-15"
) -> hub_pb2.GetDashboardResponse:
    request = hub_pb2.GetDashboardRequest(town=town, granularity=granularity, date=day)
    response: hub_pb2.GetDashboardResponse = hub.call("GetDashboard", request)
    return response


def test_district_figures_equal_the_inputs_with_the_previous_week(hub: Hub, published: int) -> None:
    response = _dashboard(hub)
    figures = _figures(response)
    assert response.period.start_time.ToDatetime(tzinfo=UTC) == datetime(2024, 5, 12, 16, tzinfo=UTC)
    assert response.period.end_time.ToDatetime(tzinfo=UTC) == datetime(2024, 5, 19, 16, tzinfo=UTC)
    assert response.previous_period.start_time.ToDatetime(tzinfo=UTC) == datetime(2024, 5, 5, 16, tzinfo=UTC)
    # Cumulative: totals at the end of this week against the end of the previous one.
    assert figures["enterprises"] == (2, 1)
    assert figures["devices_connected"] == (2, 1)
    assert figures["kitchens_equipped"] == (2, 1)
    assert figures["chamber_members"] == (2, 1)
    # Flows within each week; a repeat of an alert (same id or a new event id) counts once.
    assert figures["warnings_raised"] == (3, 1)
    assert figures["joint_responses"] == (1, 0)
    assert figures["morning_checks_failed"] == (2, 1)
    assert figures["cold_chain_alerts"] == (1, 0)
    assert figures["new_joins"] == (2, 1)
    assert figures["applications_filed"] == (1, 1)
    assert figures["applications_completed"] == (2, 0)
    assert figures["applications_on_time"] == (1, 0)
    assert figures["applications_on_time_rate"] == (0.5, 0)
    # Devices reporting and the mean of the hourly figures (0.5 replaced by 0.6 published later).
    assert figures["devices_reporting"] == (2, 1)
    assert figures["utilisation"][0] == pytest.approx((0.6 + 0.7 + 0.9) / 3)
    assert figures["utilisation"][1] == pytest.approx(0.4)
    assert figures["oee"][0] == pytest.approx((0.3 + 0.35 + 0.45) / 3)
    warnings = next(f for f in response.figures if f.name == "warnings_raised")
    assert (warnings.change, warnings.change_ratio) == (2, 2.0)
    joint = next(f for f in response.figures if f.name == "joint_responses")
    assert (joint.change, joint.change_ratio) == (1, 0)  # nothing before: the ratio is 0
    assert published > 0


def test_town_figures_use_the_events_town_or_the_entitys(hub: Hub, published: int) -> None:
    del published
    t1, t2 = _figures(_dashboard(hub, T1)), _figures(_dashboard(hub, T2))
    # The events' own towns: kitchens and memberships.
    assert t1["kitchens_equipped"] == (1, 1)
    assert t2["kitchens_equipped"] == (1, 0)
    assert t1["chamber_members"] == (1, 1)  # m-1 left the town it joined in, m-2 joined
    assert t1["new_joins"] == (1, 1)
    assert t2["chamber_members"] == (1, 0)
    # The entity's town: the school's alerts and the kitchens' checks and alerts.
    assert t1["warnings_raised"] == (3, 1)
    assert t1["joint_responses"] == (1, 0)
    assert t1["morning_checks_failed"] == (2, 1)
    assert t2["warnings_raised"] == (0, 0)
    assert t2["cold_chain_alerts"] == (1, 0)
    assert t1["cold_chain_alerts"] == (0, 0)


def test_day_month_and_year(hub: Hub, published: int) -> None:
    del published
    day = _figures(_dashboard(hub, granularity=hub_pb2.GRANULARITY_DAY, day="2024-05-13"))
    assert day["warnings_raised"] == (1, 0)  # a-3, raised at 01:30 local on the 13th
    month = _figures(_dashboard(hub, granularity=hub_pb2.GRANULARITY_MONTH, day="2024-05-31"))
    assert month["warnings_raised"] == (4, 0)
    assert month["enterprises"] == (2, 0)
    year = _figures(_dashboard(hub, granularity=hub_pb2.GRANULARITY_YEAR, day="2024-01-01"))
    assert year["enterprises"] == (2, 0)
    assert year["applications_completed"] == (2, 0)


def test_bad_requests_name_the_field(hub: Hub) -> None:
    for request, field in (
        (hub_pb2.GetDashboardRequest(granularity=WEEK, date="2024-13-01"), "date"),
        (hub_pb2.GetDashboardRequest(date="2024-05-01"), "granularity"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            hub.call("GetDashboard", request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (caught.value.details() or "")


def test_only_the_programme_office_reads_it(hub: Hub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        hub.call(
            "GetDashboard",
            hub_pb2.GetDashboardRequest(granularity=WEEK),
            roles=("duty_room",),
            scopes=("site:x",),
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_today_by_default(hub: Hub) -> None:
    response = _dashboard(hub, granularity=hub_pb2.GRANULARITY_DAY, day="")
    start = response.period.start_time.ToDatetime(tzinfo=UTC)
    end = response.period.end_time.ToDatetime(tzinfo=UTC)
    assert (end - start).days == 1
    assert start <= datetime.now(UTC) < end
