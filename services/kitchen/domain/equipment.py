"""Equipment and its readings: the kinds of unit, their limits (defaults per kind, overridable per unit),
the commands of the equipment family, and the rules the readings consumer applies to each unit, as a pure
state machine serialised into ``equipment.state``.

The rules, per unit, in read_at order (:func:`apply_readings`):

* cold units (fridge, freezer) are out of range above their maximum, hot holding below its minimum. Out of
  range continuously for ``alert_after_minutes`` raises ONE cold-chain alert; it clears only once the unit
  has been back inside the limit by the hysteresis (fridge: at or below 8 - 1 = 7 °C) continuously for
  ``clear_after_minutes``. A reading inside the limit but not by the hysteresis neither clears nor
  restarts the clear window's count, it breaks it: so noise around the limit never makes an alert flap.
* a disinfection cabinet's cycle is a run of readings with running=true, ending at the first
  running=false reading; it is short when it lasted less than ``cycle_min_minutes`` or any of its
  readings was cooler than ``cycle_min_temperature_c``.
* a UV lamp's running time is summed per local day; the monitor judges a day once it is over.
* every unit: the interval a reading describes runs from its read_at to the next reading's, capped at the
  unit's offline window (a unit silent longer was not observed). Figures per local day (split at local
  midnight): readings, seconds out of range, UV seconds, seconds online inside the kitchen's service hours.
* a reading older than the last one applied (late, out of order) is counted in the day's readings but
  moves nothing else: the state machine only goes forward in time, so a late reading can never re-raise
  or clear an alert after the fact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from services.platform.errors import Violations
from services.platform.idempotency import check_request_id

__all__ = [
    "DAYS_MAX",
    "EQUIPMENT_MAX_C",
    "EQUIPMENT_MIN_C",
    "AlertCleared",
    "AlertRaised",
    "CycleFinished",
    "DayFigures",
    "Equipment",
    "EquipmentDay",
    "EquipmentKind",
    "EquipmentLimits",
    "EquipmentStatus",
    "Happening",
    "LimitOverrides",
    "ListEquipment",
    "ListEquipmentDays",
    "OfflineCleared",
    "Outcome",
    "Reading",
    "ReadingInput",
    "ReadingRejection",
    "RegisterEquipment",
    "Screened",
    "UnitRef",
    "UnitState",
    "apply_readings",
    "check_ingest",
    "default_limits",
    "effective_limits",
    "parse_date",
    "screen_readings",
    "service_overlap_s",
    "service_seconds_of",
    "split_by_day",
    "uv_days_to_judge",
]

# Equipment temperatures outside this range are a broken probe, not a reading.
EQUIPMENT_MIN_C = -40.0
EQUIPMENT_MAX_C = 150.0
# ListEquipmentDays covers at most this many days.
DAYS_MAX = 366
_NAME_MAX = 200
_MINUTES_MAX = 24 * 60
_HYSTERESIS_MAX = 50.0


class EquipmentKind(StrEnum):
    FRIDGE = "FRIDGE"
    FREEZER = "FREEZER"
    HOT_HOLDING = "HOT_HOLDING"
    DISINFECTION_CABINET = "DISINFECTION_CABINET"
    UV_LAMP = "UV_LAMP"
    CAMERA = "CAMERA"

    @property
    def holds_temperature(self) -> bool:
        """Cold units and hot holding: the cold-chain rules apply."""
        return self in _HOLDING

    @property
    def measures_temperature(self) -> bool:
        """Whether its readings' temperature means anything (UV lamps and cameras send none)."""
        return self not in (EquipmentKind.UV_LAMP, EquipmentKind.CAMERA)


_HOLDING = frozenset({EquipmentKind.FRIDGE, EquipmentKind.FREEZER, EquipmentKind.HOT_HOLDING})


class EquipmentStatus(StrEnum):
    AWAITING = "AWAITING"
    OK = "OK"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    ALERTING = "ALERTING"
    OFFLINE = "OFFLINE"


