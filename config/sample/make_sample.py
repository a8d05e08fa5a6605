#!/usr/bin/env python3
"""Generate the sample corpus: made-up local news articles and their copies on made-up sites.

Each original gets four copies, the cases reprint exists to catch:
- ``republished``: the full text with an attribution line linking the original;
- ``scraped``: the text of every in-body link removed ("has been establishing a ."), byline dropped;
- ``spun``: a few dozen words swapped for synonyms throughout;
- ``excerpt``: the first paragraphs only, with a link to the full story.
Two unrelated articles stay singletons. Run ``python config/sample/make_sample.py`` to regenerate
the committed HTML (the output is deterministic).
"""

from __future__ import annotations

import datetime
import html
import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


@dataclass(frozen=True)
class Site:
    host: str
    name: str
    section: str


@dataclass(frozen=True)
class Story:
    slug: str
    site: Site
    title: str
    byline: str
    date: str
    paragraphs: tuple[str, ...]  # in-body links written as [text](href)


LEDGER = Site("valleyledger.example", "The Valley Ledger", "local")
COURIER = Site("coastalcourier.example", "Coastal Courier", "community")
GAZETTE = Site("hillcrestgazette.example", "Hillcrest Gazette", "environment")
DISPATCH = Site("metrodispatch.example", "Metro Dispatch", "transport")
REGIONWIRE = Site("regionwire.example", "RegionWire", "news")
HARVEST = Site("newsharvest.example", "NewsHarvest Daily", "latest")
SPINSITE = Site("freshtakes.example", "Fresh Takes Online", "stories")
BRIEFS = Site("morningbriefs.example", "Morning Briefs", "briefs")

