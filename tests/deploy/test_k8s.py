"""The Kubernetes deployment, checked offline: every overlay rendered with the pinned kustomize, validated
against Kubernetes 1.33 (kubernetes-validate --strict), linted (checkov, exceptions annotated in place),
and held to the project's own rules (tests/deploy/k8s_checks.py); the image's Dockerfile linted with
hadolint. A broken copy of the manifests shows that each check fails when it should."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.cli.db_commands import SERVICES
from tests.deploy.k8s_checks import (
    REPO,
    TOOLS,
    Process,
    Render,
    processes,
    project_problems,
    render,
    secret_values,
)

pytestmark = pytest.mark.deploy

K8S = REPO / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
KUBERNETES_VERSION = "1.33.0"


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _validate(manifest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_bin("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(manifest)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@dataclass(frozen=True)
class CheckovOutcome:
    failed: list[str]  # "<check id> <resource>"
    passed: int


def _checkov(manifest: Path) -> CheckovOutcome:
    checkov = TOOLS / "checkov" / "bin" / "checkov"
    assert checkov.exists(), f"{checkov} is missing: run `make k8s-tools` (make test does)"
    result = subprocess.run(
        [
            str(checkov),
            "--file",
            str(manifest),
            "--framework",
            "kubernetes",
            # Offline: no download of external checks or of the vendor's guidelines.
            "--skip-download",
            "--quiet",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(result.stdout)
    sections = report if isinstance(report, list) else [report]
    failed = [f"{c['check_id']} {c['resource']}" for s in sections for c in s["results"]["failed_checks"]]
    passed = sum(int(s["summary"]["passed"]) for s in sections)
    assert (result.returncode != 0) == bool(failed), result.stderr
    return CheckovOutcome(failed, passed)


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, Render]:
    """(name, the rendered YAML in a file, its objects) for each overlay."""
    text, objects = render(K8S / "overlays" / request.param)
    path = tmp_path_factory.mktemp(f"render-{request.param}") / "manifest.yaml"
    path.write_text(text)
    return request.param, path, objects


def test_every_overlay_is_there() -> None:
    assert OVERLAYS == ["kind", "minikube"]


def test_overlay_validates_strictly_against_kubernetes_1_33(overlay: tuple[str, Path, Render]) -> None:
    _name, path, _objects = overlay
    result = _validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_overlay_passes_checkov(overlay: tuple[str, Path, Render]) -> None:
    _name, path, _objects = overlay
    outcome = _checkov(path)
    assert outcome.failed == []
    assert outcome.passed > 100


def test_overlay_keeps_the_project_rules(overlay: tuple[str, Path, Render]) -> None:
    _name, _path, objects = overlay
    assert project_problems(objects, processes()) == []


def test_overlay_runs_two_replicas_of_the_hub_of_a_domain_service_and_of_the_web(
    overlay: tuple[str, Path, Render],
) -> None:
    _name, _path, objects = overlay
    replicas = {d["metadata"]["name"]: d["spec"].get("replicas", 1) for d in objects.of_kind("Deployment")}
    assert replicas["hub"] == 2
    assert replicas["industry"] == 2
    assert replicas["web"] == 2
    ingress = objects.of_kind("Ingress")
    assert [i["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] for i in ingress] == [
        "web"
    ]


def test_web_dashboard_is_served_with_an_http_readiness_probe(overlay: tuple[str, Path, Render]) -> None:
    """The web frontend (services.web, HTTP 8080) is held to the same rules as a process of processes.toml,
    ready on /healthz, and is the only backend of the Ingress."""
    _name, _path, objects = overlay
    web = Process("web", "services.web", None)
    assert project_problems(objects, [web]) == []
    deployment = objects.named("Deployment", "web")
    assert deployment is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert {"name": "http", "containerPort": 8080} in container["ports"]


def test_only_placeholders_are_committed(overlay: tuple[str, Path, Render]) -> None:
    _name, _path, objects = overlay
    values = {value for data in secret_values(objects).values() for value in data.values()}
    assert values == {"REPLACE_ME"}


def test_topics_allow_the_replicas(overlay: tuple[str, Path, Render]) -> None:
    """A consumer group spreads a topic's partitions over its members: more replicas than partitions
    would leave some idle."""
    _name, _path, objects = overlay
    config = objects.named(
        "ConfigMap",
        next(
            c["metadata"]["name"]
            for c in objects.of_kind("ConfigMap")
            if c["metadata"]["name"].startswith("cityhub-config")
        ),
    )
    assert config is not None
    partitions = int(config["data"]["TOPIC_PARTITIONS"])
    most = max(d["spec"].get("replicas", 1) for d in objects.of_kind("Deployment"))
    assert partitions >= most


def test_the_seed_file_in_the_cluster_is_the_local_one() -> None:
    assert (K8S / "base" / "govservice-seed.toml").read_bytes() == (
        REPO / "deploy" / "local" / "govservice-seed.toml"
    ).read_bytes()


def test_the_migrations_job_knows_every_service_with_a_grpc_port() -> None:
    assert sorted(SERVICES) == sorted(p.name for p in processes() if p.grpc_port is not None)


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_bin("hadolint"), "--failure-threshold", "info", str(REPO / "deploy" / "docker" / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the checks themselves fail on broken input --------------------------------------------------------


def _broken_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("tools"))
    hub = copy / "base" / "services" / "hub.yaml"
    text = hub.read_text()
    # The liveness probe on a wrong port, the JWT Secret misnamed, no memory limit, no DATABASE_URL.
    text = text.replace(
        "          livenessProbe:\n            grpc:\n              port: 50066",
        "          livenessProbe:\n            grpc:\n              port: 50099",
    )
    text = text.replace("secretName: cityhub-jwt", "secretName: cityhub-jwt-typo")
    text = text.replace("              memory: 768Mi\n", "", 1)
    text = text.replace("            - name: DATABASE_URL\n", "            - name: DATABASE_URI\n")
    text = text.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")
    # One fixed group instance id for every replica.
    text = text.replace(
        "            - name: KAFKA_GROUP_INSTANCE_ID\n              valueFrom:\n                fieldRef:\n"
        "                  fieldPath: metadata.name\n",
        "            - name: KAFKA_GROUP_INSTANCE_ID\n              value: hub\n",
    )
    hub.write_text(text)
    (copy / "base" / "services" / "safety.yaml").write_text(
        (copy / "base" / "services" / "safety.yaml")
        .read_text()
        .replace("name: safety\n  labels", "name: safety-old\n  labels")
    )
    rebuild = copy / "base" / "hub-rebuild.yaml"
    rebuild.write_text(rebuild.read_text().replace("value: hub\n", "value: hub_rebuilt\n", 1))
    return copy


def test_the_project_checks_name_each_broken_rule(tmp_path: Path) -> None:
    _text, objects = render(_broken_copy(tmp_path) / "overlays" / "kind")
    problems = "\n".join(project_problems(objects, processes()))
    assert "livenessProbe probes port 50099, the service listens on 50066" in problems
    assert "Secret 'cityhub-jwt-typo' is not in the render" in problems
    assert "Deployment/hub container hub: no limits.memory" in problems
    assert "Deployment/hub: setting DATABASE_URL is required but not provided" in problems
    assert "Deployment/hub container hub: readOnlyRootFilesystem is not true" in problems
    assert "safety (deploy/local/processes.toml) has no Deployment" in problems
    assert "Deployment/hub: KAFKA_GROUP_INSTANCE_ID is not the pod's name" in problems
    assert "CronJob/hub-rebuild-compare: SERVICE_NAME differs from Deployment/hub's" in problems


def test_strict_validation_and_checkov_fail_on_broken_manifests(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\n  namespace: cityhub\nspec:\n"
        "  selector:\n    matchLabels: {app: bad}\n  template:\n    metadata:\n      labels: {app: bad}\n"
        "    spec:\n      containers:\n        - name: bad\n          image: bad:latest\n"
        "          securityContext:\n            privileged: true\n          unknownField: 1\n"
    )
    assert _validate(bad).returncode != 0
    assert "CKV_K8S_16 Deployment.cityhub.bad" in _checkov(bad).failed  # a privileged container


def test_hadolint_fails_on_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\n")
    result = subprocess.run(
        [_bin("hadolint"), str(bad)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the latest tag


def test_dev_secrets_replace_every_placeholder_with_working_keys(tmp_path: Path) -> None:
    """deploy/k8s/dev_secrets.py (the walkthrough's secrets) renders over an overlay: no placeholder is
    left, the service tokens verify with the public key the services get, person keys are 32 bytes."""

    from pydantic import SecretStr

    from services.platform.security.settings import SecuritySettings
    from services.platform.security.tokens import TokenVerifier
    from services.platform.vault import decode_person_key

    target = tmp_path / "kind"
    subprocess.run(
        [sys.executable, str(K8S / "dev_secrets.py"), "kind", "--into", str(target)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    _text, objects = render(target)
    values = secret_values(objects)
    assert all(v != "REPLACE_ME" for data in values.values() for v in data.values())
    assert project_problems(objects, processes()) == []
    public = SecretStr(values["cityhub-jwt"]["public.pem"])
    verifier = TokenVerifier.from_settings(SecuritySettings(jwt_public_key=public))
    for caller, token in values["cityhub-service-tokens"].items():
        assert verifier.verify(token).sub == f"service:{caller}"
    for name in ("safety", "kitchen", "commerce", "govservice"):
        assert len(decode_person_key(values["cityhub-keys"][name])) == 32
    # Run again: the database passwords stay (PostgreSQL already holds them).
    before = values["cityhub-db"]
    subprocess.run(
        [sys.executable, str(K8S / "dev_secrets.py"), "kind", "--into", str(target)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert secret_values(render(target)[1])["cityhub-db"] == before