@dataclass(frozen=True, slots=True)
class EquipmentLimits:
    """A unit's effective limits; a field that does not apply to the unit's kind is None."""

    max_temperature_c: float | None = None
    min_temperature_c: float | None = None
    alert_after_minutes: int | None = None
    clear_after_minutes: int | None = None
    hysteresis_c: float | None = None
    cycle_min_minutes: int | None = None
    cycle_min_temperature_c: float | None = None
    uv_daily_min_minutes: int | None = None
    offline_after_minutes: int = 10

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _LIMIT_FIELDS if getattr(self, name) is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EquipmentLimits:
        return cls(**{name: data[name] for name in _LIMIT_FIELDS if name in data})

    @property
    def offline_after(self) -> timedelta:
        return timedelta(minutes=self.offline_after_minutes)


_LIMIT_FIELDS = (
    "max_temperature_c",
    "min_temperature_c",
    "alert_after_minutes",
    "clear_after_minutes",
    "hysteresis_c",
    "cycle_min_minutes",
    "cycle_min_temperature_c",
    "uv_daily_min_minutes",
    "offline_after_minutes",
)
_HOLDING_WINDOWS = {"alert_after_minutes": 15, "clear_after_minutes": 10, "hysteresis_c": 1.0}
# The defaults of each kind (issue 10 and docs/services/kitchen.md). Disinfection: a cycle of at least
# 15 minutes with every reading at or above 120 °C (the usual hot-air tableware cabinet programme).
_DEFAULTS: dict[EquipmentKind, EquipmentLimits] = {
    EquipmentKind.FRIDGE: EquipmentLimits(max_temperature_c=8.0, **_HOLDING_WINDOWS),  # type: ignore[arg-type]
    EquipmentKind.FREEZER: EquipmentLimits(max_temperature_c=-12.0, **_HOLDING_WINDOWS),  # type: ignore[arg-type]
    EquipmentKind.HOT_HOLDING: EquipmentLimits(min_temperature_c=60.0, **_HOLDING_WINDOWS),  # type: ignore[arg-type]
    EquipmentKind.DISINFECTION_CABINET: EquipmentLimits(cycle_min_minutes=15, cycle_min_temperature_c=120.0),
    EquipmentKind.UV_LAMP: EquipmentLimits(uv_daily_min_minutes=30),
    EquipmentKind.CAMERA: EquipmentLimits(),
}


def default_limits(kind: EquipmentKind) -> EquipmentLimits:
    return _DEFAULTS[kind]


@dataclass(frozen=True, slots=True)
class LimitOverrides:
    """The limits a registration set (None: keep the kind's default)."""

    max_temperature_c: float | None = None
    min_temperature_c: float | None = None
    alert_after_minutes: int | None = None
    clear_after_minutes: int | None = None
    hysteresis_c: float | None = None
    cycle_min_minutes: int | None = None
    cycle_min_temperature_c: float | None = None
    uv_daily_min_minutes: int | None = None
    offline_after_minutes: int | None = None

    def check(self, violations: Violations) -> None:
        for name in ("max_temperature_c", "min_temperature_c", "cycle_min_temperature_c"):
            value = getattr(self, name)
            if value is not None and not (
                math.isfinite(value) and EQUIPMENT_MIN_C <= value <= EQUIPMENT_MAX_C
            ):
                violations.add(
                    f"limits.{name}", f"must be between {EQUIPMENT_MIN_C:g} and {EQUIPMENT_MAX_C:g}"
                )
        for name, lowest in (
            ("alert_after_minutes", 0),
            ("clear_after_minutes", 0),
            ("cycle_min_minutes", 1),
            ("uv_daily_min_minutes", 0),
            ("offline_after_minutes", 1),
        ):
            value = getattr(self, name)
            if value is not None and not lowest <= value <= _MINUTES_MAX:
                violations.add(f"limits.{name}", f"must be between {lowest} and {_MINUTES_MAX} minutes")
        if self.hysteresis_c is not None and not (
            math.isfinite(self.hysteresis_c) and 0 <= self.hysteresis_c <= _HYSTERESIS_MAX
        ):
            violations.add("limits.hysteresis_c", f"must be between 0 and {_HYSTERESIS_MAX:g} degrees")


