"""The word-level diff of one cluster member against its canonical, marked the way the detectors read it.

``word_diff(canonical, member)`` aligns the two texts word by word (rapidfuzz Levenshtein opcodes over
``pipeline.text.tokenize`` tokens, as ``pipeline.dedup.verify.align`` does) and maps every opcode back to
character ranges of the original texts (``token_starts``), so what is shown is the stored text itself:

- a short replace block (at most ``verify.MAX_SUB`` words a side) is a *substitution pair*: marked on both
  sides with one pair number; an isolated one-word swap between real words (what the spun detector counts)
  is a ``swap``, any other short replacement a ``changed`` pair;
- canonical words missing from the member are *holes* in the member's text, at the place they stood. A
  hole is split along the canonical's in-body links (stored in its meta as text, href and start): link
  text is ``lost-link``, other runs are ``lost-span`` (up to 8 words) or ``lost-block`` (more);
- member words the canonical does not have are ``added``;
- orphaned punctuation (``pipeline.dedup.canonical.ORPHANED``: "establishing a .") is marked on each side;
- lines holding an attribution line or the byline (the article's meta) are marked as such.

``render_side`` gives one side as HTML (the side-by-side view), ``render_inline`` the member's text with
the canonical's words shown in place (the narrow view). Every piece of stored text goes through
``markupsafe.escape``: a page holding ``<script>`` shows it as text. The diff is computed for one member at
a time (the one shown), in time linear in the texts plus the alignment.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape
from rapidfuzz.distance import Levenshtein

from pipeline.dedup.canonical import ORPHANED
from pipeline.dedup.verify import MAX_SUB, _word_swap
from pipeline.text import token_starts, tokenize

#: A run of lost words longer than this is a block (a paragraph or more), as ``canonical._compare_losses`` has it.
SPAN_WORDS = 8
_WORD = re.compile(r"\w+", re.UNICODE)
#: Lines up to this long that hold the byline are byline lines (longer ones merely mention the author).
BYLINE_LINE = 160


@dataclass(frozen=True, slots=True)
class DiffText:
    """One side's stored text and what its meta says about it."""

    text: str
    links: tuple[tuple[str, str, int], ...] = ()  # (link text, href, char start in text)
    attribution: tuple[str, ...] = ()
    byline: str | None = None

    @classmethod
    def from_row(cls, text: str, meta: dict | None, byline: str | None) -> DiffText:
        """From an article's stored text, meta (``Article.meta()``) and byline column."""
        meta = meta or {}
        links = tuple((str(t), str(h), int(s)) for t, h, s, *_ in meta.get("links") or [] if t)
        return cls(text or "", links, tuple(str(a) for a in meta.get("attribution") or []), byline)


@dataclass(frozen=True, slots=True)
class Mark:
    """A marked character range of one side's text."""

    start: int
    end: int
    kind: str  # swap | changed | lost-link | lost-span | lost-block | added | orphan
    pair: int | None = None  # substitution pairs: the same number on both sides
    other: str = ""  # the other side's words (pairs) or the link target (lost links)


@dataclass(frozen=True, slots=True)
class Hole:
    """Canonical text missing from the member, at the place in the member's text where it stood."""

    at: int
    kind: str  # lost-link | lost-span | lost-block
    text: str  # the canonical's text, verbatim
    href: str = ""
    words: int = 0


@dataclass(slots=True)
class Side:
    text: str
    marks: list[Mark] = field(default_factory=list)
    holes: list[Hole] = field(default_factory=list)
    lines: dict[int, str] = field(default_factory=dict)  # line start offset → attribution | byline


@dataclass(slots=True)
class WordDiff:
    canonical: Side
    member: Side
    pairs: list[tuple[int, str, str, str]]  # (pair number, kind, canonical words, member words)
    counts: Counter[str]
    aligned: bool = True  # False when the texts could not be tokenized consistently (then nothing is marked)

    @property
    def swap_summary(self) -> list[tuple[str, str, int]]:
        """(canonical word, member word, times) of the swaps, most frequent first."""
        c = Counter((a, b) for _, kind, a, b in self.pairs if kind == "swap")
        return [(a, b, n) for (a, b), n in c.most_common()]


