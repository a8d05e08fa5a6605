"""The shipped sample corpus (what `make run` shows a new user) comes out as it was written: each
original is its cluster's canonical, its scraped and spun copies are flagged, nothing else is."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from pipeline.cli.report import evidence_lines
from tests.support.cli import cli

pytestmark = pytest.mark.usefixtures("reprint_env")

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "sample"
EXPECTED_FLAGS = {"original": [], "republished": [], "excerpt": [], "scraped": ["scraped"], "spun": ["spun"]}


def test_sample_corpus_clusters_canonicals_and_flags(sqlite_url: str) -> None:
    result = cli("ingest", str(SAMPLE), "--db", sqlite_url, "--no-progress")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in cli("export", "--db", sqlite_url).stdout.splitlines()]
    assert len(records) == len(list(SAMPLE.glob("*.html"))) == 22

    stories: dict[str, dict[str, dict]] = defaultdict(dict)
    for record in records:
        story, variant = record["url"].rsplit("/", 1)[1].removesuffix(".html").split("--")
        stories[story][variant] = record
    assert len({r["cluster_id"] for r in records}) == len(stories) == 6
    for story, variants in stories.items():
        assert len({r["cluster_id"] for r in variants.values()}) == 1, story
        assert [v for v, r in variants.items() if r["canonical"]] == ["original"], story
        for variant, record in variants.items():
            assert record["flags"] == EXPECTED_FLAGS[variant], (story, variant, record["evidence"])

    report = cli("clusters", "--db", sqlite_url)
    assert report.exit_code == 0
    assert "4 with copies, 2 singletons" in report.stdout


def test_evidence_lines_put_each_flag_first_and_stay_compact() -> None:
    evidence = {
        "relation": {"to_canonical": "spun", "similarity": 0.912345},
        "spun": {"substitution_rate": 0.1234567, "sample": [["old", "aged"], ["cost", "price"]]},
    }
    lines = evidence_lines(evidence, ["spun"])
    assert lines[0] == "spun: substitution_rate=0.123; sample=[old→aged, cost→price]"
    assert lines[1] == "relation: to_canonical=spun; similarity=0.912"
    assert evidence_lines({}, []) == []
