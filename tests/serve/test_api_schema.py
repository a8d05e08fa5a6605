"""Schema fuzzing: schemathesis generates requests from ``/openapi.json`` against a real uvicorn.

No response may be a 500, and every response must match the schema (status codes, content types, bodies),
errors included (problem+json). Examples are bounded so the run stays around half a minute.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.errors import Unsatisfiable

from pipeline.serve.api import create_app, serve_in_thread
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.admin import FakeAdmin
from tests.support.world import STAGES, ingest_files, write_pages

MAX_EXAMPLES = int(os.environ.get("REPRINT_FUZZ_EXAMPLES", "30"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{tmp / 'fuzz.db'}"
    store = Store(url)
    cfg = Settings(database_url=url, api_token="fuzz-read", admin_token="fuzz-admin")
    paths = write_pages(tmp)
    ingest_files(store, cfg, [paths[n] for _, names in STAGES for n in names])
    try:
        with serve_in_thread(create_app(store, cfg, admin=FakeAdmin())) as base:
            yield base
    finally:
        store.close()


def fuzzer(api: Any, strategy: Any, token: str | None, positive: bool) -> Callable[[], None]:
    """A Hypothesis test over one operation's cases (a factory, so each operation binds its own strategy).

    The valid token is supplied unless the case deliberately breaks the security parameter. Positive cases
    drop generated cursors: a cursor is opaque (any string is schema-valid, few are real), so a 422 for a random
    one is right; cursors have their own tests.
    """
    from hypothesis import given

    @given(case=strategy)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case: schemathesis.Case) -> None:
        if token and not api.is_security_param_negated(case):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        if positive and case.query:
            case.query.pop("cursor", None)
        case.call_and_validate()

    return fuzz


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_api_conforms_to_its_schema(served: str, mode: str) -> None:
    """Every operation, fuzzed: valid requests (positive) and requests that break the schema (negative).

    The schema is loaded from the live server (not the app object) so what is checked is what clients get.
    Hypothesis drives one strategy per operation; failures are collected so one run reports every operation.
    """
    from schemathesis import GenerationMode

    api = schemathesis.openapi.from_url(f"{served}/openapi.json")
    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    failures: list[str] = []
    ran = 0
    for result in api.get_all_operations():
        operation = result.ok()
        token = None if operation.path == "/healthz" else (
            "fuzz-admin" if operation.path.startswith("/admin") else "fuzz-read")
        try:
            fuzzer(api, operation.as_strategy(generation_mode=generation), token, mode == "positive")()
            ran += 1
        except Unsatisfiable:  # nothing to break in an operation without parameters (negative mode)
            ran += 1
        except Exception as err:  # collect and go on: one report for every operation
            failures.append(f"{operation.label}: {type(err).__name__}: {str(err)[:1500]}")
    assert ran + len(failures) >= 10
    assert not failures, "\n\n".join(failures)


def test_openapi_documents_problem_errors(served: str) -> None:
    import httpx

    doc = httpx.get(f"{served}/openapi.json").json()
    assert doc["paths"]["/articles"]["get"]["security"] == [{"HTTPBearer": []}]
    responses = doc["paths"]["/articles/{article_id}"]["get"]["responses"]
    assert set(responses["404"]["content"]) == {"application/problem+json"}
    assert set(responses["422"]["content"]) == {"application/problem+json"}
    assert "Problem" in doc["components"]["schemas"]
    assert "/changes" in doc["paths"] and "/admin/dead-letters/replay" in doc["paths"]


def test_fuzz_fixture_is_not_empty(served: str, tmp_path: Path) -> None:
    import httpx

    auth = {"Authorization": "Bearer fuzz-read"}
    assert httpx.get(f"{served}/articles", headers=auth).json()["items"]
