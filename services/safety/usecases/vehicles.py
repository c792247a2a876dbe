"""Vehicles of concern: plates linked to recorded persons. A plate is sealed by the
:class:`~services.safety.vault.PersonVault` before it reaches the store and is known everywhere else by its
keyed token (``v_`` + HMAC of the normalised plate), which is also what a vehicle-recognition detection is
matched by (services/safety/usecases/detections.py)."""

from __future__ import annotations

import unicodedata
from datetime import datetime

from services.platform.errors import FailedPreconditionError, NotFoundError
from services.platform.logs import get_logger
from services.platform.paging import Page, decode_cursor, paginate
from services.safety.domain.commands import RecordVehicle, RemoveVehicle
from services.safety.domain.model import VehicleRecord
from services.safety.domain.records import VehicleRow
from services.safety.usecases.common import Clock, SafetyUnitOfWork, require_id, utc_now
from services.safety.vault import PersonVault

__all__ = ["VehicleUseCases"]

log = get_logger()


class VehicleUseCases:
    def __init__(self, uow: SafetyUnitOfWork, vault: PersonVault, *, clock: Clock = utc_now) -> None:
        self._uow = uow
        self._vault = vault
        self._clock = clock

    def record_vehicle(self, command: RecordVehicle) -> tuple[str, bool]:
        """Record (or relink) a vehicle of concern; returns its token and whether the plate was new."""
        command.check()
        token = self._vault.vehicle_token_for(command.plate)
        with self._uow.transaction() as tx:
            replay = tx.claim("record_vehicle", command.request_id, command)
            if replay is not None:
                return str(replay["vehicle_token"]), bool(replay["created"])
            if not tx.repo.existing_persons([command.person_token]):
                raise FailedPreconditionError("person_token: is not a recorded person")
            plate = " ".join(unicodedata.normalize("NFKC", command.plate).upper().split())
            sealed = self._vault.seal("vehicle", token, {"plate": plate})
            created = tx.repo.upsert_vehicle(token, command.person_token, sealed, self._clock())
            tx.remember("record_vehicle", command.request_id, {"vehicle_token": token, "created": created})
        log.info("vehicle_recorded", vehicle_token=token, person_token=command.person_token, created=created)
        return token, created

    def get_vehicle(self, vehicle_token: str) -> VehicleRecord:
        require_id("vehicle_token", vehicle_token)
        with self._uow.transaction() as tx:
            row = tx.repo.get_vehicle(vehicle_token)
        if row is None:
            raise NotFoundError(f"vehicle {vehicle_token} not found")
        return self._open(row)

    def list_vehicles(self, person_token: str, page: Page) -> tuple[list[VehicleRecord], str]:
        require_id("person_token", person_token)
        after = decode_cursor(page.token, datetime, str)
        with self._uow.transaction() as tx:
            if not tx.repo.existing_persons([person_token]):
                raise NotFoundError(f"person {person_token} not found")
            rows = tx.repo.list_vehicles(person_token, after, page.size + 1)
        found, token = paginate(rows, page, lambda v: (v.recorded_at, v.vehicle_token))
        return [self._open(row) for row in found], token

    def remove_vehicle(self, command: RemoveVehicle) -> tuple[str, str]:
        """Remove a vehicle of concern; returns its token and the person it was linked to."""
        command.check()
        with self._uow.transaction() as tx:
            replay = tx.claim("remove_vehicle", command.request_id, command)
            if replay is not None:
                return str(replay["vehicle_token"]), str(replay["person_token"])
            removed = tx.repo.delete_vehicle(command.vehicle_token)
            if removed is None:
                raise NotFoundError(f"vehicle {command.vehicle_token} not found")
            result = {"vehicle_token": removed.vehicle_token, "person_token": removed.person_token}
            tx.remember("remove_vehicle", command.request_id, result)
        log.info("vehicle_removed", vehicle_token=removed.vehicle_token, person_token=removed.person_token)
        return removed.vehicle_token, removed.person_token

    def _open(self, row: VehicleRow) -> VehicleRecord:
        sealed = self._vault.open("vehicle", row.vehicle_token, row.sealed)
        return VehicleRecord(
            vehicle_token=row.vehicle_token,
            plate=str(sealed["plate"]),
            person_token=row.person_token,
            recorded_at=row.recorded_at,
            updated_at=row.updated_at,
        )
