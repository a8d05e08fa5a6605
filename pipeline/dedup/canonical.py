"""Canonicalize stage: elect the canonical article of a cluster and flag spun and scraped copies.

Everything here is a function of the cluster's members and their verified relations, never of the
order they arrived in, so re-running it after any arrival gives the same answer.

- **spun**: across aligned one-word substitutions with another member, this member's words are
  consistently rarer (see ``rarity``): decided from any two copies, no original needed.
- **scraped**: against a fuller member, in-body link texts or short spans are missing, or the text
  itself shows orphaned punctuation where link text was cut ("establishing a ."), or the byline is gone.
- **canonical**: among unflagged members that are whole versions (not excerpts: at least half the longest),
  the one other members credit (rel=canonical, attribution links), then one that declares itself
  canonical, then the most complete (within 10% of the longest), then the earliest published date.
  Credit outranks a few percent of length because extraction of an original page is often noisier
  than of the copies lifted from it.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from rapidfuzz.distance import Levenshtein

from pipeline.dedup.rarity import rarity_shift
from pipeline.dedup.verify import MIN_SWAP_RATE, _word_swap, align, verify_articles
from pipeline.records import Alignment, Article, ClusterDecision, MemberDecision, PairVerdict
from pipeline.text import token_starts, tokenize

SPUN_MIN_PAIRS = 3
SPUN_MAX_SHIFT = -0.25  # mean Zipf difference (this − other) at or below which this side is spun
SPUN_MIN_RATE = MIN_SWAP_RATE  # isolated one-word swaps per aligned word (clean copies stay under 0.005)
SPUN_MIN_RARER_SHARE = 0.6  # share of swaps where this side holds the rarer word
SCRAPED_MIN_ORPHANS = 3
SCRAPED_MIN_LINKS_LOST = 2
SCRAPED_MIN_SPANS = 5
COMPLETE_WITHIN = 0.90
PARTIAL_BELOW = 0.50  # shorter than this share of the longest member: a partial copy
SCRAPED_BYLINE_ALONE = True  # a byline dropped by an unspun copy is what a scraper leaves
REFERENCES = 3  # scraped losses are looked for against this many of the most original members

ORPHANED = re.compile(
    r"\w[ \t]+[.,](?=\s|$)"  # "establishing a ."  "from , to"
    r"|\(\s*\)|\[\s*\]"  # "( )"
    r"|[\"“”]\s*[.,]?\s*[\"“”](?!\w)"  # 'prohibited from "."'
    r"|^\s*[,.;:]\s",  # a sentence that starts with its own lost subject: ", he said"
    re.M,
)


@lru_cache(maxsize=2048)
def orphaned_punctuation(text: str) -> tuple[str, ...]:
    """Places where punctuation stands next to text that was cut out, with a little context (cached:
    every re-decision of a cluster asks again for every member)."""
    return tuple(text[max(0, m.start() - 20) : m.end() + 10].replace("\n", " ") for m in ORPHANED.finditer(text))


def _norm_url(url: str | None) -> str:
    if not url:
        return ""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").removeprefix("www.")
    return f"{host}{parts.path.rstrip('/')}"


@dataclass(slots=True)
class _Member:
    id: int
    article: Article
    tokens: Sequence[str]

    @property
    def size(self) -> int:
        return len(self.tokens)


def _oriented(edges: Mapping[tuple[int, int], PairVerdict], x: int, y: int) -> tuple[PairVerdict, bool] | None:
    """The verdict of (x, y) and whether x is its side a."""
    if (x, y) in edges:
        return edges[(x, y)], True
    if (y, x) in edges:
        return edges[(y, x)], False
    return None


def _spun_against(v: PairVerdict, x_is_a: bool, *, by_rarity: bool) -> dict[str, Any] | None:
    shift = v.evidence.get("rarity_shift") or {"mean": 0.0, "median": 0.0, "pairs": 0, "rarer_a": 0, "rarer_b": 0}
    median = shift["median"] if x_is_a else -shift["median"]
    rarer, commoner = (shift["rarer_a"], shift["rarer_b"]) if x_is_a else (shift["rarer_b"], shift["rarer_a"])
    if by_rarity and (
        shift["pairs"] < SPUN_MIN_PAIRS or median > SPUN_MAX_SHIFT or rarer < SPUN_MIN_RARER_SHARE * shift["pairs"]
    ):
        return None
    mean = shift["mean"] if x_is_a else -shift["mean"]
    sample = v.evidence.get("substitution_sample", [])
    pairs = [[b, a] for a, b in sample] if x_is_a else sample
    return {"substitution_rate": v.substitution_rate, "swap_rate": _swap_rate(v), "rarity_shift": mean,
            "median_shift": median, "swaps": shift["pairs"], "rarer_here": rarer, "commoner_here": commoner,
            "sample": pairs}


def _swap_rate(v: PairVerdict) -> float:
    return float(v.evidence.get("swap_rate", 0.0))


def _consensus_spun(ids: list[int], members: Mapping[int, _Member]) -> dict[int, dict[str, Any]]:
    """With three or more whole versions, the original wording at each position is what most say.

    Every version is aligned to the longest; at each position where three or more versions have a
    word and a strict majority agree, a version with another real word there deviates. A spinner
    swaps a different random subset of words in each copy, so the majority keeps the original.
    """
    longest = max(members[i].size for i in ids)
    whole = [i for i in ids if members[i].size >= PARTIAL_BELOW * longest]
    if len(whole) < 3:
        return {}
    pivot = max(whole, key=lambda i: (members[i].size, members[i].article.url))
    base = members[pivot].tokens
    columns: list[dict[int, str]] = [{pivot: w} for w in base]
    for i in whole:
        if i == pivot:
            continue
        other = members[i].tokens
        for op in _cached_opcodes(members[pivot].article.text, members[i].article.text):
            width = op.src_end - op.src_start
            if op.tag == "equal" or (op.tag == "replace" and width == op.dest_end - op.dest_start):
                for k in range(width):
                    columns[op.src_start + k][i] = other[op.dest_start + k]
    majority: list[str | None] = []
    for column in columns:
        word, votes = Counter(column.values()).most_common(1)[0] if len(column) >= 3 else (None, 0)
        majority.append(word if votes * 2 > len(column) else None)

    def anchored(i: int, k: int) -> bool:
        """Version i has a word at position k that another version shares."""
        if not 0 <= k < len(columns) or i not in columns[k]:
            return False
        word = columns[k][i]
        return any(w == word for j, w in columns[k].items() if j != i)

    deviations: dict[int, list[tuple[str, str]]] = {i: [] for i in whole}
    covered = dict.fromkeys(whole, 0)
    for k, column in enumerate(columns):
        word = majority[k]
        if word is None:
            continue
        for i, w in column.items():
            covered[i] += 1
            # an isolated one-word difference, the words around it as the majority has them
            if w != word and _word_swap(w, word) and anchored(i, k - 1) and anchored(i, k + 1):
                deviations[i].append((w, word))
    found: dict[int, dict[str, Any]] = {}
    lang = next((members[i].article.language for i in whole if members[i].article.language), None)
    for i, devs in deviations.items():
        rate = len(devs) / covered[i] if covered[i] else 0.0
        if len(devs) < SPUN_MIN_PAIRS or rate < SPUN_MIN_RATE:
            continue
        shift = rarity_shift(devs, lang)
        if shift and shift["median"] >= 0:  # its words are not the rarer ones: another version, not a spin
            continue
        found[i] = {"swap_rate": round(rate, 4), "swaps": len(devs), "versions": len(whole),
                    "rarity_shift": shift["mean"] if shift else None, "decided_by": "consensus",
                    "sample": [list(p) for p in devs[:12]]}
    return found


def _spun_members(
    ids: list[int],
    edges: Mapping[tuple[int, int], PairVerdict],
    members: Mapping[int, _Member],
    credit: Mapping[int, int],
) -> dict[int, dict[str, Any]]:
    """Members that carry word swaps against another member, and are the side that did the swapping.

    Which side swapped is read from the words themselves: a spinner's synonyms are rarer than the
    words they replace (``rarity``). When rarity does not say, the side that other members agree
    with (few swaps against it) is the original wording.
    """
    # a version other members credit is their source: copies outvoting it means they share an older text
    if not any(_swap_rate(v) >= SPUN_MIN_RATE for (a, b), v in edges.items() if a in members and b in members):
        return {}  # no pair of members differs by word swaps: nothing can be spun
    spun = {i: ev for i, ev in _consensus_spun(ids, members).items() if not credit.get(i)}
    support = dict.fromkeys(ids, 0)
    for (a, b), v in edges.items():
        if a in support and b in support and v.related and _swap_rate(v) < SPUN_MIN_RATE / 3:
            support[a] += 1
            support[b] += 1
    for x in ids:
        if x in spun:
            continue
        for y in ids:
            if y == x:
                continue
            found = _oriented(edges, x, y)
            if found is None:
                continue
            v, x_is_a = found
            if _swap_rate(v) < SPUN_MIN_RATE or v.evidence.get("swaps", 0) < SPUN_MIN_PAIRS:
                continue
            ev = _spun_against(v, x_is_a, by_rarity=True)
            if ev:
                ev["decided_by"] = "rarity"
            elif support[y] > support[x]:
                ev = _spun_against(v, x_is_a, by_rarity=False)
                if ev["median_shift"] > -SPUN_MAX_SHIFT:  # rarity points the other way: leave it
                    ev = None
                else:
                    ev["decided_by"] = "consensus"
            if ev and (x not in spun or ev["swap_rate"] > spun[x]["swap_rate"]):
                spun[x] = {**ev, "against": members[y].article.url,
                           "support": {"here": support[x], "there": support[y]}}
    return spun


def _credit(ids: list[int], members: Mapping[int, _Member]) -> dict[int, int]:
    """How often other members point at each member: rel=canonical and attribution links.

    A link names a member by the URL it was fetched from or, failing that, by the canonical URL the
    member declares for itself (a page read from a WARC or a local file is known by its rel=canonical).
    """
    own = {_norm_url(m.article.url): i for i, m in members.items()}
    declared: dict[str, set[int]] = {}
    for i, m in members.items():
        if m.article.canonical_url:
            declared.setdefault(_norm_url(m.article.canonical_url), set()).add(i)
    credit = dict.fromkeys(ids, 0)
    for i, m in members.items():
        for target in {_norm_url(t) for t in (m.article.canonical_url, *m.article.attribution_urls) if t}:
            named = {own[target]} if target in own else declared.get(target, set())
            for j in named - {i}:
                credit[j] += 1
    return credit


def _link_token_ranges(article: Article) -> list[tuple[int, int, str]]:
    starts = token_starts(article.text)
    if not starts:
        return []
    ranges = []
    for link in article.links:
        n = len(tokenize(link.text))
        if not n:
            continue
        i = bisect.bisect_left(starts, link.start)
        ranges.append((i, i + n, link.text))
    return ranges


def _segments(article: Article, n_tokens: int) -> Sequence[int]:
    """Segment (paragraph, list item or line) index of every token of the article text."""
    return _token_segments(article.text)[:n_tokens]


@lru_cache(maxsize=1024)
def _token_segments(text: str) -> tuple[int, ...]:
    """Cached per text: a cluster's fullest member is the reference of every comparison in it."""
    breaks = [m.start() for m in re.finditer(r"\n", text)]
    return tuple(map(bisect.bisect_left, itertools.repeat(breaks), token_starts(text)))


