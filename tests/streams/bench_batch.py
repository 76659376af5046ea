"""Measure the CERT batch reader against a plain ``scan_csv`` on generated r6.2 files.

Run ``python -m tests.streams.bench_batch [rows_per_unit] [directory]``; a timing is a
number to report, never a test.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from streams.batch import scan_events

#: Relative volume of each file (r6.2 proportions, roughly).
SHARE = {"logon": 2, "device": 1, "file": 1, "email": 2, "http": 4}


def generate(folder: Path, unit: int, seed: int = 0) -> int:
    """Write the five r6.2 files with ``SHARE[kind] * unit`` rows each; return the row total."""
    rng = np.random.default_rng(seed)
    total = 0
    for kind, share in SHARE.items():
        n = share * unit
        total += n
        seconds = 1262304000 + np.sort(rng.integers(0, 500 * 86400, n))
        base = pl.DataFrame(
            {
                "n": np.arange(n),
                "seconds": seconds * 1_000_000,
                "u": rng.integers(0, 4000, n),
                "p": rng.integers(0, 4000, n),
            }
        ).select(
            pl.format("{{X1D9-S0ES98JV-{}}}", "n").alias("id"),
            pl.col("seconds")
            .cast(pl.Datetime("us"))
            .dt.strftime("%m/%d/%Y %H:%M:%S")
            .alias("date"),
            pl.format("U{}", "u").alias("user"),
            pl.format("PC-{}", "p").alias("pc"),
        )
        pick = rng.integers(0, 4, n)
        if kind == "logon":
            extra = {"activity": np.array(["Logon", "Logoff"])[pick % 2]}
        elif kind == "device":
            extra = {
                "file_tree": np.array(["R:\\;R:\\dir", ""])[pick % 2],
                "activity": np.array(["Connect", "Disconnect"])[pick % 2],
            }
        elif kind == "file":
            extra = {
                "filename": np.array(["R:\\a\\b.doc", "C:\\x\\y.pdf"])[pick % 2],
                "activity": np.array(["File Open", "File Write", "File Copy", "File Delete"])[pick],
                "to_removable_media": np.array(["True", "False"])[pick % 2],
                "from_removable_media": np.array(["False", "True"])[pick % 2],
                "content": np.array(["D0-CF-11-E0 quarterly report"] * 4)[pick],
            }
        elif kind == "email":
            extra = {
                "to": np.array(["a@dtaa.com;b@dtaa.com", "c@x.com"])[pick % 2],
                "cc": np.array(["", "d@dtaa.com"])[pick % 2],
                "bcc": np.array(["", "", "e@y.com", ""])[pick],
                "from": np.array(["u@dtaa.com"] * 4)[pick],
                "activity": np.array(["Send", "View"])[pick % 2],
                "size": (rng.integers(1000, 90000, n)).astype(str),
                "attachments": np.array(
                    ["", "C:\\a\\b.doc(12345)", "", "C:\\c.pdf(99);C:\\d.zip(7)"]
                )[pick],
                "content": np.array(["lunch on friday hello there"] * 4)[pick],
            }
        else:
            extra = {
                "url": np.array(
                    [
                        "http://www.site.com/a/b.html",
                        "http://wikileaks.org/x",
                        "https://mail.dtaa.com:443/inbox",
                        "http://www.news.net/2010/01/story.htm",
                    ]
                )[pick],
                "activity": np.array(["WWW Visit", "WWW Visit", "WWW Download", "WWW Upload"])[
                    pick
                ],
                "content": np.array(["lorem ipsum dolor sit amet consectetur adipiscing"] * 4)[
                    pick
                ],
            }
        base.with_columns(**{k: pl.Series(v) for k, v in extra.items()}).write_csv(
            folder / f"{kind}.csv"
        )
    return total


def best_of(query: pl.LazyFrame, repeat: int = 3) -> float:
    """The fastest of ``repeat`` streaming collections, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        query.collect(engine="streaming")
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    unit = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    folder = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    rows = generate(folder, unit)
    files = sorted(folder.glob("*.csv"))
    baseline = (
        pl.concat([pl.scan_csv(f, infer_schema=False).select("user") for f in files])
        .group_by("user")
        .len()
    )
    scan = scan_events([folder], "cert")
    timings = {
        "scan_csv group_by(user).len (baseline)": best_of(baseline),
        "scan_events -> all Event columns": best_of(scan.events),
        "scan_events -> group_by(user, action).len": best_of(
            scan.events.group_by("user", "action").len()
        ),
        "scan_events rejects": best_of(scan.rejects),
    }
    base = timings["scan_csv group_by(user).len (baseline)"]
    print(f"{rows:,} rows in {folder}")
    for name, seconds in timings.items():
        print(
            f"{name:45s} {seconds:6.2f} s  {rows / seconds / 1e6:5.2f} M rows/s"
            f"  x{seconds / base:.2f}"
        )


if __name__ == "__main__":
    main()
