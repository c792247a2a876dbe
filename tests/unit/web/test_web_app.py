"""The web without a hub behind it (nothing listens at its address): one-time links, the CSRF check before
any call, and a clear 503 page — never a stack trace — when the hub does not answer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from starlette.testclient import TestClient

from services.cli.__main__ import cli
from services.platform.security import SecuritySettings, TokenVerifier, load_security_settings
from services.web.app import create_app
from services.web.links import login_link
from services.web.settings import WebSettings
from tests.support import free_port


@pytest.fixture
def security(tmp_path: Path) -> SecuritySettings:
    return load_security_settings(dev_keys=True, dev_secrets_dir=tmp_path / "keys")


@pytest.fixture
def client(security: SecuritySettings) -> Iterator[TestClient]:
    settings = WebSettings(
        hub_grpc_address=f"127.0.0.1:{free_port()}",
        web_session_secret=SecretStr("unit-secret"),
        web_hub_timeout_s=1.0,
    )
    with TestClient(create_app(settings, security), base_url="http://127.0.0.1:8080") as test_client:
        yield test_client


def _path_of(link: str) -> str:
    return link.removeprefix("http://127.0.0.1:8080")


def test_a_link_signs_in_once_and_a_reused_or_forged_one_is_refused(
    client: TestClient, security: SecuritySettings, tmp_path: Path
) -> None:
    link = _path_of(login_link("http://127.0.0.1:8080", security=security))
    first = client.get(link, follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/"
    cookie = first.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie

    client.cookies.clear()
    again = client.get(link, follow_redirects=False)
    assert again.status_code == 403
    assert "already been used" in again.text
    assert "set-cookie" not in again.headers

    other_keys = load_security_settings(dev_keys=True, dev_secrets_dir=tmp_path / "other-keys")
    forged = client.get(_path_of(login_link("http://127.0.0.1:8080", security=other_keys)))
    assert forged.status_code == 403
    assert "not valid" in forged.text


def test_pages_need_a_session(client: TestClient) -> None:
    for path in ("/", "/inbox", "/search?q=x", "/entities/site/S-1", "/inbox/events"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "login link" in response.text


def test_a_post_without_the_csrf_token_is_refused_before_any_call(
    client: TestClient, security: SecuritySettings
) -> None:
    client.get(_path_of(login_link("http://127.0.0.1:8080", security=security)), follow_redirects=False)
    response = client.post("/inbox/some-item/acknowledge", data={"note": "x"})
    # 403, not the hub's 503: refused before the hub was asked anything.
    assert response.status_code == 403
    assert "nothing changed" in response.text


def test_the_hub_down_is_a_clear_503_page_never_a_trace(
    client: TestClient, security: SecuritySettings
) -> None:
    assert client.get("/healthz").status_code == 503
    client.get(_path_of(login_link("http://127.0.0.1:8080", security=security)), follow_redirects=False)
    for path in ("/", "/inbox", "/search?q=school", "/entities/site/S-1"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert "The hub is not answering" in response.text
        assert "Traceback" not in response.text
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
    # The kitchen profile without KITCHEN_GRPC_ADDRESS says so.
    assert client.get("/kitchens/K-1/profile").status_code == 503


def test_the_cli_prints_a_link_for_a_role_and_scope(security: SecuritySettings) -> None:
    env = {"CITYHUB_DEV_KEYS": "true", "CITYHUB_DEV_SECRETS_DIR": str(security.dev_secrets_dir)}
    result = CliRunner().invoke(
        cli,
        ["web", "login-link", "--role", "duty_room", "--scope", "site:S-001", "--base-url", "http://h:1"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    match = re.fullmatch(r"http://h:1/login\?token=([\w.-]+)\n", result.output)
    assert match is not None, result.output
    caller = TokenVerifier.from_settings(security).verify(match.group(1))
    assert caller.roles == {"duty_room"}
    assert caller.scopes == {"site:S-001"}
    assert caller.token_id
