"""CERT side tables that are not events: psychometric scores and monthly LDAP snapshots."""

from __future__ import annotations

import logging
import re
from datetime import date
from pathlib import Path

import polars as pl

logger = logging.getLogger(__name__)

LDAP_COLUMNS: tuple[str, ...] = (
    "user",
    "name",
    "email",
    "role",
    "business_unit",
    "functional_unit",
    "department",
    "team",
    "supervisor",
)
#: Output name <- CERT header name (the rest keep their names).
_LDAP_RENAMES = {"user": "user_id", "name": "employee_name"}
_MONTH_FILE = re.compile(r"(\d{4})-(\d{2})\.csv")
_TRAITS = ("O", "C", "E", "A", "N")


def read_psychometric(path: Path | str) -> pl.DataFrame:
    """Read ``psychometric.csv`` (``employee_name,user_id,O,C,E,A,N``).

    Returns
    -------
    pl.DataFrame
        Columns ``user`` and the Big Five scores ``O``, ``C``, ``E``, ``A``, ``N`` (Int64).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "psychometric.csv")
    >>> _ = open(p, "w").write("employee_name,user_id,O,C,E,A,N\\n"
    ...                        "Ann Lee,ALE0001,40,39,36,19,40\\n")
    >>> read_psychometric(p).row(0)
    ('ALE0001', 40, 39, 36, 19, 40)
    """
    raw = pl.read_csv(path, infer_schema=False)
    missing = [c for c in ("user_id", *_TRAITS) if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: psychometric file lacks column(s) {missing}")
    return raw.select(
        pl.col("user_id").alias("user"),
        *(pl.col(t).str.strip_chars().cast(pl.Int64()) for t in _TRAITS),
    )


def read_ldap(directory: Path | str) -> pl.DataFrame:
    """Read every ``YYYY-MM.csv`` LDAP snapshot of a directory into one frame.

    Columns are selected by header name; a column a release lacks is null (r6.2 adds
    ``projects``, which is not kept).

    Returns
    -------
    pl.DataFrame
        ``user, name, email, role, business_unit, functional_unit, department, team,
        supervisor, month`` (``month`` is the first day of the snapshot's month, a Date),
        one row per user per snapshot, ordered by month then file order.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "2010-01.csv").write_text(
    ...     "employee_name,user_id,email,role,business_unit,functional_unit,department,"
    ...     "team,supervisor\\nAnn Lee,ALE0001,Ann.Lee@dtaa.com,Salesman,1,2 - Sales,"
    ...     "3 - Field,4 - East,Bob Ray\\n")
    >>> read_ldap(d).select("user", "role", "month").row(0)
    ('ALE0001', 'Salesman', datetime.date(2010, 1, 1))
    """
    folder = Path(directory)
    snapshots = sorted(p for p in folder.iterdir() if _MONTH_FILE.fullmatch(p.name))
    if not snapshots:
        raise ValueError(f"{folder}: no YYYY-MM.csv LDAP snapshots")
    frames: list[pl.DataFrame] = []
    for snapshot in snapshots:
        match = _MONTH_FILE.fullmatch(snapshot.name)
        assert match is not None  # filtered above
        month = date(int(match.group(1)), int(match.group(2)), 1)
        raw = pl.read_csv(snapshot, infer_schema=False)
        raw = raw.rename({c: c.strip().lower() for c in raw.columns})
        if "user_id" not in raw.columns:
            raise ValueError(f"{snapshot}: LDAP snapshot lacks the user_id column")
        frames.append(
            raw.select(
                *(
                    pl.col(_LDAP_RENAMES.get(c, c)).alias(c)
                    if _LDAP_RENAMES.get(c, c) in raw.columns
                    else pl.lit(None, pl.String()).alias(c)
                    for c in LDAP_COLUMNS
                ),
                pl.lit(month).alias("month"),
            )
        )
        logger.debug("read %d LDAP rows from %s", raw.height, snapshot)
    return pl.concat(frames, how="vertical")


def ldap_directory(ldap: pl.DataFrame) -> pl.DataFrame:
    """Each user's latest attributes and the months they were present.

    Parameters
    ----------
    ldap
        The frame :func:`read_ldap` returns.

    Returns
    -------
    pl.DataFrame
        One row per user: the :data:`LDAP_COLUMNS` from the user's latest snapshot,
        ``first_month`` and ``last_month`` (Dates), and ``left`` (True when the user is
        missing from the last snapshot of the data). Sorted by user.

    Examples
    --------
    >>> from datetime import date
    >>> ldap = pl.DataFrame({"user": ["A", "B", "A"], "role": ["Clerk", "IT", "Boss"],
    ...                      "month": [date(2010, 1, 1), date(2010, 1, 1), date(2010, 2, 1)]})
    >>> ldap_directory(ldap).select("user", "role", "last_month", "left").rows()
    [('A', 'Boss', datetime.date(2010, 2, 1), False), ('B', 'IT', datetime.date(2010, 1, 1), True)]
    """
    latest_snapshot = ldap.get_column("month").max()
    attributes = [c for c in LDAP_COLUMNS if c in ldap.columns and c != "user"]
    return (
        ldap.sort("month", maintain_order=True)
        .group_by("user")
        .agg(
            *(pl.col(c).last() for c in attributes),
            pl.col("month").min().alias("first_month"),
            pl.col("month").max().alias("last_month"),
        )
        .with_columns((pl.col("last_month") < pl.lit(latest_snapshot)).alias("left"))
        .sort("user")
    )
