"""Who may act where in the govservice domain.

``gov_clerk`` holds ``region:<division code>`` scopes, and scopes nest like the codes: a province clerk
(``region:520000``) covers every county of the province (``522632``), a city clerk (``331000``) the
counties of the city (``331004``), a county clerk only its county. A clerk acts on an application only at
the steps of a region it covers, and sees the applicant's details only for those applications.
``district_operator`` and ``service`` see every application (details masked: no identity clearance);
``public`` may only track.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["EVERYTHING", "Visibility", "covers"]


def covers(scope: str, code: str) -> bool:
    """Whether a clerk scoped to division ``scope`` covers division ``code`` (GB/T 2260 nesting)."""
    if len(scope) != 6 or len(code) != 6:
        return False
    if scope.endswith("0000"):
        return code[:2] == scope[:2]
    if scope.endswith("00"):
        return code[:4] == scope[:4]
    return code == scope


@dataclass(frozen=True, slots=True)
class Visibility:
    everything: bool
    regions: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *, everything: bool = False, regions: Iterable[str] = ()) -> Visibility:
        return cls(everything, frozenset(regions))

    def covers(self, code: str) -> bool:
        """May act as (or read for) the region ``code``."""
        return self.everything or any(covers(scope, code) for scope in self.regions)


EVERYTHING = Visibility(everything=True)
