"""Extract stage: Page bytes → Article, with trafilatura doing the reading of the page.

The canonicalizer needs more than the body text: the in-body links (scrapers drop their text), the
byline, dates, rel=canonical and attribution lines. The page is parsed once, with trafilatura's parser
settings; the head facts and the metadata are read from that tree, and trafilatura extracts the body
from its own copy of it.

Whatever the page holds, what is built from it is bounded (``ExtractLimits``): tags are counted in the
decoded text before parsing and the page is cut past the bounds; oversized attributes and script bulk
leave the tree before metadata is read; the article keeps a bounded number of paragraphs, characters
and word lengths. Each reduction is named in the returned warning. A page the parser stops reading
early (nesting past libxml2's depth limit) raises ``PageTooComplex``.

``extract`` runs in the calling process and has no deadline; ``pipeline.extract.isolated`` runs it in
a child process that is killed past a deadline or a memory cap.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import re
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import trafilatura
from lxml import etree
from lxml import html as lxml_html
from trafilatura import json_metadata as traf_json
from trafilatura import metadata as traf_meta
from trafilatura.settings import Document
from trafilatura.utils import HTML_PARSER

from pipeline.errors import DecodeError, EmptyPage, NotHTML, PageTooComplex
from pipeline.extract.limits import DEFAULT_LIMITS, ExtractLimits
from pipeline.records import Article, Link, Page

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
_HTML_SNIFF = re.compile(rb"<\s*(!doctype\s+html|html|head|body|p|div|article|title)[\s>]", re.I)
_WS = re.compile(r"\s+")

# Lines by which a republisher credits the original (several languages, lower-case match).
ATTRIBUTION = re.compile(
    r"(originally (published|appeared)|first (published|appeared)|read the original article|"
    r"provided by|republished (from|with permission|under)|this article (is|was) republished|"
    r"reprinted (with|by) permission|syndicated from|courtesy of|"
    r"ursprünglich (erschienen|veröffentlicht)|zuerst erschienen|publié à l'origine|"
    r"publicado originalmente|pubblicato originariamente)",
)  # matched on lower-cased text: with re.I, sre tries every alternative at every position, six times slower


def decode_html(page: Page) -> tuple[str, str | None]:
    """Decode the body: charset from the headers, then the meta tag, then UTF-8, then detection.

    Returns the text and a warning when the declared charset was unknown or wrong.
    """
    text, warning, _codec = _decode(page)
    return text, warning


def _decode(page: Page) -> tuple[str, str | None, str]:
    """``decode_html``, and the codec that decoded the page."""
    body = page.body
    if not body.strip():
        raise EmptyPage("empty response body", url=page.url)
    declared: list[str] = []
    header = _HEADER_CHARSET.search(page.content_type)
    if header:
        declared.append(header.group(1).decode() if isinstance(header.group(1), bytes) else header.group(1))
    meta = _META_CHARSET.search(body[:4096])
    if meta:
        declared.append(meta.group(1).decode("ascii", "replace"))
    warning = None
    for name in declared:
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            warning = f"unknown charset {name!r}"
            continue
        try:
            return body.decode(codec), warning, codec
        except UnicodeDecodeError:
            warning = f"declared charset {name!r} does not decode the page"
    try:
        return body.decode("utf-8"), warning, "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes  # trafilatura's own dependency

    best = from_bytes(body[:200_000]).best()
    if best is None:
        raise DecodeError("cannot determine the page's encoding", url=page.url)
    note = f"decoded as {best.encoding} by detection"
    return str(best), f"{warning}; {note}" if warning else note, best.encoding


@lru_cache(maxsize=64)
def _plain_markup(codec: str) -> bool:
    """Whether the codec writes "<" and NUL as the single bytes 0x3C and 0x00 (UTF-8, Latin-1, Windows and
    East Asian multi-byte codecs do; UTF-16, UTF-7 and EBCDIC do not). Then each of them in the text was
    that byte in the body, and the body's counts bound the text's: the body is faster to count."""
    try:
        return "<".encode(codec) == b"<" and "\x00".encode(codec) == b"\x00"
    except (LookupError, UnicodeError):
        return False


def _count_lt(body: bytes) -> int:
    """How many "<" bytes the body holds. ``bytes.count``: numpy compares a third faster (4 against 3 ms on
    10 MB), but importing it costs an extraction worker 0.19 s of CPU at every start, and the worker needs it
    for nothing else."""
    return body.count(b"<")


def _clean(text: str) -> str:
    return _WS.sub(" ", text).strip()


# What the tag count looks for: a start tag, a link's or a paragraph's in particular; a comment (not
# counted: the parser drops comments) or a raw-text element (counted once: the "<" in its content are not
# tags) is skipped to its end.
_MARKUP = re.compile(r"<(?:(script|style)\b|(!--)|(a)\b|(p)\b|[A-Za-z])", re.I)
_MARKUP_END = {"script": re.compile(r"</script\s*>", re.I), "style": re.compile(r"</style\s*>", re.I),
               "!--": re.compile(r"-->")}


def _within_tag_budget(text: str, limits: ExtractLimits, body: bytes | None = None) -> tuple[str, str | None]:
    """The page cut before its first start tag past ``max_elements``, first link past ``max_links`` or
    first ``<p>`` past ``max_paragraphs``, with a note saying so; unchanged when it is within the three.
    Counted before parsing, so the tree and everything built from it stay bounded (the parse of 10 MB of
    tags alone takes most of a GB, and trafilatura needs several KB per link). ``body``: the bytes the text
    was decoded from, when their "<" bound the text's (``_plain_markup``)."""
    smallest = min(limits.max_elements, limits.max_links, limits.max_paragraphs)
    if body is not None:
        opening = _count_lt(body)
        if opening <= smallest or opening - body.count(b"</") <= smallest:
            return text, None  # not even that many "<" (but for end tags): within every bound (nearly every page)
    opening = text.count("<")
    if opening <= smallest or opening - text.count("</") <= smallest:
        return text, None
    counts = {"elements": 0, "links": 0, "paragraphs": 0}
    bounds = {"elements": limits.max_elements, "links": limits.max_links, "paragraphs": limits.max_paragraphs}
    pos = 0
    while (match := _MARKUP.search(text, pos)) is not None:
        raw, comment, link, paragraph = match.groups()
        pos = match.end()
        if comment is None:
            counts["elements"] += 1
            counts["links"] += link is not None
            counts["paragraphs"] += paragraph is not None
            for name, count in counts.items():
                if count > bounds[name]:
                    return text[: match.start()], f"page cut after its first {bounds[name]} {name} (extract_max_{name})"
            if raw is None:
                continue
        end = _MARKUP_END[(raw or comment).lower()].search(text, pos)
        if end is None:
            break
        pos = end.end()
    return text, None


