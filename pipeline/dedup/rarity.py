"""Which side of a substitution holds the rarer words: a spinner swaps common words for odd synonyms.

This is what lets a spun copy be told apart without the original: across the aligned substitutions of
two copies, the spun one's words are consistently rarer (wordfreq's Zipf scale).
"""

from __future__ import annotations

from functools import lru_cache

# wordfreq is imported on first use: loading it cost a fifth of a second, and most pages have no word swaps
# to weigh.


@lru_cache(maxsize=1)
def _languages() -> frozenset[str]:
    from wordfreq import available_languages

    # Japanese, Korean and Chinese need MeCab / jieba for wordfreq's tokenizer: left out.
    return frozenset(available_languages()) - {"ja", "ko", "zh"}


def language_code(language: str | None) -> str | None:
    """The wordfreq code for an HTML lang value ("en-GB" → "en"), or None when unsupported."""
    if not language:
        return None
    code = language.strip().lower().replace("_", "-").split("-")[0]
    return code if code in _languages() else None


@lru_cache(maxsize=200_000)
def zipf(word: str, lang: str) -> float:
    from wordfreq import zipf_frequency

    try:
        return zipf_frequency(word, lang)
    except (ImportError, LookupError, ValueError):
        return 0.0


def rarity_shift(substitutions: list[tuple[str, str]], language: str | None) -> dict[str, float] | None:
    """Zipf(a) − Zipf(b) over one-word substitutions (mean, median, counts); negative: a's words are rarer."""
    if not substitutions:
        return None
    lang = language_code(language)
    if lang is None:
        return None
    diffs = sorted(zipf(a, lang) - zipf(b, lang) for a, b in substitutions)
    if not diffs:
        return None
    return {
        "mean": round(sum(diffs) / len(diffs), 3),
        "median": round(diffs[len(diffs) // 2], 3),
        "pairs": len(diffs),
        "rarer_a": sum(1 for d in diffs if d < 0),
        "rarer_b": sum(1 for d in diffs if d > 0),
    }
