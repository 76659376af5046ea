"""``python -m benchmarks.hdfs``: HDFS_100k session detectors and the DeepLog-data recall."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from benchmarks.hdfs.data import HdfsDataError
from benchmarks.hdfs.runner import SESSION_DETECTORS, run_hdfs
from benchmarks.results import progress_enabled


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run, print the markdown report; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hdfs", description=__doc__)
    parser.add_argument("--data-dir", help="folder of hdfs_100k_sessions.csv or its parent")
    parser.add_argument("--out", default="bench-out/hdfs", help="output folder")
    parser.add_argument("--detector", action="append", choices=sorted(SESSION_DETECTORS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-on", choices=("normal", "all"), default="normal")
    parser.add_argument("--no-deeplog", action="store_true", help="skip DeepLog's files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        _, markdown = run_hdfs(
            args.data_dir,
            args.out,
            args.detector,
            args.seed,
            train_on=args.train_on,
            deeplog=not args.no_deeplog,
            progress=progress_enabled(args.quiet),
        )
    except HdfsDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