ORIGINALS: tuple[Story, ...] = (
    Story(
        "millbrook-flood-barrier",
        LEDGER,
        "Riverside council approves flood barrier along the Millbrook",
        "Hannah Okafor",
        "2025-03-14",
        (
            "Riverside's town council voted seven to two on Tuesday night to build a removable flood "
            "barrier along the lower Millbrook, ending a debate that has run through three winters of "
            "flooded basements and closed roads. The barrier will stretch for 1.4 kilometres from the "
            "old mill bridge to the sports ground, and the town has been establishing a "
            "[flood resilience fund](https://valleyledger.example/tags/flood-fund) to pay for it.",
            "The project is expected to cost 6.8 million, of which the regional water authority has "
            "promised to cover about half. Councillor Mara Lindqvist, who chaired the working group, "
            "said the vote was the result of \"two years of listening to people who had to move their "
            "furniture upstairs every time the forecast turned grey.\"",
            "Engineers presented three options to the council last autumn. The cheapest, a permanent "
            "earth embankment, was rejected after residents of Weir Street objected that it would cut "
            "the neighbourhood off from the water. The chosen design uses steel posts sunk into the "
            "riverbank and aluminium panels that crews can slot in when the river rises, a method "
            "already used in [several towns on the Severn](https://valleyledger.example/2024/severn-panels).",
            "Opponents on the council argued that the money would be better spent upstream. Councillor "
            "Peter Amsel said that restoring wetlands and planting trees on the hills above the town "
            "would slow the water before it reached Riverside, and would cost less to maintain. The "
            "council agreed to commission a [catchment study](https://valleyledger.example/docs/catchment-brief) "
            "alongside the barrier, with results due next year.",
            "Local businesses welcomed the decision. Sofia Brandt, who runs a bakery on Mill Lane that "
            "has flooded four times since 2019, said her insurance premium had tripled and that she had "
            "considered leaving the town centre altogether. \"This gives us a reason to stay,\" she said.",
            "Construction is scheduled to begin in late summer, once the river is at its lowest, and to "
            "finish before the following winter. During the works, the riverside footpath will close in "
            "sections, and the council has published a "
            "[map of diversions](https://valleyledger.example/maps/millbrook-works) "
            "on its website. Volunteers from the Riverside Flood Group will train with council crews to "
            "install the panels, so that the barrier can go up within four hours of a warning.",
            "The regional water authority said it would monitor the barrier's effect on towns further "
            "downstream, where some residents fear that water held back in Riverside will simply arrive "
            "faster at their doors. A spokesperson said the modelling showed only a small change, but "
            "promised to publish the full results before construction starts.",
        ),
    ),
    Story(
        "harbor-library-reopens",
        COURIER,
        "Port Ellery library reopens after two-year renovation",
        "Daniel Reyes",
        "2025-05-02",
        (
            "The public library in Port Ellery reopened its doors on Saturday after a renovation that "
            "took two years, cost more than planned and, according to the first visitors, was worth the "
            "wait. The building, a former net store on the harbour front, now has a glass reading room "
            "facing the water, a [children's maker space](https://coastalcourier.example/library/maker-space) "
            "and a small local history archive.",
            "Head librarian Ingrid Solberg said more than 900 people came through the doors on the first "
            "day, nearly as many as used to visit in a month. Many came to see the reading room, where "
            "long oak tables look out over the fishing boats. \"People kept telling me they had never "
            "noticed how beautiful the harbour is from here,\" she said.",
            "The renovation was originally budgeted at 2.1 million but rose to 2.9 million after builders "
            "found that the timber frame of the old net store was rotten in places. The town covered the "
            "difference partly from its reserves and partly through a "
            "[community fundraising drive](https://coastalcourier.example/2024/library-appeal) that "
            "collected 310,000 from residents, local businesses and former residents abroad.",
            "The local history archive holds photographs, ship registers and letters donated by fishing "
            "families over the past century. Volunteers spent the months of closure scanning more than "
            "eleven thousand items, which are now available through the "
            "[library's online catalogue](https://coastalcourier.example/library/archive). Archivist "
            "Tomas Berg said the oldest item is a harbour master's log from 1887 that records every boat "
            "that entered port during a single stormy winter.",
            "Opening hours have been extended to eight in the evening on weekdays, a change that "
            "students at the nearby secondary school had asked for in a petition last year. The library "
            "will also lend fishing rods, sewing machines and tools, following a trend that has spread "
            "through libraries in the region.",
            "Not everyone is pleased. Some residents said the renovation should have included more "
            "parking, and a few regretted the loss of the old reading corner with its worn armchairs. "
            "Solberg said the armchairs had been reupholstered and moved to the archive room, where "
            "visitors can still sit in them.",
        ),
    ),
    Story(
        "heritage-apple-orchard",
        GAZETTE,
        "Volunteers rescue heritage apple varieties in Hillcrest community orchard",
        "Priya Natarajan",
        "2025-09-21",
        (
            "A group of volunteers in Hillcrest has spent the past three autumns tracking down apple "
            "trees that most people had forgotten, and this weekend they planted the result: a community "
            "orchard of forty-two heritage varieties on a former allotment site above the railway line. "
            "The project began when retired teacher Alan Whitcombe noticed that an old tree in his "
            "neighbour's garden produced an apple he had never seen in a shop, and asked the "
            "[county fruit group](https://hillcrestgazette.example/groups/county-fruit) to identify it.",
            "The tree turned out to be a Hillcrest Pippin, a variety recorded in a nurseryman's catalogue "
            "from 1902 and believed to be lost. Since then the volunteers have found eleven more local "
            "varieties in gardens, hedgerows and the grounds of an old farmhouse, and have taken "
            "cuttings from each to graft onto new rootstock.",
            "Grafting is slow work. Each cutting has to be joined to a young rootstock in late winter, "
            "and only about two in three take. The group learned the technique at a "
            "[series of workshops](https://hillcrestgazette.example/events/grafting-workshops) run by a "
            "specialist nursery, and now teaches it to newcomers every February in the church hall.",
            "Whitcombe said the point of the orchard is not only to preserve old trees but to give people "
            "a place to meet. \"Half of the volunteers had never met before they came to help,\" he said. "
            "\"Now they argue about which apple makes the best pie.\"",
            "The land was leased to the group by the town for a nominal sum, after the allotment society "
            "moved to a larger site last year. The lease runs for twenty-five years, long enough, the "
            "volunteers say, for the trees to reach full size. The town's parks department provided "
            "fencing and a water connection, and a local brewery donated the first year's mulch.",
            "The orchard will be open to the public from next spring, and the fruit will be free to "
            "pick once the trees begin to bear, in about four years. The group plans to hold an apple "
            "day each October, with tastings and juice pressing, and is keeping a "
            "[register of the varieties](https://hillcrestgazette.example/docs/orchard-register) it has "
            "found so that other towns can ask for cuttings.",
        ),
    ),
    Story(
        "eastvale-night-bus",
        DISPATCH,
        "Eastvale night bus pilot extended after strong ridership",
        "Marcus Feld",
        "2025-11-03",
        (
            "The night bus between Eastvale and the city centre will keep running for at least another "
            "year, the regional transport board decided on Monday, after a six-month pilot carried far "
            "more passengers than expected. The N7 service runs every forty minutes between midnight and "
            "five in the morning, and was introduced in spring after "
            "[shift workers at the hospital](https://metrodispatch.example/2025/hospital-shift-survey) "
            "complained that they had no way to get home.",
            "Board figures show that the N7 carried an average of 410 passengers a night during the "
            "pilot, against a forecast of 150. Around a third of them were hospital staff, according to "
            "a survey carried out on the buses in September, and many of the rest work in restaurants, "
            "warehouses and the city's cleaning services.",
            "Transport board chair Eleni Vasquez said the figures had surprised even the service's "
            "supporters. \"We designed this for nurses and porters, and we found a whole night-time "
            "economy that had been walking, cycling in the dark or paying for taxis it could not "
            "afford,\" she said. The board will now study "
            "[extending the route](https://metrodispatch.example/docs/n7-extension-options) to the "
            "industrial estate at Northgate.",
            "The extension will cost about 1.2 million a year, most of it paid from the regional transport "
            "levy, with a contribution from the hospital trust. Some board members questioned whether "
            "the money should instead go to improving daytime services in villages where buses run only "
            "twice a day, and the decision passed by a narrow margin.",
            "Passengers interviewed on a recent Friday night said the bus had changed their routines. A "
            "kitchen porter who finishes work at one in the morning said he used to wait two hours for "
            "the first morning train. Two nurses said they now felt safe going home after a late shift.",
            "The board said it would publish monthly ridership figures and review the service again next "
            "autumn, and that drivers' unions had agreed to new rotas covering the night hours. Details "
            "of the timetable are on the [transport board's website](https://metrodispatch.example/timetables/n7).",
        ),
    ),
)

