"""The read API: canonical articles, clusters, runs and a durable changes feed over the store (FastAPI).

Downstream systems poll ``/changes`` with an opaque cursor and keep a mirror of the canonical set; people and
dashboards use ``/articles``, ``/clusters``, ``/runs`` and ``/metrics``. Every error is RFC 9457
``application/problem+json`` so clients parse one shape whatever failed. Admin operations (re-run a source, dead
letters) go to whatever the distributed deployment plugs in as an ``AdminBackend``; ``pipeline/`` itself never
imports Celery, so without a broker they answer 503 with a problem saying so.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import importlib
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import partial
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import parse_qsl

import orjson
from anyio import CapacityLimiter, to_thread
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, NoMatchFound

from pipeline.serve import queries
from pipeline.serve.queries import MAX_ID, ArticleFilter, CursorError
from pipeline.serve.status import broker_url
from pipeline.serve.ui import mount_ui
from pipeline.settings import Settings
from pipeline.store.store import Store

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
#: Polls of the feed's horizon (5 ms apart) while PostgreSQL writers are in flight and nothing is servable yet.
HORIZON_RETRIES = 10
#: Threads that run the listing queries that may scan (filters without an index).
DB_THREADS = 4
PROBLEM_BASE = "https://reprint.dev/problems/"
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="A numeric id.")]


# --- problems -------------------------------------------------------------------------------------------------------
class Problem(BaseModel):
    """RFC 9457 problem details; ``errors`` lists every bad parameter of a 422."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class ProblemError(Exception):
    """Raised by handlers to answer with a problem document."""

    def __init__(self, status: int, kind: str, title: str, detail: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail, self.headers = status, kind, title, detail, headers


def problem_response(request: Request, status: int, kind: str, title: str, detail: str, *,
                     errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """One problem+json response; ``instance`` is the request path so logs and replies can be matched."""
    body: dict[str, Any] = {"type": PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail,
                            "instance": request.url.path}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=PROBLEM, headers=headers)


_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 406: "Not acceptable", 415: "Unsupported media type", 422: "Invalid parameters",
           500: "Internal error", 503: "Unavailable"}


