"""A second copy-maker: phrase-level spinning, a scraper and boilerplate, applied to an HTML page.

It is deliberately unlike the dev corpus's copy-maker (one-word thesaurus swaps) and the ``spin`` /
``scrape`` helpers of ``tests/test_detection.py`` (a fixed synonym map, every link text removed):

- **spin** rewrites phrases: multi-word substitutions ("in order to" → "so as to", "more than" →
  "in excess of"), contractions both ways, one-word synonyms that keep the inflection ("helped" →
  "assisted"), tense changes of reporting verbs ("said" → "says"), and clauses reordered within a
  sentence ("On Tuesday, the council voted …" → "The council voted … on Tuesday", "X, the minister
  said." → "The minister said that x.").
- **links** drops in-body link texts, half of them with the punctuation around them ("(see the
  report)" and "the report," both go) and half without (leaving "( )", "from , to").
- **byline** strips the byline; from medium on also the date and a leading dateline ("LONDON (Reuters)
  —"); at heavy also trailing credit lines ("Reporting by …").
- **blocks** cuts "Related:" / "Read more:" blocks and picture captions.
- **boilerplate** inserts "Advertisement" lines, a share bar and, from medium on, a newsletter box in
  mid-text.

``make_copy(page_html, transforms, strength=…, seed=…)`` finds the article body of the page (the
element whose paragraphs hold most text), applies the transformations in that order at one strength
(``light``, ``medium``, ``heavy``) and renders the result in another site's template. It is
deterministic for a seed. The ground truth it returns:

- ``spun``: the spinner changed the wording at least once;
- ``scraped``: link texts or blocks were removed from the body, or the byline / dateline was stripped
  from a copy that is *not* spun. A spinning site republishes under its own template, so a byline it
  does not carry is not a scraper's loss; with other losses the copy is scraped either way.

``furnish(page_html, related=…)`` gives an original what copies can lose: "Related:" link blocks and
captioned pictures inside its body. ``article_page(...)`` writes a small original from scratch (tests).
The word lists below were written for this module.
"""

from __future__ import annotations

import html as html_lib
import json
import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lxml import html as lxml_html

TRANSFORMS = ("spin", "links", "byline", "blocks", "boilerplate")
STRENGTHS = ("light", "medium", "heavy")

# --- word lists ----------------------------------------------------------------------------------------

# Multi-word phrases and their rewrites: "source | rewrite | rewrite".
PHRASES = """
in order to | so as to | with the aim to
as well as | along with | together with
a number of | several | a range of
a lot of | plenty of | lots of
more than | in excess of | over
less than | under | below
at least | no fewer than | a minimum of
according to | as stated by | as reported by
because of | owing to | on account of
due to | owing to | as a result of
in addition | additionally | what is more
for example | for instance | as an example
such as | like | including
as a result | consequently | in consequence
on the other hand | conversely | by contrast
at the same time | simultaneously | all the while
in the past | previously | in former times
so far | thus far | up to now
right now | at present | at the moment
take part in | participate in | join in
took part in | participated in | joined in
make sure | ensure | see to it
find out | discover | learn
found out | discovered | learned
set up | establish | put in place
carry out | conduct | perform
carried out | conducted | performed
look into | investigate | examine
point out | note | observe
pointed out | noted | observed
come up with | devise | think up
came up with | devised | thought up
deal with | handle | tackle
put forward | propose | table
called for | urged | demanded
go ahead | proceed | move forward
around the world | across the globe | worldwide
in recent years | lately | over the last few years
last year | the previous year | a year ago
next year | the coming year | the following year
last week | the previous week | a week ago
next week | the coming week | the following week
this year | the current year | this calendar year
on average | typically | as a rule
in fact | indeed | as a matter of fact
at first | initially | to begin with
in the end | ultimately | eventually
is expected to | is anticipated to | is likely to
are expected to | are anticipated to | are likely to
was expected to | was anticipated to | was projected to
is set to | is poised to | is due to
told reporters | informed journalists | told the press
said in a statement | stated in a release | said in a written statement
the number of | the quantity of | the count of
a series of | a string of | a succession of
in response to | in reaction to | responding to
as part of | within the framework of | as a component of
in terms of | with regard to | as far as
ahead of | prior to | in advance of
a little | slightly | somewhat
each year | every year | annually
every day | daily | each day
most of | the majority of | nearly all of
some of | a portion of | certain of
for the first time | for the very first time | for the first occasion
take place | occur | happen
took place | occurred | happened
takes place | occurs | happens
get rid of | eliminate | remove
keep an eye on | monitor | watch over
put in place | implement | introduce
look forward to | anticipate | await
in the meantime | meanwhile | in the interim
as soon as possible | at the earliest opportunity | without delay
do not | don't
does not | doesn't
did not | didn't
is not | isn't
are not | aren't
was not | wasn't
will not | won't
cannot | can't
would not | wouldn't
could not | couldn't
it is | it's
don't | do not
doesn't | does not
didn't | did not
isn't | is not
won't | will not
can't | cannot
it's | it is
"""

