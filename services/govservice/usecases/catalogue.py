"""Regions (with their signing keys), items and partnerships, and the seed file loaded at start.

All three are upserts keyed by what names them (a region's division code, an item's code, a
partnership's pair of regions), so the seed file and the RPCs converge on the same state: an operator
edits the file and restarts, or calls the RPCs, and nothing is ever duplicated. A region's first signing
key is made in the transaction that registers it; a re-registration keeps its key.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from services.govservice.adapters.signing import ALGORITHM, new_signing_key
from services.govservice.domain.catalogue import (
    DefineItem,
    ItemSpec,
    MaterialSpec,
    PartnershipItemSpec,
    RegionKey,
    RegisterRegion,
    SetPartnership,
    check_division_filter,
)
from services.govservice.domain.model import (
    ApplicantKind,
    AuthorityLevel,
    Direction,
    Item,
    Material,
    Partnership,
    Region,
)
from services.govservice.usecases.common import GovServiceContext
from services.platform.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    Violations,
)
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate
from services.platform.settings import SettingsError

__all__ = ["KEY_SEAL_PURPOSE", "Catalogue", "SeedCommand", "SeedError", "load_seed", "read_seed"]

log = get_logger()

# The vault purpose a region's private key is sealed under (the trail family opens it to sign).
KEY_SEAL_PURPOSE = "region-key"


class Catalogue:
    def __init__(self, ctx: GovServiceContext) -> None:
        self._ctx = ctx

    # --- regions ------------------------------------------------------------------------------------

    def register_region(self, command: RegisterRegion) -> Region:
        """Register a region with its first signing key, or update the name, province and home flag of
        one already registered (its key and registration time stay)."""
        command.check()
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim("register_region", command.request_id, command)
            if replay is not None:
                found = tx.repo.get_region(replay["division_code"])
                assert found is not None, "a remembered region is never deleted"
                return found
            if command.home:
                home = tx.repo.home_region()
                if home is not None and home.division_code != command.division_code:
                    raise FailedPreconditionError(
                        f"home: {home.division_code} is already the home region (there is only one)"
                    )
            now = self._ctx.clock()
            created = tx.repo.upsert_region(
                division_code=command.division_code,
                name=command.name,
                province=command.province,
                home=command.home,
                registered_at=now,
            )
            if created:
                key = new_signing_key()
                tx.repo.add_region_key(
                    key_id=key.key_id,
                    division_code=command.division_code,
                    algorithm=ALGORITHM,
                    public_key_pem=key.public_key_pem,
                    sealed_private=self._ctx.vault.seal(
                        KEY_SEAL_PURPOSE, key.key_id, {"pem": key.private_key_pem}
                    ),
                    created_at=now,
                )
            region = tx.repo.get_region(command.division_code)
            assert region is not None, "just stored"
            tx.remember("register_region", command.request_id, {"division_code": region.division_code})
        log.info(
            "region_registered", division_code=region.division_code, created=created, key_id=region.key_id
        )
        return region

    def list_regions(self, page_size: int, page_token: str) -> tuple[list[Region], str]:
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, str)
        with self._ctx.uow.transaction() as tx:
            regions = tx.repo.list_regions(after[0] if after else "", page.size + 1)
        return paginate(regions, page, lambda r: (r.division_code,))

    def region_keys(self) -> list[RegionKey]:
        with self._ctx.uow.transaction() as tx:
            return tx.repo.region_keys()

    # --- items --------------------------------------------------------------------------------------

    def define_item(self, command: DefineItem) -> Item:
        command.check()
        spec = command.item
        assert spec.authority_level is not None, "checked"
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim("define_item", command.request_id, command)
            if replay is not None:
                found = tx.repo.get_item(replay["item_code"])
                assert found is not None, "a remembered item is never deleted"
                return found
            item = Item(
                code=spec.code,
                name=spec.name,
                materials=tuple(Material(m.code, m.name) for m in spec.materials),
                authority_level=spec.authority_level,
                promised_working_days=spec.promised_working_days,
                applicant_kinds=frozenset(k for k in spec.applicant_kinds if k is not None),
                defined_at=self._ctx.clock(),
            )
            tx.repo.upsert_item(item)
            tx.remember("define_item", command.request_id, {"item_code": item.code})
        log.info("item_defined", item_code=item.code)
        return item

    def list_items(self, page_size: int, page_token: str) -> tuple[list[Item], str]:
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, str)
        with self._ctx.uow.transaction() as tx:
            items = tx.repo.list_items(after[0] if after else "", page.size + 1)
        return paginate(items, page, lambda i: (i.code,))

    # --- partnerships -------------------------------------------------------------------------------

    def set_partnership(self, command: SetPartnership) -> Partnership:
        """Create the partnership of two registered regions, or replace it (whichever way round it was
        stored before). An unregistered region or an undefined item is bad input, named by its path."""
        start = command.check()
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim("set_partnership", command.request_id, command)
            if replay is not None:
                found = tx.repo.partnership_between(replay["region_a"], replay["region_b"])
                assert found is not None, "a remembered partnership is never deleted"
                return found
            v = Violations()
            for field, code in (
                ("partnership.region_a", command.region_a),
                ("partnership.region_b", command.region_b),
            ):
                if tx.repo.get_region(code) is None:
                    v.add(field, f"region {code} is not registered (register it as a partner first)")
            codes = [i.item_code for i in command.items]
            known = tx.repo.known_items(codes)
            for i, code in enumerate(codes):
                if code not in known:
                    v.add(f"partnership.items[{i}].item_code", f"no item {code} is defined")
            # Raising inside the transaction rolls the request id's claim back: nothing is stored.
            v.check()
            tx.repo.lock_pair(command.region_a, command.region_b)
            tx.repo.replace_partnership(
                region_a=command.region_a,
                region_b=command.region_b,
                items=[(i.item_code, i.direction.value) for i in command.items if i.direction is not None],
                start_date=start,
                updated_at=self._ctx.clock(),
            )
            partnership = tx.repo.partnership_between(command.region_a, command.region_b)
            assert partnership is not None, "just stored"
            tx.remember(
                "set_partnership",
                command.request_id,
                {"region_a": partnership.region_a, "region_b": partnership.region_b},
            )
        log.info("partnership_set", region_a=partnership.region_a, region_b=partnership.region_b)
        return partnership

    def list_partnerships(
        self, division_code: str, page_size: int, page_token: str
    ) -> tuple[list[Partnership], str]:
        check_division_filter(division_code)
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, str, str)
        with self._ctx.uow.transaction() as tx:
            found = tx.repo.list_partnerships(
                division_code, (after[0], after[1]) if after else ("", ""), page.size + 1
            )
        return paginate(found, page, lambda p: (p.region_a, p.region_b))


# --- the seed file ----------------------------------------------------------------------------------


class SeedError(SettingsError):
    """The seed file cannot be loaded: start-up stops, naming the file and the entry (a SystemExit, like
    every other bad setting, so the message is printed before logging is configured)."""


_REGION_KEYS = {"division_code", "name", "province", "home"}
_ITEM_KEYS = {"code", "name", "materials", "authority_level", "promised_working_days", "applicant_kinds"}
_PARTNERSHIP_KEYS = {"region_a", "region_b", "items", "start_date"}
_SECTIONS = {"regions", "items", "partnerships"}
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9._:-]")


class _Entry:
    """Reads one table of the file, turning a wrong shape into a SeedError naming the entry."""

    def __init__(self, path: Path, where: str, table: Any, allowed: set[str]) -> None:
        self._prefix = f"GOVSERVICE_SEED_FILE {path}: {where}"
        if not isinstance(table, dict):
            raise self._fail("must be a table")
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self._fail(f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
        self._table: dict[str, Any] = table

    def _fail(self, problem: str) -> SeedError:
        return SeedError(f"{self._prefix}: {problem}")

    def error(self, problem: str) -> SeedError:
        return self._fail(problem)

    def get(self, key: str, kind: type, default: Any = None) -> Any:
        if key not in self._table:
            if default is None:
                raise self._fail(f"{key} is required")
            return default
        value = self._table[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self._fail(f"{key} must be a {kind.__name__}")
        return value

    def enum(self, key: str, value: Any, kind: type[Any]) -> Any:
        try:
            return kind(value)
        except ValueError:
            names = ", ".join(m.value for m in kind)
            raise self._fail(f"{key}: {value!r} is not one of {names}") from None

    def tables(self, key: str, allowed: set[str]) -> list[dict[str, Any]]:
        values = self.get(key, list)
        for n, value in enumerate(values):
            if not isinstance(value, dict):
                raise self._fail(f"{key}[{n}] must be a table")
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise self._fail(f"{key}[{n}]: unknown key(s) {', '.join(unknown)}")
        return list(values)


def _seed_id(kind: str, name: str, entry: Any) -> str:
    """A request id derived from the entry's content: loading the same entry again is a replay (nothing
    stored twice), an edited entry a new request (the upsert takes the new content)."""
    digest = hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode()).hexdigest()[:16]
    # The name only makes the id readable; a malformed one must not make the id itself malformed.
    readable = _NOT_IN_ID.sub("_", name)[:64]
    return f"seed-{kind}-{readable}-{digest}"


def _str(entry: _Entry, table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str):
        raise entry.error(f"{where}.{key} must be a string")
    return value


def _region_command(path: Path, n: int, table: Any) -> RegisterRegion:
    entry = _Entry(path, f"regions[{n}]", table, _REGION_KEYS)
    code = entry.get("division_code", str)
    return RegisterRegion(
        request_id=_seed_id("region", code, table),
        division_code=code,
        name=entry.get("name", str),
        province=entry.get("province", str),
        home=entry.get("home", bool, False),
    )


def _item_command(path: Path, n: int, table: Any) -> DefineItem:
    entry = _Entry(path, f"items[{n}]", table, _ITEM_KEYS)
    code = entry.get("code", str)
    materials = tuple(
        MaterialSpec(_str(entry, m, "code", f"materials[{k}]"), _str(entry, m, "name", f"materials[{k}]"))
        for k, m in enumerate(entry.tables("materials", {"code", "name"}))
    )
    kinds = entry.get("applicant_kinds", list)
    return DefineItem(
        request_id=_seed_id("item", code, table),
        item=ItemSpec(
            code=code,
            name=entry.get("name", str),
            materials=materials,
            authority_level=entry.enum("authority_level", entry.get("authority_level", str), AuthorityLevel),
            promised_working_days=entry.get("promised_working_days", int),
            applicant_kinds=tuple(entry.enum("applicant_kinds", k, ApplicantKind) for k in kinds),
        ),
    )


def _partnership_command(path: Path, n: int, table: Any) -> SetPartnership:
    entry = _Entry(path, f"partnerships[{n}]", table, _PARTNERSHIP_KEYS)
    region_a, region_b = entry.get("region_a", str), entry.get("region_b", str)
    items = tuple(
        PartnershipItemSpec(
            _str(entry, i, "item_code", f"items[{k}]"),
            entry.enum(f"items[{k}].direction", _str(entry, i, "direction", f"items[{k}]"), Direction),
        )
        for k, i in enumerate(entry.tables("items", {"item_code", "direction"}))
    )
    start = entry.get("start_date", object)
    return SetPartnership(
        request_id=_seed_id("partnership", f"{region_a}-{region_b}", table),
        region_a=region_a,
        region_b=region_b,
        items=items,
        # TOML has a date type: a bare 2025-03-01 is as good as the quoted string.
        start_date=start.isoformat() if hasattr(start, "isoformat") else str(start),
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise SeedError(f"GOVSERVICE_SEED_FILE {path}: cannot be read ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise SeedError(f"GOVSERVICE_SEED_FILE {path}: is not valid TOML ({error})") from None
    unknown = sorted(set(data) - _SECTIONS)
    if unknown:
        raise SeedError(f"GOVSERVICE_SEED_FILE {path}: unknown section(s) {', '.join(unknown)}")
    for section in _SECTIONS:
        if not isinstance(data.get(section, []), list):
            raise SeedError(
                f"GOVSERVICE_SEED_FILE {path}: {section} must be an array of tables ([[{section}]])"
            )
    return data


@contextmanager
def _entry(path: Path, where: str) -> Iterator[None]:
    """Turn a refusal of one entry into a SeedError naming the file and the entry. Anything else (the
    database unavailable) propagates as it is: it is not the file's fault."""
    try:
        yield
    except (InvalidArgumentError, FailedPreconditionError, AlreadyExistsError) as error:
        raise SeedError(f"GOVSERVICE_SEED_FILE {path}: {where}: {error.message}") from None


