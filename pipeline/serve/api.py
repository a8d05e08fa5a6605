"""The read API: canonical articles, clusters, runs and a durable changes feed over the store (FastAPI).

Downstream systems poll ``/changes`` with an opaque cursor and keep a mirror of the canonical set; people and
dashboards use ``/articles``, ``/clusters``, ``/runs`` and ``/metrics``. Every error is RFC 9457
``application/problem+json`` (``problems.py``) so clients parse one shape whatever failed. Admin operations
(re-run a source, dead letters) go to whatever the distributed deployment plugs in as an ``AdminBackend``;
``pipeline/`` itself never imports Celery, so without a broker they answer 503 with a problem saying so.

The app is assembled by ``create_app`` from a few route groups: articles (and their versions) and clusters, the
changes feed, runs and sources, operations (status, metrics, health), admin, and the living-article admin routes
(``/admin/reviews``, ``/admin/forget``, ``/admin/tombstones``: the library's own work, no broker needed); the two
hot listings also get a fast path
(``fast.py``). Every bound on a parameter is in ``limits.py``.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import importlib
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import partial
from typing import Annotated, Any, Literal, Protocol

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pipeline.records import ArticleFilter
from pipeline.serve import limits, queries
from pipeline.serve.cursors import MAX_ID, decode_cursor, encode_cursor
from pipeline.serve.fast import install_fast_routes, json_body
from pipeline.serve.models import (
    Article,
    ArticlePage,
    ArticleVersions,
    ChangesPage,
    Cluster,
    DeadLetter,
    FlagReview,
    ForgetRequest,
    ForgetResult,
    MergeReview,
    ReplayRequest,
    ReplayResult,
    RerunAccepted,
    RerunRequest,
    ReviewRequest,
    RunDetail,
    RunPage,
    SourceHealth,
    Tombstone,
    UndoRequest,
)
from pipeline.serve.models import Review as ReviewModel
from pipeline.serve.problems import (
    ProblemError,
    error_responses,
    install_problem_handlers,
    not_found,
    problem_openapi,
)
from pipeline.serve.status import broker_url
from pipeline.serve.ui import mount_ui
from pipeline.serve.ui.reviews import ReviewBackend
from pipeline.settings import Settings
from pipeline.store import Store

log = logging.getLogger(__name__)

#: Polls of the feed's horizon (5 ms apart) while PostgreSQL writers are in flight and nothing is servable yet.
HORIZON_RETRIES = 10
#: Threads that run the listing queries that may scan (filters without an index).
DB_THREADS = 4
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="A numeric id.")]


# --- admin: what the distributed deployment plugs in ---------------------------------------------------
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


class _Reads:
    """What the article and feed routes (and their fast path) share: the store and a few database threads."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.sqlite = store.engine.dialect.name == "sqlite"
        self._limiter: CapacityLimiter | None = None

    def db_threads(self) -> CapacityLimiter:
        """A few threads for queries that may scan: 40 threads (the default pool) fighting over the GIL cost more
        than they overlap, since most of a request is Python work, not waiting on the database."""
        if self._limiter is None:
            self._limiter = CapacityLimiter(DB_THREADS)
        return self._limiter

    async def article_page(self, flt: ArticleFilter, cursor: str | None, limit: int) -> dict[str, Any]:
        after = decode_cursor(cursor, "a") if cursor else 0
        if queries.bounded(flt):
            # an index walk of O(limit) entries: cheaper run right here than handed to a thread (a thread hop
            # and GIL hand-off cost more than the query under concurrency)
            items, last = queries.list_articles(self.store, flt, after=after, limit=limit)
        else:  # a filter that may scan: on a thread, so a slow scan never stalls the event loop
            items, last = await to_thread.run_sync(
                partial(queries.list_articles, self.store, flt, after=after, limit=limit), limiter=self.db_threads())
        # the rows are built to the schema already; re-validating 200 of them per request would cost more than the
        # query (schemathesis checks the conformance)
        return {"items": items, "next_cursor": encode_cursor("a", last) if last is not None else None}

    async def changes_page(self, cursor: str | None, limit: int) -> dict[str, Any]:
        after = decode_cursor(cursor, "e") if cursor else 0
        # a primary-key range: bounded and fast, served on the loop. On PostgreSQL the horizon is checked
        # without blocking; while writers are in flight it holds back, and this waits on the loop, not a thread.
        # Event data go out as stored (orjson Fragments): nothing is decoded to be encoded again.
        events, last = queries.list_changes(self.store, after=after, limit=limit, wait=0.0, raw_data=True)
        for _ in range(HORIZON_RETRIES if not events and not self.sqlite else 0):
            await asyncio.sleep(0.005)
            events, last = queries.list_changes(self.store, after=after, limit=limit, wait=0.0, raw_data=True)
            if events:
                break
        return {"events": events, "next_cursor": encode_cursor("e", last), "has_more": len(events) == limit}


