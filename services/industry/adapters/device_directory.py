"""An in-memory map of every registered device, for the ingest hot path and the rollup consumer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from services.industry.domain.model import Device
from services.industry.domain.telemetry import DeviceProfile
from services.industry.repository import IndustryRepository

__all__ = ["DeviceDirectory"]

Conn = psycopg.Connection[Any]


class DeviceDirectory:
    """Loaded whole at start; afterwards only rows with a higher ``seq`` are read. A device id not in the
    map triggers such a refresh at most once per ``recheck_interval_s`` (so a flood of bad ids costs no
    query per sample, and a device registered through another replica is known within that time).
    Devices are never deleted or moved between enterprises, so the map only grows."""

    def __init__(
        self,
        pool: ConnectionPool | None,
        *,
        bucket_of: Callable[[str], int] | None = None,
        recheck_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._bucket_of = bucket_of or (lambda _device_id: 0)
        self._recheck = recheck_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seq = 0
        self._last_refresh = float("-inf")
        # Replaced, never mutated: readers take the reference once and need no lock.
        self.profiles: Mapping[str, DeviceProfile] = {}

    def refresh(self, conn: Conn | None = None) -> int:
        """Load devices registered since the last refresh; returns how many were new."""
        with self._lock:
            if conn is not None:
                seq, found = IndustryRepository(conn).device_profiles(self._seq)
            elif self._pool is not None:
                with self._pool.connection() as own:
                    seq, found = IndustryRepository(own).device_profiles(self._seq)
            else:
                return 0
            self._last_refresh = self._clock()
            if not found:
                return 0
            merged = dict(self.profiles)
            for profile in found:
                merged[profile.device_id] = self._with_bucket(profile)
            self._seq = max(self._seq, seq)
            self.profiles = merged
            return len(found)

    def _with_bucket(self, profile: DeviceProfile) -> DeviceProfile:
        return DeviceProfile(
            profile.device_id,
            profile.credit_code,
            profile.park_id,
            profile.workshop,
            profile.rated_power_kw,
            profile.ideal_cycle_seconds,
            profile.sample_interval_ms,
            self._bucket_of(profile.device_id),
        )

    def add(self, device: Device) -> None:
        """Make a device registered in this process known at once."""
        profile = DeviceProfile(
            device.device_id,
            device.credit_code,
            device.park_id,
            device.workshop,
            device.rated_power_kw,
            device.ideal_cycle_seconds,
            device.sample_interval_ms,
        )
        with self._lock:
            merged = dict(self.profiles)
            merged[device.device_id] = self._with_bucket(profile)
            self.profiles = merged

    def confirm(self, device_ids: Iterable[str], conn: Conn) -> Mapping[str, DeviceProfile]:
        """The current map after looking each of ``device_ids`` it lacks up by id in the registry.

        The definitive check before a caller acts on "no such device" (the rollup dead-letters such a
        record): the incremental refresh by ``seq`` can miss a device whose registration committed after
        one with a higher ``seq`` was read, and this does not."""
        missing = [device_id for device_id in dict.fromkeys(device_ids) if device_id not in self.profiles]
        if not missing:
            return self.profiles
        found = IndustryRepository(conn).device_profiles_by_id(missing)
        if found:
            with self._lock:
                merged = dict(self.profiles)
                for profile in found:
                    merged[profile.device_id] = self._with_bucket(profile)
                self.profiles = merged
        return self.profiles

    def resolve(self, device_ids: Iterable[str], conn: Conn | None = None) -> Mapping[str, DeviceProfile]:
        """The current map, refreshed first if some of ``device_ids`` are unknown and the last refresh is
        older than the recheck interval."""
        profiles = self.profiles
        if any(device_id not in profiles for device_id in device_ids):
            if self._clock() - self._last_refresh >= self._recheck:
                self.refresh(conn)
            profiles = self.profiles
        return profiles