def _parser_gave_up(url: str) -> None:
    """Raise when libxml2 gave up on the page it just parsed: PageTooComplex past one of its limits (it stops
    reading at a nesting depth of 256 and drops the rest of the document, article included), MemoryError
    when it could not allocate (lxml reports that as a syntax error)."""
    last = HTML_PARSER.error_log.last_error
    if last is None:
        return
    if last.type == etree.ErrorTypes.ERR_NO_MEMORY:
        raise MemoryError("the HTML parser ran out of memory")
    if last.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
        raise PageTooComplex(f"the HTML parser stopped reading the page: {last.message.strip()}", url=url)


def _is_json_ld(script) -> bool:
    return script.tag == "script" and script.get("type") in ("application/ld+json", "application/settings+json")


def _trim_tree(tree, size: int, limits: ExtractLimits) -> list[str]:
    """Drop attribute values past ``max_attribute_chars`` and, when the page's scripts and styles hold more
    than ``max_script_chars``, their text (JSON-LD kept while it fits); returns notes on what went. A page
    no longer than a bound cannot be past it: nothing is searched."""
    notes = []
    if size > limits.max_attribute_chars:
        values = tree.xpath("//@*[string-length(.) > $n]", n=limits.max_attribute_chars)
        for value in values:
            del value.getparent().attrib[value.attrname]
        if values:
            notes.append(f"{len(values)} attribute value(s) over {limits.max_attribute_chars} characters dropped")
    if size > limits.max_script_chars:
        scripts = [el for el in tree.iter("script", "style") if el.text]
        if sum(len(el.text) for el in scripts) > limits.max_script_chars:
            kept = 0
            for el in scripts:
                if _is_json_ld(el) and kept + len(el.text) <= limits.max_script_chars:
                    kept += len(el.text)
                else:
                    el.text = None
            notes.append(f"script and style text over {limits.max_script_chars} characters dropped")
    return notes


_LINE_ENDS = frozenset(("lb", "item", "row"))  # list items and lines stay apart: a dropped item is a block


