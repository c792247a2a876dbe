"""Who may see what in the industry domain, decided from the caller's roles and scopes.

* ``industry_operator`` (and ``district_operator``, ``service``) act district-wide...
* ...except an ``industry_operator`` holding ``park:<id>`` scopes: that is *park staff*, and sees only
  the enterprises, devices, orders and figures of those parks. The scope narrows the role; there is no
  separate park role, so one role name covers the bureau and the park offices.
* ``enterprise_user`` sees only the enterprises it holds ``enterprise:<credit code>`` scopes for.

A caller holding several roles sees the union.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["EVERYTHING", "Visibility"]


@dataclass(frozen=True, slots=True)
class Visibility:
    everything: bool
    parks: frozenset[str] = frozenset()
    enterprises: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, *, everything: bool = False, parks: Iterable[str] = (), enterprises: Iterable[str] = ()
    ) -> Visibility:
        return cls(everything, frozenset(parks), frozenset(enterprises))

    def sees_enterprise(self, credit_code: str, park_id: str | None) -> bool:
        return self.everything or credit_code in self.enterprises or (bool(park_id) and park_id in self.parks)

    def sees_park(self, park_id: str) -> bool:
        return self.everything or park_id in self.parks

    @property
    def sees_nothing(self) -> bool:
        return not (self.everything or self.parks or self.enterprises)


EVERYTHING = Visibility(everything=True)