def _install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(request, exc.status, exc.kind, exc.title, exc.detail, headers=exc.headers)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        title = _TITLES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        return problem_response(request, exc.status_code, title.lower().replace(" ", "-"), title, detail,
                                headers=getattr(exc, "headers", None))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['loc'][1:]) or e['loc'][0] if e['loc'] else 'request'}: {e['msg']}"
                           for e in errors)
        return problem_response(request, 422, "invalid-parameters", "Invalid parameters", detail or "invalid request",
                                errors=errors)

    async def on_cursor(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(request, 422, "invalid-cursor", "Invalid cursor", str(exc),
                                errors=[{"loc": ["query", "cursor"], "msg": str(exc), "type": "cursor"}])

    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        log.exception("database error on %s", request.url.path, exc_info=exc)
        return problem_response(request, 503, "database-unavailable", "Database unavailable",
                                f"the store could not answer: {type(exc).__name__}")

    async def on_other(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path, exc_info=exc)
        return problem_response(request, 500, "internal-error", "Internal error", type(exc).__name__)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(CursorError, on_cursor)
    app.add_exception_handler(SQLAlchemyError, on_database)
    app.add_exception_handler(Exception, on_other)


def not_found(what: str, ident: int) -> ProblemError:
    return ProblemError(404, "not-found", "Not found", f"no {what} with id {ident}")


# --- response models (they are the OpenAPI schema clients and schemathesis check against) -------------------------
class ArticleSummary(BaseModel):
    id: int
    url: str
    title: str
    site: str | None
    published: str | None
    canonical_url: str | None
    language: str | None
    byline: str | None
    cluster_id: int | None
    canonical: bool
    flags: list[str]
    similarity: float | None = Field(description="Similarity to the cluster's canonical (1.0 for the canonical).")
    ingested_at: str | None
    updated_at: str | None


class ClusterBrief(BaseModel):
    id: int
    canonical_id: int | None
    size: int
    merged_into: int | None
    member_ids: list[int]


class Article(ArticleSummary):
    text: str
    evidence: dict[str, Any]
    n_tokens: int
    cluster: ClusterBrief | None


class ArticlePage(BaseModel):
    items: list[ArticleSummary]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at the end.")


class ClusterMember(ArticleSummary):
    evidence: dict[str, Any]


class Event(BaseModel):
    id: int
    cursor: str = Field(description="Resumes the feed right after this event.")
    at: str | None
    type: str = Field(description="article_added, canonical_status, canonical_changed, flags_changed, "
                                  "clusters_merged, cluster_split")
    cluster_id: int | None
    article_id: int | None
    data: dict[str, Any]


class Cluster(BaseModel):
    id: int
    canonical_id: int | None
    size: int
    merged_into: int | None
    created_at: str | None
    updated_at: str | None
    members: list[ClusterMember]
    history: list[Event]


class ChangesPage(BaseModel):
    events: list[Event]
    next_cursor: str = Field(description="Always present: poll again with it (it does not move when nothing is new).")
    has_more: bool


class Run(BaseModel):
    id: int
    started_at: str | None
    finished_at: str | None
    running: bool
    sources: list[str]
    pages: int
    new_articles: int
    errors: int
    counts: dict[str, Any]


class RunError(BaseModel):
    id: int
    at: str | None
    level: str
    stage: str
    kind: str
    url: str | None
    message: str
    source_id: int | None


class RunDetail(Run):
    error_list: list[RunError]


class RunPage(BaseModel):
    items: list[Run]
    next_cursor: str | None


class SourceHealth(BaseModel):
    id: int
    spec: str
    kind: str
    last_run_id: int | None
    last_run_at: str | None
    last_run_finished_at: str | None
    pages: int
    new_articles: int
    errors: int
    next_due: str | None


class RerunRequest(BaseModel):
    source: str = Field(min_length=1, description="The source spec, as listed by /sources.")


class RerunAccepted(BaseModel):
    source: str
    task_id: str


class DeadLetter(BaseModel):
    id: str
    task: str | None = None
    payload: Any = None
    error: str | None = None
    deliveries: int | None = None
    at: str | None = None


class ReplayRequest(BaseModel):
    ids: list[str] | None = Field(None, description="Dead letters to replay; null replays every one.")


class ReplayResult(BaseModel):
    replayed: int


# --- admin: what the distributed deployment plugs in ----------------------------------------------------------------
class AdminBackend(Protocol):
    """The operations behind the admin endpoints; ``workers/`` implements them over Celery and Redis."""

    def rerun_source(self, spec: str) -> str:
        """Enqueue a run of one source now; returns the task id."""
        ...

    def dead_letters(self, limit: int) -> list[dict[str, Any]]:
        """The dead-lettered tasks, newest first (id, task, payload, error, deliveries, at)."""
        ...

    def replay(self, ids: list[str] | None) -> int:
        """Re-enqueue these dead letters (all when None); returns how many were replayed."""
        ...


#: ``module:function`` that builds the admin backend from the settings when a broker is configured.
ADMIN_BACKEND_FACTORY = "workers.api_admin:admin_backend"


def load_admin_backend(settings: Settings) -> tuple[AdminBackend | None, str]:
    """(backend, why not) — the workers' backend when a broker is configured and ``workers.admin`` provides one."""
    if broker_url(settings) is None:  # explicit only: a server does not guess at a default Redis
        return None, "no broker is configured (set REPRINT_BROKER_URL): this is the embedded deployment"
    module_name, _, attr = ADMIN_BACKEND_FACTORY.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        return None, f"the workers package provides no admin backend ({ADMIN_BACKEND_FACTORY}): {err}"
    try:
        return factory(settings), ""
    except Exception as err:  # a broken broker configuration must not stop the read API
        return None, f"the admin backend could not start: {type(err).__name__}: {err}"


# --- the app --------------------------------------------------------------------------------------------------------
_ALLOWED = "_reprint_query_names"


def _query_names(dependant: Any) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query(request: Request) -> None:
    """422 for query parameters the route does not take: a typo (``?flags=spun``) must not silently widen a query."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = getattr(route, _ALLOWED, None)
    if allowed is None:  # computed once per route and kept on it
        allowed = frozenset(_query_names(dependant))
        setattr(route, _ALLOWED, allowed)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise RequestValidationError([{"loc": ("query", name), "msg": "unknown query parameter",
                                       "type": "extra_forbidden"} for name in unknown])


def _check_token(expected: str | None, credentials: HTTPAuthorizationCredentials | None, realm: str) -> None:
    if expected is None:
        return
    challenge = {"WWW-Authenticate": f'Bearer realm="{realm}"'}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ProblemError(401, "unauthorized", "Unauthorized", "a bearer token is required", challenge)
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise ProblemError(401, "unauthorized", "Unauthorized", "the bearer token is not valid", challenge)


def _problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document with every 4xx/5xx response as problem+json (what the handlers really send)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path in schema.get("paths", {}).values():
            for op in path.values():
                for status, resp in op.get("responses", {}).items():
                    if status[0] in "45" and "content" in resp:
                        resp["content"] = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    return build


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": Problem, "description": _TITLES.get(c, "Error")} for c in codes}


# Module level: FastAPI resolves the (postponed) annotations of dependencies against the module's globals.
bearer = HTTPBearer(auto_error=False, description="The read token (REPRINT_API_TOKEN), when one is set.")
admin_bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken",
                          description="The admin token (REPRINT_ADMIN_TOKEN); admin endpoints always need it.")
ReadCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
AdminCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)]


class _Timing:
    """Pure ASGI middleware timing every request into the API latency histogram (no body buffering)."""

    def __init__(self, app: Any, observe: Callable[[str, str, int, float], None]) -> None:
        self.app, self.observe = app, observe

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "(unmatched)"
            self.observe(scope.get("method", ""), template, status[0], time.perf_counter() - start)


# --- the hot listings' fast path -------------------------------------------------------------------------------------
# GET /articles and GET /changes are what pollers and dashboards hammer. FastAPI's per-request work (a dependency
# graph, pydantic validation of every query parameter) costs more than their indexed query, so a plain route ahead of
# FastAPI's serves the common case: known parameters, each given once, in the simple forms parsed below, and the read
# token when one is set. Anything else (a typo, a bad value, a missing or wrong token) is handed to FastAPI's route,
# whose validation and problem documents are then exactly what they always were. The OpenAPI schema is FastAPI's
# route's, unchanged; the fast path sends the same body that route does.
_LIMIT = re.compile(r"[1-9]\d{0,3}", re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?", re.ASCII)
_CANONICAL = {"true": True, "false": False, "any": None}
_ARTICLE_PARAMS = frozenset({"cursor", "limit", "canonical", "site", "published_since", "ingested_since", "flag", "q"})
_CHANGES_PARAMS = frozenset({"cursor", "limit"})
_JSON_HEADERS = b"application/json"


def _simple_query(scope: dict[str, Any], allowed: frozenset[str]) -> dict[str, str] | None:
    """The query parameters as Starlette parses them, or None unless each is allowed, non-empty and given once."""
    raw = scope.get("query_string") or b""
    out: dict[str, str] = {}
    if not raw:
        return out
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if name in out or name not in allowed or not value:
            return None
        out[name] = value
    return out


def _limit(query: dict[str, str], default: int, most: int) -> int | None:
    value = query.get("limit")
    if value is None:
        return default
    if not _LIMIT.fullmatch(value) or int(value) > most:
        return None
    return int(value)


def _article_query(query: dict[str, str]) -> tuple[ArticleFilter, str | None, int] | None:
    """(filter, cursor, limit) for parameters the route's declaration accepts as they are, else None."""
    limit = _limit(query, 50, 200)
    canonical = query.get("canonical", "true")
    cursor, site, q, flag = query.get("cursor"), query.get("site"), query.get("q"), query.get("flag")
    if (limit is None or canonical not in _CANONICAL or (cursor is not None and len(cursor) > 200)
            or (site is not None and len(site) > 500) or (q is not None and len(q) > 200)
            or (flag is not None and flag not in queries.KNOWN_FLAGS)):
        return None
    published = ingested = None
    try:
        if "published_since" in query:
            if not _DATE.fullmatch(query["published_since"]):
                return None
            published = date.fromisoformat(query["published_since"])
        if "ingested_since" in query:
            if not _DATETIME.fullmatch(query["ingested_since"]):
                return None
            ingested = datetime.fromisoformat(query["ingested_since"])
    except ValueError:
        return None
    return (ArticleFilter(canonical=_CANONICAL[canonical], site=site, published_since=published,
                          ingested_since=ingested, flag=flag, q=q), cursor, limit)


def _bearer_is(scope: dict[str, Any], token: str) -> bool:
    """Whether the request's first Authorization header is ``Bearer <token>`` (what ``read_access`` accepts)."""
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode())
    return False


