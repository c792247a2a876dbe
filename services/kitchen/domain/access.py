"""Who may see which kitchens, decided from the caller's roles and scopes.

* ``food_inspector``, ``district_operator``, ``service`` and ``public`` act district-wide (what each may
  call is the POLICY table's business; masking of health and identity data is the platform's);
* ``kitchen_manager`` sees the kitchens it holds ``kitchen:<id>`` scopes for;
* ``duty_room`` sees the kitchens of the sites it holds ``site:<id>`` scopes for (its school's kitchen).

A caller holding several roles sees the union. A single read outside the caller's view answers NOT_FOUND,
as if the kitchen did not exist; lists are filtered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["EVERYTHING", "Visibility"]


@dataclass(frozen=True, slots=True)
class Visibility:
    everything: bool
    kitchens: frozenset[str] = frozenset()
    sites: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, *, everything: bool = False, kitchens: Iterable[str] = (), sites: Iterable[str] = ()
    ) -> Visibility:
        return cls(everything, frozenset(kitchens), frozenset(sites))

    def sees(self, kitchen_id: str, site_id: str) -> bool:
        return self.everything or kitchen_id in self.kitchens or site_id in self.sites

    @property
    def sees_nothing(self) -> bool:
        return not (self.everything or self.kitchens or self.sites)


EVERYTHING = Visibility(everything=True)