# One-word synonyms that keep the inflection: the forms of a line are aligned ("-": no such form).
WORDS = """
help helps helped helping | assist assists assisted assisting | aid aids aided aiding
start starts started starting | begin begins began beginning | launch launches launched launching
buy buys bought buying | purchase purchases purchased purchasing | acquire acquires acquired acquiring
show shows showed showing | demonstrate demonstrates demonstrated demonstrating | reveal reveals revealed revealing
use uses - using | employ employs - employing | utilise utilises - utilising
need needs needed needing | require requires required requiring
get gets got getting | obtain obtains obtained obtaining | receive receives received receiving
try tries tried trying | attempt attempts attempted attempting | seek seeks sought seeking
ask asks asked asking | request requests requested requesting | question questions questioned questioning
want wants wanted wanting | wish wishes wished wishing | desire desires desired desiring
think thinks - thinking | believe believes - believing | reckon reckons - reckoning
find finds found finding | discover discovers discovered discovering | uncover uncovers uncovered uncovering
keep keeps kept keeping | retain retains retained retaining | maintain maintains maintained maintaining
give gives gave giving | provide provides provided providing | offer offers offered offering
build builds built - | construct constructs constructed - | erect erects erected -
choose chooses chose choosing | select selects selected selecting | pick picks picked picking
increase increases increased increasing | raise raises raised raising | boost boosts boosted boosting
reduce reduces reduced reducing | lower lowers lowered lowering | cut cuts cut cutting
allow allows allowed allowing | permit permits permitted permitting | let lets let letting
stop stops stopped stopping | halt halts halted halting | cease ceases ceased ceasing
continue continues continued continuing | carry on carries on carried on carrying on
announce announces announced announcing | declare declares declared declaring | unveil unveils unveiled unveiling
decide decides decided deciding | resolve resolves resolved resolving | determine determines determined determining
warn warns warned warning | caution cautions cautioned cautioning | alert alerts alerted alerting
claim claims claimed claiming | assert asserts asserted asserting | allege alleges alleged alleging
expect expects expected expecting | anticipate anticipates anticipated anticipating
support supports supported supporting | back backs backed backing | endorse endorses endorsed endorsing
reach reaches reached reaching | attain attains attained attaining | hit hits hit hitting
face faces faced facing | confront confronts confronted confronting | encounter encounters encountered encountering
prevent prevents prevented preventing | avert averts averted averting | hinder hinders hindered hindering
include includes included - | comprise comprises comprised - | contain contains contained -
explain explains explained explaining | clarify clarifies clarified clarifying | describe describes described describing
suggest suggests suggested suggesting | propose proposes proposed proposing | indicate indicates indicated indicating
- - planned planning | - - intended intending | - - aimed aiming
win wins won winning | secure secures secured securing | clinch clinches clinched clinching
improve improves improved improving | enhance enhances enhanced enhancing | better betters bettered bettering
create creates created creating | produce produces produced producing | generate generates generated generating
change - changed changing | alter - altered altering | modify - modified modifying
remain remains remained remaining | stay stays stayed staying
happen happens happened happening | occur occurs occurred occurring
arrest - arrested arresting | detain - detained detaining | apprehend - apprehended apprehending
die dies died dying | perish perishes perished perishing | pass away passes away passed away passing away
visit visits visited visiting | tour tours toured touring | call on calls on called on calling on
speak speaks spoke speaking | talk talks talked talking
agree agrees agreed agreeing | concur concurs concurred concurring
admit admits admitted admitting | concede concedes conceded conceding
acknowledge acknowledges acknowledged acknowledging | recognise recognises recognised recognising
deny denies denied denying | reject rejects rejected rejecting | dispute disputes disputed disputing
seem seems seemed seeming | appear appears appeared appearing
become becomes became becoming | turn into turns into turned into turning into
worry worries worried worrying | trouble troubles troubled troubling
rise rises rose rising | climb climbs climbed climbing | grow grows grew growing
fall falls fell falling | drop drops dropped dropping | decline declines declined declining
return returns returned returning | come back comes back came back coming back
send sends sent sending | dispatch dispatches dispatched dispatching
bring brings brought bringing | carry carries carried carrying
problem problems | issue issues | difficulty difficulties
people | individuals | persons
company companies | firm firms | business businesses
country countries | nation nations
government governments | administration administrations
children | youngsters | kids
child | youngster | kid
car cars | vehicle vehicles | automobile automobiles
house houses | home homes | residence residences
money | funds | cash
job jobs | position positions | post posts
plan plans | scheme schemes | proposal proposals
area areas | region regions | zone zones
city cities | municipality municipalities
official officials | representative representatives
worker workers | employee employees | staffer staffers
leader leaders | head heads | chief chiefs
meeting meetings | gathering gatherings | session sessions
decision decisions | ruling rulings | determination determinations
effort efforts | attempt attempts | endeavour endeavours
result results | outcome outcomes | consequence consequences
reason reasons | cause causes | motive motives
rule rules | regulation regulations
law laws | statute statutes
group groups | collective collectives
event events | occasion occasions
part parts | portion portions | section sections
risk risks | danger dangers | threat threats
crisis crises | emergency emergencies
attack attacks | assault assaults
death deaths | fatality fatalities
victim victims | casualty casualties
team teams | squad squads
fans | supporters | followers
price prices | cost costs
amount amounts | quantity quantities | sum sums
idea ideas | notion notions | concept concepts
big | large | sizeable
small | little | minor
important | significant | crucial
main | principal | primary
major | substantial | considerable
recent | latest | current
hard | difficult | tough
easy | simple | straightforward
clear | evident | obvious
good | fine | decent
bad | poor | unfavourable
fast | quick | rapid
whole | entire | complete
serious | grave | severe
strong | powerful | robust
rich | wealthy | affluent
possible | feasible | conceivable
different | distinct | dissimilar
similar | comparable | akin
huge | enormous | massive
also | additionally | likewise
however | nevertheless | nonetheless
often | frequently | regularly
quickly | rapidly | swiftly
recently | lately | newly
nearly | almost | virtually
only | merely | solely
very | extremely | highly
soon | shortly | before long
again | once more | once again
enough | sufficient | adequate
many | numerous | countless
mostly | largely | mainly
especially | particularly | notably
finally | eventually | lastly
say says said saying | state states stated stating | remark remarks remarked remarking
"""

