"""The hot listings' fast path: ``GET /articles`` and ``GET /changes`` served ahead of FastAPI.

They are what pollers and dashboards hammer. FastAPI's per-request work (a dependency graph, pydantic validation
of every query parameter) costs more than their indexed query, so a plain route ahead of FastAPI's serves the
common case: known parameters, each given once, in the simple forms parsed below, and the read token when one is
set. Anything else (a typo, a bad value, a missing or wrong token) is handed to FastAPI's route, whose validation
and problem documents are then exactly what they always were. The OpenAPI schema is FastAPI's route's,
unchanged; the fast path sends the same body that route does, and accepts exactly what it accepts: both read
their bounds from ``limits.py``.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI
from fastapi.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound

from pipeline.records import ArticleFilter
from pipeline.serve import limits
from pipeline.serve.queries import KNOWN_FLAGS

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


def _limit(query: dict[str, str], size: limits.PageSize) -> int | None:
    value = query.get("limit")
    if value is None:
        return size.default
    if not _LIMIT.fullmatch(value) or int(value) > size.most:
        return None
    return int(value)


def _too_long(value: str | None, most: int) -> bool:
    return value is not None and len(value) > most


def _article_query(query: dict[str, str]) -> tuple[ArticleFilter, str | None, int] | None:
    """(filter, cursor, limit) for parameters the route's declaration accepts as they are, else None."""
    limit = _limit(query, limits.ARTICLES)
    canonical = query.get("canonical", "true")
    cursor, site, q, flag = query.get("cursor"), query.get("site"), query.get("q"), query.get("flag")
    if (limit is None or canonical not in _CANONICAL or _too_long(cursor, limits.CURSOR_CHARS)
            or _too_long(site, limits.SITE_CHARS) or _too_long(q, limits.QUERY_CHARS)
            or (flag is not None and flag not in KNOWN_FLAGS)):
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


def install_fast_routes(app: FastAPI, *, token: str | None,
                        article_page: Callable[[ArticleFilter, str | None, int], Awaitable[dict[str, Any]]],
                        changes_page: Callable[[str | None, int], Awaitable[dict[str, Any]]]) -> None:
    """Put the fast routes of ``/articles`` and ``/changes`` ahead of FastAPI's, serving the same pages."""

    async def fast_articles(scope: dict[str, Any], send: Any) -> bool:
        query = _simple_query(scope, _ARTICLE_PARAMS)
        parsed = _article_query(query) if query is not None else None
        if parsed is None or (token is not None and not _bearer_is(scope, token)):
            return False
        await _send_json(send, orjson.dumps(await article_page(*parsed)))
        return True

    async def fast_changes(scope: dict[str, Any], send: Any) -> bool:
        query = _simple_query(scope, _CHANGES_PARAMS)
        limit = _limit(query, limits.CHANGES) if query is not None else None
        cursor = query.get("cursor") if query is not None else None
        if limit is None or _too_long(cursor, limits.CURSOR_CHARS) or (
                token is not None and not _bearer_is(scope, token)):
            return False
        await _send_json(send, orjson.dumps(await changes_page(cursor, limit)))
        return True

    for route, fast in ((_route(app, "/articles"), fast_articles), (_route(app, "/changes"), fast_changes)):
        app.router.routes.insert(0, _FastRoute(route, fast))


def _route(app: FastAPI, path: str) -> Any:
    return next(r for r in app.router.routes if getattr(r, "path", None) == path and "GET" in getattr(r, "methods", ()))
