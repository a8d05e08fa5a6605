"""URL helpers: a normal form for deciding what to fetch once, and cheap validity checks.

``normalize_url`` is for *dedup keys only*: the URL that is stored with a page stays exactly as it was
fetched (or as the WARC-Target-URI had it), because the export contract promises that.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from courlan.clean import normalize_url as _courlan_normalize

_HTTP_SCHEMES = frozenset({"http", "https"})


def is_http_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host and no whitespace (what a URL list line must be)."""
    if not url or any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        return False
    return parts.scheme.lower() in _HTTP_SCHEMES and bool(parts.hostname)


def normalize_url(url: str) -> str:
    """The dedup key of a URL: lower-case scheme and host, no default port, no fragment, query sorted
    and stripped of tracking parameters (utm_*, fbclid, gclid, ...), dot segments resolved.

    Falls back to the stripped input when the URL cannot be parsed, so it never raises.
    """
    url = url.strip()
    try:
        normal = _courlan_normalize(url, strict=False, trailing_slash=True)
    except (ValueError, AttributeError):
        return url
    parts = urlsplit(normal)
    path = _remove_dot_segments(parts.path) or "/"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def host_key(url: str) -> str:
    """``scheme://host:port`` — the unit for robots.txt, politeness delays and per-host limits."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port if parts.port is not None else (443 if scheme == "https" else 80)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, so ``/a/../b`` and ``/b`` are one key."""
    if "." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        if segment == "..":
            if len(out) > 1:
                out.pop()
            if i == len(segments) - 1:
                out.append("")
        elif segment == ".":
            if i == len(segments) - 1:
                out.append("")
        else:
            out.append(segment)
    result = "/".join(out)
    return result if result.startswith("/") or not path.startswith("/") else "/" + result