# Tense changes of reporting verbs and perfect forms (both directions are applied).
INFLECTIONS = """
said | says
told | tells
added | adds
noted | notes
explained | explains
warned | warns
wrote | writes
argued | argues
insisted | insists
stressed | stresses
believed | believes
announced | announces
confirmed | confirms
reported | reports
claimed | claims
suggested | suggests
admitted | admits
estimated | estimates
has said | said
have said | said
has announced | announced
has confirmed | confirmed
had been | has been
"""

# Words that open a sentence and may be lower-cased when the sentence is reordered.
_OPENERS = frozenset((
    "the", "a", "an", "he", "she", "they", "we", "it", "this", "that", "these", "those", "his", "her", "their",
    "its", "our", "police", "officials", "there", "some", "many", "most", "several", "experts", "critics",
    "residents", "researchers", "scientists",
))
_AUXILIARIES = frozenset(("has", "have", "had", "was", "were", "been", "is", "are", "be", "being", "will", "would"))
_INTRO = re.compile(
    r"^(?P<intro>(?:On|In|At|After|Before|During|Since|Last|This|Earlier|Later|For|Under|Despite|Following|"
    r"Over|By|Within|Until|Throughout) [^,;:“”\"]{2,60}), (?P<rest>[^,;:]{0,3}\S.{10,}?)(?P<end>[.!?])$"
)
_TAIL = re.compile(
    r"^(?P<main>[A-Z][^,;:“”\"]{12,}?) (?P<sub>(?:because|after|before|when|while|although|since|until|"
    r"even though|once) [^,;:“”\"]{8,90}?)(?P<end>[.!?])$"
)
_QUOTE_SAID = re.compile(
    r"^(?P<quote>[“\"][^“”\"]{10,}?)[,.]?(?P<close>[”\"]),? (?P<who>[^,.“”\"]{2,40}?) "
    r"(?P<verb>said|says|added|told [^,.“”\"]{1,30})(?P<end>\.)$"
)
_PLAIN_SAID = re.compile(
    r"^(?P<body>[A-Z][^“”\"]{20,}?), (?P<who>(?:the |a |an )?[^,.“”\"]{2,40}?) (?P<verb>said|says|added)"
    r"(?P<end>\.)$"
)
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][”\"]))\s+(?=[“\"A-Z])")
_RELATED = re.compile(r"^\s*(related|read more|read also|see also|also read|more on this|more:)\b", re.I)
_BYLINE_BLOCK = re.compile(r"^\s*by\s+[A-Z][\w.'-]+(\s+[A-Z][\w.'-]+){0,3}\s*(,|$|and\b|\|)", re.I)
_DATELINE = re.compile(
    r"^\s*(?P<dl>[A-Z][A-Z .'-]{2,30}(?:,\s*[A-Z][A-Za-z.]{1,15})?\s*(?:\([A-Za-z .]{2,20}\))?\s*[—–-]{1,2}\s+)"
    r"(?=[A-Z“\"])"
)
_CREDIT = re.compile(
    r"^\s*(\(?(reporting|writing|editing|additional reporting) by\b|.{0,60}contributed to this report)", re.I
)
_WS = re.compile(r"\s+")


def _word_groups(text: str) -> list[list[list[str | None]]]:
    """WORDS lines: forms are single words except multi-word verbs ("carry on carries on …")."""
    table = []
    for line in text.strip().splitlines():
        parts = [p.split() for p in line.split("|")]
        width = len(parts[0])
        groups = []
        for words in parts:
            if len(words) == width:
                groups.append([None if w == "-" else w for w in words])
            else:  # a two-word verb: forms come in pairs
                pairs = [" ".join(words[i : i + 2]) for i in range(0, len(words), 2)]
                groups.append([None if p.startswith("-") else p for p in pairs])
        table.append(groups)
    return table


def _rewrites() -> dict[str, list[tuple[str, str]]]:
    """form (lower case) → [(rewrite, kind)], kind one of phrase / word / inflection."""
    out: dict[str, list[tuple[str, str]]] = {}
    for line in PHRASES.strip().splitlines():
        source, *targets = (p.strip() for p in line.split("|"))
        out.setdefault(source, []).extend((t, "phrase") for t in targets)
    for groups in _word_groups(WORDS):
        source, *targets = groups
        for k, form in enumerate(source):
            if form is None:
                continue
            for target in targets:
                if k < len(target) and target[k] is not None:
                    out.setdefault(form, []).append((target[k], "word"))
    for line in INFLECTIONS.strip().splitlines():
        a, b = (p.strip() for p in line.split("|"))
        out.setdefault(a, []).append((b, "inflection"))
        if " " not in a:
            out.setdefault(b, []).append((a, "inflection"))
    return out


