"""Applications: filing at a window (an enterprise looked up in commerce first, outside any transaction),
the lifecycle steps, each appending its signed step to the trail and publishing its event in the same
transaction, and the reads.

Who may act (domain/access.py): a clerk covering neither of an application's regions is answered
NOT_FOUND; a step out of order FAILED_PRECONDITION; a step in order taken by a clerk who does not cover the
region whose turn it is PERMISSION_DENIED. A person applicant's identity number, name and phone are sealed
at rest and opened only for a clerk covering one of the application's regions (the platform then shows
them with a stated purpose, audited); everyone else gets the application without them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from services.govservice.domain.access import Visibility
from services.govservice.domain.applications import (
    Application,
    ApplicationStep,
    ApplicationView,
    EnterpriseApplicant,
    FileApplication,
    ListApplications,
    PersonApplicant,
    StepRecord,
    acting_region,
    advance,
    application_no_of,
    check_application_no,
    check_order,
    live_working_days_used,
    on_time,
    random_tail,
    suffix_material,
    suffix_of,
)
from services.govservice.domain.model import ApplicationStatus, Item, Verification
from services.govservice.mapping import applications as mapping
from services.govservice.usecases.common import GovServiceContext, GovServiceTx
from services.govservice.usecases.trail import append_step
from services.platform.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
    Violations,
)
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["PERSON_SEAL_PURPOSE", "Applications"]

log = get_logger()
_FILE = "file_application"
# The vault purpose a person applicant is sealed under, bound to the application number.
PERSON_SEAL_PURPOSE = "applicant"
# A random tail taken already (31**6 per region and day) is drawn again; this many draws never all collide.
_NUMBER_DRAWS = 8


class Applications:
    def __init__(self, ctx: GovServiceContext) -> None:
        self._ctx = ctx

    def _today(self, now: datetime) -> date:
        return now.astimezone(self._ctx.config.zone).date()

    # --- filing -------------------------------------------------------------------------------------

    def file(self, command: FileApplication, visibility: Visibility, actor: str) -> ApplicationView:
        command.check()
        if not visibility.covers(command.filing_region):
            raise PermissionDeniedError(
                f"filing_region: the caller is no clerk of region {command.filing_region}"
            )
        with self._ctx.uow.transaction() as tx:
            seen = tx.repo.request_seen(_FILE, command.request_id)
            if not seen:
                self._check_catalogue(tx, command, self._today(self._ctx.clock()))
        enterprise: EnterpriseApplicant | None = None
        if command.enterprise is not None and not seen:
            # A peer call never holds a database connection.
            enterprise = self._look_up(command.enterprise)
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim(_FILE, command.request_id, command)
            if replay is not None:
                stored = tx.repo.get_application(replay["application_no"])
                assert stored is not None, "a remembered application is never deleted"
                return self._view(tx, stored, visibility)
            if seen:
                # The id was logged a moment ago but names no application now (cannot happen while the
                # request log keeps every id): store nothing unlooked-up; a retry looks commerce up.
                raise UnavailableError(
                    "the request log changed during this request; retry with its request_id"
                )
            now = self._ctx.clock()
            item = self._check_catalogue(tx, command, self._today(now))
            application = self._store_new(tx, command, item, enterprise, now)
            append_step(
                tx,
                self._ctx,
                application_no=application.application_no,
                status=ApplicationStatus.SUBMITTED,
                region=application.filing_region,
                actor=actor,
                at=now,
                note="",
            )
            tx.publish(
                key=application.application_no,
                subject=application.application_no,
                message=mapping.application_filed(application),
                time=now,
            )
            tx.remember(_FILE, command.request_id, {"application_no": application.application_no})
            view = self._view(tx, application, visibility)
        log.info(
            "application_filed",
            application_no=application.application_no,
            item_code=application.item_code,
            filing_region=application.filing_region,
            handling_region=application.handling_region,
            applicant_kind=application.applicant_kind.value,
            verification=application.enterprise.verification.value
            if application.enterprise and application.enterprise.verification
            else "",
        )
        return view

    def _check_catalogue(self, tx: GovServiceTx, command: FileApplication, today: date) -> Item:
        """The item, when the catalogue lets this application be filed; INVALID_ARGUMENT naming every
        field it refuses otherwise (nothing is stored)."""
        v = Violations()
        item = tx.repo.get_item(command.item_code)
        if item is None:
            v.add("item_code", f"no item {command.item_code} is defined")
        if tx.repo.get_region(command.filing_region) is None:
            v.add("filing_region", f"region {command.filing_region} is not registered")
        if tx.repo.get_region(command.handling_region) is None:
            v.add("handling_region", f"region {command.handling_region} is not a registered partner")
        else:
            partnership = tx.repo.partnership_between(command.filing_region, command.handling_region)
            if partnership is None:
                v.add(
                    "handling_region",
                    f"region {command.handling_region} is not a partner of {command.filing_region}",
                )
            elif partnership.start_date > today:
                v.add(
                    "handling_region",
                    f"the partnership with {command.filing_region} starts on {partnership.start_date}",
                )
            elif item is not None and not partnership.offers(
                item.code, command.filing_region, command.handling_region
            ):
                v.add(
                    "item_code",
                    f"is not offered from {command.filing_region} to {command.handling_region}",
                )
        if item is not None:
            applicant = "person" if command.person is not None else "enterprise"
            if command.kind not in item.applicant_kinds:
                v.add(applicant, f"item {item.code} does not take a {applicant} applicant")
            codes = {m.code for m in item.materials}
            missing = [m for m in item.materials if m.code not in command.materials]
            if missing:
                v.add("materials", "missing: " + "; ".join(f"{m.code} ({m.name})" for m in missing))
            for i, code in enumerate(command.materials):
                if code not in codes:
                    v.add(f"materials[{i}]", f"is not a material of item {item.code}")
        v.check()
        assert item is not None, "checked"
        return item

    def _look_up(self, given: EnterpriseApplicant) -> EnterpriseApplicant:
        try:
            info = self._ctx.members.get_member(given.credit_code)
        except UnavailableError:
            # Never failed: filed as not verified, for the clerk to check.
            log.warning("commerce_unavailable_for_filing", credit_code=given.credit_code)
            return replace(given, verification=Verification.NOT_VERIFIED)
        if info is None:
            if not given.name:
                raise InvalidArgumentError.of(
                    "enterprise.name", "is required: commerce knows no member with this credit code"
                )
            return replace(given, verification=Verification.UNKNOWN)
        return EnterpriseApplicant(
            credit_code=given.credit_code,
            name=info.name or given.name,
            sector=info.sector or given.sector,
            town=info.town or given.town,
            verification=Verification.VERIFIED,
        )

    def _store_new(
        self,
        tx: GovServiceTx,
        command: FileApplication,
        item: Item,
        enterprise: EnterpriseApplicant | None,
        now: datetime,
    ) -> Application:
        vault = self._ctx.vault
        person = command.person
        for _ in range(_NUMBER_DRAWS):
            number = application_no_of(command.filing_region, self._today(now), random_tail())
            identifier = person.identity_number if person else (enterprise.credit_code if enterprise else "")
            application = Application(
                application_no=number,
                item_code=item.code,
                filing_region=command.filing_region,
                handling_region=command.handling_region,
                applicant_kind=command.kind,
                applicant_token=vault.token_for(person.identity_number) if person else "",
                sealed_person=vault.seal(
                    PERSON_SEAL_PURPOSE,
                    number,
                    {"identity_number": person.identity_number, "name": person.name, "phone": person.phone},
                )
                if person
                else None,
                origin_division=person.identity_number[:6] if person else "",
                enterprise=enterprise,
                suffix_digest=vault.mac(suffix_material(number, suffix_of(identifier))),
                materials=command.materials,
                status=ApplicationStatus.SUBMITTED,
                current_region=command.filing_region,
                promised_working_days=item.promised_working_days,
                accepted_on=None,
                due_date=None,
                working_days_used=0,
                clock_from=None,
                paused_on=None,
                overdue=False,
                filed_at=now,
                finished_at=None,
            )
            if tx.repo.add_application(application):
                return application
            log.info("application_number_taken", filing_region=command.filing_region)
        raise RuntimeError(f"{_NUMBER_DRAWS} application numbers drawn, every one taken")

    # --- steps --------------------------------------------------------------------------------------

    def step(self, command: ApplicationStep, visibility: Visibility, actor: str) -> ApplicationView:
        command.check()
        with self._ctx.uow.transaction() as tx:
            # Locked: two steps on one application at once are taken one after the other.
            current = self._visible(tx, command.application_no, visibility, for_update=True)
            check_order(current, command.step)
            region = acting_region(current, command.step)
            if not visibility.covers(region):
                raise PermissionDeniedError(
                    f"application {current.application_no}: this step is region {region}'s to take"
                )
            now = self._ctx.clock()
            today = self._today(now)
            moved = advance(
                current, command.step, now=now, today=today, is_working_day=self._ctx.calendar.is_working_day
            )
            tx.repo.save_application_state(moved)
            append_step(
                tx,
                self._ctx,
                application_no=moved.application_no,
                status=moved.status,
                region=region,
                actor=actor,
                at=now,
                note=command.text,
            )
            tx.publish(
                key=moved.application_no,
                subject=moved.application_no,
                message=mapping.step_event(
                    moved,
                    command.step,
                    region=region,
                    text=command.text,
                    at=now,
                    on_time=on_time(moved, today),
                ),
                time=now,
            )
            view = self._view(tx, moved, visibility)
        log.info(
            "application_step",
            application_no=moved.application_no,
            step=command.step.value,
            status=moved.status.value,
            region=region,
            due_date=str(moved.due_date or ""),
        )
        return view

    # --- reads --------------------------------------------------------------------------------------

    def get(self, application_no: str, visibility: Visibility) -> ApplicationView:
        check_application_no(application_no)
        with self._ctx.uow.transaction() as tx:
            return self._view(tx, self._visible(tx, application_no, visibility), visibility)

    def list(
        self, query: ListApplications, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[ApplicationView], str]:
        query.check()
        if query.division_code and not visibility.covers(query.division_code):
            raise PermissionDeniedError(
                f"division_code: the caller is no clerk of region {query.division_code}"
            )
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            found = tx.repo.list_applications(
                visibility,
                division_code=query.division_code,
                statuses=[s for s in query.statuses if s is not None],
                overdue_only=query.overdue_only,
                filed_from=query.filed_from,
                filed_to=query.filed_to,
                after=(after[0], after[1]) if after else None,
                limit=page.size + 1,
            )
        shown, token = paginate(found, page, lambda a: (a.filed_at, a.application_no))
        today = self._today(self._ctx.clock())
        # Lists carry no steps (GetApplication has them): one query per page, not one per application.
        return [self._view_of(a, visibility, (), today) for a in shown], token

    # --- helpers ------------------------------------------------------------------------------------

    @staticmethod
    def _visible(
        tx: GovServiceTx, application_no: str, visibility: Visibility, *, for_update: bool = False
    ) -> Application:
        found = tx.repo.get_application(application_no, for_update=for_update)
        if found is None or not (
            visibility.covers(found.filing_region) or visibility.covers(found.handling_region)
        ):
            raise NotFoundError(f"no application {application_no}")
        return found

    def _view(self, tx: GovServiceTx, application: Application, visibility: Visibility) -> ApplicationView:
        steps = tuple(tx.repo.list_steps(application.application_no))
        return self._view_of(application, visibility, steps, self._today(self._ctx.clock()))

    def _view_of(
        self, application: Application, visibility: Visibility, steps: tuple[StepRecord, ...], today: date
    ) -> ApplicationView:
        return ApplicationView(
            application=application,
            person=self._person(application, visibility),
            steps=steps,
            working_days_used=live_working_days_used(application, today, self._ctx.calendar.is_working_day),
        )

    def _person(self, application: Application, visibility: Visibility) -> PersonApplicant | None:
        """The person applicant opened, for a clerk of one of the application's regions only (the
        programme office and services see everything else of it, never the person)."""
        if application.sealed_person is None or visibility.everything:
            return None
        if not (
            visibility.covers(application.filing_region) or visibility.covers(application.handling_region)
        ):
            return None
        opened = self._ctx.vault.open(
            PERSON_SEAL_PURPOSE, application.application_no, application.sealed_person
        )
        return PersonApplicant(
            identity_number=str(opened["identity_number"]),
            name=str(opened["name"]),
            phone=str(opened["phone"]),
        )
