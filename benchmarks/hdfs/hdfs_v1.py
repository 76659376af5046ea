"""Full HDFS_v1 by path: ``HDFS.log`` mined by our drain parser into block sessions.

loghub's HDFS_v1 is ``HDFS.log`` (11,175,629 lines such as ``081109 203615 148 INFO
dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660
terminating``) and ``anomaly_label.csv`` (``BlockId,Label`` with ``Normal`` / ``Anomaly``).
The log is read once, line by line, through :class:`~streams.parsers.drain.DrainTemplateParser`
(the same parser the daemon uses); a line that the parser rejects becomes a dead letter (its
line number and reason are kept, the count reported) and never stops the read. Every
``blk_-?\\d+`` a line names gets the line's template id appended to its session (a line naming
two blocks belongs to both; a block named twice in one line counts once, as deep-loglizer
does).

The split reproduces deep-loglizer's ``data_preprocess/preprocess_hdfs.py`` (which produced
the HDFS_100k ``split_deeploglizer`` column): sessions in order of their first line, shuffled
with numpy's legacy ``RandomState(42)`` (the script's ``np.random.seed(42)`` and
``np.random.shuffle``), the first ``int(0.8 n)`` of the shuffled order are ``train``, the last
``int(0.2 n)`` are ``test``; when the two do not add up to ``n`` the session between them is
``unused``, as in the script. It is a seeded random 80/20 split of the sessions, not a time
order split: the same seed gives the same split here, but not the very same sessions as the
published HDFS_100k file (its row order does not follow from ``RandomState(42)``).
"""

from __future__ import annotations

import csv
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks.hdfs.data import HdfsDataError, HdfsSessions
from benchmarks.results import progress_bar
from streams.errors import DeadLetter, ParseError
from streams.parsers.drain import DrainTemplateParser

log = logging.getLogger(__name__)

BLOCK_ID = re.compile(r"blk_-?\d+")
#: Drain's similarity threshold of loghub's benchmark settings for HDFS (He et al. 2017;
#: Zhu et al. 2019). Our parser's general default (0.4) merges HDFS templates that differ in
#: one word of short lines (grouping accuracy 0.82 instead of 0.998 on loghub's 2k sample).
HDFS_PARSER_OPTIONS: Mapping[str, Any] = {"sim_th": 0.5}
DEEPLOGLIZER_TEST_RATIO = 0.2
DEEPLOGLIZER_SEED = 42
LABELS = {"Normal": 0, "Anomaly": 1}
#: Dead letters kept verbatim (the rest are counted by reason).
MAX_DEAD_LETTERS_KEPT = 20
_PROGRESS_EVERY = 10_000


@dataclass(frozen=True)
class HdfsV1Read:
    """The sessions of one read of ``HDFS.log`` and what the read saw.

    Examples
    --------
    >>> import numpy as np
    >>> sessions = HdfsSessions(["blk_1"], np.array([0]), np.array(["train"]), [[0]], ["a"])
    >>> HdfsV1Read(sessions, lines=2, dead_letters=1).lines
    2
    """

    sessions: HdfsSessions
    lines: int = 0
    blank_lines: int = 0
    dead_letters: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    dead_letter_samples: list[DeadLetter] = field(default_factory=list)
    lines_without_block: int = 0
    unlabeled_blocks: int = 0
    parse_seconds: float = 0.0

    def stats(self) -> dict[str, Any]:
        """Counts and the parsing rate, for ``results.json``."""
        parsed = self.lines - self.blank_lines
        return {
            "lines": self.lines,
            "blank_lines": self.blank_lines,
            "dead_letters": self.dead_letters,
            "dead_letter_reasons": dict(self.dead_letter_reasons),
            "dead_letter_samples": [letter.to_dict() for letter in self.dead_letter_samples],
            "lines_without_block": self.lines_without_block,
            "unlabeled_blocks": self.unlabeled_blocks,
            "sessions": len(self.sessions.block_ids),
            "templates": len(self.sessions.templates),
            "parse_seconds": self.parse_seconds,
            "lines_per_s": parsed / self.parse_seconds if self.parse_seconds > 0 else None,
        }