REWRITES = _rewrites()
_REWRITE_RE = re.compile(
    r"(?<![\w'’-])(" + "|".join(re.escape(k).replace("'", "['’]") for k in sorted(REWRITES, key=len, reverse=True))
    + r")(?![\w'’-])",
    re.I,
)

SPIN_RATES = {  # probability that each kind of rewrite is applied where it can be
    "light": {"phrase": 0.30, "word": 0.12, "inflection": 0.35, "reorder": 0.10},
    "medium": {"phrase": 0.60, "word": 0.30, "inflection": 0.65, "reorder": 0.25},
    "heavy": {"phrase": 0.90, "word": 0.55, "inflection": 0.90, "reorder": 0.45},
}
LINK_RATES = {"light": (0.35, 2), "medium": (0.65, 3), "heavy": (1.0, 1)}  # share of in-body links, at least


# --- the page as blocks of inline segments --------------------------------------------------------------

@dataclass
class Segment:
    """A piece of a block's text; ``href`` when it is the text of a link."""

    text: str
    href: str | None = None


@dataclass
class Block:
    """One paragraph-like element of the body: p, h2, h3, li, quote, caption or related."""

    kind: str
    segments: list[Segment]

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)


@dataclass
class Story:
    """What a copy-maker keeps of a page: its title, byline, date, language and body blocks."""

    title: str
    byline: str | None
    published: str | None
    language: str
    blocks: list[Block]


@dataclass
class Copy:
    """A transformed page and its ground truth."""

    html: str
    spun: bool
    scraped: bool
    transforms: tuple[str, ...]
    strength: str
    changes: dict[str, list[str]] = field(default_factory=dict)


_SKIP = ("script", "style", "noscript", "template", "svg", "iframe", "form", "nav", "footer", "aside", "button",
         "select", "object", "video", "audio")
_BLOCK_TAGS = {"p": "p", "h2": "h2", "h3": "h3", "h4": "h3", "li": "li", "figcaption": "caption",
               "pre": "p", "dd": "p"}


def _norm(text: str) -> str:
    return _WS.sub(" ", text)


def _inline(el) -> list[Segment]:
    """Text and links of an element, in order, whitespace collapsed (not stripped)."""
    out: list[Segment] = []

    def walk(node) -> None:
        if not isinstance(node.tag, str) or node.tag in _SKIP:
            return
        if node.tag == "a" and node.get("href") and not node.get("href", "").startswith(("#", "javascript:")):
            text = _norm(node.text_content())
            if text.strip():
                out.append(Segment(text, node.get("href")))
            return
        if node.tag == "br":
            out.append(Segment(" "))
        if node.text:
            out.append(Segment(_norm(node.text)))
        for child in node:
            walk(child)
            if child.tail:
                out.append(Segment(_norm(child.tail)))

    if el.text:
        out.append(Segment(_norm(el.text)))
    for child in el:
        walk(child)
        if child.tail:
            out.append(Segment(_norm(child.tail)))
    # merge adjacent plain text, trim the ends
    merged: list[Segment] = []
    for seg in out:
        if merged and seg.href is None and merged[-1].href is None:
            merged[-1] = Segment(merged[-1].text + seg.text)
        else:
            merged.append(seg)
    if merged and merged[0].href is None:
        merged[0] = Segment(merged[0].text.lstrip())
    if merged and merged[-1].href is None:
        merged[-1] = Segment(merged[-1].text.rstrip())
    return [s for s in merged if s.text]


def _container(tree):
    """The element whose paragraphs hold most text (each paragraph counts for its parent, half for the
    grandparent)."""
    scores: dict = {}
    for p in tree.iter("p"):
        if any(a.tag in _SKIP or (a.tag not in ("html", "body", "main", "article")
                                  and _JUNK.search(f"{a.get('class') or ''} {a.get('id') or ''}"))
               for a in p.iterancestors()):
            continue
        n = len(_norm(p.text_content()).strip())
        if n < 40:
            continue
        parent = p.getparent()
        if parent is None:
            continue
        scores[parent] = scores.get(parent, 0.0) + n
        grand = parent.getparent()
        if grand is not None:
            scores[grand] = scores.get(grand, 0.0) + n / 2
    if not scores:
        return None
    return max(scores, key=lambda el: scores[el])


_JUNK = re.compile(r"newsletter|comment|promo|share|social|related|recommend|signup|subscribe|advert|\bads?\b|"
                   r"sidebar|disclaimer|paywall|author-bio|tags\b", re.I)


def _containers(tree) -> list:
    """The body container and its like siblings: a story split into several sections of the same kind
    (same tag and class) is read whole."""
    best = _container(tree)
    if best is None or not best.get("class"):
        return [] if best is None else [best]
    like = [el for el in tree.iter(best.tag) if el.get("class") == best.get("class")
            and not any(a.get("class") == best.get("class") for a in el.iterancestors())
            and any(_norm(b.text_content()).strip() for b in el.iter(*_BLOCK_TAGS))]
    return like if best in like else [best]


