"""Human-readable output: the end-of-run summary and the cluster report, rendered with rich.

The report is for an operator checking a run by eye: which copies were grouped, which one was
elected canonical, and why each copy was flagged. Machines read the JSONL export instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pipeline.records import IngestSummary, ReprocessReport
from pipeline.store import ArticleRow, Store

#: Errors listed one by one in the summary before it only gives counts.
SHOWN_ERRORS = 30
SHOWN_WARNINGS = 10


def make_console(*, stderr: bool = False) -> Console:
    """A console that stays readable when piped (rich would otherwise wrap at 80 columns)."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=max(console.width, 140))
    return console


# --- the end-of-run summary --------------------------------------------------------------------
def render_summary(summary: IngestSummary, console: Console) -> None:
    """Print what the run did, then the errors grouped by kind and the first few one by one."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("sources", str(len(summary.sources)))
    table.add_row("pages seen", str(summary.pages_seen))
    table.add_row("articles stored", str(summary.articles))
    table.add_row("unchanged", str(summary.unchanged))
    for label, value in (("updated", summary.updated), ("older (not applied)", summary.older),
                         ("forgotten (skipped)", summary.forgotten)):
        if value:
            table.add_row(label, str(value))
    table.add_row("joined a cluster", str(summary.joined))
    table.add_row("articles in database", str(summary.articles_total))
    table.add_row("clusters", f"{summary.clusters} ({summary.multi_clusters} with copies)")
    table.add_row("flags", _counts(summary.flags) or "none")
    table.add_row("warnings", _counts(summary.warnings) or "none")
    errors = sum(summary.errors.values())
    table.add_row("errors", Text(f"{errors}  {_counts(summary.errors)}".rstrip(),
                                 style="bold red" if errors else "green"))
    table.add_row("time", f"{summary.elapsed:.1f}s")
    console.print(Panel(table, title=f"reprint ingest · run {summary.run_id}", expand=False))

    for level, style, limit in (("warning", "yellow", SHOWN_WARNINGS), ("error", "red", SHOWN_ERRORS)):
        notes = [n for n in summary.notes if n.level == level]
        for note in notes[:limit]:
            line = Text.assemble((f"{level} ", f"bold {style}"), (f"[{note.stage}/{note.kind}] ", style),
                                 note.message, " — ", (note.url or note.source, "dim"))
            if note.url and note.url != note.source:
                line.append(f"  (source: {note.source})", style="dim")
            console.print(line)
        total = sum((summary.errors if level == "error" else summary.warnings).values())
        if total > min(len(notes), limit):
            console.print(f"… and {total - min(len(notes), limit)} more {level}s (in the errors table, run "
                          f"{summary.run_id})", style="dim")
    if summary.failed_sources:
        console.print(Text(f"{len(summary.failed_sources)} source(s) had errors: "
                           + ", ".join(sorted(summary.failed_sources)), style="red"))


def render_reprocess(report: ReprocessReport, console: Console) -> None:
    """What a re-processing changed: pages whose text changed, cluster moves, canonical changes, flags gained and
    lost; then the first pages whose text changed."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("pages", str(report.pages) + (f" (resumed after page {report.resumed_at})"
                                                if report.resumed_at else ""))
    table.add_row("unchanged", str(report.unchanged))
    table.add_row("text changed", str(report.text_changed))
    if report.added:
        table.add_row("articles added", str(report.added))
    if report.rematched:
        table.add_row("articles matched again", str(report.rematched))
    table.add_row("relations changed", str(report.relations_changed))
    table.add_row("cluster moves", str(report.cluster_moves))
    table.add_row("canonical changes", str(report.canonical_changes))
    table.add_row("flags gained", _counts(report.flags_gained) or "none")
    table.add_row("flags lost", _counts(report.flags_lost) or "none")
    if report.pruned:
        table.add_row("skipped (HTML pruned)", Text(str(report.pruned), style="yellow"))
    table.add_row("failed", Text(str(report.failed), style="bold red" if report.failed else "green"))
    table.add_row("time", f"{report.elapsed:.1f}s")
    console.print(Panel(table, title="reprint reprocess", expand=False))
    if report.pruned:
        console.print(f"{report.pruned} page(s) were not re-processed: their raw HTML was pruned "
                      "(reprint prune); their stored text and signatures are kept.", style="yellow")
    if not report.changed:
        console.print("nothing changed", style="green")
    for url in report.changed_urls[:SHOWN_ERRORS]:
        console.print(Text.assemble(("text changed ", "bold"), (url, "dim")))
    if len(report.changed_urls) > SHOWN_ERRORS:
        console.print(f"… and {report.text_changed - SHOWN_ERRORS} more (article_updated events on /changes)",
                      style="dim")


