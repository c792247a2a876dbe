"""Sites (schools, kindergartens, hospitals, religious venues) and their sensors."""

from __future__ import annotations

from datetime import datetime

from services.platform.errors import FailedPreconditionError
from services.platform.logs import get_logger
from services.platform.paging import Page, decode_cursor, paginate
from services.safety import mapping
from services.safety.domain.access import Viewer
from services.safety.domain.commands import RegisterSensor, RegisterSite
from services.safety.domain.model import Sensor, SensorKind, Site, SiteKind
from services.safety.usecases.common import (
    Clock,
    SafetyUnitOfWork,
    new_id,
    require_id,
    site_of,
    utc_now,
)

__all__ = ["SiteUseCases"]

log = get_logger()


class SiteUseCases:
    def __init__(self, uow: SafetyUnitOfWork, *, clock: Clock = utc_now) -> None:
        self._uow = uow
        self._clock = clock

    def register_site(self, command: RegisterSite) -> Site:
        command.check()
        assert command.kind is not None
        with self._uow.transaction() as tx:
            replay = tx.claim("register_site", command.request_id, command)
            if replay is not None:
                return site_of(tx.repo, replay["site_id"])
            site = Site(
                site_id=new_id("site"),
                name=command.name.strip(),
                kind=command.kind,
                address=command.address.strip(),
                division_code=command.division_code,
                town=command.town.strip(),
                latitude=command.latitude,
                longitude=command.longitude,
                duty_room_name=command.duty_room_name.strip(),
                duty_room_phone=command.duty_room_phone.strip(),
                registered_at=self._clock(),
            )
            tx.repo.insert_site(site)
            tx.publish(key=site.site_id, subject=site.site_id, message=mapping.site_registered(site))
            tx.remember("register_site", command.request_id, {"site_id": site.site_id})
        log.info("site_registered", site_id=site.site_id, kind=site.kind.value)
        return site

    def get_site(self, site_id: str, viewer: Viewer) -> Site:
        require_id("site_id", site_id)
        viewer.require(site_id, f"site {site_id}")
        with self._uow.transaction() as tx:
            return site_of(tx.repo, site_id)

    def list_sites(
        self, viewer: Viewer, kind: SiteKind | None, division_code: str, town: str, page: Page
    ) -> tuple[list[Site], str]:
        after = decode_cursor(page.token, datetime, str)
        with self._uow.transaction() as tx:
            sites = tx.repo.list_sites(
                site_ids=None if viewer.all_sites else viewer.site_ids,
                kind=kind,
                division_code=division_code,
                town=town,
                after=after,
                limit=page.size + 1,
            )
        return paginate(sites, page, lambda s: (s.registered_at, s.site_id))

    def register_sensor(self, command: RegisterSensor) -> Sensor:
        command.check()
        assert command.kind is not None
        with self._uow.transaction() as tx:
            replay = tx.claim("register_sensor", command.request_id, command)
            if replay is not None:
                sensor_id = str(replay["sensor_id"])
                return tx.repo.get_sensors([sensor_id])[sensor_id]
            if tx.repo.get_site(command.site_id) is None:
                raise FailedPreconditionError(f"site_id: site {command.site_id} does not exist")
            sensor = Sensor(
                sensor_id=new_id("sensor"),
                site_id=command.site_id,
                kind=command.kind,
                zone=" ".join(command.zone.split()),
                name=command.name.strip(),
                device_code=command.device_code.strip(),
                registered_at=self._clock(),
            )
            tx.repo.insert_sensor(sensor)
            tx.publish(
                key=sensor.sensor_id, subject=sensor.sensor_id, message=mapping.sensor_registered(sensor)
            )
            tx.remember("register_sensor", command.request_id, {"sensor_id": sensor.sensor_id})
        log.info(
            "sensor_registered", sensor_id=sensor.sensor_id, site_id=sensor.site_id, kind=sensor.kind.value
        )
        return sensor

    def list_sensors(self, site_id: str, kind: SensorKind | None, page: Page) -> tuple[list[Sensor], str]:
        require_id("site_id", site_id)
        after = decode_cursor(page.token, datetime, str)
        with self._uow.transaction() as tx:
            sensors = tx.repo.list_sensors(site_id, kind, after, page.size + 1)
        return paginate(sensors, page, lambda s: (s.registered_at, s.sensor_id))