def _blocks(container) -> list[Block]:
    blocks: list[Block] = []

    def walk(el) -> None:
        if not isinstance(el.tag, str) or el.tag in _SKIP:
            return
        cls = (el.get("class") or "").lower()
        if el is not container and _JUNK.search(f"{cls} {el.get('id') or ''}"):
            return  # what a scraper's body selector leaves out, as extraction does
        kind = _BLOCK_TAGS.get(el.tag)
        if kind == "li" and any(isinstance(c.tag, str) and c.tag in ("p", "ul", "ol") for c in el):
            kind = None
        if kind is None and "caption" in cls and el.tag in ("p", "div", "span"):
            kind = "caption"
        if kind is not None:
            segments = _inline(el)
            text = "".join(s.text for s in segments).strip()
            if text:
                if kind == "p" and _RELATED.match(text):
                    kind = "related"
                if kind == "p" and "caption" in cls:
                    kind = "caption"
                blocks.append(Block(kind, segments))
            return
        for child in el:
            walk(child)

    walk(container)
    return blocks


def _meta_content(tree, xpath: str) -> str | None:
    for value in tree.xpath(xpath):
        value = _norm(str(value)).strip()
        if value:
            return value
    return None


def _json_ld_field(tree, names: Sequence[str]) -> str | None:
    for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
        try:
            data = json.loads(script)
        except ValueError:
            continue
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                for name in names:
                    value = item.get(name)
                    if isinstance(value, dict):
                        value = value.get("name")
                    if isinstance(value, list) and value:
                        first = value[0]
                        value = first.get("name") if isinstance(first, dict) else first
                    if isinstance(value, str) and value.strip():
                        return _norm(value).strip()
                stack.extend(v for v in item.values() if isinstance(v, (list, dict)))
    return None


def read_story(page_html: str) -> Story:
    """The title, byline, date, language and body blocks of a page."""
    tree = lxml_html.document_fromstring(page_html)
    title = (_meta_content(tree, '//meta[@property="og:title"]/@content')
             or _meta_content(tree, "//h1//text()") or _meta_content(tree, "//title/text()") or "")
    byline = (_meta_content(tree, '//meta[@name="author"]/@content') or _json_ld_field(tree, ["author"])
              or _meta_content(tree, '//*[@rel="author"]//text()')
              or _meta_content(tree, '//*[contains(@class, "byline")]//*[contains(@class, "name")]//text()'))
    if byline and (byline.startswith("http") or len(byline) > 80):
        byline = None
    published = (_meta_content(tree, '//meta[@property="article:published_time"]/@content')
                 or _json_ld_field(tree, ["datePublished"]) or _meta_content(tree, "//time/@datetime"))
    language = (tree.get("lang") or "en").strip() or "en"
    blocks = [b for part in _containers(tree) for b in _blocks(part)]
    body: list[Block] = []
    for block in blocks:
        text = block.text.strip()
        if _BYLINE_BLOCK.match(text) and len(text) < 80:
            byline = byline or re.sub(r"^\s*by\s+", "", text, flags=re.I).strip(" ,|")
            continue
        if title and _norm(text).strip() == _norm(title).strip():
            continue
        body.append(block)
    return Story(_norm(title).strip(), byline, published, language, body)


# --- spinning -------------------------------------------------------------------------------------------

def _lower_first(text: str) -> str:
    word = text.split(" ", 1)[0]
    return text[0].lower() + text[1:] if word.lower() in _OPENERS else text


def _upper_first(text: str) -> str:
    return text[0].upper() + text[1:] if text else text


def _reorder(sentence: str) -> str | None:
    """One clause moved within the sentence, or None when no pattern fits."""
    m = _INTRO.match(sentence)
    if m and m["rest"][0].islower():
        return f"{_upper_first(m['rest'])} {m['intro'][0].lower()}{m['intro'][1:]}{m['end']}"
    m = _QUOTE_SAID.match(sentence)
    if m:
        return f"{_upper_first(m['who'])} {m['verb']}: {m['quote']}.{m['close']}"
    m = _PLAIN_SAID.match(sentence)
    if m and len(m["who"].split()) <= 6:
        return f"{_upper_first(m['who'])} {m['verb']} that {_lower_first(m['body'])}{m['end']}"
    m = _TAIL.match(sentence)
    if m:
        return f"{_upper_first(m['sub'])}, {_lower_first(m['main'])}{m['end']}"
    return None


def _keep_case(source: str, target: str) -> str:
    if source[:1].isupper():
        return target[:1].upper() + target[1:]
    return target


