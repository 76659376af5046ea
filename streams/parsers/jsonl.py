"""Generic JSON-lines parser (Elastic Common Schema field names by default)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.errors import ParseError
from streams.event import Event
from streams.parsers.base import BLANK_CHARS

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
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and 0 <= value < 2**63:
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    raise ParseError("bad_number", f"field {field!r}: {str(value)[:80]!r} is not a byte count")


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
