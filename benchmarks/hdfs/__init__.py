"""HDFS log-sequence anomaly benchmarks: HDFS_100k sessions, full HDFS_v1 by path, DeepLog's key
files, and log-parsing accuracy on loghub's samples."""

from benchmarks.hdfs.data import (
    HdfsDataError,
    HdfsSessions,
    load_deeplog,
    load_hdfs_100k,
    read_key_sequences,
    resolve_hdfs_dir,
)
from benchmarks.hdfs.hdfs_v1 import (
    HdfsV1Read,
    deeploglizer_split,
    load_hdfs_v1,
    read_hdfs_v1,
    read_labels,
)
from benchmarks.hdfs.parsing import grouping_accuracy, run_logparse
from benchmarks.hdfs.runner import (
    SESSION_DETECTORS,
    f1_ceiling,
    precision_recall_f1,
    render_markdown,
    run_deeplog,
    run_hdfs,
    run_hdfs_100k,
    run_hdfs_v1,
    run_session_detectors,
)

__all__ = [
    "SESSION_DETECTORS",
    "HdfsDataError",
    "HdfsSessions",
    "HdfsV1Read",
    "deeploglizer_split",
    "f1_ceiling",
    "grouping_accuracy",
    "load_deeplog",
    "load_hdfs_100k",
    "load_hdfs_v1",
    "precision_recall_f1",
    "read_hdfs_v1",
    "read_key_sequences",
    "read_labels",
    "render_markdown",
    "resolve_hdfs_dir",
    "run_deeplog",
    "run_hdfs",
    "run_hdfs_100k",
    "run_hdfs_v1",
    "run_logparse",
    "run_session_detectors",
]