def read_labels(path: str | os.PathLike[str]) -> dict[str, int]:
    """``anomaly_label.csv`` as ``{block id: 1 if Anomaly else 0}``.

    Raises :class:`HdfsDataError` naming the file (and line) when it is missing, lacks the
    ``BlockId`` / ``Label`` columns or holds a label other than ``Normal`` / ``Anomaly``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     file = pathlib.Path(folder) / "anomaly_label.csv"
    ...     _ = file.write_text("BlockId,Label\\nblk_1,Normal\\nblk_-2,Anomaly\\n")
    ...     read_labels(file)
    {'blk_1': 0, 'blk_-2': 1}
    """
    file = Path(path)
    if not file.is_file():
        raise HdfsDataError(f"{file}: no such label file")
    try:
        return _read_labels(file)
    except OSError as exc:
        raise HdfsDataError(f"{file}: cannot read ({exc.strerror or exc})") from None


def _read_labels(file: Path) -> dict[str, int]:
    labels: dict[str, int] = {}
    with file.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if "BlockId" not in header or "Label" not in header:
            raise HdfsDataError(f"{file}: expected columns BlockId,Label, got {header}")
        block_at, label_at = header.index("BlockId"), header.index("Label")
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                block, label = row[block_at].strip(), row[label_at].strip()
            except IndexError:
                raise HdfsDataError(f"{file}:{number}: expected {len(header)} fields") from None
            if label not in LABELS:
                raise HdfsDataError(
                    f"{file}:{number}: Label {label[:40]!r} is not Normal or Anomaly"
                )
            labels[block] = LABELS[label]
    if not labels:
        raise HdfsDataError(f"{file}: no labelled blocks")
    return labels


def deeploglizer_split(
    n_sessions: int, test_ratio: float = DEEPLOGLIZER_TEST_RATIO, seed: int = DEEPLOGLIZER_SEED
) -> NDArray[np.str_]:
    """``train`` / ``test`` / ``unused`` per session (in first-appearance order), as deep-loglizer.

    Examples
    --------
    >>> deeploglizer_split(11).tolist().count("unused")  # int(8.8) + int(2.2) = 10 of 11
    1
    >>> sorted(set(deeploglizer_split(10).tolist()))
    ['test', 'train']
    """
    if not 0 <= test_ratio <= 1:
        raise ValueError(f"test_ratio must be in [0, 1], got {test_ratio!r}")
    order = np.arange(n_sessions)
    np.random.RandomState(seed).shuffle(order)
    n_train = int((1 - test_ratio) * n_sessions)
    n_test = int(test_ratio * n_sessions)
    split = np.full(n_sessions, "unused", dtype="<U6")
    split[order[:n_train]] = "train"
    split[order[n_sessions - n_test :]] = "test"
    return split


def read_hdfs_v1(
    log_path: str | os.PathLike[str],
    label_path: str | os.PathLike[str],
    *,
    progress: bool = False,
    parser_options: Mapping[str, Any] | None = None,
    test_ratio: float = DEEPLOGLIZER_TEST_RATIO,
    split_seed: int = DEEPLOGLIZER_SEED,
) -> HdfsV1Read:
    """Mine ``HDFS.log`` into labelled block sessions; see the module text for the split.

    Parameters
    ----------
    log_path, label_path
        ``HDFS.log`` and ``anomaly_label.csv``.
    progress
        A progress bar (bytes read) on stderr.
    parser_options
        Keyword arguments of :class:`DrainTemplateParser`; ``None``:
        :data:`HDFS_PARSER_OPTIONS`.
    test_ratio, split_seed
        deep-loglizer's split parameters (0.2 and 42 there).

    Returns
    -------
    HdfsV1Read
        The sessions (keys = drain cluster ids in order of creation, ``templates`` their final
        text) and the read's counts. Blocks absent from the label file are dropped and counted.
    """
    if not 0 <= test_ratio <= 1:
        raise ValueError(f"test_ratio must be in [0, 1], got {test_ratio!r}")
    log_file = Path(log_path)
    if not log_file.is_file():
        raise HdfsDataError(f"{log_file}: no such log file")
    labels = read_labels(label_path)
    options = dict(HDFS_PARSER_OPTIONS if parser_options is None else parser_options)
    try:
        parser = DrainTemplateParser(**options)
    except (TypeError, ValueError) as exc:
        raise HdfsDataError(f"drain parser options {options}: {exc}") from None
    try:
        return _read_log(log_file, labels, parser, progress, test_ratio, split_seed)
    except OSError as exc:
        raise HdfsDataError(f"{log_file}: cannot read ({exc.strerror or exc})") from None


