"""Generic JSON-lines parser (Elastic Common Schema field names by default)."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import polars as pl

from streams.errors import DeadLetter, ParseError
from streams.event import EVENT_COLUMNS, POLARS_EVENT_SCHEMA, Event
from streams.parsers.base import BLANK_CHARS
from streams.sources.base import RawRecord

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
    """

    def __init__(
        self, mapping: Mapping[str, str | Sequence[str]] | None = None, source: str = "jsonl"
    ) -> None:
        merged: dict[str, tuple[str, ...]] = dict(ECS_MAPPING)
        for field, paths in (mapping or {}).items():
            if field not in _FIELDS:
                raise ValueError(f"unknown Event field {field!r} in JSON mapping")
            merged[field] = (paths,) if isinstance(paths, str) else tuple(paths)
        self.mapping: Mapping[str, tuple[str, ...]] = merged
        self.source = source

    def parse(self, line: str) -> Event | None:
        """Parse one JSON line."""
        if line.strip(BLANK_CHARS) == "":
            return None
        return self.parse_bytes(line.encode("utf-8", errors="replace"))

    def parse_bytes(self, line: bytes) -> Event | None:
        """Parse one JSON line given as bytes (the batch reader's path, no decoding)."""
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
        action = _text(action_value, action_path)
        if action is None:
            raise ParseError("missing_field", f"no action at {list(self.mapping['action'])}")
        texts: dict[str, str | None] = {}
        for field in ("user", "host", "target", "outcome", "source"):
            path, value = self._first(obj, field)
            texts[field] = _text(value, path)
        bytes_path, bytes_value = self._first(obj, "bytes")
        attrs: dict[str, str] = {}
        for path in ECS_ATTRS:
            value = resolve(obj, path)
            if value is not _MISSING:
                text = _text(value, path)
                if text is not None:
                    attrs[path] = text
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
        self, records: Sequence[RawRecord], *, attrs_keys: Collection[str] | None = None
    ) -> tuple[pl.DataFrame, list[DeadLetter]]:
        """Parse many records at once into a frame of Event columns, and dead letters.

        The outcome is exactly :meth:`parse` of each record's text: the frame's rows are the
        events in record order (blank lines are skipped) and every :class:`ParseError` is a
        :class:`DeadLetter` with the record's origin, line, text, reason and detail, in record
        order. Lines in the usual shape (string fields, an ISO 8601 UTC timestamp) take a
        fast path: one ``orjson`` call and a few dictionary look-ups per line, and polars
        converts the batch's timestamps at once; any other line goes the per-line way.

        Parameters
        ----------
        records
            Raw lines with their positions.
        attrs_keys
            ``None``: ``attrs`` is the JSON object text of every attribute, as
            :func:`streams.batch.events_to_frame` writes it. A collection: only these keys
            are kept (null when none is present), which saves encoding attributes that no
            feature reads.

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
        columns: dict[str, list[Any]] = {name: [] for name in _BATCH_SCHEMA}
        ts_list, record_list, action_list = columns["ts"], columns["record"], columns["action"]
        user_list, host_list = columns["user"], columns["host"]
        target_list, outcome_list = columns["target"], columns["outcome"]
        source_list, bytes_list, attrs_list = columns["source"], columns["bytes"], columns["attrs"]
        # Rows whose time Python gave (slow lines), and the objects of fast rows.
        python_ts: list[tuple[int, datetime]] = []
        objects: list[dict[str, Any] | None] = []
        errors: list[tuple[int, ParseError]] = []
        wanted = None if attrs_keys is None else frozenset(attrs_keys)
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
        for index, record in enumerate(records):
            try:
                obj = loads(record.text)
            except orjson.JSONDecodeError:
                obj = None
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
            # field): the per-line path decides, with its exact error.
            try:
                event = self._event(obj) if obj.__class__ is dict else self.parse(record.text)
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
        dead = [
            DeadLetter(
                records[i].origin, records[i].line, error.reason, records[i].text, error.detail
            )
            for i, error in errors
        ]
        return frame, dead

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
        return {k: v for k, v in self.__dict__.items() if k not in ("_getters", "_getters_of")}

    def _fast_getters(self) -> dict[str, _Getter]:
        getters: dict[str, _Getter] | None = self.__dict__.get("_getters")
        if getters is None or self.__dict__.get("_getters_of") is not self.mapping:
            getters = {field: _first_getter(self.mapping.get(field, ())) for field in _FIELDS}
            self.__dict__["_getters"], self.__dict__["_getters_of"] = getters, self.mapping
        return getters

    @staticmethod
    def _attrs_getters() -> tuple[tuple[str, _Getter], ...]:
        return tuple((path, _path_getter(path)) for path in ECS_ATTRS)


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
    stamp = (
        pl.when(text.str.contains(_ISO_UTC))
        .then(text.str.replace(r"(Z|\+00:00)$", "").str.replace(" ", "T", literal=True))
        .str.to_datetime(_ISO_FORMAT, strict=False, time_unit="us", time_zone="UTC")
    )
    frame = pl.DataFrame(
        {"__ts_text": pl.Series(columns["ts"], dtype=pl.String()), **data}
    ).with_columns(stamp.alias("ts"))
    unread = (
        frame.select(pl.arg_where(pl.col("ts").is_null() & text.is_not_null()))
        .to_series()
        .to_list()
    )
    frame = _scatter_ts(frame.select(*EVENT_COLUMNS, "record"), python_ts)
    return frame, unread
