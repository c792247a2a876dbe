"""The industry service's settings: the platform's plus the domain's knobs, each named ``industry_<knob>``
(environment ``INDUSTRY_<KNOB>``). The district time zone is the platform's ``DISTRICT_TIME_ZONE``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from services.platform.settings import ServiceSettings

__all__ = ["IndustrySettings"]


class IndustrySettings(ServiceSettings):
    service_name: Annotated[str, Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")] = "industry"

    # --- topics ------------------------------------------------------------------------------------
    industry_events_topic: Annotated[str, Field(min_length=1)] = "cityhub.industry.events.v1"
    industry_telemetry_topic: Annotated[str, Field(min_length=1)] = "cityhub.industry.telemetry.v1"

    # --- telemetry ingest --------------------------------------------------------------------------
    # Samples further ahead of the server's clock than this are refused (clock skew of the box).
    industry_telemetry_max_future_s: Annotated[float, Field(ge=0, le=3600)] = 300.0
    # Samples older than this are refused: the late-data window the hourly rollups stay open for.
    industry_telemetry_max_age_s: Annotated[float, Field(gt=0, le=90 * 86400)] = 7 * 86400.0
    industry_telemetry_max_samples_per_request: Annotated[int, Field(ge=1, le=100_000)] = 20_000
    # An unknown device id is looked up in the database again at most this often (devices registered
    # by another replica become known within this time; a flood of bad ids costs no query per sample).
    industry_device_recheck_interval_s: Annotated[float, Field(gt=0, le=300)] = 2.0
    # The longest the ingest RPC waits for Kafka's acknowledgement (a caller's shorter deadline wins)
    # before answering UNAVAILABLE; the client retries with the same request id.
    industry_telemetry_ack_timeout_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    # Start times of the newest samples remembered per device, so that a re-sent sample is answered as a
    # duplicate at once (best effort, this process only; the rollup counts each sample once regardless).
    # 600 is ten minutes at the default one sample a second, what a gateway re-sends after a reconnect;
    # 8 bytes each. 0 remembers nothing.
    industry_telemetry_recent_starts_per_device: Annotated[int, Field(ge=0, le=100_000)] = 600
    # Benchmark baseline only (bench/telemetry.py, "one record per sample"): publish each accepted sample
    # as a Kafka record of its own (keyed by its device) instead of packing a request's samples into one
    # record per partition, to measure what packing saves. Never on in a deployment; default off.
    industry_telemetry_record_per_sample: bool = False
    # Power beyond this multiple of the machine's rated power is physically implausible.
    industry_power_rated_multiple: Annotated[float, Field(ge=1, le=10)] = 2.0
    industry_temperature_min_c: float = -50.0
    industry_temperature_max_c: float = 400.0
    industry_spindle_load_max_pct: Annotated[float, Field(gt=0)] = 300.0
    # Parts per sample beyond this are a counter glitch, not production.
    industry_max_parts_per_sample: Annotated[int, Field(ge=1)] = 100_000

    # Allocations between two young-generation garbage collections (Python's default is 700). 0 leaves the
    # collector exactly as Python sets it up (no freeze either).
    # Each ingest request allocates a few objects per sample that live for the whole request; at the
    # default the collector ran full-heap collections many times a second (see docs/services/industry.md).
    industry_gc_young_threshold: Annotated[int, Field(ge=0)] = 50_000

    # --- rollup and health -------------------------------------------------------------------------
    # Run the telemetry -> hourly rollup consumer in this process (a deployment may run it apart).
    industry_rollup_consumer_enabled: bool = True
    # Telemetry records applied per rollup transaction (each packs hundreds of samples): a device's rows
    # are written once per transaction, so larger polls mean fewer writes per sample.
    industry_rollup_max_poll_records: Annotated[int, Field(ge=1, le=5000)] = 200
    # Run the periodic health check (silence alerts, publishing finished hours) in this process.
    industry_health_monitor_enabled: bool = True
    industry_health_check_interval_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # A device in fault continuously for longer than this raises a fault alert.
    industry_fault_alert_after_s: Annotated[float, Field(gt=0)] = 600.0
    # A device that sent nothing for longer than this raises an offline alert.
    industry_silence_alert_after_s: Annotated[float, Field(gt=0)] = 300.0
    # A finished hour is published (UtilisationRolledUp) this long after it ends, to let late samples in.
    industry_rollup_publish_delay_s: Annotated[float, Field(ge=0)] = 300.0

    # --- other domain rules ------------------------------------------------------------------------
    # A workshop is digital when at least this share of its machines is connected and reporting.
    industry_digital_workshop_share: Annotated[float, Field(gt=0, le=1)] = 0.8