def _flatten(element) -> tuple[str, list[tuple[str, str, int]]]:
    """Text of a block element with its <ref> links and their character offsets."""
    parts: list[str] = []
    links: list[tuple[str, str, int]] = []
    length = 0
    ws = _WS.sub

    def walk(el) -> None:
        nonlocal length
        if el.tag == "ref":
            inner = "".join(el.itertext())
            if inner:
                piece = ws(" ", inner)
                links.append((piece.strip(), el.get("target", ""), length))
                parts.append(piece)
                length += len(piece)
            else:
                links.append(("", el.get("target", ""), length))
        else:
            if el.text:
                piece = ws(" ", el.text)
                parts.append(piece)
                length += len(piece)
            for child in el:
                walk(child)
                if child.tail:
                    piece = ws(" ", child.tail)
                    parts.append(piece)
                    length += len(piece)
        if el.tag in _LINE_ENDS and parts and not parts[-1].endswith("\n"):
            parts.append("\n")
            length += 1

    walk(element)
    raw = "".join(parts)
    stripped = raw.lstrip()
    shift = len(raw) - len(stripped)
    text = stripped.rstrip()
    return text, [(t, href, max(0, start - shift)) for t, href, start in links]


# <meta> fields the head facts keep: (attribute, its value) → fact
_META_FACTS = {
    ("property", "og:site_name"): "site",
    ("property", "og:title"): "og_title",
    ("property", "og:description"): "og_description",
    ("name", "description"): "description",
    ("http-equiv", "content-language"): "content_language",
}


def _head_facts(tree, url: str) -> dict[str, str | None]:
    """rel=canonical, language, site name, title and description, each the first in the document, in
    one pass over the page's link, meta and title elements."""
    first: dict[str, str] = {}
    if tree.tag == "html" and tree.get("lang") is not None:
        first["lang"] = tree.get("lang")
    for el in tree.iter("link", "meta", "title"):
        tag = el.tag
        if tag == "meta":
            content = el.get("content")
            if content is None:
                continue
            for attribute in ("property", "name", "http-equiv"):
                fact = _META_FACTS.get((attribute, el.get(attribute)))
                if fact is not None and fact not in first:
                    first[fact] = content
        elif tag == "link":
            href = el.get("href")
            if href is not None and "canonical" not in first and "canonical" in (el.get("rel") or "").split():
                first["canonical"] = href
        elif "title" not in first and el.text is not None:
            first["title"] = el.text

    def fact(*keys: str) -> str | None:
        for key in keys:  # a blank first value gives way to the next key, not to a later element
            value = first.get(key, "").strip()
            if value:
                return value
        return None

    canonical = fact("canonical")
    return {
        "canonical_url": urljoin(url, canonical) if canonical else None,
        "language": fact("lang", "content_language"),
        "site": fact("site"),
        "title": fact("title", "og_title"),
        "description": fact("description", "og_description"),
    }


#: How much of a JSON-LD block that is not valid JSON the regex fallback reads. Its fields come first; an
#: 800 KB live blog whose JSON-LD breaks took the fallback's author patterns most of a second.
JSON_LD_FALLBACK_CHARS = 16_384
_JSON_LD = '//script[@type="application/ld+json" or @type="application/settings+json"]'


def _json_ld(tree, meta: Document) -> Document:
    """trafilatura's JSON-LD reading, with its regex fallback for broken blocks bounded in length."""
    for script in tree.xpath(_JSON_LD):
        if not script.text:
            continue
        block = traf_json.normalize_json(traf_meta.JSON_MINIFY.sub(r"\1", script.text))
        try:
            parsed = json.loads(block, strict=False)  # strict=False, as trafilatura: stray control chars
        except json.JSONDecodeError:
            meta = traf_json.extract_json_parse_error(block[:JSON_LD_FALLBACK_CHARS], meta)
        else:
            meta = traf_json.extract_json(parsed, meta)
    return meta


def _metadata(tree, url: str) -> Document:
    """Title, author, date and site name as trafilatura's metadata extraction finds them (same steps,
    same order, same clean-up), leaving out the categories, tags and licence it also looks for and
    reprint never reads: those cost about a quarter of its metadata time."""
    meta = traf_meta.examine_meta(tree)
    if meta.author and " " not in meta.author:
        meta.author = None  # a single word in <meta name=author> is a handle, not a byline
    with contextlib.suppress(Exception):  # trafilatura guards its own JSON-LD reader the same way
        meta = _json_ld(tree, meta)
    meta.title = meta.title or traf_meta.extract_title(tree)
    meta.author = meta.author or traf_meta.extract_author(tree)
    meta.url = meta.url or traf_meta.extract_url(tree, url)
    meta.date = traf_meta.find_date(tree, **{**traf_meta.set_date_params(True), "url": meta.url})
    meta.sitename = meta.sitename or traf_meta.extract_sitename(tree)
    if meta.sitename:
        meta.sitename = meta.sitename.lstrip("@")
        if meta.sitename and "." not in meta.sitename and not meta.sitename[0].isupper():
            meta.sitename = meta.sitename.title()
    elif meta.url and (host := traf_meta.META_URL.match(meta.url)):
        meta.sitename = host[1]
    meta.clean_and_trim()
    return meta


