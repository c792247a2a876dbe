"""Cross-region applications."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta
from typing import Any

from services.simulator.actions import Draft, Ref, Schedule
from services.simulator.district import DISTRICT_CODE, PARTNERS, District, identity_number

__all__ = ["play"]

_SURNAMES = ("Yang", "Long", "Wu", "Pan", "Shi")


_MATERIALS = {
    "social_insurance_transfer": ("id_card_copy", "transfer_application_form", "insurance_payment_record"),
    "medical_insurance_filing": ("id_card_copy", "filing_form", "residence_or_work_proof"),
    "residence_permit": ("id_card_copy", "photo", "residence_proof", "employment_proof"),
    "business_licence_change": (
        "change_application_form",
        "business_licence_original",
        "shareholder_resolution",
        "legal_representative_id",
    ),
    "provident_fund_withdrawal": (
        "id_card_copy",
        "withdrawal_application",
        "bank_card_copy",
        "termination_proof",
    ),
}


def play(schedule: Schedule, district: District, start: datetime, rng: random.Random) -> None:
    """Cross-region applications: filed here for a partner place or there for the district, received and
    forwarded by the filing region's clerk, accepted and completed by the handling region's."""
    numbers = itertools.count()

    def application(at: datetime) -> None:
        n = next(numbers)
        partner, outward, inward = rng.choice(PARTNERS)
        filed_here = rng.random() < 0.5
        filing, handling = (DISTRICT_CODE, partner) if filed_here else (partner, DISTRICT_CODE)
        item = rng.choice(outward if filed_here else inward)
        request: dict[str, Any] = {
            "item_code": item,
            "filing_region": filing,
            "handling_region": handling,
            "materials": list(_MATERIALS[item]),
        }
        if item == "business_licence_change":
            enterprise = rng.choice(district.enterprises)
            request["enterprise"] = {"credit_code": enterprise.credit_code, "name": enterprise.name}
            needs: tuple[str, ...] = (enterprise.key,)
        else:
            request["person"] = {
                "identity_number": identity_number(rng, partner),
                "name": f"{rng.choice(_SURNAMES)} {rng.choice(('Ming', 'Hua', 'Gang', 'Lan'))}",
                "phone": f"13{rng.randint(100000000, 999999999)}",
            }
            needs = ()
        key = f"application{n}"
        schedule.add(
            Draft(
                at,
                "govservice",
                "FileApplication",
                request,
                caller=f"clerk:{filing}",
                key=key,
                needs=needs,
                family="govservice",
            )
        )
        moment, previous = at, key
        number = Ref(key, "application.application_no")
        extra = {"CompleteApplication": {"result_ref": f"result/{key}"}}
        for rpc, region, wait in (
            ("ReceiveApplication", filing, rng.randint(10, 40)),
            ("ForwardApplication", filing, rng.randint(20, 90)),
            ("AcceptApplication", handling, rng.randint(30, 180)),
            ("CompleteApplication", handling, rng.randint(120, 600)),
        ):
            moment += timedelta(minutes=wait)
            step = f"{key}.{rpc[:-11].lower()}"
            schedule.add(
                Draft(
                    moment,
                    "govservice",
                    rpc,
                    {"application_no": number, **extra.get(rpc, {})},
                    caller=f"clerk:{region}",
                    key=step,
                    needs=(previous,),
                    step=True,
                    create=False,
                    family="govservice",
                )
            )
            previous = step

    schedule.every(
        start + timedelta(seconds=rng.uniform(60, 240)), lambda: 1800.0 / district.scale, application
    )
