"""HDFS log sessions on disk: loghub's HDFS_100k (deep-loglizer split) and DeepLog's key files.

``hdfs_100k/hdfs_100k_sessions.csv`` has one row per block session: ``BlockId``, ``Label``
(1 = anomalous), ``split_deeploglizer`` (train/test) and ``TemplateSequence`` (space-separated
template ids ``T01``..``T19``). ``hdfs_100k/deeplog_hdfs/hdfs_train`` and ``hdfs_test_abnormal``
hold one session per line as space-separated integer log keys (DeepLog's files).

The data directory is the folder holding the CSV, or a parent holding it as ``hdfs_100k/``
(the ``BASELINER_DATA`` layout); never hard-coded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray

from benchmarks.datadir import resolve_dataset_dir

SESSIONS_FILE = "hdfs_100k_sessions.csv"
TEMPLATES_FILE = "templates.csv"
DEEPLOG_DIR = "deeplog_hdfs"

Sequences = list[list[int]]


class HdfsDataError(ValueError):
    """A file is missing or malformed (the message names it)."""


@dataclass(frozen=True)
class HdfsSessions:
    """Block sessions as integer key sequences (template ``T01`` -> key 0, ...), with labels.

    Examples
    --------
    >>> import numpy as np
    >>> sessions = HdfsSessions(["b1", "b2"], np.array([0, 1]), np.array(["train", "test"]),
    ...                         [[0, 1], [2]], ["T01", "T02", "T03"])
    >>> sessions.part("test")[0], sessions.part("test")[1].tolist()
    ([[2]], [1])
    """

    block_ids: list[str]
    labels: NDArray[np.int64]
    split: NDArray[np.str_]
    sequences: Sequences
    templates: list[str]

    def part(self, name: str, *, normal_only: bool = False) -> tuple[Sequences, NDArray[np.int64]]:
        """The sequences and labels of the ``train`` or ``test`` part (optionally normal only)."""
        rows = self.split == name
        if normal_only:
            rows &= self.labels == 0
        chosen = np.flatnonzero(rows)
        return [self.sequences[i] for i in chosen], self.labels[chosen]


def resolve_hdfs_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding ``hdfs_100k_sessions.csv``, from ``data_dir`` or ``$BASELINER_DATA``."""
    return resolve_dataset_dir(
        data_dir,
        "hdfs_100k",
        lambda folder: (folder / SESSIONS_FILE).is_file(),
        HdfsDataError,
        SESSIONS_FILE,
    )


def load_hdfs_100k(data_dir: str | os.PathLike[str] | None = None) -> HdfsSessions:
    """Load HDFS_100k's sessions; template ids become keys 0.. in sorted id order."""
    folder = resolve_hdfs_dir(data_dir)
    path = folder / SESSIONS_FILE
    try:
        frame = pl.read_csv(path, schema_overrides={"Label": pl.Int64})
    except (pl.exceptions.PolarsError, OSError) as exc:
        # polars explains a bad cell over several lines ("You might want to try ..."): keep
        # the first, which names the column and the value.
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise HdfsDataError(f"{path}: cannot read ({first.strip()[:200]})") from None
    expected = {"BlockId", "Label", "split_deeploglizer", "TemplateSequence"}
    if not expected <= set(frame.columns):
        raise HdfsDataError(f"{path}: expected columns {sorted(expected)}, got {frame.columns}")
    bad_labels = frame.filter(~pl.col("Label").is_in([0, 1]))
    if bad_labels.height:
        raise HdfsDataError(
            f"{path}: Label must be 0 or 1, got {bad_labels['Label'][0]!r} "
            f"(block {bad_labels['BlockId'][0]})"
        )
    tokens = [str(s).split() for s in frame["TemplateSequence"].fill_null("")]
    templates_path = folder / TEMPLATES_FILE
    if templates_path.is_file():
        templates = sorted(pl.read_csv(templates_path)["TemplateId"].cast(pl.Utf8).to_list())
    else:
        templates = sorted({token for row in tokens for token in row})
    key_of = {template: key for key, template in enumerate(templates)}
    unknown = {token for row in tokens for token in row} - set(key_of)
    if unknown:
        raise HdfsDataError(f"{path}: template ids not in {TEMPLATES_FILE}: {sorted(unknown)}")
    return HdfsSessions(
        block_ids=frame["BlockId"].cast(pl.Utf8).to_list(),
        labels=frame["Label"].to_numpy().astype(np.int64),
        split=frame["split_deeploglizer"].cast(pl.Utf8).to_numpy().astype(np.str_),
        sequences=[[key_of[token] for token in row] for row in tokens],
        templates=templates,
    )


def read_key_sequences(path: Path) -> Sequences:
    """One session per non-empty line of space-separated integer keys (DeepLog's format).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     file = pathlib.Path(folder) / "keys"
    ...     _ = file.write_text("5 5 22\\n\\n11 9 \\n")
    ...     read_key_sequences(file)
    [[5, 5, 22], [11, 9]]
    """
    if not path.is_file():
        raise HdfsDataError(f"{path}: no such file")
    sequences = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            sequences.append([int(token) for token in line.split()])
        except ValueError as exc:
            raise HdfsDataError(f"{path}:{number}: not integer keys ({exc})") from exc
    return sequences


def load_deeplog(data_dir: str | os.PathLike[str] | None = None) -> tuple[Sequences, Sequences]:
    """DeepLog's ``hdfs_train`` (normal) and ``hdfs_test_abnormal`` sessions."""
    folder = resolve_hdfs_dir(data_dir) / DEEPLOG_DIR
    return read_key_sequences(folder / "hdfs_train"), read_key_sequences(
        folder / "hdfs_test_abnormal"
    )
