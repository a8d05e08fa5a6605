"""Small news pages: one story (an original and a republished copy of it) and an unrelated one, as HTML."""

from __future__ import annotations

import html

ORIGINAL_PARAGRAPHS = [
    "The harbour board in Westmere approved a plan on Thursday to rebuild the old stone pier, which has "
    "been closed to the public since a storm tore away part of its seaward end two winters ago. The "
    "work will cost about four million and is due to start in the spring.",
    "Board chair Agnes Whitlow said the pier was more than a landing stage for the town. \"Generations "
    "of children learned to fish from the end of that pier, and the lifeboat crew trained there every "
    "Sunday,\" she said. The board looked at demolishing it but decided the cost of a new structure "
    "would be almost the same.",
    "Engineers will replace the damaged section with precast concrete blocks faced with the original "
    "granite, which divers recovered from the harbour floor last summer. The town's heritage society "
    "had campaigned for the stones to be reused, and collected more than two thousand signatures.",
    "Fishermen who moor their boats in the inner harbour welcomed the decision but asked the board to "
    "keep the slipway open during the works. The board said it would publish a schedule of closures "
    "before construction begins, and that the pier should reopen in time for the summer regatta.",
]

UNRELATED_PARAGRAPHS = [
    "A family of otters has been seen in the canal basin in the centre of Ashford for the first time in "
    "living memory, delighting commuters and puzzling the canal trust, which had not expected them to "
    "return for years.",
    "Wildlife volunteers counted four animals, two adults and two cubs, feeding near the lock gates at "
    "dawn on three mornings this week. The trust asked visitors to keep dogs on leads along the towpath "
    "and not to feed the animals, and said it would install cameras to follow the family over winter.",
    "Ecologists said cleaner water upstream, after years of work on sewage overflows, had brought fish "
    "back to the canal, and the otters had followed them. Schools in the town have started a project "
    "to name the cubs.",
]


def news_page(
    title: str,
    paragraphs: list[str],
    *,
    site: str,
    byline: str | None = None,
    extra: str = "",
    charset: str | None = "utf-8",
) -> str:
    """A plausible news page with navigation and footer boilerplate around the article."""
    body = "\n".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)
    meta_charset = f'<meta charset="{charset}">' if charset else ""
    author = f'<p class="byline">By {html.escape(byline)}</p>' if byline else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head>{meta_charset}<title>{html.escape(title)} | {html.escape(site)}</title>
<meta property="og:site_name" content="{html.escape(site)}"></head>
<body><header><a href="/">{html.escape(site)}</a>
<nav><a href="/news">News</a> <a href="/sport">Sport</a></nav></header>
<main><article><h1>{html.escape(title)}</h1>{author}
<time datetime="2025-06-12">12 June 2025</time>
{body}
{extra}
</article></main>
<footer><p>&copy; 2025 {html.escape(site)}</p></footer></body></html>
"""


def original_page() -> bytes:
    return news_page("Westmere harbour board approves rebuild of the old stone pier", ORIGINAL_PARAGRAPHS,
                     site="Westmere Herald", byline="Rosa Lindgren").encode()


def republished_page(original_url: str) -> bytes:
    credit = (f'<p>This article was originally published by <a href="{html.escape(original_url)}">'
              "Westmere Herald</a>.</p>")
    return news_page("Westmere harbour board approves rebuild of the old stone pier", ORIGINAL_PARAGRAPHS,
                     site="Coast Wire", byline="Rosa Lindgren", extra=credit).encode()


def unrelated_page() -> bytes:
    return news_page("Otters return to Ashford canal basin", UNRELATED_PARAGRAPHS, site="Ashford Echo",
                     byline="Tom Price").encode()
