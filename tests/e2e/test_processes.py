"""The processes `make run` starts, run as real processes, as a newcomer would meet them: each becomes
SERVING once PostgreSQL and Kafka answer and reflection lists its services; real calls across processes
register a site (safety), a park and enterprise (industry) and a kitchen for the site (kitchen, which checks
the site with safety over gRPC with its own service token) and the enterprise's membership of a chamber
(commerce, which looks the enterprise up in industry and so approves it at once) and its cross-region
application (govservice, with the partner places from its seed file, prefilled from commerce), and their
events come back from Kafka; SIGTERM drains each and it exits 0."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import grpc
import pytest
from cityhub.commerce.v1 import commerce_pb2, commerce_pb2_grpc
from cityhub.common.v1 import common_pb2
from cityhub.govservice.v1 import govservice_pb2, govservice_pb2_grpc
from cityhub.industry.v1 import industry_pb2, industry_pb2_grpc
from cityhub.kitchen.v1 import kitchen_pb2, kitchen_pb2_grpc
from cityhub.safety.v1 import safety_pb2, safety_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.cli.run import ProcessSpec, load_processes
from services.platform.identifiers import credit_code_check_char
from services.platform.security.settings import SecuritySettings, ensure_dev_keys
from services.platform.security.tokens import TokenIssuer
from tests.kafka_support import TopicReader
from tests.support import free_port, unique_name, wait_until

REPO = Path(__file__).resolve().parents[2]
SPECS = load_processes()
pytestmark = pytest.mark.skipif(not SPECS, reason="deploy/local/processes.toml lists no process yet")


def _health(address: str) -> int | None:
    with grpc.insecure_channel(address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        try:
            return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status)
        except grpc.RpcError:
            return None


def _reflected(address: str) -> set[str]:
    with grpc.insecure_channel(address) as channel:
        stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        return {s.name for a in answers for s in a.list_services_response.service}


@dataclass
class Running:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    address: str
    log_path: Path
    log_file: IO[bytes]

    def log_tail(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def processes(
    kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Running]]:
    """Every process of processes.toml, started together as `make run` does, each on its own schema."""
    # The processes sign nothing, but verify tokens with the local dev key pair; make it before they race to.
    ensure_dev_keys()
    logs = tmp_path_factory.mktemp("e2e-logs")
    running: dict[str, Running] = {}
    ports = {spec.name: free_port() for spec in SPECS}
    # Services that call each other find their peers where this run put them, not at make run's ports.
    peers = {f"{name.upper()}_GRPC_ADDRESS": f"127.0.0.1:{port}" for name, port in ports.items()}
    try:
        for spec in SPECS:
            port = ports[spec.name]
            env = {
                **os.environ,
                **spec.env,
                **{key: value for key, value in peers.items() if key in spec.env},
                # Its own schema, so this run shares nothing with a `make run` stack on the same database.
                "SERVICE_NAME": unique_name(spec.name),
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "DATABASE_URL": database_url,
                "GRPC_PORT": str(port),
                "METRICS_PORT": "0",
                "LOG_FORMAT": "json",
                "CITYHUB_DEV_KEYS": "true",
            }
            log_path = logs / f"{spec.name}.log"
            log_file = log_path.open("wb")
            process = subprocess.Popen(
                [sys.executable, "-m", spec.module],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
            running[spec.name] = Running(spec, process, f"127.0.0.1:{port}", log_path, log_file)
        for proc in running.values():
            wait_until(
                lambda p=proc: (
                    _health(p.address) == health_pb2.HealthCheckResponse.SERVING  # type: ignore[misc]
                    or p.process.poll() is not None
                    or None
                ),
                timeout_s=120,
                what=f"{proc.spec.name} to answer health",
                interval_s=0.5,
            )
            assert proc.process.poll() is None, proc.log_tail()
        yield running
    finally:
        for proc in running.values():
            if proc.process.poll() is None:
                proc.process.kill()
                proc.process.wait()
            proc.log_file.close()


def _token() -> str:
    issuer = TokenIssuer.from_settings(SecuritySettings(dev_keys=True))
    return issuer.issue(
        sub="e2e-operator", roles=["district_operator", "industry_operator", "food_inspector"], ttl_s=600
    )


def _credit_code() -> str:
    body = "91331004" + "".join(secrets.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    return body + credit_code_check_char(body)


@pytest.mark.parametrize("name", [s.name for s in SPECS])
def test_each_process_serves_and_reflects_its_contract(processes: dict[str, Running], name: str) -> None:
    proc = processes[name]
    assert _health(proc.address) == health_pb2.HealthCheckResponse.SERVING, proc.log_tail()
    services = _reflected(proc.address)
    assert any(service.startswith(f"cityhub.{name}.") for service in services), services
    assert "grpc.health.v1.Health" in services


def test_registrations_over_grpc_reach_kafka_as_events(
    processes: dict[str, Running], kafka_bootstrap: str
) -> None:
    metadata = (("authorization", f"Bearer {_token()}"),)
    with grpc.insecure_channel(processes["safety"].address) as channel:
        safety: Any = safety_pb2_grpc.SafetyServiceStub(channel)
        site = safety.RegisterSite(
            safety_pb2.RegisterSiteRequest(
                request_id=f"e2e-{secrets.token_hex(6)}",
                name="Luqiao No. 2 Primary School",
                kind=safety_pb2.SITE_KIND_SCHOOL,
                address="18 Tongyu Road, Luqiao District, Taizhou",
                division_code="331004",
                town="Luqiao Street",
                location=common_pb2.GeoPoint(latitude=28.58, longitude=121.38),
                duty_room=safety_pb2.DutyRoomContact(name="Gate duty room", phone="0576-8288 1234"),
            ),
            metadata=metadata,
            timeout=15,
        ).site
    code = _credit_code()
    with grpc.insecure_channel(processes["industry"].address) as channel:
        industry: Any = industry_pb2_grpc.IndustryServiceStub(channel)
        park = industry.RegisterPark(
            industry_pb2.RegisterParkRequest(
                request_id=f"e2e-{secrets.token_hex(6)}",
                name="Luqiao park",
                division_code="331004",
                address="Luqiao",
            ),
            metadata=metadata,
            timeout=15,
        ).park
        industry.OnboardEnterprise(
            industry_pb2.OnboardEnterpriseRequest(
                request_id=f"e2e-{secrets.token_hex(6)}",
                credit_code=code,
                name="Taizhou Precision Co.",
                sector=industry_pb2.SECTOR_MACHINERY,
                park_id=park.park_id,
                address="Luqiao",
            ),
            metadata=metadata,
            timeout=15,
        )

    with grpc.insecure_channel(processes["kitchen"].address) as channel:
        kitchens: Any = kitchen_pb2_grpc.KitchenServiceStub(channel)
        kitchen = kitchens.RegisterKitchen(
            kitchen_pb2.RegisterKitchenRequest(
                request_id=f"e2e-{secrets.token_hex(6)}",
                site_id=site.site_id,
                name="Luqiao No. 2 Primary School kitchen",
                operator=kitchen_pb2.KitchenOperator(
                    kind=kitchen_pb2.OPERATOR_KIND_CONTRACTOR, name="Taizhou Precision Co.", credit_code=code
                ),
                meals_per_day=900,
                shifts=[kitchen_pb2.Shift(name="lunch", start_time="08:30", end_time="13:00")],
            ),
            metadata=metadata,
            timeout=15,
        ).kitchen
    # The town came from safety's record of the site: the call between the processes happened.
    assert kitchen.town == "Luqiao Street"

    with grpc.insecure_channel(processes["commerce"].address) as channel:
        commerce: Any = commerce_pb2_grpc.CommerceServiceStub(channel)
        province = commerce.CreateFederation(
            commerce_pb2.CreateFederationRequest(
                request_id=f"e2e-{secrets.token_hex(6)}",
                name="Zhejiang Federation of Industry and Commerce",
                level=commerce_pb2.FEDERATION_LEVEL_PROVINCE,
                division_code="330000",
            ),
            metadata=metadata,
            timeout=15,
        ).federation
        chamber = commerce.CreateChamber(
            commerce_pb2.CreateChamberRequest(
                request_id=f"e2e-{secrets.token_hex(6)}",
                federation_id=province.federation_id,
                name="Zhejiang Machinery Chamber",
                kind=commerce_pb2.CHAMBER_KIND_TRADE,
                sector="MACHINERY",
                join_rule=commerce_pb2.JOIN_RULE_AUTO_APPROVE_KNOWN,
            ),
            metadata=metadata,
            timeout=15,
        ).chamber
        membership = commerce.ApplyForMembership(
            commerce_pb2.ApplyForMembershipRequest(
                request_id=f"e2e-{secrets.token_hex(6)}", chamber_id=chamber.chamber_id, credit_code=code
            ),
            metadata=metadata,
            timeout=15,
        ).membership
    # Found in industry (name prefilled from it), so the chamber's rule approved it at once.
    assert (membership.enterprise_name, membership.status) == (
        "Taizhou Precision Co.",
        commerce_pb2.MEMBERSHIP_STATUS_ACTIVE,
    )

    clerk = TokenIssuer.from_settings(SecuritySettings(dev_keys=True)).issue(
        sub="e2e-clerk", roles=["gov_clerk"], scopes=["region:331004"], ttl_s=600
    )
    with grpc.insecure_channel(processes["govservice"].address) as channel:
        govservice: Any = govservice_pb2_grpc.CrossRegionServiceStub(channel)
        application = govservice.FileApplication(
            govservice_pb2.FileApplicationRequest(
                request_id=f"e2e-{secrets.token_hex(6)}",
                item_code="business_licence_change",
                filing_region="331004",
                handling_region="330782",
                enterprise=govservice_pb2.EnterpriseApplicant(credit_code=code),
                materials=[
                    "change_application_form",
                    "business_licence_original",
                    "shareholder_resolution",
                    "legal_representative_id",
                ],
            ),
            metadata=(("authorization", f"Bearer {clerk}"), ("x-purpose", "window filing")),
            timeout=15,
        ).application
    # Yiwu is a partner from the seed file; the enterprise's name came from commerce's member data.
    assert (application.enterprise.name, application.enterprise.verification) == (
        "Taizhou Precision Co.",
        govservice_pb2.VERIFICATION_VERIFIED,
    )

    wanted = {
        ("cityhub.safety.v1.SiteRegistered", site.site_id),
        ("cityhub.industry.v1.ParkRegistered", park.park_id),
        ("cityhub.industry.v1.EnterpriseOnboarded", code),
        ("cityhub.kitchen.v1.KitchenRegistered", kitchen.kitchen_id),
        ("cityhub.commerce.v1.MembershipApproved", membership.membership_id),
        ("cityhub.govservice.v1.ApplicationFiled", application.application_no),
    }

    def seen(records: list[Any]) -> set[tuple[str, str]]:
        found = set()
        for record in records:
            headers = {k: v.decode() for k, v in record.headers}
            found.add((headers.get("ce_type", ""), headers.get("ce_subject", "")))
        return found & wanted

    domains = ("safety", "industry", "kitchen", "commerce", "govservice")
    topics = [f"cityhub.{name}.events.v1" for name in domains]
    with TopicReader(kafka_bootstrap, topics) as reader:
        reader.read_until(lambda rs: seen(rs) == wanted, timeout_s=30, what="the six events")


@pytest.mark.parametrize("name", [s.name for s in SPECS])
def test_sigterm_drains_and_exits_zero(processes: dict[str, Running], name: str) -> None:
    proc = processes[name]
    proc.process.send_signal(signal.SIGTERM)
    assert proc.process.wait(timeout=60) == 0, proc.log_tail()
    assert '"shutdown_signal_received"' in proc.log_path.read_text()
