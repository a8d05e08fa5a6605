"""The layout's rules, read from the source tree itself (the AST of every module; nothing is imported).

- ``pipeline/`` is the library: no module in it imports celery, kombu or billiard, at module level or
  inside a function (``workers/`` is the only Celery adapter).
- No import cycle between the modules of ``pipeline/`` and ``workers/``. An import counts wherever it
  is written (module level, inside a function, under ``TYPE_CHECKING``), and it points at the most
  specific module it names: ``from pipeline.serve import queries`` is an edge to ``pipeline.serve.queries``,
  ``from pipeline.serve import create_app`` one to the package ``pipeline.serve``.
- Tests mirror the layout: every ``tests/<sub>/`` folder except ``support`` is a package named after a
  subpackage of ``pipeline/`` or after ``workers``, and no test module imports another test module or a
  conftest (shared helpers live in ``tests/support/``, shared fixtures in a conftest).
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = "pipeline"
ADAPTERS = "workers"
CELERY = frozenset({"celery", "kombu", "billiard"})


# --- reading the tree -------------------------------------------------------------------------------------------------
def module_name(path: Path) -> str:
    """``pipeline/serve/api.py`` → ``pipeline.serve.api``; ``pipeline/serve/__init__.py`` → ``pipeline.serve``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(*packages: str) -> dict[str, Path]:
    """Every module of ``packages`` (folders under the repository root), by dotted name."""
    return {module_name(path): path for package in packages for path in sorted((ROOT / package).rglob("*.py"))}


def imports(path: Path) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """Every import in a module, wherever it is written: (line, absolute base module, the names taken from it).

    ``import a.b`` gives ``("a.b", ())``; ``from .x import y, z`` in ``pkg/m.py`` gives ``("pkg.x", ("y", "z"))``.
    ``importlib.import_module("a")`` and ``__import__("a")`` with a literal name count as ``import a``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            yield node.lineno, base, tuple(alias.name for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value, ()


def import_graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """module → the modules of ``known`` it imports (each import resolved to the most specific module it names)."""
    graph: dict[str, set[str]] = {name: set() for name in known}

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    for source, path in known.items():
        for _, base, names in imports(path):
            targets = [f"{base}.{n}" for n in names if f"{base}.{n}" in known] or [base]
            for target in targets:
                resolved = resolve(target)
                if resolved is not None and resolved != source:
                    graph[source].add(resolved)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) for every strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graphs here are small, so recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [shortest_cycle(graph, component) for component in components]


def shortest_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """The shortest cycle through the component's first module (breadth first, inside the component)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not strongly connected")  # cannot happen for a Tarjan component


# --- the rules --------------------------------------------------------------------------------------------------------
def test_the_library_never_imports_celery_kombu_or_billiard() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line}: {base}"
                 for path in modules(LIBRARY).values()
                 for line, base, _ in imports(path)
                 if base.partition(".")[0] in CELERY]
    assert not offenders, "pipeline/ must not import Celery or its libraries:\n" + "\n".join(offenders)


def test_no_import_cycle_between_modules_of_pipeline_and_workers() -> None:
    found = cycles(import_graph(modules(LIBRARY, ADAPTERS)))
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_tests_mirror_the_layout() -> None:
    subpackages = {path.parent.name for path in (ROOT / LIBRARY).glob("*/__init__.py")}
    allowed = subpackages | {ADAPTERS}
    folders = [path for path in (ROOT / "tests").iterdir()
               if path.is_dir() and not path.name.startswith((".", "_")) and path.name != "support"]
    strays = sorted(path.name for path in folders if path.name not in allowed)
    assert not strays, (f"{', '.join(f'tests/{name}/' for name in strays)} mirror nothing: a test folder is named "
                        f"after one of {', '.join(sorted(allowed))}")
    not_packages = sorted(path.name for path in folders if not (path / "__init__.py").is_file())
    assert not not_packages, (f"{', '.join(f'tests/{name}/' for name in not_packages)} need an __init__.py "
                              "(test modules in two folders may share a name)")
    assert (ROOT / "tests" / "support" / "__init__.py").is_file()