def _spans(text: str) -> tuple[tuple[str, ...], list[tuple[int, int]]] | None:
    """The tokens of ``text`` and each token's character range in it (None if the two disagree)."""
    tokens = tokenize(text)
    starts = token_starts(text)
    if len(tokens) != len(starts):
        return None
    matches = [m.span() for m in _WORD.finditer(text)]
    if len(matches) == len(tokens):  # one token per word (no unspaced script): the words' own ranges
        return tokens, matches
    spans = []
    for tok, start in zip(tokens, starts, strict=True):
        m = _WORD.match(text, start)
        end = min(m.end(), start + len(tok)) if m else start + len(tok)
        spans.append((start, max(end, start + 1)))
    return tokens, spans


def _link_ranges(links: Iterable[tuple[str, str, int]], starts: Sequence[int]) -> list[tuple[int, int, str]]:
    """Token ranges of the in-body links (the way the canonicalizer finds them)."""
    out = []
    for text, href, start in links:
        n = len(tokenize(text))
        if n:
            i = bisect.bisect_left(starts, start)
            out.append((i, i + n, href))
    return out


def _line_kinds(d: DiffText) -> dict[int, str]:
    kinds: dict[int, str] = {}
    attribution = [a.strip() for a in d.attribution if a.strip()]
    byline = (d.byline or "").strip()
    pos = 0
    for line in d.text.split("\n"):
        stripped = line.strip()
        if stripped:
            if any(a in stripped or (len(stripped) >= 20 and stripped in a) for a in attribution):
                kinds[pos] = "attribution"
            elif byline and byline in stripped and len(stripped) <= BYLINE_LINE:
                kinds[pos] = "byline"
        pos += len(line) + 1
    return kinds


def _orphans(text: str) -> list[Mark]:
    out = []
    for m in ORPHANED.finditer(text):
        # the pattern starts on the word before the punctuation: mark the punctuation (and the gap) only
        start = m.start() + 1 if m.group()[:1].isalnum() or m.group()[:1] == "_" else m.start()
        out.append(Mark(start, max(m.end(), start + 1), "orphan"))
    return out


