"""Every error the read API sends is an RFC 9457 ``application/problem+json`` document, so clients parse one
shape whatever failed; the OpenAPI document says so too (``problem_openapi``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.serve.cursors import CursorError

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
PROBLEM_BASE = "https://reprint.dev/problems/"


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


TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 406: "Not acceptable", 415: "Unsupported media type", 422: "Invalid parameters",
           500: "Internal error", 503: "Unavailable"}


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(request, exc.status, exc.kind, exc.title, exc.detail, headers=exc.headers)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        title = TITLES.get(exc.status_code, "Error")
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


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": Problem, "description": TITLES.get(c, "Error")} for c in codes}



def problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
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