Cursor = Annotated[str | None, Query(max_length=limits.CURSOR_CHARS, description="next_cursor of the previous page")]


def _article_routes(app: FastAPI, reads: _Reads, deps: list[Any]) -> None:
    store = reads.store

    @app.get("/articles", response_model=ArticlePage, dependencies=deps, responses=error_responses(401, 422),
             summary="List articles (canonical by default)")
    async def list_articles(
        cursor: Cursor = None,
        limit: Annotated[int, Query(ge=1, le=limits.ARTICLES.most)] = limits.ARTICLES.default,
        canonical: Annotated[Literal["true", "false", "any"], Query(
            description="true: canonical articles only; false: copies only; any: both")] = "true",
        site: Annotated[str | None, Query(max_length=limits.SITE_CHARS)] = None,
        published_since: Annotated[date | None, Query(description="YYYY-MM-DD; compared to the published date")]
        = None,
        ingested_since: Annotated[datetime | None, Query(description="ISO-8601; when the article was stored")] = None,
        flag: Annotated[Literal["spun", "scraped"] | None, Query()] = None,
        q: Annotated[str | None, Query(min_length=1, max_length=limits.QUERY_CHARS,
                                       description="case-insensitive text in the title")] = None,
    ) -> Response:
        flt = ArticleFilter(canonical={"true": True, "false": False, "any": None}[canonical], site=site,
                            published_since=published_since, ingested_since=ingested_since, flag=flag, q=q)
        return json_body(await reads.article_page(flt, cursor, limit))

    @app.get("/articles/{article_id}", response_model=Article, dependencies=deps,
             responses=error_responses(401, 404, 422), summary="One article and its cluster")
    def get_article(article_id: Id) -> dict[str, Any]:
        found = queries.get_article(store, article_id)
        if found is None:
            raise not_found("article", article_id)
        return found

    @app.get("/articles/{article_id}/versions", response_model=ArticleVersions, dependencies=deps,
             responses=error_responses(401, 404, 422), summary="An article's current version and the ones it replaced")
    def get_versions(article_id: Id) -> dict[str, Any]:
        found = queries.article_versions(store, article_id)
        if found is None:
            raise not_found("article", article_id)
        return found

    @app.get("/clusters/{cluster_id}", response_model=Cluster, dependencies=deps,
             responses=error_responses(401, 404, 422),
             summary="A cluster: every member with flags, evidence, similarity, and the canonical's history")
    def get_cluster(cluster_id: Id) -> dict[str, Any]:
        found = queries.get_cluster(store, cluster_id)
        if found is None:
            raise not_found("cluster", cluster_id)
        return found


def _feed_routes(app: FastAPI, reads: _Reads, deps: list[Any]) -> None:
    @app.get("/changes", response_model=ChangesPage, dependencies=deps, responses=error_responses(401, 422),
             summary="The ordered, durable feed of changes")
    async def changes(
        cursor: Annotated[str | None, Query(max_length=limits.CURSOR_CHARS, description="next_cursor of the "
                                            "previous call; omit to start from the beginning")] = None,
        limit: Annotated[int, Query(ge=1, le=limits.CHANGES.most)] = limits.CHANGES.default,
    ) -> Response:
        """Events in the order they were written. Apply ``article_added`` (data.canonical) and ``canonical_status``
        (data.canonical) to a set of article ids to mirror the canonical set exactly."""
        return json_body(await reads.changes_page(cursor, limit))