def effective_limits(kind: EquipmentKind, overrides: LimitOverrides) -> EquipmentLimits:
    """The kind's defaults with the overrides that apply to it; an override of a field the kind does
    not have (a maximum temperature on a UV lamp) is ignored."""
    base = default_limits(kind)
    changes = {
        name: getattr(overrides, name)
        for name in _LIMIT_FIELDS
        if getattr(overrides, name) is not None and (getattr(base, name) is not None)
    }
    return replace(base, **changes)


@dataclass(frozen=True, slots=True)
class Equipment:
    equipment_id: str
    kitchen_id: str
    kind: EquipmentKind
    name: str
    limits: EquipmentLimits
    status: EquipmentStatus
    last_reading_at: datetime | None
    last_temperature_c: float | None
    registered_at: datetime


# --- commands ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterEquipment:
    request_id: str
    kitchen_id: str
    kind: EquipmentKind | None
    name: str
    limits: LimitOverrides

    def check(self) -> None:
        violations = Violations()
        check_request_id(violations, self.request_id)
        if not self.kitchen_id:
            violations.add("kitchen_id", "is required")
        if self.kind is None:
            violations.add("kind", "is required")
        if len(self.name) > _NAME_MAX:
            violations.add("name", f"must be at most {_NAME_MAX} characters")
        self.limits.check(violations)
        if self.kind is not None and not violations:
            limits = effective_limits(self.kind, self.limits)
            if (
                self.kind is EquipmentKind.FREEZER
                and limits.max_temperature_c is not None
                and limits.max_temperature_c > 0
            ):
                violations.add("limits.max_temperature_c", "a freezer's maximum must be at or below 0 °C")
        violations.check()


@dataclass(frozen=True, slots=True)
class ListEquipment:
    kitchen_id: str
    kind: EquipmentKind | None

    def check(self) -> None:
        violations = Violations()
        if not self.kitchen_id:
            violations.add("kitchen_id", "is required")
        violations.check()


def parse_date(violations: Violations, field_name: str, text: str) -> date | None:
    """A YYYY-MM-DD date, or None with the field named."""
    if not text:
        violations.add(field_name, "is required (YYYY-MM-DD)")
        return None
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or len(text) != 10:
        violations.add(field_name, "must be a date written YYYY-MM-DD")
        return None
    return parsed


@dataclass(frozen=True, slots=True)
class ListEquipmentDays:
    kitchen_id: str
    equipment_id: str
    from_date: str
    to_date: str

    def check(self) -> tuple[date, date]:
        violations = Violations()
        if not self.kitchen_id:
            violations.add("kitchen_id", "is required")
        first = parse_date(violations, "from_date", self.from_date)
        last = parse_date(violations, "to_date", self.to_date)
        if first is not None and last is not None:
            if last < first:
                violations.add("to_date", "must not be before from_date")
            elif (last - first).days + 1 > DAYS_MAX:
                violations.add("to_date", f"the period spans at most {DAYS_MAX} days")
        violations.check()
        assert first is not None, "checked"
        assert last is not None, "checked"
        return first, last


@dataclass(frozen=True, slots=True)
class EquipmentDay:
    equipment_id: str
    kitchen_id: str
    kind: EquipmentKind
    day: date
    seconds_out_of_range: int
    cycles: int
    short_cycles: int
    uv_seconds: int
    online_service_seconds: int
    service_seconds: int
    readings: int


# --- readings ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    """One accepted reading, as the rules see it."""

    equipment_id: str
    read_at: datetime
    temperature_c: float
    running: bool


@dataclass(frozen=True, slots=True)
class ReadingRejection:
    index: int
    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReadingInput:
    """One reading of an ingest request before screening (``read_at`` None: missing or no timestamp)."""

    equipment_id: str
    read_at: datetime | None
    temperature_c: float
    running: bool
    # Why read_at is None when it was set but is no valid timestamp.
    read_at_problem: str = ""


