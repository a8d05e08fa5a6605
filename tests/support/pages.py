"""Made-up news pages for tests: a whole page around an article, and what spinners and scrapers do to its text.

In a paragraph, ``[text](href)`` is an in-body link.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


def spinner(synonyms: dict[str, str]) -> Callable[[str], str]:
    """A word spinner: each word of ``synonyms`` swapped for its synonym throughout (link text included),
    punctuation kept."""
    pattern = re.compile(r"\b(" + "|".join(sorted(synonyms, key=len, reverse=True)) + r")\b")
    return lambda text: pattern.sub(lambda m: synonyms[m.group(0)], text)


def scrape(text: str) -> str:
    """A careless scraper: every in-body link's text is gone, the words around it stay."""
    return LINK.sub("", text)


def to_html(text: str) -> str:
    """A paragraph's text as HTML: escaped, its ``[text](href)`` links as ``<a>`` elements."""
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
