"""Generic JSON-lines parser (Elastic Common Schema field names by default)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from streams import actions
from streams.errors import DeadLetter, ParseError
from streams.event import EVENT_COLUMNS, POLARS_EVENT_SCHEMA, Event
from streams.parsers.base import BLANK_CHARS
from streams.sources.base import RawRecord
from streams.sources.blocks import RecordBlock

#: Event field <- candidate JSON paths (first present wins). Dotted paths resolve both
#: nested (``{"user": {"name": ...}}``) and flat (``{"user.name": ...}``) objects.
ECS_MAPPING: Mapping[str, tuple[str, ...]] = {
    "ts": ("@timestamp",),
    "user": ("user.name",),
    "host": ("host.name",),
    "action": ("event.action",),
    "outcome": ("event.outcome",),
    "target": ("destination.address", "url.domain", "file.path", "destination.ip"),
    "bytes": ("source.bytes", "network.bytes"),
}
#: Extra JSON paths copied into ``attrs`` when present.
ECS_ATTRS: tuple[str, ...] = ("event.category", "event.dataset")
#: ``attrs`` key <- JSON path, copied when present: :data:`ECS_ATTRS` under their own names,
#: and the ECS fields of the attributes the default catalogue reads (``url``: web requests
#: naming hacking tools). The mapping's ``attrs`` table is merged over it.
ECS_ATTR_PATHS: Mapping[str, str] = {**{path: path for path in ECS_ATTRS}, "url": "url.original"}
#: ``event.action`` values of common shippers -> baseliner's actions (:mod:`streams.actions`),
#: which the features select on. Winlogbeat's Security module (its own names for event ids
#: 4624, 4625, 4634/4647, 4648, 4672, 4688, 4720, 4728/4732/4756) and Filebeat's system
#: ``auth`` / Auditbeat's ``login`` datasets (``ssh_login`` / ``user_login``, a failure by
#: ``event.outcome``). Winlogbeat's ``logged-in`` is every 4624, network and service logons
#: too: the ``windows.security`` parser tells them apart by logon type.
ECS_ACTIONS: Mapping[str, str] = {
    "logged-in": actions.LOGON,
    "logon-failed": actions.LOGON_FAILURE,
    "logged-out": actions.LOGOFF,
    "logged-in-explicit": actions.EXPLICIT_CREDENTIALS,
    "logged-in-special": actions.SPECIAL_PRIVILEGES,
    "created-process": actions.PROCESS_START,
    "added-user-account": actions.ACCOUNT_CREATED,
    "added-member-to-group": actions.GROUP_MEMBER_ADDED,
    "ssh_login": actions.LOGON,
    "user_login": actions.LOGON,
    "user_logout": actions.LOGOFF,
}
#: Event fields whose value names one thing: an array of several is an error, not a list.
_ONE_VALUE: Final = frozenset({"user", "host", "action"})
#: The mapping's key of its action table (beside the Event fields' paths).
ACTIONS_KEY: Final = "actions"
#: The mapping's key of its attribute table (``attrs`` key -> JSON path).
ATTRS_KEY: Final = "attrs"
_FIELDS = frozenset({"ts", "user", "host", "action", "outcome", "target", "bytes", "source"})
#: Numbers above this are epoch milliseconds, below it seconds (1e11 s is the year 5138).
_MILLIS_THRESHOLD = 1e11
_MISSING = object()
#: Largest byte count a frame (Int64) holds.
_MAX_BYTES: Final = 2**63 - 1
#: Timestamps polars reads exactly as ``datetime.fromisoformat`` does (UTC or naive, whole
#: ASCII digits, 0 to 6 fraction digits); any other text goes through Python.
_ISO_UTC: Final = (
    r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-"
    r"(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,6})?(Z|\+00:00)?$"
)
_ISO_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.f"
_BATCH_SCHEMA: Final[dict[str, pl.DataType]] = {**POLARS_EVENT_SCHEMA, "record": pl.Int64()}
#: Failed Arrow reads a batch may spend isolating bad lines before the rest goes row-wise.
_MAX_FAILED_READS: Final = 8
#: Arrow's refusal of a value's type (not of the text's syntax), which a check of the text
#: does not find.
_TYPE_REFUSAL: Final = re.compile(r"Column\(.*\) changed from")
#: Arrow's refusal of a value of another kind than its column's: the column, and its kind.
_WRONG_KIND: Final = re.compile(r"Column\(/(?:.*/)?([^/]*)\) changed from (\w+) to \w+ in row")
#: Arrow's refusal of a number its integer column cannot hold (a fraction, an exponent, more
#: than 64 bits): it names the number's text, not its row.
_NUMBER_REFUSAL: Final = re.compile(r"Failed to convert JSON to u?int\d+, couldn't parse:(\S+)$")
#: How a JSON value of each kind Arrow names begins (as a regular expression's class; a
#: hyphen last, where it stands for itself).
_KIND_STARTS: Final = {
    "string": '"',
    "number": "0-9-",
    "object": "{",
    "array": "\\[",
    "boolean": "tf",
}
#: Paths of more parts than this are not read columnar (2 ** (parts - 1) spellings each).
_MAX_COLUMNAR_PARTS: Final = 5
#: orjson refuses objects nested deeper than 1024; Arrow does not. A line shorter than
#: ``2 * _MAX_FAST_NESTING`` bytes cannot nest that deep; longer ones are counted.
_MAX_FAST_NESTING: Final = 512
#: Compiled per-mapping state, rebuilt on first use (closures and Arrow options do not pickle),
#: and the JSON paths seen with a value (learnt again after unpickling).
_CACHED: Final = frozenset(
    {
        "_getters",
        "_getters_of",
        "_plans",
        "_plans_of",
        "_typed",
        "_text_times",
        "_loose_reads",
        "_present",
    }
)
#: The type Arrow's reader gives the timestamps (it reads ISO 8601 text itself).
_STAMP: Final = pa.timestamp("us", "UTC")
#: The UTC microseconds of the first and last instants Arrow's timestamps are taken as
#: Python's. Arrow reads the year 0000, and an offset time of the year 1 or 9999 into the
#: year 0 or 10000, all of which :func:`_timestamp` refuses; the year 0000 with a negative
#: offset may land on the first day of the year 1, which is left to Python too.
_FIRST_MICROS: Final = -62135596800000000 + 86_400_000_000
_LAST_MICROS: Final = 253402300799999999
#: Batches read with the timestamps as text after Arrow refused one (doubled each time).
_TEXT_TIMES_BATCHES: Final = 16
#: Arrow's refusal of a timestamp's text ("Failed to convert JSON to timestamp[us, tz=UTC],
#: couldn't parse: ..."), which names no row.
_STAMP_REFUSAL: Final = "JSON to timestamp"
#: Arrow's refusal of a key its schema does not hold (a strict plan's), which names no row.
_UNEXPECTED_REFUSAL: Final = "unexpected field"
#: Batches read with the whole schema after a strict read was refused (doubled each time, up
#: to the most): a stream whose lines hold other keys pays a refused read now and then only.
_LOOSE_BATCHES: Final = 4
_MOST_LOOSE_BATCHES: Final = 1024
_JSON_COLUMN: Final = "__json"
_ROW_HINT: Final = re.compile(r"in row (\d+)")
#: A ``\u`` or ``\/`` escape in a key: from the escape (or a ``u`` after an escaped
#: backslash, which counts too) on to the key's closing quote and the colon after it.
_KEY_ESCAPE: Final = r'\\[u/](?:[^"\\]|\\.)*"\s*:'
#: Arrow's refusal of a value where the schema has a null column: the column and the value's kind.
_NULL_COLUMN_HINT: Final = re.compile(r"Column\((.*)\) changed from null to (\w+) in row \d+")
#: The value kinds Arrow names that a column of the leaf's real type would take.
_KIND_NAMES: Final[dict[pa.DataType, str]] = {
    pa.string(): "string",
    pa.string_view(): "string",
    pa.int64(): "number",
    _STAMP: "string",
}
_NEWLINE: Final = 0x0A
_CR: Final = 0x0D
_OPEN: Final = 0x7B
_CLOSE: Final = 0x7D
_QUOTE: Final = 0x22
_BACKSLASH: Final = 0x5C
_LETTER_U: Final = 0x75
_SLASH: Final = 0x2F
#: The characters a Rust regular expression reads as syntax.
_REGEX_META: Final = frozenset("\\.+*?()|[]{}^$#&-~")
_Getter = Callable[[dict[str, Any]], Any]


def resolve(obj: Mapping[str, Any], path: str) -> Any:
    """Look a dotted path up in an object, nested or flat or a mix; a sentinel if absent.

    Examples
    --------
    >>> resolve({"user": {"name": "ann"}}, "user.name"), resolve({"user.name": "bob"}, "user.name")
    ('ann', 'bob')
    >>> resolve({"a": {"b.c": 1}}, "a.b.c")
    1
    """
    if path in obj:
        return obj[path]
    head, dot, rest = path.partition(".")
    while dot:
        child = obj.get(head, _MISSING)
        if isinstance(child, Mapping):
            found = resolve(child, rest)
            if found is not _MISSING:
                return found
        part, dot, rest = rest.partition(".")
        head = f"{head}.{part}"
    return _MISSING


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ",".join(str(v) for v in value) or None
    raise ParseError(
        "bad_value", f"field {field!r}: {orjson.dumps(value).decode()[:80]} is not text"
    )


def action_table(table: Any) -> dict[str, str]:
    """A mapping's ``actions`` table checked: non-empty text -> non-empty text.

    Examples
    --------
    >>> action_table({"logged-in": "logon"})
    {'logged-in': 'logon'}
    >>> action_table({"logged-in": ""})
    Traceback (most recent call last):
    ...
    ValueError: JSON mapping actions: 'logged-in' -> '': give an action name
    """
    return _text_table(table, "actions", "action -> action", "give an action name")


def attrs_table(table: Any) -> dict[str, str]:
    """A mapping's ``attrs`` table checked: non-empty text (an ``attrs`` key) -> a JSON path.

    Examples
    --------
    >>> attrs_table({"attachments": "email.attachments"})
    {'attachments': 'email.attachments'}
    >>> attrs_table({"url": ["url.full"]})
    Traceback (most recent call last):
    ...
    ValueError: JSON mapping attrs: 'url' -> ['url.full']: give one JSON path
    """
    return _text_table(table, "attrs", "attribute -> JSON path", "give one JSON path")


def _text_table(table: Any, name: str, shape: str, remedy: str) -> dict[str, str]:
    """A mapping's table ``name`` checked: non-empty text -> non-empty text."""
    if not isinstance(table, Mapping):
        raise ValueError(f"JSON mapping {name}: a table of {shape}, got {table!r}")
    for key, value in table.items():
        if not (isinstance(key, str) and key and isinstance(value, str) and value):
            raise ValueError(f"JSON mapping {name}: {key!r} -> {value!r}: {remedy}")
    return dict(table)


def _attr_text(value: Any, path: str) -> str | None:
    """An attribute's text: as :func:`_text`, but an array of objects is their number (ECS
    ``email.attachments`` holds one object per attachment)."""
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return str(len(value))
    return _text(value, path)


