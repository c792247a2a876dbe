"""The ingest's memory of recently accepted samples, per device, so that a re-sent sample can be answered
as a duplicate instead of being published again.

Best effort by design: it lives in one process (another replica, or this one after a restart, does not
know what it saw), holds only each device's newest start times, and misses a sample accepted by a request
still in flight. It never errs the other way: a time is remembered only after Kafka acknowledged its
sample and the request was committed, so a sample it calls a duplicate was accepted before. The
once-only guarantee is the rollup's (:class:`services.industry.domain.telemetry.HourCoverage`), which
counts a re-sent sample that got through here once anyway.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence

from services.industry.domain.telemetry import SampleLike

__all__ = ["RecentStarts"]


class RecentStarts:
    """Per device, its newest ``per_device`` accepted start times (at most half as many again between
    trims), sorted, as 8-byte integers: 7,000 devices x 600 times stay under 60 MB, where a set of Python
    ints would take eight times that. ``per_device`` 0 remembers nothing."""

    def __init__(self, per_device: int) -> None:
        self._keep = max(per_device, 0)
        self._lock = threading.Lock()
        # Readers (screening, on many threads) use the arrays without the lock: a writer only ever adds
        # acknowledged times or drops the oldest, so a concurrent reader can at worst miss a duplicate,
        # never invent one.
        self._times: dict[str, array[int]] = {}

    @property
    def times(self) -> Mapping[str, Sequence[int]]:
        return self._times

    def record(self, groups: Iterable[Sequence[SampleLike]]) -> None:
        """Remember the start times of ``groups``' samples (accepted, acknowledged, committed)."""
        keep = self._keep
        if not keep:
            return
        trim_at = keep + keep // 2
        with self._lock:
            times = self._times
            for group in groups:
                for sample in group:
                    device_id = sample.device_id
                    moment = sample.time_unix_ms
                    line = times.get(device_id)
                    if line is None:
                        times[device_id] = array("q", (moment,))
                        continue
                    if moment > line[-1]:
                        # A device's samples mostly arrive in time order: append, no search.
                        line.append(moment)
                    else:
                        at = bisect_left(line, moment)
                        if at == len(line) or line[at] != moment:
                            line.insert(at, moment)
                    if len(line) > trim_at:
                        del line[: len(line) - keep]
