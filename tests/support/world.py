"""The API tests' world: two stories and an unrelated article as whole news pages, with scraped, spun,
republished and partial copies, and the stages in which they arrive (a scraped copy before its original, two
halves of a story before the whole).

``write_pages`` writes the pages as HTML files; ``ingest_files`` ingests files one run each, in order.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from pipeline.ingest.runner import run_ingest
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.pages import unrelated_page

LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")

PIER = [
    "The harbour board in Westmere voted on Thursday to rebuild the old stone pier, which has been closed to "
    "the public since a storm tore away part of its seaward end two winters ago. The work will cost about four "
    "million and will be paid from the [coastal renewal fund](https://westmereherald.example/tags/renewal) "
    "that the county created last year.",
    "Board chair Agnes Whitlow said the pier was more than a landing stage for the town. \"Generations of "
    "children learned to fish from the end of that pier, and the lifeboat crew trained there every Sunday,\" "
    "she said. The board looked at demolishing it but decided that a new structure would cost almost the same.",
    "Engineers will replace the damaged section with precast concrete blocks faced with the original granite, "
    "which divers recovered from the harbour floor last summer. The town's "
    "[heritage society](https://westmereherald.example/2024/heritage-society) had campaigned for the stones to "
    "be reused and collected more than two thousand signatures.",
    "Fishermen who moor their boats in the inner harbour welcomed the decision but asked the board to keep the "
    "slipway open during the works. The board said it would publish a "
    "[schedule of closures](https://westmereherald.example/docs/pier-closures) before construction begins, and "
    "that the pier should reopen in time for the summer regatta.",
    "Some residents questioned the cost at a crowded public meeting in the town hall, arguing that the money "
    "would be better spent on the sea wall along the promenade, which flooded twice last winter. The board "
    "replied that the two projects were funded separately and that the sea wall survey would report in "
    "[early spring](https://westmereherald.example/2025/sea-wall-survey).",
    "The pier was built in 1868 by the same merchants who paid for the harbour lighthouse, and for most of the "
    "last century it carried a narrow railway that brought coal from the colliery to waiting ships. The rails "
    "were lifted in the 1970s, but the iron mooring rings along its edge are still in place.",
]

LIBRARY_FIRST = [
    "The county council in Ashford agreed on Monday to keep all eleven of its branch libraries open after a "
    "six month review that had proposed closing four of them, following a campaign by parents, pensioners and "
    "the students who use the reading rooms to revise for their examinations every summer.",
    "Council leader Priya Mandal said the review had underestimated how many people rely on the branches for "
    "printing, for internet access and for the warm rooms the libraries run in winter. She said the council "
    "would instead save money by sharing buildings with the health visitors and the registry office.",
    "Visitors to the smallest branch, in the village of Kingsnorth, had doubled since it began opening on "
    "Saturday mornings, and the library manager there told councillors that the building was often full before "
    "the doors opened, with queues of children waiting for the weekly story hour and the chess club.",
]
LIBRARY_SECOND = [
    "Staff unions welcomed the decision but warned that opening hours had already been cut twice since 2015. "
    "They asked the council to recruit the nine posts left empty when librarians retired, and said volunteers "
    "could not be expected to run the mobile library that visits the farms along the marsh road.",
    "The council will publish new opening hours in the autumn, after a consultation that will ask residents "
    "which evenings they would use. Campaigners said they would keep watching the budget, which is due to be "
    "set in February, and would hold a celebration picnic at the central library on Saturday afternoon.",
    "The oldest branch, in Willesborough, opened in 1912 in a building paid for by a local miller, and still "
    "keeps his collection of maps of the river and the old windmills, which historians visit from across the "
    "country to study and photograph for their books about the marsh and its vanished mills.",
]

SYNONYMS = {
    "voted": "balloted", "rebuild": "reconstruct", "closed": "shut", "public": "populace", "storm": "tempest",
    "part": "portion", "cost": "price", "about": "roughly", "created": "established", "chair": "chairperson",
    "children": "youngsters", "learned": "discovered", "trained": "drilled", "decided": "concluded",
    "replace": "substitute", "damaged": "impaired", "original": "initial", "recovered": "retrieved",
    "campaigned": "crusaded", "collected": "gathered", "welcomed": "embraced", "decision": "determination",
    "asked": "requested", "publish": "issue", "begins": "commences", "reopen": "resume", "questioned": "queried",
    "crowded": "packed", "arguing": "contending", "money": "cash", "better": "superior", "flooded": "inundated",
    "replied": "responded", "funded": "financed", "built": "constructed", "merchants": "traders",
    "carried": "transported", "narrow": "slim", "brought": "carried", "waiting": "expectant", "lifted": "raised",
    "place": "position", "said": "stated", "town": "township", "board": "panel", "pier": "jetty",
}
SPIN = re.compile(r"\b(" + "|".join(sorted(SYNONYMS, key=len, reverse=True)) + r")\b")


def spin(text: str) -> str:
    """A word spinner: synonyms swapped throughout (link text included), punctuation kept."""
    return SPIN.sub(lambda m: SYNONYMS[m.group(0)], text)


def scrape(text: str) -> str:
    """A careless scraper: every in-body link's text is gone, the words around it stay."""
    return LINK.sub("", text)


