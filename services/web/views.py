"""Pure helpers the pages use: figure formatting, enum labels, the town view's projection to SVG. No I/O,
no gRPC calls (unit-tested in tests/unit/web)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from cityhub.common.v1 import common_pb2
from cityhub.hub.v1 import hub_pb2
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = [
    "GRANULARITIES",
    "KIND_SLUGS",
    "Dot",
    "chart_days",
    "enum_label",
    "format_change",
    "format_figure",
    "is_share",
    "local_time",
    "project",
]

GRANULARITIES: dict[str, hub_pb2.Granularity.ValueType] = {
    "day": hub_pb2.GRANULARITY_DAY,
    "week": hub_pb2.GRANULARITY_WEEK,
    "month": hub_pb2.GRANULARITY_MONTH,
    "year": hub_pb2.GRANULARITY_YEAR,
}

# URL slugs of entity kinds: /entities/site/S-001.
KIND_SLUGS: dict[str, common_pb2.EntityKind.ValueType] = {
    "enterprise": common_pb2.ENTITY_KIND_ENTERPRISE,
    "site": common_pb2.ENTITY_KIND_SITE,
    "kitchen": common_pb2.ENTITY_KIND_KITCHEN,
    "park": common_pb2.ENTITY_KIND_PARK,
    "region": common_pb2.ENTITY_KIND_REGION,
    "chamber": common_pb2.ENTITY_KIND_CHAMBER,
    "application": common_pb2.ENTITY_KIND_APPLICATION,
}
SLUG_OF_KIND = {value: slug for slug, value in KIND_SLUGS.items()}

# Figures that are shares of one (availability, OEE, on-time rate): shown as percentages.
_SHARES = frozenset({"utilisation", "oee"})


def is_share(name: str) -> bool:
    return name in _SHARES or name.endswith("_rate")


def _number(value: float) -> str:
    if math.isfinite(value) and value == round(value):
        return f"{round(value):,}"
    return f"{value:,.2f}"


def format_figure(name: str, value: float) -> str:
    """A figure's value as a person reads it: 1,234 / 12.50 / 87.5 %."""
    if is_share(name):
        return f"{value * 100:.1f} %"
    return _number(value)


def format_change(name: str, change: float, ratio: float, previous: float) -> str:
    """The change against the previous period: "+3 (+12.5 %)", "±0"; shares in percentage points."""
    if change == 0:
        return "±0"
    sign = "+" if change > 0 else "\u2212"  # a minus sign, as wide as the plus
    if is_share(name):
        return f"{sign}{abs(change) * 100:.1f} pt"
    text = f"{sign}{_number(abs(change))}"
    if previous:
        text += f" ({sign}{abs(ratio) * 100:.1f} %)"
    return text


def enum_label(enum: object, value: int) -> str:
    """``SEVERITY_HIGH`` → ``high``; ``ITEM_KIND_COLD_CHAIN`` → ``cold chain``."""
    name: str = enum.Name(value)  # type: ignore[attr-defined]
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")  # type: ignore[attr-defined]
    return name.removeprefix(prefix).lower().replace("_", " ")


def local_time(ts: Timestamp, zone: ZoneInfo) -> str:
    if not ts.seconds and not ts.nanos:
        return ""
    return datetime.fromtimestamp(ts.seconds, UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def chart_days(last: date, days: int) -> list[date]:
    """The ``days`` local dates ending with ``last``, oldest first."""
    return [last - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


@dataclass(frozen=True, slots=True)
class Dot:
    """An entity placed on the town view."""

    x: float
    y: float
    kind: str
    id: str
    name: str
    town: str
    open_items: int
    centre: bool


def project(
    points: Sequence[tuple[float, float, str, str, str, str, int, bool]],
    *,
    width: float = 800.0,
    height: float = 560.0,
    margin: float = 40.0,
) -> list[Dot]:
    """Places (lat, lon, kind, id, name, town, open items, is centre) on a ``width`` by ``height`` canvas:
    equirectangular with longitude scaled by cos(latitude), so a kilometre is as long east as north at a
    town's size; north up; the bounding box fitted with ``margin`` and its aspect kept."""
    if not points:
        return []
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    mid_lat = math.radians((min(lats) + max(lats)) / 2)
    xs = [lon * math.cos(mid_lat) for lon in lons]
    span_x = max(xs) - min(xs)
    span_y = max(lats) - min(lats)
    usable_w, usable_h = width - 2 * margin, height - 2 * margin
    scale = min(usable_w / span_x if span_x else math.inf, usable_h / span_y if span_y else math.inf)
    if math.isinf(scale):
        scale = 0.0  # one place only: it goes in the middle
    off_x = margin + (usable_w - span_x * scale) / 2
    off_y = margin + (usable_h - span_y * scale) / 2
    dots = []
    taken: dict[tuple[float, float], int] = {}
    for (lat, _lon, kind, ident, name, town, items, centre), x in zip(points, xs, strict=True):
        px = round(off_x + (x - min(xs)) * scale, 1)
        py = round(off_y + (max(lats) - lat) * scale, 1)
        # Entities at one address (a school and its kitchen) would hide each other: later ones are set
        # round the first on a small circle.
        seen = taken.get((px, py), 0)
        taken[(px, py)] = seen + 1
        if seen:
            angle = (seen - 1) * math.pi / 3
            px, py = round(px + 16 * math.cos(angle), 1), round(py + 16 * math.sin(angle), 1)
        dots.append(
            Dot(
                x=px,
                y=py,
                kind=kind,
                id=ident,
                name=name,
                town=town,
                open_items=items,
                centre=centre,
            )
        )
    return dots
