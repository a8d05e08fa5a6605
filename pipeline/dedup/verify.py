"""Verify stage: align two token sequences and say how the texts relate, with the evidence.

The alignment is rapidfuzz's Levenshtein opcodes over word tokens. From it:
- equal runs of three or more words are *anchors*: text the two share verbatim;
- short replace blocks (≤ 3 words a side) between anchors are *substitutions*: what a spinner does;
- deleted runs are *lost spans*: what a scraper drops (link texts, bylines, blocks);
- consecutive non-equal opcodes between two equal runs form one *region*: where the texts differ, with
  the swaps and the losses side by side (two cuts one matched word apart are one region: a lone word
  matched across a longer cut is not an anchor). A region with more words of a than of b lost words
  of a, even when the words around the hole were swapped too (Levenshtein often pairs a swapped
  neighbour with a cut link's first word); ``canonical`` locates the losses inside regions;
- a region of one to three words a side between verbatim runs is a *phrase rewrite* ("more than" →
  "in excess of"); with the swaps it makes the *rewrites* a spinner leaves, and the rarity of both
  sides says which one did the spinning.
A pair is related when the shorter text is mostly covered by anchors plus substitutions, and the two
share enough word 3-grams that distinct articles on one event (which share vocabulary and the odd
quoted sentence) stay apart.
"""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein

from pipeline.dedup.rarity import rarity_shift
from pipeline.records import Alignment, PairVerdict
from pipeline.text import trigram_set

MIN_JACCARD3 = 0.10  # distinct same-event articles stay below this in word 3-grams
MIN_COVERAGE = 0.80  # share of the shorter text explained by anchors + substitutions
MIN_ANCHORED = 0.40  # share of the shorter text inside verbatim anchors
STRONG_JACCARD3 = 0.20  # distinct articles on one event stay far below (dev max 0.04)
STRONG_ANCHORED = 0.50
MIN_RATIO = 0.10  # an excerpt shorter than this share of the original is not called one
FULL_RATIO = 0.60  # above this length ratio both texts are whole versions, not excerpt/original
MIN_SWAP_RATE = 0.006  # isolated one-word swaps per aligned word above which two texts were spun apart
MAX_SUB = 3  # a replace block this short (each side) is a substitution
SAMPLE = 12


def align(a: Sequence[str], b: Sequence[str]) -> Alignment:
    """Align two token lists and classify every opcode."""
    equal = anchored = sub_a = sub_b = 0
    subs: list[tuple[str, str]] = []
    swaps: list[tuple[str, str]] = []
    lost_a: list[tuple[int, int]] = []
    lost_b: list[tuple[int, int]] = []
    regions: list[tuple[int, int, int, int]] = []
    ops = Levenshtein.opcodes(a, b)
    for k, op in enumerate(ops):
        la, lb = op.src_end - op.src_start, op.dest_end - op.dest_start
        if op.tag != "equal":
            if regions and regions[-1][1] == op.src_start and regions[-1][3] == op.dest_start:
                regions[-1] = (regions[-1][0], op.src_end, regions[-1][2], op.dest_end)
            elif (regions and la > lb and op.src_start - regions[-1][1] == 1 == op.dest_start - regions[-1][3]
                  and regions[-1][1] - regions[-1][0] > regions[-1][3] - regions[-1][2]):
                # two cuts one matched word apart: Levenshtein paired a lone word ("in", "the") across one
                # longer cut, which is one loss
                regions[-1] = (regions[-1][0], op.src_end, regions[-1][2], op.dest_end)
            else:
                regions.append((op.src_start, op.src_end, op.dest_start, op.dest_end))
        if op.tag == "equal":
            equal += la
            if la >= 3:
                anchored += la
        elif op.tag == "replace" and la <= MAX_SUB and lb <= MAX_SUB:
            sub_a += la
            sub_b += lb
            pair = (" ".join(a[op.src_start : op.src_end]), " ".join(b[op.dest_start : op.dest_end]))
            subs.append(pair)
            if la == lb == 1 and _isolated(ops, k) and _word_swap(*pair):
                swaps.append(pair)
        else:
            if la:
                lost_a.append((op.src_start, op.src_end))
            if lb:
                lost_b.append((op.dest_start, op.dest_end))
    return Alignment(len(a), len(b), equal, anchored, sub_a, sub_b, subs, swaps, lost_a, lost_b, regions,
                     _phrases(a, b, regions))


