"""``report.html``: a benchmark's tables, plots (embedded PNGs), throughput and environment.

One self-contained page beside ``results.json`` / ``results.md``: the bench's markdown (our
rows beside the anchors) rendered to HTML, its plots embedded as base64 PNGs, then a
throughput section (fit and scoring rates, peak memory) and the run's seeds, configuration,
versions and machine, both read from the results.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.results import machine_text, write_results

REPORT_FILE = "report.html"
_TABLE_RULE = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_STYLE = (
    "body{font-family:sans-serif;max-width:72em;margin:auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 8px;border:1px solid #ddd}"
    "td{text-align:right}td:first-child{text-align:left}img{max-width:100%}"
    "figure{margin:1em 0}figcaption{font-size:90%;color:#444}pre{background:#f6f6f6;padding:.5em}"
)


@dataclass(frozen=True)
class Figure:
    """A PNG on disk and its caption.

    Examples
    --------
    >>> Figure(Path("plots/roc.png"), "first seed").caption
    'first seed'
    """

    path: Path
    caption: str = ""


@dataclass(frozen=True)
class Section:
    """One part of the page: a title, markdown text (tables, lists) and figures.

    Examples
    --------
    >>> Section("Results", "| a |\\n|---|\\n| 1 |").title
    'Results'
    """

    title: str
    markdown: str = ""
    figures: Sequence[Figure] = ()


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<i>\1</i>", text)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def markdown_to_html(text: str, heading_offset: int = 2) -> str:
    """The markdown our benches write (headings, tables, lists, code blocks) as HTML.

    Headings move down ``heading_offset`` levels so they nest under the page's sections.

    Examples
    --------
    >>> markdown_to_html("# T\\n\\n| a | b |\\n|---|---:|\\n| **x** | 1 |\\n\\n- one `c`")
    '<h3>T</h3>\\n<table><tr><th>a</th><th>b</th></tr><tr><td><b>x</b></td><td>1</td></tr></table>\\n<ul><li>one <code>c</code></li></ul>'
    """  # noqa: E501
    lines = text.splitlines()
    parts: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        heading = _HEADING.match(line)
        if line.startswith("```"):
            end = i + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            parts.append("<pre>" + html.escape("\n".join(lines[i + 1 : end])) + "</pre>")
            i = end + 1
        elif heading:
            level = min(len(heading.group(1)) + heading_offset, 6)
            parts.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            i += 1
        elif line.startswith("|"):
            rows: list[str] = []
            header = True
            while i < len(lines) and lines[i].startswith("|"):
                if not _TABLE_RULE.match(lines[i]):
                    tag = "th" if header else "td"
                    cells = "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in _cells(lines[i]))
                    rows.append(f"<tr>{cells}</tr>")
                    header = False
                i += 1
            parts.append("<table>" + "".join(rows) + "</table>")
        elif line.lstrip().startswith("- "):
            items: list[str] = []
            while i < len(lines) and lines[i].lstrip().startswith("- "):
                items.append(f"<li>{_inline(lines[i].lstrip()[2:])}</li>")
                i += 1
            parts.append("<ul>" + "".join(items) + "</ul>")
        elif not line.strip():
            i += 1
        else:
            paragraph: list[str] = []
            while (
                i < len(lines)
                and lines[i].strip()
                and not lines[i].startswith(("|", "#", "```"))
                and not lines[i].lstrip().startswith("- ")
            ):
                paragraph.append(lines[i])
                i += 1
            parts.append("<p>" + _inline(" ".join(paragraph)) + "</p>")
    return "\n".join(parts)


def _rate(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.0f}"


def throughput_markdown(entries: Sequence[Mapping[str, Any]]) -> str:
    """The throughput section: per detector (or run), fit and scoring rates and peak memory.

    ``entries`` are :meth:`benchmarks.results.Throughput.to_dict` dicts.

    Examples
    --------
    >>> from benchmarks.results import Throughput
    >>> entry = Throughput("ecod", "rows", 1000, 0.5, 400, 0.1, 120.0, "block").to_dict()
    >>> print(throughput_markdown([entry]))
    ## Throughput
    <BLANKLINE>
    | detector | unit | fit /s | score /s | read /s | peak memory (MB) |
    |---|---|---:|---:|---:|---:|
    | ecod | rows | 2,000 | 4,000 | - | 120 |
    <BLANKLINE>
    Peak memory: the process's resident high-water mark (VmHWM), reset before each detector.
    """
    lines = [
        "## Throughput",
        "",
        "| detector | unit | fit /s | score /s | read /s | peak memory (MB) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for entry in entries:
        memory = entry.get("peak_memory_mb")
        read = "-"
        if entry.get("read_per_s") is not None:
            read = f"{_rate(entry['read_per_s'])} {entry.get('read_unit', 'events')}"
        lines.append(
            f"| {entry['name']} | {entry['unit']} | {_rate(entry.get('fit_per_s'))} | "
            f"{_rate(entry.get('score_per_s'))} | {read} | "
            f"{'-' if memory is None else f'{memory:,.0f}'} |"
        )
    scopes = {entry.get("memory_scope", "process") for entry in entries}
    note = (
        "reset before each detector"
        if scopes == {"block"}
        else "of the whole process so far (it could not be reset)"
    )
    lines += ["", f"Peak memory: the process's resident high-water mark (VmHWM), {note}."]
    return "\n".join(lines)


def _figure_html(figure: Figure) -> str:
    data = base64.b64encode(figure.path.read_bytes()).decode("ascii")
    caption = f"<figcaption>{_inline(figure.caption)}</figcaption>" if figure.caption else ""
    alt = html.escape(figure.caption or figure.path.stem)
    return f"<figure><img alt='{alt}' src='data:image/png;base64,{data}'>{caption}</figure>"


def _run_markdown(results: Mapping[str, Any]) -> str:
    rows = ["| what | value |", "|---|---|"]
    for key in ("seeds", "seed", "config", "seconds", "versions", "machine", "git_commit"):
        if key in results and results[key] is not None:
            value = results[key]
            if key == "machine":
                value = machine_text(value)
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            rows.append(f"| {key} | `{text.replace('|', '/')}` |")
    return "\n".join(rows)


def write_report(
    out: str | os.PathLike[str],
    title: str,
    results: Mapping[str, Any],
    sections: Sequence[Section],
) -> Path:
    """Write ``report.html`` into ``out``: ``sections``, then throughput and the run's facts.

    Parameters
    ----------
    out
        The bench's output folder (beside ``results.json``); created if missing.
    title
        The page title.
    results
        What the bench writes to ``results.json``; its ``throughput`` list (see
        :class:`benchmarks.results.Throughput`) becomes the throughput section, its ``seeds``
        or ``seed``, ``config``, ``versions`` and ``machine`` the closing table.
    sections
        The bench's own parts: its tables (markdown) and figures (PNGs, embedded as base64).

    Returns
    -------
    Path
        The written ``report.html``.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = write_report(folder, "toy", {"seed": 0, "throughput": []}, [Section("A", "x")])
    >>> page = path.read_text()
    >>> "<h2 id='throughput'>Throughput</h2>" in page, "<p>x</p>" in page
    (True, True)
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{_inline(section.title)}</h2>")
        if section.markdown:
            body.append(markdown_to_html(section.markdown))
        body += [_figure_html(figure) for figure in section.figures]
    throughput = results.get("throughput") or []
    body.append("<h2 id='throughput'>Throughput</h2>")
    if throughput:
        # The markdown's own heading is dropped: the section heading above carries the anchor.
        table = throughput_markdown(throughput).split("\n", 2)[2]
        body.append(markdown_to_html(table))
    else:
        body.append("<p>Not measured in this run.</p>")
    body += ["<h2>Run</h2>", markdown_to_html(_run_markdown(results))]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    path = folder / REPORT_FILE
    path.write_text(page)
    return path


def write_bench_outputs(
    out: str | os.PathLike[str],
    title: str,
    results: Mapping[str, Any],
    markdown: str,
    figure_sections: Sequence[Section] = (),
) -> str:
    """Write a bench's ``results.json``, ``results.md`` and ``report.html``; return the markdown.

    ``results.md`` is ``markdown`` (our rows beside the anchors) followed by the throughput
    section; ``report.html`` holds ``markdown`` as its first section, then ``figure_sections``,
    throughput and the run's facts.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> text = write_bench_outputs(folder, "toy", {"throughput": []}, "# toy\\n")
    >>> sorted(p.name for p in folder.iterdir())
    ['report.html', 'results.json', 'results.md']
    >>> (folder / "results.md").read_text() == text
    True
    """
    full = markdown.rstrip("\n") + "\n\n" + throughput_markdown(results.get("throughput") or [])
    full += "\n"
    write_results(out, results, full)
    write_report(out, title, results, [Section("Results", markdown), *figure_sections])
    return full
