"""Log-parsing accuracy of our drain parser on loghub's 2k samples (HDFS, Thunderbird).

Grouping accuracy (Zhu et al. 2019, "Tools and Benchmarks for Automated Log Parsing",
ICSE-SEIP): a line is parsed correctly when the set of lines sharing its predicted template
is exactly the set sharing its true template; the accuracy is the share of such lines. The
truth is loghub's ``EventId`` per line (``<name>_2k.log_structured.csv``).

One parser configuration per dataset (:data:`LOGHUB_CONFIGS`): Drain's similarity threshold
0.5 (loghub's setting for both), our default masks (block ids, IPv4 with port, hex, numbers)
and, for Thunderbird, a header regex that strips loghub's ``<Label> <Timestamp> <Date> <User>
<Month> <Day> <Time> <Location>`` fields so that the component and message are mined (the
date becomes the event time). HDFS lines use the parser's built-in HDFS_v1 header: the pid,
level and component stay in the mined text.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.datadir import resolve_dataset_dir
from benchmarks.hdfs.data import HdfsDataError
from benchmarks.report import write_bench_outputs
from benchmarks.results import Throughput, environment, load_anchors
from streams.errors import ParseError
from streams.parsers.drain import DrainTemplateParser

log = logging.getLogger(__name__)

#: Thunderbird's loghub header up to the component:
#: ``- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond[2916]: ...``.
THUNDERBIRD_HEADER = (
    r"\S+ \d+ (?P<ts>\d{4}\.\d{2}\.\d{2}) \S+ [A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2} \S+ "
)


@dataclass(frozen=True)
class LoghubConfig:
    """One loghub 2k sample and the parser options used on it.

    Examples
    --------
    >>> LOGHUB_CONFIGS["HDFS"].log_file
    'HDFS/HDFS_2k.log'
    """

    name: str
    log_file: str
    structured_file: str
    parser_options: Mapping[str, Any]


LOGHUB_CONFIGS: dict[str, LoghubConfig] = {
    "HDFS": LoghubConfig(
        "HDFS", "HDFS/HDFS_2k.log", "HDFS/HDFS_2k.log_structured.csv", {"sim_th": 0.5}
    ),
    "Thunderbird": LoghubConfig(
        "Thunderbird",
        "Thunderbird/Thunderbird_2k.log",
        "Thunderbird/Thunderbird_2k.log_structured.csv",
        {"sim_th": 0.5, "timestamp_regex": THUNDERBIRD_HEADER, "timestamp_format": "%Y.%m.%d"},
    ),
}
"""The loghub samples of the parsing bench and their (stated) parser configuration."""


def grouping_accuracy(predicted_ids: Sequence[Hashable], truth_ids: Sequence[Hashable]) -> float:
    """Share of lines whose predicted group holds exactly the lines of their true group.

    Examples
    --------
    >>> grouping_accuracy(["a", "a", "b", "c"], ["X", "X", "Y", "Y"])
    0.5
    >>> grouping_accuracy([], [])
    0.0
    """
    if len(predicted_ids) != len(truth_ids):
        raise ValueError(f"{len(predicted_ids)} predicted ids for {len(truth_ids)} true ids")
    predicted_groups: dict[Hashable, list[int]] = {}
    truth_groups: dict[Hashable, list[int]] = {}
    for index, (predicted, truth) in enumerate(zip(predicted_ids, truth_ids, strict=True)):
        predicted_groups.setdefault(predicted, []).append(index)
        truth_groups.setdefault(truth, []).append(index)
    # Both groups are built in index order, so equal sets are equal lists.
    correct = sum(
        len(group)
        for group in predicted_groups.values()
        if truth_groups[truth_ids[group[0]]] == group
    )
    return correct / len(truth_ids) if truth_ids else 0.0


def _truth_ids(path: Path) -> list[str]:
    import polars as pl

    if not path.is_file():
        raise HdfsDataError(f"{path}: no such structured log file")
    frame = pl.read_csv(path, infer_schema=False)
    if "EventId" not in frame.columns:
        raise HdfsDataError(f"{path}: no EventId column")
    return [str(value) for value in frame["EventId"]]


def parse_accuracy(folder: Path, config: LoghubConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Grouping accuracy of a fresh drain parser over one sample; the row and its throughput."""
    log_path = folder / config.log_file
    if not log_path.is_file():
        raise HdfsDataError(f"{log_path}: no such log file")
    truth = _truth_ids(folder / config.structured_file)
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    if len(lines) != len(truth):
        raise HdfsDataError(f"{log_path}: {len(lines)} lines but {len(truth)} EventIds")
    parser = DrainTemplateParser(**config.parser_options)
    predicted: list[str] = []
    dead = 0
    started = time.perf_counter()
    for number, line in enumerate(lines, start=1):
        try:
            event = parser.parse(line)
        except ParseError as exc:
            # A rejected line is its own group: it can only be right if it is alone.
            dead += 1
            log.warning("%s:%d: dead letter (%s)", log_path, number, exc.reason)
            predicted.append(f"dead:{number}")
            continue
        predicted.append(f"blank:{number}" if event is None else event.action)
    seconds = time.perf_counter() - started
    row = {
        "dataset": config.name,
        "lines": len(lines),
        "grouping_accuracy": grouping_accuracy(predicted, truth),
        "templates_found": len(set(predicted)),
        "templates_true": len(set(truth)),
        "dead_letters": dead,
        "parser_options": dict(config.parser_options),
        "seconds": seconds,
        "lines_per_s": len(lines) / seconds if seconds > 0 else None,
    }
    throughput = Throughput(
        name=f"drain parser ({config.name})",
        unit="lines",
        fit_items=0,
        fit_seconds=0.0,
        score_items=0,
        score_seconds=0.0,
        read_items=len(lines),
        read_seconds=seconds,
        read_unit="lines",
    ).to_dict()
    return row, throughput


