"""The project's own checks of a rendered Kubernetes overlay (tests/deploy/test_k8s.py runs them).

Each function returns the problems it found as readable lines (empty: all good), so one test can show
every broken rule at once, and a test on a deliberately broken copy can show that each rule bites.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; comes with kubernetes-validate
from pydantic_settings import BaseSettings

__all__ = [
    "REPO",
    "TOOLS",
    "Process",
    "Render",
    "processes",
    "project_problems",
    "render",
    "required_settings",
    "secret_values",
]

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".local" / "tools"
Obj = dict[str, Any]


@dataclass(frozen=True)
class Process:
    name: str
    module: str
    grpc_port: int | None
    env: dict[str, str] = field(default_factory=dict)


def processes(path: Path = REPO / "deploy" / "local" / "processes.toml") -> list[Process]:
    """What `make run` starts and serves (kinds "grpc" and "http"): every one of these must run in the
    cluster too. A "job" (the district simulator) is local demo tooling that plays a made-up district
    against the services; a cluster serves a real district's data, so it has no place there."""
    table = tomllib.loads(path.read_text())
    return [
        Process(p["name"], p["module"], p.get("grpc_port"), dict(p.get("env", {})))
        for p in table.get("process", [])
        if p.get("kind", "grpc") != "job"
    ]


@dataclass(frozen=True)
class Render:
    objects: list[Obj]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o.get("kind") == kind]

    def named(self, kind: str, name: str) -> Obj | None:
        return next((o for o in self.of_kind(kind) if o["metadata"]["name"] == name), None)

    def keys_of(self, kind: str, name: str) -> set[str] | None:
        found = self.named(kind, name)
        if found is None:
            return None
        return set(found.get("data") or {}) | set(found.get("stringData") or {})


def render(directory: Path) -> tuple[str, Render]:
    """``kustomize build directory``: the YAML text and its objects."""
    kustomize = TOOLS / "bin" / "kustomize"
    if not kustomize.exists():
        raise AssertionError(f"{kustomize} is missing: run `make k8s-tools` (make test does)")
    result = subprocess.run(
        [str(kustomize), "build", str(directory)], capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise AssertionError(f"kustomize build {directory} failed:\n{result.stderr}")
    return result.stdout, Render([o for o in yaml.safe_load_all(result.stdout) if o])


def required_settings(module: str) -> set[str]:
    """Environment names of the fields without a default in the process's settings class (the one
    defined in ``<module>.settings``), e.g. {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"}."""
    settings_module = importlib.import_module(f"{module}.settings")
    classes = [
        c
        for _, c in inspect.getmembers(settings_module, inspect.isclass)
        if issubclass(c, BaseSettings) and c.__module__ == settings_module.__name__
    ]
    if len(classes) != 1:
        raise AssertionError(f"{module}.settings defines {len(classes)} settings classes, expected one")
    cls = classes[0]
    prefix = str(cls.model_config.get("env_prefix") or "")
    names: set[str] = set()
    for name, info in cls.model_fields.items():
        if info.is_required():
            alias = info.validation_alias if isinstance(info.validation_alias, str) else None
            names.add((alias or prefix + name).upper())
    return names


def _pods(render_: Render) -> Iterator[tuple[str, Obj]]:
    for kind in ("Deployment", "StatefulSet", "Job"):
        for obj in render_.of_kind(kind):
            yield f"{kind}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"]
    for obj in render_.of_kind("CronJob"):
        yield f"CronJob/{obj['metadata']['name']}", obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _containers(pod: Obj) -> list[Obj]:
    return list(pod.get("initContainers") or []) + list(pod.get("containers") or [])


def _reference_problems(render_: Render) -> list[str]:
    """Every Secret and ConfigMap a pod names (env, envFrom, volumes) exists with the keys it names."""
    problems: list[str] = []

    def check(where: str, kind: str, name: str, key: str | None, optional: bool) -> None:
        keys = render_.keys_of(kind, name)
        if keys is None:
            if not optional:
                problems.append(f"{where}: {kind} {name!r} is not in the render")
        elif key is not None and key not in keys:
            problems.append(f"{where}: {kind} {name!r} has no key {key!r}")

    for where, pod in _pods(render_):
        for container in _containers(pod):
            for env in container.get("env") or []:
                source = env.get("valueFrom") or {}
                for ref_name, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                    if ref_name in source:
                        ref = source[ref_name]
                        check(where, kind, ref["name"], ref["key"], bool(ref.get("optional")))
            for env_from in container.get("envFrom") or []:
                for ref_name, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                    if ref_name in env_from:
                        ref = env_from[ref_name]
                        check(where, kind, ref["name"], None, bool(ref.get("optional")))
        for volume in pod.get("volumes") or []:
            for vol_kind, kind, name_field in (
                ("secret", "Secret", "secretName"),
                ("configMap", "ConfigMap", "name"),
            ):
                if vol_kind in volume:
                    source = volume[vol_kind]
                    items = source.get("items") or [{"key": None}]
                    for item in items:
                        check(where, kind, source[name_field], item["key"], bool(source.get("optional")))
    return problems


