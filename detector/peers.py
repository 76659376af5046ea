"""Peer groups: which entities are alike (a department), read for the scan and the daemon.

A cold-start entity is compared with its peer group before the whole population (see
:class:`detector.online_scoring.OnlineScorer`), as the batch scan's
:class:`~models.batch.baselines.PeerGroupDetector` compares each user with its department.
Two sources give the groups:

* **CERT LDAP snapshots** (a directory of ``YYYY-MM.csv`` files): each user's department in
  its latest snapshot (the role where a release has no department column).
  :func:`peer_groups_beside` finds them in an ``LDAP/`` folder beside CERT logs, as the scan
  does.
* **A CSV file** with the header ``entity,group``, one entity a row::

      entity,group
      alice,Finance
      bob,Finance
      carol,IT

  An entity listed twice must name the same group; blank lines are skipped.

:func:`load_peers` reads either, for the daemon's ``[daemon] peers = "path"``; anything wrong
with the file is one :class:`~detector.errors.UsageError` line naming it.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

from detector.errors import UsageError
from streams.cert_meta import ldap_directory, read_ldap

logger = logging.getLogger(__name__)

PEERS_HEADER = ("entity", "group")
"""The header of a peers CSV file."""


def ldap_departments(ldap: Path) -> dict[str, str]:
    """Each user's department from a directory of CERT LDAP snapshots (their latest one).

    Raises
    ------
    ValueError
        If the directory holds no ``YYYY-MM.csv`` snapshot or one lacks ``user_id``.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "2010-01.csv").write_text(
    ...     "employee_name,user_id,email,role,business_unit,functional_unit,department,"
    ...     "team,supervisor\\nAnn Lee,ALE0001,a@x,Clerk,1,2 - Sales,3 - Field,T,\\n")
    >>> ldap_departments(folder)
    {'ALE0001': '3 - Field'}
    """
    directory = ldap_directory(read_ldap(ldap))
    column = "department" if "department" in directory.columns else "role"
    pairs = directory.select("user", column).drop_nulls()
    return dict(zip(pairs["user"].to_list(), pairs[column].to_list(), strict=True))


def peer_groups_beside(paths: Sequence[Path]) -> dict[str, str]:
    """Department of each user, from CERT LDAP snapshots beside the logs, when present.

    The first of ``paths`` (a CERT log or its directory) with an ``LDAP/`` folder of
    snapshots next to it gives the groups; none: ``{}``.

    Examples
    --------
    >>> peer_groups_beside([Path("no-such-dir/logon.csv")])
    {}
    """
    for path in paths:
        base = path if path.is_dir() else path.parent
        ldap = base / "LDAP"
        if ldap.is_dir() and any(ldap.glob("*.csv")):
            return ldap_departments(ldap)
    return {}


def load_peers(path: Path) -> dict[str, str]:
    """The peer group of each entity from ``path``: a CSV ``entity,group`` or an LDAP folder.

    A directory is read as CERT LDAP snapshots: the directory itself, or its ``LDAP/``
    folder (a CERT release's root).

    Raises
    ------
    UsageError
        The path is missing or unreadable, a CSV's header is not ``entity,group``, a row is
        malformed, an entity is given two groups, or no entity is listed.

    Examples
    --------
    >>> import tempfile
    >>> csv_path = Path(tempfile.mkdtemp()) / "peers.csv"
    >>> _ = csv_path.write_text("entity,group\\nalice,Finance\\nbob,IT\\n")
    >>> load_peers(csv_path)
    {'alice': 'Finance', 'bob': 'IT'}
    >>> _ = csv_path.write_text("user,dept\\nalice,Finance\\n")
    >>> load_peers(csv_path)
    Traceback (most recent call last):
    ...
    detector.errors.UsageError: peers ...peers.csv: header must be 'entity,group', got 'user,dept'
    """
    if path.is_dir():
        ldap = path / "LDAP" if (path / "LDAP").is_dir() else path
        try:
            groups = ldap_departments(ldap)
        except (OSError, ValueError) as exc:
            raise UsageError(f"peers: {exc}") from None
    elif path.is_file():
        groups = _read_peers_csv(path)
    else:
        raise UsageError(f"peers not found: {path}")
    if not groups:
        raise UsageError(f"peers {path}: no entity listed")
    logger.info(
        "peers: %d entities in %d groups from %s", len(groups), len(set(groups.values())), path
    )
    return groups


def _read_peers_csv(path: Path) -> dict[str, str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read peers {path}: {exc}") from None
    if not rows:
        raise UsageError(f"peers {path}: empty file (expected the header 'entity,group')")
    header = tuple(name.strip().lower() for name in rows[0])
    if header != PEERS_HEADER:
        raise UsageError(f"peers {path}: header must be 'entity,group', got {','.join(rows[0])!r}")
    groups: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise UsageError(f"peers {path}: line {line}: expected 'entity,group', got {row!r}")
        entity, group = row[0].strip(), row[1].strip()
        if groups.setdefault(entity, group) != group:
            raise UsageError(
                f"peers {path}: line {line}: {entity!r} is in {groups[entity]!r} already"
            )
    return groups