UNRELATED: tuple[Story, ...] = (
    Story(
        "chess-club-championship",
        LEDGER,
        "Riverside teenager wins regional chess championship",
        "Hannah Okafor",
        "2025-04-06",
        (
            "Fifteen-year-old Lena Marsh from Riverside won the regional junior chess championship on "
            "Sunday, beating a field of sixty players from across the valley without losing a game. "
            "Marsh, who learned to play at the town's Thursday chess club in the community centre, "
            "drew her final game against the top seed to finish half a point clear.",
            "Her coach, retired engineer Victor Hale, said she had improved faster than any player he "
            "had taught in twenty years. \"She studies endgames the way other people read novels,\" he "
            "said. Marsh will represent the region at the national championship in the summer, and the "
            "club is raising money to pay for her travel and accommodation.",
            "The chess club meets every Thursday from six in the evening and welcomes players of every "
            "level. Membership has doubled in the past two years, and the club now runs a beginners' "
            "session for children on Saturday mornings, taught by Marsh and two other young players.",
        ),
    ),
    Story(
        "ferry-timetable-winter",
        COURIER,
        "Island ferry moves to winter timetable with fewer crossings",
        "Daniel Reyes",
        "2025-10-28",
        (
            "The ferry between Port Ellery and Skerry Island switches to its winter timetable next week, "
            "with four crossings a day instead of seven. The operator said the reduction follows the "
            "usual fall in passenger numbers after the tourist season, and that the first morning and "
            "last evening crossings will be kept so that islanders can commute to work on the mainland.",
            "Islanders have asked for a later crossing on Fridays, and the operator said it would trial "
            "one in December if a relief crew can be found. Freight bookings for the island shop and "
            "the fish farm will continue on the early crossing, and passengers with vehicles are asked "
            "to book at least a day ahead during the winter months.",
            "The summer timetable returns at the start of April. Timetables are posted at the harbour "
            "office and on the noticeboard outside the island shop, and crossings may be cancelled at "
            "short notice in bad weather.",
        ),
    ),
)