def render_reviews(rows: list[dict[str, Any]], console: Console) -> None:
    """The operator reviews as a table: id, kind, pages, who and when, note, state."""
    if not rows:
        console.print("no reviews")
        return
    table = Table(show_edge=False, pad_edge=False)
    for name in ("id", "kind", "pages", "who / when", "note", "state"):
        table.add_column(name, overflow="fold")
    for r in rows:
        kind = r["kind"] + (f" {r['flag']} {'on' if r['on'] else 'off'}" if r["kind"] == "flag" else "")
        state = Text(f"undone {r['undone_at']} by {r['undone_by']}", style="dim") if r["undone"] else Text(
            "in force", style="green")
        table.add_row(str(r["id"]), kind, "\n".join(r["urls"]), f"{r['who']}\n{r['at']}", r["note"] or "", state)
    console.print(table)


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


# --- the cluster report ------------------------------------------------------------------------
def _value(value: Any, width: int = 70) -> str:
    """A compact rendering of one evidence value: rounded floats, short lists, clipped strings."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v, 30)}" for k, v in list(value.items())[:4]) + (
            ", …}" if len(value) > 4 else "}")
    if isinstance(value, list | tuple):
        if len(value) == 2 and all(isinstance(v, str) for v in value) and width <= 30:
            return f"{value[0]}→{value[1]}"  # a substitution pair
        head = ", ".join(_value(v, 30) for v in value[:3])
        return f"[{head}{', …' if len(value) > 3 else ''}] ({len(value)})" if len(value) > 3 else f"[{head}]"
    text = str(value).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def evidence_lines(evidence: dict[str, Any] | None, flags: Iterable[str]) -> list[str]:
    """Evidence as ``key: name=value; …`` lines; the evidence behind each flag comes first."""
    evidence = dict(evidence or {})
    order = [flag for flag in flags if flag in evidence] + [key for key in evidence if key not in flags]
    lines: list[str] = []
    for key in order:
        value = evidence[key]
        if isinstance(value, dict):
            lines.append(f"{key}: " + "; ".join(f"{k}={_value(v, 60)}" for k, v in value.items()))
        else:
            lines.append(f"{key}: {_value(value)}")
    return lines


def _member_table(rows: list[ArticleRow]) -> Table:
    table = Table(expand=True, show_edge=False, pad_edge=False)
    table.add_column("", width=1, no_wrap=True)
    table.add_column("sim", justify="right", width=5, no_wrap=True)
    table.add_column("flags", width=13, no_wrap=True)
    table.add_column("site / url", ratio=2, overflow="fold")
    table.add_column("evidence", ratio=3, overflow="fold")
    for row in rows:
        flags = list(row.flags or [])
        table.add_row(
            Text("★", style="bold yellow") if row.is_canonical else "",
            f"{row.similarity:.2f}" if row.similarity is not None else "–",
            Text(", ".join(flags) or "—", style="bold magenta" if flags else "dim"),
            Text.assemble((row.site or "?", "bold"), "\n", (row.url, "dim")),
            Text("\n".join(evidence_lines(row.evidence, flags))) if row.evidence else Text("—", style="dim"),
        )
    return table


def render_clusters(store: Store, console: Console) -> None:
    """Every cluster with copies: its canonical, then each member's similarity, flags and evidence."""
    sizes = store.cluster_sizes()
    multi = [(cid, n) for cid, n in sizes if n > 1]
    flag_counts: dict[str, int] = {}
    for cluster_id, size in multi:
        ids = store.members(cluster_id)
        rows = sorted(store.article_rows(ids).values(),
                      key=lambda r: (not r.is_canonical, -(r.similarity or 0.0), r.id))
        canonicals = [r for r in rows if r.is_canonical]
        for row in rows:
            for flag in row.flags or []:
                flag_counts[flag] = flag_counts.get(flag, 0) + 1
        head = canonicals[0] if canonicals else rows[0]
        title = Text.assemble(("canonical: ", "bold"), (head.title or "(untitled)", "bold cyan"), "\n",
                              (f"{head.site or '?'} · {head.url}", "dim"))
        parts: list[Any] = [title]
        if len(canonicals) != 1:
            parts.append(Text(f"warning: {len(canonicals)} canonicals in this cluster", style="bold red"))
        parts.append(_member_table(rows))
        console.print(Panel(Group(*parts), title=f"cluster {cluster_id} · {size} articles", title_align="left"))
    singletons = sum(1 for _, n in sizes if n == 1)
    articles = sum(n for _, n in sizes)
    footer = Table.grid(padding=(0, 2))
    footer.add_column(style="bold")
    footer.add_column()
    footer.add_row("articles", str(articles))
    footer.add_row("clusters", f"{len(sizes)} ({len(multi)} with copies, {singletons} singletons)")
    footer.add_row("copies", str(sum(n - 1 for _, n in multi)))
    footer.add_row("flags", _counts(flag_counts) or "none")
    if not sizes:
        console.print("No articles stored yet: run `reprint ingest SOURCE...` first.", style="yellow")
    console.print(Panel(footer, title="totals", expand=False))
