"""Persons of concern and their hazardous purchases. Identity numbers, names, flags and purchase details
are sealed by the :class:`~services.safety.vault.PersonVault` before they reach the store; a person is
known everywhere else by a keyed token only."""

from __future__ import annotations

from services.platform.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from services.platform.identifiers import invalid_identity_number
from services.platform.logs import get_logger
from services.safety.domain.commands import RecordPerson, RecordPurchase
from services.safety.domain.model import PersonRecord, RiskFlag
from services.safety.domain.records import PurchaseRow
from services.safety.usecases.common import Clock, SafetyUnitOfWork, new_id, open_purchase, utc_now
from services.safety.vault import PersonVault

__all__ = ["PersonUseCases"]

log = get_logger()


class PersonUseCases:
    def __init__(self, uow: SafetyUnitOfWork, vault: PersonVault, *, clock: Clock = utc_now) -> None:
        self._uow = uow
        self._vault = vault
        self._clock = clock

    def record_person(self, command: RecordPerson) -> tuple[str, bool]:
        """Record (or update) a person of concern; returns the token and whether the person was new."""
        command.check()
        token = self._vault.token_for(command.identity_number)
        flags = sorted({f for f in command.risk_flags if f is not None}, key=list(RiskFlag).index)
        with self._uow.transaction() as tx:
            replay = tx.claim("record_person", command.request_id, command)
            if replay is not None:
                return str(replay["person_token"]), bool(replay["created"])
            sealed = self._vault.seal(
                "person",
                token,
                {
                    "identity_number": command.identity_number.strip().upper(),
                    "name": command.name.strip(),
                    "flags": [f.value for f in flags],
                },
            )
            created = tx.repo.upsert_person(token, sealed, self._clock())
            tx.remember("record_person", command.request_id, {"person_token": token, "created": created})
        log.info("person_recorded", person_token=token, created=created, flag_count=len(flags))
        return token, created

    def find_person(self, identity_number: str) -> str | None:
        problem = invalid_identity_number(identity_number.strip().upper())
        if problem:
            raise InvalidArgumentError.of("identity_number", problem)
        token = self._vault.token_for(identity_number)
        with self._uow.transaction() as tx:
            return token if tx.repo.existing_persons([token]) else None

    def get_person(self, person_token: str) -> PersonRecord:
        if not person_token:
            raise InvalidArgumentError.of("person_token", "is required")
        with self._uow.transaction() as tx:
            stored = tx.repo.get_person(person_token)
            if stored is None:
                raise NotFoundError(f"person {person_token} not found")
            purchases = tx.repo.purchases_of([person_token])
        profile = self._vault.open("person", person_token, stored.sealed)
        return PersonRecord(
            person_token=person_token,
            identity_number=str(profile["identity_number"]),
            name=str(profile["name"]),
            risk_flags=tuple(RiskFlag(f) for f in profile["flags"]),
            purchases=tuple(open_purchase(self._vault, row) for row in purchases),
            recorded_at=stored.recorded_at,
            updated_at=stored.updated_at,
        )

    def record_purchase(self, command: RecordPurchase) -> str:
        command.check(self._clock())
        assert command.item is not None
        assert command.purchased_at is not None
        with self._uow.transaction() as tx:
            replay = tx.claim("record_purchase", command.request_id, command)
            if replay is not None:
                return str(replay["purchase_id"])
            if not tx.repo.existing_persons([command.person_token]):
                raise FailedPreconditionError("person_token: is not a recorded person")
            purchase_id = new_id("purchase")
            sealed = self._vault.seal(
                "purchase",
                f"{command.person_token}/{purchase_id}",
                {
                    "item": command.item.value,
                    "description": command.description.strip(),
                    "quantity": command.quantity,
                    "unit": command.unit.strip(),
                    "place": command.place.strip(),
                },
            )
            tx.repo.insert_purchase(
                PurchaseRow(purchase_id, command.person_token, command.purchased_at, sealed), self._clock()
            )
            tx.remember("record_purchase", command.request_id, {"purchase_id": purchase_id})
        log.info("hazardous_purchase_recorded", purchase_id=purchase_id, person_token=command.person_token)
        return purchase_id
