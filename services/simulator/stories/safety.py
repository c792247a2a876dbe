"""Safety's story: detections all day, a few warnings taken to the end by the command centre, and the
reference incident."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta
from typing import Any

from services.simulator.actions import Draft, Ref, Schedule, poisson, stamp
from services.simulator.district import District, Site, identity_number

__all__ = ["incident", "watch"]

# Warnings: 1,350 in the first year, about four a day at scale 1.
_WARNINGS_PER_DAY = 4.0


def _detection(sensor: str, kind: str, at: datetime, confidence: float, **extra: Any) -> dict[str, Any]:
    return {
        "sensor_id": Ref(sensor, "sensor.sensor_id"),
        "kind": kind,
        "detected_at": stamp(at),
        "confidence": confidence,
        "snapshot_ref": f"snap/{sensor}/{int(at.timestamp())}",
        **extra,
    }


def watch(schedule: Schedule, district: District, start: datetime, rng: random.Random) -> None:
    """Low-risk detections all day; a few warnings a day, each taken by the command centre to the end."""
    batches = itertools.count()

    def routine(at: datetime) -> None:
        site = rng.choice(district.sites)
        sensor = site.sensors[1][0]
        kind = rng.choice(("DETECTION_KIND_LOITERING", "DETECTION_KIND_CROWDING"))
        schedule.add(
            Draft(
                at,
                "safety",
                "ReportDetections",
                {
                    "detections": [
                        _detection(sensor, kind, at - timedelta(seconds=5), round(rng.uniform(0.6, 0.8), 2))
                    ]
                },
                key=f"routine{next(batches)}",
                family="safety",
            )
        )

    warnings = itertools.count()

    def warning(at: datetime) -> None:
        n = next(warnings)
        site = rng.choice(district.sites)
        key = f"warning{n}"
        if rng.random() < 0.5:
            schedule.add(
                Draft(
                    at,
                    "safety",
                    "RaiseAlarm",
                    {
                        "site_id": Ref(site.key, "site.site_id"),
                        "sensor_id": Ref(site.sensors[3][0], "sensor.sensor_id"),
                        "pressed_at": stamp(at),
                        "note": rng.choice(
                            ("argument at the gate", "stranger refusing to leave", "pressed by mistake")
                        ),
                    },
                    key=key,
                    family="safety",
                )
            )
            alert = Ref(key, "alert.alert_id")
        else:
            camera = site.sensors[0][0]
            detections = [
                _detection(camera, "DETECTION_KIND_PERIMETER_BREACH", at - timedelta(seconds=8), 0.9),
                _detection(camera, "DETECTION_KIND_WEAPON", at - timedelta(seconds=6), 0.84, label="knife"),
            ]
            schedule.add(
                Draft(at, "safety", "ReportDetections", {"detections": detections}, key=key, family="safety")
            )
            alert = Ref(key, "assessments.0.alert_id")
        _command_centre(schedule, rng, key, alert, at, false_alarm=rng.random() < 0.4)

    schedule.every(start + timedelta(seconds=rng.uniform(30, 90)), lambda: 300.0 / district.scale, routine)
    per_day = _WARNINGS_PER_DAY * district.scale
    schedule.every(start + timedelta(seconds=poisson(rng, per_day)()), poisson(rng, per_day), warning)


def _command_centre(
    schedule: Schedule, rng: random.Random, key: str, alert: Ref, at: datetime, *, false_alarm: bool
) -> None:
    acked = at + timedelta(seconds=rng.randint(40, 180))
    schedule.add(
        Draft(
            acked,
            "safety",
            "AcknowledgeAlert",
            {"alert_id": alert, "note": "duty room on it"},
            key=f"{key}.ack",
            needs=(key,),
            family="safety",
        )
    )
    if false_alarm:
        schedule.add(
            Draft(
                acked + timedelta(minutes=rng.randint(3, 10)),
                "safety",
                "ResolveAlert",
                {
                    "alert_id": alert,
                    "outcome": "ALERT_OUTCOME_FALSE_ALARM",
                    "note": "checked on video: no threat",
                },
                caller="operator",
                needs=(f"{key}.ack",),
                family="safety",
            )
        )
        return
    sent = acked + timedelta(minutes=rng.randint(1, 3))
    schedule.add(
        Draft(
            sent,
            "safety",
            "DispatchUnits",
            {
                "alert_id": alert,
                "units": [{"kind": "UNIT_KIND_POLICE_STATION", "name": "Luqiao police station car 1"}],
            },
            caller="operator",
            key=f"{key}.dispatch",
            needs=(f"{key}.ack",),
            family="safety",
        )
    )
    unit = Ref(f"{key}.dispatch", "unit_ids.0")
    moment, previous = sent, f"{key}.dispatch"
    for status in ("UNIT_STATUS_EN_ROUTE", "UNIT_STATUS_ARRIVED"):
        moment += timedelta(minutes=rng.randint(2, 8))
        step = f"{key}.{status.rsplit('_', 1)[1].lower()}"
        schedule.add(
            Draft(
                moment,
                "safety",
                "UpdateUnitStatus",
                {"alert_id": alert, "unit_id": unit, "status": status},
                key=step,
                needs=(previous,),
                family="safety",
            )
        )
        previous = step
    schedule.add(
        Draft(
            moment + timedelta(minutes=rng.randint(5, 20)),
            "safety",
            "ResolveAlert",
            {"alert_id": alert, "outcome": "ALERT_OUTCOME_RESOLVED", "note": "handled on site"},
            caller="operator",
            needs=(previous,),
            family="safety",
        )
    )


_UNITS = (
    ("UNIT_KIND_POLICE_STATION", "Luqiao police station car 3"),
    ("UNIT_KIND_PATROL_SWAT", "Patrol/SWAT team 2"),
    ("UNIT_KIND_POLICE_DRONE", "Drone 1"),
    ("UNIT_KIND_PUBLIC_ORDER", "Public-order squad 5"),
)


def incident(schedule: Schedule, district: District, school: Site, at: datetime, end: datetime) -> None:
    """The reference incident, once: a person with a psychiatric history who bought loose petrol three days
    ago climbs the school's north wall carrying a baseball bat; the duty room sees the critical alert, the
    guard presses the one-click alarm, the command centre dispatches four units, police resolve it."""
    rng = random.Random(f"cityhub-incident:{district.seed}")  # noqa: S311 - reproducible, not a secret
    # Compressed when the run is short, so the whole story is always told.
    span = min(timedelta(minutes=14), max(timedelta(seconds=30), end - at))
    beat = span / 14

    def draft(minute: float, rpc: str, request: dict[str, Any], **kw: Any) -> None:
        schedule.add(Draft(at + beat * minute, "safety", rpc, request, family="incident", **kw))

    def before(seconds: int, rpc: str, request: dict[str, Any], **kw: Any) -> None:
        schedule.add(Draft(at - timedelta(seconds=seconds), "safety", rpc, request, family="incident", **kw))

    # Police hold the person on record; a filling station's feed reported the purchase.
    before(
        40,
        "RecordPerson",
        {
            "identity_number": identity_number(rng),
            "name": "Wang Ermazi",
            "risk_flags": ["RISK_FLAG_PSYCHIATRIC_HISTORY"],
        },
        caller="police",
        key="incident.person",
    )
    person = Ref("incident.person", "person_token")
    before(
        20,
        "RecordHazardousPurchase",
        {
            "person_token": person,
            "item": "HAZARDOUS_ITEM_LOOSE_PETROL",
            "description": "5 L into a plastic can",
            "quantity": 5.0,
            "unit": "L",
            "purchased_at": stamp(at - timedelta(days=3, hours=2)),
            "place": "Luqiao Tongyu filling station",
        },
        key="incident.petrol",
    )
    camera, faces, button = school.sensors[0][0], school.sensors[2][0], school.sensors[3][0]
    draft(
        0,
        "ReportDetections",
        {
            "detections": [
                _detection(camera, "DETECTION_KIND_PERIMETER_BREACH", at - timedelta(seconds=3), 0.93),
                _detection(
                    camera, "DETECTION_KIND_WEAPON", at - timedelta(seconds=2), 0.88, label="baseball bat"
                ),
                _detection(
                    faces, "DETECTION_KIND_FACE_MATCH", at - timedelta(seconds=1), 0.91, person_token=person
                ),
            ]
        },
        key="incident.detected",
        needs=("incident.petrol",),
    )
    alert = Ref("incident.detected", "assessments.0.alert_id")
    draft(
        0.5,
        "RaiseAlarm",
        {
            "site_id": Ref(school.key, "site.site_id"),
            "sensor_id": Ref(button, "sensor.sensor_id"),
            "pressed_at": stamp(at + beat * 0.5),
            "note": "pupils moved to the safe area",
        },
        key="incident.alarm",
        needs=("incident.detected",),
    )
    draft(
        1,
        "AcknowledgeAlert",
        {"alert_id": alert, "note": "guards at the gate with video intercoms"},
        key="incident.ack",
        needs=("incident.alarm",),
    )
    draft(
        2,
        "DispatchUnits",
        {"alert_id": alert, "units": [{"kind": k, "name": n} for k, n in _UNITS]},
        caller="operator",
        key="incident.dispatch",
        needs=("incident.ack",),
    )
    previous = "incident.dispatch"
    for minute, status in ((4, "UNIT_STATUS_EN_ROUTE"), (8, "UNIT_STATUS_ARRIVED")):
        for n in range(len(_UNITS)):
            key = f"incident.unit{n}.{status.rsplit('_', 1)[1].lower()}"
            draft(
                minute + n * 0.1,
                "UpdateUnitStatus",
                {"alert_id": alert, "unit_id": Ref("incident.dispatch", f"unit_ids.{n}"), "status": status},
                key=key,
                needs=(previous,),
            )
            previous = key
    draft(
        13.9,
        "ResolveAlert",
        {
            "alert_id": alert,
            "outcome": "ALERT_OUTCOME_RESOLVED",
            "note": "person detained unharmed; joint response",
        },
        caller="police",
        key="incident.resolved",
        needs=(previous,),
    )
