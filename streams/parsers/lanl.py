"""Line parser for LANL "Comprehensive, Multi-Source Cyber-Security Events" ``auth.txt``,
and the ``redteam.txt`` ground truth reader.

``auth.txt`` lines are ``time,src_user@domain,dst_user@domain,src_computer,dst_computer,
auth_type,logon_type,auth_orientation,success`` with ``time`` in whole seconds from an
epoch the caller provides and ``?`` for unknown values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streams import actions
from streams.errors import ParseError
from streams.event import Event
from streams.parsers.base import is_blank, strip_eol

#: The dataset does not say when second 0 was; callers who know pass their own epoch.
LANL_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LANL_AUTH_COLUMNS: tuple[str, ...] = (
    "time",
    "src_user",
    "dst_user",
    "src_computer",
    "dst_computer",
    "auth_type",
    "logon_type",
    "orientation",
    "success",
)
LANL_OUTCOMES: Mapping[str, str] = {"Success": actions.SUCCESS, "Fail": actions.FAILURE}
#: Values that mean "not known" in LANL files.
LANL_UNKNOWN: frozenset[str] = frozenset({"?", ""})
#: Whole seconds; 11 digits (about 3000 years) keep microseconds inside int64.
LANL_TIME_PATTERN = r"^[0-9]{1,11}$"
_TIME_RE = re.compile(r"[0-9]{1,11}")


def lanl_seconds(value: str, epoch: datetime, field: str = "time") -> datetime:
    """``epoch`` plus a whole number of seconds.

    Examples
    --------
    >>> lanl_seconds("90", LANL_EPOCH).isoformat()
    '1970-01-01T00:01:30+00:00'
    """
    if value == "":
        raise ParseError("missing_field", f"field {field!r} is empty")
    if _TIME_RE.fullmatch(value) is None:
        raise ParseError("bad_timestamp", f"field {field!r}: {value!r} is not whole seconds")
    try:
        return epoch + timedelta(seconds=int(value))
    except OverflowError:
        raise ParseError("bad_timestamp", f"field {field!r}: {value!r} is out of range") from None


def split_principal(value: str) -> tuple[str | None, str | None]:
    """``user@domain`` -> (user, domain), unknown parts as ``None``; splits at the first ``@``.

    Examples
    --------
    >>> split_principal("C625$@DOM1"), split_principal("?")
    (('C625$', 'DOM1'), (None, None))
    """
    user, at, domain = value.partition("@")
    return (
        None if user in LANL_UNKNOWN else user,
        None if not at or domain in LANL_UNKNOWN else domain,
    )


def _known(value: str) -> str | None:
    return None if value in LANL_UNKNOWN else value


class LanlAuthParser:
    """Parser for LANL ``auth.txt`` lines (no header).

    Parameters
    ----------
    epoch
        The instant of ``time`` 0 (UTC).

    Examples
    --------
    >>> p = LanlAuthParser()
    >>> e = p.parse("1,C625$@DOM1,U147@DOM1,C625,C625,Negotiate,Batch,LogOn,Success")
    >>> e.user, e.host, e.target, e.outcome, e.attrs["dst_user"], e.attrs["src_domain"]
    ('C625$', 'C625', 'C625', 'success', 'U147@DOM1', 'DOM1')
    """

    source = "lanl.auth"

    def __init__(self, epoch: datetime = LANL_EPOCH) -> None:
        if epoch.tzinfo is None:
            raise ValueError("LanlAuthParser epoch must be tz-aware")
        self.epoch = epoch.astimezone(UTC)

    def parse(self, line: str) -> Event | None:
        """Parse one ``auth.txt`` line."""
        line = strip_eol(line)
        if is_blank(line):
            return None
        fields = line.split(",", len(LANL_AUTH_COLUMNS))
        if len(fields) != len(LANL_AUTH_COLUMNS):
            raise ParseError(
                "wrong_field_count",
                f"{len(fields)} field(s), auth.txt has {len(LANL_AUTH_COLUMNS)}",
            )
        (time, src_user, dst_user, src_pc, dst_pc, auth_type, logon_type, orient, success) = fields
        ts = lanl_seconds(time, self.epoch)
        outcome: str | None = None
        if success not in LANL_UNKNOWN:
            try:
                outcome = LANL_OUTCOMES[success]
            except KeyError:
                raise ParseError(
                    "unknown_value", f"field 'success': {success!r} is not Success/Fail"
                ) from None
        user, domain = split_principal(src_user)
        attrs = {
            k: v
            for k, v in (
                ("src_domain", domain),
                ("dst_user", _known(dst_user)),
                ("auth_type", _known(auth_type)),
                ("logon_type", _known(logon_type)),
                ("orientation", _known(orient)),
            )
            if v is not None
        }
        return Event(
            ts,
            self.source,
            actions.AUTH,
            user,
            _known(src_pc),
            _known(dst_pc),
            outcome=outcome,
            attrs=attrs,
        )


@dataclass(frozen=True, slots=True)
class RedTeamRecord:
    """One line of LANL ``redteam.txt``: a known-compromise authentication.

    Examples
    --------
    >>> r = RedTeamRecord(LANL_EPOCH, "U748", "DOM1", "C17693", "C728")
    >>> r.user
    'U748'
    """

    ts: datetime
    user: str | None
    domain: str | None
    src_computer: str | None
    dst_computer: str | None


def read_redteam(path: Path | str, epoch: datetime = LANL_EPOCH) -> list[RedTeamRecord]:
    """Read ``redteam.txt`` (``time,user@domain,src_computer,dst_computer``).

    Malformed lines raise :class:`ParseError` naming the file and line: the ground truth
    must be read whole or not at all.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "redteam.txt")
    ...     _ = open(p, "w").write("151036,U748@DOM1,C17693,C728\\n")
    ...     read_redteam(p)[0].dst_computer
    'C728'
    """
    records: list[RedTeamRecord] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, raw in enumerate(handle, start=1):
            line = strip_eol(raw)
            if is_blank(line):
                continue
            fields = line.split(",")
            try:
                if len(fields) != 4:
                    raise ParseError("wrong_field_count", f"{len(fields)} field(s), expected 4")
                ts = lanl_seconds(fields[0], epoch)
            except ParseError as exc:
                raise ParseError(exc.reason, f"{path}:{number}: {exc.detail}") from None
            user, domain = split_principal(fields[1])
            records.append(RedTeamRecord(ts, user, domain, _known(fields[2]), _known(fields[3])))
    return records
