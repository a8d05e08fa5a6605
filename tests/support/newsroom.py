"""A small made-up newsroom for the web UI tests: one story with a spun and a scraped copy, a story whose text
holds markup, and an unrelated article; written as HTML files and ingested with the library, in stages.

The scraped copy arrives first, so the canonical moves when the original arrives (the cluster's timeline has a
``canonical_changed``). ``[text](href)`` in a paragraph is an in-body link (``tests.support.world``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.ingest.runner import run_ingest
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.world import page, scrape

TRAM_TITLE = "Kelsford council backs a tram line to the hospital and the university"
TRAM = [
    "Kelsford's city council voted on Tuesday to build a tram line linking the railway station with the general "
    "hospital and the university campus, after a decade of studies and two failed bids for national money. The "
    "line will cost about three hundred million and will be paid largely from the "
    "[regional transport grant](https://kelsfordpost.example/tags/transport-grant) awarded in March.",
    "Council leader Miriam Okafor said the route would change how people in the east of the city get to work. "
    "\"Nurses, students and cleaners have waited long enough for a reliable service,\" she said. The council looked "
    "at a bus lane instead but decided that trams would carry more passengers for the same running cost.",
    "Engineers will lay the track along the old goods railway, which closed in 1982, and build seven stops, "
    "including one beside the [children's hospital](https://kelsfordpost.example/2025/childrens-hospital) that "
    "opened last year. The city's cycling groups asked for a path beside the track and collected four thousand "
    "signatures in support.",
    "Shopkeepers on Market Street welcomed the decision but asked the council to keep deliveries possible during "
    "the works. The council said it would publish a [timetable of road closures](https://kelsfordpost.example/"
    "docs/tram-closures) before construction begins, and that the first trams should run within four years.",
    "Some residents questioned the cost at a packed public meeting in the guildhall, arguing that the money would "
    "be better spent on repairing roads across the city. The council replied that the grant could only be used "
    "for public transport and that a separate survey of the roads would report in "
    "[early autumn](https://kelsfordpost.example/2025/road-survey).",
]
SYNONYMS = {
    "voted": "balloted", "build": "construct", "linking": "conjoining", "failed": "abortive", "money": "lucre",
    "cost": "outlay", "about": "roughly", "paid": "remunerated", "change": "transmute", "work": "toil",
    "waited": "tarried", "reliable": "dependable", "decided": "resolved", "carry": "convey", "lay": "emplace",
    "closed": "shuttered", "opened": "inaugurated", "asked": "entreated", "collected": "amassed",
    "welcomed": "embraced", "keep": "retain", "publish": "promulgate", "begins": "commences",
    "questioned": "interrogated", "packed": "crammed", "arguing": "contending", "better": "superior",
    "repairing": "mending", "replied": "retorted", "separate": "discrete", "council": "conclave",
}

#: Stored text that looks like markup: it must show as text, never run.
SCRIPT = "<script>window.__reprintXss = 1; alert('xss')</script>"
IMG = '<img src="x" onerror="window.__reprintXss = 2">'
XSS_TITLE = f"Harbour festival {SCRIPT} returns after three years"
XSS = [
    f"The harbour festival returns to Kelsford this summer after three years away, its organisers said on "
    f"Monday, with a programme of boat races, brass bands and a night market along the quay. A poster reading "
    f"{SCRIPT} was the first thing visitors saw on the festival's old website.",
    f"Organisers said the festival had been paused while the quay walls were repaired, and that the night market "
    f"would be larger than before, with forty stalls from local growers and bakers. {IMG} Tickets for the boat "
    f"races go on sale in May, and the brass band contest will be held on the last Saturday of June.",
]
OTTERS = [
    "Otters have been seen in the Kelsford canal for the first time in living memory, the canal trust said on "
    "Friday, after volunteers filmed two adults and a cub feeding near the lock gates at dawn on three mornings.",
    "Ecologists said cleaner water upstream had brought fish back to the canal and the otters had followed them. "
    "The trust asked walkers to keep dogs on leads along the towpath and not to feed the animals.",
]


_SPIN = re.compile(r"\b(" + "|".join(sorted(SYNONYMS, key=len, reverse=True)) + r")\b")


def spin(text: str) -> str:
    """A thesaurus spinner: rarer synonyms swapped in throughout, punctuation kept."""
    return _SPIN.sub(lambda m: SYNONYMS[m.group(0)], text)


def pages() -> dict[str, bytes]:
    credit = ('<p>This article was first published by <a href="https://kelsfordpost.example/news/festival">'
              "Kelsford Post</a>.</p>")
    return {
        "tram_scraped": page(TRAM_TITLE, [scrape(p) for p in TRAM], site="Newsgrab", host="newsgrab.example",
                                  date="2025-06-11"),
        "tram_original": page(TRAM_TITLE, TRAM, site="Kelsford Post", host="kelsfordpost.example",
                                   byline="Ada Brennan", date="2025-06-10"),
        "tram_spun": page(spin(TRAM_TITLE), [spin(p) for p in TRAM], site="Fresh Angle",
                               host="freshangle.example", byline="Ada Brennan", date="2025-06-12"),
        "xss_original": page(XSS_TITLE, XSS, site="Kelsford Post", host="kelsfordpost.example",
                                  byline="Tom Reyes", date="2025-05-02"),
        "xss_copy": page(XSS_TITLE, XSS, site="Quay Wire", host="quaywire.example", byline="Tom Reyes",
                              date="2025-05-03", extra=credit),
        "otters": page("Otters return to the Kelsford canal", OTTERS, site="Canal News", host="canal.example",
                            date="2025-04-01"),
    }


#: The order the pages arrive in, one run each (the scraped copy first: the canonical must move).
ARRIVALS = ["tram_scraped", "tram_original", "tram_spun", "xss_original", "xss_copy"]


@dataclass
class Newsroom:
    root: Path
    store: Store
    settings: Settings
    paths: dict[str, Path] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    clusters: dict[str, int] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return self.paths[name].resolve().as_uri()

    def ingest(self, *names: str) -> None:
        """Ingest these pages, one run each, and refresh the ids."""
        for name in names:
            summary = run_ingest([str(self.paths[name])], self.store, self.settings, progress=False)
            assert summary.ok, summary.notes
        by_url = {row.url: (row.id, row.cluster_id) for row in self.store.export_rows()}
        for name in self.paths:
            found = by_url.get(self.url(name))
            if found:
                self.ids[name], self.clusters[name] = found


def build_newsroom(root: Path, store: Store, settings: Settings, arrivals: list[str] = ARRIVALS) -> Newsroom:
    """Write every page under ``root`` and ingest ``arrivals`` in order."""
    room = Newsroom(root, store, settings)
    for name, body in pages().items():
        path = root / f"{name}.html"
        path.write_bytes(body)
        room.paths[name] = path
    room.ingest(*arrivals)
    return room
