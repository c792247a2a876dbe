"""Tracking by the applicant: an application number and the last six characters of the applicant's identity
number or credit code give the status, the current region and the step dates, nothing personal.

A wrong pairing and an unknown number get one and the same answer (:data:`NOT_TRACKED`), so the answer never
tells that a number exists. Repeated wrong tries from one caller are slowed down by :class:`TrackLimiter`: a
sliding window of wrong tries per caller, and after the free ones a wait that doubles with every further
wrong try, answered at once (RESOURCE_EXHAUSTED with the seconds to wait), never slept through.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from services.govservice.domain.applications import invalid_application_no
from services.govservice.domain.model import ApplicationStatus
from services.platform.errors import ResourceExhaustedError, Violations

__all__ = [
    "FIRST_WAIT_S",
    "ID_SUFFIX",
    "MAX_CALLERS",
    "NOT_TRACKED",
    "TrackApplication",
    "TrackLimiter",
    "TrackedApplication",
    "TrackedStep",
]

# The last six characters of an identity number (digits, a final X) or a credit code (digits and letters);
# ASCII only, either case (an identity number's x is written both ways).
ID_SUFFIX = re.compile(r"[0-9A-Za-z]{6}")
# The one answer for a wrong pairing and for a number that does not exist.
NOT_TRACKED = "no application with this number and identity suffix"
# The first wait after the free wrong tries; each further wrong try doubles it.
FIRST_WAIT_S = 1.0
# At most this many callers are remembered per process: the least recently active is forgotten first.
MAX_CALLERS = 100_000
# Wrong tries kept per caller: beyond the free ones, this many more already give the longest wait.
_MAX_EXTRA_TRIES = 64


@dataclass(frozen=True, slots=True)
class TrackApplication:
    """TrackApplication: the number and the last six characters of the identity number or credit code."""

    application_no: str
    id_suffix: str

    def check(self) -> None:
        violations = Violations()
        if not self.application_no:
            violations.add("application_no", "is required")
        else:
            # The shape the applications family issues (GS-<filing region>-<local date>-<6 characters>).
            violations.add_if(invalid_application_no(self.application_no), "application_no")
        if not self.id_suffix:
            violations.add("id_suffix", "is required")
        elif not ID_SUFFIX.fullmatch(self.id_suffix):
            violations.add(
                "id_suffix", "must be the last six letters or digits of the identity number or credit code"
            )
        violations.check()


@dataclass(frozen=True, slots=True)
class TrackedStep:
    """A step as the applicant sees it: no actor, no note, no signature."""

    status: ApplicationStatus
    region: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TrackedApplication:
    """What tracking answers: nothing that names or identifies the applicant."""

    application_no: str
    item_code: str
    status: ApplicationStatus
    current_region: str
    due_date: date | None
    steps: tuple[TrackedStep, ...]


@dataclass(slots=True)
class _Caller:
    # Monotonic times of the wrong tries still inside the window, oldest first.
    failures: deque[float]
    # Tries begun and not finished yet: counted as wrong until they finish, so a burst of concurrent tries
    # cannot slip past the free allowance.
    pending: int = 0
    last_seen: float = 0.0


@dataclass
class TrackLimiter:
    """Wrong tracking tries per caller, in a sliding window of ``window_s`` seconds.

    While a caller has fewer than ``free_failures`` wrong tries in the window it may try at once. From then
    on every try (right or wrong) waits until ``FIRST_WAIT_S * 2 ** (wrong tries - free_failures)`` seconds,
    at most ``max_wait_s``, have passed since its last wrong try; a try before that is refused without
    looking at the pairing and counts as nothing. A right pairing does not wipe the wrong ones before it:
    they age out of the window. Bounded memory: a caller whose wrong tries all left the window is
    forgotten, each caller keeps at most ``free_failures + 64`` tries, and at most ``max_callers`` callers
    are kept (the least recently active forgotten first).

    Held in memory by each process: several replicas each count on their own, so a caller spread over
    them gets a few more tries — acceptable for slowing guessing down, which is all it is for.
    """

    free_failures: int
    window_s: float
    max_wait_s: float
    first_wait_s: float = FIRST_WAIT_S
    max_callers: int = MAX_CALLERS
    clock: Callable[[], float] = time.monotonic
    _callers: OrderedDict[str, _Caller] = field(default_factory=OrderedDict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.free_failures < 1 or self.window_s <= 0 or self.max_wait_s <= 0 or self.first_wait_s <= 0:
            raise ValueError("the tracking limits must be positive")

    def __len__(self) -> int:
        return len(self._callers)

    def wait_s(self, wrong_tries: int) -> float:
        """The wait after ``wrong_tries`` wrong tries in the window (0 while they are free)."""
        if wrong_tries < self.free_failures:
            return 0.0
        # The exponent is capped: past it the wait is the maximum anyway, and 2.0 ** n cannot overflow.
        exponent = min(wrong_tries - self.free_failures, 60)
        return min(self.max_wait_s, self.first_wait_s * 2.0**exponent)

    def begin(self, key: str) -> None:
        """Start a try by caller ``key``; raises ResourceExhaustedError saying how long to wait when the
        caller must wait first. Every begun try must be ended with :meth:`finish`."""
        now = self.clock()
        with self._lock:
            self._forget_stale(now)
            caller = self._callers.get(key)
            if caller is not None:
                self._prune(caller, now)
                wait = self.wait_s(len(caller.failures) + caller.pending)
                last = caller.failures[-1] if caller.failures else now
                remaining = last + wait - now if wait else 0.0
                if remaining > 0:
                    raise ResourceExhaustedError(
                        f"too many wrong tracking tries: wait {math.ceil(remaining)} s before trying again"
                    )
            else:
                caller = _Caller(deque(maxlen=self.free_failures + _MAX_EXTRA_TRIES))
                self._callers[key] = caller
                while len(self._callers) > self.max_callers:
                    self._callers.popitem(last=False)
            caller.pending += 1
            caller.last_seen = now
            self._callers.move_to_end(key)

    def finish(self, key: str, *, wrong: bool) -> None:
        """End a try begun with :meth:`begin`: a wrong one is counted from now (a try that never got to
        compare the pairing, e.g. the database was down, is not wrong)."""
        now = self.clock()
        with self._lock:
            caller = self._callers.get(key)
            if caller is None:
                # Forgotten meanwhile (the table was full): the try cannot be held against anyone.
                return
            caller.pending = max(0, caller.pending - 1)
            if wrong:
                caller.failures.append(now)
                caller.last_seen = now
                self._callers.move_to_end(key)
            self._prune(caller, now)
            if not caller.failures and not caller.pending:
                del self._callers[key]

    def _prune(self, caller: _Caller, now: float) -> None:
        while caller.failures and caller.failures[0] <= now - self.window_s:
            caller.failures.popleft()

    def _forget_stale(self, now: float) -> None:
        """Forget callers not seen for a whole window (their wrong tries all left it); the table is kept in
        order of last activity, so only its front needs looking at."""
        while self._callers:
            key, caller = next(iter(self._callers.items()))
            if caller.pending or caller.last_seen > now - self.window_s:
                return
            del self._callers[key]