def _phrases(a: Sequence[str], b: Sequence[str], regions: list[tuple[int, int, int, int]]) -> list[tuple[str, str]]:
    """Regions of one to three words a side (not a one-word swap), between verbatim runs of two or more
    words, whose words are all real words: one phrase put in other words."""
    out = []
    for k, (s, e, t, u) in enumerate(regions):
        la, lb = e - s, u - t
        if not (1 <= la <= MAX_SUB and 1 <= lb <= MAX_SUB) or la == lb == 1:
            continue
        before = s - regions[k - 1][1] if k else s
        after = (regions[k + 1][0] if k + 1 < len(regions) else len(a)) - e
        if before < 2 or after < 2:
            continue
        x, y = a[s:e], b[t:u]
        if all(w.isalpha() and (len(w) > 1 or w in _CLITICS) for w in (*x, *y)) and not set(x) & set(y):
            out.append((" ".join(x), " ".join(y)))
    return out


_CLITICS = frozenset("tsdm")  # "doesn't" → doesn t: a contraction rewritten ("does not") is a rewrite too


def _worded(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs whose words mean something on their own (no contraction pieces): what rarity can weigh."""
    return [(x, y) for x, y in pairs if not any(len(w) == 1 for w in (*x.split(), *y.split()))]


def _isolated(ops, k: int) -> bool:
    """A replace op with equal runs of two or more words on both sides: a clean substitution."""
    before = ops[k - 1] if k > 0 else None
    after = ops[k + 1] if k + 1 < len(ops) else None
    return all(
        o is not None and o.tag == "equal" and o.src_end - o.src_start >= 2 for o in (before, after)
    )


def _word_swap(x: str, y: str) -> bool:
    """Two different words, neither a piece of the other (a cut link inside a compound is not a synonym)."""
    return x.isalpha() and y.isalpha() and len(x) > 2 and len(y) > 2 and x not in y and y not in x


def jaccard3(a: Sequence[str], b: Sequence[str]) -> float:
    sa, sb = trigram_set(a), trigram_set(b)
    shared = len(sa & sb)
    union = len(sa) + len(sb) - shared
    return shared / union if union else 0.0


def verify(a_tokens: Sequence[str], b_tokens: Sequence[str], language: str | None = None) -> PairVerdict:
    """Relate two tokenized texts. Coverage and evidence are given for side a and side b."""
    if not a_tokens or not b_tokens:
        return PairVerdict("unrelated", 0.0, 0.0, 0.0, 0.0)
    j3 = jaccard3(a_tokens, b_tokens)
    n_a, n_b = len(a_tokens), len(b_tokens)
    ratio = min(n_a, n_b) / max(n_a, n_b)
    if j3 < MIN_JACCARD3 / 2 and ratio > 0.5:
        # not even half the 3-gram overlap a relation needs: skip the alignment
        return PairVerdict("unrelated", j3, 0.0, 0.0, 0.0, {"jaccard3": round(j3, 4)})
    al = align(a_tokens, b_tokens)
    cov_a = (al.equal + al.sub_a) / n_a
    cov_b = (al.equal + al.sub_b) / n_b
    anchored_small = al.anchored / min(n_a, n_b)
    cov_small = cov_a if n_a <= n_b else cov_b
    aligned = al.equal + len(al.substitutions)
    sub_rate = len(al.substitutions) / aligned if aligned else 0.0
    evidence = {
        "jaccard3": round(j3, 4),
        "length_ratio": round(ratio, 4),
        "anchored": round(anchored_small, 4),
        "substitutions": len(al.substitutions),
        "swaps": len(al.swaps),
        "swap_rate": round(len(al.swaps) / aligned, 4) if aligned else 0.0,
        "substitution_sample": [list(p) for p in al.swaps[:SAMPLE]],
        # swaps and phrase rewrites together: what a spinner changed, one place at a time
        "rewrites": len(al.swaps) + len(al.phrases),
        "rewrite_rate": round((len(al.swaps) + len(al.phrases)) / aligned, 4) if aligned else 0.0,
        "phrase_sample": [list(p) for p in al.phrases[:SAMPLE]],
        "rarity_shift": rarity_shift(al.swaps + _worded(al.phrases), language),
        "lost_a": len(al.lost_a),
        "lost_b": len(al.lost_b),
        "unmatched_a": al.unmatched_a,
        "unmatched_b": al.unmatched_b,
    }
    related = ratio >= MIN_RATIO and anchored_small >= MIN_ANCHORED and (
        (j3 >= MIN_JACCARD3 and cov_small >= MIN_COVERAGE)
        # moved or reordered blocks defeat a global alignment; this much verbatim 3-gram overlap does not
        or (j3 >= STRONG_JACCARD3 and anchored_small >= STRONG_ANCHORED)
    )
    if not related:
        relation = "unrelated"
    elif ratio < FULL_RATIO and max(cov_a, cov_b) - min(cov_a, cov_b) > 0.25:
        relation = "subset"
    elif sub_rate >= 0.02:
        relation = "spun"
    else:
        relation = "same"
    similarity = round(2 * al.equal / (n_a + n_b), 4)  # verbatim share: substitutions don't count
    return PairVerdict(relation, similarity, round(cov_a, 4), round(cov_b, 4), round(sub_rate, 4), evidence)


def spun_part(a_tokens: Sequence[str], b_tokens: Sequence[str]) -> bool:
    """The shorter text is covered by the longer through word swaps: a part of a spun version."""
    small, big = sorted((a_tokens, b_tokens), key=len)
    if not small or len(small) / len(big) < MIN_RATIO:
        return False
    al = align(small, big)
    aligned = al.equal + len(al.substitutions)
    return (al.equal + al.sub_a) / len(small) >= MIN_COVERAGE and bool(aligned) and (
        len(al.swaps) / aligned >= MIN_SWAP_RATE
    )


def flipped(v: PairVerdict) -> PairVerdict:
    """The same verdict seen from the other side (a and b swapped)."""
    ev = dict(v.evidence)
    shift = ev.get("rarity_shift")
    if shift:
        ev["rarity_shift"] = {**shift, "mean": -shift["mean"], "median": -shift["median"],
                              "rarer_a": shift["rarer_b"], "rarer_b": shift["rarer_a"]}
    for key in ("substitution_sample", "phrase_sample"):
        if key in ev:
            ev[key] = [[b, a] for a, b in ev[key]]
    ev["lost_a"], ev["lost_b"] = ev.get("lost_b", 0), ev.get("lost_a", 0)
    if "unmatched_a" in ev:
        ev["unmatched_a"], ev["unmatched_b"] = ev.get("unmatched_b", 0), ev["unmatched_a"]
    return PairVerdict(v.relation, v.similarity, v.coverage_b, v.coverage_a, v.substitution_rate, ev)


def verify_articles(x_url: str, x_tokens: Sequence[str], y_url: str, y_tokens: Sequence[str],
                    language: str | None = None) -> PairVerdict:
    """``verify`` with x as side a, computed in URL order so the alignment never depends on arrival order."""
    if x_url <= y_url:
        return verify(x_tokens, y_tokens, language)
    return flipped(verify(y_tokens, x_tokens, language))
