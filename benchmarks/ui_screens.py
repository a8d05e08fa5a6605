#!/usr/bin/env python3
"""Screenshots of every web UI screen at 1280 and 375 px wide, from the sample corpus.

``config/sample`` is ingested into a temporary SQLite database, served by the real app (``create_app``, which
mounts the UI) under uvicorn on 127.0.0.1, and photographed with Debian's Chromium driven by Playwright (see
``tests/support/browser.py``). One PNG per screen and width goes to ``--out`` (default ``docs/screens``), plus
a crop of one cluster diff (the spun copy's, at 1280 px) that the README shows. The list is printed.

    python benchmarks/ui_screens.py [--out docs/screens]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.ingest.runner import run_ingest  # noqa: E402
from pipeline.serve.api import create_app, serve_in_thread  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.store import Store  # noqa: E402
from tests.support.browser import browser_problem, chromium  # noqa: E402

WIDTHS = (1280, 375)
ADMIN_TOKEN = "screens-admin-token"  # a throwaway server on 127.0.0.1 that lives for the run only (sign-in shown)


def sample_ids(store: Store) -> dict[str, int]:
    """Article id by sample file stem (``eastvale-night-bus--spun`` …)."""
    return {row.url.rsplit("/", 1)[-1].removesuffix(".html"): row.id for row in store.export_rows()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screens")
    args = ap.parse_args()
    problem = browser_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="reprint-screens-") as tmp:
        url = f"sqlite:///{tmp}/sample.db"
        settings = Settings(database_url=url, admin_token=ADMIN_TOKEN)
        store = Store(url)
        summary = run_ingest([str(ROOT / "config" / "sample")], store, settings, progress=False)
        if not summary.ok:
            print(f"error: the sample did not ingest cleanly: {summary.notes}", file=sys.stderr)
            return 1
        ids = sample_ids(store)
        cluster = {row.id: row.cluster_id for row in store.export_rows()}
        spun, scraped = ids["eastvale-night-bus--spun"], ids["eastvale-night-bus--scraped"]
        screens = {
            "clusters": "/",
            "cluster-spun": f"/ui/clusters/{cluster[spun]}?member={spun}",
            "cluster-scraped": f"/ui/clusters/{cluster[scraped]}?member={scraped}",
            "operations": "/ui/ops",
            "login": "/ui/login",
            "reviews": "/ui/reviews",
        }
        try:
            with serve_in_thread(create_app(store, settings)) as base:
                for width in WIDTHS:
                    with chromium(viewport={"width": width, "height": 900}, device_scale_factor=1) as ctx:
                        page = ctx.new_page()
                        for name, path in screens.items():
                            page.goto(base + path, wait_until="load")
                            target = args.out / f"{name}-{width}.png"
                            page.screenshot(path=str(target), full_page=True)
                            written.append(target)
                        if width == 1280:
                            page.goto(base + screens["cluster-spun"], wait_until="load")
                            target = args.out / "cluster-diff-1280.png"
                            page.locator("#diff .sbs").screenshot(path=str(target))
                            written.append(target)
        finally:
            store.close()
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