def _one_text(value: Any, field: str) -> str | None:
    """:func:`_text` of a value that names one thing (a user, a host, an action): ECS types
    ``user.name``, ``host.name`` and ``event.action`` as one keyword (unlike
    ``event.category``, documented as an array), so an array of several values is refused
    rather than joined into a name nobody has ("alice,bob"); a one-element array is its
    element."""
    if isinstance(value, list) and len(value) > 1:
        raise ParseError(
            "bad_value",
            f"field {field!r}: an array of {len(value)} values, not one "
            f"({orjson.dumps(value).decode()[:60]})",
        )
    return _text(value, field)


def _timestamp(value: Any, field: str) -> datetime:
    if isinstance(value, bool) or value is None:
        raise ParseError("bad_timestamp", f"field {field!r}: {value!r} is not a time")
    try:
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise ValueError(value)
            seconds = value / 1000 if abs(value) >= _MILLIS_THRESHOLD else value
            return datetime.fromtimestamp(seconds, tz=UTC)
        if isinstance(value, str):
            ts = datetime.fromisoformat(value)
            return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise ParseError(
        "bad_timestamp", f"field {field!r}: {str(value)[:80]!r} is not ISO 8601 or epoch"
    )


def _bytes(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_BYTES:
        return value
    if isinstance(value, float) and value.is_integer() and 0 <= value < 2**63:
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    raise ParseError("bad_number", f"field {field!r}: {str(value)[:80]!r} is not a byte count")


def _path_getter(path: str) -> _Getter:
    """:func:`resolve` of one path, spelled out for the usual one- and two-part paths."""
    head, dot, tail = path.partition(".")
    if not dot:
        return lambda obj: obj.get(path, _MISSING)
    if "." in tail:
        return lambda obj: resolve(obj, path)

    def get(obj: dict[str, Any]) -> Any:
        if path in obj:
            return obj[path]
        child = obj.get(head)
        # orjson gives plain dicts: the exact class test is much cheaper than the ABC one.
        if child.__class__ is dict or (child is not None and isinstance(child, Mapping)):
            return child.get(tail, _MISSING)
        return _MISSING

    return get


def _first_getter(paths: Sequence[str]) -> _Getter:
    """The first present, non-null value of ``paths`` (as ``JsonLinesParser._first``), or None."""
    getters = [_path_getter(path) for path in paths]
    if not getters:
        return lambda obj: None
    if len(getters) == 1:
        only = getters[0]

        def first_of_one(obj: dict[str, Any]) -> Any:
            value = only(obj)
            return None if value is _MISSING else value

        return first_of_one

    def first(obj: dict[str, Any]) -> Any:
        for get in getters:
            value = get(obj)
            if value is not _MISSING and value is not None:
                return value
        return None

    return first


class JsonLinesParser:
    """One JSON object per line, mapped onto Event fields by (dotted) paths.

    Parameters
    ----------
    mapping
        Event field (``ts``, ``user``, ``host``, ``action``, ``outcome``, ``target``,
        ``bytes``, ``source``) -> a JSON path or a list of candidate paths; fields not given
        keep the ECS default. A missing timestamp or action is a ``missing_field`` error.
        Its ``actions`` key, a table of the log's action -> baseliner's action, is merged
        over :data:`ECS_ACTIONS` (an entry mapping a value to itself keeps it as it is):
        a translated action is what the features see, and one translated to ``logon``
        with ``event.outcome`` ``failure`` is a ``logon_failure``. An array of several
        values for the user, host or action is a ``bad_value`` error (one element is that
        element); other fields join an array's values with commas. Its ``attrs`` key, a
        table of ``attrs`` key -> one JSON path, is merged over :data:`ECS_ATTR_PATHS`: the
        value at the path, when present, is the event's attribute (an array of objects gives
        their number, so ``{"attachments": "email.attachments"}`` counts attachments).
    source
        The Event source when the mapping gives none.

    Examples
    --------
    >>> p = JsonLinesParser()
    >>> e = p.parse('{"@timestamp": "2024-05-01T10:00:00Z", "user": {"name": "ann"},'
    ...             ' "event": {"action": "logon", "category": ["authentication"]},'
    ...             ' "host.name": "ws1"}')
    >>> e.ts.isoformat(), e.user, e.host, e.action, dict(e.attrs)
    ('2024-05-01T10:00:00+00:00', 'ann', 'ws1', 'logon', {'event.category': 'authentication'})
    >>> p = JsonLinesParser({"actions": {"4624": "logon"}, "action": "event.code"})
    >>> p.parse('{"@timestamp": "2024-05-01T10:00:00Z", "event.code": 4624}').action
    'logon'
    >>> p = JsonLinesParser({"attrs": {"attachments": "email.attachments"}})
    >>> e = p.parse('{"@timestamp": "2024-05-01T10:00:00Z", "event.action": "email_send",'
    ...             ' "email": {"attachments": [{"file": {"name": "a.pdf"}}, {}]},'
    ...             ' "url": {"original": "http://x.example/mimikatz.zip"}}')
    >>> dict(e.attrs)
    {'url': 'http://x.example/mimikatz.zip', 'attachments': '2'}
    """

    columnar_min_lines: int = 32
    """Batches shorter than this go row-wise: Arrow's JSON reader has a fixed cost per call."""
    attr_paths: tuple[tuple[str, str], ...] = tuple(ECS_ATTR_PATHS.items())
    """(``attrs`` key, JSON path) pairs, :data:`ECS_ATTR_PATHS` with the mapping's ``attrs``
    table merged over it (a class default too: a parser unpickled from before it has it)."""

    def __init__(
        self,
        mapping: Mapping[str, str | Sequence[str] | Mapping[str, str]] | None = None,
        source: str = "jsonl",
    ) -> None:
        merged: dict[str, tuple[str, ...]] = dict(ECS_MAPPING)
        table: dict[str, str] = dict(ECS_ACTIONS)
        attr_paths: dict[str, str] = dict(ECS_ATTR_PATHS)
        for field, paths in (mapping or {}).items():
            if field == ACTIONS_KEY:
                table.update(action_table(paths))
                continue
            if field == ATTRS_KEY:
                attr_paths.update(attrs_table(paths))
                continue
            if field not in _FIELDS:
                raise ValueError(f"unknown Event field {field!r} in JSON mapping")
            if isinstance(paths, Mapping):
                raise ValueError(f"JSON mapping {field!r}: a path or a list of paths, not a table")
            merged[field] = (paths,) if isinstance(paths, str) else tuple(paths)
        self.mapping: Mapping[str, tuple[str, ...]] = merged
        self.actions: Mapping[str, str] = {old: new for old, new in table.items() if old != new}
        """The log's action -> baseliner's action, for the actions that change."""
        if attr_paths != ECS_ATTR_PATHS:
            self.attr_paths = tuple(attr_paths.items())
        self.source = source

    def parse(self, line: str) -> Event | None:
        """Parse one JSON line."""
        return self._translated(self._parse_text(line))

    def parse_bytes(self, line: bytes) -> Event | None:
        """Parse one JSON line given as bytes (the batch reader's path, no decoding)."""
        return self._translated(self._parse_bytes(line))

    def _translated(self, event: Event | None) -> Event | None:
        """The event with its action translated by :attr:`actions`."""
        if event is None or event.action not in self.actions:
            return event
        action = self.actions[event.action]
        if action == actions.LOGON and event.outcome == actions.FAILURE:
            action = actions.LOGON_FAILURE
        return dataclasses.replace(event, action=action)

    def _translated_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """:meth:`_translated` of a frame's ``action`` column (``parse_batch``'s events)."""
        if not self.actions or not frame.height:
            return frame
        # A batch holds few distinct actions: most batches need no translation at all.
        if self.actions.keys().isdisjoint(frame.get_column("action").unique().to_list()):
            return frame
        action = pl.col("action")
        logons = [old for old, new in self.actions.items() if new == actions.LOGON]
        failed = action.is_in(logons) & (pl.col("outcome") == actions.FAILURE)
        return frame.with_columns(
            pl.when(failed)
            .then(pl.lit(actions.LOGON_FAILURE))
            .otherwise(action.replace(dict(self.actions)))
            .alias("action")
        )

    def _parse_text(self, line: str) -> Event | None:
        """:meth:`parse` before the action's translation."""
        if line.strip(BLANK_CHARS) == "":
            return None
        return self._parse_bytes(line.encode("utf-8", errors="replace"))

    def _parse_bytes(self, line: bytes) -> Event | None:
        """:meth:`parse_bytes` before the action's translation."""
        if line.strip(BLANK_CHARS.encode()) == b"":
            return None
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ParseError("bad_json", str(exc)[:120]) from None
        if not isinstance(obj, dict):
            raise ParseError("bad_json", f"a JSON {type(obj).__name__}, not an object")
        return self._event(obj)

    def _first(self, obj: Mapping[str, Any], field: str) -> tuple[str, Any]:
        for path in self.mapping.get(field, ()):
            value = resolve(obj, path)
            if value is not _MISSING and value is not None:
                return path, value
        return "", None

    def _event(self, obj: Mapping[str, Any]) -> Event:
        ts_path, ts_value = self._first(obj, "ts")
        if ts_value is None:
            raise ParseError("missing_field", f"no timestamp at {list(self.mapping['ts'])}")
        ts = _timestamp(ts_value, ts_path)
        action_path, action_value = self._first(obj, "action")
        action = _one_text(action_value, action_path)
        if action is None:
            raise ParseError("missing_field", f"no action at {list(self.mapping['action'])}")
        texts: dict[str, str | None] = {}
        for field in ("user", "host", "target", "outcome", "source"):
            path, value = self._first(obj, field)
            texts[field] = (_one_text if field in _ONE_VALUE else _text)(value, path)
        bytes_path, bytes_value = self._first(obj, "bytes")
        attrs: dict[str, str] = {}
        for key, path in self.attr_paths:
            value = resolve(obj, path)
            if value is not _MISSING:
                text = _attr_text(value, path)
                if text is not None:
                    attrs[key] = text
        return Event(
            ts,
            texts["source"] or self.source,
            action,
            texts["user"],
            texts["host"],
            texts["target"],
            _bytes(bytes_value, bytes_path),
            texts["outcome"],
            attrs=attrs,
        )

    # -- the batch path (the daemon's fast path) ---------------------------------------------

    def parse_batch(
        self,
        records: Sequence[RawRecord],
        *,
        attrs_keys: Collection[str] | None = None,
        utf8_checked: bool = False,
    ) -> tuple[pl.DataFrame, list[DeadLetter]]:
        """Parse many records at once into a frame of Event columns, and dead letters.

        The outcome is exactly :meth:`parse` of each record's text: the frame's rows are the
        events in record order (blank lines are skipped) and every :class:`ParseError` is a
        :class:`DeadLetter` with the record's origin, line, text, reason and detail, in record
        order. The batch is read columnar: its lines are joined and read at once by Arrow's
        JSON reader with an explicit schema of the mapped paths (flat dotted keys and nested
        objects alike; only the nested spellings when the batch's text holds no flat key; a
        null column for a spelling no line has given a value yet, typed once one does), and
        polars maps the columns onto the Event fields (Arrow converts the timestamps). Arrow
        refuses a line whose mapped values have another type (a number where text is
        expected, an object where a string is); those lines, the ones that do not satisfy
        the rules (a missing field, a timestamp polars does not read as Python does) and any
        line Arrow and ``orjson`` might read differently go the row-wise way (one ``orjson``
        call per line, the per-line path for anything unusual), and only those.

        Parameters
        ----------
        records
            Raw lines with their positions.
        attrs_keys
            ``None``: ``attrs`` is the JSON object text of every attribute, as
            :func:`streams.batch.events_to_frame` writes it. A collection: only these keys
            are kept (null when none is present), which saves encoding attributes that no
            feature reads.
        utf8_checked
            The caller found the bytes of ``records`` (a
            :class:`~streams.sources.blocks.RecordBlock`) to be UTF-8 already: they are not
            read again to check (the daemon checks every block to dead-letter invalid lines).

        Returns
        -------
        frame, dead_letters
            ``frame`` has the :data:`~streams.event.POLARS_EVENT_SCHEMA` columns plus
            ``record``, the index in ``records`` of each event's line.

        Examples
        --------
        >>> p = JsonLinesParser()
        >>> records = [RawRecord('{"@timestamp": "2024-05-01T10:00:00Z", "user.name": "ann",'
        ...                      ' "event.action": "logon"}', "a.json", 1, 70),
        ...            RawRecord('{"event.action": "logon"}', "a.json", 2, 96)]
        >>> frame, dead = p.parse_batch(records)
        >>> frame.select("user", "action", "record").rows()
        [('ann', 'logon', 0)]
        >>> [(d.line, d.reason) for d in dead]
        [(2, 'missing_field')]
        """
        wanted = None if attrs_keys is None else frozenset(attrs_keys)
        plan = None
        if len(records) >= self.columnar_min_lines:
            plan = self._columnar_plan(stamps=self._batch_stamps())
        if plan is not None:
            lines = None
            if isinstance(records, RecordBlock):
                # Its bytes as they are; invalid UTF-8 (replaced in the texts) goes by text.
                lines = _LineBuffer.of_block(records, utf8_checked=utf8_checked)
            if lines is None:
                # Text that is not UTF-8 (lone surrogates): the row-wise path replaces it.
                with contextlib.suppress(UnicodeEncodeError):
                    lines = _LineBuffer.of_texts(records)
            if lines is not None:
                frame, dead = self._parse_columnar(plan, records, lines, wanted)
                return self._translated_frame(frame), dead
        frame, errors = self._parse_rows(records, range(len(records)), wanted)
        return self._translated_frame(frame), _dead_letters(records, errors)

    def _parse_rows(
        self, records: Sequence[RawRecord], indices: Sequence[int], wanted: frozenset[str] | None
    ) -> tuple[pl.DataFrame, list[tuple[int, ParseError]]]:
        """The row-wise batch path over ``records[i]`` for ``i`` in ``indices`` (in order).

        One ``orjson`` call and a few dictionary look-ups per line for the usual shape, the
        per-line path for anything else; polars converts the timestamps at once. ``record``
        is the index into ``records``; errors are ``(index, error)`` in index order.
        """
        columns: dict[str, list[Any]] = {name: [] for name in _BATCH_SCHEMA}
        ts_list, record_list, action_list = columns["ts"], columns["record"], columns["action"]
        user_list, host_list = columns["user"], columns["host"]
        target_list, outcome_list = columns["target"], columns["outcome"]
        source_list, bytes_list, attrs_list = columns["source"], columns["bytes"], columns["attrs"]
        # Rows whose time Python gave (slow lines), and the objects of fast rows.
        python_ts: list[tuple[int, datetime]] = []
        objects: list[dict[str, Any] | None] = []
        errors: list[tuple[int, ParseError]] = []
        get = self._fast_getters()
        ts_get, action_get, bytes_get, source_get = (
            get["ts"],
            get["action"],
            get["bytes"],
            get["source"],
        )
        user_get, host_get, target_get, outcome_get = (
            get["user"],
            get["host"],
            get["target"],
            get["outcome"],
        )
        attrs_gets = self._attrs_getters()
        default_source = self.source
        loads = orjson.loads
        for index in indices:
            record = records[index]
            text = record.text
            obj: Any
            try:
                obj = loads(text)
            except orjson.JSONDecodeError as refused:
                obj = refused
            if obj.__class__ is dict:
                ts_value = ts_get(obj)
                action = action_get(obj)
                user, host, target = user_get(obj), host_get(obj), target_get(obj)
                outcome, source, nbytes = outcome_get(obj), source_get(obj), bytes_get(obj)
                attrs = _fast_attrs(obj, attrs_gets, wanted)
                if (
                    ts_value.__class__ is str
                    and action.__class__ is str
                    and action
                    and (user is None or user.__class__ is str)
                    and (host is None or host.__class__ is str)
                    and (target is None or target.__class__ is str)
                    and (outcome is None or outcome.__class__ is str)
                    and (source is None or source.__class__ is str)
                    and (nbytes is None or (nbytes.__class__ is int and 0 <= nbytes <= _MAX_BYTES))
                    and attrs is not _MISSING
                ):
                    ts_list.append(ts_value)
                    record_list.append(index)
                    objects.append(obj)
                    action_list.append(action)
                    user_list.append(user or None)
                    host_list.append(host or None)
                    target_list.append(target or None)
                    outcome_list.append(outcome or None)
                    source_list.append(source or default_source)
                    bytes_list.append(nbytes)
                    attrs_list.append(attrs)
                    continue
            # Anything else (not an object, not decodable as given, another type, a missing
            # field): the per-line path decides, with its exact error (an ASCII line that is
            # not an object: the bytes it would read are the text's, read already).
            event: Event | None
            try:
                if obj.__class__ is dict:
                    event = self._event(obj)
                elif text.isascii():
                    _not_an_object(text, obj)
                    continue  # a blank line
                else:
                    event = self._parse_text(text)
            except ParseError as error:
                errors.append((index, error))
                continue
            if event is None:
                continue
            python_ts.append((len(record_list), event.ts))
            objects.append(None)
            ts_list.append(None)
            record_list.append(index)
            for name in ("source", "action", "user", "host", "target", "bytes", "outcome"):
                columns[name].append(getattr(event, name))
            kept = {k: v for k, v in event.attrs.items() if wanted is None or k in wanted}
            attrs_list.append(orjson.dumps(kept).decode() if kept else None)
        frame, unread = _frame(columns, python_ts)
        if unread:
            frame = self._settle_timestamps(frame, unread, objects, record_list, errors)
        errors.sort(key=lambda pair: pair[0])
        return frame, errors

    def _columnar_plan(
        self, *, nested_only: bool = False, stamps: bool = False
    ) -> _ColumnarPlan | None:
        """The plan whose schema types the paths seen with a value so far (None: no schema
        holds the mapping); ``nested_only``: without the spellings a key's text would show;
        ``stamps``: Arrow reads the timestamps (where no other field reads their keys)."""
        plans: dict[tuple[frozenset[tuple[str, ...]], bool, bool], _ColumnarPlan | None] | None
        plans = self.__dict__.get("_plans")
        if plans is None or self.__dict__.get("_plans_of") is not self.mapping:
            plans = {}
            self.__dict__["_plans"], self.__dict__["_plans_of"] = plans, self.mapping
            self.__dict__["_typed"] = frozenset()
        key = (self.__dict__["_typed"], nested_only, stamps)
        if key not in plans:
            plans[key] = _ColumnarPlan.build(self.mapping, *key, attr_paths=self.attr_paths)
        return plans[key]

    def _batch_stamps(self) -> bool:
        """Whether this batch's timestamps are Arrow's to read: not for a while after Arrow
        refused one (a batch read again as text), a while that doubles at each refusal."""
        left, wait = self.__dict__.get("_text_times", (0, _TEXT_TIMES_BATCHES // 2))
        if left:
            self.__dict__["_text_times"] = (left - 1, wait)
            return False
        return True

    def _refuse_stamps(self) -> None:
        """Arrow refused a timestamp's text: the next batches read the timestamps as text."""
        _, wait = self.__dict__.get("_text_times", (0, _TEXT_TIMES_BATCHES // 2))
        self.__dict__["_text_times"] = (2 * wait, 2 * wait)

    def _strict_batch(self) -> bool:
        """Whether this batch is read with a strict plan (:meth:`_ColumnarPlan.strict`): not
        for a while after one was refused (a key beyond its schema), a while that doubles at
        each refusal."""
        left, wait = self.__dict__.get("_loose_reads", (0, _LOOSE_BATCHES // 2))
        if left:
            self.__dict__["_loose_reads"] = (left - 1, wait)
            return False
        return True

    def _strict_plan(self, plan: _ColumnarPlan, data: bytes) -> _ColumnarPlan:
        """``plan`` made strict, keeping the null leaves whose key the lines were seen to
        name (the first batch read strictly, and each refused one, are looked at)."""
        present: frozenset[tuple[str, ...]] | None = self.__dict__.get("_present")
        if present is None:
            present = self.__dict__["_present"] = _named_leaves(plan, data)
        return plan.strict(present) or plan

    def _refuse_strict(self, plan: _ColumnarPlan, data: bytes) -> None:
        """Arrow refused a key in a strict read: the null leaves this batch names are kept
        from now on, and the next batches are read with the whole schema."""
        present: frozenset[tuple[str, ...]] = self.__dict__.get("_present", frozenset())
        self.__dict__["_present"] = present | _named_leaves(plan, data)
        _, wait = self.__dict__.get("_loose_reads", (0, _LOOSE_BATCHES // 2))
        wait = min(2 * wait, _MOST_LOOSE_BATCHES)
        self.__dict__["_loose_reads"] = (wait, wait)

    def _learn(self, plan: _ColumnarPlan, message: str) -> bool:
        """Whether Arrow's error ``message`` names a null column of ``plan`` given a value of
        its leaf's type: that leaf is typed from now on."""
        found = _NULL_COLUMN_HINT.search(message)
        if found is None:
            return False
        leaves = plan.untyped.get(found.group(1), {}).get(found.group(2))
        if not leaves:
            return False
        self.__dict__["_typed"] = self.__dict__["_typed"] | leaves
        return True

    def _parse_columnar(
        self,
        plan: _ColumnarPlan,
        records: Sequence[RawRecord],
        lines: _LineBuffer,
        wanted: frozenset[str] | None,
    ) -> tuple[pl.DataFrame, list[DeadLetter]]:
        """:meth:`parse_batch` through Arrow's reader; the lines it cannot vouch for row-wise."""
        # When no line holds the text of a key that an earlier spelling of a path ends with
        # (``"user.name"`` before ``"user": {"name": ...}``), only the last spellings can be
        # present: Arrow reads a schema of those alone, and no reading is uncertain.
        hiding = bool(plan.hidden) and lines.may_hide(plan.hidden)
        if plan.hidden and not hiding:
            nested = self._columnar_plan(nested_only=True, stamps=plan.stamps)
            assert nested is not None  # a part of the schema of ``plan``
            plan = nested
        ok = lines.columnar()
        row_wise: list[int] = np.flatnonzero(~ok).tolist()
        if row_wise:
            positions = np.flatnonzero(ok)
            buffer, ends = lines.select(ok)
        else:
            positions = np.arange(len(ok), dtype=np.int64)
            buffer, ends = lines.data, lines.ends
        tables, read_positions, plan = self._read_ranges(plan, buffer, ends, positions, row_wise)
        pieces: list[pl.DataFrame] = []
        if tables:
            table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
            record = pl.Series("record", read_positions, dtype=pl.Int64())
            if plan.columns:
                frame = pl.from_arrow(plan.typed_columns(table))
                assert isinstance(frame, pl.DataFrame)
                frame = frame.with_columns(record)
            else:
                frame = record.to_frame()
            flags: dict[str, npt.NDArray[np.bool_]] = {}
            if hiding and plan.uncertain is not None:
                flags = lines.flags(plan, read_positions)
            stamps = plan.timestamps(table)
            events, slow = plan.events(frame, stamps, self.source, wanted, flags=flags)
            if slow:
                row_wise.extend(slow)
                events = events.filter(~pl.col("record").is_in(slow))
            pieces.append(events)
        errors: list[tuple[int, ParseError]] = []
        if row_wise:
            row_wise.sort()
            rows_frame, errors = self._parse_rows(records, row_wise, wanted)
            pieces.append(rows_frame)
        frame = pl.concat(pieces) if len(pieces) > 1 else pieces[0] if pieces else _empty()
        if len(pieces) > 1 or len(tables) > 1:
            frame = frame.sort("record")
        return frame, _dead_letters(records, errors)

    def _read_ranges(
        self,
        plan: _ColumnarPlan,
        buffer: bytes,
        ends: npt.NDArray[np.int64],
        positions: npt.NDArray[np.int64],
        row_wise: list[int],
    ) -> tuple[list[pa.Table], npt.NDArray[np.int64], _ColumnarPlan]:
        """Arrow tables of the lines it reads, their record indices, the plan they were read
        with; the other lines to ``row_wise``.

        ``buffer`` holds the lines of records ``positions``, line ``i`` ending (newline
        included) at ``ends[i]``. A failed read is split at the row Arrow names (the line
        before it too: Arrow counts text after a complete object as the next row) or else in
        halves, and each part is read again, a bounded number of times per batch. Before
        that, the failing lines from the named row on are checked: at the batch's first
        failure the suspect ones (:func:`_suspects`), at a later failure of the text's syntax
        all of them, with ``orjson``; the lines it refuses go row-wise and the others are
        read again at once (a batch of many bad lines costs a check, not a read per bad
        line). A check that finds none splits the read as above. A read refused because a
        path never seen with a value (a null column, which costs Arrow almost nothing) has
        one of its type is no failure: the path is typed from then on and the batch read
        again, which happens at most once per path.
        """
        settled = len(row_wise)
        if self._strict_batch():
            plan = self._strict_plan(plan, buffer)
        # The lines' buffers: the batch's, and the lines a check kept, joined.
        segments = [(buffer, ends, positions)]
        tables: list[pa.Table] = []
        read: list[npt.NDArray[np.int64]] = []
        pending = [(0, 0, len(positions))] if len(positions) else []
        failures = 0
        # How far failing lines have been checked: 0 not, 1 the suspect ones, 2 all of them.
        checked = 0

        def set_aside(
            segment: int, lo: int, first: int, hi: int, aside: npt.NDArray[np.bool_]
        ) -> None:
            """Lines ``first`` to ``hi`` of ``segment`` marked in ``aside`` go row-wise; the
            others are joined and read again at once, and lines ``lo`` to ``first`` too."""
            data, line_ends, line_positions = segments[segment]
            row_wise.extend(line_positions[first:hi][aside].tolist())
            if lo < first:
                pending.append((segment, lo, first))
            if not aside.all():
                kept = _kept_lines(data, line_ends, first, ~aside)
                segments.append((*kept, line_positions[first:hi][~aside]))
                pending.append((len(segments) - 1, 0, len(kept[1])))

        while pending:
            segment, lo, hi = pending.pop()
            data, line_ends, line_positions = segments[segment]
            begin = int(line_ends[lo - 1]) if lo else 0
            chunk = memoryview(data)[begin : int(line_ends[hi - 1])]
            syntax = True
            wrong_kind = None
            number = None
            try:
                table = pa_json.read_json(
                    pa.BufferReader(chunk),
                    read_options=pa_json.ReadOptions(
                        use_threads=False, block_size=max(len(chunk) + 1, 1 << 16)
                    ),
                    parse_options=plan.parse_options,
                )
                hint = None
                if table.num_rows == hi - lo:
                    tables.append(table)
                    read.append(line_positions[lo:hi])
                    continue
            except (pa.ArrowException, ValueError) as error:
                message = str(error)
                found = _ROW_HINT.search(message)
                learnt = None
                if self._learn(plan, message):
                    learnt = self._columnar_plan(nested_only=plan.nested_only, stamps=plan.stamps)
                elif plan.stamps and _STAMP_REFUSAL in message:
                    # Arrow refuses a timestamp's text without naming its row: the batch is
                    # read again with the timestamps as text, each decided row by row.
                    self._refuse_stamps()
                    learnt = self._columnar_plan(nested_only=plan.nested_only)
                elif plan.positions is not None and _UNEXPECTED_REFUSAL in message:
                    # A key the strict schema does not hold (one no field reads, or a path's
                    # first value): the batch is read again with the whole schema.
                    self._refuse_strict(plan, buffer)
                    learnt = self._columnar_plan(nested_only=plan.nested_only, stamps=plan.stamps)
                if learnt is not None:
                    plan = learnt
                    del row_wise[settled:]
                    del segments[1:]
                    tables, read, failures, checked = [], [], 0, 0
                    pending = [(0, 0, len(positions))]
                    continue
                hint = int(found.group(1)) if found else None
                syntax = _TYPE_REFUSAL.search(message) is None
                wrong_kind = _WRONG_KIND.search(message)
                number = _NUMBER_REFUSAL.search(message)
            failures += 1
            if failures > _MAX_FAILED_READS or hi - lo <= 2:
                row_wise.extend(line_positions[lo:hi].tolist())
                continue
            named = hint is not None and 0 <= hint < hi - lo
            # From the row before the named one (see above); the lines before it were read.
            first = lo + max(hint - 1, 0) if hint is not None and named else lo
            if (
                wrong_kind is not None
                and hint is not None
                and named
                and wrong_kind.group(2) in _KIND_STARTS
            ):
                # A value of another kind at a key: every line from the named one on whose
                # text gives that key such a value goes row-wise, the others are read again
                # at once (a batch of many costs a search, not a read per line). A line the
                # search misses (an escaped key) fails a read again.
                wrong = _other_kinds(data, line_ends, first, hi, *wrong_kind.groups())
                # The search must find the named line (or the one before it, see above).
                if wrong[: lo + hint - first + 1].any():
                    set_aside(segment, lo, first, hi, wrong)
                    continue
            if number is not None:
                # A number the integer column cannot hold, named by its text: the lines
                # holding that text as a value go row-wise (where it is a dead letter, or a
                # line the search took wrongly is read as any other), the others are read
                # again at once, instead of halving the batch down to the line.
                holding = _with_number(data, line_ends, lo, hi, number.group(1))
                if holding.any():
                    set_aside(segment, lo, lo, hi, holding)
                    continue
            if checked == 0 or (checked == 1 and syntax):
                checked += 1
                suspects = _suspects(data, line_ends, first, hi) if checked == 1 else None
                valid = _json_objects(data, line_ends, first, hi, suspects)
                if not valid.all():
                    set_aside(segment, lo, first, hi, ~valid)
                    continue
            if hint is not None and named:
                after = lo + hint + 1
                row_wise.extend(line_positions[first:after].tolist())
                pending.extend(
                    (segment, *part) for part in ((lo, first), (after, hi)) if part[0] < part[1]
                )
            else:
                middle = (lo + hi) // 2
                pending.extend([(segment, lo, middle), (segment, middle, hi)])
        if len(read) == 1:
            return tables, read[0], plan
        return tables, np.concatenate(read) if read else np.empty(0, dtype=np.int64), plan

    def _settle_timestamps(
        self,
        frame: pl.DataFrame,
        unread: list[int],
        objects: list[dict[str, Any] | None],
        record_list: list[int],
        errors: list[tuple[int, ParseError]],
    ) -> pl.DataFrame:
        """Rows whose timestamp text polars did not read: the per-object path decides."""
        keep = [True] * frame.height
        fixed: list[tuple[int, datetime]] = []
        for position in unread:
            obj = objects[position]
            assert obj is not None
            try:
                fixed.append((position, self._event(obj).ts))
            except ParseError as error:
                errors.append((record_list[position], error))
                keep[position] = False
        frame = _scatter_ts(frame, fixed)
        return frame if all(keep) else frame.filter(pl.Series(keep, dtype=pl.Boolean()))

    def __getstate__(self) -> dict[str, Any]:
        # The compiled getters are closures (they do not pickle); rebuilt on first use.
        return {k: v for k, v in self.__dict__.items() if k not in _CACHED}

    def _fast_getters(self) -> dict[str, _Getter]:
        getters: dict[str, _Getter] | None = self.__dict__.get("_getters")
        if getters is None or self.__dict__.get("_getters_of") is not self.mapping:
            getters = {field: _first_getter(self.mapping.get(field, ())) for field in _FIELDS}
            self.__dict__["_getters"], self.__dict__["_getters_of"] = getters, self.mapping
        return getters

    def _attrs_getters(self) -> tuple[tuple[str, _Getter], ...]:
        return tuple((key, _path_getter(path)) for key, path in self.attr_paths)


def _named_leaves(plan: _ColumnarPlan, data: bytes) -> frozenset[tuple[str, ...]]:
    """The null leaves of ``plan`` each of whose keys' JSON text ``data`` holds (a key may
    be spelt with escapes, which this misses: a strict read refuses it, which is slower only).

    Examples
    --------
    >>> plan = _ColumnarPlan.build({"user": ("user.name",), "action": ("a",)}, frozenset())
    >>> sorted(_named_leaves(plan, b'{"user": {"name": null}, "b": 1}'))
    [('user', 'name')]
    """
    return frozenset(
        keys for keys in plan.untyped_leaves() if all(orjson.dumps(key) in data for key in keys)
    )


def _not_an_object(text: str, value: Any) -> None:
    """The :class:`ParseError` :meth:`JsonLinesParser.parse` raises for an ASCII line that
    ``orjson`` read as ``value``, not an object (or refused: ``value`` is its error, which the
    line's bytes give too); nothing for a blank line.

    Examples
    --------
    >>> _not_an_object("  ", orjson.JSONDecodeError("", "", 0))
    >>> _not_an_object("[1]", [1])
    Traceback (most recent call last):
    ...
    streams.errors.ParseError: bad_json: a JSON list, not an object
    """
    if isinstance(value, orjson.JSONDecodeError):
        if text.strip(BLANK_CHARS) == "":
            return None
        raise ParseError("bad_json", str(value)[:120])
    raise ParseError("bad_json", f"a JSON {type(value).__name__}, not an object")


def _fast_attrs(
    obj: dict[str, Any],
    getters: tuple[tuple[str, _Getter], ...],
    wanted: frozenset[str] | None,
) -> Any:
    """``attrs`` as JSON text (or None) when every ECS attribute is a string, else _MISSING."""
    attrs: dict[str, str] | None = None
    for path, get in getters:
        value = get(obj)
        if value is _MISSING or value is None:
            continue
        if value.__class__ is not str:
            return _MISSING
        if value and (wanted is None or path in wanted):
            if attrs is None:
                attrs = {}
            attrs[path] = value
    return None if attrs is None else orjson.dumps(attrs).decode()


def _line_starts(ends: npt.NDArray[np.int64], first: int, stop: int) -> npt.NDArray[np.int64]:
    """Where lines ``first`` to ``stop`` begin (line ``i`` ends at ``ends[i]``)."""
    starts = np.empty(stop - first, dtype=np.int64)
    if len(starts):
        starts[0] = ends[first - 1] if first else 0
        starts[1:] = ends[first : stop - 1]
    return starts


def _suspects(
    data: bytes, ends: npt.NDArray[np.int64], first: int, stop: int
) -> npt.NDArray[np.bool_]:
    """Which of lines ``first`` to ``stop`` (each ``{...}``, UTF-8) may not be JSON: their
    ``{`` and ``}`` do not pair up (a line cut short, or two run together), or a key does not
    begin straight after the ``{`` (single quotes). A few passes over the bytes, much
    cheaper than reading each line; a bad line it misses is found by Arrow again.

    Examples
    --------
    >>> lines = [b'{"a": {}}', b'{"a": {', b"{'a': 1}", b"{}", b'{ "b": "}"}']
    >>> data = b"\\n".join(lines) + b"\\n"
    >>> ends = np.cumsum([len(line) + 1 for line in lines])
    >>> _suspects(data, ends, 1, 5).tolist()
    [True, True, False, True]
    """
    starts = _line_starts(ends, first, stop)
    offsets = np.append(starts, ends[stop - 1]).astype(np.int64)
    texts = pl.from_arrow(
        pa.LargeStringArray.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(data))
    )
    assert isinstance(texts, pl.Series)
    opened = texts.str.count_matches("{", literal=True).to_numpy()
    closed = texts.str.count_matches("}", literal=True).to_numpy()
    second = np.frombuffer(data, dtype=np.uint8)[starts + 1]
    suspect: npt.NDArray[np.bool_] = (opened != closed) | ((second != _QUOTE) & (second != _CLOSE))
    return suspect


def _other_kinds(
    data: bytes, ends: npt.NDArray[np.int64], first: int, stop: int, key: str, kind: str
) -> npt.NDArray[np.bool_]:
    """Which of lines ``first`` to ``stop`` give the key ``key`` (its text as Arrow names
    it) a value neither of kind ``kind`` (one of :data:`_KIND_STARTS`) nor null: one search
    of the lines' text (a key of that name elsewhere in the line counts too).

    Examples
    --------
    >>> lines = [b'{"u": {"name": "a"}}', b'{"u": {"name" : 5}}', b'{"name": {"x": 1}}',
    ...          b'{"name": null}', b'{"x": "name: 5"}']
    >>> data = b"\\n".join(lines) + b"\\n"
    >>> ends = np.cumsum([len(line) + 1 for line in lines])
    >>> _other_kinds(data, ends, 0, 5, "name", "string").tolist()
    [False, True, True, False, False]
    """
    texts = _line_texts(data, ends, first, stop)
    # The number's class last: its hyphen stands for itself there.
    others = "".join(
        start
        for name, start in sorted(_KIND_STARTS.items(), key=lambda item: item[0] == "number")
        if name != kind
    )
    pattern = _literal(orjson.dumps(key).decode()) + f"\\s*:\\s*[{others}]"
    wrong: npt.NDArray[np.bool_] = texts.str.contains(pattern).to_numpy()
    return wrong


def _with_number(
    data: bytes, ends: npt.NDArray[np.int64], first: int, stop: int, number: str
) -> npt.NDArray[np.bool_]:
    """Which of lines ``first`` to ``stop`` hold ``number`` (its text as Arrow names it) as
    a value, after a colon: one search of the lines' text (the text inside a string counts
    too, which only sends that line down the slower path).

    Examples
    --------
    >>> lines = [b'{"b": 1}', b'{"b": 1.5}', b'{"b" :1.5 }', b'{"b": 1.55}', b'{"m": "x:1.5}"}']
    >>> data = b"\\n".join(lines) + b"\\n"
    >>> ends = np.cumsum([len(line) + 1 for line in lines])
    >>> _with_number(data, ends, 0, 5, "1.5").tolist()
    [False, True, True, False, True]
    """
    texts = _line_texts(data, ends, first, stop)
    pattern = ":\\s*" + _literal(number) + "(?:[\\s,}\\]]|$)"
    holding: npt.NDArray[np.bool_] = texts.str.contains(pattern).to_numpy()
    return holding


def _line_texts(data: bytes, ends: npt.NDArray[np.int64], first: int, stop: int) -> pl.Series:
    """Lines ``first`` to ``stop`` of ``data`` (line ``i`` ending at ``ends[i]``) as a
    string column, without copying them."""
    starts = _line_starts(ends, first, stop)
    offsets = np.append(starts, ends[stop - 1]).astype(np.int64)
    texts = pl.from_arrow(
        pa.LargeStringArray.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(data))
    )
    assert isinstance(texts, pl.Series)
    return texts


def _json_objects(
    data: bytes,
    ends: npt.NDArray[np.int64],
    first: int,
    stop: int,
    only: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.bool_]:
    """Which of lines ``first`` to ``stop`` (line ``i`` ending at ``ends[i]``) ``orjson``
    reads as JSON (each is ``{...}`` already, so a JSON value is an object); ``only``: the
    lines to read (the others count as JSON).

    Examples
    --------
    >>> data = b'{"a": 1}\\n{"a": \\n{"a": 1}{}\\n{}\\n'
    >>> ends = np.array([9, 15, 26, 29])
    >>> _json_objects(data, ends, 1, 4).tolist()
    [False, False, True]
    >>> _json_objects(data, ends, 1, 4, np.array([False, True, False])).tolist()
    [True, False, True]
    """
    valid = np.ones(stop - first, dtype=np.bool_)
    lines = memoryview(data)
    loads = orjson.loads
    if only is None:
        begin = int(ends[first - 1]) if first else 0
        for row, end in enumerate(ends[first:stop].tolist()):
            try:
                loads(lines[begin:end])
            except orjson.JSONDecodeError:
                valid[row] = False
            begin = end
        return valid
    rows = np.flatnonzero(only)
    starts = _line_starts(ends, first, stop)[rows].tolist()
    for row, begin, end in zip(rows.tolist(), starts, ends[first + rows].tolist(), strict=True):
        try:
            loads(lines[begin:end])
        except orjson.JSONDecodeError:
            valid[row] = False
    return valid


def _kept_lines(
    data: bytes, ends: npt.NDArray[np.int64], first: int, keep: npt.NDArray[np.bool_]
) -> tuple[bytes, npt.NDArray[np.int64]]:
    """The bytes of the kept lines of ``first`` on (``keep`` marks each), joined, and where
    each ends: one copy of each run of kept lines.

    Examples
    --------
    >>> data, ends = b"a\\nbb\\nc\\ndd\\ne\\n", np.array([2, 5, 7, 10, 12])
    >>> kept, kept_ends = _kept_lines(data, ends, 1, np.array([True, True, False, True]))
    >>> kept, kept_ends.tolist()
    (b'bb\\nc\\ne\\n', [3, 5, 7])
    """
    stops = ends[first : first + len(keep)]
    starts = _line_starts(ends, first, first + len(keep))
    # The runs of kept lines: where ``keep`` turns on and off.
    edges = np.flatnonzero(np.diff(np.concatenate(([False], keep, [False])).astype(np.int8)))
    lines = memoryview(data)
    joined = b"".join(
        lines[begin:end]
        for begin, end in zip(
            starts[edges[0::2]].tolist(), stops[edges[1::2] - 1].tolist(), strict=True
        )
    )
    kept_ends: npt.NDArray[np.int64] = np.cumsum(stops[keep] - starts[keep])
    return joined, kept_ends


def _scatter_ts(frame: pl.DataFrame, values: list[tuple[int, datetime]]) -> pl.DataFrame:
    if not values:
        return frame
    positions = pl.Series([p for p, _ in values], dtype=pl.UInt32())
    stamps = pl.Series([t for _, t in values], dtype=pl.Datetime("us", "UTC"))
    return frame.with_columns(frame.get_column("ts").scatter(positions, stamps))


def _frame(
    columns: dict[str, list[Any]], python_ts: list[tuple[int, datetime]]
) -> tuple[pl.DataFrame, list[int]]:
    """The batch frame, and the rows whose timestamp text polars did not read."""
    data = {
        name: pl.Series(name, values, dtype=_BATCH_SCHEMA[name])
        for name, values in columns.items()
        if name != "ts"
    }
    text = pl.col("__ts_text")
    texts = pl.Series(columns["ts"], dtype=pl.String())
    frame = pl.DataFrame({"__ts_text": texts, **data}).with_columns(_timestamps(texts).alias("ts"))
    unread = (
        frame.select(pl.arg_where(pl.col("ts").is_null() & text.is_not_null()))
        .to_series()
        .to_list()
    )
    frame = _scatter_ts(frame.select(*EVENT_COLUMNS, "record"), python_ts)
    return frame, unread


def _dead_letters(
    records: Sequence[RawRecord], errors: list[tuple[int, ParseError]]
) -> list[DeadLetter]:
    letters: list[DeadLetter] = []
    for index, error in errors:
        record = records[index]
        letters.append(
            DeadLetter(record.origin, record.line, error.reason, record.text, error.detail)
        )
    return letters


@dataclass(frozen=True)
class _LineBuffer:
    """The lines of a batch as one buffer: line ``i`` is ``data[ends[i - 1]:ends[i]]``, its
    last byte the newline after it."""

    data: bytes
    ends: npt.NDArray[np.int64]
    crlf: bool
    """Whether a carriage return before a newline ends the line (a file's bytes: the record's
    text drops it) rather than being part of the line (joined texts)."""
    suspect: tuple[int, ...] = ()
    """Lines whose text holds a newline of its own (joined texts only)."""

    @classmethod
    def of_block(cls, block: RecordBlock, *, utf8_checked: bool = False) -> _LineBuffer | None:
        """The block's bytes, or None when they are not UTF-8 (the texts replace bytes);
        ``utf8_checked``: the caller found them to be UTF-8 (a pass over them saved)."""
        data = block.data
        if not utf8_checked and not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                return None
        return cls(data, block.ends, crlf=True)

    @classmethod
    def of_texts(cls, records: Sequence[RawRecord]) -> _LineBuffer:
        """The records' texts joined by newlines (UnicodeEncodeError if one is not UTF-8)."""
        texts = [record.text for record in records]
        data = ("\n".join(texts) + "\n").encode("utf-8")
        if data.count(b"\n") == len(texts):
            ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == _NEWLINE) + 1
            return cls(data, ends.astype(np.int64), crlf=False)
        lengths = np.fromiter((len(t.encode("utf-8")) + 1 for t in texts), dtype=np.int64)
        suspect = tuple(i for i, text in enumerate(texts) if "\n" in text)
        return cls(data, np.cumsum(lengths), crlf=False, suspect=suspect)

    def _starts_stops(self, has_cr: bool) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Where each line's text begins, and where it stops (its terminator's first byte);
        ``has_cr``: whether the data holds a carriage return."""
        ends = self.ends
        starts = np.zeros_like(ends)
        starts[1:] = ends[:-1]
        stops = ends - 1
        if self.crlf and has_cr:
            view = np.frombuffer(self.data, dtype=np.uint8)
            stops = stops - ((stops > starts) & (view[np.maximum(stops - 1, 0)] == _CR))
        return starts, stops

    def lines_of(self, offsets: npt.NDArray[np.int64] | list[int]) -> npt.NDArray[np.int64]:
        """The lines holding these byte offsets."""
        return np.searchsorted(self.ends, offsets, side="right").astype(np.int64)

    def columnar(self) -> npt.NDArray[np.bool_]:
        """Which lines Arrow may read (one object each, as orjson reads it).

        A line must be ``{...}`` with nothing around it, without NaN or infinities (which
        Arrow reads and orjson refuses), without a NUL, a newline or a carriage return inside
        (Arrow ends a row at either), and too short to nest deeper than orjson allows (or its
        brackets counted).
        """
        data, view = self.data, np.frombuffer(self.data, dtype=np.uint8)
        # Each memchr-fast search is a pass over the whole batch: the data's bytes that
        # matter are looked for once.
        has_cr = b"\r" in data
        starts, stops = self._starts_stops(has_cr)
        sizes = stops - starts
        ok = (sizes >= 2) & (view[starts] == _OPEN) & (view[np.maximum(stops - 1, 0)] == _CLOSE)
        if self.suspect:
            ok[list(self.suspect)] = False
        for needle in (b"NaN", b"Inf"):
            # The first byte alone is a much faster search (memchr), and usually absent.
            if needle[:1] in data and needle in data:
                found = [match.start() for match in re.finditer(needle, data)]
                ok[self.lines_of(found)] = False
        for byte, present in ((0, b"\0" in data), (_CR, has_cr)):
            if present:
                found_at = np.flatnonzero(view == byte)
                lines = self.lines_of(found_at)
                # A carriage return that ends its line is not inside it.
                inside = found_at != stops[lines]
                ok[lines[inside]] = False
        for line in np.flatnonzero(ok & (sizes >= 2 * _MAX_FAST_NESTING)).tolist():
            begin, stop = int(starts[line]), int(stops[line])
            if data.count(b"[", begin, stop) + data.count(b"{", begin, stop) > _MAX_FAST_NESTING:
                ok[line] = False
        columnar: npt.NDArray[np.bool_] = ok
        return columnar

    def select(self, keep: npt.NDArray[np.bool_]) -> tuple[bytes, npt.NDArray[np.int64]]:
        """The bytes of the kept lines, in order, and where each ends."""
        return _kept_lines(self.data, self.ends, 0, keep)

    @cached_property
    def escapes(self) -> npt.NDArray[np.int64]:
        """Where the real ``\\u`` and ``\\/`` escapes are (the only ones a key's text may
        have that its JSON text, as ``orjson`` writes it, does not)."""
        return _escape_starts(self.data)

    def may_hide(self, hidden: str) -> bool:
        r"""Whether a line may hold a hidden key: the regular expression ``hidden`` is found
        somewhere, or a key has a ``\u`` or ``\/`` escape (a search over all the bytes at
        once for each).

        Examples
        --------
        >>> def lines(data):
        ...     return _LineBuffer(data, np.array([len(data)]), crlf=False)
        >>> lines(rb'{"x": "caf\u00e9", "p": "C:\\users", "q": "a\/b"}' b"\n").may_hide("zz")
        False
        >>> lines(rb'{"user\u002ename" : null}' b"\n").may_hide("zz")
        True
        """
        offsets = pa.py_buffer(np.array([0, len(self.data)], dtype=np.int64))
        whole = pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(self.data))
        if pc.match_substring_regex(whole, hidden)[0].as_py():
            return True
        # Escapes in values (paths, accented names) do not count: RE2 finds the few that
        # end a key much faster than the real escapes among all backslashes are found.
        return b"\\" in self.data and bool(pc.match_substring_regex(whole, _KEY_ESCAPE)[0].as_py())

    def flags(
        self, plan: _ColumnarPlan, rows: npt.NDArray[np.int64]
    ) -> dict[str, npt.NDArray[np.bool_]]:
        """For the lines ``rows``: which may hold the text of a hidden key (``__hidden``) and
        which a real escape (``__escape``); only the kinds some line has."""
        found: dict[str, npt.NDArray[np.bool_]] = {}
        if plan.hidden:
            hidden = self.series().str.contains(plan.hidden)
            if hidden.any():
                found["__hidden"] = hidden.to_numpy()[rows]
        if len(self.escapes):
            mask = np.zeros(len(self.ends), dtype=np.bool_)
            mask[self.lines_of(self.escapes)] = True
            found["__escape"] = mask[rows]
        return found

    def series(self) -> pl.Series:
        """The lines as text (each with its terminator), without copying them one by one."""
        offsets = np.zeros(len(self.ends) + 1, dtype=np.int64)
        offsets[1:] = self.ends
        array = pa.LargeStringArray.from_buffers(
            len(self.ends), pa.py_buffer(offsets), pa.py_buffer(self.data)
        )
        lines = pl.from_arrow(array)
        assert isinstance(lines, pl.Series)
        return lines


def _escape_starts(data: bytes) -> npt.NDArray[np.int64]:
    r"""Where each real ``\u`` or ``\/`` escape starts: a ``u`` or ``/`` after an odd run of
    backslashes (``\\u`` is an escaped backslash, then a letter u).

    Examples
    --------
    >>> _escape_starts(rb'"\u00e9" "C:\\users" "\\\/"').tolist()
    [1, 24]
    """
    if b"\\" not in data:
        return np.empty(0, dtype=np.int64)
    view = np.frombuffer(data, dtype=np.uint8)
    backslashes = np.flatnonzero(view == _BACKSLASH)
    first = np.ones(len(backslashes), dtype=np.bool_)
    first[1:] = backslashes[1:] != backslashes[:-1] + 1
    run_starts = np.flatnonzero(first)
    run_stops = np.append(run_starts[1:], len(backslashes))
    last = backslashes[run_stops - 1]
    # The byte after each run (the run itself when it ends the data: not a u).
    after = view[np.minimum(last + 1, len(view) - 1)]
    real = ((run_stops - run_starts) % 2 == 1) & ((after == _LETTER_U) | (after == _SLASH))
    starts: npt.NDArray[np.int64] = last[real].astype(np.int64)
    return starts


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=_BATCH_SCHEMA)


def _spellings(path: str) -> list[tuple[str, ...]]:
    """Every way ``path`` can be spelt as nested keys, in the order :func:`resolve` tries them.

    Examples
    --------
    >>> _spellings("a.b.c")
    [('a.b.c',), ('a', 'b.c'), ('a', 'b', 'c'), ('a.b', 'c')]
    """
    parts = path.split(".")
    found: list[tuple[str, ...]] = [(path,)]
    for cut in range(1, len(parts)):
        head = ".".join(parts[:cut])
        found.extend((head, *rest) for rest in _spellings(".".join(parts[cut:])))
    return found


def _last_spelling(path: str) -> list[tuple[str, ...]]:
    """The last of :func:`_spellings` (the only one present when no line shows the others)."""
    return _spellings(path)[-1:]


def _lookup(keys: tuple[str, ...], columns: Mapping[str, str]) -> pl.Expr:
    expr = pl.col(columns[keys[0]])
    for key in keys[1:]:
        expr = expr.struct.field(key)
    return expr


@dataclass(frozen=True)
class _PathColumns:
    """One JSON path's value in the Arrow frame, and when a row's reading is uncertain."""

    value: pl.Expr | None
    """None when no spelling of the path has a typed column (every value is null)."""
    uncertain: pl.Expr | None
    """A later spelling won while an earlier one is null: absent, or present as ``null``
    (which :func:`resolve` returns, hiding the later one). Decided by the line's text."""
    hidden: tuple[str, ...]
    """The JSON text of the earlier spellings' last keys."""

    @classmethod
    def of(
        cls,
        path: str,
        columns: Mapping[str, str],
        typed: frozenset[tuple[str, ...]],
        nested_only: bool = False,
    ) -> _PathColumns:
        """``typed``: the spellings with a typed column; the others are null in every row.
        ``nested_only``: the last spelling is the only one any line has."""
        spellings = _spellings(path)
        hidden = tuple(orjson.dumps(keys[-1]).decode() for keys in spellings[:-1])
        if nested_only:
            spellings = spellings[-1:]
        values = [_lookup(keys, columns) if keys in typed else None for keys in spellings]
        known = [value for value in values if value is not None]
        if not known:
            return cls(None, None, hidden)
        value = known[0] if len(known) == 1 else pl.coalesce(known)
        if len(spellings) == 1 or values[0] is value:
            return cls(value, None, hidden)
        first = values[0]
        uncertain = value.is_not_null() if first is None else first.is_null() & value.is_not_null()
        return cls(value, uncertain, hidden)


@dataclass(frozen=True)
class _ColumnarPlan:
    """What the columnar batch path reads for one mapping: the Arrow schema and expressions.

    A spelling of a path that no line has given a value yet is a null column (which costs
    Arrow next to nothing, and which it refuses to fill: the refusal names the column, which
    is then typed); the others have their type (text, or a whole number for ``bytes``).
    """

    parse_options: pa_json.ParseOptions
    nested_only: bool
    """Only the last spelling of each path is in the schema (no line has the others)."""
    columns: tuple[int, ...]
    """The schema's top-level columns the expressions read (the ones holding a typed leaf,
    but those only the timestamp reads, which Arrow converts itself)."""
    ts_columns: tuple[tuple[int, tuple[str, ...]], ...]
    """The typed spellings of the timestamp paths, in the order they are tried: a top-level
    column and the keys within it."""
    untyped: dict[str, dict[str, frozenset[tuple[str, ...]]]]
    """Arrow's name of a null column (``/event/action``) -> the kind of value it names in
    its refusal (``string``) -> the spellings of that type the column stands for."""
    fields: dict[str, tuple[_PathColumns, ...]]
    attrs: tuple[tuple[str, _PathColumns], ...]
    uncertain: pl.Expr | None
    """A row whose reading depends on whether a key is present with ``null``."""
    hidden: str
    """A regular expression found in every line holding the JSON text of a key that decides
    it (the text from the key's last dot on, which nested spellings rarely have)."""
    stamps: bool = False
    """The timestamps' leaves are Arrow timestamps: Arrow reads the ISO 8601 text itself
    (its values are Python's, the years 1 to 9999 aside) and refuses the whole read for a
    text it does not read; else they are text, converted after the read."""
    mapped: dict[tuple[str, frozenset[str] | None], tuple[tuple[pl.Expr, ...], pl.Expr]] = (
        dataclasses.field(default_factory=dict, compare=False, repr=False)
    )
    """The built expressions, by source and attribute keys (see :meth:`_mapped`)."""
    positions: Mapping[int, int] | None = None
    """Where each column of :attr:`columns` and :attr:`ts_columns` sits in the tables this
    plan reads (None: at its index in the schema; see :meth:`strict`)."""
    stricter: dict[frozenset[tuple[str, ...]], _ColumnarPlan] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )
    """The plans :meth:`strict` built, by the null leaves they keep."""

    @classmethod
    def build(
        cls,
        mapping: Mapping[str, tuple[str, ...]],
        typed: frozenset[tuple[str, ...]],
        nested_only: bool = False,
        stamps: bool = False,
        attr_paths: Sequence[tuple[str, str]] = tuple(ECS_ATTR_PATHS.items()),
    ) -> _ColumnarPlan | None:
        """The plan with the spellings ``typed`` typed, or None when the mapping cannot be
        one schema (a key both an object and a value, a path of too many parts).
        ``nested_only``: the schema has the last spelling of each path alone. ``stamps``:
        the timestamps are Arrow timestamps, unless another field reads one of their keys.
        ``attr_paths``: (``attrs`` key, JSON path) pairs read into ``attrs``."""
        leaves: list[tuple[tuple[str, ...], pa.DataType]] = []
        paths = [(field, path) for field, group in mapping.items() for path in group]
        attr_list = [path for _, path in attr_paths]
        for field, path in [*paths, *(("attrs", path) for path in attr_list)]:
            if path.count(".") >= _MAX_COLUMNAR_PARTS:
                return None
            kind = pa.int64() if field == "bytes" else pa.string()
            leaves.extend((keys, kind) for keys in _spellings(path))
        if _arrow_schema(leaves) is None:
            return None
        # Text read as string views, which polars takes as they are (plain strings it
        # converts, a copy of every value). The timestamps are Arrow's timestamps (its ISO
        # 8601 reading is cheaper than the text's copy and cast), or else their text stays
        # plain (Arrow's cast to a timestamp reads it, and a view of a key read twice would
        # clash); a key another field reads too stays text.
        times = {keys for path in mapping.get("ts", ()) for keys in _spellings(path)}
        read_as_text = {
            keys
            for field, path in [*paths, *(("attrs", path) for path in attr_list)]
            if field != "ts"
            for keys in _spellings(path)
        }
        stamps = stamps and not times & read_as_text
        time_kind = _STAMP if stamps else pa.string()
        leaves = [
            (
                keys,
                time_kind if keys in times else pa.string_view() if kind == pa.string() else kind,
            )
            for keys, kind in leaves
        ]
        if nested_only:
            last = {_spellings(path)[-1] for _, path in paths}
            last.update(_spellings(path)[-1] for path in attr_list)
            leaves = [(keys, kind) for keys, kind in leaves if keys in last]
        spellings = _last_spelling if nested_only else _spellings
        schema = _arrow_schema(
            [(keys, kind if keys in typed else pa.null()) for keys, kind in leaves]
        )
        assert schema is not None  # a part of the tree above, some leaves null
        untyped: dict[str, dict[str, set[tuple[str, ...]]]] = {}
        for keys, kind in leaves:
            if keys not in typed:
                named = untyped.setdefault("/" + "/".join(keys), {})
                named.setdefault(_KIND_NAMES[kind], set()).add(keys)
        kept = [j for j, column in enumerate(schema) if _holds_values(column.type)]
        # The frame's columns are renamed by position: a JSON key cannot clash with the
        # helper columns (``line``, ``record``) that sit beside them.
        renamed = {schema.names[j]: f"{_JSON_COLUMN}{j}" for j in kept}
        fields = {
            field: tuple(
                _PathColumns.of(path, renamed, typed, nested_only)
                for path in mapping.get(field, ())
            )
            for field in _FIELDS
        }
        attrs = tuple(
            (key, _PathColumns.of(path, renamed, typed, nested_only)) for key, path in attr_paths
        )
        columns = [c for group in fields.values() for c in group] + [c for _, c in attrs]
        index = {schema.names[j]: j for j in kept}
        ts_columns = tuple(
            (index[keys[0]], keys[1:])
            for path in mapping.get("ts", ())
            for keys in spellings(path)
            if keys in typed
        )
        read = {
            index[keys[0]]
            for field, group in mapping.items()
            # The timestamp's columns too when a row's reading of it may be uncertain.
            if field != "ts" or any(c.uncertain is not None for c in fields["ts"])
            for path in group
            for keys in spellings(path)
            if keys in typed
        }
        read.update(
            index[keys[0]] for path in attr_list for keys in spellings(path) if keys in typed
        )
        hidden = sorted({key for c in columns for key in c.hidden})
        uncertain = [c.uncertain for c in columns if c.uncertain is not None]
        options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        return cls(
            options,
            nested_only,
            tuple(j for j in kept if j in read),
            ts_columns,
            {
                name: {kind: frozenset(keys) for kind, keys in kinds.items()}
                for name, kinds in untyped.items()
            },
            fields,
            attrs,
            pl.any_horizontal(uncertain) if uncertain else None,
            "|".join(sorted({_literal(key[key.rfind(".") :]) for key in hidden})),
            stamps,
        )

    def untyped_leaves(self) -> frozenset[tuple[str, ...]]:
        """The spellings of the schema's null leaves."""
        return frozenset(
            keys for kinds in self.untyped.values() for group in kinds.values() for keys in group
        )

    def strict(self, present: Collection[tuple[str, ...]]) -> _ColumnarPlan | None:
        """This plan read with a schema of its typed leaves and of the null leaves
        ``present`` alone (spellings), refusing any other key; None if that is its schema.

        When no line has another key, its tables hold the same values, and Arrow is spared
        the null columns of the paths the lines lack (a tenth of its instructions on the
        stream bench's lines). A key named in a line keeps its null column: even a null
        value of a key the schema lacks is refused (see :meth:`JsonLinesParser._strict_plan`).
        """
        untyped = self.untyped_leaves()
        kept = untyped.intersection(present)
        if kept == untyped:
            return None
        if kept not in self.stricter:
            schema = self.parse_options.explicit_schema
            fields = [(j, _strict_field(field, (), kept)) for j, field in enumerate(schema)]
            chosen = [(j, field) for j, field in fields if field is not None]
            self.stricter[kept] = dataclasses.replace(
                self,
                parse_options=pa_json.ParseOptions(
                    explicit_schema=pa.schema([field for _, field in chosen]),
                    unexpected_field_behavior="error",
                ),
                mapped=self.mapped,
                positions={j: position for position, (j, _) in enumerate(chosen)},
                stricter={},
            )
        return self.stricter[kept]

    def _position(self, column: int) -> int:
        return column if self.positions is None else self.positions[column]

    def typed_columns(self, table: pa.Table) -> pa.Table:
        """The columns of Arrow's ``table`` that the expressions read, named as they read them."""
        return table.select([self._position(j) for j in self.columns]).rename_columns(
            [f"{_JSON_COLUMN}{j}" for j in self.columns]
        )

    def timestamps(self, table: pa.Table) -> pl.Series:
        """The events' times from Arrow's ``table`` (null where a row's is missing or not
        read as :func:`_timestamp` reads it)."""
        texts = [
            pc.struct_field(table.column(self._position(j)), list(keys))
            if keys
            else table.column(self._position(j))
            for j, keys in self.ts_columns
        ]
        if not texts:
            return pl.Series("ts", [None] * table.num_rows, dtype=pl.Datetime("us", "UTC"))
        text = texts[0] if len(texts) == 1 else pc.coalesce(*texts)
        if self.stamps:
            return _in_python_range(text)
        return _arrow_timestamps(text.combine_chunks()).alias("ts")

    @staticmethod
    def _first(group: tuple[_PathColumns, ...]) -> pl.Expr:
        """The first path with a value (JsonLinesParser._first), or null."""
        values = [c.value for c in group if c.value is not None]
        if not values:
            return pl.lit(None, dtype=pl.String())
        return values[0] if len(values) == 1 else pl.coalesce(values)

    def events(
        self,
        frame: pl.DataFrame,
        stamps: pl.Series,
        source: str,
        wanted: frozenset[str] | None,
        *,
        flags: Mapping[str, npt.NDArray[np.bool_]],
    ) -> tuple[pl.DataFrame, list[int]]:
        """The Event columns of Arrow's ``frame`` (plus ``record``), and the records that must
        go the row-wise way (a rule broken, or a reading uncertain).

        ``flags`` marks the rows whose line holds a hidden key's text (``__hidden``) or a
        real ``\\u`` escape (``__escape``), when any does.
        """
        columns, broken = self._mapped(source, wanted)
        slow = pl.col("__ts").is_null() | broken
        if self.uncertain is not None and flags:
            # A key may be spelt with a \\u escape, which its text does not find: lines with
            # a real escape (not an escaped backslash before a u) count as uncertain too.
            marked = pl.any_horizontal(
                [pl.lit(pl.Series(name, mask)) for name, mask in flags.items()]
            )
            slow = slow | (self.uncertain & marked)
        events = frame.with_columns(stamps.alias("__ts")).select(*columns, slow.alias("__slow"))
        is_slow = events.get_column("__slow")
        slow_records = (
            events.get_column("record").filter(is_slow).to_list() if is_slow.any() else []
        )
        return events.select(*EVENT_COLUMNS, "record"), slow_records

    def _mapped(
        self, source: str, wanted: frozenset[str] | None
    ) -> tuple[tuple[pl.Expr, ...], pl.Expr]:
        """The expressions of the Event columns and of a broken rule (built once per source
        and attribute keys: building them costs as much as running them on a small batch)."""
        key = (source, wanted)
        if key not in self.mapped:
            self.mapped[key] = self._build_mapped(source, wanted)
        return self.mapped[key]

    def _build_mapped(
        self, source: str, wanted: frozenset[str] | None
    ) -> tuple[tuple[pl.Expr, ...], pl.Expr]:
        action = self._first(self.fields["action"])
        text = {
            field: pl.when(value != "").then(value)
            for field in ("user", "host", "target", "outcome", "source")
            for value in [self._first(self.fields[field])]
        }
        parts = [
            pl.when(value != "").then(
                pl.lit(orjson.dumps(path).decode() + ":")
                + pl.struct(value.alias("v")).struct.json_encode().str.slice(5).str.head(-1)
            )
            for path, columns in self.attrs
            if wanted is None or path in wanted
            for value in [columns.value]
            if value is not None
        ]
        attrs = pl.lit(None, dtype=pl.String())
        if parts:
            joined = pl.concat_str(parts, separator=",", ignore_nulls=True)
            attrs = pl.when(joined != "").then(pl.lit("{") + joined + pl.lit("}"))
        nbytes = self._first(self.fields["bytes"]).cast(pl.Int64())
        broken = action.is_null() | (action == "") | nbytes.lt(0).fill_null(False)
        columns = (
            pl.col("__ts").alias("ts"),
            text["source"].fill_null(pl.lit(source)).alias("source"),
            action.alias("action"),
            text["user"].alias("user"),
            text["host"].alias("host"),
            text["target"].alias("target"),
            nbytes.alias("bytes"),
            text["outcome"].alias("outcome"),
            attrs.cast(pl.String()).alias("attrs"),
            pl.col("record"),
        )
        return columns, broken


def _literal(text: str) -> str:
    """``text`` as a polars (Rust) regular expression matching it literally.

    Examples
    --------
    >>> _literal('"a b.c#d"')
    '"a b\\\\.c\\\\#d"'
    """
    return "".join(f"\\{char}" if char in _REGEX_META else char for char in text)


def _holds_values(kind: pa.DataType) -> bool:
    """Whether a column of this type may hold a value (it is not null all the way down)."""
    if pa.types.is_struct(kind):
        return any(_holds_values(kind.field(i).type) for i in range(kind.num_fields))
    return not pa.types.is_null(kind)


def _strict_field(
    field: pa.Field, parents: tuple[str, ...], kept: Collection[tuple[str, ...]]
) -> pa.Field | None:
    """``field`` (under the keys ``parents``) with its typed leaves and the null ones
    ``kept`` alone; None when none is left.

    Examples
    --------
    >>> empty = pa.struct([("d", pa.null())])
    >>> kind = pa.struct([("a", pa.string()), ("b", pa.null()), ("c", empty)])
    >>> _strict_field(pa.field("x", kind), (), set())
    pyarrow.Field<x: struct<a: string>>
    >>> _strict_field(pa.field("x", kind), (), {("x", "b")})
    pyarrow.Field<x: struct<a: string, b: null>>
    """
    keys = (*parents, field.name)
    if pa.types.is_struct(field.type):
        children = [
            _strict_field(field.type.field(i), keys, kept) for i in range(field.type.num_fields)
        ]
        left = [child for child in children if child is not None]
        return pa.field(field.name, pa.struct(left)) if left else None
    return field if not pa.types.is_null(field.type) or keys in kept else None


def _arrow_schema(leaves: list[tuple[tuple[str, ...], pa.DataType]]) -> pa.Schema | None:
    """One Arrow schema holding every spelling; None if a key would be two things."""
    root: dict[str, Any] = {}
    for keys, kind in leaves:
        node = root
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                return None
            node = child
        existing = node.setdefault(keys[-1], kind)
        if isinstance(existing, dict) or existing != kind:
            return None

    def fields(node: dict[str, Any]) -> list[pa.Field]:
        return [
            pa.field(key, pa.struct(fields(value)) if isinstance(value, dict) else value)
            for key, value in node.items()
        ]

    return pa.schema(fields(root))


def _in_python_range(stamps: pa.Array | pa.ChunkedArray) -> pl.Series:
    """Arrow's timestamps as a ``ts`` series, null outside ``_FIRST_MICROS`` to
    ``_LAST_MICROS`` (those rows go the row-wise way, which decides as Python does).

    Examples
    --------
    >>> year_one = pa.array([-62135596800000000, -62135510400000000], pa.int64())
    >>> _in_python_range(year_one.cast(_STAMP)).to_list()
    [None, datetime.datetime(1, 1, 2, 0, 0, tzinfo=zoneinfo.ZoneInfo(key='UTC'))]
    """
    series = pl.from_arrow(stamps)
    assert isinstance(series, pl.Series)
    micros = series.to_physical()
    least, most = micros.min(), micros.max()
    if (least is not None and least < _FIRST_MICROS) or (  # type: ignore[operator]
        most is not None and most > _LAST_MICROS  # type: ignore[operator]
    ):
        inside = micros.is_between(_FIRST_MICROS, _LAST_MICROS)
        series = series.to_frame("ts").select(pl.when(inside).then(pl.col("ts"))).to_series()
    return series.alias("ts")


def _timestamps(text: pl.Series) -> pl.Series:
    """ISO 8601 UTC text read exactly as ``datetime.fromisoformat`` reads it; else null.

    Arrow's ISO 8601 reader (several times faster than polars' ``strptime``) reads a batch
    whose every text is of the shape both read alike, all with a UTC designator or all
    without (it refuses a batch that mixes them, or an impossible date); polars reads the
    others.

    Examples
    --------
    >>> texts = pl.Series(["2024-05-01T10:00:00.5Z", "2024-05-01 10:00:01+00:00"])
    >>> [t.isoformat() for t in _timestamps(texts)]
    ['2024-05-01T10:00:00.500000+00:00', '2024-05-01T10:00:01+00:00']
    >>> _timestamps(pl.Series(["2024-02-30T00:00:00Z", "10:00"])).to_list()
    [None, None]
    """
    if len(text) and text.str.contains(_ISO_UTC).all(ignore_nulls=True):
        array = text.to_arrow().cast(pa.large_string())
        for kind in (pa.timestamp("us", "UTC"), pa.timestamp("us")):
            try:
                read = pl.from_arrow(pc.cast(array, kind))
            except pa.ArrowInvalid:
                continue
            assert isinstance(read, pl.Series)
            stamps = read if kind.tz else read.dt.replace_time_zone("UTC")
            return stamps.alias(text.name)
    return text.to_frame().select(_timestamp_expr(pl.col(text.name))).to_series()


def _arrow_timestamps(text: pa.Array) -> pl.Series:
    """:func:`_timestamps` of Arrow text, without a regular expression when every text has
    one shape (the same length, fraction digits and UTC designator, checked byte by byte).

    Examples
    --------
    >>> texts = pa.array(["2024-05-01T10:00:00.5Z", "2024-05-01 23:59:59.1Z"])
    >>> [t.isoformat() for t in _arrow_timestamps(texts)]
    ['2024-05-01T10:00:00.500000+00:00', '2024-05-01T23:59:59.100000+00:00']
    >>> _arrow_timestamps(pa.array(["2024-02-30T00:00:00", "2024-02-28T00:00:00"])).to_list()
    [None, datetime.datetime(2024, 2, 28, 0, 0, tzinfo=zoneinfo.ZoneInfo(key='UTC'))]
    """
    kind = _one_iso_shape(text)
    if kind is not None:
        with contextlib.suppress(pa.ArrowInvalid):
            # Arrow refuses an impossible date (30 February): polars decides per row.
            read = pc.cast(text, kind)
            stamps = pl.from_arrow(read if kind.tz else read.cast(_UTC_MICROS))
            assert isinstance(stamps, pl.Series)
            return stamps
    series = pl.from_arrow(text)
    assert isinstance(series, pl.Series)
    return _timestamps(series)


_UTC_MICROS: Final = pa.timestamp("us", "UTC")
#: ``YYYY-MM-DDThh:mm:ss`` as the bytes each position may hold (low, high); the separator is
#: checked on its own (a T or a space).
_ISO_TEMPLATE: Final = b"0000-00-00T00:00:00", b"9999-99-99T99:99:99"
_ISO_SEPARATOR: Final = 10
#: The first digit of each two-digit field (month, day, hour, minute, second), their ranges.
_ISO_TENS: Final = [5, 8, 11, 14, 17]
_ISO_LEAST: Final = np.array([1, 1, 0, 0, 0], dtype=np.int16)
_ISO_MOST: Final = np.array([12, 31, 23, 59, 59], dtype=np.int16)


def _one_iso_shape(text: pa.Array) -> pa.DataType | None:
    """The timestamp type to cast ``text`` to when every text matches :data:`_ISO_UTC` with
    one shape (the same fraction digits and designator); None otherwise, or when one is null.

    Examples
    --------
    >>> _one_iso_shape(pa.array(["2024-05-01T10:00:00.123Z", "2024-05-01 10:00:01.999Z"]))
    TimestampType(timestamp[us, tz=UTC])
    >>> _one_iso_shape(pa.array(["2024-05-01T10:00:00", "2024-05-01T10:00:01"]))
    TimestampType(timestamp[us])
    >>> print(_one_iso_shape(pa.array(["2024-05-01T24:00:00", "2024-05-01T10:00:01"])))
    None
    """
    rows = len(text)
    if (
        not rows
        or text.null_count
        or not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type))
    ):
        return None
    _, offsets_buffer, data_buffer = text.buffers()
    offset_type = np.int64 if pa.types.is_large_string(text.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[text.offset : text.offset + rows + 1]
    width = int(offsets[1] - offsets[0])
    if not 19 <= width <= 32 or (np.diff(offsets) != width).any():
        return None
    start = int(offsets[0])
    chars = np.frombuffer(data_buffer, dtype=np.uint8)[start : start + rows * width]
    chars = chars.reshape(rows, width)
    tail = bytes(chars[0, 19:])
    zone = b"Z" if tail.endswith(b"Z") else b"+00:00" if tail.endswith(b"+00:00") else b""
    fraction = tail[: len(tail) - len(zone)]
    if fraction and not (fraction[:1] == b"." and 2 <= len(fraction) <= 7):
        return None
    digits = b"0" * (len(fraction) - 1)
    low = np.frombuffer(_ISO_TEMPLATE[0] + fraction[:1] + digits + zone, dtype=np.uint8)
    high = np.frombuffer(
        _ISO_TEMPLATE[1] + fraction[:1] + digits.replace(b"0", b"9") + zone, dtype=np.uint8
    )
    low, high = low.copy(), high.copy()
    low[_ISO_SEPARATOR], high[_ISO_SEPARATOR] = ord(" "), ord("T")
    # One pass over every byte: below ``low`` wraps above the span.
    if ((chars - low) > (high - low)).any():
        return None
    separator = chars[:, _ISO_SEPARATOR]
    if not ((separator == ord("T")) | (separator == ord(" "))).all():
        return None
    # The year's bytes are digits by now: their OR is "0" only when all four are "0".
    year = chars[:, 0] | chars[:, 1] | chars[:, 2] | chars[:, 3]
    if (year == ord("0")).any():
        return None  # the year 0000
    tens = chars[:, _ISO_TENS].astype(np.int16)
    numbers = tens * 10 + chars[:, [i + 1 for i in _ISO_TENS]] - 11 * ord("0")
    if ((numbers < _ISO_LEAST) | (numbers > _ISO_MOST)).any():
        return None
    return pa.timestamp("us", "UTC") if zone else pa.timestamp("us")


def _timestamp_expr(text: pl.Expr) -> pl.Expr:
    """ISO 8601 UTC text as polars reads it exactly as ``datetime.fromisoformat``; else null."""
    return (
        pl.when(text.str.contains(_ISO_UTC))
        .then(text.str.replace(r"(Z|\+00:00)$", "").str.replace(" ", "T", literal=True))
        .str.to_datetime(_ISO_FORMAT, strict=False, time_unit="us", time_zone="UTC")
    )