@lru_cache(maxsize=4096)
def _cached_opcodes(base_text: str, other_text: str) -> list:
    return list(Levenshtein.opcodes(tokenize(base_text), tokenize(other_text)))


@lru_cache(maxsize=4096)
def _cached_alignment(ref_text: str, x_text: str) -> Alignment:
    """Alignments are the costly part of a re-decision and a cluster is re-decided on every arrival."""
    return align(tokenize(ref_text), tokenize(x_text))


def _nothing_lost(
    x: _Member, ref: _Member, edges: Mapping[tuple[int, int], PairVerdict]
) -> dict[str, Any] | None:
    """When the verified relation shows no span of ref missing from x, skip the re-alignment."""
    found = _oriented(edges, ref.id, x.id)
    if found is None:
        return None
    v, ref_is_a = found
    if v.evidence.get("lost_a" if ref_is_a else "lost_b", 1) != 0:
        return None
    return {
        "against": ref.article.url, "lost_share": 0.0, "links_lost": 0, "links_total": len(ref.article.links),
        "lost_links_sample": [], "short_spans_lost": 0, "lost_spans_sample": [], "blocks_lost": 0,
        "byline_lost": bool(ref.article.byline) and not x.article.byline,
    }


def _scraped_against(x: _Member, ref: _Member) -> dict[str, Any]:
    return dict(_scraped_between(x.article, ref.article))


