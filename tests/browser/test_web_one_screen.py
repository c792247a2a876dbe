"""The web one-screen in a real browser (Debian's chromium, headless, driven by Playwright) in front of the
real hub and the five real domain services on the real Kafka and PostgreSQL. Everything the district does
goes through the domains' gRPC APIs; everything a person does goes through the page."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cityhub.common.v1 import common_pb2
from cityhub.hub.v1 import hub_pb2
from cityhub.kitchen.v1 import kitchen_pb2
from cityhub.safety.v1 import safety_pb2
from playwright.sync_api import Browser, BrowserContext, Page, expect

from services.platform.security import SecuritySettings
from services.web.links import login_link
from tests.browser.web_support import serve_web
from tests.integration.hub.e2e_support import World
from tests.support import wait_until

pytestmark = pytest.mark.integration

TOWN = "Luqiao Street"
# What the issue asks: a new alert on the page within two seconds. Playwright's expect polls the page
# until this timeout, which starts once the safety API has accepted the alarm.
LIVE_WITHIN_MS = 2000


@dataclass(frozen=True)
class District:
    world: World
    quiet_site: tuple[str, str, str]  # (site id, name, panic button id): its alarm is raised in the fixture
    live_site: tuple[str, str, str]  # its alarm is raised while the inbox page watches
    quiet_alert_id: str
    kitchen_id: str
    kitchen_name: str


def _site(world: World, name: str, latitude: float) -> tuple[str, str, str]:
    safety = world["safety"]
    tag = secrets.token_hex(3)
    site = safety.call(
        "RegisterSite",
        safety_pb2.RegisterSiteRequest(
            request_id=f"web-site-{tag}",
            name=name,
            kind=safety_pb2.SITE_KIND_SCHOOL,
            address="1 School Road, Luqiao",
            division_code="331004",
            town=TOWN,
            location=common_pb2.GeoPoint(latitude=latitude, longitude=121.3802),
            duty_room=safety_pb2.DutyRoomContact(name="Gate duty room", phone="0576-8288 0000"),
        ),
    ).site
    button = safety.call(
        "RegisterSensor",
        safety_pb2.RegisterSensorRequest(
            request_id=f"web-button-{tag}",
            site_id=site.site_id,
            kind=safety_pb2.SENSOR_KIND_PANIC_BUTTON,
            zone="gate",
        ),
    ).sensor
    return site.site_id, name, button.sensor_id


def _alarm(world: World, site: tuple[str, str, str]) -> str:
    reply = world["safety"].call(
        "RaiseAlarm",
        safety_pb2.RaiseAlarmRequest(
            request_id=f"web-press-{secrets.token_hex(3)}", site_id=site[0], sensor_id=site[2]
        ),
    )
    return str(reply.alert.alert_id)


@pytest.fixture(scope="module")
def district(world: World) -> District:
    quiet = _site(world, "Luqiao Central Primary School", 28.5801)
    live = _site(world, "Luqiao East Middle School", 28.5895)
    kitchen = (
        world["kitchen"]
        .call(
            "RegisterKitchen",
            kitchen_pb2.RegisterKitchenRequest(
                request_id="web-kitchen",
                site_id=quiet[0],
                name="Central Primary canteen",
                operator=kitchen_pb2.KitchenOperator(
                    kind=kitchen_pb2.OPERATOR_KIND_SCHOOL_RUN, name="Luqiao Central Primary School"
                ),
                meals_per_day=600,
                shifts=[kitchen_pb2.Shift(name="lunch", start_time="09:00", end_time="13:30")],
                commitment="Safe food for every pupil.",
            ),
            roles=("food_inspector",),
        )
        .kitchen
    )
    alert_id = _alarm(world, quiet)
    world.settle()
    return District(world, quiet, live, alert_id, kitchen.kitchen_id, kitchen.name)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context
    finally:
        context.close()


def _sign_in(
    context: BrowserContext,
    web_url: str,
    security: SecuritySettings,
    *,
    role: str = "district_operator",
    scopes: tuple[str, ...] = (),
) -> Page:
    page = context.new_page()
    response = page.goto(login_link(web_url, role=role, scopes=scopes, security=security))
    assert response is not None
    assert response.status == 200, page.content()
    return page


def _item_at(district: District, site_id: str) -> hub_pb2.InboxItem:
    items: list[hub_pb2.InboxItem] = list(
        district.world.hub.call("ListInboxItems", hub_pb2.ListInboxItemsRequest()).items
    )
    return next(i for i in items if i.subject.id == site_id)


def _safety_status(district: District, alert_id: str) -> int:
    reply = district.world["safety"].call("GetAlert", safety_pb2.GetAlertRequest(alert_id=alert_id))
    return int(reply.alert.status)


def test_a_login_link_signs_in_once_with_a_strict_http_only_cookie(
    district: District, web_url: str, web_security: SecuritySettings, browser: Browser
) -> None:
    link = login_link(web_url, security=web_security)
    first = browser.new_context()
    second = browser.new_context()
    try:
        page = first.new_page()
        page.goto(link)
        assert page.url == f"{web_url}/"
        expect(page.locator("h1")).to_contain_text("District figures")
        (cookie,) = [c for c in first.cookies() if c["name"] == "cityhub_session"]
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"

        # Another web process — a second replica, or this one restarted — shares no memory with the
        # first: the hub's record of the link's use is what refuses it.
        with serve_web(web_security, hub_grpc_address=district.world.hub.runtime.address) as other_url:
            again = second.new_page()
            response = again.goto(link.replace(web_url, other_url, 1))
            assert response is not None
            assert response.status == 403
            expect(again.locator("main")).to_contain_text("already been used")
        assert not [c for c in second.cookies() if c["name"] == "cityhub_session"]
    finally:
        first.close()
        second.close()


def test_the_figures_on_the_page_equal_the_hubs_dashboard(
    district: District, web_url: str, web_security: SecuritySettings, context: BrowserContext
) -> None:
    page = _sign_in(context, web_url, web_security)
    shown = page.locator("#figures tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.figure, r.dataset.value, r.dataset.previous, r.dataset.change])"
    )
    answer = district.world.hub.call(
        "GetDashboard", hub_pb2.GetDashboardRequest(granularity=hub_pb2.GRANULARITY_DAY)
    )
    expected = {f.name: (f.value, f.previous, f.change) for f in answer.figures}
    assert {name: (float(v), float(p), float(c)) for name, v, p, c in shown} == expected
    # Not a comparison of two empty tables: the fixture's alarm is today's warning.
    assert expected["warnings_raised"][0] >= 1
    expect(page.locator("tr[data-figure='warnings_raised'] td").nth(1)).to_have_text(
        f"{expected['warnings_raised'][0]:,.0f}"
    )
    # Both charts drawn by the vendored uPlot (a canvas each), from nothing but this server.
    expect(page.locator("#chart-utilisation canvas")).to_have_count(1)
    expect(page.locator("#chart-warnings canvas")).to_have_count(1)


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    district: District, web_url: str, web_security: SecuritySettings, context: BrowserContext
) -> None:
    page = _sign_in(context, web_url, web_security)
    item = _item_at(district, district.quiet_site[0])
    assert item.status == hub_pb2.ITEM_STATUS_OPEN
    # The session cookie does travel with these requests: the same client reads the inbox.
    assert page.request.get(f"{web_url}/inbox").status == 200

    forms: list[dict[str, str | float | bool]] = [
        {"note": "forged"},
        {"note": "forged", "csrf": "not-the-sessions-token"},
    ]
    for form in forms:
        response = page.request.post(f"{web_url}/inbox/{item.item_id}/acknowledge", form=form)
        assert response.status == 403
        assert "nothing changed" in response.text()

    assert _safety_status(district, district.quiet_alert_id) == safety_pb2.ALERT_STATUS_RAISED
    assert _item_at(district, district.quiet_site[0]).status == hub_pb2.ITEM_STATUS_OPEN


def test_an_alarm_appears_live_within_two_seconds_and_is_acknowledged_from_the_page(
    district: District, web_url: str, web_security: SecuritySettings, context: BrowserContext
) -> None:
    page = _sign_in(context, web_url, web_security)
    page.goto(f"{web_url}/inbox")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    # The open items the stream sends first are on the page: the watch is running at the hub.
    expect(page.locator("#inbox tbody tr", has_text=district.quiet_site[1])).to_be_visible()
    site_id, name, _ = district.live_site
    row = page.locator("#inbox tbody tr", has_text=name)
    expect(row).to_have_count(0)

    alert_id = _alarm(district.world, district.live_site)
    expect(row).to_be_visible(timeout=LIVE_WITHIN_MS)
    expect(row).to_have_attribute("data-status", "open")

    row.get_by_role("button", name="Acknowledge").click()
    page.wait_for_url(f"{web_url}/inbox/*")
    # The hub acknowledged it in safety, the owner of the alert's lifecycle.
    assert _safety_status(district, alert_id) == safety_pb2.ALERT_STATUS_ACKNOWLEDGED
    # ... and the inbox follows safety's event.
    wait_until(
        lambda: _item_at(district, site_id).status == hub_pb2.ITEM_STATUS_ACKNOWLEDGED,
        timeout_s=15,
        what="the hub's item to follow safety",
    )
    page.goto(f"{web_url}/inbox")
    expect(page.locator("#inbox tbody tr", has_text=name)).to_have_attribute("data-status", "acknowledged")


def test_an_alerts_detail_shows_its_occurrences_and_incident(
    district: District, web_url: str, web_security: SecuritySettings, context: BrowserContext
) -> None:
    page = _sign_in(context, web_url, web_security)
    item = _item_at(district, district.quiet_site[0])
    page.goto(f"{web_url}/inbox/{item.item_id}")
    expect(page.locator("h1")).to_have_text(item.title)
    detail = district.world.hub.call("GetInboxItem", hub_pb2.GetInboxItemRequest(item_id=item.item_id))
    expect(page.locator("table.occurrences tbody tr")).to_have_count(len(detail.occurrences))
    if detail.incident.incident_id:
        for reason in detail.incident.reasons:
            expect(page.locator("#incident")).to_contain_text(reason)


def test_a_search_opens_the_360_view_and_the_town_view(
    district: District, web_url: str, web_security: SecuritySettings, context: BrowserContext
) -> None:
    page = _sign_in(context, web_url, web_security)
    page.goto(f"{web_url}/search")
    page.get_by_label("Name, code or id").fill("Central Primary")
    page.get_by_role("button", name="Search").click()
    page.locator("#hits").get_by_role("link", name=district.quiet_site[1]).click()

    expect(page.locator("#entity-name")).to_have_text(district.quiet_site[1])
    expect(page.locator("#parts article")).to_have_count(5)
    expect(page.locator("#parts article[data-domain='safety']")).to_contain_text("last event")
    expect(page.locator("#timeline tbody tr").first).to_be_visible()

    page.get_by_role("link", name="town view").click()
    # Both schools are drawn from their coordinates, the one with an open alarm ringed.
    expect(page.locator(f"#town a[data-id='{district.quiet_site[0]}']")).to_have_count(1)
    expect(page.locator(f"#town a[data-id='{district.live_site[0]}']")).to_have_count(1)
    expect(page.locator(f"#town a[data-id='{district.quiet_site[0]}'] circle")).to_have_count(2)


def test_roles_and_scopes_apply_as_over_grpc(
    district: District, web_url: str, web_security: SecuritySettings, browser: Browser
) -> None:
    duty = browser.new_context()
    public = browser.new_context()
    try:
        site_id, name, _ = district.quiet_site
        page = _sign_in(duty, web_url, web_security, role="duty_room", scopes=(f"site:{site_id}",))
        assert page.url == f"{web_url}/inbox"
        # Its own school's alarm, and nothing of any other site (the other school's, once raised).
        expect(page.locator("#inbox tbody tr", has_text=name)).to_have_count(1)
        expect(page.locator("#inbox tbody tr")).to_have_count(1)
        response = page.goto(f"{web_url}/")
        assert response is not None
        assert response.status == 403  # the dashboard is the district operator's, as over gRPC

        page = _sign_in(public, web_url, web_security, role="public")
        page.goto(f"{web_url}/public")
        page.get_by_label("Kitchen id").fill(district.kitchen_id)
        page.get_by_role("button", name="Show").click()
        expect(page.locator("h1")).to_contain_text(district.kitchen_name)
        expect(page.locator("#score")).to_be_visible()
        response = page.goto(f"{web_url}/inbox")
        assert response is not None
        assert response.status == 403
    finally:
        duty.close()
        public.close()
