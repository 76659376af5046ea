"""The one event type every parser produces, and its columnar twin for the batch path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa


@dataclass(frozen=True, slots=True)
class Event:
    """One normalised log event.

    Parameters
    ----------
    ts
        When it happened, tz-aware UTC (parsers convert at the edge).
    source
        Which log it came from, e.g. ``"cert.logon"``, ``"lanl.auth"``, ``"jsonl"``.
    action
        A verb from the shared vocabulary (``"logon"``, ``"usb_connect"``,
        ``"file_copy_removable"``, ``"http_upload"``, ``"auth"``...); see ``streams.actions``.
    user, host, target
        Who acted, on which machine, and against what (a host, a domain, a file, recipients
        joined by ``";"``).
    bytes
        A volume when the log carries one (email size, bytes sent).
    outcome
        ``"success"`` or ``"failure"`` when the log says so.
    attrs
        Anything else the parser keeps, as strings.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> e = Event(ts=datetime(2010, 1, 4, 2, 13, tzinfo=UTC), source="cert.logon",
    ...           action="logon", user="ACM2278", host="PC-6056", target="PC-6056")
    >>> e.ts.hour, e.action
    (2, 'logon')
    """

    ts: datetime
    source: str
    action: str
    user: str | None = None
    host: str | None = None
    target: str | None = None
    bytes: int | None = None
    outcome: str | None = None
    # A plain dict, not a read-only proxy: events must pickle (checkpoints, dead letters).
    attrs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ts.tzinfo is None:
            raise ValueError("Event.ts must be tz-aware (UTC)")
        if self.ts.utcoffset() != UTC.utcoffset(None):
            object.__setattr__(self, "ts", self.ts.astimezone(UTC))


#: The most events one folded line stands for: the count is the log's word, and a forged
#: ``message repeated 999999999 times`` must not cost the reader that many rows.
MAX_REPEATS = 10_000


def occurrences(event: Event) -> int:
    """How many times ``event`` happened: ``attrs["repeated"]`` where a parser read a line that
    folds repeats (rsyslog's ``message repeated N times: [ msg ]``, which follows the first
    ``msg`` it logged: N more), at most :data:`MAX_REPEATS`; once for every other event.

    The daemon and the scan count such a line N times, so that 40 failed passwords folded into
    one line count as 40, as they would unfolded.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> at = datetime(2026, 11, 27, 8, tzinfo=UTC)
    >>> occurrences(Event(at, "linux.auth", "logon_failure", attrs={"repeated": "40"}))
    40
    >>> occurrences(Event(at, "linux.auth", "logon_failure"))
    1
    """
    repeated = event.attrs.get("repeated")
    if repeated is None:
        return 1
    try:
        count = int(repeated)
    except ValueError:
        return 1
    return max(1, min(count, MAX_REPEATS))


EVENT_COLUMNS: tuple[str, ...] = (
    "ts",
    "source",
    "action",
    "user",
    "host",
    "target",
    "bytes",
    "outcome",
    "attrs",
)

#: The Event as an Arrow schema. ``attrs`` is a JSON object encoded as a string (or null):
#: sources differ in which attributes they carry, and a string column keeps the batch frames
#: of different sources concatenable.
EVENT_SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("user", pa.string()),
        pa.field("host", pa.string()),
        pa.field("target", pa.string()),
        pa.field("bytes", pa.int64()),
        pa.field("outcome", pa.string()),
        pa.field("attrs", pa.string()),
    ]
)

#: The same columns as a polars schema, for batch frames.
POLARS_EVENT_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    "source": pl.String(),
    "action": pl.String(),
    "user": pl.String(),
    "host": pl.String(),
    "target": pl.String(),
    "bytes": pl.Int64(),
    "outcome": pl.String(),
    "attrs": pl.String(),
}