@lru_cache(maxsize=4096)
def _scraped_between(x_article: Article, ref_article: Article) -> tuple[tuple[str, Any], ...]:
    x = _Member(0, x_article, tokenize(x_article.text))
    ref = _Member(0, ref_article, tokenize(ref_article.text))
    return tuple(_compare_losses(x, ref).items())


def _compare_losses(x: _Member, ref: _Member) -> dict[str, Any]:
    """What x lost compared with the fuller ref: link texts, short spans, blocks, byline.

    Only holes *inside* running text count as scraping: a span whose segment lost nothing else.
    A whole paragraph or list item gone is a dropped block (often boilerplate the copy never had).
    """
    al = _cached_alignment(ref.article.text, x.article.text)
    segment = _segments(ref.article, ref.size)

    def in_text(s: int, e: int) -> bool:
        if len(segment) < ref.size or s >= e:
            return False
        return (s > 0 and segment[s - 1] == segment[s]) or (e < ref.size and segment[e - 1] == segment[e])

    lost = [(s, e) for s, e in al.lost_a]  # spans of ref missing from x
    lost_tokens = [False] * ref.size
    for s, e in lost:
        for i in range(s, e):
            lost_tokens[i] = True
    span_len = [0] * ref.size
    for s, e in lost:
        for i in range(s, e):
            span_len[i] = e - s
    links = _link_token_ranges(ref.article)
    # a scraper leaves a hole exactly where the link text stood, the words around it intact; a link
    # inside a dropped block (related stories, boilerplate) says nothing about scraping
    links_lost = [
        text for s, e, text in links
        if e <= ref.size and all(lost_tokens[s:e]) and span_len[s] <= (e - s) + 2 and in_text(s, e)
    ]
    short = [(s, e) for s, e in lost if e - s <= 8 and in_text(s, e)]
    blocks = [(s, e) for s, e in lost if e - s > 8 and s > 0 and e < ref.size]
    return {
        "against": ref.article.url,
        "lost_share": round(sum(e - s for s, e in lost) / max(1, ref.size), 4),
        "links_lost": len(links_lost),
        "links_total": len(links),
        "lost_links_sample": links_lost[:10],
        "short_spans_lost": len(short),
        "lost_spans_sample": [" ".join(ref.tokens[s:e]) for s, e in short[:10]],
        "blocks_lost": len(blocks),
        "byline_lost": bool(ref.article.byline) and not x.article.byline,
    }