def to_html(text: str) -> str:
    out, last = [], 0
    for m in LINK.finditer(text):
        out.append(html.escape(text[last:m.start()], quote=False))
        out.append(f'<a href="{html.escape(m.group(2))}">{html.escape(m.group(1), quote=False)}</a>')
        last = m.end()
    out.append(html.escape(text[last:], quote=False))
    return "".join(out)


def page(title: str, paragraphs: list[str], *, site: str, host: str, date: str = "2025-06-12",
         byline: str | None = None, extra: str = "") -> bytes:
    """A whole news page with navigation and footer boilerplate around the article."""
    body = "\n".join(f"<p>{to_html(p)}</p>" for p in paragraphs)
    author = f'<p class="byline">By {html.escape(byline)}</p>' if byline else ""
    author_meta = f'<meta name="author" content="{html.escape(byline)}">' if byline else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} | {html.escape(site)}</title>
<meta property="og:site_name" content="{html.escape(site)}">{author_meta}
<meta property="article:published_time" content="{date}T08:00:00Z"></head>
<body><header><a href="https://{host}/">{html.escape(site)}</a>
<nav><a href="https://{host}/news">News</a> <a href="https://{host}/sport">Sport</a></nav></header>
<main><article><h1>{html.escape(title)}</h1>{author}
<time datetime="{date}">{date}</time>
{body}
{extra}
</article></main>
<footer><p>&copy; 2025 {html.escape(site)}</p></footer></body></html>
""".encode()


PIER_TITLE = "Westmere harbour board votes to rebuild the old stone pier"
LIBRARY_TITLE = "Ashford keeps all eleven branch libraries open after review"


def write_pages(root: Path) -> dict[str, Path]:
    """The world's HTML files, by name."""
    files = {
        "pier_original": page(PIER_TITLE, PIER, site="Westmere Herald", host="westmereherald.example",
                              byline="Rosa Lindgren", date="2025-06-12"),
        "pier_scraped": page(PIER_TITLE, [scrape(p) for p in PIER], site="News Harvest", host="harvest.example",
                             date="2025-06-13"),
        "pier_spun": page(spin(PIER_TITLE), [spin(p) for p in PIER], site="Fresh Takes", host="freshtakes.example",
                          byline="Rosa Lindgren", date="2025-06-14"),
        "pier_republished": page(PIER_TITLE, PIER, site="Coast Wire", host="coastwire.example",
                                 byline="Rosa Lindgren", date="2025-06-15",
                                 extra='<p>This article was originally published by <a href="https://'
                                       'westmereherald.example/news/pier">Westmere Herald</a>.</p>'),
        # two overlapping parts (paragraphs 1-4 and 3-6): neither covers the other enough to be related, but
        # they share enough to sit in one cluster once the whole story links them
        "library_first": page(LIBRARY_TITLE, (LIBRARY_FIRST + LIBRARY_SECOND)[:4], site="Morning Briefs",
                              host="briefs.example", date="2025-05-02"),
        "library_second": page("Ashford libraries: unions and campaigners react", (LIBRARY_FIRST + LIBRARY_SECOND)[2:],
                               site="Evening Digest", host="digest.example", date="2025-05-02"),
        "library_whole": page(LIBRARY_TITLE, LIBRARY_FIRST + LIBRARY_SECOND, site="Ashford Echo",
                              host="ashfordecho.example", byline="Tom Price", date="2025-05-01"),
        "otters": unrelated_page(),
    }
    paths = {}
    for name, body in files.items():
        path = root / f"{name}.html"
        path.write_bytes(body)
        paths[name] = path
    return paths


#: The stages the world is built in; the follower polls after each.
STAGES: list[tuple[str, list[str]]] = [
    ("scraped first", ["pier_scraped"]),
    ("original arrives", ["pier_original"]),
    ("two halves", ["library_first", "library_second", "otters"]),
    ("whole links them", ["library_whole"]),
    ("more copies", ["pier_republished", "pier_spun"]),
]


def ingest_files(store: Store, settings: Settings, paths: list[Path]) -> None:
    """Ingest ``paths`` one run per file, in the given order; every run must succeed."""
    for path in paths:  # one file per run, in the given order: arrival order is what the stages are about
        summary = run_ingest([str(path)], store, settings, progress=False)
        assert summary.ok, summary.notes
