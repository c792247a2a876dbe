"""The district's registrations, sent at the start: parks, enterprises and their machines; schools and
hospitals with their sensors; kitchens with staff and equipment; federations, chambers and the founding
members. They depend on the seed and the scale alone (their request ids too)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from services.simulator.actions import LOCAL, TELEMETRY_EVERY_S, Draft, Ref, refs
from services.simulator.district import (
    DISTRICT_CODE,
    District,
    Enterprise,
    Kitchen,
    Site,
)

__all__ = [
    "chamber_of",
    "commerce_drafts",
    "district_drafts",
    "founding_members",
    "join",
    "kitchen_drafts",
    "site_drafts",
    "spliced",
]


def spliced(setup: list[Draft], catch_up: dict[str, list[Draft]]) -> Iterator[Draft]:
    """The registrations, each kitchen's catch-up right after its own (staff and equipment) registrations,
    but each staff member's morning check right after the member's own AddStaff.

    Why the checks go first: once a member is on the roster of a shift that has started, the kitchen's
    sweep bars the member (NO_CHECK) unless a check is on record, and a check sent after that is refused.
    A district started after 08:00 sends its morning late; with the checks at the end of the kitchen's
    block, a sweep falling between the roster and the checks barred about one kitchen in twelve. Right
    after each AddStaff, the window is one call long."""
    last: dict[str, int] = {}
    staff_at: dict[str, int] = {}
    for n, draft in enumerate(setup):
        owner = draft.key.split(".", 1)[0]
        if owner in catch_up:
            last[owner] = n
        if draft.rpc == "AddStaff":
            staff_at[draft.key] = n
    after: dict[int, list[Draft]] = {}
    for owner, drafts in catch_up.items():
        for draft in drafts:
            member = (
                next(refs(draft.request.get("staff_id")), "") if draft.rpc == "RecordMorningCheck" else ""
            )
            after.setdefault(staff_at.get(member, last[owner]), []).append(draft)
    for n, draft in enumerate(setup):
        yield draft
        yield from after.get(n, ())


def site_drafts(at: datetime, site: Site) -> Iterator[Draft]:
    yield Draft(
        at,
        "safety",
        "RegisterSite",
        {
            "name": site.name,
            "kind": site.kind,
            "address": f"{site.town}, Luqiao District, Taizhou",
            "division_code": DISTRICT_CODE,
            "town": site.town,
            "location": {"latitude": site.latitude, "longitude": site.longitude},
            "duty_room": {"name": "Gate duty room", "phone": "0576-8288 1234"},
        },
        key=site.key,
        family="district",
    )
    for key, kind, zone, name in site.sensors:
        yield Draft(
            at,
            "safety",
            "RegisterSensor",
            {
                "site_id": Ref(site.key, "site.site_id"),
                "kind": kind,
                "zone": zone,
                "name": name,
                "device_code": key.upper(),
            },
            key=key,
            family="district",
        )


def district_drafts(at: datetime, district: District) -> Iterator[Draft]:
    for park in district.parks:
        yield Draft(
            at,
            "industry",
            "RegisterPark",
            {"name": park.name, "division_code": DISTRICT_CODE, "address": f"{park.town}, Luqiao"},
            key=park.key,
            family="district",
        )
    for enterprise in district.enterprises:
        yield Draft(
            at,
            "industry",
            "OnboardEnterprise",
            {
                "credit_code": enterprise.credit_code,
                "name": enterprise.name,
                "sector": enterprise.sector,
                "park_id": Ref(enterprise.park.key, "park.park_id"),
                "address": f"{enterprise.park.town}, Luqiao",
            },
            key=enterprise.key,
            family="district",
        )
        for device in enterprise.devices:
            yield Draft(
                at,
                "industry",
                "RegisterDevice",
                {
                    "serial_number": device.serial,
                    "credit_code": enterprise.credit_code,
                    "workshop": device.workshop,
                    "machine_type": device.machine_type,
                    "rated_power_kw": device.rated_power_kw,
                    "ideal_cycle_seconds": 30.0,
                    "sample_interval_ms": TELEMETRY_EVERY_S * 1000,
                },
                key=device.key,
                needs=(enterprise.key,),
                family="district",
            )
    for site in district.sites:
        yield from site_drafts(at, site)
    for kitchen in district.kitchens:
        yield from kitchen_drafts(at, kitchen)
    yield from commerce_drafts(at, district)


def kitchen_drafts(at: datetime, kitchen: Kitchen) -> Iterator[Draft]:
    kid = Ref(kitchen.key, "kitchen.kitchen_id")
    yield Draft(
        at,
        "kitchen",
        "RegisterKitchen",
        {
            "site_id": Ref(kitchen.site.key, "site.site_id"),
            "name": kitchen.name,
            "operator": {"kind": "OPERATOR_KIND_SCHOOL_RUN", "name": kitchen.site.name},
            "meals_per_day": 600,
            "location": {"latitude": kitchen.site.latitude, "longitude": kitchen.site.longitude},
            "shifts": [{"name": "lunch", "start_time": "08:00", "end_time": "13:30"}],
            "commitment": "Ingredients traceable to every lot; the prep room on camera during service.",
        },
        key=kitchen.key,
        family="district",
    )
    for n, (key, name, identity, role) in enumerate(kitchen.staff):
        yield Draft(
            at,
            "kitchen",
            "AddStaff",
            {
                "kitchen_id": kid,
                "name": name,
                "identity_number": identity,
                "role": role,
                "health_certificate_number": f"JK-{kitchen.key[7:]:0>3}-{n:02d}",
                "health_certificate_expiry": (at.astimezone(LOCAL).date() + timedelta(days=300)).isoformat(),
                "face_template_ref": f"face/{key}",
                "shifts": ["lunch"],
            },
            key=key,
            family="district",
        )
    for key, kind, name in kitchen.equipment:
        yield Draft(
            at,
            "kitchen",
            "RegisterEquipment",
            {"kitchen_id": kid, "kind": kind, "name": name},
            key=key,
            family="district",
        )


def chamber_of(district: District, enterprise: Enterprise) -> str:
    trade = [
        c
        for c in district.chambers
        if c.kind == "CHAMBER_KIND_TRADE" and enterprise.sector.endswith(c.sector)
    ]
    return (trade or list(district.chambers))[0].key


def join(at: datetime, district: District, enterprise: Enterprise) -> Draft:
    chamber = chamber_of(district, enterprise)
    return Draft(
        at,
        "commerce",
        "ApplyForMembership",
        {
            "chamber_id": Ref(chamber, "chamber.chamber_id"),
            "credit_code": enterprise.credit_code,
            "enterprise_name": enterprise.name,
            "town": enterprise.park.town,
        },
        key=f"member:{enterprise.key}",
        needs=(enterprise.key,),
        family="commerce",
    )


def founding_members(district: District) -> list[Enterprise]:
    """The first half of the enterprises are members from the start; the rest join during the run."""
    return list(district.enterprises[: max(1, len(district.enterprises) // 2)])


def commerce_drafts(at: datetime, district: District) -> Iterator[Draft]:
    federations = (
        (
            "fed.province",
            "Zhejiang Federation of Industry and Commerce",
            "FEDERATION_LEVEL_PROVINCE",
            "330000",
            "",
        ),
        (
            "fed.city",
            "Taizhou Federation of Industry and Commerce",
            "FEDERATION_LEVEL_CITY",
            "331000",
            "fed.province",
        ),
        (
            "fed.county",
            "Luqiao Federation of Industry and Commerce",
            "FEDERATION_LEVEL_COUNTY",
            DISTRICT_CODE,
            "fed.city",
        ),
    )
    for key, name, level, code, parent in federations:
        request: dict[str, Any] = {"name": name, "level": level, "division_code": code}
        if parent:
            request["parent_id"] = Ref(parent, "federation.federation_id")
        yield Draft(at, "commerce", "CreateFederation", request, key=key, family="district")
    for chamber in district.chambers:
        request = {
            "federation_id": Ref(chamber.federation, "federation.federation_id"),
            "name": chamber.name,
            "kind": chamber.kind,
            "division_code": DISTRICT_CODE,
            "join_rule": "JOIN_RULE_AUTO_APPROVE_KNOWN",
        }
        if chamber.sector:
            request["sector"] = chamber.sector
        yield Draft(at, "commerce", "CreateChamber", request, key=chamber.key, family="district")
        yield Draft(
            at,
            "commerce",
            "AddChamberStaff",
            {
                "chamber_id": Ref(chamber.key, "chamber.chamber_id"),
                "subject": f"staff-{chamber.key}",
                "name": "Chamber officer",
                "role": "STAFF_ROLE_OFFICER",
            },
            key=f"{chamber.key}.officer",
            family="district",
        )
    for enterprise in founding_members(district):
        draft = join(at, district, enterprise)
        draft.family = "district"
        yield draft
