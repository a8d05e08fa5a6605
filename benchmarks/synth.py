"""Synthetic corpora for the scale benchmarks: unrelated news-like articles, and one wire story carried by N sites.

Text is drawn from the 20,000 most frequent English words with their real (Zipf) frequencies, so two unrelated
articles share vocabulary the way real ones do (every article has "the", "said", "year"...), but rarely a word
3-gram beyond the commonest. A wire story's copies are what syndication makes of it:

- ``verbatim``: the same body on another site (other navigation, footer, related links around it);
- ``trimmed``: the last paragraphs cut, as sites do to fit a slot;
- ``attributed``: verbatim plus a credit line linking the original;
- ``spun``: a few dozen words swapped for rarer synonyms, as a thesaurus spinner does.

Everything is seeded: the same arguments give the same bytes.
"""

from __future__ import annotations

import html
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

#: Common word → a rarer synonym, what a thesaurus spinner trades (the spun copies use these).
SYNONYMS = {
    "said": "stated", "people": "folks", "city": "municipality", "new": "novel", "year": "twelvemonth",
    "government": "administration", "help": "assist", "big": "sizeable", "show": "exhibit", "start": "commence",
    "end": "conclude", "buy": "procure", "use": "utilise", "need": "require", "plan": "scheme", "home": "abode",
    "money": "funds", "work": "labour", "week": "sennight", "many": "numerous", "small": "diminutive",
    "house": "dwelling", "school": "academy", "country": "nation", "children": "youngsters", "water": "h2o",
    "police": "constabulary", "car": "automobile", "road": "thoroughfare", "court": "tribunal", "family": "kin",
    "problem": "predicament", "report": "dispatch", "public": "populace", "building": "edifice", "area": "locale",
    "million": "megabucks", "project": "undertaking", "team": "squad", "group": "assemblage", "price": "tariff",
    "market": "bazaar", "officials": "functionaries", "leader": "chieftain", "company": "enterprise",
    "business": "commerce", "rise": "ascent", "fall": "descent", "change": "alteration", "power": "puissance",
}


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[list[str], list[float]]:
    """The words and their cumulative frequencies (``random.choices`` would re-add 20,000 weights per call)."""
    from itertools import accumulate

    from wordfreq import top_n_list, word_frequency

    words = [w for w in top_n_list("en", 20000) if w.isalpha()]
    return words, list(accumulate(word_frequency(w, "en") for w in words))


def sentences(rng: random.Random, n: int, boost: tuple[str, ...] = ()) -> list[str]:
    """``n`` sentences of 8 to 24 Zipf-drawn words; words in ``boost`` are made more likely (spinnable text)."""
    words, cumulative = _vocabulary()
    out = []
    for _ in range(n):
        picked = rng.choices(words, cum_weights=cumulative, k=rng.randint(8, 24))
        if boost:
            for i in range(len(picked)):
                if rng.random() < 0.08:
                    picked[i] = rng.choice(boost)
        picked[0] = picked[0].capitalize()
        out.append(" ".join(picked) + rng.choice(".....?!"))
    return out


def article_paragraphs(rng: random.Random, words: tuple[int, int] = (300, 700), boost: tuple[str, ...] = ()
                       ) -> list[str]:
    """Paragraphs of one article: 3 to 5 sentences each, until the word budget is spent."""
    budget = rng.randint(*words)
    paragraphs: list[str] = []
    while budget > 0:
        sent = sentences(rng, rng.randint(3, 5), boost)
        paragraphs.append(" ".join(sent))
        budget -= sum(len(s.split()) for s in sent)
    return paragraphs


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    host: str


def site(n: int) -> Site:
    return Site(f"The Daily {n:05d}", f"news{n:05d}.example")


def page_html(title: str, paragraphs: list[str], where: Site, *, published: str, url: str,
              canonical: str | None = None, byline: str | None = None, extra: str = "",
              rng: random.Random | None = None) -> str:
    """A whole news page: the site's navigation and footer, related links, then the article."""
    rng = rng or random.Random(where.host)
    nav = " ".join(f'<a href="https://{where.host}/{s}">{s.title()}</a>'
                   for s in rng.sample(["news", "sport", "business", "culture", "weather", "opinion", "travel"], 4))
    related = "".join(f'<li><a href="https://{where.host}/story/{rng.randint(1, 99999)}">'
                      f"{html.escape(' '.join(sentences(rng, 1)[0].split()[:6]))}</a></li>" for _ in range(3))
    body = "\n".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)
    author = f'<p class="byline">By {html.escape(byline)}</p>' if byline else ""
    link = f'<link rel="canonical" href="{html.escape(canonical)}">' if canonical else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} | {html.escape(where.name)}</title>