def _run_routes(app: FastAPI, store: Store, deps: list[Any]) -> None:
    @app.get("/runs", response_model=RunPage, dependencies=deps, responses=error_responses(401, 422),
             summary="Ingest runs, newest first")
    def runs(
        cursor: Annotated[str | None, Query(max_length=limits.CURSOR_CHARS)] = None,
        limit: Annotated[int, Query(ge=1, le=limits.RUNS.most)] = limits.RUNS.default,
    ) -> dict[str, Any]:
        before = decode_cursor(cursor, "r") if cursor else None
        items, last = queries.list_runs(store, before=before, limit=limit)
        return {"items": items, "next_cursor": encode_cursor("r", last) if last is not None else None}

    @app.get("/runs/{run_id}", response_model=RunDetail, dependencies=deps, responses=error_responses(401, 404, 422),
             summary="One run with its errors and their messages")
    def run(run_id: Id) -> dict[str, Any]:
        found = queries.get_run(store, run_id, max_errors=limits.RUN_ERRORS)
        if found is None:
            raise not_found("run", run_id)
        return found

    @app.get("/sources", response_model=list[SourceHealth], dependencies=deps, responses=error_responses(401),
             summary="Per-source health: last run, pages, new articles, errors")
    def sources() -> list[dict[str, Any]]:
        return queries.source_health(store)


def _ops_routes(app: FastAPI, store: Store, settings: Settings, deps: list[Any], metrics: Any,
                status_probe: Callable[[], dict[str, Any]] | None) -> None:
    @app.get("/status", dependencies=deps, responses=error_responses(401),
             summary="What `reprint status --json` prints: queues, workers, runs, today's numbers")
    def status() -> dict[str, Any]:
        if status_probe is not None:
            return status_probe()
        from pipeline.serve.status import collect_status

        return collect_status(store, settings, probe_default=False)

    @app.get("/metrics", dependencies=deps, include_in_schema=False)
    def metrics_endpoint() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/healthz", summary="Liveness and store reachability")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "latest_event": encode_cursor("e", queries.latest_event_id(store))}


def _admin_access(settings: Settings) -> Callable[[HTTPAuthorizationCredentials | None], None]:
    def admin_access(credentials: AdminCredentials) -> None:
        if not settings.admin_token:
            raise ProblemError(403, "admin-disabled", "Forbidden",
                               "admin endpoints are disabled: set REPRINT_ADMIN_TOKEN to enable them")
        _check_token(settings.admin_token, credentials, "reprint-admin")

    return admin_access


def _operator(work: Callable[[], Any]) -> Any:
    """Run a review or takedown: an unknown URL or review is a 404, a request that cannot be done a 422."""
    try:
        return work()
    except LookupError as err:
        raise ProblemError(404, "not-found", "Not found", str(err).strip("'\"")) from err
    except ValueError as err:
        raise ProblemError(422, "invalid-review", "Invalid request", str(err)) from err


def _review_routes(app: FastAPI, store: Store, settings: Settings) -> None:
    """The living-article admin endpoints: operator reviews and takedowns (issue 12). They need the admin token,
    and no broker: the work is the library's (``pipeline.ingest.reviews``, ``pipeline.ingest.living``)."""
    deps = [Depends(_admin_access(settings))]
    errors = error_responses(400, 401, 403, 404, 422)
    who_default = "admin (api)"

    @app.get("/admin/reviews", response_model=list[ReviewModel], dependencies=deps,
             responses=error_responses(401, 403, 422), summary="Operator reviews, oldest first (undone included)")
    def list_reviews(url: Annotated[str | None, Query(min_length=1, max_length=limits.URL_QUERY_CHARS,
                                                      description="only the reviews naming this page")] = None,
                     ) -> list[dict[str, Any]]:
        from pipeline.ingest import reviews

        return reviews.list_reviews(store, url=url)

    @app.post("/admin/reviews", response_model=ReviewModel, status_code=201, dependencies=deps, responses=errors,
              summary="Apply a review: canonical, separate, merge or flag (it outranks the algorithm until undone)")
    def apply_review(body: ReviewRequest) -> dict[str, Any]:
        from pipeline.ingest import reviews

        urls = list(body.urls) if isinstance(body, MergeReview) else [body.url]
        flag, on = (body.flag, body.on) if isinstance(body, FlagReview) else (None, None)
        return _operator(lambda: reviews.apply(store, body.kind, urls, flag=flag, on=on, who=body.who or who_default,
                                               note=body.note, settings=settings))

    @app.post("/admin/reviews/{review_id}/undo", response_model=ReviewModel, dependencies=deps, responses=errors,
              summary="Undo a review")
    def undo_review(review_id: Id, body: UndoRequest | None = None) -> dict[str, Any]:
        from pipeline.ingest import reviews

        who = (body.who if body else None) or who_default
        return _operator(lambda: reviews.undo(store, review_id, who=who, settings=settings))

    @app.post("/admin/forget", response_model=ForgetResult, dependencies=deps, responses=errors,
              summary="Take a page down: its HTML, text and signature go; a tombstone keeps it out")
    def forget(body: ForgetRequest) -> dict[str, Any]:
        from pipeline.ingest import living

        return _operator(lambda: living.forget(store, body.url, reason=body.reason, who=body.who or who_default,
                                               settings=settings))

    @app.get("/admin/tombstones", response_model=list[Tombstone], dependencies=deps,
             responses=error_responses(401, 403), summary="Pages taken down")
    def tombstones() -> list[dict[str, Any]]:
        return store.tombstones()