def _provided_env(render_: Render, container: Obj) -> set[str]:
    names = {env["name"] for env in container.get("env") or []}
    for env_from in container.get("envFrom") or []:
        for ref_name, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            if ref_name in env_from:
                names |= render_.keys_of(kind, env_from[ref_name]["name"]) or set()
    return names


def _security_problems(where: str, pod: Obj, *, read_only_root: bool) -> list[str]:
    """Pod Security `restricted` (the namespace enforces it), plus a read-only root for our own image."""
    problems: list[str] = []
    pod_ctx = pod.get("securityContext") or {}
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: automountServiceAccountToken is not false")
    if (pod_ctx.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: pod seccompProfile is not RuntimeDefault")
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for container in _containers(pod):
        at = f"{where} container {container['name']}"
        problems += _container_problems(at, container, pod_ctx)
        resources = container.get("resources") or {}
        problems += [
            f"{at}: no {part}.{what}"
            for part in ("requests", "limits")
            for what in ("cpu", "memory")
            if what not in (resources.get(part) or {})
        ]
        if read_only_root:
            if (container.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
                problems.append(f"{at}: readOnlyRootFilesystem is not true")
            tmp = [m for m in container.get("volumeMounts") or [] if m.get("mountPath") == "/tmp"]
            if not tmp or "emptyDir" not in volumes.get(tmp[0]["name"], {}):
                problems.append(f"{at}: no emptyDir mounted at /tmp")
    return problems


def _container_problems(at: str, container: Obj, pod_ctx: Obj) -> list[str]:
    ctx = container.get("securityContext") or {}
    capabilities = ctx.get("capabilities") or {}
    rules = [
        (bool(ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot")), "runAsNonRoot is not true"),
        (ctx.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false"),
        ("ALL" in (capabilities.get("drop") or []), "capabilities do not drop ALL"),
        (not capabilities.get("add"), "adds capabilities"),
        (not ctx.get("privileged"), "privileged"),
    ]
    return [f"{at}: {problem}" for ok, problem in rules if not ok]


def _grpc_probe_problems(at: str, container: Obj, port: int) -> list[str]:
    problems: list[str] = []
    for probe in ("readinessProbe", "livenessProbe"):
        grpc = (container.get(probe) or {}).get("grpc")
        if grpc is None:
            problems.append(f"{at}: {probe} is not a native gRPC probe")
        elif grpc.get("port") != port:
            problems.append(f"{at}: {probe} probes port {grpc.get('port')}, the service listens on {port}")
    return problems


def project_problems(render_: Render, procs: list[Process]) -> list[str]:
    """Every rule the project keeps for a rendered overlay; an empty list when all hold."""
    problems: list[str] = []
    namespaces = render_.of_kind("Namespace")
    if not any(
        (n["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce") == "restricted"
        for n in namespaces
    ):
        problems.append("no Namespace enforces Pod Security 'restricted'")
    problems += _reference_problems(render_)
    for where, pod in _pods(render_):
        problems += _security_problems(
            where, pod, read_only_root=where.startswith(("Deployment/", "Job/", "CronJob/"))
        )
    for account in render_.of_kind("ServiceAccount"):
        if account.get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount/{account['metadata']['name']}: token automounted")
    for proc in procs:
        problems += _process_problems(render_, proc)
    problems += _rebuild_problems(render_)
    return problems


# What the hub's projections depend on: a rebuild run with other values rightly differs from the live views.
_HUB_PROJECTION_SETTINGS = ("SERVICE_NAME", "DISTRICT_TIME_ZONE")


def _rebuild_problems(render_: Render) -> list[str]:
    """The rebuild's Job templates run the hub's rebuild with the hub's own settings."""
    hub = render_.named("Deployment", "hub")
    jobs = [
        job
        for job in render_.of_kind("CronJob")
        if job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0].get("args", [])[2:4]
        == ["hub", "rebuild"]
    ]
    if hub is None:
        return []
    if not jobs:
        return ["no CronJob template runs `cityhub hub rebuild`"]
    live = hub["spec"]["template"]["spec"]["containers"][0]
    problems: list[str] = []
    for job in jobs:
        at = f"CronJob/{job['metadata']['name']}"
        container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        if container.get("envFrom") != live.get("envFrom"):
            problems.append(f"{at}: envFrom differs from Deployment/hub's")
        theirs = {e["name"]: e for e in container.get("env") or []}
        for env in live.get("env") or []:
            name = env["name"]
            if (name.startswith("HUB_") or name in _HUB_PROJECTION_SETTINGS) and theirs.get(name) != env:
                problems.append(f"{at}: {name} differs from Deployment/hub's")
    return problems


def _process_problems(render_: Render, proc: Process) -> list[str]:
    """One process of processes.toml: its Deployment, probes on its real port, its settings provided."""
    problems: list[str] = []
    deployment = render_.named("Deployment", proc.name)
    if deployment is None:
        problems.append(f"{proc.name} (deploy/local/processes.toml) has no Deployment")
        return problems
    pod = deployment["spec"]["template"]["spec"]
    containers = pod["containers"]
    main = next((c for c in containers if c["name"] == proc.name), containers[0])
    at = f"Deployment/{proc.name}"
    if main.get("args") != ["-m", proc.module]:
        problems.append(f"{at}: runs {main.get('args')}, not ['-m', {proc.module!r}]")
    env = {e["name"]: e for e in main.get("env") or []}
    if proc.grpc_port is not None:
        problems += _grpc_probe_problems(at, main, proc.grpc_port)
        declared = env.get("GRPC_PORT", {}).get("value")
        if declared != str(proc.grpc_port):
            problems.append(f"{at}: GRPC_PORT is {declared!r}, processes.toml says {proc.grpc_port}")
        # Static group membership (docs/adr/0018): one id per replica, or the replicas fence each other.
        source = env.get("KAFKA_GROUP_INSTANCE_ID", {}).get("valueFrom", {}).get("fieldRef", {})
        if source.get("fieldPath") != "metadata.name":
            problems.append(
                f"{at}: KAFKA_GROUP_INSTANCE_ID is not the pod's name (fieldRef metadata.name);"
                " replicas sharing one id fence each other"
            )
        service = render_.named("Service", proc.name)
        ports = [p.get("port") for p in (service or {}).get("spec", {}).get("ports", [])]
        if proc.grpc_port not in ports:
            problems.append(f"Service/{proc.name}: does not expose {proc.grpc_port}")
    elif "httpGet" not in (main.get("readinessProbe") or {}):
        problems.append(f"{at}: no HTTP readiness probe")
    provided = _provided_env(render_, main)
    # What processes.toml sets locally (peers, the seed file) must be set in the cluster too.
    needed = required_settings(proc.module) | set(proc.env)
    needed |= _secret_settings(proc.module)
    for name in sorted(needed):
        if not ({name, f"{name}_FILE"} & provided):
            problems.append(f"{at}: setting {name} is required but not provided (env or envFrom)")
    return problems


def _secret_settings(module: str) -> set[str]:
    """Settings that have defaults but must be set where dev keys are off: the JWT public key, and each
    ``*_person_key`` / ``*_seal_key`` / session secret the settings class declares."""
    settings_module = importlib.import_module(f"{module}.settings")
    fields: set[str] = set()
    for _, cls in inspect.getmembers(settings_module, inspect.isclass):
        if issubclass(cls, BaseSettings) and cls.__module__ == settings_module.__name__:
            fields |= {
                name.upper()
                for name in cls.model_fields
                if name.endswith(("_person_key", "_seal_key", "_session_secret"))
            }
    return fields | {"CITYHUB_JWT_PUBLIC_KEY"}


def secret_values(render_: Render) -> dict[str, dict[str, str]]:
    """Every Secret's decoded data, by name (to show that only placeholders are committed)."""
    found: dict[str, dict[str, str]] = {}
    for secret in render_.of_kind("Secret"):
        data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        data.update(secret.get("stringData") or {})
        found[secret["metadata"]["name"]] = data
    return found
