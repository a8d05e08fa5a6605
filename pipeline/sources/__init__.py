"""Sources: a SOURCE spec → work items. Feeds (RSS, Atom, JSON Feed) and their autodiscovery, sitemaps (index,
gzip, news, robots.txt ``Sitemap:`` lines), WARC files (resumable, filtered by host and date), HTML files and
directories, URL lists. ``discover`` never raises for bad input: each problem is an item with an error.
"""

from pipeline._lazy import lazy_exports

_EXPORTS = {
    "WarcScope": "pipeline.sources.warc",
    "discover": "pipeline.sources.discover",
    "find_feed_links": "pipeline.sources.feeds",
    "gunzip_capped": "pipeline.sources.sitemaps",
    "is_json_feed": "pipeline.sources.feeds",
    "iter_warc": "pipeline.sources.warc",
    "iter_warc_offsets": "pipeline.sources.warc",
    "parse_feed": "pipeline.sources.feeds",
    "parse_lastmod": "pipeline.sources.sitemaps",
    "parse_sitemap": "pipeline.sources.sitemaps",
    "read_html_file": "pipeline.sources.discover",
    "sniff": "pipeline.sources.discover",
    "source_kind": "pipeline.sources.discover",
    "warc_checkpoint_key": "pipeline.sources.discover",
    "warc_plan": "pipeline.sources.discover",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("pipeline.sources", _EXPORTS)