def word_diff(canonical: DiffText, member: DiffText) -> WordDiff:
    """Align the member against the canonical and mark both texts (see the module docstring)."""
    a_side = Side(canonical.text, lines=_line_kinds(canonical))
    b_side = Side(member.text, lines=_line_kinds(member))
    counts: Counter[str] = Counter()
    pairs: list[tuple[int, str, str, str]] = []
    a_tok, b_tok = _spans(canonical.text), _spans(member.text)
    if a_tok is None or b_tok is None:
        return WordDiff(a_side, b_side, pairs, counts, aligned=False)
    a_words, a_spans = a_tok
    b_words, b_spans = b_tok
    links = _link_ranges(canonical.links, [s for s, _ in a_spans])
    link_of = {}
    for s, e, href in links:
        for i in range(s, min(e, len(a_words))):
            link_of.setdefault(i, (s, href))
    ops = Levenshtein.opcodes(a_words, b_words)

    def a_text(s: int, e: int) -> tuple[int, int]:
        return a_spans[s][0], a_spans[e - 1][1]

    def b_text(s: int, e: int) -> tuple[int, int]:
        return b_spans[s][0], b_spans[e - 1][1]

    def hole_at(k: int) -> int:
        """Where canonical words missing before member token k stood: right after the word before."""
        if not b_spans:
            return 0
        return b_spans[k - 1][1] if k > 0 else b_spans[0][0]

    def lose(s: int, e: int, k: int) -> None:
        """Canonical tokens [s, e) missing from the member before its token k: holes split along the links they
        held, each where it stood: right after the member's word before, or, for a run that began a line in the
        canonical, at the start of the member's line where that line starts there too."""
        i = s
        while i < e:
            link = link_of.get(i)
            j = i + 1
            while j < e and link_of.get(j) == link:
                j += 1
            if link is not None:
                kind, href = "lost-link", link[1]
            else:
                kind, href = ("lost-span" if j - i <= SPAN_WORDS else "lost-block"), ""
            cs, ce = a_text(i, j)
            at = hole_at(k)
            if "\n" in canonical.text[a_spans[i - 1][1] if i else 0:cs] and k < len(b_spans):
                line = member.text.rfind("\n", b_spans[k - 1][1] if k else 0, b_spans[k][0])
                at = line + 1 if line >= 0 else (b_spans[k][0] if k == 0 else at)
            a_side.marks.append(Mark(cs, ce, kind, other=href))
            b_side.holes.append(Hole(at, kind, canonical.text[cs:ce], href, j - i))
            counts[kind] += 1
            i = j

    for k, op in enumerate(ops):
        la, lb = op.src_end - op.src_start, op.dest_end - op.dest_start
        if op.tag == "equal":
            continue
        if op.tag == "replace" and la <= MAX_SUB and lb <= MAX_SUB:
            (a0, a1), (b0, b1) = a_text(op.src_start, op.src_end), b_text(op.dest_start, op.dest_end)
            aw, bw = canonical.text[a0:a1], member.text[b0:b1]
            isolated = all(o is not None and o.tag == "equal" and o.src_end - o.src_start >= 2
                           for o in (ops[k - 1] if k else None, ops[k + 1] if k + 1 < len(ops) else None))
            kind = "swap" if la == lb == 1 and isolated and _word_swap(a_words[op.src_start],
                                                                         b_words[op.dest_start]) else "changed"
            n = len(pairs) + 1
            pairs.append((n, kind, aw, bw))
            a_side.marks.append(Mark(a0, a1, kind, n, bw))
            b_side.marks.append(Mark(b0, b1, kind, n, aw))
            counts[kind] += 1
            continue
        if la:  # a deletion, or a long replacement: the canonical's words are lost where the member's stand
            lose(op.src_start, op.src_end, op.dest_start)
        if lb:
            b0, b1 = b_text(op.dest_start, op.dest_end)
            b_side.marks.append(Mark(b0, b1, "added"))
            counts["added"] += 1
    for side, key in ((a_side, "orphan_canonical"), (b_side, "orphan")):
        orphans = _orphans(side.text)
        counts[key] = len(orphans)
        side.marks.extend(orphans)
        side.marks.sort(key=lambda m: (m.start, m.end))
    return WordDiff(a_side, b_side, pairs, counts)


# --- rendering -------------------------------------------------------------------------------------------------------
_LABELS = {"swap": "swapped word", "changed": "changed words", "lost-link": "link text lost",
           "lost-span": "words lost", "lost-block": "block lost", "added": "added", "orphan": "orphaned punctuation"}
_LINE_LABELS = {"attribution": "attribution", "byline": "byline"}
#: Which mark wins the element when several cover one piece of text (orphan punctuation is added as a class).
_PRIMARY = ("swap", "changed", "lost-link", "lost-span", "lost-block", "added")


def _hole_html(hole: Hole) -> str:
    title = _LABELS[hole.kind] + (f" (link to {hole.href})" if hole.href else "")
    tag = {"lost-link": "link", "lost-span": "cut", "lost-block": "block"}[hole.kind]
    return (f'<del class="hole {hole.kind}" title="{escape(title)}"><span class="tag">{tag}</span> '
            f"{escape(hole.text)}</del>")


