"""Fault drills on the service processes (issue #16), part of `make test`: a service SIGKILLed mid-load
and started again as `make run` starts it, and the outbox relay (a thread of each service process)
killed with committed changes not yet on Kafka, and again with changes on Kafka not yet marked sent.

Each drill runs every process of processes.toml under a steady load of creates and ends with
:func:`tests.drills.drill_support.check`: every acknowledged change appears exactly once, a change whose
caller gave up appears at most once, nothing appears that nobody asked for, callers heard only OK,
UNAVAILABLE or DEADLINE_EXCEEDED, and every process reported SERVING again without help (a killed one is
started once more, as a supervisor would, and nothing else is restarted)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.drills.drill_support import (
    Drill,
    DrillStack,
    HeldTransaction,
    Verdict,
    hold_relay,
    lock_unsent_rows,
    unsent_event_ids,
)

pytestmark = pytest.mark.drill

# A supervisor noticing the death and starting the process again.
RESTART_DELAY_S = 1.0
LOAD_BEFORE_S = 3.0
LOAD_AFTER_S = 3.0


def passed(verdict: Verdict) -> None:
    assert not verdict.problems, "\n".join(verdict.problems)


@pytest.mark.parametrize("victim", ["safety", "industry"])
def test_a_service_sigkilled_mid_load_comes_back_losing_and_doubling_nothing(
    victim: str, shared_stack: DrillStack, drill_results: list[dict[str, Any]], tmp_path: Path
) -> None:
    fault = f"SIGKILL {victim} mid-load; started again {RESTART_DELAY_S:g} s later as `make run` starts it"
    with Drill(f"sigkill-{victim}", shared_stack, tmp_path, drill_results, fault=fault) as drill:
        drill.under_load(LOAD_BEFORE_S)
        drill.fault_begins()
        drill.processes[victim].kill()
        time.sleep(RESTART_DELAY_S)
        drill.processes[victim].start()
        drill.fault_ends()
        drill.wait_serving()
        drill.under_load(LOAD_AFTER_S)
        verdict = drill.finish(restarted=[victim])
    passed(verdict)
    assert drill.driver is not None
    heard = {code for c in drill.driver.changes if c.service == victim for code in c.codes}
    assert "UNAVAILABLE" in heard, f"the kill went unnoticed by {victim}'s callers ({heard}): no drill"


def test_relay_killed_with_committed_changes_unpublished_publishes_each_once_after_restart(
    shared_stack: DrillStack, drill_results: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Both relays are held off their outboxes (their lock taken, as a standby relay finds it) while
    changes commit, then both processes are SIGKILLed: those rows were committed and never published.
    After the restart each appears on Kafka exactly once (one record, not merely one ce_id)."""
    fault = "relays held off while changes commit, then SIGKILL of every process; started again"
    with Drill("relay-killed-before-publish", shared_stack, tmp_path, drill_results, fault=fault) as drill:
        db = shared_stack.database_url
        drill.under_load(2.0)
        held = [hold_relay(db, p.schema) for p in drill.processes.values()]
        try:
            drill.under_load(3.0)
            pending = {name: unsent_event_ids(db, p.schema) for name, p in drill.loaded.items()}
            waiting = set().union(*pending.values())
            assert all(pending.values()), f"no change is waiting in some outbox: {pending}"
            assert drill.events is not None
            assert not waiting & drill.events.ids(), "a held relay published anyway: the drill is void"
            drill.fault_begins()
            for process in drill.processes.values():
                process.kill()
        finally:
            for transaction in held:
                transaction.release()
        drill.extra["rows_committed_unpublished_at_kill"] = {k: len(v) for k, v in pending.items()}
        time.sleep(RESTART_DELAY_S)
        for process in drill.processes.values():
            process.start()
        drill.fault_ends()
        drill.wait_serving()
        drill.under_load(2.0)
        verdict = drill.finish(restarted=list(drill.processes))
    passed(verdict)
    copies = {ce_id: verdict.copies.get(ce_id, 0) for ce_id in waiting}
    assert set(copies.values()) == {1}, {k: v for k, v in copies.items() if v != 1}


def test_relay_killed_after_publishing_before_marking_sent_resends_the_same_events(
    shared_stack: DrillStack, drill_results: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The relay's at-least-once window: the relays publish a batch and Kafka acknowledges it, but their
    marking the rows sent waits (the drill holds the rows' locks) when both processes are SIGKILLed.
    After the restart the relays send those rows again: the same ce_id, key and bytes, which a consumer
    drops by ce_id, so each change is still one event; no change is lost and none gets a second id."""
    fault = "relays publish, then SIGKILL of every process before the rows are marked sent; started again"
    with Drill("relay-killed-after-publish", shared_stack, tmp_path, drill_results, fault=fault) as drill:
        db = shared_stack.database_url
        drill.under_load(2.0)
        held = [hold_relay(db, p.schema) for p in drill.processes.values()]
        locked: list[HeldTransaction] = []
        try:
            drill.under_load(2.0)
            locked = [lock_unsent_rows(db, p.schema) for p in drill.loaded.values()]
            published = set().union(*(rows.event_ids for rows in locked))
            assert all(rows.event_ids for rows in locked), "no change is waiting in some outbox"
            for transaction in held:
                transaction.release()
            assert drill.events is not None
            drill.events.wait_for(published, timeout_s=30, what="the relays to publish the locked rows")
            drill.fault_begins()
            for process in drill.processes.values():
                process.kill()
        finally:
            for transaction in [*held, *locked]:
                transaction.release()
        drill.extra["rows_published_unmarked_at_kill"] = len(published)
        time.sleep(RESTART_DELAY_S)
        for process in drill.processes.values():
            process.start()
        drill.fault_ends()
        drill.wait_serving()
        drill.under_load(2.0)
        verdict = drill.finish(restarted=list(drill.processes))
    passed(verdict)
    copies = {ce_id: verdict.copies.get(ce_id, 0) for ce_id in published}
    assert set(copies.values()) == {2}, {k: v for k, v in copies.items() if v != 2}
