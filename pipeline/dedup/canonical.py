"""Canonicalize stage: elect the canonical article of a cluster and flag spun and scraped copies.

Everything here is a function of the cluster's members and their verified relations, never of the
order they arrived in, so re-running it after any arrival gives the same answer.

- **spun**: across the rewrites aligned with another member (one-word swaps and short phrases put in
  other words), this member's words are consistently rarer (see ``rarity``): decided from any two
  copies, no original needed; or, with three or more versions, it deviates from the majority wording.
  Evidence: rates, the rarity shift, samples of swaps and phrases, and the member(s) it was judged
  against.
- **scraped**: against one of the most original members, in-body link texts are missing where they
  stood (found even when the words around the hole were swapped too), short spans are cut from running
  text, or the text shows orphaned punctuation where link text was cut ("establishing a ."), in a
  paragraph it shares with other versions; losses each short of its own threshold count together. A
  dropped byline is enough on its own only for a copy that was not reworded: a spinner's page carries
  its own template, so for a reworded copy the byline counts only beside other losses. Reordered clauses
  and phrases rewritten shorter are not losses. Evidence: the losses (link texts, spans, orphans), the
  swaps next to them, the member they were found against.
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

from rapidfuzz.distance import LCSseq, Levenshtein

from pipeline.dedup.rarity import rarity_shift
from pipeline.dedup.verify import MAX_SUB, MIN_SWAP_RATE, _word_swap, align, verify_articles
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
LINK_SLACK = 2  # words a region may lose besides the link texts cut in it (the comma, the "the" before)
MIN_LOST_AMID_SWAPS = 3  # a region where x still has words must lose this many more than it has to be a hole
MOVED_WITHIN = 100  # words: a span found this close in x (same paragraph) was moved by a reordered clause
BYLINE_MAX_SWAPS = 1  # above this many swaps against the reference a copy was reworded: its lost byline counts
# only beside other losses

ORPHANED = re.compile(
    r"\w[ \t]+[.,](?=\s|$)"  # "establishing a ."  "from , to"
    r"|\(\s*\)|\[\s*\]"  # "( )"
    r"|[\"“”]\s*[.,]?\s*[\"“”](?!\w)"  # 'prohibited from "."'
    r"|^\s*[,.;:]\s",  # a sentence that starts with its own lost subject: ", he said"
    re.M,
)


@lru_cache(maxsize=2048)
def _orphans(text: str) -> tuple[tuple[int, str], ...]:
    return tuple((m.start(), text[max(0, m.start() - 20) : m.end() + 10].replace("\n", " "))
                 for m in ORPHANED.finditer(text))


def orphaned_punctuation(text: str) -> tuple[str, ...]:
    """Places where punctuation stands next to text that was cut out, with a little context (cached:
    every re-decision of a cluster asks again for every member)."""
    return tuple(sample for _start, sample in _orphans(text))


def _orphans_in_shared_text(x: _Member, ref: _Member) -> tuple[str, ...]:
    """x's orphaned punctuation in paragraphs it shares with ref (three or more words verbatim): where a
    cut shows. A paragraph only x has (its own boilerplate, a list of tags) says nothing about cuts."""
    found = _orphans(x.article.text)
    if not found:
        return ()
    al = _cached_alignment(ref.article.text, x.article.text)
    paragraph = _token_segments(x.article.text)
    inside = [0] * (x.size + 1)
    for _s, _e, t, u in al.regions:
        inside[t] += 1
        inside[u] -= 1
    shared: Counter[int] = Counter()
    depth = 0
    for i in range(min(x.size, len(paragraph))):
        depth += inside[i]
        if depth == 0:
            shared[paragraph[i]] += 1
    starts = token_starts(x.article.text)
    kept = []
    for start, sample in found:
        i = min(max(0, bisect.bisect_right(starts, start) - 1), len(paragraph) - 1)
        if paragraph and shared[paragraph[i]] >= 3:
            kept.append(sample)
    return tuple(kept)


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

    def oriented(key: str) -> list[list[str]]:  # [the other's words, this one's]
        sample = v.evidence.get(key, [])
        return [[b, a] for a, b in sample] if x_is_a else sample

    return {"substitution_rate": v.substitution_rate, "swap_rate": _swap_rate(v), "rewrite_rate": _rewrite_rate(v),
            "rarity_shift": mean, "median_shift": median, "swaps": shift["pairs"], "rarer_here": rarer,
            "commoner_here": commoner, "sample": oriented("substitution_sample"),
            "phrase_sample": oriented("phrase_sample")}


def _swap_rate(v: PairVerdict) -> float:
    return float(v.evidence.get("swap_rate", 0.0))


def _rewrite_rate(v: PairVerdict) -> float:
    """Swaps and phrase rewrites per aligned word (verdicts stored before phrases were counted: swaps)."""
    return float(v.evidence.get("rewrite_rate", v.evidence.get("swap_rate", 0.0)))


def _rewrites(v: PairVerdict) -> int:
    return int(v.evidence.get("rewrites", v.evidence.get("swaps", 0)))


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
        if shift and shift["median"] >= 0 and shift["mean"] >= 0:  # its words are not the rarer ones: not a spin
            continue
        found[i] = {"swap_rate": round(rate, 4), "swaps": len(devs), "versions": len(whole),
                    "rarity_shift": shift["mean"] if shift else None, "decided_by": "consensus",
                    "against": sorted(members[j].article.url for j in whole if j != i),  # the majority's versions
                    "sample": [[b, a] for a, b in devs[:12]]}  # [the majority's word, this one's]
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
    if not any(_rewrite_rate(v) >= SPUN_MIN_RATE for (a, b), v in edges.items() if a in members and b in members):
        return {}  # no pair of members differs by word swaps: nothing can be spun
    spun = {i: ev for i, ev in _consensus_spun(ids, members).items() if not credit.get(i)}
    support = dict.fromkeys(ids, 0)
    for (a, b), v in edges.items():
        if a in support and b in support and v.related and _rewrite_rate(v) < SPUN_MIN_RATE / 3:
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
            if _rewrite_rate(v) < SPUN_MIN_RATE or _rewrites(v) < SPUN_MIN_PAIRS:
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
            if ev and (x not in spun or ev["rewrite_rate"] > spun[x].get("rewrite_rate", spun[x]["swap_rate"])):
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
    """When the verified relation shows no word of ref unmatched in x, skip the re-alignment."""
    found = _oriented(edges, ref.id, x.id)
    if found is None:
        return None
    v, ref_is_a = found
    side = "a" if ref_is_a else "b"
    if v.evidence.get(f"lost_{side}", 1) != 0 or v.evidence.get(f"unmatched_{side}", 1) != 0:
        return None
    return {
        "against": ref.article.url, "lost_share": 0.0, "links_lost": 0, "links_total": len(ref.article.links),
        "lost_links_sample": [], "links_lost_next_to_swaps": 0, "swaps_next_to_losses": [],
        "short_spans_lost": 0, "lost_spans_sample": [], "moved_spans": 0, "blocks_lost": 0,
        "swaps": int(v.evidence.get("swaps", 0)), "rewrites": _rewrites(v),
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

    Losses are located region by region (``verify.Alignment.regions``: the stretch between two equal
    runs where the texts differ). A region where ref has more words than x lost words of ref; when
    ref's link texts lying in it account for that surplus (give or take ``LINK_SLACK`` words, the
    punctuation-side words a cut takes along), those link texts were cut where they stood, even if
    the words around them were swapped as well: the remaining words of the region pair with x's as
    swaps, and the evidence names them. A region in which x has nothing at all is a lost span. Only
    holes *inside* running text count: a whole paragraph or list item gone is a dropped block (often
    boilerplate the copy never had). A span whose words turn up in a nearby region of x moved with a
    reordered clause: it is counted as moved, not lost.
    """
    al = _cached_alignment(ref.article.text, x.article.text)
    segment = _segments(ref.article, ref.size)
    rt, xt = ref.tokens, x.tokens
    # kept_before[i]: words of ref before i that lie in no region (x has them verbatim)
    differs = [0] * (ref.size + 1)
    for s, e, _t, _u in al.regions:
        differs[s] += 1
        differs[e] -= 1
    kept_before = [0] * (ref.size + 1)
    depth = 0
    for i in range(ref.size):
        depth += differs[i]
        kept_before[i + 1] = kept_before[i] + (depth == 0)

    def in_text(s: int, e: int, region: tuple[int, int], around: int = 0) -> bool:
        """The hole ref[s:e] lies inside a paragraph (or line) of which x kept words: verbatim ones
        outside the regions, or ``around`` words x has in the hole's own region (ref[region[0]:region[1]])
        when that region does not take the whole paragraph."""
        if len(segment) < ref.size or s >= e:
            return False
        first = bisect.bisect_left(segment, segment[s])
        last = bisect.bisect_right(segment, segment[e - 1])
        if region[0] <= first and last <= region[1]:
            return False  # the whole paragraph is gone (x's words there belong elsewhere): a block
        return kept_before[last] - kept_before[first] + around >= 2

    regions = al.regions

    x_segment = _token_segments(x.article.text)

    def paragraph_of_x(i: int) -> int:
        return x_segment[min(i, len(x_segment) - 1)] if x_segment else 0

    def moved(s: int, e: int, group: Sequence[int]) -> bool:
        """Most words of ref[s:e], in order, stand where x has words to spare (a region of x longer than
        its counterpart) close to this place, in the same paragraph of x: a clause that moved."""
        near = regions[group[0]][2]
        words = rt[s:e]
        # the hole sits between x's words near - 1 and near: at the end of one paragraph or the start of one
        here = {paragraph_of_x(max(0, near - 1)), paragraph_of_x(near)}
        for j, (rs, re_, t, u) in enumerate(regions):
            if j in group or (u - t) - (re_ - rs) < 1 or min(abs(t - near), abs(u - near)) > MOVED_WITHIN:
                continue
            if paragraph_of_x(t) not in here and paragraph_of_x(u - 1) not in here:
                continue
            found = LCSseq.similarity(words, xt[t:u])  # words in order, gaps allowed
            # most of the words; or half of them where x has about as many words to spare (the clause was
            # spun after it moved: "he said" → "he stated"). A long insertion (a title, a boilerplate
            # block) is no landing place: a few words turn up in it by chance.
            spare = (u - t) - (re_ - rs)
            n = len(words)
            if (found * 3 >= 2 * n and spare <= 2 * n + 3) or (found * 2 >= n and n - 1 <= spare <= n + 3):
                return True
        return False

    # A link's words normally lie in one region. One of them can be matched by chance to a like word
    # of x ("sentenced to life [in] federal prison" cut before "in 2017"): the link then spans two
    # regions, and they are judged as one group.
    starts = [r[0] for r in regions]
    parent = list(range(len(regions)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    links = sorted(_link_token_ranges(ref.article))
    placed: list[tuple[int, int, str, int, int]] = []  # (start, end, text, words in regions, first region)
    for ls, le, text in links:
        j = max(0, bisect.bisect_right(starts, ls) - 1)
        covered, touched = 0, []
        while j < len(regions) and regions[j][0] < le:
            if regions[j][1] > ls:
                covered += min(regions[j][1], le) - max(regions[j][0], ls)
                touched.append(j)
            j += 1
        if not touched or (le - ls) - covered > (le - ls) // 3:
            continue  # (most of) the link text is in x word for word
        for j in touched[1:]:
            parent[root(j)] = root(touched[0])
        placed.append((ls, le, text, covered, touched[0]))
    groups: dict[int, list[int]] = {}
    for j in range(len(regions)):
        groups.setdefault(root(j), []).append(j)

    lost_links: list[str] = []
    next_to_swaps = 0
    swaps_near: list[list[str]] = []
    short: list[tuple[int, int]] = []
    blocks = moved_spans = 0
    for group in sorted(groups.values()):
        s, e = regions[group[0]][0], regions[group[-1]][1]
        ref_words = sum(regions[j][1] - regions[j][0] for j in group)
        x_words = sum(regions[j][3] - regions[j][2] for j in group)
        surplus = ref_words - x_words
        if surplus <= 0:
            continue  # every word of ref here has a counterpart in x: a rewrite, not a loss
        budget = surplus
        cut: list[tuple[int, int, str]] = []
        for ls, le, text, covered, first in placed:
            if root(first) == root(group[0]) and covered <= budget and in_text(ls, le, (s, e), x_words):
                cut.append((ls, le, text))
                budget -= covered
        if cut and budget <= LINK_SLACK and x_words <= 2 * MAX_SUB:
            if all(moved(ls, le, group) for ls, le, _text in cut):
                moved_spans += len(cut)
                continue
            lost_links.extend(text for _ls, _le, text in cut)
            gone = {i for ls, le, _text in cut for i in range(ls, le)}
            rest = [rt[i] for j in group for i in range(regions[j][0], regions[j][1]) if i not in gone]
            theirs = [xt[i] for j in group for i in range(regions[j][2], regions[j][3])]
            pairs = [[a, b] for a, b in zip(rest, theirs, strict=False) if a != b and _word_swap(a, b)]
            if pairs:
                next_to_swaps += len(cut)
                swaps_near.extend(pairs)
            continue
        if x_words and (surplus < x_words + MIN_LOST_AMID_SWAPS or x_words > MAX_SUB):
            # a phrase rewritten shorter ("keep an eye on" → "monitor"), a passage reworded: not a hole
            continue
        if surplus > 8:
            if s > 0 and e < ref.size:
                blocks += 1
            continue
        if surplus < 2 or not in_text(s, e, (s, e), x_words):
            continue  # one word is an edit; a whole paragraph is a block
        if moved(s, e, group):
            moved_spans += 1
            continue
        short.append((s, e))
    return {
        "against": ref.article.url,
        "lost_share": round(al.unmatched_a / max(1, ref.size), 4),
        "links_lost": len(lost_links),
        "links_total": len(links),
        "lost_links_sample": lost_links[:10],
        "links_lost_next_to_swaps": next_to_swaps,
        "swaps_next_to_losses": swaps_near[:10],
        "short_spans_lost": len(short),
        "lost_spans_sample": [" ".join(rt[s:e]) for s, e in short[:10]],
        "moved_spans": moved_spans,
        "blocks_lost": blocks,
        "swaps": len(al.swaps),
        "rewrites": len(al.swaps) + len(al.phrases),
        "byline_lost": bool(ref.article.byline) and not x.article.byline,
    }


def _rank(pool: list[int], sizes: Mapping[int, int], articles: Mapping[int, Article], credit: Mapping[int, int],
          self_canonical: Mapping[int, bool]) -> list[int]:
    """The pool from the most to the least canonical: whole versions before excerpts, then credit, a
    self-declared canonical, completeness, the earliest date, length, and the URL to break ties."""
    longest = max(sizes[i] for i in pool)
    return sorted(
        pool,
        key=lambda i: (
            sizes[i] < PARTIAL_BELOW * longest,  # an excerpt is never the canonical
            -credit[i],
            not self_canonical[i],
            sizes[i] < COMPLETE_WITHIN * longest,
            articles[i].published or "9999",
            -sizes[i],
            articles[i].url,
        ),
    )


def standing(articles: Mapping[int, Article], sizes: Mapping[int, int]) -> list[int]:
    """Every article from the most to the least canonical, flags aside (``decide`` ranks only unflagged ones):
    how a large cluster picks the panel it decides in full (``pipeline.dedup.panel``)."""
    ids = sorted(articles, key=lambda i: articles[i].url)
    members = {i: _Member(i, a, ()) for i, a in articles.items()}
    credit = _credit(ids, members)
    self_canonical = {i: _norm_url(a.canonical_url) == _norm_url(a.url) for i, a in articles.items()}
    return _rank(ids, sizes, articles, credit, self_canonical)


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

    sizes = {i: m.size for i, m in members.items()}

    def rank(pool: list[int]) -> list[int]:
        return _rank(pool, sizes, articles, credit, self_canonical)

    unspun = [i for i in ids if i not in spun] or ids
    references = rank(unspun)[:REFERENCES]

    scraped: dict[int, dict[str, Any]] = {}
    for x in ids:
        others = [r for r in references if r != x]
        orphans = (_orphans_in_shared_text(members[x], members[others[0]]) if others
                   else orphaned_punctuation(members[x].article.text))
        evidence: dict[str, Any] = {}
        reasons: list[str] = []
        # punctuation another version shares was in the source (spinning leaves punctuation alone)
        fewest_other_orphans = min(
            (len(orphaned_punctuation(members[r].article.text)) for r in ids if r != x), default=0
        )
        orphan_weight = len(orphans) / SCRAPED_MIN_ORPHANS if len(orphans) > fewest_other_orphans else 0.0
        if orphan_weight >= 1:
            reasons.append("orphaned_punctuation")
        if orphans:
            evidence["orphaned_punctuation"] = len(orphans)
            evidence["orphan_sample"] = list(orphans[:8])
        place = references.index(x) if x in references else len(references)
        for k, ref in enumerate(references):
            if ref == x:
                continue
            # holes in running text show which side lost words, whichever is ranked first; a missing
            # byline does not (templates differ): it counts only against a more original member
            lost = _nothing_lost(members[x], members[ref], edges) or _scraped_against(members[x], members[ref])
            found = []
            if lost["links_lost"] >= SCRAPED_MIN_LINKS_LOST:
                found.append("link_text_lost")
            if lost["short_spans_lost"] >= SCRAPED_MIN_SPANS:
                found.append("spans_lost")
            # losses each short of its own threshold still show scraping together: weighed against
            # the thresholds, they add up (one lost link text + two cut spans + one orphan, …)
            weight = (lost["links_lost"] / SCRAPED_MIN_LINKS_LOST + lost["short_spans_lost"] / SCRAPED_MIN_SPANS
                      + orphan_weight)
            if weight >= 1 and not found and not reasons:
                found.append("losses_agree")
                lost["loss_weight"] = round(weight, 2)
            if lost["byline_lost"] and k < place and SCRAPED_BYLINE_ALONE:
                # a copy that was reworded lost its byline with the rest of the page's template: not a
                # scraper's loss by itself, only beside losses that show scraping on their own
                reworded = x in spun or lost["rewrites"] > BYLINE_MAX_SWAPS
                if not reworded or found or reasons:
                    found.append("byline_lost")
                else:
                    lost["byline_lost_alone"] = "not counted: the copy was reworded and no other loss agrees"
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