# Thesaurus substitutions of the kind an article spinner makes (applied to whole words, case kept).
SYNONYMS = {
    "council": "assembly", "voted": "balloted", "build": "construct", "ending": "concluding",
    "debate": "dispute", "winters": "cold seasons", "flooded": "inundated", "roads": "highways",
    "expected": "anticipated", "cost": "price", "promised": "pledged", "result": "outcome",
    "people": "individuals", "options": "alternatives", "cheapest": "least expensive",
    "rejected": "turned down", "residents": "inhabitants", "argued": "contended", "money": "cash",
    "better": "superior", "restoring": "reviving", "slow": "sluggish", "maintain": "keep up",
    "businesses": "enterprises", "welcomed": "embraced", "decision": "choice", "begin": "commence",
    "finish": "complete", "published": "released", "reopened": "reopened once more",
    "renovation": "refurbishment", "building": "structure", "visitors": "guests", "small": "little",
    "beautiful": "lovely", "rose": "climbed", "found": "discovered", "old": "aged",
    "collected": "gathered", "photographs": "pictures", "months": "many months", "extended": "prolonged",
    "asked": "requested", "library": "athenaeum", "group": "collective", "spent": "invested",
    "forgotten": "neglected", "weekend": "end of the week", "noticed": "observed", "identify": "pinpoint",
    "believed": "thought", "lost": "misplaced", "work": "labour", "learned": "picked up",
    "place": "spot", "meet": "gather", "land": "ground", "long": "lengthy", "fruit": "produce",
    "passengers": "travellers", "carried": "transported", "survey": "poll", "figures": "numbers",
    "surprised": "astonished", "study": "examine", "improving": "enhancing", "changed": "altered",
    "safe": "secure", "review": "assess", "new": "fresh", "home": "house", "night": "evening",
}
SPIN = re.compile(r"\b(" + "|".join(sorted(SYNONYMS, key=len, reverse=True)) + r")\b", re.I)


def _spin_word(match: re.Match[str]) -> str:
    word = match.group(0)
    other = SYNONYMS[word.lower()]
    return other[0].upper() + other[1:] if word[0].isupper() else other


def spin(text: str) -> str:
    """Swap words for synonyms, leaving link markup intact."""
    parts = LINK.split(text)
    out: list[str] = []
    for i in range(0, len(parts), 3):
        out.append(SPIN.sub(_spin_word, parts[i]))
        if i + 2 < len(parts):
            out.append(f"[{SPIN.sub(_spin_word, parts[i + 1])}]({parts[i + 2]})")
    return "".join(out)


def scrape(text: str) -> str:
    """What a careless scraper keeps: the link text is gone, the words around it stay."""
    return LINK.sub("", text)


def to_html(text: str) -> str:
    """Escape a paragraph and turn its [text](href) markup into links."""
    out, last = [], 0
    for match in LINK.finditer(text):
        out.append(html.escape(text[last : match.start()], quote=False))
        out.append(f'<a href="{html.escape(match.group(2))}">{html.escape(match.group(1), quote=False)}</a>')
        last = match.end()
    out.append(html.escape(text[last:], quote=False))
    return "".join(out)


