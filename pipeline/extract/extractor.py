"""Extract stage: Page bytes → Article, with trafilatura doing the reading of the page.

The canonicalizer needs more than the body text: the in-body links (scrapers drop their text), the
byline, dates, rel=canonical and attribution lines. The page is parsed once, with trafilatura's parser
settings; the head facts and the metadata are read from that tree, and trafilatura extracts the body
from its own copy of it.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import re
from urllib.parse import urljoin, urlsplit

import trafilatura
from lxml import html as lxml_html
from trafilatura import json_metadata as traf_json
from trafilatura import metadata as traf_meta
from trafilatura.settings import Document
from trafilatura.utils import HTML_PARSER

from pipeline.errors import DecodeError, EmptyPage, NotHTML
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
    re.I,
)


def decode_html(page: Page) -> tuple[str, str | None]:
    """Decode the body: charset from the headers, then the meta tag, then UTF-8, then detection.

    Returns the text and a warning when the declared charset was unknown or wrong.
    """
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
            return body.decode(codec), warning
        except UnicodeDecodeError:
            warning = f"declared charset {name!r} does not decode the page"
    try:
        return body.decode("utf-8"), warning
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes  # trafilatura's own dependency

    best = from_bytes(body[:200_000]).best()
    if best is None:
        raise DecodeError("cannot determine the page's encoding", url=page.url)
    note = f"decoded as {best.encoding} by detection"
    return str(best), f"{warning}; {note}" if warning else note


def _clean(text: str) -> str:
    return _WS.sub(" ", text).strip()


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


def _blocks(doc, url: str) -> tuple[list[str], list[Link]]:
    """Paragraph texts of trafilatura's body, and the in-body links with offsets in the joined text."""
    paragraphs: list[str] = []
    links: list[Link] = []
    if doc is None or doc.body is None:
        return paragraphs, links
    offset = 0
    for block in doc.body:
        ptext, plinks = _flatten(block)
        if not ptext:
            continue
        index = len(paragraphs)
        paragraphs.append(ptext)
        links.extend(Link(t, urljoin(url, h) if h else "", offset + s, index) for t, h, s in plinks if t)
        offset += len(ptext) + 2
    return paragraphs, links


def extract(page: Page) -> tuple[Article, str | None]:
    """Turn a page into an Article. Raises ExtractError subclasses; returns a warning if any."""
    ctype = page.content_type.lower()
    if ctype and not any(t in ctype for t in ("html", "xml", "text/plain")):
        raise NotHTML(f"content type {page.content_type!r} is not HTML", url=page.url)
    if not ctype and page.body and not _HTML_SNIFF.search(page.body[:2048]):
        raise NotHTML("payload does not look like HTML", url=page.url)
    text, warning = decode_html(page)
    if not _HTML_SNIFF.search(text[:4096].encode("utf-8", "replace")):
        raise NotHTML("payload does not look like HTML", url=page.url)
    try:
        tree = lxml_html.document_fromstring(text, parser=HTML_PARSER)  # trafilatura's own parser settings
    except Exception as err:  # lxml raises several types for hopeless documents
        raise NotHTML(f"HTML cannot be parsed: {err}", url=page.url) from err
    facts = _head_facts(tree, page.url)
    meta = _metadata(tree, page.url)
    # trafilatura works on its own copy of the tree, so the second pass can start from the same one.
    # No url: trafilatura would resolve every link with courlan, and _blocks resolves the kept ones.
    options = {"with_metadata": False, "include_links": True, "include_comments": False}
    doc = trafilatura.bare_extraction(tree, include_tables=True, **options)
    paragraphs, links = _blocks(doc, page.url)
    if not paragraphs:
        # a second, recall-oriented pass
        doc = trafilatura.bare_extraction(tree, favor_recall=True, **options) or doc
        paragraphs, links = _blocks(doc, page.url)
    if not paragraphs and facts["description"]:
        # last resort: a page with no readable body still has its summary; better than losing it
        paragraphs = [_clean(facts["description"])]
        warning = "; ".join(filter(None, [warning, "no article body found, kept the page description"]))
    if not paragraphs:
        raise EmptyPage("no article text found", url=page.url)
    attribution = tuple(p for p in paragraphs if len(p) < 400 and ATTRIBUTION.search(p))
    attribution_idx = {i for i, p in enumerate(paragraphs) if p in attribution}
    attribution_urls = tuple(dict.fromkeys(k.href for k in links if k.paragraph in attribution_idx and k.href))
    site = facts["site"] or meta.sitename or (urlsplit(page.url).hostname or "")
    article = Article(
        url=page.url,
        title=_clean(meta.title or facts["title"] or ""),
        text="\n\n".join(paragraphs),
        paragraphs=tuple(paragraphs),
        links=tuple(links),
        byline=_clean(meta.author) if meta.author else None,
        published=meta.date or None,
        site=site or None,
        canonical_url=facts["canonical_url"],
        language=(facts["language"] or meta.language or None),
        attribution=attribution,
        attribution_urls=attribution_urls,
    )
    return article, warning