def _admin_routes(app: FastAPI, settings: Settings, admin: AdminBackend | None, unavailable: str | None) -> None:
    admin_access = _admin_access(settings)

    def need_admin() -> AdminBackend:
        if admin is None:
            raise ProblemError(503, "no-broker", "Unavailable", unavailable or "no admin backend")
        return admin

    deps = [Depends(admin_access)]
    errors = error_responses(401, 403, 422, 503)
    body_errors = error_responses(400, 401, 403, 422, 503)  # 400: a body that is not JSON at all

    @app.post("/admin/sources/rerun", response_model=RerunAccepted, status_code=202, dependencies=deps,
              responses=body_errors, summary="Re-run one source now (distributed deployment)")
    def rerun(body: RerunRequest) -> dict[str, Any]:
        backend = need_admin()
        return {"source": body.source, "task_id": str(backend.rerun_source(body.source))}

    @app.get("/admin/dead-letters", response_model=list[DeadLetter], dependencies=deps,
             responses=errors, summary="Tasks that were dead-lettered after repeated failures")
    def dead_letters(
        limit: Annotated[int, Query(ge=1, le=limits.DEAD_LETTERS.most)] = limits.DEAD_LETTERS.default,
    ) -> list[dict[str, Any]]:
        return need_admin().dead_letters(limit)

    @app.post("/admin/dead-letters/replay", response_model=ReplayResult, dependencies=deps,
              responses=body_errors, summary="Re-enqueue dead letters (all, or the given ids)")
    def replay(body: ReplayRequest) -> dict[str, Any]:
        return {"replayed": int(need_admin().replay(body.ids))}


def create_app(store: Store, settings: Settings, *, admin: AdminBackend | None = None,
               admin_unavailable: str | None = None,
               status_probe: Callable[[], dict[str, Any]] | None = None,
               reviews: ReviewBackend | None = None, reviews_unavailable: str | None = None) -> FastAPI:
    """The API over ``store``. ``admin`` defaults to the workers' backend when a broker is configured; the web UI's
    ``reviews`` to the library's review functions (``reviews_unavailable``: a reason to show instead)."""
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
    install_problem_handlers(app)
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(_Timing, observe=metrics.observe_request)

    def read_access(credentials: ReadCredentials) -> None:
        _check_token(settings.api_token, credentials, "reprint")

    # Reads declare the bearer scheme only when a read token is set, so the schema says what the server does.
    deps = [Depends(read_access)] if settings.api_token else []
    reads = _Reads(store)
    _article_routes(app, reads, deps)
    _feed_routes(app, reads, deps)
    _run_routes(app, store, deps)
    _ops_routes(app, store, settings, deps, metrics, status_probe)
    _admin_routes(app, settings, admin, admin_unavailable)
    _review_routes(app, store, settings)
    install_fast_routes(app, token=settings.api_token, article_page=reads.article_page,
                        changes_page=reads.changes_page)
    if reads.sqlite:
        queries.ensure_read_indexes(store)
    mount_ui(app, store, settings, status_probe=status_probe, reviews=reviews, reviews_unavailable=reviews_unavailable)
    return app


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