class Spinner:
    """Phrase-level rewriting at one strength; every change is logged in ``changes``."""

    def __init__(self, strength: str, rng: random.Random) -> None:
        self.rates = SPIN_RATES[strength]
        self.rng = rng
        self.changes: list[str] = []

    def sentence_start(self, text: str, start: int) -> bool:
        before = text[:start].rstrip()
        return not before or before[-1] in ".!?:“\"("

    def rewrite(self, text: str) -> str:
        def replace(m: re.Match[str]) -> str:
            found = m.group(0)
            if found[:1].isupper() and not self.sentence_start(m.string, m.start()):
                return found  # a name or a title, not a common word
            if found.isupper() and len(found) > 1:
                return found
            key = found.lower().replace("’", "'")
            options = list(REWRITES.get(key, []))
            self.rng.shuffle(options)
            before = m.string[: m.start()].split()[-1:]
            for target, kind in options:
                if kind == "inflection" and before and before[0].lower() in _AUXILIARIES:
                    continue  # "has admitted" must not become "has admits"
                if self.rng.random() < self.rates[kind]:
                    if "’" in found:
                        target = target.replace("'", "’")
                    self.changes.append(f"{kind}: {found} → {target}")
                    return _keep_case(found, target)
            return found

        return _REWRITE_RE.sub(replace, text)

    def text(self, text: str, *, reorder: bool) -> str:
        """Spin a run of plain text: clauses reordered in whole sentences, then rewritten."""
        if not text.strip():
            return text
        if reorder:
            lead = text[: len(text) - len(text.lstrip())]
            trail = text[len(text.rstrip()) :]
            sentences = _SENTENCE_END.split(text.strip())
            out = []
            for s in sentences:
                moved = _reorder(s) if self.rng.random() < self.rates["reorder"] else None
                if moved and moved != s:
                    self.changes.append(f"reorder: {s[:40]}… → {moved[:40]}…")
                    s = moved
                out.append(s)
            text = lead + " ".join(out) + trail
        return self.rewrite(text)

    def block(self, block: Block) -> None:
        for seg in block.segments:
            # a link's text is spun like the rest; clauses move only within a plain run of text
            seg.text = self.text(seg.text, reorder=seg.href is None and block.kind in ("p", "li"))


# --- the scraper ----------------------------------------------------------------------------------------

_OPEN = "(“\"'‘["
_CLOSE = {"(": ")", "“": "”", '"': '"', "'": "'", "‘": "’", "[": "]"}


def _drop_link(segments: list[Segment], k: int, with_punctuation: bool) -> None:
    """Remove the text of link k; with_punctuation also takes the brackets, quotes or comma around it."""
    segments[k] = Segment("")
    if not with_punctuation:
        return
    before = segments[k - 1] if k > 0 and segments[k - 1].href is None else None
    after = segments[k + 1] if k + 1 < len(segments) and segments[k + 1].href is None else None
    left = before.text.rstrip() if before else ""
    right = after.text.lstrip() if after else ""
    if before and after and left and right and left[-1] in _OPEN and right[0] == _CLOSE[left[-1]]:
        before.text, after.text = left[:-1].rstrip() + " ", right[1:]
    elif after and right[:1] in (",", ";"):
        after.text = right[1:]
    elif before and after and left[-1:] == "," and right[:1] in (".", ")", ""):
        before.text = left[:-1]


def running_text(block: Block) -> bool:
    """A paragraph or item of prose (eight words or more, at most half of it link text), not a list of
    links: where a scraper's in-body links are."""
    if block.kind not in ("p", "li"):
        return False
    linked = sum(len(s.text) for s in block.segments if s.href)
    return len(block.text.split()) >= 8 and 2 * linked <= len(block.text)


def _tidy(block: Block) -> None:
    """Collapse the double spaces a removal leaves (a scraper's own HTML would show them as one)."""
    for seg in block.segments:
        seg.text = re.sub(r" {2,}", " ", seg.text)


# --- boilerplate ----------------------------------------------------------------------------------------

def _share_bar(site: str, rng: random.Random) -> str:
    label = rng.choice(["Share this article", "Share", "Share this story", "SHARE"])
    nets = rng.sample(["Facebook", "X", "Twitter", "WhatsApp", "LinkedIn", "Email", "Copy link", "Reddit"], 4)
    links = " ".join(f'<a href="https://{site}/share?to={n.lower().replace(" ", "-")}">{n}</a>' for n in nets)
    return f"<p>{label}: {links}</p>" if rng.random() < 0.5 else f'<div class="share-bar">{label} {links}</div>'


def _advert(rng: random.Random) -> str:
    return rng.choice(["<p>Advertisement</p>", "<p>ADVERTISEMENT</p>",
                       '<div class="ad-slot"><p>Advertisement</p></div>',
                       "<p>Advertisement - scroll to continue</p>", "<p>Story continues below advertisement</p>"])


def _newsletter(site: str, rng: random.Random) -> str:
    name = rng.choice(["The Morning Brief", "Daily Digest", "Evening Update", "The Week in Review"])
    pitch = rng.choice([
        f"Get the day's top stories from {site} in your inbox every weekday morning.",
        "Sign up for our free newsletter and never miss the stories that matter to you.",
        f"Join thousands of readers who start their day with {name}. It's free.",
    ])
    if rng.random() < 0.5:
        return (f"<div><p><strong>{name}</strong></p><p>{pitch}</p>"
                f'<p><a href="https://{site}/newsletters">Sign up now</a></p></div>')
    return f'<aside class="newsletter"><h3>{name}</h3><p>{pitch}</p><button>Subscribe</button></aside>'


# --- making a copy --------------------------------------------------------------------------------------

def _rng(seed: int | str, salt: str) -> random.Random:
    return random.Random(f"{seed}:{salt}")


