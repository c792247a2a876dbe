"""Settings of the hub: the platform's, the peer-call settings (it reads the five domains over gRPC for the
360 view's live detail and acknowledges safety alerts there), and its own knobs, each named
``hub_<knob>`` (environment ``HUB_<KNOB>``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from services.platform.grpc_client import PeerAddress, PeerSettings

__all__ = ["HubSettings"]

_TOPIC = r"^[A-Za-z0-9._-]{1,249}$"
Topic = Annotated[str, Field(min_length=1, pattern=_TOPIC)]


class HubSettings(PeerSettings):
    service_name: Annotated[str, Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")] = "hub"

    # --- what it publishes and consumes --------------------------------------------------------------
    hub_events_topic: Topic = "cityhub.hub.events.v1"
    hub_safety_events_topic: Topic = "cityhub.safety.events.v1"
    hub_industry_events_topic: Topic = "cityhub.industry.events.v1"
    hub_kitchen_events_topic: Topic = "cityhub.kitchen.events.v1"
    hub_commerce_events_topic: Topic = "cityhub.commerce.events.v1"
    hub_govservice_events_topic: Topic = "cityhub.govservice.events.v1"
    # Events applied per projection transaction.
    hub_max_poll_records: Annotated[int, Field(ge=1, le=10_000)] = 500
    # A fetch returns once this much is waiting or after the wait, whichever is first. With Kafka's
    # defaults (1 byte) a trickle of events costs a fetch round trip each, and the hub's Kafka network
    # thread then holds the GIL its 360 calls wait for; batching costs the views at most the wait.
    hub_fetch_min_bytes: Annotated[int, Field(ge=1, le=64 * 1024 * 1024)] = 256 * 1024
    hub_fetch_max_wait_ms: Annotated[int, Field(ge=0, le=5_000)] = 100

    # --- the domains, for the 360 view's live detail (and safety for acknowledging its alerts) ----------
    safety_grpc_address: PeerAddress = None
    industry_grpc_address: PeerAddress = None
    kitchen_grpc_address: PeerAddress = None
    commerce_grpc_address: PeerAddress = None
    govservice_grpc_address: PeerAddress = None
    # The whole live detail fetch is bounded by this (each domain in parallel); a slower domain's part is
    # marked unavailable and the rest is answered.
    hub_detail_timeout_s: Annotated[float, Field(gt=0, le=30)] = 1.0

    # --- the inbox ------------------------------------------------------------------------------------
    # Repeats of the same (subject, kind) within this window are one item with an occurrence count.
    hub_dedup_window_s: Annotated[float, Field(gt=0, le=7 * 86400)] = 3600.0
    # An item not acknowledged this long after it opened is escalated (by severity: critical, high,
    # medium, low/info), then reminded every hub_reminder_interval_s until acknowledged.
    hub_escalate_critical_s: Annotated[float, Field(gt=0)] = 300.0
    hub_escalate_high_s: Annotated[float, Field(gt=0)] = 900.0
    hub_escalate_medium_s: Annotated[float, Field(gt=0)] = 3600.0
    hub_escalate_low_s: Annotated[float, Field(gt=0)] = 4 * 3600.0
    hub_reminder_interval_s: Annotated[float, Field(gt=0)] = 600.0
    hub_escalation_check_interval_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # Items at linked entities, or within this distance of each other, inside this window form an incident.
    hub_correlation_window_s: Annotated[float, Field(gt=0, le=7 * 86400)] = 1800.0
    hub_correlation_distance_m: Annotated[float, Field(gt=0, le=100_000)] = 1000.0
    # Open inbox changes a slow watcher may fall behind by before it is re-sent the open items instead.
    hub_watch_queue_size: Annotated[int, Field(ge=10, le=100_000)] = 1000

    @property
    def domain_topics(self) -> list[str]:
        return [
            self.hub_safety_events_topic,
            self.hub_industry_events_topic,
            self.hub_kitchen_events_topic,
            self.hub_commerce_events_topic,
            self.hub_govservice_events_topic,
        ]
