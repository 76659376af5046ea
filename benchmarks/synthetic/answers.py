"""The CERT ``answers/`` layout for a generated organisation.

The CERT Insider Threat releases ship an answer key: ``answers/insiders.csv`` (``dataset,
scenario,details,user,start,end``) and, per insider, ``answers/r<release>-<scenario>/<details>``
holding that insider's malicious log rows, each prefixed with its log type
(``logon,{id},01/02/2010 07:12:00,USER,PC-1,Logon``). Writing the same layout for a generated
organisation lets ``baseliner bench cert`` be tested end to end on data in the exact schema.

The generator labels user-days rather than single rows, so a details file holds every CERT row
of the insider on its labelled days: the same malicious user-days as the real key gives.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

RELEASE = "6.2"
_CERT_FILES = ("logon", "device", "file", "email", "http")


def write_answers(out: Path, truth: pl.DataFrame) -> int:
    """Write ``out/answers`` from ``ground_truth.csv``-shaped ``truth``; returns rows written.

    Parameters
    ----------
    out
        The organisation's directory (with the CERT CSVs already written).
    truth
        Columns ``entity`` (str), ``day`` (ISO date str) and ``scenario`` (int).
    """
    answers = out / "answers"
    answers.mkdir(parents=True, exist_ok=True)
    days = truth.select(
        pl.col("entity").alias("user"),
        pl.col("day").cast(pl.String).str.to_date().alias("day"),
        pl.col("scenario").cast(pl.Int64),
    )
    rows: list[pl.DataFrame] = []
    for kind in _CERT_FILES:
        frame = (
            pl.scan_csv(out / f"{kind}.csv", infer_schema=False)
            .with_columns(
                pl.col("date").str.strptime(pl.Datetime, "%m/%d/%Y %H:%M:%S").alias("__ts"),
            )
            .with_columns(pl.col("__ts").dt.date().alias("day"))
            .join(days.lazy(), on=["user", "day"], how="inner")
            .collect()
        )
        if frame.height == 0:
            continue
        columns = [c for c in frame.columns if c not in ("__ts", "day", "scenario")]
        line = pl.concat_str(
            [pl.lit(kind), *[pl.col(c).fill_null("") for c in columns]], separator=","
        )
        rows.append(
            frame.select(pl.col("user"), pl.col("scenario"), pl.col("__ts"), line.alias("line"))
        )
    if not rows:
        pl.DataFrame(
            schema={
                c: pl.String for c in ("dataset", "scenario", "details", "user", "start", "end")
            }
        ).write_csv(answers / "insiders.csv")
        return 0
    lines = pl.concat(rows).sort("user", "__ts", "line")
    insiders = (
        lines.group_by("user", "scenario", maintain_order=True)
        .agg(pl.col("__ts").min().alias("start"), pl.col("__ts").max().alias("end"))
        .sort("scenario", "user")
    )
    written = 0
    for user, scenario, _, _ in insiders.iter_rows():
        folder = answers / f"r{RELEASE}-{scenario}"
        folder.mkdir(exist_ok=True)
        mine = lines.filter((pl.col("user") == user) & (pl.col("scenario") == scenario))
        text = "\n".join(mine["line"].to_list()) + "\n"
        (folder / f"r{RELEASE}-{scenario}-{user}.csv").write_text(text)
        written += mine.height
    insiders.select(
        pl.lit(RELEASE).alias("dataset"),
        pl.col("scenario"),
        pl.format(f"r{RELEASE}-{{}}-{{}}.csv", pl.col("scenario"), pl.col("user")).alias("details"),
        pl.col("user"),
        pl.col("start").dt.strftime("%m/%d/%Y %H:%M:%S"),
        pl.col("end").dt.strftime("%m/%d/%Y %H:%M:%S"),
    ).write_csv(answers / "insiders.csv")
    return written
