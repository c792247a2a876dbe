"""Parks, enterprises and devices: registration (idempotent by request id) and the lists."""

from __future__ import annotations

import secrets
from typing import Protocol

from services.industry import mapping
from services.industry.domain import commands
from services.industry.domain.access import Visibility
from services.industry.domain.model import Device, DeviceStatus, Enterprise, Park
from services.industry.domain.workshops import WorkshopCoverage
from services.industry.usecases.common import (
    Clock,
    IndustryConfig,
    IndustryStore,
    hide_unless_visible,
    require_visible,
    utc_now,
)
from services.platform.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    NotFoundError,
    PermissionDeniedError,
)
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate
from services.platform.uow import UnitOfWork

__all__ = ["DeviceSink", "Registry"]

log = get_logger()


class DeviceSink(Protocol):
    """Told of each device registered here, so the ingest path knows it at once."""

    def add(self, device: Device) -> None: ...


class Registry:
    def __init__(
        self,
        uow: UnitOfWork[IndustryStore],
        config: IndustryConfig,
        directory: DeviceSink | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._uow = uow
        self._config = config
        self._directory = directory
        self._clock = clock

    # --- parks --------------------------------------------------------------------------------------

    def register_park(self, command: commands.RegisterPark, visibility: Visibility) -> Park:
        command.check()
        if not visibility.everything:
            raise PermissionDeniedError("only district-wide industry operators register parks")
        with self._uow.transaction() as tx:
            replay = tx.claim("register_park", command.request_id, command)
            if replay is not None:
                park = tx.repo.get_park(replay["park_id"])
                assert park is not None, "a remembered park is never deleted"
                return park
            park = Park(
                f"park-{secrets.token_hex(4)}",
                command.name.strip(),
                command.division_code,
                command.address,
                self._clock(),
            )
            tx.repo.add_park(park)
            tx.publish(key=park.park_id, subject=park.park_id, message=mapping.park_registered(park))
            tx.remember("register_park", command.request_id, {"park_id": park.park_id})
        log.info("park_registered", park_id=park.park_id)
        return park

    def list_parks(self, visibility: Visibility, page_size: int, page_token: str) -> tuple[list[Park], str]:
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, str)
        with self._uow.transaction() as tx:
            parks = tx.repo.list_parks(visibility, after[0] if after else "", page.size + 1)
        return paginate(parks, page, lambda p: (p.park_id,))

    # --- enterprises --------------------------------------------------------------------------------

    def onboard_enterprise(self, command: commands.OnboardEnterprise, visibility: Visibility) -> Enterprise:
        command.check()
        park_id = command.park_id or None
        if not visibility.sees_enterprise(command.credit_code, park_id):
            # Park staff onboard into their own parks; an enterprise user only its own enterprise.
            raise PermissionDeniedError(f"the caller may not onboard {command.credit_code} into this park")
        with self._uow.transaction() as tx:
            replay = tx.claim("onboard_enterprise", command.request_id, command)
            if replay is not None:
                found = tx.repo.get_enterprise(replay["credit_code"])
                assert found is not None, "a remembered enterprise is never deleted"
                return found
            if park_id and tx.repo.get_park(park_id) is None:
                raise FailedPreconditionError(f"park_id: no park {park_id} is registered")
            assert command.sector is not None, "checked"
            enterprise = Enterprise(
                command.credit_code,
                command.name.strip(),
                command.sector,
                park_id,
                command.address,
                self._clock(),
            )
            if not tx.repo.add_enterprise(enterprise):
                raise AlreadyExistsError(f"enterprise {command.credit_code} is already on the platform")
            tx.publish(
                key=enterprise.credit_code,
                subject=enterprise.credit_code,
                message=mapping.enterprise_onboarded(enterprise),
            )
            tx.remember("onboard_enterprise", command.request_id, {"credit_code": enterprise.credit_code})
        log.info("enterprise_onboarded", credit_code=enterprise.credit_code, park_id=enterprise.park_id)
        return enterprise

    def get_enterprise(self, credit_code: str, visibility: Visibility) -> Enterprise:
        with self._uow.transaction() as tx:
            enterprise = tx.repo.get_enterprise(credit_code)
        if enterprise is None:
            raise NotFoundError(f"no enterprise {credit_code}")
        hide_unless_visible(
            visibility, enterprise.credit_code, enterprise.park_id, f"enterprise {credit_code}"
        )
        return enterprise

    def list_enterprises(
        self, visibility: Visibility, park_id: str, page_size: int, page_token: str
    ) -> tuple[list[Enterprise], str]:
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, str)
        with self._uow.transaction() as tx:
            found = tx.repo.list_enterprises(visibility, park_id, after[0] if after else "", page.size + 1)
        return paginate(found, page, lambda e: (e.credit_code,))

    # --- devices ------------------------------------------------------------------------------------

    def register_device(self, command: commands.RegisterDevice, visibility: Visibility) -> Device:
        command.check()
        with self._uow.transaction() as tx:
            replay = tx.claim("register_device", command.request_id, command)
            if replay is not None:
                found = tx.repo.get_device(replay["device_id"])
                assert found is not None, "a remembered device is never deleted"
                return found
            enterprise = tx.repo.get_enterprise(command.credit_code)
            if enterprise is None:
                raise FailedPreconditionError(
                    f"credit_code: no enterprise {command.credit_code} on the platform"
                )
            require_visible(visibility, enterprise.credit_code, enterprise.park_id)
            assert command.machine_type is not None, "checked"
            device = Device(
                f"dev-{secrets.token_hex(8)}",
                command.serial_number,
                enterprise.credit_code,
                enterprise.park_id,
                command.workshop,
                command.machine_type,
                command.rated_power_kw,
                command.ideal_cycle_seconds,
                command.sample_interval_ms,
                self._clock(),
            )
            if not tx.repo.add_device(device):
                raise AlreadyExistsError(f"a device with serial number {command.serial_number} is registered")
            tx.publish(
                key=device.device_id, subject=device.device_id, message=mapping.device_registered(device)
            )
            tx.remember("register_device", command.request_id, {"device_id": device.device_id})
        if self._directory is not None:
            self._directory.add(device)
        log.info("device_registered", device_id=device.device_id, credit_code=device.credit_code)
        return device

    def list_devices(
        self, query: commands.ListDevices, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[DeviceStatus], str]:
        """Devices with whether each is reporting (heard from within the silence threshold)."""
        query.check()
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, str)
        horizon = self._clock() - self._config.silence_after
        with self._uow.transaction() as tx:
            rows = tx.repo.list_devices(
                visibility,
                credit_code=query.credit_code,
                workshop=query.workshop,
                park_id=query.park_id,
                heard_since=horizon,
                after=after[0] if after else "",
                limit=page.size + 1,
            )
        return paginate(rows, page, lambda row: (row.device.device_id,))

    def digital_workshops(
        self, query: commands.DigitalWorkshopsQuery, visibility: Visibility
    ) -> list[tuple[WorkshopCoverage, bool]]:
        query.check()
        if not visibility.sees_park(query.park_id):
            raise PermissionDeniedError(f"the caller may not see park {query.park_id}")
        horizon = self._clock() - self._config.silence_after
        with self._uow.transaction() as tx:
            if tx.repo.get_park(query.park_id) is None:
                raise NotFoundError(f"no park {query.park_id}")
            found = tx.repo.workshop_coverage(query.park_id, horizon)
        threshold = self._config.digital_workshop_share
        rated = [(coverage, coverage.is_digital(threshold)) for coverage in found]
        return [item for item in rated if item[1]] if query.digital_only else rated
