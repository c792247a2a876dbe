"""The web without a hub behind it (nothing listens at its address): links refused before the hub is asked,
no sign-in while the hub cannot record a link's use, the CSRF check before any call, and a clear 503 page —
never a stack trace — when the hub does not answer. A link used once and refused the second time, across
two web instances, is in tests/browser (it needs the hub)."""

from __future__ import annotations

import json
import re
import time
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from itsdangerous import TimestampSigner
from pydantic import SecretStr
from starlette.testclient import TestClient

from services.cli.__main__ import cli
from services.platform.security import (
    SecuritySettings,
    TokenIssuer,
    TokenVerifier,
    load_security_settings,
)
from services.web.app import SESSION_COOKIE, create_app
from services.web.auth import LinkRefusedError, LoginLinks
from services.web.links import login_link
from services.web.settings import WebSettings
from tests.support import free_port

_SESSION_SECRET = "unit-secret"


@pytest.fixture
def security(tmp_path: Path) -> SecuritySettings:
    return load_security_settings(dev_keys=True, dev_secrets_dir=tmp_path / "keys")


@pytest.fixture
def client(security: SecuritySettings) -> Iterator[TestClient]:
    settings = WebSettings(
        hub_grpc_address=f"127.0.0.1:{free_port()}",
        web_session_secret=SecretStr(_SESSION_SECRET),
        web_hub_timeout_s=1.0,
    )
    with TestClient(create_app(settings, security), base_url="http://127.0.0.1:8080") as test_client:
        yield test_client


def _path_of(link: str) -> str:
    return link.removeprefix("http://127.0.0.1:8080")


def _sign_in_without_the_hub(client: TestClient, security: SecuritySettings) -> None:
    """A session as the login page would leave it, signed with the app's session secret: the pages behind
    it are what these tests are about, and no hub is here to record a link's use."""
    token = TokenIssuer.from_settings(security).issue(sub="u-1", roles=("district_operator",), ttl_s=600)
    session = {
        "token": token,
        "sub": "u-1",
        "roles": ["district_operator"],
        "scopes": [],
        "exp": time.time() + 600,
        "csrf": "the-sessions-token",
    }
    signed = TimestampSigner(_SESSION_SECRET).sign(b64encode(json.dumps(session).encode()))
    client.cookies.set(SESSION_COOKIE, signed.decode())


def test_a_forged_old_or_idless_link_is_refused_without_asking_the_hub(
    client: TestClient, security: SecuritySettings, tmp_path: Path
) -> None:
    other_keys = load_security_settings(dev_keys=True, dev_secrets_dir=tmp_path / "other-keys")
    forged = client.get(_path_of(login_link("http://127.0.0.1:8080", security=other_keys)))
    # 403 and not the 503 a call to the absent hub would give: refused before any call.
    assert forged.status_code == 403
    assert "not valid" in forged.text
    assert "set-cookie" not in forged.headers

    links = LoginLinks(TokenVerifier.from_settings(security), max_age_s=900, clock=lambda: time.time() + 901)
    with pytest.raises(LinkRefusedError, match="expired"):
        links.check(TokenIssuer.from_settings(security).issue(sub="u", roles=("duty_room",), ttl_s=3600))


def test_a_good_link_with_the_hub_down_is_a_503_and_signs_nobody_in(
    client: TestClient, security: SecuritySettings
) -> None:
    link = _path_of(login_link("http://127.0.0.1:8080", security=security))
    response = client.get(link, follow_redirects=False)
    # The hub records each link's one use: without it nobody is signed in, and the link stays good.
    assert response.status_code == 503
    assert "try again" in response.text
    assert "set-cookie" not in response.headers
    assert client.get("/", follow_redirects=False).status_code == 401


def test_pages_need_a_session(client: TestClient) -> None:
    for path in ("/", "/inbox", "/search?q=x", "/entities/site/S-1", "/inbox/events"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "login link" in response.text


def test_a_post_without_the_csrf_token_is_refused_before_any_call(
    client: TestClient, security: SecuritySettings
) -> None:
    _sign_in_without_the_hub(client, security)
    # Signed in (a page asks the absent hub: 503, not the 401 of no session).
    assert client.get("/inbox").status_code == 503
    for form in ({"note": "x"}, {"note": "x", "csrf": "not-the-sessions-token"}):
        response = client.post("/inbox/some-item/acknowledge", data=form)
        # 403, not the hub's 503: refused before the hub was asked anything.
        assert response.status_code == 403
        assert "nothing changed" in response.text


def test_the_hub_down_is_a_clear_503_page_never_a_trace(
    client: TestClient, security: SecuritySettings
) -> None:
    assert client.get("/healthz").status_code == 503
    _sign_in_without_the_hub(client, security)
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
