"""The web UI's routes: server-rendered pages for editors and operators, mounted on the API app.

``mount_ui(app, store, settings)`` adds them to the FastAPI app ``create_app`` builds (the JSON API is
unchanged, and these routes are not in its OpenAPI schema):

======================================  ===============================================================
``GET /``                               the cluster list (sort, filter by flag, site, date; title search)
``GET /ui/clusters/{id}``               one cluster: canonical, members (paginated), one member's diff
                                        (``?member=ID``), the canonical's history, review actions
``GET /ui/ops``                         operations: the ``reprint status`` data, refreshing itself
``GET /ui/reviews``                     every operator review, with undo
``GET|POST /ui/login``, ``POST /ui/logout``  sign-in with a token (``auth``)
``POST /ui/review``                     apply a review (make canonical, separate, merge, flag on/off)
``POST /ui/reviews/{id}/undo``          undo a review
``GET /ui/static/…``                    the stylesheet and htmx
======================================  ===============================================================

Pages are plain HTML that works without JavaScript; htmx only refreshes the operations screen in place (a
``<noscript>`` meta refresh does it otherwise). Every response carries a Content-Security-Policy that allows
scripts and styles from this origin only, on top of Jinja2's autoescaping: stored text is never markup. When
``REPRINT_API_TOKEN`` protects reads, the pages need a signed-in session too. Errors are HTML pages with the
right status (the JSON API's problem documents are for API clients).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jinja2
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipeline.serve.limits import NOTE_CHARS as NOTE_MAX
from pipeline.serve.queries import KNOWN_FLAGS
from pipeline.serve.ui import data
from pipeline.serve.ui.auth import Session, Sessions
from pipeline.serve.ui.diff import DiffText, render_inline, render_plain, render_side, word_diff
from pipeline.serve.ui.reviews import FLAGS, KINDS, ReviewBackend, load_reviews
from pipeline.settings import Settings
from pipeline.store import Store

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
PREFIX = "/ui"
MEMBERS_PER_PAGE = 50
CLUSTERS_PER_PAGE = 50
OPS_REFRESH_SECONDS = 5
#: A form body larger than this is refused (the forms hold a token, a note and two URLs).
MAX_FORM_BYTES = 64 * 1024
#: Seconds a wrong token waits before its answer: slows down guessing without a lock-out to abuse.
WRONG_TOKEN_DELAY = 0.5
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff",
                    "x-frame-options": "DENY", "referrer-policy": "same-origin", "cache-control": "no-store"}
NOTICES = {"applied": "Review {review} applied.", "undone": "Review {review} undone.",
           "signed-in": "Signed in.", "signed-out": "Signed out."}
_SAFE_SCHEMES = ("http", "https", "file")


def _href(url: Any) -> str | None:
    """A URL a link may point at (http, https or file); None for anything else (``javascript:`` and the like)."""
    if not isinstance(url, str):
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in _SAFE_SCHEMES else None


def _local_path(value: str | None, default: str = "/") -> str:
    """A path on this site to send the browser back to (never another host: no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or any(
            ord(c) < 32 for c in value):
        return default
    return value


def _here(request: Request) -> str:
    """This request's path and query: where to come back to after signing in."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["href"] = _href
    env.filters["pct"] = lambda v: "–" if v is None else f"{100 * float(v):.0f}%"
    env.filters["when"] = lambda v: (v or "").replace("T", " ").removesuffix("Z")[:19] if v else "–"
    env.filters["pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    env.globals["KNOWN_FLAGS"] = KNOWN_FLAGS
    return env


def _int(params: Any, name: str, default: int, low: int = 0, high: int = 2**62) -> int:
    value = params.get(name)
    if value is None or not re.fullmatch(r"\d{1,18}", value):
        return default
    return min(high, max(low, int(value)))


def _date(params: Any, name: str, problems: list[str]) -> date | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"{name}: {value!r} is not a date (YYYY-MM-DD); ignored")
        return None


async def _form(request: Request) -> dict[str, list[str]] | None:
    """The urlencoded form body (every value of each field), or None when it is too big or not a form."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    out: dict[str, list[str]] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        out.setdefault(key, []).append(value)
    return out


def _first(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


class UI:
    """The pages over one store (see the module docstring); ``mount_ui`` builds one and adds its routes."""

    def __init__(self, store: Store, settings: Settings, *, status_probe: Callable[[], dict[str, Any]] | None = None,
                 reviews: ReviewBackend | None = None, reviews_unavailable: str | None = None) -> None:
        self.store, self.settings, self.status_probe = store, settings, status_probe
        if reviews is None and reviews_unavailable is None:
            reviews, reviews_unavailable = load_reviews(store)
        self.reviews, self.reviews_unavailable = reviews, reviews_unavailable or ""
        self.sessions = Sessions(settings)
        self.env = _environment()

    # --- responses ------------------------------------------------------------------------------------------------
    def page(self, request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        session, fresh = self.sessions.ensure(request)
        notice = NOTICES.get(request.query_params.get("notice", ""))
        if notice:
            notice = notice.format(review=f"#{_int(request.query_params, 'review', 0)}")
        base = {
            "request_path": request.url.path, "here": _here(request), "session": session,
            "csrf": self.sessions.csrf_token(session),
            "signin_enabled": self.sessions.enabled, "admin": bool(session and session.admin),
            "can_review": bool(session and session.admin and self.reviews is not None),
            "reviews_available": self.reviews is not None, "reviews_unavailable": self.reviews_unavailable,
            "notice": notice, "static": f"{PREFIX}/static", "prefix": PREFIX, "problems": [],
        }
        body = self.env.get_template(template).render(**(base | ctx))
        response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
        if fresh and session is not None:
            self.sessions.set_cookie(response, request, session)
        return response

    def error(self, request: Request, status: int, title: str, detail: str) -> HTMLResponse:
        return self.page(request, "error.html", status, title=title, detail=detail)

    def gate(self, request: Request) -> Response | None:
        """A redirect to the login form when reads need a token and this browser has not signed in."""
        if self.settings.api_token:
            session = self.sessions.current(request)
            if session is None or not session.signed_in:
                login = f"{PREFIX}/login?{urlencode({'next': _here(request)})}"
                if request.headers.get("hx-request") == "true":  # htmx follows redirects itself: navigate instead
                    return Response(status_code=204, headers=SECURITY_HEADERS | {"hx-redirect": login})
                return RedirectResponse(login, 303, headers=SECURITY_HEADERS)
        return None

    def guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """A GET handler behind ``gate``, whose database failures are an HTML 503, not a stack trace."""

        def run(request: Request) -> Response:
            redirect = self.gate(request)
            if redirect is not None:
                return redirect
            try:
                with data.reading(self.store):
                    return handler(request)
            except SQLAlchemyError as err:
                log.exception("database error on %s", request.url.path)
                return self.error(request, 503, "Database unavailable",
                                  f"The store could not answer ({type(err).__name__}). Try again shortly.")

        run.__name__ = handler.__name__
        return run

    # --- pages ------------------------------------------------------------------------------------------------------
    def clusters(self, request: Request) -> Response:
        p = request.query_params
        problems: list[str] = []
        sort = p.get("sort") if p.get("sort") in data.SORTS else "newest"
        flag = p.get("flag") if p.get("flag") in KNOWN_FLAGS else None
        site = (p.get("site") or "").strip()[:500] or None
        q = (p.get("q") or "").strip()[:200] or None
        cq = data.ClusterQuery(sort=sort, flag=flag, site=site, since=_date(p, "since", problems),
                               until=_date(p, "until", problems), q=q, singles=p.get("singles") == "1",
                               page=_int(p, "page", 1, 1, 100_000), per_page=CLUSTERS_PER_PAGE)
        rows, more = data.list_clusters(self.store, cq)
        keep = {k: v for k, v in {"sort": sort if sort != "newest" else None, "flag": flag, "site": site, "q": q,
                                  "since": cq.since.isoformat() if cq.since else None,
                                  "until": cq.until.isoformat() if cq.until else None,
                                  "singles": "1" if cq.singles else None}.items() if v}

        def page_url(n: int) -> str:
            return "/?" + urlencode(keep | ({"page": n} if n > 1 else {}))

        return self.page(request, "clusters.html", rows=rows, cq=cq, sorts=data.SORTS, problems=problems,
                         prev_url=page_url(cq.page - 1) if cq.page > 1 else None,
                         next_url=page_url(cq.page + 1) if more else None,
                         sort_url=lambda s: "/?" + urlencode({k: v for k, v in keep.items() if k != "sort"}
                                                             | ({"sort": s} if s != "newest" else {})),
                         first=(cq.page - 1) * cq.per_page + 1)

    def cluster(self, request: Request) -> Response:
        cluster_id = int(request.path_params["cluster_id"])
        p = request.query_params
        header = data.cluster_header(self.store, cluster_id)
        if header is None:
            return self.error(request, 404, "No such cluster", f"There is no cluster {cluster_id}.")
        if header["merged_into"] and not header["size"]:
            return self.page(request, "merged.html", cluster=header)
        mflag = p.get("mflag") if p.get("mflag") in KNOWN_FLAGS else None
        after = _int(p, "after", 0)
        members, next_after = data.list_members(self.store, cluster_id, after=after, limit=MEMBERS_PER_PAGE,
                                                flag=mflag)
        canonical = header["canonical"]
        chosen = _int(p, "member", 0) or None
        if chosen is None:  # the first flagged copy shown, else the first copy: the diff an editor came for
            copies = [m for m in members if not m["canonical"]]
            pick = next((m for m in copies if m["flags"]), copies[0] if copies else None)
            chosen = pick["id"] if pick else None
        diff_ctx = self._diff(cluster_id, canonical, chosen)
        if chosen is not None and canonical is not None and diff_ctx is None:
            moved = data.article_cluster(self.store, chosen)
            if moved is not None and moved != cluster_id:
                return RedirectResponse(f"{PREFIX}/clusters/{moved}?member={chosen}#diff", 303,
                                        headers=SECURITY_HEADERS)
            return self.error(request, 404, "No such member", f"Article {chosen} is not in cluster {cluster_id}.")
        keep = {k: v for k, v in {"mflag": mflag, "after": after or None}.items() if v}

        def members_url(**change: Any) -> str:
            params = {k: v for k, v in (keep | change).items() if v}
            return f"{PREFIX}/clusters/{cluster_id}" + (f"?{urlencode(params)}" if params else "")

        prev_after = data.member_before(self.store, cluster_id, members[0]["id"], MEMBERS_PER_PAGE) \
            if after and members and not mflag else None
        selected = diff_ctx["member"] if diff_ctx else None
        review_urls = [u for u in (canonical["url"] if canonical else None, selected["url"] if selected else None) if u]
        return self.page(
            request, "cluster.html", cluster=header, canonical=canonical, members=members, mflag=mflag,
            selected=selected, diff=diff_ctx, timeline=data.timeline(self.store, cluster_id, header["state"]),
            member_url=lambda mid: members_url(member=mid) + "#diff",
            next_url=members_url(after=next_after) if next_after else None,
            prev_url=(members_url(after=prev_after or None) if after else None),
            filter_url=lambda f: f"{PREFIX}/clusters/{cluster_id}" + (f"?mflag={f}" if f else ""),
            back=members_url(member=chosen) if chosen else members_url(),
            reviews=self._reviews_for(review_urls))

    def _diff(self, cluster_id: int, canonical: dict[str, Any] | None, member_id: int | None) -> dict[str, Any] | None:
        """The chosen member's diff against the canonical, ready for the template (None: not in this cluster)."""
        if member_id is None or canonical is None:
            return None
        ids = sorted({canonical["id"], member_id})
        texts = data.diff_texts(self.store, cluster_id, ids)
        if member_id not in texts or canonical["id"] not in texts:
            return None
        c, m = texts[canonical["id"]], texts[member_id]
        if member_id == canonical["id"]:
            return {"member": m, "canonical": c, "same": True, "text": render_plain(c["text"])}
        wd = word_diff(DiffText.from_row(c["text"], c["meta"], c["byline"]),
                       DiffText.from_row(m["text"], m["meta"], m["byline"]))
        return {"member": m, "canonical": c, "same": False, "wd": wd, "counts": wd.counts,
                "left": render_side(wd, "canonical"), "right": render_side(wd, "member"),
                "inline": render_inline(wd), "swaps": wd.swap_summary}

    def _reviews_for(self, urls: list[str]) -> list[dict[str, Any]] | None:
        if self.reviews is None:
            return None
        seen: dict[Any, dict[str, Any]] = {}
        for url in dict.fromkeys(urls):
            for r in self.reviews.list_reviews(url=url):
                seen.setdefault(r.get("id", id(r)), r)
        return list(seen.values())

    def ops(self, request: Request) -> Response:
        from pipeline.serve.queries import get_run
        from pipeline.serve.status import collect_status

        status = self.status_probe() if self.status_probe else collect_status(self.store, self.settings,
                                                                              probe_default=False)
        errors = {r["id"]: (get_run(self.store, r["id"], max_errors=5) or {}).get("error_list", [])
                  for r in status.get("runs", []) if r.get("errors")}
        fragment = request.headers.get("hx-request") == "true"
        return self.page(request, "ops_fragment.html" if fragment else "ops.html", st=status,
                         run_errors=errors, refresh=OPS_REFRESH_SECONDS)

    def review_list(self, request: Request) -> Response:
        reviews = self.reviews.list_reviews() if self.reviews is not None else None
        return self.page(request, "reviews.html", reviews=reviews)

    def login_form(self, request: Request) -> Response:
        return self.page(request, "login.html", next=_local_path(request.query_params.get("next")), failed=None)

    # --- forms ------------------------------------------------------------------------------------------------------
    async def _checked(self, request: Request, *, admin: bool = True, reviews: bool = False
                       ) -> tuple[dict[str, list[str]], Session] | Response:
        """The form and session of a POST that passed the CSRF check (and is an admin's, when ``admin``), else the
        refusal; with ``reviews``, a 503 when there is no review store to send it to."""
        form = await _form(request)
        if form is None:
            return self.error(request, 400, "Bad form", "Expected a urlencoded form of at most 64 KiB.")
        session, why = self.sessions.check_post(request, _first(form, "csrf"))
        if session is None:
            return self.error(request, 403, "Forbidden", why or "refused")
        if admin and not session.admin:
            return self.error(request, 403, "Forbidden", "Sign in with the admin token to review.")
        if reviews and self.reviews is None:
            return self.error(request, 503, "Reviews unavailable", self.reviews_unavailable)
        return form, session

    async def login(self, request: Request) -> Response:
        checked = await self._checked(request, admin=False)
        if isinstance(checked, Response):
            return checked
        form, _ = checked
        nxt = _local_path(_first(form, "next"))
        role = self.sessions.role_for(_first(form, "token"))
        if role is None:
            await asyncio.sleep(WRONG_TOKEN_DELAY)
            return self.page(request, "login.html", 403, next=nxt, failed="That token is not valid.")
        name = re.sub(r"[^\w .@-]", "", _first(form, "name"))[:60].strip()
        session = self.sessions.new(role, name or role)
        target = nxt + ("&" if "?" in nxt else "?") + "notice=signed-in"
        response = RedirectResponse(target, 303, headers=SECURITY_HEADERS)
        self.sessions.set_cookie(response, request, session)
        return response

    async def logout(self, request: Request) -> Response:
        checked = await self._checked(request, admin=False)
        if isinstance(checked, Response):
            return checked
        response = RedirectResponse("/?notice=signed-out", 303, headers=SECURITY_HEADERS)
        self.sessions.set_cookie(response, request, self.sessions.new())
        return response

    async def review(self, request: Request) -> Response:
        checked = await self._checked(request, reviews=True)
        if isinstance(checked, Response):
            return checked
        form, session = checked
        kind = _first(form, "kind")
        urls = [u.strip() for u in form.get("url", []) + form.get("other", []) if u.strip()]
        flag: str | None = None
        on: bool | None = None
        if kind.startswith("flag:"):  # flag:spun:on and the like, one submit button each
            _, flag, state = (kind.split(":") + ["", ""])[:3]
            kind, on = "flag", {"on": True, "off": False}.get(state)
            if flag not in FLAGS or on is None:
                return self.error(request, 422, "Invalid review", f"unknown flag action {_first(form, 'kind')!r}")
        if kind not in KINDS:
            return self.error(request, 422, "Invalid review", f"unknown review kind {kind!r}")
        if not urls or (kind == "merge") != (len(urls) == 2) or len(urls) > 2:
            return self.error(request, 422, "Invalid review",
                              "merge takes two URLs (this page and another); the other reviews take one")
        note = _first(form, "note").strip()[:NOTE_MAX] or None
        reviews = self.reviews
        assert reviews is not None
        result = await self._call(request, lambda: reviews.apply(kind, urls, flag=flag, on=on,
                                                                 who=_who(session), note=note))
        if isinstance(result, Response):
            return result
        return self._back(form, "applied", result)

    async def undo(self, request: Request) -> Response:
        checked = await self._checked(request, reviews=True)
        if isinstance(checked, Response):
            return checked
        form, session = checked
        review_id = int(request.path_params["review_id"])
        reviews = self.reviews
        assert reviews is not None
        result = await self._call(request, lambda: reviews.undo(review_id, who=_who(session)))
        if isinstance(result, Response):
            return result
        return self._back(form, "undone", {"id": review_id, **result})

    async def _call(self, request: Request, work: Callable[[], dict[str, Any]]) -> dict[str, Any] | Response:
        try:
            return await run_in_threadpool(work)
        except LookupError as err:
            return self.error(request, 404, "Not found", str(err) or type(err).__name__)
        except ValueError as err:
            return self.error(request, 422, "Invalid review", str(err) or type(err).__name__)
        except SQLAlchemyError as err:
            log.exception("database error on %s", request.url.path)
            return self.error(request, 503, "Database unavailable", f"the store could not answer: {type(err).__name__}")

    def _back(self, form: dict[str, list[str]], notice: str, result: dict[str, Any]) -> Response:
        back = _local_path(_first(form, "back"))
        path, _, fragment = back.partition("#")
        review = result.get("id")
        extra = {"notice": notice} | ({"review": review} if isinstance(review, int) else {})
        target = path + ("&" if "?" in path else "?") + urlencode(extra) + (f"#{fragment}" if fragment else "")
        return RedirectResponse(target, 303, headers=SECURITY_HEADERS)

    # --- wiring -----------------------------------------------------------------------------------------------------
    def routes(self) -> list[Any]:
        def to_root(request: Request) -> Response:
            return RedirectResponse("/", 308)

        return [
            Route("/", self.guarded(self.clusters), methods=["GET"], name="ui_clusters"),
            Route(PREFIX, to_root, methods=["GET"]),
            Route(PREFIX + "/", to_root, methods=["GET"]),
            Route(PREFIX + "/clusters/{cluster_id:int}", self.guarded(self.cluster), methods=["GET"],
                  name="ui_cluster"),
            Route(PREFIX + "/ops", self.guarded(self.ops), methods=["GET"], name="ui_ops"),
            Route(PREFIX + "/reviews", self.guarded(self.review_list), methods=["GET"], name="ui_reviews"),
            Route(PREFIX + "/login", self.login_form, methods=["GET"], name="ui_login_form"),
            Route(PREFIX + "/login", self.login, methods=["POST"], name="ui_login"),
            Route(PREFIX + "/logout", self.logout, methods=["POST"], name="ui_logout"),
            Route(PREFIX + "/review", self.review, methods=["POST"], name="ui_review"),
            Route(PREFIX + "/reviews/{review_id:int}/undo", self.undo, methods=["POST"], name="ui_undo"),
            Mount(PREFIX + "/static", app=StaticFiles(directory=HERE / "static"), name="ui_static"),
        ]


def _who(session: Session) -> str:
    return f"{session.name or session.role} (web)"


def mount_ui(app: FastAPI, store: Store, settings: Settings, *,
             status_probe: Callable[[], dict[str, Any]] | None = None, reviews: ReviewBackend | None = None,
             reviews_unavailable: str | None = None) -> UI:
    """Add the web UI's routes to ``app`` (see the module docstring); returns the ``UI`` for tests to inspect.

    ``reviews`` defaults to ``load_reviews(store)`` (the library's review functions, when they exist)."""
    ui = UI(store, settings, status_probe=status_probe, reviews=reviews, reviews_unavailable=reviews_unavailable)
    app.router.routes.extend(ui.routes())
    app.state.ui = ui
    return ui


__all__ = ["CSP", "PREFIX", "UI", "mount_ui"]