def json_body(content: Any) -> Response:
    """A JSON response encoded with orjson (the hot listings' bodies; event data may be pre-encoded Fragments)."""
    return Response(orjson.dumps(content), media_type="application/json")


async def _send_json(send: Callable[[Any], Awaitable[None]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", _JSON_HEADERS)]})
    await send({"type": "http.response.body", "body": body})


class _FastRoute(BaseRoute):
    """Serves GET requests of ``route`` that ``fast`` accepts; everything else is ``route``'s (see above)."""

    def __init__(self, route: Any, fast: Callable[[dict[str, Any], Any], Awaitable[bool]]) -> None:
        self.route, self.fast = route, fast
        self.path = route.path

    def matches(self, scope: dict[str, Any]) -> tuple[Match, dict[str, Any]]:
        if scope["type"] != "http" or scope.get("method") != "GET":
            return Match.NONE, {}
        match, child = self.route.matches(scope)
        return (Match.FULL, child) if match is Match.FULL else (Match.NONE, {})

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not await self.fast(scope, send):
            await self.route.handle(scope, receive, send)


def create_app(store: Store, settings: Settings, *, admin: AdminBackend | None = None,
               admin_unavailable: str | None = None,
               status_probe: Callable[[], dict[str, Any]] | None = None) -> FastAPI:
    """The API over ``store``. ``admin`` defaults to the workers' backend when a broker is configured."""
    from pipeline.serve.metrics import Metrics

    if admin is None and admin_unavailable is None:
        admin, admin_unavailable = load_admin_backend(settings)
    metrics = Metrics(store, settings)
    app = FastAPI(
        dependencies=[Depends(reject_unknown_query)],
        title="reprint",
        version="0.1.0",
        description="Canonical news articles, their copies (flagged spun or scraped, with evidence), and a durable "
        "changes feed. Errors are application/problem+json.",
    )
    app.state.store, app.state.settings, app.state.metrics = store, settings, metrics
    _install_problem_handlers(app)
    app.openapi = _problem_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(_Timing, observe=metrics.observe_request)

    def read_access(credentials: ReadCredentials) -> None:
        _check_token(settings.api_token, credentials, "reprint")

    def admin_access(credentials: AdminCredentials) -> None:
        if not settings.admin_token:
            raise ProblemError(403, "admin-disabled", "Forbidden",
                               "admin endpoints are disabled: set REPRINT_ADMIN_TOKEN to enable them")
        _check_token(settings.admin_token, credentials, "reprint-admin")

    def need_admin() -> AdminBackend:
        if admin is None:
            raise ProblemError(503, "no-broker", "Unavailable", admin_unavailable or "no admin backend")
        return admin

    # Reads declare the bearer scheme only when a read token is set, so the schema says what the server does.
    reads = [Depends(read_access)] if settings.api_token else []
    sqlite = store.engine.dialect.name == "sqlite"
    limiter: list[CapacityLimiter] = []

    def db_threads() -> CapacityLimiter:
        """A few threads for queries that may scan: 40 threads (the default pool) fighting over the GIL cost more
        than they overlap, since most of a request is Python work, not waiting on the database."""
        if not limiter:
            limiter.append(CapacityLimiter(DB_THREADS))
        return limiter[0]

    @app.get("/articles", response_model=ArticlePage, dependencies=reads, responses=_errors(401, 422),
             summary="List articles (canonical by default)")
    async def list_articles(
        cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        canonical: Annotated[Literal["true", "false", "any"], Query(
            description="true: canonical articles only; false: copies only; any: both")] = "true",
        site: Annotated[str | None, Query(max_length=500)] = None,
        published_since: Annotated[date | None, Query(description="YYYY-MM-DD; compared to the published date")]
        = None,
        ingested_since: Annotated[datetime | None, Query(description="ISO-8601; when the article was stored")] = None,
        flag: Annotated[Literal["spun", "scraped"] | None, Query()] = None,
        q: Annotated[str | None, Query(min_length=1, max_length=200, description="case-insensitive text in the title")]
        = None,
    ) -> Response:
        flt = ArticleFilter(canonical={"true": True, "false": False, "any": None}[canonical], site=site,
                            published_since=published_since, ingested_since=ingested_since, flag=flag, q=q)
        return json_body(await article_page(flt, cursor, limit))

    async def article_page(flt: ArticleFilter, cursor: str | None, limit: int) -> dict[str, Any]:
        after = queries.decode_cursor(cursor, "a") if cursor else 0
        if queries.bounded(flt):
            # an index walk of O(limit) entries: cheaper run right here than handed to a thread (a thread hop
            # and GIL hand-off cost more than the query under concurrency)
            items, last = queries.list_articles(store, flt, after=after, limit=limit)
        else:  # a filter that may scan: on a thread, so a slow scan never stalls the event loop
            items, last = await to_thread.run_sync(
                partial(queries.list_articles, store, flt, after=after, limit=limit), limiter=db_threads())
        # the rows are built to the schema already; re-validating 200 of them per request would cost more than the
        # query (schemathesis checks the conformance)
        return {"items": items, "next_cursor": queries.encode_cursor("a", last) if last is not None else None}

    @app.get("/articles/{article_id}", response_model=Article, dependencies=reads, responses=_errors(401, 404, 422),
             summary="One article and its cluster")
    def get_article(article_id: Id) -> dict[str, Any]:
        found = queries.get_article(store, article_id)
        if found is None:
            raise not_found("article", article_id)
        return found

    @app.get("/clusters/{cluster_id}", response_model=Cluster, dependencies=reads, responses=_errors(401, 404, 422),
             summary="A cluster: every member with flags, evidence, similarity, and the canonical's history")
    def get_cluster(cluster_id: Id) -> dict[str, Any]:
        found = queries.get_cluster(store, cluster_id)
        if found is None:
            raise not_found("cluster", cluster_id)
        return found

    @app.get("/changes", response_model=ChangesPage, dependencies=reads, responses=_errors(401, 422),
             summary="The ordered, durable feed of changes")
    async def changes(
        cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous call; omit to "
                                            "start from the beginning")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    ) -> Response:
        """Events in the order they were written. Apply ``article_added`` (data.canonical) and ``canonical_status``
        (data.canonical) to a set of article ids to mirror the canonical set exactly."""
        return json_body(await changes_page(cursor, limit))

    async def changes_page(cursor: str | None, limit: int) -> dict[str, Any]:
        after = queries.decode_cursor(cursor, "e") if cursor else 0
        # a primary-key range: bounded and fast, served on the loop. On PostgreSQL the horizon is checked
        # without blocking; while writers are in flight it holds back, and this waits on the loop, not a thread.
        # Event data go out as stored (orjson Fragments): nothing is decoded to be encoded again.
        events, last = queries.list_changes(store, after=after, limit=limit, wait=0.0, raw_data=True)
        for _ in range(HORIZON_RETRIES if not events and not sqlite else 0):
            await asyncio.sleep(0.005)
            events, last = queries.list_changes(store, after=after, limit=limit, wait=0.0, raw_data=True)
            if events:
                break
        return {"events": events, "next_cursor": queries.encode_cursor("e", last), "has_more": len(events) == limit}

    @app.get("/runs", response_model=RunPage, dependencies=reads, responses=_errors(401, 422),
             summary="Ingest runs, newest first")
    def runs(
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> dict[str, Any]:
        before = queries.decode_cursor(cursor, "r") if cursor else None
        items, last = queries.list_runs(store, before=before, limit=limit)
        return {"items": items, "next_cursor": queries.encode_cursor("r", last) if last is not None else None}

    @app.get("/runs/{run_id}", response_model=RunDetail, dependencies=reads, responses=_errors(401, 404, 422),
             summary="One run with its errors and their messages")
    def run(run_id: Id) -> dict[str, Any]:
        found = queries.get_run(store, run_id)
        if found is None:
            raise not_found("run", run_id)
        return found

    @app.get("/sources", response_model=list[SourceHealth], dependencies=reads, responses=_errors(401),
             summary="Per-source health: last run, pages, new articles, errors")
    def sources() -> list[dict[str, Any]]:
        return queries.source_health(store)

    @app.get("/status", dependencies=reads, responses=_errors(401),
             summary="What `reprint status --json` prints: queues, workers, runs, today's numbers")
    def status() -> dict[str, Any]:
        if status_probe is not None:
            return status_probe()
        from pipeline.serve.status import collect_status

        return collect_status(store, settings, probe_default=False)

    @app.get("/metrics", dependencies=reads, include_in_schema=False)
    def metrics_endpoint() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/healthz", summary="Liveness and store reachability")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "latest_event": queries.encode_cursor("e", queries.latest_event_id(store))}

    admin_deps = [Depends(admin_access)]
    admin_errors = _errors(401, 403, 422, 503)
    admin_body_errors = _errors(400, 401, 403, 422, 503)  # 400: a body that is not JSON at all

    @app.post("/admin/sources/rerun", response_model=RerunAccepted, status_code=202, dependencies=admin_deps,
              responses=admin_body_errors, summary="Re-run one source now (distributed deployment)")
    def rerun(body: RerunRequest) -> dict[str, Any]:
        backend = need_admin()
        return {"source": body.source, "task_id": str(backend.rerun_source(body.source))}

    @app.get("/admin/dead-letters", response_model=list[DeadLetter], dependencies=admin_deps,
             responses=admin_errors, summary="Tasks that were dead-lettered after repeated failures")
    def dead_letters(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        return need_admin().dead_letters(limit)

    @app.post("/admin/dead-letters/replay", response_model=ReplayResult, dependencies=admin_deps,
              responses=admin_body_errors, summary="Re-enqueue dead letters (all, or the given ids)")
    def replay(body: ReplayRequest) -> dict[str, Any]:
        return {"replayed": int(need_admin().replay(body.ids))}

    token = settings.api_token

    async def fast_articles(scope: dict[str, Any], send: Any) -> bool:
        query = _simple_query(scope, _ARTICLE_PARAMS)
        parsed = _article_query(query) if query is not None else None
        if parsed is None or (token is not None and not _bearer_is(scope, token)):
            return False
        await _send_json(send, orjson.dumps(await article_page(*parsed)))
        return True

    async def fast_changes(scope: dict[str, Any], send: Any) -> bool:
        query = _simple_query(scope, _CHANGES_PARAMS)
        limit = _limit(query, 500, 1000) if query is not None else None
        cursor = query.get("cursor") if query is not None else None
        if limit is None or (cursor is not None and len(cursor) > 200) or (
                token is not None and not _bearer_is(scope, token)):
            return False
        await _send_json(send, orjson.dumps(await changes_page(cursor, limit)))
        return True

    for route, fast in ((_route(app, "/articles"), fast_articles), (_route(app, "/changes"), fast_changes)):
        app.router.routes.insert(0, _FastRoute(route, fast))
    if sqlite:
        queries.ensure_read_indexes(store)
    mount_ui(app, store, settings, status_probe=status_probe)
    return app


def _route(app: FastAPI, path: str) -> Any:
    return next(r for r in app.router.routes if getattr(r, "path", None) == path and "GET" in getattr(r, "methods", ()))


# --- running it -----------------------------------------------------------------------------------------------------
def app_from_env() -> FastAPI:
    """An app from the ``REPRINT_*`` environment: ``uvicorn --factory pipeline.serve.api:app_from_env`` (several
    workers,
    docker-compose's api service, the benchmark's server process)."""
    settings = Settings()
    app = create_app(Store(settings.database_url), settings)
    settle_heap()
    return app


def settle_heap() -> None:
    """Freeze what the server holds from startup (modules, the app, its routes and models) out of the cyclic GC.

    A listing allocates a few hundred containers, so the collector runs every few requests, and each full
    collection walked every object of FastAPI, pydantic and SQLAlchemy: milliseconds, landing on whichever
    request was in flight (most of the p99). Frozen objects are never scanned (nor freed: startup state lives
    as long as the process anyway)."""
    gc.collect()
    gc.freeze()


def serve(store: Store, settings: Settings, host: str = "127.0.0.1", port: int = 8000, *,
          log_level: str = "info", workers: int = 1) -> None:
    """Run the API under uvicorn in the foreground (``reprint serve``).

    With ``workers`` > 1 uvicorn runs that many processes, each building its app with ``app_from_env`` from the
    environment (the database URL is passed on through REPRINT_DATABASE_URL), all accepting on one socket.
    uvicorn uses httptools and uvloop when they are installed (``uvicorn[standard]``).
    """
    import uvicorn

    if workers > 1:
        os.environ["REPRINT_DATABASE_URL"] = settings.database_url
        uvicorn.run("pipeline.serve.api:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, access_log=False)
        return
    app = create_app(store, settings)
    settle_heap()
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0, *,
                    log_level: str = "warning") -> Iterator[str]:
    """A real uvicorn serving ``app`` on a background thread; yields its base URL, stops it on exit.

    The socket is bound before the thread starts (port 0 = an ephemeral port), so the URL is valid the moment
    it is yielded: tests and benchmarks never race the server's startup.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off", backlog=512)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="reprint-api")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