def url_of(story: Story, site: Site) -> str:
    return f"https://{site.host}/{site.section}/{story.date[:4]}/{story.slug}"


def page(story: Story, site: Site, paragraphs: list[str], *, byline: str | None,
         title: str | None = None, canonical: str | None = None, extra: list[str] = (), days_later: int = 0) -> str:
    """A whole news page: navigation and footer boilerplate around the article."""
    url = url_of(story, site)
    date = (datetime.date.fromisoformat(story.date) + datetime.timedelta(days=days_later)).isoformat()
    title = title or story.title
    body = "\n".join(f"      <p>{to_html(p)}</p>" for p in paragraphs)
    extra_html = "\n".join(f'      <p class="note">{x}</p>' for x in extra)
    author_meta = f'\n  <meta name="author" content="{html.escape(byline)}">' if byline else ""
    byline_html = f'\n      <p class="byline">By {html.escape(byline)}</p>' if byline else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{html.escape(title)} | {html.escape(site.name)}</title>
  <link rel="canonical" href="{html.escape(canonical or url)}">
  <meta property="og:site_name" content="{html.escape(site.name)}">
  <meta property="og:url" content="{html.escape(url)}">
  <meta property="og:title" content="{html.escape(title)}">
  <meta property="article:published_time" content="{date}T08:00:00Z">{author_meta}
</head>
<body>
  <header>
    <a class="logo" href="https://{site.host}/">{html.escape(site.name)}</a>
    <nav><a href="https://{site.host}/news">News</a> <a href="https://{site.host}/sport">Sport</a>
      <a href="https://{site.host}/weather">Weather</a> <a href="https://{site.host}/subscribe">Subscribe</a></nav>
  </header>
  <main>
    <article>
      <h1>{html.escape(title)}</h1>{byline_html}
      <time datetime="{date}">{date}</time>
{body}
{extra_html}
    </article>
  </main>
  <footer>
    <p>&copy; 2025 {html.escape(site.name)}. All rights reserved.</p>
    <p><a href="https://{site.host}/privacy">Privacy</a> · <a href="https://{site.host}/contact">Contact</a></p>
  </footer>
</body>
</html>
"""


def variants(story: Story) -> dict[str, str]:
    """The original and its four copies (published a day or two later), keyed by file name."""
    origin = url_of(story, story.site)
    paragraphs = list(story.paragraphs)
    credit = (f'This article was originally published by <a href="{origin}">{html.escape(story.site.name)}</a> '
              "and is republished with permission.")
    return {
        f"{story.slug}--original.html": page(story, story.site, paragraphs, byline=story.byline),
        f"{story.slug}--republished.html": page(story, REGIONWIRE, paragraphs, byline=story.byline,
                                                extra=[credit], days_later=1),
        f"{story.slug}--scraped.html": page(story, HARVEST, [scrape(p) for p in paragraphs], byline=None,
                                            days_later=1),
        f"{story.slug}--spun.html": page(story, SPINSITE, [spin(p) for p in paragraphs], byline=story.byline,
                                         title=spin(story.title), days_later=2),
        f"{story.slug}--excerpt.html": page(
            story, BRIEFS, paragraphs[:2], byline=story.byline, days_later=1,
            extra=[f'Read the full story at <a href="{origin}">{html.escape(story.site.name)}</a>.']),
    }


def main() -> None:
    for old in HERE.glob("*.html"):
        old.unlink()
    files: dict[str, str] = {}
    for story in ORIGINALS:
        files.update(variants(story))
    for story in UNRELATED:
        files[f"{story.slug}--original.html"] = page(story, story.site, list(story.paragraphs),
                                                     byline=story.byline)
    for name, text in sorted(files.items()):
        (HERE / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} pages to {HERE}")


if __name__ == "__main__":
    main()