@dataclass(frozen=True, slots=True)
class UnitRef:
    """What screening needs to know of a registered unit."""

    kitchen_id: str
    site_id: str
    kind: EquipmentKind


@dataclass(frozen=True, slots=True)
class Screened:
    # Indexes of the accepted readings per kitchen, in request order.
    accepted: dict[str, list[int]]
    rejections: list[ReadingRejection]

    @property
    def accepted_count(self) -> int:
        return sum(len(v) for v in self.accepted.values())


def check_ingest(request_id: str, count: int, max_count: int) -> None:
    """Request-level problems of an ingest: INVALID_ARGUMENT for the whole request."""
    violations = Violations()
    check_request_id(violations, request_id)
    if count == 0:
        violations.add("readings", "must hold at least one reading")
    elif count > max_count:
        violations.add("readings", f"must hold at most {max_count} readings per request")
    violations.check()


def screen_readings(
    readings: Sequence[ReadingInput],
    units: Mapping[str, UnitRef],
    may_write: Callable[[UnitRef], bool],
    *,
    now: datetime,
    max_future: timedelta,
    max_age: timedelta,
) -> Screened:
    """Each reading accepted or rejected on its own (the first problem of a reading names its field)."""
    accepted: dict[str, list[int]] = {}
    rejections: list[ReadingRejection] = []
    for index, reading in enumerate(readings):
        problem = _reading_problem(reading, units, may_write, now=now, max_future=max_future, max_age=max_age)
        if problem is None:
            accepted.setdefault(units[reading.equipment_id].kitchen_id, []).append(index)
        else:
            rejections.append(ReadingRejection(index, f"readings[{index}].{problem[0]}", problem[1]))
    return Screened(accepted, rejections)


def _reading_problem(
    reading: ReadingInput,
    units: Mapping[str, UnitRef],
    may_write: Callable[[UnitRef], bool],
    *,
    now: datetime,
    max_future: timedelta,
    max_age: timedelta,
) -> tuple[str, str] | None:
    if not reading.equipment_id:
        return "equipment_id", "is required"
    unit = units.get(reading.equipment_id)
    # A unit of a kitchen the caller may not write is answered as unknown: it learns nothing of it.
    if unit is None or not may_write(unit):
        return "equipment_id", "unknown equipment"
    problem = _time_problem(reading, now, max_future, max_age)
    if problem is not None:
        return "read_at", problem
    if unit.kind.measures_temperature and not (
        math.isfinite(reading.temperature_c) and EQUIPMENT_MIN_C <= reading.temperature_c <= EQUIPMENT_MAX_C
    ):
        return "temperature_c", f"must be between {EQUIPMENT_MIN_C:g} and {EQUIPMENT_MAX_C:g} °C"
    return None


def _time_problem(
    reading: ReadingInput, now: datetime, max_future: timedelta, max_age: timedelta
) -> str | None:
    if reading.read_at is None:
        return reading.read_at_problem or "is required"
    if reading.read_at > now + max_future:
        return f"is more than {int(max_future.total_seconds())} s in the future"
    if reading.read_at < now - max_age:
        return f"is more than {int(max_age.total_seconds())} s old"
    return None


# --- the rules' state machine ------------------------------------------------------------------------


