"""Industry use cases on FakeUnitOfWork and the in-memory repository: no sockets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from cityhub.industry.v1 import events_pb2

from services.industry.domain import commands
from services.industry.domain.access import Visibility
from services.industry.domain.model import MachineType, OrderStage, Park, Sector
from services.industry.usecases.common import IndustryConfig
from services.industry.usecases.orders import Orders
from services.industry.usecases.registry import Registry
from services.platform.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from services.platform.identifiers import credit_code_check_char
from services.platform.uow import FakeUnitOfWork
from tests.unit.industry.fakes import FakeIndustryRepository

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
EVERYTHING = Visibility.of(everything=True)


def _code(body: str = "MA2K7Q5R1") -> str:
    first17 = f"91331004{body}"
    return first17 + credit_code_check_char(first17)


def _onboard(
    request_id: str = "req-1", code: str | None = None, park_id: str = ""
) -> commands.OnboardEnterprise:
    return commands.OnboardEnterprise(
        request_id, code or _code(), "Luqiao Moulds Co.", Sector.MACHINERY, park_id, ""
    )


@pytest.fixture
def uow() -> FakeUnitOfWork[FakeIndustryRepository]:
    repo = FakeIndustryRepository()
    repo.parks["park-1"] = Park("park-1", "Luqiao park", "331004", "", NOW)
    return FakeUnitOfWork(repo)


def _registry(uow: FakeUnitOfWork[FakeIndustryRepository]) -> Registry:
    return Registry(uow, IndustryConfig(), clock=lambda: NOW)


def test_onboarding_stores_the_enterprise_and_publishes_one_event(
    uow: FakeUnitOfWork[FakeIndustryRepository],
) -> None:
    enterprise = _registry(uow).onboard_enterprise(_onboard(park_id="park-1"), EVERYTHING)
    assert enterprise.park_id == "park-1"
    [event] = uow.events_of(events_pb2.EnterpriseOnboarded)
    assert (event.credit_code, event.park_id, event.division_code) == (_code(), "park-1", "331004")
    assert "Moulds" not in str(event)
    assert len(uow.published) == 1


def test_a_replay_answers_the_same_and_publishes_nothing_new(
    uow: FakeUnitOfWork[FakeIndustryRepository],
) -> None:
    registry = _registry(uow)
    first = registry.onboard_enterprise(_onboard(), EVERYTHING)
    again = registry.onboard_enterprise(_onboard(), EVERYTHING)
    assert again == first
    assert len(uow.published) == 1


def test_the_same_request_id_with_another_body_is_refused_and_nothing_stored(
    uow: FakeUnitOfWork[FakeIndustryRepository],
) -> None:
    registry = _registry(uow)
    registry.onboard_enterprise(_onboard(), EVERYTHING)
    other = _onboard(code=_code("MA2K7Q5R2"))
    with pytest.raises(InvalidArgumentError) as caught:
        registry.onboard_enterprise(other, EVERYTHING)
    assert [v.field for v in caught.value.violations] == ["request_id"]
    assert list(uow.repo.enterprises) == [_code()]
    assert len(uow.published) == 1


def test_a_credit_code_onboarded_by_another_request_already_exists(
    uow: FakeUnitOfWork[FakeIndustryRepository],
) -> None:
    registry = _registry(uow)
    registry.onboard_enterprise(_onboard("req-1"), EVERYTHING)
    with pytest.raises(AlreadyExistsError):
        registry.onboard_enterprise(_onboard("req-2"), EVERYTHING)
    assert len(uow.published) == 1
    # The refused request's id is not remembered: fixed, it may go through.
    registry.onboard_enterprise(_onboard("req-2", code=_code("MA2K7Q5R3")), EVERYTHING)
    assert len(uow.published) == 2


def test_an_unknown_park_is_a_failed_precondition(uow: FakeUnitOfWork[FakeIndustryRepository]) -> None:
    with pytest.raises(FailedPreconditionError, match=r"^park_id: "):
        _registry(uow).onboard_enterprise(_onboard(park_id="park-nope"), EVERYTHING)
    assert uow.published == []


def test_bad_input_names_every_field_before_any_transaction(
    uow: FakeUnitOfWork[FakeIndustryRepository],
) -> None:
    bad = commands.OnboardEnterprise("", "91331004XXXXXXXXX0", " ", None, "", "")
    with pytest.raises(InvalidArgumentError) as caught:
        _registry(uow).onboard_enterprise(bad, EVERYTHING)
    assert {v.field for v in caught.value.violations} == {"request_id", "credit_code", "name", "sector"}
    assert uow.commits == uow.rollbacks == 0


def test_another_enterprise_is_not_found_for_an_enterprise_user(
    uow: FakeUnitOfWork[FakeIndustryRepository],
) -> None:
    registry = _registry(uow)
    registry.onboard_enterprise(_onboard(), EVERYTHING)
    with pytest.raises(NotFoundError):
        registry.get_enterprise(_code(), Visibility.of(enterprises=[_code("MA2K7Q5R2")]))
    assert registry.get_enterprise(_code(), Visibility.of(enterprises=[_code()])).credit_code == _code()


def test_a_device_for_another_enterprise_is_permission_denied(
    uow: FakeUnitOfWork[FakeIndustryRepository],
) -> None:
    registry = _registry(uow)
    registry.onboard_enterprise(_onboard(), EVERYTHING)
    command = commands.RegisterDevice("dev-req", "BOX-1", _code(), "W1", MachineType.LATHE, 10.0, 30.0, 1000)
    with pytest.raises(PermissionDeniedError):
        registry.register_device(command, Visibility.of(enterprises=[_code("MA2K7Q5R2")]))
    device = registry.register_device(command, EVERYTHING)
    assert registry.register_device(command, EVERYTHING) == device
    assert len(uow.events_of(events_pb2.DeviceRegistered)) == 1


def test_a_page_above_500_is_refused_and_a_cursor_pages_on(
    uow: FakeUnitOfWork[FakeIndustryRepository],
) -> None:
    registry = _registry(uow)
    for i, body in enumerate(["MA2K7Q5R1", "MA2K7Q5R2", "MA2K7Q5R3"]):
        registry.onboard_enterprise(_onboard(f"req-{i}", code=_code(body)), EVERYTHING)
    with pytest.raises(InvalidArgumentError) as caught:
        registry.list_enterprises(EVERYTHING, "", 501, "")
    assert [v.field for v in caught.value.violations] == ["page.page_size"]
    first, token = registry.list_enterprises(EVERYTHING, "", 2, "")
    rest, last = registry.list_enterprises(EVERYTHING, "", 2, token)
    assert [e.credit_code for e in [*first, *rest]] == sorted(uow.repo.enterprises)
    assert last == ""


# --- orders ---------------------------------------------------------------------------------------------


def _orders(uow: FakeUnitOfWork[FakeIndustryRepository]) -> Orders:
    _registry(uow).onboard_enterprise(_onboard("onboard"), EVERYTHING)
    return Orders(uow, IndustryConfig(), clock=lambda: NOW)


def _create(orders: Orders, request_id: str = "ord-req") -> str:
    command = commands.CreateOrder(
        request_id, _code(), "Wenling Pump Works", "Valve body", "", "2026-04-01", NOW - timedelta(days=2)
    )
    return orders.create(command, EVERYTHING).order.order_id


def test_an_order_is_created_once_and_moves_one_stage_at_a_time(
    uow: FakeUnitOfWork[FakeIndustryRepository],
) -> None:
    orders = _orders(uow)
    order_id = _create(orders)
    assert _create(orders) == order_id
    view = orders.advance(commands.AdvanceOrder(order_id, OrderStage.CUSTOMISATION, None), EVERYTHING)
    assert view.order.stage == OrderStage.CUSTOMISATION
    changes = uow.events_of(events_pb2.OrderStageChanged)
    assert len(changes) == 2
    assert view.order.promised_date == date(2026, 4, 1)


def test_an_order_advanced_illegally_fails_its_precondition_and_publishes_nothing(
    uow: FakeUnitOfWork[FakeIndustryRepository],
) -> None:
    orders = _orders(uow)
    order_id = _create(orders)
    published = len(uow.published)
    with pytest.raises(FailedPreconditionError, match=r"^stage: .*the next stage is customisation"):
        orders.advance(commands.AdvanceOrder(order_id, OrderStage.DESIGN, None), EVERYTHING)
    with pytest.raises(FailedPreconditionError, match=r"^occurred_at: "):
        orders.advance(
            commands.AdvanceOrder(order_id, OrderStage.CUSTOMISATION, NOW - timedelta(days=3)), EVERYTHING
        )
    assert len(uow.published) == published
    assert orders.get(order_id, EVERYTHING).order.stage == OrderStage.SALES


def test_another_enterprises_order_is_not_found(uow: FakeUnitOfWork[FakeIndustryRepository]) -> None:
    orders = _orders(uow)
    order_id = _create(orders)
    stranger = Visibility.of(enterprises=[_code("MA2K7Q5R2")])
    with pytest.raises(NotFoundError):
        orders.get(order_id, stranger)
    with pytest.raises(NotFoundError):
        orders.advance(commands.AdvanceOrder(order_id, OrderStage.CUSTOMISATION, None), stranger)
