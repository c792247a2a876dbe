"""The executor: sends a plan's actions to the services' public gRPC APIs, paced by the speed factor.

Thin on purpose: it fills in the :class:`~services.simulator.plan.Ref` values from earlier answers, turns a
caller kind into a bearer token, sends, retries UNAVAILABLE and DEADLINE_EXCEEDED with the same request id,
and counts. An action waits for the actions it needs (and is skipped, with them, when one of them failed);
independent actions run side by side on a few worker threads. It never touches a database or a topic.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import grpc
import structlog
from cityhub.commerce.v1 import commerce_pb2
from cityhub.govservice.v1 import govservice_pb2
from cityhub.industry.v1 import industry_pb2
from cityhub.kitchen.v1 import kitchen_pb2
from cityhub.safety.v1 import safety_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from services.platform.security.tokens import TokenIssuer
from services.simulator.plan import Action, Ref

__all__ = ["SERVICES", "Executor", "Outcome", "Report", "build_request"]

log = structlog.get_logger("simulator")

# Each service the simulator plays against: its gRPC service name and its messages' module.
SERVICES: dict[str, tuple[str, Any]] = {
    "safety": ("cityhub.safety.v1.SafetyService", safety_pb2),
    "industry": ("cityhub.industry.v1.IndustryService", industry_pb2),
    "kitchen": ("cityhub.kitchen.v1.KitchenService", kitchen_pb2),
    "commerce": ("cityhub.commerce.v1.CommerceService", commerce_pb2),
    "govservice": ("cityhub.govservice.v1.CrossRegionService", govservice_pb2),
}
_RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 4.0)
_TOKEN_TTL_S = 12 * 3600
_PROGRESS_EVERY_S = 10.0


class Outcome:
    OK = "ok"
    # A lifecycle step a previous run already took (FAILED_PRECONDITION on a step without request id).
    DONE_BEFORE = "done_before"
    FAILED = "failed"
    # Not sent: an action it needs failed or was never part of the run.
    SKIPPED = "skipped"


@dataclass
class Report:
    """What a run did: outcomes by family and RPC, the answers of named actions, the first failures."""

    outcomes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    answers: dict[str, Message] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    planned: int = 0
    stopped: bool = False

    def count(self, outcome: str, rpc: str | None = None) -> int:
        return sum(n for (_, r, o), n in self.outcomes.items() if o == outcome and (rpc is None or r == rpc))

    def summary(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (_, _, outcome), n in self.outcomes.items():
            totals[outcome] += n
        return {"planned": self.planned, **totals}


def _resolve(value: Any, answers: Mapping[str, Message]) -> Any:
    if isinstance(value, Ref):
        found: Any = answers[value.key]
        for part in value.path.split("."):
            found = found[int(part)] if part.isdigit() else getattr(found, part)
        return found
    if isinstance(value, Mapping):
        return {k: _resolve(v, answers) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_resolve(v, answers) for v in value]
    return value


def build_request(action: Action, answers: Mapping[str, Message]) -> Message:
    """The action's request message, its Refs filled in from ``answers``."""
    module = SERVICES[action.service][1]
    message: Message = getattr(module, f"{action.rpc}Request")()
    return json_format.ParseDict(_resolve(action.request, answers), message)


