"""Who may see what in the commerce domain, decided from the caller's roles and scopes.

* ``district_operator`` (federation staff) and ``service`` act everywhere;
* ``chamber_staff`` act in the chambers they hold ``chamber:<id>`` scopes for;
* ``enterprise_user`` sees its own memberships, codes, posts and requests (``enterprise:<credit code>``);
* ``public`` may only verify a code (the POLICY table says so).

A caller holding several roles sees the union. A single read outside the caller's view answers NOT_FOUND;
lists are filtered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["EVERYTHING", "Visibility"]


@dataclass(frozen=True, slots=True)
class Visibility:
    everything: bool
    chambers: frozenset[str] = frozenset()
    enterprises: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, *, everything: bool = False, chambers: Iterable[str] = (), enterprises: Iterable[str] = ()
    ) -> Visibility:
        return cls(everything, frozenset(chambers), frozenset(enterprises))

    def sees_chamber(self, chamber_id: str) -> bool:
        """May act on the chamber as its staff (or district-wide)."""
        return self.everything or chamber_id in self.chambers

    def sees_member(self, chamber_id: str, credit_code: str) -> bool:
        """May see a membership (its chamber's staff, or the enterprise itself)."""
        return self.everything or chamber_id in self.chambers or credit_code in self.enterprises


EVERYTHING = Visibility(everything=True)