def _each(data: dict[str, Any], section: str) -> Sequence[tuple[int, Any]]:
    return list(enumerate(data.get(section, [])))


SeedCommand = RegisterRegion | DefineItem | SetPartnership


def read_seed(path: Path) -> list[tuple[str, SeedCommand]]:
    """The seed file's entries as checked commands, each with the name a refusal gives it
    (``regions[1] (522632)``): regions first, then items, then partnerships, in the file's order. Raises
    SeedError naming the file and the first bad entry."""
    data = _read(path)
    regions = [_region_command(path, n, t) for n, t in _each(data, "regions")]
    items = [_item_command(path, n, t) for n, t in _each(data, "items")]
    partnerships = [_partnership_command(path, n, t) for n, t in _each(data, "partnerships")]
    named: list[tuple[str, SeedCommand]] = [
        *((f"regions[{n}] ({c.division_code})", c) for n, c in enumerate(regions)),
        *((f"items[{n}] ({c.item.code})", c) for n, c in enumerate(items)),
        *((f"partnerships[{n}] ({c.region_a}-{c.region_b})", c) for n, c in enumerate(partnerships)),
    ]
    seen: set[tuple[str, ...]] = set()
    homes = 0
    for where, command in named:
        with _entry(path, where):
            command.check()
        # Two entries for one region, item or pair: the later would silently win; say so instead.
        if isinstance(command, RegisterRegion):
            key: tuple[str, ...] = ("region", command.division_code)
            homes += command.home
            if homes > 1:
                raise SeedError(f"GOVSERVICE_SEED_FILE {path}: {where}: a second home region (only one)")
        elif isinstance(command, DefineItem):
            key = ("item", command.item.code)
        else:
            key = ("partnership", *sorted((command.region_a, command.region_b)))
        if key in seen:
            raise SeedError(
                f"GOVSERVICE_SEED_FILE {path}: {where}: repeats an earlier entry for the same {key[0]}"
            )
        seen.add(key)
    return named


def load_seed(ctx: GovServiceContext, path: Path) -> None:
    """Load (idempotently) the regions, items and partnerships of the seed file at ``path``, through the
    same use cases as the RPCs. Every entry is read and checked before anything is stored, so a malformed
    file stops start-up with nothing loaded from it (a refusal that needs stored state — a partnership
    naming a region registered nowhere — stops it at that entry, the earlier ones loaded)."""
    named = read_seed(path)
    catalogue = Catalogue(ctx)
    for where, command in named:
        with _entry(path, where):
            if isinstance(command, RegisterRegion):
                catalogue.register_region(command)
            elif isinstance(command, DefineItem):
                catalogue.define_item(command)
            else:
                catalogue.set_partnership(command)
    counts = Counter(type(command) for _, command in named)
    log.info(
        "seed_loaded",
        path=str(path),
        regions=counts[RegisterRegion],
        items=counts[DefineItem],
        partnerships=counts[SetPartnership],
    )
