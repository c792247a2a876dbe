"""Chamber life."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta

from services.simulator import registrations
from services.simulator.actions import LOCAL, Draft, Ref, Schedule, stamp
from services.simulator.district import DISTRICT_CODE, District, Enterprise
from services.simulator.registrations import chamber_of, founding_members

__all__ = ["play"]


def play(schedule: Schedule, district: District, start: datetime, rng: random.Random) -> None:
    """Chamber life: the other enterprises join one by one; activities announced and signed up for; supply
    meets demand; members ask for services, officers take them up and resolve them."""
    members = founding_members(district)
    # Only a chamber's own members may sign up for its activities (commerce refuses another chamber's).
    members_of: dict[str, list[Enterprise]] = {}
    for enterprise in members:
        members_of.setdefault(chamber_of(district, enterprise), []).append(enterprise)
    joiners = iter(district.enterprises[len(members) :])

    def next_join(at: datetime) -> None:
        enterprise = next(joiners, None)
        if enterprise is not None:
            schedule.add(registrations.join(at, district, enterprise))

    def member() -> tuple[Enterprise, str]:
        enterprise = rng.choice(members)
        return enterprise, f"member:{enterprise.key}"

    activities = itertools.count()

    def activity(at: datetime) -> None:
        n = next(activities)
        chamber = rng.choice(district.chambers)
        key = f"activity{n}"
        starts = at + timedelta(days=7)
        schedule.add(
            Draft(
                at,
                "commerce",
                "CreateActivity",
                {
                    "chamber_id": Ref(chamber.key, "chamber.chamber_id"),
                    "title": rng.choice(
                        (
                            "Digital workshop open day",
                            "Export credit briefing",
                            "Future factory study tour",
                            "Lean production forum",
                        )
                    ),
                    "place": "Luqiao Industry 4.0 centre",
                    "starts_at": stamp(starts),
                    "capacity": 80,
                    "sign_up_deadline": stamp(starts - timedelta(days=1)),
                },
                key=key,
                family="commerce",
            )
        )
        own = members_of.get(chamber.key, [])
        for m, joiner in enumerate(rng.sample(own, min(3, len(own)))):
            membership = f"member:{joiner.key}"
            schedule.add(
                Draft(
                    at + timedelta(minutes=10 * (m + 1)),
                    "commerce",
                    "SignUpForActivity",
                    {
                        "activity_id": Ref(key, "activity.activity_id"),
                        "membership_id": Ref(membership, "membership.membership_id"),
                    },
                    needs=(key,),
                    family="commerce",
                )
            )

    matches = itertools.count()

    def match(at: datetime) -> None:
        n = next(matches)
        category = rng.choice(("castings", "injection moulds", "steel plate", "logistics", "copper rod"))
        if len(members) < 2:
            return
        # Two different enterprises: a member cannot meet its own demand.
        seller, buyer = (f"member:{e.key}" for e in rng.sample(members, 2))
        valid = (at.astimezone(LOCAL).date() + timedelta(days=30)).isoformat()
        for side, who in (("POST_KIND_SUPPLY", seller), ("POST_KIND_DEMAND", buyer)):
            schedule.add(
                Draft(
                    at,
                    "commerce",
                    "CreatePost",
                    {
                        "membership_id": Ref(who, "membership.membership_id"),
                        "kind": side,
                        "category": category,
                        "division_code": DISTRICT_CODE,
                        "quantity": float(rng.randint(1, 50) * 10),
                        "unit": "t" if category != "logistics" else "trips",
                        "description": f"{category} {'offered' if side.endswith('SUPPLY') else 'wanted'}",
                        "valid_until": valid,
                    },
                    key=f"post{n}.{side[10:].lower()}",
                    family="commerce",
                )
            )
        interest = at + timedelta(minutes=15)
        key = f"match{n}"
        schedule.add(
            Draft(
                interest,
                "commerce",
                "ExpressInterest",
                {
                    "post_id": Ref(f"post{n}.demand", "post.post_id"),
                    "counterpart_post_id": Ref(f"post{n}.supply", "post.post_id"),
                },
                key=key,
                family="commerce",
            )
        )
        # The demand side's interest is its acceptance; the supplier accepts to close the match.
        for m, side in enumerate(("POST_KIND_SUPPLY",)):
            schedule.add(
                Draft(
                    interest + timedelta(minutes=20 * (m + 1)),
                    "commerce",
                    "AcceptMatch",
                    {
                        "match_id": Ref(key, "match.match_id"),
                        "side": side,
                    },
                    needs=(key,),
                    step=True,
                    create=False,
                    family="commerce",
                )
            )

    requests = itertools.count()

    def service_request(at: datetime) -> None:
        n = next(requests)
        enterprise, membership = member()
        key = f"request{n}"
        kind = rng.choice(
            (
                "SERVICE_TYPE_FINANCING",
                "SERVICE_TYPE_LEGAL",
                "SERVICE_TYPE_POLICY_CONSULTATION",
                "SERVICE_TYPE_TALENT",
            )
        )
        schedule.add(
            Draft(
                at,
                "commerce",
                "SubmitServiceRequest",
                {
                    "membership_id": Ref(membership, "membership.membership_id"),
                    "type": kind,
                    "subject": kind.split("_", 2)[2].replace("_", " ").capitalize() + " question",
                    "description": "We would like advice from the chamber.",
                },
                key=key,
                family="commerce",
            )
        )
        officer = f"{chamber_of(district, enterprise)}.officer"
        assigned = at + timedelta(minutes=rng.randint(20, 60))
        schedule.add(
            Draft(
                assigned,
                "commerce",
                "AssignServiceRequest",
                {
                    "service_request_id": Ref(key, "service_request.service_request_id"),
                    "staff_id": Ref(officer, "staff.staff_id"),
                },
                key=f"{key}.assigned",
                needs=(key,),
                step=True,
                create=False,
                family="commerce",
            )
        )
        schedule.add(
            Draft(
                assigned + timedelta(hours=rng.randint(1, 4)),
                "commerce",
                "ResolveServiceRequest",
                {
                    "service_request_id": Ref(key, "service_request.service_request_id"),
                    "resolution": "Advice given; documents sent by mail.",
                },
                needs=(f"{key}.assigned",),
                step=True,
                create=False,
                family="commerce",
            )
        )

    scale = district.scale
    schedule.every(start + timedelta(seconds=rng.uniform(40, 120)), lambda: 600.0 / scale, next_join)
    schedule.every(start + timedelta(seconds=rng.uniform(60, 200)), lambda: 3 * 3600.0 / scale, activity)
    schedule.every(start + timedelta(seconds=rng.uniform(60, 200)), lambda: 1800.0 / scale, match)
    schedule.every(start + timedelta(seconds=rng.uniform(60, 200)), lambda: 2400.0 / scale, service_request)
