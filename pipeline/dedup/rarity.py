"""Which side of a substitution holds the rarer words: a spinner swaps common words for odd synonyms.

This is what lets a spun copy be told apart without the original: across the aligned substitutions of
two copies, the spun one's words are consistently rarer (wordfreq's Zipf scale).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from pipeline.dedup.wordlists import WordList, wordlist

# wordfreq is imported on first use: importing it costs a tenth of a second, and most pages have no word swaps
# to weigh. Its lists are read from compiled files (pipeline.dedup.wordlists), not loaded whole.


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


#: the frequency wordfreq gives a word it does not hold, with ``zipf_frequency``'s default minimum (Zipf 0)
_FLOOR = 1e-9


def _table_frequency(tokens: list[str], table: WordList) -> float:
    """wordfreq's frequency of a text it reads as ``tokens``, from the compiled list: several tokens combine as
    ``1/f = 1/f1 + 1/f2 + ...``; a token with digits is looked up with them as zeros and weighted by wordfreq's
    estimate of that digit sequence; a token the list does not hold gives the floor. The result is kept to
    three significant digits, as wordfreq's is."""
    from wordfreq.numbers import digit_freq, smash_numbers

    inverse = 0.0
    for token in tokens:
        key = smash_numbers(token)
        bucket = table.bucket(key)
        if bucket is None:
            return _FLOOR
        freq = 10 ** (-bucket / 100)
        if key != token:
            freq *= digit_freq(token)
        inverse += 1.0 / freq
    if not inverse:
        return _FLOOR
    freq = max(1.0 / inverse, _FLOOR)
    return round(freq, math.floor(-math.log(freq, 10)) + 3)


@lru_cache(maxsize=1)
def _cache_dir() -> Path:
    from pipeline.settings import get_settings

    return get_settings().cache_dir


@lru_cache(maxsize=200_000)
def zipf(word: str, lang: str) -> float:
    """wordfreq's ``zipf_frequency(word, lang)``, read from the language's compiled list
    (``pipeline.dedup.wordlists``) rather than from the whole list wordfreq would load; from wordfreq itself where
    the list cannot be compiled or the language's words are not split by wordfreq's regular expressions."""
    try:
        from wordfreq.language_info import get_language_info
        from wordfreq.tokens import lossy_tokenize

        table = wordlist(lang, _cache_dir()) if get_language_info(lang)["tokenizer"] == "regex" else None
        if table is not None:
            return round(math.log(_table_frequency(lossy_tokenize(word, lang), table), 10) + 9, 2)
        from wordfreq import zipf_frequency

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
