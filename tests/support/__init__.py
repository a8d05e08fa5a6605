"""Helpers shared by tests, one concept per module; test modules import these, never each other.

- ``db``: where PostgreSQL is, whether it answers, a throwaway database; ``under_ci``.
- ``http``: a real HTTP server on 127.0.0.1 with canned responses and misbehaviours (the ``http_server`` fixture).
- ``cli``: the ``reprint`` command line run in-process.
- ``pages``: small news pages (an original, a republished copy, an unrelated story).
- ``warc``: WARC files of given, sample or dated records.
- ``feeds``: feed and sitemap documents.
- ``world``: the API tests' stories, their copies and the stages they arrive in.
- ``admin``: a stand-in for the workers' admin backend.
- ``workers``: private redis-servers, worker processes, corpora, and the ``deployment`` fixture.
- ``newsroom``: the web UI tests' stories (a spun and a scraped copy, stored markup) ingested in stages.
- ``browser``: Debian's Chromium driven by Playwright, with a fresh profile per context.
- ``hostile``: the hostile HTML corpus (huge, deep, broken pages) generated in the tests.
- ``copymaker``: a second copy-maker (phrase-level spinner, scraper, boilerplate) with ground truth.
- ``shared_redis``: the machine's Redis with a key prefix of the test's own.
"""
