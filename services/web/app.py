"""The Starlette application: pages rendered on the server from the hub's answers, the inbox's live stream
as server-sent events, one-time link login, CSRF-checked actions. ``create_app`` is the composition root;
``python -m services.web`` serves it with uvicorn."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from cityhub.common.v1 import common_pb2
from cityhub.hub.v1 import hub_pb2
from cityhub.kitchen.v1 import kitchen_pb2
from google.protobuf.message import Message
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from services.platform.logs import get_logger
from services.platform.security.settings import SecuritySettings
from services.platform.security.tokens import TokenVerifier
from services.web import views
from services.web.auth import LinkRefusedError, Login, LoginLinks, csrf_matches, new_csrf_token
from services.web.hub_client import Backends, bearer_metadata, open_backends
from services.web.settings import WebSettings, session_secret

__all__ = ["create_app"]

log = get_logger()
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "cityhub_session"
OPEN_STATUSES = (hub_pb2.ITEM_STATUS_OPEN, hub_pb2.ITEM_STATUS_ACKNOWLEDGED)
# Nothing from elsewhere: scripts, styles and images come from this server only (inline scripts neither).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
# The hub did not decide (down, late, busy): a sign-in can be tried again with the same link.
_UNANSWERED = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
_PROBLEMS: dict[grpc.StatusCode, tuple[int, str, str]] = {
    grpc.StatusCode.UNAVAILABLE: (503, "The hub is not answering", "Try again in a moment."),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "The hub is not answering", "It did not answer in time."),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (503, "The hub is busy", "Try again in a moment."),
    grpc.StatusCode.PERMISSION_DENIED: (403, "Not for your role", "Your role may not see this page."),
    grpc.StatusCode.NOT_FOUND: (404, "Not found", "Nothing by that name is in your view."),
    grpc.StatusCode.INVALID_ARGUMENT: (400, "Not a valid request", ""),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "Not possible now", ""),
}


class NotSignedInError(Exception):
    """No session, or its token has expired."""


class _Headers:
    """Security headers on every answer, and one log line per request (the path, never the query: a
    login link's token travels there)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_with_headers(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            log.info(
                "http_request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )


class Web:
    """The pages. One instance per app; the backends are opened on the server's loop at start-up."""

    def __init__(self, settings: WebSettings, security: SecuritySettings) -> None:
        self.settings = settings
        self.security = security
        self.zone = ZoneInfo(settings.district_time_zone)
        self.links = LoginLinks(
            TokenVerifier.from_settings(security), max_age_s=settings.web_login_link_max_age_s
        )
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(), auto_reload=False
        )
        self.templates.globals.update(
            label=views.enum_label,
            hub_pb2=hub_pb2,
            common_pb2=common_pb2,
            slug_of_kind=views.SLUG_OF_KIND,
            format_figure=views.format_figure,
            format_change=views.format_change,
        )
        self.templates.filters["local"] = lambda ts: views.local_time(ts, self.zone)
        self._backends: Backends | None = None

    @property
    def backends(self) -> Backends:
        assert self._backends is not None, "the app is used before its start-up"
        return self._backends

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self._backends = open_backends(
            self.settings.hub_grpc_address, self.settings.kitchen_grpc_address, self.security
        )
        log.info(
            "web_started", hub=self.settings.hub_grpc_address, kitchen=self.settings.kitchen_grpc_address
        )
        try:
            yield
        finally:
            await self._backends.close()

    # --- helpers -------------------------------------------------------------------------------------

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        session = request.session
        html = self.templates.get_template(template).render(
            request=request,
            user=session.get("sub"),
            roles=session.get("roles", []),
            csrf=session.get("csrf", ""),
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def problem(self, request: Request, status: int, title: str, text: str) -> HTMLResponse:
        return self.render(request, "problem.html", status=status, title=title, text=text)

    def token(self, request: Request) -> str:
        token = request.session.get("token")
        if not isinstance(token, str) or float(request.session.get("exp", 0)) <= time.time():
            raise NotSignedInError
        return token

    async def call(self, request: Request, rpc: Callable[..., Awaitable[Any]], message: Message) -> Any:
        """A unary call with the person's token and the page's deadline."""
        return await rpc(
            message, metadata=bearer_metadata(self.token(request)), timeout=self.settings.web_hub_timeout_s
        )

    def today(self) -> date:
        return datetime.now(self.zone).date()

    # --- errors --------------------------------------------------------------------------------------

    async def on_rpc_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, grpc.aio.AioRpcError)
        code = exc.code()
        if code == grpc.StatusCode.UNAUTHENTICATED:
            request.session.clear()
            return self.problem(
                request, 401, "Signed out", "Your session has ended: ask for a new login link."
            )
        status, title, text = _PROBLEMS.get(code, (502, "The hub could not answer", ""))
        log.warning("hub_call_failed", path=request.url.path, code=code.name)
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            text = exc.details() or ""
        return self.problem(request, status, title, text)

    async def on_not_signed_in(self, request: Request, _exc: Exception) -> Response:
        return self.problem(
            request, 401, "Please sign in", "Open a login link: `cityhub web login-link` prints one."
        )

    async def on_server_error(self, request: Request, exc: Exception) -> Response:
        log.error("web_page_failed", path=request.url.path, error=type(exc).__name__)
        return self.problem(request, 500, "Something went wrong", "The page could not be drawn.")

    # --- sign in and out -----------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        try:
            login = self.links.check(request.query_params.get("token", ""))
        except LinkRefusedError as exc:
            log.warning("login_refused", reason=str(exc))
            return self.problem(request, 403, "Cannot sign in", str(exc))
        refused = await self.redeem(request, login)
        if refused is not None:
            return refused
        request.session.clear()
        request.session.update(
            token=login.token,
            sub=login.caller.sub,
            roles=sorted(login.caller.roles),
            scopes=sorted(login.caller.scopes),
            exp=login.caller.expires_at,
            csrf=new_csrf_token(),
        )
        log.info("login_succeeded", sub=login.caller.sub, roles=sorted(login.caller.roles))
        roles = login.caller.roles
        landing = "/" if "district_operator" in roles else "/public" if roles == {"public"} else "/inbox"
        return RedirectResponse(landing, status_code=303)

    async def redeem(self, request: Request, login: Login) -> Response | None:
        """Have the hub record the link's first use; the page to answer instead when it does not."""
        try:
            await self.backends.hub.RedeemLoginLink(
                hub_pb2.RedeemLoginLinkRequest(),
                metadata=bearer_metadata(login.token),
                timeout=self.settings.web_hub_timeout_s,
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            log.warning("login_refused", reason=code.name, sub=login.caller.sub)
            if code == grpc.StatusCode.FAILED_PRECONDITION:
                text = "this login link has already been used: ask for a new one"
                return self.problem(request, 403, "Cannot sign in", text)
            if code in _UNANSWERED:
                # Nothing was recorded: the link is still good once the hub answers.
                text = "The hub is not answering, so nobody can sign in now. The link stays good: try again."
                return self.problem(request, 503, "Cannot sign in now", text)
            return self.problem(request, 403, "Cannot sign in", f"the hub refused this link ({code.name})")
        return None

    async def logout(self, request: Request) -> Response:
        await self.checked_form(request)
        request.session.clear()
        return self.problem(request, 200, "Signed out", "Open a new login link to sign in again.")

    async def checked_form(self, request: Request) -> dict[str, str]:
        """The posted form, once its CSRF token matched the session's; otherwise CsrfRefused."""
        form = await request.form()
        if not csrf_matches(request.session.get("csrf"), form.get("csrf")):
            raise CsrfRefusedError
        return {k: v for k, v in form.items() if isinstance(v, str)}

    async def on_csrf(self, request: Request, _exc: Exception) -> Response:
        log.warning("csrf_refused", path=request.url.path)
        return self.problem(
            request, 403, "Refused", "The form was stale or not from this site: nothing changed."
        )

    # --- pages ---------------------------------------------------------------------------------------

    async def healthz(self, _request: Request) -> Response:
        if await self.backends.hub_serving():
            return PlainTextResponse("ok")
        return PlainTextResponse("hub not answering", status_code=503)

    async def dashboard(self, request: Request) -> Response:
        params = request.query_params
        town = params.get("town", "").strip()
        period = params.get("period", "day")
        when = params.get("date", "").strip()
        if period not in views.GRANULARITIES:
            return self.problem(
                request, 400, "Not a valid request", f"period must be one of {list(views.GRANULARITIES)}"
            )
        hub = self.backends.hub
        answer = await self.call(
            request,
            hub.GetDashboard,
            hub_pb2.GetDashboardRequest(town=town, granularity=views.GRANULARITIES[period], date=when),
        )
        try:
            last = date.fromisoformat(when) if when else self.today()
        except ValueError:
            last = self.today()  # the hub has accepted it, so it is a date; this cannot normally happen
        days = views.chart_days(last, self.settings.web_chart_days)
        daily = await asyncio.gather(
            *(
                self.call(
                    request,
                    hub.GetDashboard,
                    hub_pb2.GetDashboardRequest(
                        town=town, granularity=hub_pb2.GRANULARITY_DAY, date=d.isoformat()
                    ),
                )
                for d in days
            )
        )
        series: dict[str, Any] = {
            "days": [d.isoformat() for d in days],
            "utilisation": [],
            "warnings_raised": [],
        }
        for reply in daily:
            values = {f.name: f.value for f in reply.figures}
            series["utilisation"].append(round(values.get("utilisation", 0.0) * 100, 2))
            series["warnings_raised"].append(values.get("warnings_raised", 0.0))
        return self.render(
            request,
            "dashboard.html",
            answer=answer,
            town=town,
            period=period,
            date=when,
            periods=list(views.GRANULARITIES),
            chart_json=json.dumps(series),
        )

    async def inbox(self, request: Request) -> Response:
        answer = await self.call(
            request,
            self.backends.hub.ListInboxItems,
            hub_pb2.ListInboxItemsRequest(
                filter=hub_pb2.InboxFilter(statuses=OPEN_STATUSES), page=common_pb2.PageRequest(page_size=200)
            ),
        )
        return self.render(request, "inbox.html", items=answer.items)

    async def inbox_events(self, request: Request) -> Response:
        token = self.token(request)
        csrf = request.session.get("csrf", "")
        row = self.templates.get_template("_inbox_row.html")
        hub = self.backends.hub

        async def stream() -> AsyncIterator[dict[str, str]]:
            # The open items first, then every change: a page that loaded before an item opened still
            # gets it, and a row is replaced, never doubled.
            call = hub.WatchInbox(
                hub_pb2.WatchInboxRequest(filter=hub_pb2.InboxFilter(), include_open=True),
                metadata=bearer_metadata(token),
            )
            try:
                async for change in call:
                    item = change.item
                    html = row.render(item=item, csrf=csrf)
                    yield {
                        "event": "item",
                        "data": json.dumps(
                            {
                                "item_id": item.item_id,
                                "status": views.enum_label(hub_pb2.ItemStatus, item.status),
                                "html": html,
                            }
                        ),
                    }
            except grpc.aio.AioRpcError as exc:
                log.warning("inbox_stream_ended", code=exc.code().name)
                yield {"event": "problem", "data": json.dumps({"code": exc.code().name})}
            finally:
                call.cancel()

        return EventSourceResponse(stream(), ping=15, send_timeout=10)

    async def inbox_item(self, request: Request) -> Response:
        item_id = request.path_params["item_id"]
        answer = await self.call(
            request, self.backends.hub.GetInboxItem, hub_pb2.GetInboxItemRequest(item_id=item_id)
        )
        return self.render(request, "inbox_item.html", answer=answer, item=answer.item)

    async def acknowledge(self, request: Request) -> Response:
        form = await self.checked_form(request)
        item_id = request.path_params["item_id"]
        await self.call(
            request,
            self.backends.hub.AcknowledgeInboxItem,
            hub_pb2.AcknowledgeInboxItemRequest(item_id=item_id, note=form.get("note", "").strip()),
        )
        log.info("inbox_item_acknowledged", item_id=item_id, sub=request.session.get("sub"))
        return RedirectResponse(f"/inbox/{item_id}", status_code=303)

    async def search(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        hits: list[Any] = []
        if query:
            answer = await self.call(
                request,
                self.backends.hub.SearchEntities,
                hub_pb2.SearchEntitiesRequest(query=query, page=common_pb2.PageRequest(page_size=50)),
            )
            hits = list(answer.hits)
        else:
            self.token(request)
        return self.render(request, "search.html", query=query, hits=hits)

    def _ref(self, request: Request) -> common_pb2.EntityRef | None:
        kind = views.KIND_SLUGS.get(request.path_params["kind"])
        if kind is None:
            return None
        return common_pb2.EntityRef(kind=kind, id=request.path_params["entity_id"])

    async def entity(self, request: Request) -> Response:
        ref = self._ref(request)
        if ref is None:
            return self.problem(request, 404, "Not found", "No such kind of entity.")
        hub = self.backends.hub
        view, timeline = await asyncio.gather(
            self.call(request, hub.GetEntity360, hub_pb2.GetEntity360Request(ref=ref)),
            self.call(
                request,
                hub.GetTimeline,
                hub_pb2.GetTimelineRequest(ref=ref, page=common_pb2.PageRequest(page_size=200)),
            ),
        )
        return self.render(
            request,
            "entity.html",
            view=view,
            entity=view.entity,
            timeline=list(reversed(timeline.entries)),
            kind=request.path_params["kind"],
        )

    async def town(self, request: Request) -> Response:
        ref = self._ref(request)
        if ref is None:
            return self.problem(request, 404, "Not found", "No such kind of entity.")
        hub = self.backends.hub
        centre = (await self.call(request, hub.GetEntity360, hub_pb2.GetEntity360Request(ref=ref))).entity
        if not centre.HasField("location"):
            return self.problem(
                request, 404, "No coordinates", f"{centre.name or ref.id} has no known location."
            )
        near, items = await asyncio.gather(
            self.call(
                request,
                hub.ListEntitiesNear,
                hub_pb2.ListEntitiesNearRequest(
                    center=centre.location, radius_meters=self.settings.web_town_radius_m, limit=500
                ),
            ),
            self.call(
                request,
                hub.ListInboxItems,
                hub_pb2.ListInboxItemsRequest(
                    filter=hub_pb2.InboxFilter(statuses=OPEN_STATUSES),
                    page=common_pb2.PageRequest(page_size=500),
                ),
            ),
        )
        open_at: dict[tuple[int, str], int] = {}
        for item in items.items:
            key = (item.subject.kind, item.subject.id)
            open_at[key] = open_at.get(key, 0) + 1
        entities = [n.entity for n in near.entities]
        if not any(e.ref.kind == ref.kind and e.ref.id == ref.id for e in entities):
            entities.append(centre)
        points = [
            (
                e.location.latitude,
                e.location.longitude,
                views.SLUG_OF_KIND.get(e.ref.kind, "other"),
                e.ref.id,
                e.name,
                e.town,
                open_at.get((e.ref.kind, e.ref.id), 0),
                e.ref.kind == ref.kind and e.ref.id == ref.id,
            )
            for e in entities
        ]
        return self.render(
            request,
            "town.html",
            centre=centre,
            dots=views.project(points),
            radius_km=self.settings.web_town_radius_m / 1000,
            kind=request.path_params["kind"],
        )

    async def public(self, request: Request) -> Response:
        self.token(request)
        kitchen_id = request.query_params.get("kitchen", "").strip()
        if kitchen_id:
            return RedirectResponse(f"/kitchens/{kitchen_id}/profile", status_code=303)
        return self.render(request, "public.html")

    async def kitchen_profile(self, request: Request) -> Response:
        kitchen = self.backends.kitchen
        if kitchen is None:
            return self.problem(
                request, 503, "Kitchen profiles are not configured", "Set KITCHEN_GRPC_ADDRESS."
            )
        answer = await self.call(
            request,
            kitchen.GetPublicProfile,
            kitchen_pb2.GetPublicProfileRequest(kitchen_id=request.path_params["kitchen_id"]),
        )
        profile = answer.profile
        promises = [
            (title, [(f.name.replace("_", " "), getattr(part, f.name)) for f in part.DESCRIPTOR.fields])
            for title, part in (
                ("Observable 可看", profile.observable),
                ("Traceable 可溯", profile.traceable),
                ("Checkable 可查", profile.checkable),
                ("Displayable 可展", profile.displayable),
                ("Ratable 可评", profile.ratable),
            )
        ]
        return self.render(request, "kitchen_profile.html", profile=profile, promises=promises)


class CsrfRefusedError(Exception):
    """A POST without the session's CSRF token."""


def create_app(settings: WebSettings, security: SecuritySettings) -> Starlette:
    web = Web(settings, security)
    routes = [
        Route("/", web.dashboard),
        Route("/healthz", web.healthz),
        Route("/login", web.login),
        Route("/logout", web.logout, methods=["POST"]),
        Route("/inbox", web.inbox),
        Route("/inbox/events", web.inbox_events),
        Route("/inbox/{item_id}", web.inbox_item),
        Route("/inbox/{item_id}/acknowledge", web.acknowledge, methods=["POST"]),
        Route("/search", web.search),
        Route("/entities/{kind}/{entity_id}", web.entity),
        Route("/town/{kind}/{entity_id}", web.town),
        Route("/public", web.public),
        Route("/kitchens/{kitchen_id}/profile", web.kitchen_profile),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(_Headers),
        Middleware(
            SessionMiddleware,
            secret_key=session_secret(settings, security),
            session_cookie=SESSION_COOKIE,
            max_age=8 * 3600,
            same_site="strict",
            https_only=settings.web_cookie_secure,
        ),
    ]
    exception_handlers: dict[Any, Any] = {
        grpc.aio.AioRpcError: web.on_rpc_error,
        NotSignedInError: web.on_not_signed_in,
        CsrfRefusedError: web.on_csrf,
        Exception: web.on_server_error,
    }
    app = Starlette(
        routes=routes, middleware=middleware, exception_handlers=exception_handlers, lifespan=web.lifespan
    )
    app.state.web = web
    return app