def _render_blocks(blocks: Sequence[Block], extras: dict[int, list[str]]) -> str:
    out: list[str] = []
    open_list = False
    for i, block in enumerate(blocks):
        for snippet in extras.get(i, []):
            if open_list:
                out.append("</ul>")
                open_list = False
            out.append(snippet)
        inner = "".join(
            f'<a href="{html_lib.escape(s.href, quote=True)}">{html_lib.escape(s.text)}</a>' if s.href
            else html_lib.escape(s.text)
            for s in block.segments
        )
        if block.kind == "li":
            if not open_list:
                out.append("<ul>")
                open_list = True
            out.append(f"<li>{inner}</li>")
            continue
        if open_list:
            out.append("</ul>")
            open_list = False
        if block.kind in ("h2", "h3"):
            out.append(f"<{block.kind}>{inner}</{block.kind}>")
        elif block.kind == "caption":
            out.append(f'<figure><img src="/img/{i}.jpg" alt=""><figcaption>{inner}</figcaption></figure>')
        else:
            out.append(f"<p>{inner}</p>")
    if open_list:
        out.append("</ul>")
    for snippet in extras.get(len(blocks), []):
        out.append(snippet)
    return "\n".join(out)


def render(story: Story, *, site: str, extras: dict[int, list[str]] | None = None) -> str:
    """A page on ``site`` carrying the story: head facts, a byline and date when known, the blocks."""
    name = site.split(".")[0].replace("-", " ").title()
    esc = html_lib.escape
    head = [f"<meta charset=\"utf-8\"><title>{esc(story.title)} | {esc(name)}</title>",
            f'<meta property="og:title" content="{esc(story.title, quote=True)}">',
            f'<meta property="og:site_name" content="{esc(name, quote=True)}">']
    top = [f"<h1>{esc(story.title)}</h1>"]
    if story.byline:
        head.append(f'<meta name="author" content="{esc(story.byline, quote=True)}">')
        top.append(f'<p class="byline">By <span class="author">{esc(story.byline)}</span></p>')
    if story.published:
        head.append(f'<meta property="article:published_time" content="{esc(story.published, quote=True)}">')
        top.append(f'<time datetime="{esc(story.published, quote=True)}">{esc(story.published[:10])}</time>')
    nav = "".join(f'<li><a href="/{s.lower()}">{s}</a></li>' for s in ("News", "World", "Business", "Sport", "Life"))
    return (
        f'<!doctype html><html lang="{esc(story.language, quote=True)}"><head>{"".join(head)}</head><body>'
        f'<header><div class="logo"><a href="/">{esc(name)}</a></div><nav><ul>{nav}</ul></nav></header>'
        f'<main><article>{"".join(top)}<div class="story-body">\n{_render_blocks(story.blocks, extras or {})}\n'
        f"</div></article></main><footer><p>© {esc(name)}. All rights reserved.</p>"
        f'<p><a href="/privacy">Privacy</a> <a href="/terms">Terms</a></p></footer></body></html>'
    )