def resolve_loghub_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding loghub's ``HDFS/`` and ``Thunderbird/`` samples (``loghub_2k``)."""
    return resolve_dataset_dir(
        data_dir,
        "loghub_2k",
        lambda folder: (folder / LOGHUB_CONFIGS["HDFS"].log_file).is_file(),
        HdfsDataError,
        LOGHUB_CONFIGS["HDFS"].log_file,
    )


def run_logparse(
    data_dir: str | os.PathLike[str] | None,
    out: str | os.PathLike[str] | None,
    datasets: Sequence[str] | None = None,
) -> tuple[dict[str, Any], str]:
    """Grouping accuracy on each loghub sample beside the published Drain numbers.

    Writes ``results.json``, ``results.md`` and ``report.html`` into ``out`` (unless ``None``);
    returns every number and the markdown.
    """
    folder = resolve_loghub_dir(data_dir)
    rows, throughput = [], []
    for name in datasets or list(LOGHUB_CONFIGS):
        if name not in LOGHUB_CONFIGS:
            raise HdfsDataError(f"unknown loghub sample {name!r}; choose {sorted(LOGHUB_CONFIGS)}")
        row, entry = parse_accuracy(folder, LOGHUB_CONFIGS[name])
        log.info("%s grouping accuracy %.4f", name, row["grouping_accuracy"])
        rows.append(row)
        throughput.append(entry)
    results: dict[str, Any] = {
        "benchmark": "logparse",
        "rows": rows,
        "anchors": load_anchors("logparse"),
        "throughput": throughput,
        **environment(),
    }
    markdown = render_logparse_markdown(results)
    if out is not None:
        markdown = write_bench_outputs(out, "Log parsing accuracy", results, markdown)
    return results, markdown


def render_logparse_markdown(results: Mapping[str, Any]) -> str:
    """One row per sample: our grouping accuracy, templates found, the published Drain value."""
    published = {a["dataset"]: a for a in results["anchors"] if a["metric"] == "grouping_accuracy"}
    lines = [
        "# Log parsing accuracy (loghub 2k samples, our drain parser)",
        "",
        "| dataset | grouping accuracy | published Drain | templates (ours / true) | "
        "dead letters | lines/s | parser options |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        anchor = published.get(f"loghub_2k/{row['dataset']}")
        reference = "-" if anchor is None else f"{anchor['value']}"
        options = ", ".join(f"{k}={v}" for k, v in row["parser_options"].items())
        rate = "-" if row["lines_per_s"] is None else f"{row['lines_per_s']:,.0f}"
        lines.append(
            f"| {row['dataset']} | **{row['grouping_accuracy']:.4f}** | {reference} | "
            f"{row['templates_found']} / {row['templates_true']} | {row['dead_letters']} | "
            f"{rate} | `{options}` |"
        )
    sources = sorted({a["source"] for a in published.values()})
    if sources:
        lines += ["", "Published: " + "; ".join(sources)]
    lines.append("")
    return "\n".join(lines)
