"""A hostile HTML corpus, generated: pages built to exhaust an extractor's memory or time.

Each page is under the default 10 MiB body cap and, except the one that is a single ``<script>``,
carries a short real article somewhere inside its hostility, so that "reduced, with a warning, still an
article" is a possible outcome. ``HOSTILE`` maps a page's name to a function building its bytes; the
pages are big, so build them when needed. Used by tests/extract/test_hostile.py and by
benchmarks/hostile_bench.py (which runs older code against the same pages).
"""

from __future__ import annotations

from collections.abc import Callable

#: The body cap the corpus stays under (``fetch_max_bytes``'s default).
BODY_CAP = 10 * 1024 * 1024

STORY = [
    "The river authority closed the lower towpath on Monday after a section of the embankment slipped "
    "into the water overnight, leaving a gap of several metres beside the old boathouse.",
    "Engineers said the slip was caused by weeks of heavy rain soaking the clay bank, and that no one had "
    "been hurt. Walkers and cyclists are being sent along a signed diversion through the water meadows.",
    "The authority expects repairs to take about six weeks and will drive steel piles into the bank before "
    "rebuilding the path. Rowing clubs downstream have been asked to keep clear of the site.",
    "Residents who use the towpath to reach the station said the diversion added twenty minutes to their "
    "walk, and asked for a temporary footbridge. The authority said it would look at the request.",
]


def story_html(story: list[str] | None = None) -> str:
    return "".join(f"<p>{p}</p>" for p in (story or STORY))


def page_html(body: str, *, title: str = "Towpath closed after bank slips", head: str = "") -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>{head}</head>'
            f"<body><nav><a href='/'>Home</a></nav>{body}<footer>River News</footer></body></html>")


def nested_elements(depth: int = 100_000) -> bytes:
    """The article at the bottom of ``depth`` nested ``<div>`` elements."""
    return page_html("<div>" * depth + f"<article>{story_html()}</article>" + "</div>" * depth).encode()


def many_links(count: int = 200_000, per_paragraph: int = 100) -> bytes:
    """The article followed by ``count`` in-body links, ``per_paragraph`` to a paragraph (about 7 MB)."""
    groups = []
    for start in range(0, count, per_paragraph):
        links = " ".join(f'<a href="/story/{i}">item {i}</a>' for i in range(start, min(count, start + per_paragraph)))
        groups.append(f"<p>See also {links}.</p>")
    return page_html(f"<article>{story_html()}{''.join(groups)}</article>").encode()


def many_paragraphs(count: int = 60_000) -> bytes:
    """The article followed by ``count`` short paragraphs."""
    filler = "".join(f"<p>Update {i}: the diversion through the water meadows stays open.</p>" for i in range(count))
    return page_html(f"<article>{story_html()}{filler}</article>").encode()


def huge_attribute(size: int = 5 * 1024 * 1024) -> bytes:
    """An in-body link whose ``href`` is ``size`` bytes long."""
    link = f'<p>Read <a href="https://river.example/?state={"x" * size}">the authority\'s notice</a> here.</p>'
    return page_html(f"<article>{story_html()}{link}</article>").encode()


def huge_word(size: int = 1024 * 1024) -> bytes:
    """A paragraph that is one ``size``-character word, inside the article."""
    word = ("towpath" * (size // 7 + 1))[:size]
    return page_html(f"<article>{story_html(STORY[:2])}<p>{word}</p>{story_html(STORY[2:])}</article>").encode()


def nul_bytes(block: int = 2 * 1024 * 1024) -> bytes:
    """NUL bytes inside the article's words and a ``block`` of them between its paragraphs."""
    story = [p.replace(" ", " \x00", 5) for p in STORY]
    text = story_html(story[:2]) + "\x00" * block + story_html(story[2:])
    return page_html(f"<article>{text}</article>").encode()


def mixed_encodings(repeat: int = 2_000) -> bytes:
    """Declared UTF-8; the bytes mix UTF-8, Latin-1, Windows-1252 quotes, Shift-JIS and UTF-16."""
    head, tail = page_html("<article>@@</article>").encode().split(b"@@")
    parts = [
        "<p>Caf\u00e9 owners by the river said the closure was \u201cbad for trade\u201d.</p>".encode(),
        "<p>Le caf\u00e9 du quai reste ouvert, a d\u00e9clar\u00e9 la g\u00e9rante.</p>".encode("latin-1"),
        "<p>\u201cWe will reopen soon,\u201d the authority\u2019s spokeswoman said.</p>".encode("cp1252"),
        "<p>\u5ddd\u6cbf\u3044\u306e\u9053\u304c\u9589\u9396\u3055\u308c\u305f\u3002</p>".encode("shift_jis"),
        "\ufeff<p>The towpath will be rebuilt.</p>".encode("utf-16-le"),
    ]
    body = story_html().encode() + b"".join(parts) * repeat
    return head + body + tail


def comment_bomb(count: int = 900_000) -> bytes:
    """``count`` HTML comments between the article's paragraphs, and an unterminated one at the end."""
    bomb = "<!--x-->" * (count // len(STORY))
    body = bomb.join(f"<p>{p}</p>" for p in STORY) + bomb + "<!-- <!-- <!--"
    return page_html(f"<article>{body}</article>").encode()


def deep_tables(depth: int = 5_000) -> bytes:
    """The article in the innermost cell of ``depth`` nested tables."""
    opening = "<table><tr><td>" * depth
    closing = "</td></tr></table>" * depth
    return page_html(f"{opening}<article>{story_html()}</article>{closing}").encode()


def one_script(size: int = 9 * 1024 * 1024) -> bytes:
    """A page that is one ``<script>`` of ``size`` bytes and nothing else."""
    code = ("var state = window.__STATE__ || {}; state.n = (state.n || 0) + 1;\n" * (size // 66 + 1))[:size]
    return f"<html><body><script>{code}</script></body></html>".encode()


HOSTILE: dict[str, Callable[[], bytes]] = {
    "nested-100k": nested_elements,
    "links-200k": many_links,
    "paragraphs-60k": many_paragraphs,
    "attribute-5mb": huge_attribute,
    "word-1mb": huge_word,
    "nul-bytes": nul_bytes,
    "mixed-encodings": mixed_encodings,
    "comment-bomb": comment_bomb,
    "deep-tables": deep_tables,
    "one-script": one_script,
}