def _open(marks: list[Mark], side: str, inline: bool, first: bool) -> tuple[str, str]:
    """The opening and closing tags for a piece of text covered by ``marks``."""
    primary = next((m for k in _PRIMARY for m in marks if m.kind == k), None)
    classes = [m.kind for m in marks if m is primary or m.kind == "orphan"]
    cls = " ".join(dict.fromkeys(classes))
    if primary is None:  # orphaned punctuation alone
        return f'<mark class="{cls}" title="orphaned punctuation">', "</mark>"
    if primary.kind in ("swap", "changed"):
        label = f"{_LABELS[primary.kind]} {primary.pair}: "
        if inline:  # the member's text: the canonical's words, struck, then the member's
            before = (f'<del class="pair-a {primary.kind}" title="canonical">{escape(primary.other)}</del>'
                      if first else "")
            return (f'{before}<ins class="{cls} pair-b" data-pair="{primary.pair}" '
                    f'title="{escape(label + primary.other)} → this">', "</ins>")
        title = f"{label}{'canonical has' if side == 'member' else 'copy has'} “{primary.other}”"
        return (f'<mark class="{cls}" data-pair="{primary.pair}" id="{side[0]}{primary.pair}" '
                f'title="{escape(title)}">', "</mark>")
    if primary.kind == "added":
        return f'<ins class="{cls}" title="not in the canonical">', "</ins>"
    title = _LABELS[primary.kind] + (f" (link to {primary.other})" if primary.other else "") + " in the copy"
    return f'<mark class="{cls}" title="{escape(title)}">', "</mark>"


def _render(side: Side, name: str, *, inline: bool = False) -> Markup:
    text = side.text
    out: list[str] = []
    holes = sorted(side.holes, key=lambda h: h.at)
    hi = 0
    marks = side.marks
    started: set[int] = set()
    pos = 0
    for line in text.split("\n"):
        ls, le = pos, pos + len(line)
        pos = le + 1
        if not line.strip():
            # holes standing on an empty line still show (a block lost between paragraphs)
            while hi < len(holes) and holes[hi].at <= le:
                out.append(f'<div class="ln">{_hole_html(holes[hi])}</div>')
                hi += 1
            continue
        kind = side.lines.get(ls)
        cls = f"ln {kind}" if kind else "ln"
        out.append(f'<div class="{cls}">')
        if kind:
            out.append(f'<span class="tag line-tag">{_LINE_LABELS[kind]}</span> ')
        inside = [m for m in marks if m.end > ls and m.start < le]
        cuts = sorted({ls, le, *(max(ls, m.start) for m in inside), *(min(le, m.end) for m in inside),
                       *(h.at for h in holes[hi:] if ls <= h.at <= le)})
        for x, y in zip(cuts, cuts[1:], strict=False):
            while hi < len(holes) and holes[hi].at <= x:
                out.append(" " + _hole_html(holes[hi]) + " ")
                hi += 1
            piece = escape(text[x:y])
            active = [m for m in inside if m.start <= x and m.end >= y]
            if not active:
                out.append(piece)
                continue
            first = not any(id(m) in started for m in active if m.kind in ("swap", "changed"))
            started.update(id(m) for m in active)
            opening, closing = _open(active, name, inline, first)
            out.append(f"{opening}{piece}{closing}")
        while hi < len(holes) and holes[hi].at <= le:
            out.append(" " + _hole_html(holes[hi]))
            hi += 1
        out.append("</div>")
    for hole in holes[hi:]:
        out.append(f'<div class="ln">{_hole_html(hole)}</div>')
    return Markup("".join(out))


def render_side(diff: WordDiff, which: str) -> Markup:
    """One side ('canonical' or 'member') as HTML lines, every difference marked."""
    side = diff.canonical if which == "canonical" else diff.member
    return _render(side, which)


def render_inline(diff: WordDiff) -> Markup:
    """The member's text with the canonical's words in place: struck where swapped or lost, new ones marked."""
    return _render(diff.member, "member", inline=True)


def render_plain(text: str) -> Markup:
    """A stored text as HTML lines, nothing marked (the canonical shown alone)."""
    return _render(Side(text), "canonical")


__all__ = ["DiffText", "Hole", "Mark", "Side", "WordDiff", "render_inline", "render_plain", "render_side",
           "word_diff"]