class _Tokens:
    """One bearer token per caller kind, reissued before it expires."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self._issuer = issuer
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, str]] = {}

    def metadata(self, caller: str) -> tuple[tuple[str, str], ...]:
        with self._lock:
            issued = self._tokens.get(caller)
            if issued is None or time.monotonic() - issued[0] > _TOKEN_TTL_S / 2:
                issued = (time.monotonic(), self._issue(caller))
                self._tokens[caller] = issued
        bearer = ("authorization", f"Bearer {issued[1]}")
        if caller.startswith("clerk:"):
            # A clerk's answer shows the applicant to a clerk cleared for it: the platform wants the purpose.
            return (bearer, ("x-purpose", "cross-region application handling"))
        return (bearer,)

    def _issue(self, caller: str) -> str:
        # The simulator is a tool acting for the district's gateways and feeds (role service); where a
        # step belongs to a person (the command centre dispatching, police resolving, a clerk taking an
        # application's step) it acts with that person's role, as the services' POLICY tables require.
        if caller == "service":
            return self._issuer.issue(sub="service:simulator", roles=("service",), ttl_s=_TOKEN_TTL_S)
        if caller == "operator":
            return self._issuer.issue(
                sub="simulator:command-centre", roles=("district_operator",), ttl_s=_TOKEN_TTL_S
            )
        if caller == "police":
            return self._issuer.issue(sub="simulator:police-dispatch", roles=("police",), ttl_s=_TOKEN_TTL_S)
        if caller.startswith("clerk:"):
            region = caller.split(":", 1)[1]
            return self._issuer.issue(
                sub=f"simulator:clerk-{region}",
                roles=("gov_clerk",),
                scopes=(f"region:{region}",),
                ttl_s=_TOKEN_TTL_S,
            )
        raise ValueError(f"unknown caller kind {caller!r}")


class Executor:
    def __init__(
        self,
        targets: Mapping[str, str],
        issuer: TokenIssuer,
        *,
        speed: float | None,
        workers: int = 6,
        timeout_s: float = 15.0,
        attempts: int = 6,
        keep_answers: Callable[[Action], bool] | None = None,
    ) -> None:
        """``speed``: simulated seconds per wall second; None sends as fast as the services take it."""
        self._targets = dict(targets)
        self._tokens = _Tokens(issuer)
        self._speed = speed
        self._workers = workers
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._keep = keep_answers or (lambda action: bool(action.key))
        self._channels: dict[str, grpc.Channel] = {}
        self.stop_event = threading.Event()
        self._lock = threading.Lock()

    def _channel(self, service: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(service)
            if channel is None:
                address = self._targets.get(service)
                if not address:
                    raise KeyError(f"no target address for {service}")
                channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)])
                self._channels[service] = channel
            return channel

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()

    def run(self, actions: Iterable[Action], start: datetime) -> Report:
        """Send every action at its moment (simulated ``start`` is now); returns when all are answered or
        the stop event is set."""
        report = Report()
        futures: dict[str, Future[str]] = {}
        wall0 = time.monotonic()
        last_progress = wall0
        slots = threading.BoundedSemaphore(self._workers * 4)
        with ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="simulator") as pool:
            for action in actions:
                report.planned += 1
                if self._wait_until_due(action, start, wall0):
                    report.stopped = True
                    break
                verdict = self._needs_met(action, futures)
                if verdict is not None:
                    self._record(
                        report, action, Outcome.SKIPPED, verdict if report.count(Outcome.SKIPPED) < 5 else ""
                    )
                    if action.key:
                        futures[action.key] = _done(Outcome.SKIPPED)
                    continue
                while not slots.acquire(timeout=0.5):
                    if self.stop_event.is_set():
                        break
                if self.stop_event.is_set():
                    report.stopped = True
                    break
                future = pool.submit(self._send, action, report)
                future.add_done_callback(lambda _f: slots.release())
                if action.key:
                    futures[action.key] = future
                now = time.monotonic()
                if now - last_progress >= _PROGRESS_EVERY_S:
                    last_progress = now
                    log.info("simulator_progress", simulated=action.at.isoformat(), **report.summary())
        self.close()
        log.info("simulator_finished", stopped=report.stopped, **report.summary())
        return report

    def _wait_until_due(self, action: Action, start: datetime, wall0: float) -> bool:
        """Pace: True when told to stop while waiting."""
        if self._speed is None:
            return self.stop_event.is_set()
        due = wall0 + (action.at - start).total_seconds() / self._speed
        delay = due - time.monotonic()
        return self.stop_event.wait(delay) if delay > 0 else self.stop_event.is_set()

    def _needs_met(self, action: Action, futures: Mapping[str, Future[str]]) -> str | None:
        """None when every needed action succeeded (waiting for those under way), else why not."""
        for key in action.needs:
            future = futures.get(key)
            if future is None:
                return f"{action.rpc} #{action.index}: {key} is not part of this run"
            while True:
                try:
                    outcome = future.result(timeout=0.5)
                    break
                except TimeoutError:
                    if self.stop_event.is_set():
                        return "stopping"
            if outcome not in (Outcome.OK, Outcome.DONE_BEFORE):
                return f"{action.rpc} #{action.index}: {key} {outcome}"
        return None

    def _record(self, report: Report, action: Action, outcome: str, detail: str = "") -> None:
        with self._lock:
            report.outcomes[(action.family, action.rpc, outcome)] += 1
            if detail and len(report.failures) < 50:
                report.failures.append(detail)

    def _send(self, action: Action, report: Report) -> str:
        try:
            request = build_request(action, report.answers)
        except (KeyError, IndexError, json_format.ParseError) as error:
            self._record(
                report, action, Outcome.FAILED, f"{action.rpc} #{action.index}: cannot build: {error}"
            )
            log.warning("simulator_action_unbuildable", rpc=action.rpc, index=action.index, error=str(error))
            return Outcome.FAILED
        service_name, module = SERVICES[action.service]
        method: Callable[..., Message] = self._channel(action.service).unary_unary(
            f"/{service_name}/{action.rpc}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=getattr(module, f"{action.rpc}Response").FromString,
        )
        for attempt in range(self._attempts):
            try:
                answer = method(
                    request, metadata=self._tokens.metadata(action.caller), timeout=self._timeout_s
                )
            except grpc.RpcError as error:
                code = error.code()
                if code in _RETRIED and attempt + 1 < self._attempts and not self.stop_event.is_set():
                    self.stop_event.wait(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])
                    continue
                if action.step and code is grpc.StatusCode.FAILED_PRECONDITION:
                    self._record(report, action, Outcome.DONE_BEFORE)
                    return Outcome.DONE_BEFORE
                detail = f"{action.service}.{action.rpc} #{action.index}: {code.name}: {error.details()}"
                self._record(report, action, Outcome.FAILED, detail)
                log.warning(
                    "simulator_action_failed",
                    service=action.service,
                    rpc=action.rpc,
                    index=action.index,
                    code=code.name,
                    details=error.details(),
                )
                return Outcome.FAILED
            with self._lock:
                if self._keep(action):
                    report.answers[action.key] = answer
            self._record(report, action, Outcome.OK)
            if action.family == "incident":
                log.info("simulator_incident_step", rpc=action.rpc, key=action.key, at=action.at.isoformat())
            return Outcome.OK
        return Outcome.FAILED


def _done(outcome: str) -> Future[str]:
    future: Future[str] = Future()
    future.set_result(outcome)
    return future
