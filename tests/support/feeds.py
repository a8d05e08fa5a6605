"""Feeds and sitemaps for tests: an Atom feed, a JSON Feed, an XML bomb, and builders of RSS feeds,
sitemap urlsets (optionally with Google News tags) and sitemap indexes."""

from __future__ import annotations

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom News</title><id>urn:x</id>
<updated>2026-11-23T10:00:00Z</updated>
<entry><title>A</title><id>urn:a</id><link rel="alternate" href="https://atom.example.org/a"/>
  <updated>2026-11-23T10:00:00Z</updated></entry>
<entry><title>B</title><id>urn:b</id><link rel="enclosure" href="https://atom.example.org/b.mp3"/>
  <link href="https://atom.example.org/b"/><published>2026-11-22T08:30:00+02:00</published></entry>
</feed>"""

JSON_FEED = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "JSON News",
 "items": [{"id": "1", "url": "https://json.example.net/one", "title": "One",
            "date_published": "2026-11-23T08:00:00Z"},
           {"id": "2", "external_url": "https://elsewhere.example/two"},
           {"id": "3", "content_text": "no url"}]}"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<ROOT><item><link>&lol9;</link></item></ROOT>"""


def rss_of(*links: str) -> bytes:
    items = "".join(f"<item><title>t</title><link>{link}</link></item>" for link in links)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>{items}</channel></rss>'.encode()


def urlset(*locs: str, news: bool = False) -> bytes:
    rows = []
    for loc in locs:
        extra = ""
        if news:
            extra = (
                "<news:news><news:publication><news:name>The Example</news:name>"
                "<news:language>en</news:language></news:publication>"
                "<news:publication_date>2026-11-23T08:00:00+00:00</news:publication_date>"
                f"<news:title>Title of {loc.rsplit('/', 1)[-1]}</news:title></news:news>"
            )
        rows.append(f"<url><loc>{loc}</loc><lastmod>2026-11-2{len(rows) % 10}</lastmod>{extra}</url>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">' + "".join(rows) + "</urlset>"
    ).encode()


def sitemap_index(*locs: str) -> bytes:
    rows = "".join(
        f"<sitemap><loc>{loc}</loc><lastmod>2026-11-0{i + 1}</lastmod></sitemap>" for i, loc in enumerate(locs)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        + rows
        + "</sitemapindex>"
    ).encode()
