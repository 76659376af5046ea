"""HDFS log-sequence anomaly benchmarks: HDFS_100k sessions and DeepLog's HDFS key files."""

from benchmarks.hdfs.data import (
    HdfsDataError,
    HdfsSessions,
    load_deeplog,
    load_hdfs_100k,
    read_key_sequences,
    resolve_hdfs_dir,
)
from benchmarks.hdfs.runner import (
    SESSION_DETECTORS,
    f1_ceiling,
    precision_recall_f1,
    render_markdown,
    run_deeplog,
    run_hdfs,
    run_hdfs_100k,
)

__all__ = [
    "SESSION_DETECTORS",
    "HdfsDataError",
    "HdfsSessions",
    "f1_ceiling",
    "load_deeplog",
    "load_hdfs_100k",
    "precision_recall_f1",
    "read_key_sequences",
    "render_markdown",
    "resolve_hdfs_dir",
    "run_deeplog",
    "run_hdfs",
    "run_hdfs_100k",
]
