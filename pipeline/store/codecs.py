"""How values are kept in the store: URL keys, content hashes, compressed HTML, packed signatures, JSON text,
and the row → record conversions. Pure functions, no database."""

from __future__ import annotations

import hashlib
import zlib
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import zstandard

from pipeline.records import Article, Link, PairVerdict, Signature
from pipeline.store.schema import ArticleRow


def url_key(url: str) -> str:
    """A fixed-width key for a URL, so unique indexes hold for URLs of any length."""
    return hashlib.sha1(url.encode("utf-8", "surrogatepass")).hexdigest()


def json_text(value: Any) -> str:
    """JSON columns as text, by orjson: the stdlib encoder was a tenth of the store's CPU per page."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def content_hash(body: bytes) -> str:
    """The digest kept for a page body: the same bytes again mean the page is unchanged."""
    return hashlib.sha1(body).hexdigest()


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def compress_html(body: bytes) -> bytes:
    """Raw HTML as stored: zstd level 1 (a fifth of zlib's CPU per page, at about 5:1 on news pages)."""
    return zstandard.ZstdCompressor(level=1).compress(body)


def decompress_html(data: bytes) -> bytes:
    """Stored HTML back to bytes; rows written before zstd hold zlib streams."""
    if not data:
        return b""
    if data[:4] == _ZSTD_MAGIC:
        return zstandard.ZstdDecompressor().decompress(data)
    return zlib.decompress(data)


def encode_signature(sig: Signature) -> tuple[str, bytes]:
    kinds = sorted(sig.values)
    return ",".join(kinds), b"".join(np.asarray(sig.values[k], dtype=np.uint32).tobytes() for k in kinds)


def decode_signature(kinds: str, data: bytes, n_tokens: int) -> Signature:
    names = kinds.split(",")
    arr = np.frombuffer(data, dtype=np.uint32)
    per = len(arr) // len(names)
    return Signature({k: arr[i * per : (i + 1) * per] for i, k in enumerate(names)}, n_tokens)


def kind_bytes(kinds: str, data: bytes, kind: str) -> bytes | None:
    """The bytes of one kind's values in a stored signature (``encode_signature``'s layout), or None without it."""
    names = kinds.split(",")
    if kind not in names:
        return None
    per = len(data) // len(names)
    at = names.index(kind) * per
    return data[at : at + per]


def row_to_article(row: ArticleRow) -> Article:
    meta = row.meta or {}
    return Article(
        url=row.url,
        title=row.title,
        text=row.text,
        paragraphs=tuple(meta.get("paragraphs") or row.text.split("\n\n")),
        links=tuple(Link(t, h, s, p) for t, h, s, p in meta.get("links", [])),
        byline=row.byline,
        published=row.published,
        site=row.site,
        canonical_url=row.canonical_url,
        language=row.language,
        attribution=tuple(meta.get("attribution", [])),
        attribution_urls=tuple(meta.get("attribution_urls", [])),
    )


def naive_utc(when: datetime) -> datetime:
    """How the store keeps times: UTC without tzinfo (an aware value is converted first)."""
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo is not None else when


def edge_verdict(relation: str, similarity: float, data: dict[str, Any] | None) -> PairVerdict:
    d = data or {}
    return PairVerdict(relation, similarity, d.get("coverage_a", 0.0), d.get("coverage_b", 0.0),
                       d.get("substitution_rate", 0.0), d.get("evidence", {}))