<meta property="og:site_name" content="{html.escape(where.name)}">{link}
<meta property="article:published_time" content="{published}T08:00:00Z"></head>
<body><header><a href="https://{where.host}/">{html.escape(where.name)}</a><nav>{nav}</nav></header>
<main><article><h1>{html.escape(title)}</h1>{author}
<time datetime="{published}">{published}</time>
{body}
{extra}
</article><aside><h2>Related</h2><ul>{related}</ul></aside></main>
<footer><p>&copy; {html.escape(where.name)}. All rights reserved.</p></footer></body></html>
"""


def unrelated_pages(count: int, seed: int = 1, first: int = 0, words: tuple[int, int] = (300, 700)
                    ) -> Iterator[tuple[str, str]]:
    """(url, html) of ``count`` distinct articles on distinct sites."""
    for n in range(first, first + count):
        rng = random.Random(f"{seed}:{n}")
        where = site(n % 5000)
        title = " ".join(sentences(rng, 1)[0].split()[:8]).rstrip(".?!")
        url = f"https://{where.host}/{n}/{rng.randint(0, 10**9)}"
        year = 2015 + n % 11
        yield url, page_html(title, article_paragraphs(rng, words), where, url=url, canonical=url,
                             published=f"{year}-{1 + n % 12:02d}-{1 + n % 28:02d}", rng=rng)


def spin(text: str, rng: random.Random, rate: float) -> str:
    """Swap a share ``rate`` of the spinnable words for their synonyms."""
    out = []
    for word in text.split(" "):
        bare = word.rstrip(".?!,").lower()
        if bare in SYNONYMS and rng.random() < rate:
            tail = word[len(bare):]
            swapped = SYNONYMS[bare]
            out.append((swapped.capitalize() if word[0].isupper() else swapped) + tail)
        else:
            out.append(word)
    return " ".join(out)


COPY_KINDS = ("verbatim", "verbatim", "verbatim", "trimmed", "attributed", "spun")


def wire_story(copies: int, seed: int = 7) -> tuple[list[tuple[str, str, str]], str]:
    """The original and ``copies`` copies as (url, html, kind), in a seeded random arrival order, and the
    original's URL. The original is self-canonical and the earliest; copies appear up to years later.
    The seed picks the story's text and its URLs, so stories of different seeds never share a page."""
    rng = random.Random(f"story:{seed}")
    slug = "flood-wall" if seed == 7 else f"flood-wall-s{seed}"
    paragraphs = article_paragraphs(rng, (500, 700), boost=tuple(SYNONYMS))
    title = "Harbour city approves the new flood wall after years of delay"
    origin = Site("Wire Service", "wire.example")
    original_url = f"https://{origin.host}/2019/{slug}"
    pages = [(original_url, page_html(title, paragraphs, origin, url=original_url, canonical=original_url,
                                      published="2019-03-04", byline="Sam Reporter", rng=rng), "original")]
    for n in range(copies):
        kind = COPY_KINDS[n % len(COPY_KINDS)]
        where = site(10_000 + n)
        url = f"https://{where.host}/{2019 + n % 6}/{slug}-{n}"
        body = list(paragraphs)
        extra = ""
        if kind == "trimmed":
            body = body[: max(2, len(body) - rng.randint(1, 2))]
        elif kind == "attributed":
            extra = f'<p>This story was first published by <a href="{original_url}">Wire Service</a>.</p>'
        elif kind == "spun":
            body = [spin(p, rng, 0.5) for p in body]
        pages.append((url, page_html(title, body, where, url=url, published=f"{2019 + n % 6}-06-01",
                                     byline="Sam Reporter", extra=extra, rng=rng), kind))
    order = random.Random(f"order:{seed}")
    order.shuffle(pages)
    return pages, original_url
