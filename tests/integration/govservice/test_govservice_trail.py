"""The signed trail over real gRPC and PostgreSQL: an application moved through its steps verifies, both
through VerifyTrail and offline from GetRegionKeys and the steps; a note changed or a middle step deleted
in the database is named as the first broken link; a clerk of an unrelated region learns nothing."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import grpc
import psycopg
import pytest
from cityhub.govservice.v1 import govservice_pb2 as pb
from psycopg import sql

from services.govservice.domain.model import ApplicationStatus
from services.govservice.domain.trail import RegionPublicKey, StepRecord, verify_chain
from tests.integration.govservice.govservice_support import GovService, clerk, identity_number, rid

FILING = "331004"  # Luqiao District, the district
HANDLING = "522632"  # Rongjiang County, a partner place
UNRELATED = "310000"  # Shanghai: no party to the applications here
ITEM = "si_transfer_trail"


@pytest.fixture(scope="module")
def catalogue(govservice: GovService) -> None:
    """The two regions, the item and the partnership, through the RPCs as the programme office."""
    for code, name, province, home in (
        (FILING, "Luqiao District", "Zhejiang", True),
        (HANDLING, "Rongjiang County", "Guizhou", False),
    ):
        govservice.call(
            "RegisterRegion",
            pb.RegisterRegionRequest(
                request_id=rid(), division_code=code, name=name, province=province, home=home
            ),
        )
    govservice.call(
        "DefineItem",
        pb.DefineItemRequest(
            request_id=rid(),
            item=pb.Item(
                code=ITEM,
                name="Social-insurance relationship transfer",
                materials=[pb.Material(code="id_card_copy", name="Copy of the identity card")],
                authority_level=pb.AUTHORITY_LEVEL_COUNTY,
                promised_working_days=15,
                applicant_kinds=[pb.APPLICANT_KIND_PERSON],
            ),
        ),
    )
    govservice.call(
        "SetPartnership",
        pb.SetPartnershipRequest(
            request_id=rid(),
            partnership=pb.Partnership(
                region_a=FILING,
                region_b=HANDLING,
                items=[pb.PartnershipItem(item_code=ITEM, direction=pb.DIRECTION_A_TO_B)],
                start_date="2024-01-01",
            ),
        ),
    )


def _walk(govservice: GovService) -> str:
    """An application filed in the district for Rongjiang and taken through six steps (0-5): filed,
    received, forwarded, accepted, supplement requested, supplemented."""
    # The answers carry the applicant's details: the clerks state why they read them.
    a = {**clerk(FILING), "purpose": "cross-region window"}
    b = {**clerk(HANDLING), "purpose": "cross-region window"}
    filed = govservice.call(
        "FileApplication",
        pb.FileApplicationRequest(
            request_id=rid(),
            item_code=ITEM,
            filing_region=FILING,
            handling_region=HANDLING,
            person=pb.PersonApplicant(
                identity_number=identity_number(HANDLING), name="Yang Mei", phone="13800000000"
            ),
            materials=["id_card_copy"],
        ),
        **a,
    )
    number = str(filed.application.application_no)
    govservice.call("ReceiveApplication", pb.ReceiveApplicationRequest(application_no=number), **a)
    govservice.call("ForwardApplication", pb.ForwardApplicationRequest(application_no=number), **a)
    govservice.call("AcceptApplication", pb.AcceptApplicationRequest(application_no=number), **b)
    govservice.call(
        "RequestSupplement",
        pb.RequestSupplementRequest(application_no=number, note="payment record 2019-2021"),
        **b,
    )
    govservice.call(
        "SubmitSupplement",
        pb.SubmitSupplementRequest(application_no=number, note="payment record handed over"),
        **a,
    )
    return number


def _verify(govservice: GovService, number: str, **kwargs: Any) -> pb.VerifyTrailResponse:
    answer: pb.VerifyTrailResponse = govservice.call(
        "VerifyTrail", pb.VerifyTrailRequest(application_no=number), **kwargs
    )
    return answer


def _sql(govservice: GovService, query: str, params: tuple[Any, ...]) -> None:
    """Run ``query`` on the service's own schema (``{steps}`` is the steps table), as someone with database
    access would, behind the service's back."""
    table = sql.Identifier(govservice.settings.service_name, "steps")
    with psycopg.connect(govservice.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL(query).format(steps=table), params)