def _dt(text: Any) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass(slots=True)
class UnitState:
    """What the rules remember of a unit between readings (``equipment.state``)."""

    last_at: datetime | None = None
    last_temperature_c: float | None = None
    last_running: bool = False
    last_out: bool = False
    # The current out-of-range episode: since when, and seconds out of range in it so far.
    out_since: datetime | None = None
    episode_out_s: float = 0.0
    # The open cold-chain alert, and since when the unit has been back in range by the hysteresis.
    alert_id: str | None = None
    back_since: datetime | None = None
    # The disinfection cycle under way.
    cycle_start: datetime | None = None
    cycle_last_at: datetime | None = None
    cycle_min_c: float | None = None
    # The open offline alert (the monitor raises it, a fresh reading clears it).
    offline_alert_id: str | None = None
    # UV lamps: the first local day the monitor has not judged yet.
    judge_from: date | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "last_at": _iso(self.last_at),
            "last_temperature_c": self.last_temperature_c,
            "last_running": self.last_running,
            "last_out": self.last_out,
            "out_since": _iso(self.out_since),
            "episode_out_s": self.episode_out_s,
            "alert_id": self.alert_id,
            "back_since": _iso(self.back_since),
            "cycle_start": _iso(self.cycle_start),
            "cycle_last_at": _iso(self.cycle_last_at),
            "cycle_min_c": self.cycle_min_c,
            "offline_alert_id": self.offline_alert_id,
            **({"judge_from": self.judge_from.isoformat()} if self.judge_from else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UnitState:
        judge_from = data.get("judge_from")
        return cls(
            last_at=_dt(data.get("last_at")),
            last_temperature_c=data.get("last_temperature_c"),
            last_running=bool(data.get("last_running", False)),
            last_out=bool(data.get("last_out", False)),
            out_since=_dt(data.get("out_since")),
            episode_out_s=float(data.get("episode_out_s", 0.0)),
            alert_id=data.get("alert_id"),
            back_since=_dt(data.get("back_since")),
            cycle_start=_dt(data.get("cycle_start")),
            cycle_last_at=_dt(data.get("cycle_last_at")),
            cycle_min_c=data.get("cycle_min_c"),
            offline_alert_id=data.get("offline_alert_id"),
            judge_from=date.fromisoformat(judge_from) if judge_from else None,
        )

    def status(self, kind: EquipmentKind) -> EquipmentStatus:
        if self.last_at is None:
            return EquipmentStatus.AWAITING
        if self.offline_alert_id is not None:
            return EquipmentStatus.OFFLINE
        if self.alert_id is not None:
            return EquipmentStatus.ALERTING
        if kind.holds_temperature and self.last_out:
            return EquipmentStatus.OUT_OF_RANGE
        return EquipmentStatus.OK


@dataclass(slots=True)
class DayFigures:
    """What one batch of readings adds to one unit's local day."""

    equipment_id: str
    kitchen_id: str
    day: date
    seconds_out_of_range: int = 0
    cycles: int = 0
    short_cycles: int = 0
    uv_seconds: int = 0
    online_service_seconds: int = 0
    service_seconds: int = 0
    readings: int = 0


@dataclass(frozen=True, slots=True)
class AlertRaised:
    """A cold-chain (or hot-holding) alert is due: out of range since ``since``."""

    alert_id: str
    since: datetime
    limit_c: float
    temperature_c: float
    at: datetime


@dataclass(frozen=True, slots=True)
class AlertCleared:
    alert_id: str
    minutes_out_of_range: int
    at: datetime


@dataclass(frozen=True, slots=True)
class CycleFinished:
    """A disinfection cycle ended; ``short`` when it was too short or too cool."""

    started: datetime
    ended: datetime
    minutes: int
    min_temperature_c: float
    short: bool


@dataclass(frozen=True, slots=True)
class OfflineCleared:
    alert_id: str
    at: datetime


Happening = AlertRaised | AlertCleared | CycleFinished | OfflineCleared


@dataclass(slots=True)
class Outcome:
    happenings: list[Happening] = field(default_factory=list)
    days: dict[date, DayFigures] = field(default_factory=dict)


def split_by_day(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[date, datetime, datetime]]:
    """[start, end) cut at the local midnights of ``zone``: (local day, piece start, piece end)."""
    pieces: list[tuple[date, datetime, datetime]] = []
    cursor = start
    while cursor < end:
        day = cursor.astimezone(zone).date()
        midnight = datetime.combine(day + timedelta(days=1), time(0), zone)
        piece_end = min(end, midnight)
        pieces.append((day, cursor, piece_end))
        cursor = piece_end
    return pieces


def _service_window(day: date, minutes: tuple[int, int], zone: ZoneInfo) -> tuple[datetime, datetime]:
    midnight = datetime.combine(day, time(0), zone)
    return midnight + timedelta(minutes=minutes[0]), midnight + timedelta(minutes=minutes[1])


def service_overlap_s(
    day: date, start: datetime, end: datetime, service: Sequence[tuple[int, int]], zone: ZoneInfo
) -> float:
    """Seconds of [start, end) (inside local ``day``) that fall in the kitchen's service hours."""
    total = 0.0
    for window in service:
        lo, hi = _service_window(day, window, zone)
        total += max(0.0, (min(end, hi) - max(start, lo)).total_seconds())
    return total


def service_seconds_of(service: Sequence[tuple[int, int]]) -> int:
    return sum(end - start for start, end in service) * 60


class _Machine:
    """One unit's rules applied to its readings in read_at order (see the module text)."""

    def __init__(
        self,
        equipment: Equipment,
        state: UnitState,
        *,
        zone: ZoneInfo,
        service: Sequence[tuple[int, int]],
        now: datetime,
        new_alert_id: Callable[[], str],
    ) -> None:
        self.unit = equipment
        self.limits = equipment.limits
        self.state = state
        self.zone = zone
        self.service = service
        self.now = now
        self.new_alert_id = new_alert_id
        self.outcome = Outcome()
        self.offline_after = equipment.limits.offline_after

    def day(self, day: date) -> DayFigures:
        found = self.outcome.days.get(day)
        if found is None:
            found = DayFigures(
                self.unit.equipment_id,
                self.unit.kitchen_id,
                day,
                service_seconds=service_seconds_of(self.service),
            )
            self.outcome.days[day] = found
        return found

    def is_out(self, temperature: float) -> bool:
        if self.limits.max_temperature_c is not None:
            return temperature > self.limits.max_temperature_c
        if self.limits.min_temperature_c is not None:
            return temperature < self.limits.min_temperature_c
        return False

    def is_back(self, temperature: float) -> bool:
        hysteresis = self.limits.hysteresis_c or 0.0
        if self.limits.max_temperature_c is not None:
            return temperature <= self.limits.max_temperature_c - hysteresis
        if self.limits.min_temperature_c is not None:
            return temperature >= self.limits.min_temperature_c + hysteresis
        return True

    def limit_c(self) -> float:
        value = self.limits.max_temperature_c
        if value is None:
            value = self.limits.min_temperature_c
        return value if value is not None else 0.0

    def account(self, start: datetime, end: datetime) -> None:
        """The previous reading described [start, end): add it to the days it spans."""
        state = self.state
        for day, lo, hi in split_by_day(start, end, self.zone):
            figures = self.day(day)
            seconds = (hi - lo).total_seconds()
            figures.online_service_seconds += round(service_overlap_s(day, lo, hi, self.service, self.zone))
            if self.unit.kind.holds_temperature and state.last_out:
                figures.seconds_out_of_range += round(seconds)
            if self.unit.kind is EquipmentKind.UV_LAMP and state.last_running:
                figures.uv_seconds += round(seconds)
        if self.unit.kind.holds_temperature and state.last_out and (state.out_since or state.alert_id):
            state.episode_out_s += (end - start).total_seconds()

    def apply(self, reading: Reading) -> None:
        state = self.state
        at = reading.read_at
        self.day(at.astimezone(self.zone).date()).readings += 1
        if state.last_at is not None and at < state.last_at:
            return  # late: counted, but the rules only move forward in time
        gap = state.last_at is not None and at - state.last_at > self.offline_after
        if state.last_at is not None:
            self.account(state.last_at, min(at, state.last_at + self.offline_after))
        if state.offline_alert_id is not None and self.now - at <= self.offline_after:
            self.outcome.happenings.append(OfflineCleared(state.offline_alert_id, at))
            state.offline_alert_id = None
        if self.unit.kind.holds_temperature:
            self.hold(reading, gap=gap)
        elif self.unit.kind is EquipmentKind.DISINFECTION_CABINET:
            self.cycle(reading, gap=gap)
        if self.unit.kind is EquipmentKind.UV_LAMP and state.judge_from is None:
            # The day of the first reading was partly unobserved (installed, connected): not judged.
            state.judge_from = at.astimezone(self.zone).date() + timedelta(days=1)
        state.last_at = at
        state.last_temperature_c = reading.temperature_c if self.unit.kind.measures_temperature else None
        state.last_running = reading.running

    def hold(self, reading: Reading, *, gap: bool) -> None:
        state, at, temperature = self.state, reading.read_at, reading.temperature_c
        out = self.is_out(temperature)
        if state.alert_id is None:
            if not out:
                state.out_since, state.episode_out_s = None, 0.0
            else:
                if state.out_since is None or gap:
                    # A silence longer than the offline window breaks "continuously".
                    state.out_since, state.episode_out_s = at, 0.0
                if at - state.out_since >= timedelta(minutes=self.limits.alert_after_minutes or 0):
                    state.alert_id = self.new_alert_id()
                    state.back_since = None
                    self.outcome.happenings.append(
                        AlertRaised(state.alert_id, state.out_since, self.limit_c(), temperature, at)
                    )
        elif self.is_back(temperature):
            if state.back_since is None or gap:
                state.back_since = at
            if at - state.back_since >= timedelta(minutes=self.limits.clear_after_minutes or 0):
                minutes = int(state.episode_out_s // 60)
                self.outcome.happenings.append(AlertCleared(state.alert_id, minutes, at))
                state.alert_id, state.back_since, state.out_since, state.episode_out_s = None, None, None, 0.0
        else:
            # Inside the limit but not by the hysteresis (or out again): the clear window starts over.
            state.back_since = None
        state.last_out = out

    def cycle(self, reading: Reading, *, gap: bool) -> None:
        state, at = self.state, reading.read_at
        if state.cycle_start is not None and gap:
            # The cabinet went silent mid-cycle: the cycle ended at its last reading.
            self.finish_cycle(state.cycle_last_at or state.cycle_start)
        if reading.running:
            if state.cycle_start is None:
                state.cycle_start, state.cycle_min_c = at, reading.temperature_c
            else:
                state.cycle_min_c = min(state.cycle_min_c or reading.temperature_c, reading.temperature_c)
            state.cycle_last_at = at
        elif state.cycle_start is not None:
            self.finish_cycle(at)

    def finish_cycle(self, ended: datetime) -> None:
        state = self.state
        assert state.cycle_start is not None, "a cycle is under way"
        seconds = (ended - state.cycle_start).total_seconds()
        lowest = state.cycle_min_c if state.cycle_min_c is not None else EQUIPMENT_MIN_C
        short = seconds < (self.limits.cycle_min_minutes or 0) * 60 or lowest < (
            self.limits.cycle_min_temperature_c or EQUIPMENT_MIN_C
        )
        figures = self.day(ended.astimezone(self.zone).date())
        figures.cycles += 1
        figures.short_cycles += int(short)
        self.outcome.happenings.append(
            CycleFinished(state.cycle_start, ended, int(seconds // 60), lowest, short)
        )
        state.cycle_start, state.cycle_last_at, state.cycle_min_c = None, None, None


def apply_readings(
    equipment: Equipment,
    state: UnitState,
    readings: Sequence[Reading],
    *,
    zone: ZoneInfo,
    service: Sequence[tuple[int, int]],
    now: datetime,
    new_alert_id: Callable[[], str],
) -> Outcome:
    """Apply one unit's readings (sorted here by read_at, stably) to its ``state`` (changed in place);
    returns what happened and what the readings add to the unit's days."""
    machine = _Machine(equipment, state, zone=zone, service=service, now=now, new_alert_id=new_alert_id)
    for reading in sorted(readings, key=lambda r: r.read_at):
        machine.apply(reading)
    return machine.outcome


def uv_days_to_judge(judge_from: date | None, today: date, *, max_days: int = 31) -> list[date]:
    """The finished local days of a UV lamp not judged yet (at most ``max_days``, oldest first)."""
    if judge_from is None or judge_from >= today:
        return []
    count = min((today - judge_from).days, max_days)
    return [judge_from + timedelta(days=i) for i in range(count)]