@lru_cache(maxsize=4)
def _long_word(limit: int) -> re.Pattern[str]:
    """A run of non-space characters longer than ``limit``; group 1 is what is past the limit."""
    return re.compile(rf"(?<!\S)\S{{{limit}}}(\S+)")


def _cut_long_words(text: str, links: list[tuple[str, str, int]], limit: int
                    ) -> tuple[str, list[tuple[str, str, int]], int]:
    """``text`` with every word past ``limit`` characters cut to its first ``limit``, its links moved to
    match, and how many words were cut."""
    cuts = [match.span(1) for match in _long_word(limit).finditer(text)]
    if not cuts:
        return text, links, 0
    kept, last = [], 0
    for start, end in cuts:
        kept.append(text[last:start])
        last = end
    kept.append(text[last:])
    cut = "".join(kept)

    def moved(pos: int) -> int:
        gone = 0
        for start, end in cuts:
            if pos <= start:
                break
            gone += min(pos, end) - start
        return pos - gone

    relinked = []
    for ltext, href, start in links:
        new_start, new_end = moved(start), moved(start + len(ltext))
        relinked.append((cut[new_start:new_end], href, new_start))
    return cut, relinked, len(cuts)


def _blocks(doc, url: str, limits: ExtractLimits = DEFAULT_LIMITS) -> tuple[list[str], list[Link], list[str]]:
    """Paragraph texts of trafilatura's body, the in-body links with offsets in the joined text, and notes
    on what ``limits`` cut: the first ``max_paragraphs`` paragraphs within ``max_text_chars`` are kept."""
    paragraphs: list[str] = []
    links: list[Link] = []
    notes: list[str] = []
    if doc is None or doc.body is None:
        return paragraphs, links, notes
    offset = words_cut = 0
    for block in doc.body:
        ptext, plinks = _flatten(block)
        if not ptext:
            continue
        if len(paragraphs) == limits.max_paragraphs:
            notes.append(f"article cut to its first {limits.max_paragraphs} paragraphs (extract_max_paragraphs)")
            break
        if len(ptext) > limits.max_word_chars:
            ptext, plinks, cut = _cut_long_words(ptext, plinks, limits.max_word_chars)
            words_cut += cut
        room = limits.max_text_chars - offset  # the joined text stays within max_text_chars
        full = len(ptext) > room
        if full:
            notes.append(f"article text cut at {limits.max_text_chars} characters (extract_max_text_chars)")
            space = ptext.rfind(" ", 0, room + 1)
            ptext = ptext[: space if space >= room // 2 else max(room, 0)].rstrip()
            plinks = [link for link in plinks if link[2] + len(link[0]) <= len(ptext)]
            if not ptext:
                break
        index = len(paragraphs)
        paragraphs.append(ptext)
        links.extend(Link(t, urljoin(url, h) if h else "", offset + s, index) for t, h, s in plinks if t)
        offset += len(ptext) + 2
        if full:
            break
    if words_cut:
        notes.insert(0, f"{words_cut} word(s) over {limits.max_word_chars} characters cut (extract_max_word_chars)")
    return paragraphs, links, notes


#: The fast path's body is kept when it holds at least this share of the text of the page's <p> elements. On the
#: dev corpus the fast path alone costs 0.63x of trafilatura's full cascade and gives the same text on 570 of
#: 582 pages; every page where it kept much less text (six, from 3% to 59% of what the cascade found) kept less
#: than this share of the paragraph text (or 250 characters), and 19 pages in all ran the cascade again: extract()
#: costs 0.83x on dev, 0.72x on short pages (600 of them, none run again).
FALLBACK_COVERAGE = 0.6
#: A shorter body always gets the fallbacks: the cascade examines such a body with jusText too (trafilatura's
#: ``MIN_EXTRACTED_SIZE``).
SHORT_BODY = 250


def _needs_fallbacks(doc, tree) -> bool:
    """Is the fast path's body short, or does it leave out most of the page's paragraph text? Then the
    fallback extractors run. Counting stops as soon as the answer is yes."""
    found = len(doc.text or "") if doc is not None else 0
    if found < SHORT_BODY:
        return True
    enough = found / FALLBACK_COVERAGE
    seen = 0
    for p in tree.iter("p"):
        seen += len(" ".join(p.text_content().split()))
        if seen > enough:
            return True
    return False


def extract(page: Page, limits: ExtractLimits = DEFAULT_LIMITS) -> tuple[Article, str | None]:
    """Turn a page into an Article. Raises ExtractError subclasses; returns a warning if any (an undecodable
    charset, a page reduced to ``limits``, a body that is only the page's description)."""
    ctype = page.content_type.lower()
    if ctype and not any(t in ctype for t in ("html", "xml", "text/plain")):
        raise NotHTML(f"content type {page.content_type!r} is not HTML", url=page.url)
    if not ctype and page.body and not _HTML_SNIFF.search(page.body[:2048]):
        raise NotHTML("payload does not look like HTML", url=page.url)
    text, warning, codec = _decode(page)
    if not _HTML_SNIFF.search(text[:4096].encode("utf-8", "replace")):
        raise NotHTML("payload does not look like HTML", url=page.url)
    plain = _plain_markup(codec)
    nul = (not plain or b"\x00" in page.body) and "\x00" in text
    if nul:  # what a browser does with them: the parser would make each one a U+FFFD inside a word
        text = text.replace("\x00", "")
    text, cut = _within_tag_budget(text, limits, page.body if plain and not nul else None)
    notes = [note for note in (warning, "NUL characters dropped" if nul else None, cut) if note]
    try:
        tree = lxml_html.document_fromstring(text, parser=HTML_PARSER)  # trafilatura's own parser settings
    except Exception as err:  # lxml raises several types for hopeless documents
        _parser_gave_up(page.url)
        raise NotHTML(f"HTML cannot be parsed: {err}", url=page.url) from err
    _parser_gave_up(page.url)
    notes.extend(_trim_tree(tree, len(text), limits))
    del text
    facts = _head_facts(tree, page.url)
    meta = _metadata(tree, page.url)
    # trafilatura works on its own copy of the tree, so the second pass can start from the same one.
    # No url: trafilatura would resolve every link with courlan, and _blocks resolves the kept ones.
    options = {"with_metadata": False, "include_links": True, "include_comments": False, "include_tables": True}
    fast = limits.fallbacks == "auto"
    doc = trafilatura.bare_extraction(tree, fast=fast, **options)
    if fast and _needs_fallbacks(doc, tree):
        doc = trafilatura.bare_extraction(tree, **options) or doc
    paragraphs, links, cuts = _blocks(doc, page.url, limits)
    if not paragraphs:
        # a second, recall-oriented pass
        doc = trafilatura.bare_extraction(tree, favor_recall=True, **options) or doc
        paragraphs, links, cuts = _blocks(doc, page.url, limits)
    notes.extend(cuts)
    if not paragraphs and facts["description"]:
        # last resort: a page with no readable body still has its summary; better than losing it
        description, _links, _cut = _cut_long_words(_clean(facts["description"]), [], limits.max_word_chars)
        paragraphs = [description[: limits.max_text_chars]]
        notes.append("no article body found, kept the page description")
    if not paragraphs:
        raise EmptyPage("no article text found", url=page.url)
    attribution = tuple(p for p in paragraphs if len(p) < 400 and ATTRIBUTION.search(p.lower()))
    attribution_idx = {i for i, p in enumerate(paragraphs) if p in attribution}
    attribution_urls = tuple(dict.fromkeys(k.href for k in links if k.paragraph in attribution_idx and k.href))
    site = facts["site"] or meta.sitename or (urlsplit(page.url).hostname or "")

    def field(value: str | None) -> str | None:
        if value is not None and len(value) > limits.max_field_chars:
            notes.append(f"a field over {limits.max_field_chars} characters cut (extract_max_field_chars)")
            return value[: limits.max_field_chars]
        return value

    article = Article(
        url=page.url,
        title=field(_clean(meta.title or facts["title"] or "")) or "",
        text="\n\n".join(paragraphs),
        paragraphs=tuple(paragraphs),
        links=tuple(links),
        byline=field(_clean(meta.author)) if meta.author else None,
        published=meta.date or None,
        site=field(site) or None,
        canonical_url=field(facts["canonical_url"]),
        language=field(facts["language"] or meta.language or None),
        attribution=attribution,
        attribution_urls=attribution_urls,
    )
    return article, "; ".join(notes) or None
