"""Regenerate ``pipeline/dedup/frequent.py``: the words the content-word signature leaves out.

    python benchmarks/frequent_words.py

The ``TOP`` most frequent words of each language in ``LANGUAGES`` (wordfreq's ``top_n_list``), split the way
``pipeline.text.tokenize`` splits text. Changing the list changes every ``c1`` signature: bump
``pipeline.dedup.fingerprint.FINGERPRINT_VERSION`` with it (stores then ask for ``reprint index refingerprint``).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl", "nb", "sv", "da", "pl", "tr", "fi", "cs")
TOP = 200

HEADER = '''"""The words the content-word signature (``c1``, ``pipeline.dedup.fingerprint``) leaves out: {count:,}
tokens, the {top} most frequent words of each of {languages},
as ``pipeline.text.tokenize`` splits them.

Every article holds most of its language's commonest words. In a set of words they make unrelated articles look
alike and put every article into the same few LSH buckets. Measured on the dev WARC (582 pages): the set of all
words gave 338 false candidate pairs beside 570 true ones; the content words (3 rows a band) give 68 false beside
589 true, and every true pair the two kinds found before is still found.

Data from wordfreq's ``top_n_list``, written by ``benchmarks/frequent_words.py``; regenerating it changes every
``c1`` signature (``FINGERPRINT_VERSION``).
"""

_LISTED = """
{body}
"""
WORDS = frozenset(_LISTED.split())
'''


def main() -> None:
    from wordfreq import top_n_list

    from pipeline.text import tokenize

    words: set[str] = set()
    for language in LANGUAGES:
        for word in top_n_list(language, TOP):
            words.update(tokenize(word))
    body = textwrap.fill(" ".join(sorted(words)), width=116, break_long_words=False, break_on_hyphens=False)
    out = ROOT / "pipeline" / "dedup" / "frequent.py"
    out.write_text(HEADER.format(count=len(words), top=TOP, languages=", ".join(LANGUAGES), body=body))
    print(f"{out}: {len(words):,} words")


if __name__ == "__main__":
    main()