def make_copy(page_html: str, transforms: Iterable[str], *, strength: str = "medium", seed: int | str = 0,
              site: str = "copy.example") -> Copy:
    """Copy the page's article to ``site`` with the transformations applied at one strength."""
    chosen = tuple(t for t in TRANSFORMS if t in set(transforms))
    unknown = set(transforms) - set(TRANSFORMS)
    if unknown or strength not in STRENGTHS:
        raise ValueError(f"unknown transformation(s) {sorted(unknown)} or strength {strength!r}")
    story = read_story(page_html)
    changes: dict[str, list[str]] = {t: [] for t in chosen}

    if "spin" in chosen:
        spinner = Spinner(strength, _rng(seed, "spin"))
        story.title = spinner.text(story.title, reorder=False)
        for block in story.blocks:
            if block.kind != "related":
                spinner.block(block)
        changes["spin"] = spinner.changes

    if "links" in chosen:
        rng = _rng(seed, "links")
        places = [(b, k) for b, block in enumerate(story.blocks) if running_text(block)
                  for k, seg in enumerate(block.segments) if seg.href and seg.text.strip()]
        share, least = LINK_RATES[strength]
        count = min(len(places), max(least, math.ceil(share * len(places))))
        for b, k in sorted(rng.sample(places, count)):
            block = story.blocks[b]
            changes["links"].append(block.segments[k].text.strip())
            _drop_link(block.segments, k, with_punctuation=rng.random() < 0.5)
            _tidy(block)

    if "byline" in chosen:
        if story.byline:
            changes["byline"].append(f"byline: {story.byline}")
            story.byline = None
        if strength != "light":
            if story.published:
                changes["byline"].append(f"date: {story.published}")
                story.published = None
            first = next((b for b in story.blocks if b.kind == "p"), None)
            if first and first.segments and first.segments[0].href is None:
                m = _DATELINE.match(first.segments[0].text)
                if m:
                    changes["byline"].append(f"dateline: {m['dl'].strip()}")
                    first.segments[0].text = first.segments[0].text[m.end("dl") :]
        if strength == "heavy":
            for block in list(story.blocks[-3:]):
                if block.kind == "p" and _CREDIT.match(block.text) and len(block.text) < 200:
                    changes["byline"].append(f"credit: {block.text.strip()}")
                    story.blocks.remove(block)

    if "blocks" in chosen:
        related = [b for b in story.blocks if b.kind == "related"]
        captions = [b for b in story.blocks if b.kind == "caption"]
        cut = {"light": min(1, len(related)), "medium": math.ceil(len(related) / 2), "heavy": len(related)}[strength]
        rng = _rng(seed, "blocks")
        gone = captions + rng.sample(related, cut)
        for block in gone:
            changes["blocks"].append(f"{block.kind}: {block.text.strip()[:80]}")
        story.blocks = [b for b in story.blocks if all(b is not g for g in gone)]

    extras: dict[int, list[str]] = {}
    if "boilerplate" in chosen and story.blocks:
        rng = _rng(seed, "boilerplate")
        n = len(story.blocks)
        adverts = {"light": 1, "medium": 2, "heavy": 3}[strength]
        for _ in range(adverts):
            extras.setdefault(rng.randrange(1, n + 1), []).append(_advert(rng))
            changes["boilerplate"].append("advertisement")
        extras.setdefault(rng.choice([0, n]), []).append(_share_bar(site, rng))
        changes["boilerplate"].append("share bar")
        if strength != "light":
            extras.setdefault(max(1, n // 2), []).append(_newsletter(site, rng))
            changes["boilerplate"].append("newsletter box")

    spun = bool(changes.get("spin"))
    body_losses = bool(changes.get("links")) or bool(changes.get("blocks"))
    scraped = body_losses or (bool(changes.get("byline")) and not spun)
    return Copy(render(story, site=site, extras=extras), spun, scraped, chosen, strength, changes)


# --- originals ------------------------------------------------------------------------------------------

def furnish(page_html: str, related: Sequence[tuple[str, str]], *, seed: int | str = 0, captions: int = 2) -> str:
    """The page with "Related:" link blocks (title, href) and captioned pictures added inside its body,
    spread over it: what a copy can lose."""
    tree = lxml_html.document_fromstring(page_html)
    container = _container(tree)
    if container is None:
        return page_html
    paragraphs = [p for p in container.iter("p") if len(_norm(p.text_content()).strip()) >= 40]
    if len(paragraphs) < 4:
        return page_html
    rng = _rng(seed, "furnish")
    n = len(paragraphs)
    for i, (title, href) in enumerate(related):
        after = paragraphs[max(1, min(n - 2, round((i + 1) * n / (len(related) + 1))))]
        label = rng.choice(["Related:", "Read more:", "See also:", "RELATED:"])
        block = lxml_html.fragment_fromstring(
            f'<p><strong>{html_lib.escape(label)}</strong> <a href="{html_lib.escape(href, quote=True)}">'
            f"{html_lib.escape(title)}</a></p>")
        after.addnext(block)
    for i in range(captions):
        after = paragraphs[min(n - 1, (i * n) // max(1, captions) + 1)]
        words = _norm(after.text_content()).split()[:9]
        credit = rng.choice(["Photo: Staff", "Picture: Agency", "Photograph: Archive", "Image: Handout"])
        figure = lxml_html.fragment_fromstring(
            f'<figure><img src="/media/{i}.jpg" alt=""><figcaption>{html_lib.escape(" ".join(words))} '
            f"({credit})</figcaption></figure>")
        after.addnext(figure)
    return lxml_html.tostring(tree, encoding="unicode", doctype="<!doctype html>")


def article_page(title: str, paragraphs: Sequence[str], *, byline: str | None = None, published: str | None = None,
                 site: str = "news.example", canonical: str | None = None, related: Sequence[tuple[str, str]] = (),
                 captions: Sequence[str] = ()) -> str:
    """An original news page written from scratch: paragraphs may hold links as ``[text](href)``."""
    def inline(p: str) -> str:
        out, last = [], 0
        for m in re.finditer(r"\[([^\]]+)\]\(([^)]+)\)", p):
            out.append(html_lib.escape(p[last : m.start()]))
            out.append(f'<a href="{html_lib.escape(m[2], quote=True)}">{html_lib.escape(m[1])}</a>')
            last = m.end()
        out.append(html_lib.escape(p[last:]))
        return "".join(out)

    esc = html_lib.escape
    body = [f"<p>{inline(p)}</p>" for p in paragraphs]
    for i, caption in enumerate(captions):
        body.insert(min(len(body), 2 + 3 * i), f'<figure><img src="/p{i}.jpg"><figcaption>{esc(caption)}</figcaption>'
                    "</figure>")
    for i, (text, href) in enumerate(related):
        body.insert(min(len(body), 3 + 4 * i),
                    f'<p><strong>Related:</strong> <a href="{esc(href, quote=True)}">{esc(text)}</a></p>')
    head = f"<title>{esc(title)}</title><meta property=\"og:title\" content=\"{esc(title, quote=True)}\">"
    if byline:
        head += f'<meta name="author" content="{esc(byline, quote=True)}">'
    if published:
        head += f'<meta property="article:published_time" content="{esc(published, quote=True)}">'
    if canonical:
        head += f'<link rel="canonical" href="{esc(canonical, quote=True)}">'
    top = f"<h1>{esc(title)}</h1>" + (f'<p class="byline">By {esc(byline)}</p>' if byline else "")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">{head}</head><body><main><article>{top}'
            f'<div class="body">{"".join(body)}</div></article></main><footer>{esc(site)}</footer></body></html>')
