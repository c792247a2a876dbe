"""The planner: (seed, scale, simulated clock) → an ordered stream of actions. Pure: no I/O, no wall clock,
no randomness but ``random.Random`` seeded from the seed.

An :class:`Action` is one RPC a participant of the district makes at a simulated moment: the service, the
RPC, the request as plain data (enum names, RFC 3339 times) and who calls (a caller kind the executor turns
into a token). What only the server can know (a site's id, an alert's id) is a :class:`Ref` to the answer
of an earlier action, named by its ``key``; the executor fills it in. Creates carry a request id derived
from the seed, the scale, the part of the plan and the action's index, so playing the same plan twice
stores nothing twice.

The plan has two parts. The *district* (parks, enterprises and devices, schools and hospitals with their
sensors, kitchens with staff and equipment, federations and chambers with their first members) depends on
the seed and the scale only, and is registered at the start. The *story* (telemetry, orders, detections and
warnings, the kitchens' day, chamber life, cross-region applications, and the reference incident once)
unfolds from the simulated start; its request ids also name the start, so a later run continues the
district instead of replaying an old day.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from services.simulator import registrations
from services.simulator.actions import LOCAL, Action, Draft, Ref, Schedule, digest, refs
from services.simulator.district import build_district
from services.simulator.stories import commerce, govservice, industry, kitchen, safety

__all__ = ["INCIDENT", "LOCAL", "MIN_DURATION", "SCENARIOS", "Action", "Ref", "digest", "plan"]

INCIDENT = "reference-incident"
SCENARIOS = ("district", INCIDENT)
# Room for the reference incident: its person recorded a minute in, its story told (compressed) after.
MIN_DURATION = timedelta(minutes=2)


def plan(
    seed: int,
    scale: float,
    start: datetime,
    duration: timedelta,
    *,
    scenario: str = "district",
) -> Iterator[Action]:
    """Every action of the run, in the order (and at the simulated moments) they happen."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if start.tzinfo is None:
        raise ValueError("start must carry a time zone")
    if duration < MIN_DURATION:
        raise ValueError(f"duration must be at least {MIN_DURATION}")
    start = start.astimezone(UTC).replace(microsecond=0)
    end = start + duration
    district = build_district(seed, scale)
    tag = f"sim{seed}-{'ri' if scenario == INCIDENT else 'd'}{scale:g}"
    story_tag = f"{tag}-{start:%Y%m%dT%H%M%S}"
    schedule = Schedule(end)
    catch_up: dict[str, list[Draft]] = {}
    if scenario == INCIDENT:
        school = district.schools[0]
        setup = list(registrations.site_drafts(start, school))
        safety.incident(schedule, district, school, start + timedelta(seconds=60), end)
    else:
        setup = list(registrations.district_drafts(start, district))
        # Reproducible draws by design (the same seed, the same story), not secrets.
        rng = random.Random(f"cityhub-story:{seed}:{scale!r}:{start.isoformat()}")  # noqa: S311
        industry.telemetry(schedule, district, start, rng)
        industry.orders(schedule, district, start, rng)
        safety.watch(schedule, district, start, rng)
        kitchen.play(schedule, district, start, end, rng, catch_up)
        commerce.play(schedule, district, start, rng)
        govservice.play(schedule, district, start, rng)
        # Early enough that a newcomer's `make run` shows it within minutes, whatever the run's length.
        offset = max(60.0, min(rng.uniform(180, 360), duration.total_seconds() * 0.3))
        safety.incident(schedule, district, district.schools[0], start + timedelta(seconds=offset), end)
    index = 0
    numbers = {True: itertools.count(), False: itertools.count()}
    for part, drafts in ((False, registrations.spliced(setup, catch_up)), (True, schedule.drain())):
        for draft in drafts:
            request = dict(draft.request)
            story = part or draft.story
            number = next(numbers[story])
            if draft.create:
                request = {"request_id": f"{story_tag if story else tag}-{number}", **request}
            needs = tuple(dict.fromkeys((*draft.needs, *refs(request))))
            yield Action(
                index=index,
                at=draft.at,
                service=draft.service,
                rpc=draft.rpc,
                request=request,
                caller=draft.caller,
                key=draft.key,
                needs=needs,
                step=draft.step,
                family=draft.family,
            )
            index += 1
