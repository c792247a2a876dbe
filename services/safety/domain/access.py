"""Who sees which sites' data. The policy table admits a call; this decides what it returns.

A duty room sees its own site(s) only (scope ``site:<id>``) and moves only its own guards in a joint
response; district operators, police and safety investigators see every site. Lists are filtered,
single records outside the caller's sites are answered as not found (another school's duty room
learns nothing, not even that an alert exists).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.platform.errors import NotFoundError, PermissionDeniedError
from services.safety.domain.model import UnitKind

__all__ = ["Viewer"]


@dataclass(frozen=True, slots=True)
class Viewer:
    # Who is acting (the token's subject), for timelines.
    actor: str
    all_sites: bool
    site_ids: frozenset[str] = frozenset()

    def sees(self, site_id: str) -> bool:
        return self.all_sites or site_id in self.site_ids

    def sites_for(self, requested: str) -> frozenset[str] | None:
        """The sites a query covers: None means every site. Asking for a site one cannot see is refused."""
        if requested:
            if not self.sees(requested):
                raise PermissionDeniedError(f"caller may not see site {requested}")
            return frozenset({requested})
        return None if self.all_sites else self.site_ids

    def require(self, site_id: str, what: str) -> None:
        if not self.sees(site_id):
            raise NotFoundError(f"{what} not found")

    def require_may_move(self, unit: UnitKind) -> None:
        """A duty room reports its own site's guards only; police, brigades and drones report through
        their own apps (``service``) or the command centre. PERMISSION_DENIED: the role may not do this."""
        if not self.all_sites and unit is not UnitKind.SITE_GUARDS:
            raise PermissionDeniedError(
                f"a duty room reports its own site guards only, not the {unit.value.replace('_', ' ')} unit"
            )