def decide(
    articles: Mapping[int, Article],
    edges: Mapping[tuple[int, int], PairVerdict],
    tokens: Mapping[int, Sequence[str]] | None = None,
) -> ClusterDecision:
    """Elect the canonical and flag every member of one cluster."""
    members = {
        i: _Member(i, a, tokens[i] if tokens and i in tokens else tokenize(a.text)) for i, a in articles.items()
    }
    ids = sorted(members, key=lambda i: members[i].article.url)

    credit = _credit(ids, members)

    spun = _spun_members(ids, edges, members, credit)

    self_canonical = {i: _norm_url(m.article.canonical_url) == _norm_url(m.article.url) for i, m in members.items()}

    def rank(pool: list[int]) -> list[int]:
        longest = max(members[i].size for i in pool)
        return sorted(
            pool,
            key=lambda i: (
                members[i].size < PARTIAL_BELOW * longest,  # an excerpt is never the canonical
                -credit[i],
                not self_canonical[i],
                members[i].size < COMPLETE_WITHIN * longest,
                members[i].article.published or "9999",
                -members[i].size,
                members[i].article.url,
            ),
        )

    unspun = [i for i in ids if i not in spun] or ids
    references = rank(unspun)[:REFERENCES]

    scraped: dict[int, dict[str, Any]] = {}
    for x in ids:
        orphans = orphaned_punctuation(members[x].article.text)
        evidence: dict[str, Any] = {}
        reasons: list[str] = []
        fewest_ref_orphans = min(
            (len(orphaned_punctuation(members[r].article.text)) for r in references if r != x), default=0
        )
        if len(orphans) >= SCRAPED_MIN_ORPHANS and len(orphans) > fewest_ref_orphans:
            reasons.append("orphaned_punctuation")
            evidence["orphaned_punctuation"] = len(orphans)
            evidence["orphan_sample"] = list(orphans[:8])
        for ref in references:
            if ref == x:  # only a more original member can show what x lost
                break
            lost = _nothing_lost(members[x], members[ref], edges) or _scraped_against(members[x], members[ref])
            found = []
            if lost["links_lost"] >= SCRAPED_MIN_LINKS_LOST:
                found.append("link_text_lost")
            if lost["short_spans_lost"] >= SCRAPED_MIN_SPANS:
                found.append("spans_lost")
            if lost["byline_lost"] and x not in spun and SCRAPED_BYLINE_ALONE:
                found.append("byline_lost")
            if not members[x].article.attribution and members[ref].article.attribution:
                lost["attribution_lost"] = True
            if found or "against" not in evidence:
                evidence.update(lost)
            if found:
                reasons.extend(found)
                break
        if reasons:
            scraped[x] = {"reasons": reasons, **evidence}

    pool = [i for i in ids if i not in spun and i not in scraped] or unspun
    canonical = rank(pool)[0]
    why = []
    if credit[canonical]:
        why.append(f"credited by {credit[canonical]} member(s)")
    why.append(f"{members[canonical].size} words")
    if members[canonical].article.published:
        why.append(f"published {members[canonical].article.published}")

    decisions = []
    for i in ids:
        flags: list[str] = []
        evidence: dict[str, Any] = {}
        if i in spun:
            flags.append("spun")
            evidence["spun"] = spun[i]
        if i in scraped:
            flags.append("scraped")
            evidence["scraped"] = scraped[i]
        if i == canonical:
            similarity = 1.0
            evidence["canonical"] = {"reason": ", ".join(why)}
        else:
            found = _oriented(edges, i, canonical)
            v = found[0] if found else verify_articles(
                members[i].article.url, members[i].tokens, members[canonical].article.url,
                members[canonical].tokens, members[i].article.language)
            similarity = v.similarity
            evidence["relation"] = {"to_canonical": v.relation, "similarity": v.similarity,
                                    "jaccard3": v.evidence.get("jaccard3")}
        decisions.append(MemberDecision(i, i == canonical, tuple(flags), similarity, evidence))
    return ClusterDecision(canonical, tuple(decisions), ", ".join(why))