def _refused(govservice: GovService, number: str, **kwargs: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        _verify(govservice, number, **kwargs)
    code: grpc.StatusCode = caught.value.code()
    return code


def _offline(govservice: GovService, number: str) -> tuple[bool, int, str]:
    """What a region checks on its own: the published keys and the steps, through the pure verifier."""
    keys = govservice.call("GetRegionKeys", pb.GetRegionKeysRequest()).keys
    published = {k.key_id: RegionPublicKey(k.division_code, k.public_key_pem) for k in keys}
    application = govservice.call(
        "GetApplication", pb.GetApplicationRequest(application_no=number)
    ).application
    steps = [
        StepRecord(
            application_no=number,
            sequence=s.sequence,
            status=ApplicationStatus(pb.ApplicationStatus.Name(s.status).removeprefix("APPLICATION_STATUS_")),
            region=s.region,
            actor=s.actor,
            at=s.at.ToDatetime(tzinfo=UTC),
            note=s.note,
            previous_hash=s.previous_hash,
            hash=s.hash,
            signature=s.signature,
            key_id=s.key_id,
        )
        for s in application.steps
    ]
    verdict = verify_chain(steps, published, regions=(FILING, HANDLING))
    return verdict.intact, verdict.first_broken, verdict.problem


@pytest.mark.usefixtures("catalogue")
def test_an_untouched_trail_is_intact_for_both_regions_and_offline(govservice: GovService) -> None:
    number = _walk(govservice)
    for caller in (clerk(FILING), clerk(HANDLING), {}, clerk("331000"), clerk("520000")):
        answer = _verify(govservice, number, **caller)
        assert (answer.intact, answer.steps, answer.first_broken, answer.problem) == (True, 6, -1, ""), caller
    assert _offline(govservice, number) == (True, -1, "")


@pytest.mark.usefixtures("catalogue")
def test_a_changed_note_is_the_first_broken_link(govservice: GovService) -> None:
    number = _walk(govservice)
    _sql(
        govservice,
        "UPDATE {steps} SET note = 'nothing was asked' WHERE application_no = %s AND sequence = 4",
        (number,),
    )
    answer = _verify(govservice, number, **clerk(HANDLING))
    assert not answer.intact
    assert answer.steps == 6
    assert answer.first_broken == 4
    assert "does not match its hash" in answer.problem
    intact, first_broken, _ = _offline(govservice, number)
    assert (intact, first_broken) == (False, 4)
    # Put back, the trail verifies again: nothing but the stored steps decides.
    _sql(
        govservice,
        "UPDATE {steps} SET note = 'payment record 2019-2021' WHERE application_no = %s AND sequence = 4",
        (number,),
    )
    assert _verify(govservice, number, **clerk(FILING)).intact


@pytest.mark.usefixtures("catalogue")
def test_a_deleted_middle_step_is_the_first_broken_link(govservice: GovService) -> None:
    number = _walk(govservice)
    _sql(govservice, "DELETE FROM {steps} WHERE application_no = %s AND sequence = 2", (number,))
    answer = _verify(govservice, number, **clerk(FILING))
    assert (answer.intact, answer.steps, answer.first_broken) == (False, 5, 2)
    assert "missing" in answer.problem


@pytest.mark.usefixtures("catalogue")
def test_a_deleted_last_step_is_found_by_the_applications_status(govservice: GovService) -> None:
    number = _walk(govservice)
    _sql(govservice, "DELETE FROM {steps} WHERE application_no = %s AND sequence = 5", (number,))
    answer = _verify(govservice, number)
    assert (answer.intact, answer.steps, answer.first_broken) == (False, 5, 5)
    assert "SUPPLEMENTED" in answer.problem


@pytest.mark.usefixtures("catalogue")
def test_a_step_re_signed_as_the_other_region_is_named(govservice: GovService) -> None:
    """Step 3 (acceptance, Rongjiang's) made to look signed by the district's key: the key is known but
    belongs to another region."""
    number = _walk(govservice)
    _sql(
        govservice,
        "UPDATE {steps} s SET key_id = (SELECT key_id FROM {steps} t"
        " WHERE t.application_no = s.application_no AND t.sequence = 0)"
        " WHERE application_no = %s AND sequence = 3",
        (number,),
    )
    answer = _verify(govservice, number)
    assert (answer.intact, answer.first_broken) == (False, 3)
    assert f"belongs to region {FILING}" in answer.problem


@pytest.mark.usefixtures("catalogue")
def test_unknown_or_unrelated_is_not_found(govservice: GovService) -> None:
    number = _walk(govservice)
    assert _refused(govservice, number, **clerk(UNRELATED)) == grpc.StatusCode.NOT_FOUND
    assert _refused(govservice, number, **clerk("522631")) == grpc.StatusCode.NOT_FOUND
    assert _refused(govservice, "GS-331004-20261201-XXXXXX", **clerk(FILING)) == grpc.StatusCode.NOT_FOUND
    assert _refused(govservice, "GS-331004-20261201-XXXXXX") == grpc.StatusCode.NOT_FOUND
    assert _refused(govservice, "", **clerk(FILING)) == grpc.StatusCode.INVALID_ARGUMENT
    # The public role may only track.
    assert _refused(govservice, number, roles=("public",)) == grpc.StatusCode.PERMISSION_DENIED