def test_no_test_module_imports_another_test_module() -> None:
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for line, base, names in imports(path):
            for name in [base, *(f"{base}.{n}" for n in names)]:
                last = name.rpartition(".")[2]
                if name.startswith("tests.") and (last.startswith("test_") or last == "conftest"):
                    offenders.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert not offenders, "share helpers through tests/support/ or fixtures:\n" + "\n".join(offenders)


# --- what each subpackage offers ----------------------------------------------------------------------------------
#: Each subpackage's ``__all__``, pinned: a name added to or dropped from a public surface is a decision, so it
#: shows in this diff (httpx pins its own the same way).
SURFACES = {
    "sources": [
        "WarcScope", "discover", "find_feed_links", "gunzip_capped", "is_json_feed", "iter_warc", "iter_warc_offsets",
        "parse_feed", "parse_lastmod", "parse_sitemap", "read_html_file", "sniff", "source_kind",
        "warc_checkpoint_key", "warc_plan"
    ],
    "fetch": [
        "AddressPolicy", "Fetcher", "HostGate", "LazyFetcher", "LocalHostGate", "RobotsCache", "RobotsRules",
        "SlotHandle", "agent_token", "media_type", "parse_retry_after", "parse_robots", "readable_type"
    ],
    "extract": [
        "DEFAULT_LIMITS", "ExtractLimits", "IsolatedExtractor", "WorkerUsage", "close_shared", "decode_html", "extract",
        "extract_isolated", "shared_extractor", "shared_usage"
    ],
    "dedup": [
        "CandidateIndex", "DecisionPolicy", "Deduplicator", "KINDS", "LSHIndex", "ReviewSet", "align",
        "decide", "estimate_jaccard", "fingerprint", "fingerprint_tokens", "flipped", "minhash_of",
        "orphaned_punctuation", "partition", "rarity_shift", "spun_part", "verify", "verify_articles"
    ],
    "store": [
        "ArticleRow", "Base", "ClusterRow", "EdgeRow", "ErrorRow", "EventRow", "PageRow", "RunRow", "SignatureRow",
        "SourceRow", "Store", "content_hash", "make_engine", "url_key"
    ],
    "ingest": [
        "allow", "forget", "ingest", "ingest_page", "prune", "run_ingest", "run_reprocess", "update_article"
    ],
    "shared": [
        "RedisHostGate", "RedisLSHIndex", "cluster_lock_for", "local_lock", "pg_advisory_lock", "record_task_latency",
        "redis_lock", "task_histograms", "workers_cluster_lock"
    ],
    "serve": [
        "AdminBackend", "CursorError", "Metrics", "app_from_env", "collect_status", "create_app",
        "decode_cursor", "encode_cursor", "export_jsonl", "export_record", "export_since", "serve", "serve_in_thread"
    ],
    "cli": [
        "app", "main", "run"
    ],
}


@pytest.mark.parametrize("name", sorted(SURFACES))
def test_each_subpackage_says_what_it_offers(name: str) -> None:
    package = importlib.import_module(f"pipeline.{name}")
    assert (package.__doc__ or "").strip(), f"pipeline.{name} has no docstring saying what it offers"
    assert sorted(package.__all__) == SURFACES[name]
    for export in package.__all__:
        assert getattr(package, export) is not None, f"pipeline.{name}.{export} does not resolve"


# --- the checks check -------------------------------------------------------------------------------------------------
def test_import_graph_resolves_relative_imports_and_imports_inside_functions(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader on a small made-up tree: without this, an empty graph would pass the cycle test."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from .a import thing\n")
    (package / "a.py").write_text("thing = 1\n\ndef later():\n    from .sub import b\n    return b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("import importlib\n\ndef f():\n    from ..a import thing\n"
                                          "    importlib.import_module('celery')\n    return thing\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    known = modules("pkg")
    assert set(known) == {"pkg", "pkg.a", "pkg.sub", "pkg.sub.b"}
    graph = import_graph(known)
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.sub.b"}, "pkg.sub": set(), "pkg.sub.b": {"pkg.a"}}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.a"]]
    assert "celery" in {base for _, base, _ in imports(package / "sub" / "b.py")}