def _read_log(
    log_file: Path,
    labels: Mapping[str, int],
    parser: DrainTemplateParser,
    progress: bool,
    test_ratio: float,
    split_seed: int,
) -> HdfsV1Read:
    cluster_sequences: dict[str, list[int]] = {}
    reasons: Counter[str] = Counter()
    samples: list[DeadLetter] = []
    lines = blank = without_block = 0
    source = str(log_file)
    started = time.perf_counter()
    with (
        log_file.open("rb") as handle,
        progress_bar(log_file.stat().st_size, "HDFS.log", "B", progress) as bar,
    ):
        pending_bytes = 0
        for raw in handle:
            lines += 1
            pending_bytes += len(raw)
            if lines % _PROGRESS_EVERY == 0:
                bar.update(pending_bytes)
                pending_bytes = 0
            text = raw.decode("utf-8", errors="replace")
            try:
                event = parser.parse(text)
            except ParseError as exc:
                reasons[exc.reason] += 1
                if len(samples) < MAX_DEAD_LETTERS_KEPT:
                    samples.append(
                        DeadLetter(source, lines, exc.reason, text.rstrip("\r\n"), exc.detail)
                    )
                    log.warning("%s:%d: dead letter (%s)", source, lines, exc.reason)
                continue
            if event is None:
                blank += 1
                continue
            cluster = int(event.action.rpartition(":")[2])
            blocks = BLOCK_ID.findall(text)
            if not blocks:
                without_block += 1
            for block in dict.fromkeys(blocks):
                cluster_sequences.setdefault(block, []).append(cluster)
        bar.update(pending_bytes)
    parse_seconds = time.perf_counter() - started
    templates_by_id = parser.templates()
    cluster_ids = sorted(templates_by_id)
    key_of = {cluster: key for key, cluster in enumerate(cluster_ids)}
    labelled = [block for block in cluster_sequences if block in labels]
    unlabeled = len(cluster_sequences) - len(labelled)
    if unlabeled:
        log.warning("%s: %d blocks have no label (dropped)", source, unlabeled)
    sessions = HdfsSessions(
        block_ids=labelled,
        labels=np.array([labels[block] for block in labelled], dtype=np.int64),
        split=deeploglizer_split(len(labelled), test_ratio, split_seed),
        sequences=[[key_of[c] for c in cluster_sequences[block]] for block in labelled],
        templates=[templates_by_id[cluster] for cluster in cluster_ids],
    )
    read = HdfsV1Read(
        sessions=sessions,
        lines=lines,
        blank_lines=blank,
        dead_letters=sum(reasons.values()),
        dead_letter_reasons=dict(reasons),
        dead_letter_samples=samples,
        lines_without_block=without_block,
        unlabeled_blocks=unlabeled,
        parse_seconds=parse_seconds,
    )
    log.info(
        "%s: %d lines, %d sessions, %d templates, %d dead letters in %.1f s",
        source,
        lines,
        len(labelled),
        len(cluster_ids),
        read.dead_letters,
        parse_seconds,
    )
    return read


def load_hdfs_v1(
    log_path: str | os.PathLike[str],
    label_path: str | os.PathLike[str],
    *,
    progress: bool = False,
    parser_options: Mapping[str, Any] | None = None,
) -> HdfsSessions:
    """Full HDFS_v1 as block sessions with deep-loglizer's split (:func:`read_hdfs_v1`)."""
    return read_hdfs_v1(
        log_path, label_path, progress=progress, parser_options=parser_options
    ).sessions
