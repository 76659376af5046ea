"""Free-text log lines as template events: drain3's ``TemplateMiner`` names each line's template.

The action of an event is ``template:<cluster id>``: lines that differ only in their
variable parts (numbers, addresses, block ids...) share it, so the features count template
occurrences per entity like any other action. The parser learns as it reads (it is online),
and its learned templates are part of its state: :meth:`DrainTemplateParser.state` /
:meth:`DrainTemplateParser.restore` move them as bytes, and pickling the parser (the
daemon's checkpoint) keeps them.

Variable parts are masked before mining (``masking``), in one pass over the line: at each
position the first listed pattern that matches wins. The masked values and the words Drain
turned into ``<*>`` are the event's parameters (``attrs["param_<i>"]``, bounded).

rsyslog's ``message repeated N times: [ msg ]`` is mined as ``msg`` (the template of the
message it repeats) with ``attrs["repeated"] = N``, counted N times by the daemon and the
scan (:func:`streams.event.occurrences`).
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, tzinfo
from itertools import islice
from typing import Any, NamedTuple

import orjson

from streams.errors import ParseError
from streams.event import Event
from streams.parsers.base import is_blank, strip_eol
from streams.parsers.syslog import (
    REPEATED_MESSAGE,
    RunningYear,
    parse_iso8601,
    parse_syslog_header,
    resolve_tz,
)

log = logging.getLogger(__name__)

#: (regex, mask name) pairs; block ids before numbers, addresses (with a port) before numbers.
DEFAULT_MASKS: tuple[tuple[str, str], ...] = (
    (r"blk_-?\d+", "BLK"),
    (r"(?<![A-Za-z0-9.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![A-Za-z0-9])", "IP"),
    (r"(?<![A-Za-z0-9])0[xX][0-9a-fA-F]+(?![A-Za-z0-9])", "HEX"),
    (r"(?<![A-Za-z0-9])[-+]?\d+(?![A-Za-z0-9])", "NUM"),
)
#: :data:`DEFAULT_MASKS`' alternation, rewritten to match exactly the same spans with the same
#: mask: every default mask starts with ``b``, ``+``, ``-`` or a digit, so the pattern consumes
#: that character first and each mask's look-behind moves past it. A leading character set
#: lets the regex engine skip every other position without trying the masks (the joined
#: alternation tries all four at each character: 2-3x slower). The empty group ending each
#: mask closes last, so it is the match's ``lastgroup``, as the joined alternation's groups.
_DEFAULT_MASK_SCAN = re.compile(
    r"[-+\db](?:"
    r"(?<=b)lk_-?\d+(?P<m0>)"
    r"|(?<=\d)(?<![A-Za-z0-9.]\d)\d{0,2}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![A-Za-z0-9])(?P<m1>)"
    r"|(?<=0)(?<![A-Za-z0-9]0)[xX][0-9a-fA-F]+(?![A-Za-z0-9])(?P<m2>)"
    r"|(?<![A-Za-z0-9][-+\d])(?:(?<=[-+])\d+|(?<=\d)\d*)(?![A-Za-z0-9])(?P<m3>)"
    r")"
)
#: HDFS_v1 (``081109 203615 148 INFO ...``): ``yymmdd HHMMSS``.
HDFS_TIMESTAMP = re.compile(r"(\d{6} \d{6})(?:\s+|$)")
HDFS_TIMESTAMP_FORMAT = "%y%m%d %H%M%S"
#: ISO 8601 at the start of a line, ``T`` or space, ``.`` or ``,`` before the fraction.
ISO_TIMESTAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?)(?:\s+|$)"
)
#: Bounds on what one event carries.
MAX_TEMPLATE_CHARS = 512
MAX_PARAM_CHARS = 64
STATE_FORMAT = "baseliner.drain/1"
_WILDCARD = "<*>"


class DrainTemplateParser:
    """Free-text lines -> ``template:<id>`` events, with drain3's Drain mining the templates.

    Parameters
    ----------
    timestamp_regex
        Where the timestamp is at the start of a line: a regex matched there whose group
        ``ts`` (or whole match) is the timestamp; the rest of the line is the message.
        ``None``: a syslog header when the line has one with a program tag, else HDFS_v1's
        ``yymmdd HHMMSS``, else ISO 8601.
    timestamp_format
        ``strptime`` format of ``timestamp_regex``'s timestamp; ``None``: ISO 8601.
    entity_regex
        A regex searched in the message whose named group ``user`` and/or ``host`` fills the
        Event's field. ``None``: the syslog header's host, when there is one.
    sim_th, depth, max_children, max_clusters
        Drain's similarity threshold, prefix-tree depth (at least 3), children per tree node
        and cap on templates (least recently used ones are forgotten beyond it).
    masking
        ``(regex, name)`` pairs replacing variable parts with ``<name>`` before mining;
        ``None``: :data:`DEFAULT_MASKS` (HDFS block ids, IPv4 with port, hex, numbers). The
        patterns are joined into one alternation, so use named groups, not numbered
        back-references, inside them.
    max_params
        How many parameters an event keeps in ``attrs`` (``params_dropped`` counts the rest);
        0 skips collecting them (faster).
    tz
        Zone of timestamps without an offset.
    source
        The Event source.

    Attributes
    ----------
    running_year
        When set, the year of syslog headers' BSD timestamps (``Mmm dd hh:mm:ss``, which
        have none), as :attr:`streams.parsers.syslog.SyslogParser.running_year`: the lines
        are those of one file read in line order, the year rolled over at New Year (a
        scan's ``--year``, which restarts it at each file's first line). ``None``: each
        line's year is inferred from today. Not an option (configs cannot set it) and not
        part of :meth:`state`, the learned templates: pickling keeps it.

    Examples
    --------
    >>> p = DrainTemplateParser()
    >>> a = p.parse("081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 "
    ...             "for block blk_38865049064139660 terminating")
    >>> b = p.parse("081109 203807 222 INFO dfs.DataNode$PacketResponder: PacketResponder 0 "
    ...             "for block blk_-6952295868487656571 terminating")
    >>> a.action == b.action == "template:1", b.ts.isoformat()
    (True, '2008-11-09T20:38:07+00:00')
    >>> b.attrs["template"]
    '<NUM> INFO dfs.DataNode$PacketResponder: PacketResponder <NUM> for block <BLK> terminating'
    >>> b.attrs["param_2"]
    'blk_-6952295868487656571'
    >>> p.running_year = RunningYear(2024)
    >>> [p.parse(f"{stamp} web1 cron[7]: job 3 done").ts.isoformat()
    ...  for stamp in ("Dec 31 23:59:00", "Jan  1 00:01:00")]
    ['2024-12-31T23:59:00+00:00', '2025-01-01T00:01:00+00:00']
    """

    # A class attribute, as SyslogParser's: parsers pickled before it existed still have it.
    running_year: RunningYear | None = None

    def __init__(
        self,
        timestamp_regex: str | None = None,
        timestamp_format: str | None = None,
        entity_regex: str | None = None,
        sim_th: float = 0.4,
        depth: int = 4,
        max_children: int = 100,
        max_clusters: int | None = None,
        masking: Sequence[Sequence[str]] | None = None,
        max_params: int = 8,
        tz: tzinfo | str = "UTC",
        source: str = "drain",
    ) -> None:
        if isinstance(sim_th, bool) or not isinstance(sim_th, int | float) or not 0 <= sim_th <= 1:
            raise ValueError(f"sim_th must be a number in [0, 1], got {sim_th!r}")
        for name, value, least in (
            ("depth", depth, 3),
            ("max_children", max_children, 1),
            ("max_params", max_params, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
        if max_clusters is not None and (
            isinstance(max_clusters, bool) or not isinstance(max_clusters, int) or max_clusters < 1
        ):
            raise ValueError(f"max_clusters must be a whole number >= 1, got {max_clusters!r}")
        if timestamp_format is not None and timestamp_regex is None:
            raise ValueError("timestamp_format needs a timestamp_regex locating the timestamp")
        masks = DEFAULT_MASKS if masking is None else _check_masks(masking)
        self._options: dict[str, Any] = {
            "timestamp_regex": timestamp_regex,
            "timestamp_format": timestamp_format,
            "entity_regex": entity_regex,
            "sim_th": float(sim_th),
            "depth": depth,
            "max_children": max_children,
            "max_clusters": max_clusters,
            "masking": [list(pair) for pair in masks],
            "max_params": max_params,
            "tz": tz,
            "source": source,
        }
        self.timestamp_re = _compile(timestamp_regex, "timestamp_regex")
        self.timestamp_format = timestamp_format
        self.entity_re = _compile(entity_regex, "entity_regex")
        if self.entity_re is not None and not {"user", "host"} & set(self.entity_re.groupindex):
            raise ValueError("entity_regex needs a named group 'user' or 'host'")
        self.masks = masks
        self.mask_re = (
            _DEFAULT_MASK_SCAN
            if masks == DEFAULT_MASKS
            else _compile(
                "|".join(f"(?P<m{i}>{pattern})" for i, (pattern, _) in enumerate(masks)) or None,
                "masking",
            )
        )
        self.placeholder_re = re.compile(
            "|".join(re.escape(f"<{name}>") for _, name in masks) or r"(?!)"
        )
        self._placeholders = {f"m{i}": f"<{name}>" for i, (_, name) in enumerate(masks)}
        self.max_params = max_params
        # The attribute names of the first parameters, made once (max_params may be huge).
        self._param_keys = [f"param_{index}" for index in range(min(max_params, 64))]
        self.tz = resolve_tz(tz)
        self.source = source
        self.miner = self._new_miner()
        # Consecutive lines mostly share their timestamp text: parse it once.
        self._last_time: tuple[str, str | None, datetime] | None = None
        # What each cluster's current template gives every event of it (_described).
        self._described: dict[int, _Described] = {}

    def _new_miner(self) -> Any:
        # drain3 costs ~0.1 s to import: only configurations that use this parser pay it.
        from drain3.template_miner import TemplateMiner
        from drain3.template_miner_config import TemplateMinerConfig

        config = TemplateMinerConfig()
        config.drain_sim_th = self._options["sim_th"]
        config.drain_depth = self._options["depth"]
        config.drain_max_children = self._options["max_children"]
        config.drain_max_clusters = self._options["max_clusters"]
        # Masking happens here (one pass that also collects the values), not in drain3.
        config.masking_instructions = []
        miner = TemplateMiner(None, config)
        # Drain skips its profiler's (no-op) section calls when it has none: 4 calls a line.
        miner.drain.profiler = None
        return miner

    # -- parsing -------------------------------------------------------------------------

    def parse(self, line: str) -> Event | None:
        """Parse one line and learn from it; blank lines are skipped."""
        line = strip_eol(line)
        if is_blank(line):
            return None
        ts, host, text, received, repeated = self._split(line)
        user: str | None = None
        if self.entity_re is not None:
            found = self.entity_re.search(text)
            if found is not None:
                groups = found.groupdict()
                user = groups.get("user") or None
                host = groups.get("host") or host
        masked, values = self._mask(text)
        cluster, _ = self.miner.drain.add_log_message(masked)
        described = self._described.get(cluster.cluster_id)
        # Drain replaces a cluster's token tuple when its template changes.
        if described is None or described.tokens is not cluster.log_template_tokens:
            described = self._describe(cluster)
        attrs = {"template": described.template}
        if received:  # an RFC 5424 header without a timestamp: dated when it was read
            attrs["ts_source"] = "received"
        if repeated is not None:  # counted that many times (streams.event.occurrences)
            attrs["repeated"] = repeated
        params = self._params(described, masked, values) if self.max_params else []
        keys = self._param_keys
        if len(params) > len(keys) and len(keys) < self.max_params:  # past the names made
            keys = [f"param_{index}" for index in range(min(len(params), self.max_params))]
        for key, value in zip(keys, params, strict=False):
            attrs[key] = value[:MAX_PARAM_CHARS]
        if len(params) > self.max_params:
            attrs["params_dropped"] = str(len(params) - self.max_params)
        return Event(ts, self.source, described.action, user, host, attrs=attrs)

    def _describe(self, cluster: Any) -> _Described:
        tokens: tuple[str, ...] = cluster.log_template_tokens
        wildcards = [index for index, token in enumerate(tokens) if token == _WILDCARD]
        described = _Described(
            tokens,
            cluster.get_template()[:MAX_TEMPLATE_CHARS],
            f"template:{cluster.cluster_id}",
            wildcards[-1] if wildcards else -1,
        )
        if len(self._described) >= _MAX_DESCRIBED:  # forgotten (LRU) clusters stay here
            self._described.clear()
        self._described[cluster.cluster_id] = described
        return described

    def _split(self, line: str) -> tuple[datetime, str | None, str, bool, str | None]:
        """The timestamp, the syslog host (if any), the message to mine, whether the
        timestamp is the time of reading (a syslog header without one), and for rsyslog's
        ``message repeated N times: [ msg ]`` N (``msg`` is the message mined)."""
        if self.timestamp_re is not None:
            match = self.timestamp_re.match(line)
            if match is None:
                raise ParseError(
                    "bad_timestamp", f"timestamp_regex does not match at the start: {line[:80]!r}"
                )
            value = match.group("ts") if "ts" in self.timestamp_re.groupindex else match.group()
            ts = self._time(value or "", self.timestamp_format)
            return ts, None, line[match.end() :], False, None
        match = HDFS_TIMESTAMP.match(line)
        if match is not None:
            ts = self._time(match.group(1), HDFS_TIMESTAMP_FORMAT)
            return ts, None, line[match.end() :], False, None
        try:
            msg = parse_syslog_header(line, year=self.running_year, tz=self.tz)
        except ParseError as exc:
            if exc.reason != "bad_header":
                # A BSD header whose date is not in the year given to it (Feb 29 outside a
                # leap year, a year past 9999): the timestamp is wrong, not the line.
                raise
            msg = None
        if msg is not None and msg.app is not None:
            folded = REPEATED_MESSAGE.fullmatch(msg.message)
            if folded is not None:
                repeats, message = folded.groups()
                return msg.ts, msg.host, f"{msg.app}: {message}", msg.received_ts, repeats
            return msg.ts, msg.host, f"{msg.app}: {msg.message}", msg.received_ts, None
        match = ISO_TIMESTAMP.match(line)
        if match is not None:
            return self._time(match.group(1), None), None, line[match.end() :], False, None
        raise ParseError(
            "bad_timestamp", f"no syslog, HDFS or ISO 8601 timestamp at the start: {line[:80]!r}"
        )

    def _time(self, value: str, fmt: str | None) -> datetime:
        last = self._last_time
        if last is not None and last[0] == value and last[1] == fmt:
            return last[2]
        ts = self._parse_time(value, fmt)
        self._last_time = (value, fmt, ts)
        return ts

    def _parse_time(self, value: str, fmt: str | None) -> datetime:
        try:
            if fmt == HDFS_TIMESTAMP_FORMAT:
                # strptime is the costliest step of a line: read the fixed digits directly
                # (%y: 69-99 are 19xx, 00-68 are 20xx, as strptime does).
                year = int(value[0:2])
                ts = datetime(
                    year + (1900 if year >= 69 else 2000),
                    int(value[2:4]),
                    int(value[4:6]),
                    int(value[7:9]),
                    int(value[9:11]),
                    int(value[11:13]),
                    tzinfo=self.tz,
                )
                return ts.astimezone(UTC)
            if fmt is None:
                return parse_iso8601(value.replace(",", "."), self.tz)
            ts = datetime.strptime(value, fmt)
            return (ts.replace(tzinfo=self.tz) if ts.tzinfo is None else ts).astimezone(UTC)
        except (ValueError, OverflowError):
            raise ParseError(
                "bad_timestamp", f"{value[:40]!r} is not {fmt or 'ISO 8601'}"
            ) from None

    def _mask(self, text: str) -> tuple[str, list[str]]:
        values: list[str] = []
        if self.mask_re is None:
            return text, values
        placeholders = self._placeholders
        keep = values.append

        def replace(match: re.Match[str]) -> str:
            keep(match.group())
            # Each mask is one top-level group, which closes last: it is the match's lastgroup.
            return placeholders.get(match.lastgroup or "", "<*>")

        return self.mask_re.sub(replace, text), values

    def _params(self, described: _Described, masked: str, values: list[str]) -> list[str]:
        """Masked values and the words Drain generalised to ``<*>``, in line order."""
        last_wildcard = described.last_wildcard
        if last_wildcard < 0:
            # No token is a wildcard: every token hands over the values whose placeholders
            # it holds, which are all of them, in line order.
            return values
        template = described.tokens
        # Drain's tokens (get_content_as_tokens): no extra delimiters are configured.
        tokens = masked.split()
        if len(tokens) != len(template):
            return values
        placeholders = self.placeholder_re.findall
        queue: Iterator[str] = iter(values)
        params: list[str] = []
        for index in range(last_wildcard + 1):
            token = tokens[index]
            # Every placeholder starts with "<": most tokens need no regex.
            own = list(islice(queue, len(placeholders(token)))) if "<" in token else []
            if template[index] == _WILDCARD:
                params.append(_unmask(self.placeholder_re, token, own) if own else token)
            else:
                params.extend(own)
        # The tokens after the last wildcard hold placeholders for all the values left.
        params.extend(queue)
        return params

    # -- learned state -------------------------------------------------------------------

    def templates(self) -> dict[int, str]:
        """The learned templates by cluster id.

        Examples
        --------
        >>> p = DrainTemplateParser()
        >>> _ = p.parse("2026-11-27T10:00:00Z disk 3 full")
        >>> p.templates()
        {1: 'disk <NUM> full'}
        """
        drain = self.miner.drain
        return {
            key: drain.id_to_cluster.get(key).get_template() for key in list(drain.id_to_cluster)
        }

    def state(self) -> bytes:
        """The learned templates and Drain's prefix tree as (compressed JSON) bytes.

        Examples
        --------
        >>> p = DrainTemplateParser()
        >>> _ = p.parse("2026-11-27T10:00:00Z disk 3 full")
        >>> q = DrainTemplateParser()
        >>> q.restore(p.state())
        >>> q.parse("2026-11-27T10:00:05Z disk 4 full").action
        'template:1'
        """
        drain = self.miner.drain
        clusters = drain.id_to_cluster
        # Least recently used first, so that a restored LRU cache forgets in the same order.
        order = list(getattr(clusters, "_LRUCache__order", None) or clusters)
        document = {
            "format": STATE_FORMAT,
            "config": self._state_config(),
            "counter": drain.clusters_counter,
            "clusters": [
                [key, clusters.get(key).size, list(clusters.get(key).log_template_tokens)]
                for key in order
            ],
            "tree": _node_to_json(drain.root_node),
        }
        return zlib.compress(orjson.dumps(document))

    def restore(self, data: bytes) -> None:
        """Replace the learned templates by those of :meth:`state`'s bytes.

        Raises ``ValueError`` when the bytes are not such a state or were mined with another
        configuration (similarity, depth, masks).
        """
        from drain3.drain import LogCluster, LogClusterCache

        try:
            document = orjson.loads(zlib.decompress(data))
        except (zlib.error, orjson.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"not a drain parser state: {exc}") from None
        if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
            raise ValueError(f"not a drain parser state (format {STATE_FORMAT!r} expected)")
        if document.get("config") != self._state_config():
            raise ValueError(
                f"drain state was mined with {document.get('config')}, "
                f"this parser has {self._state_config()}"
            )
        try:
            counter = int(document["counter"])
            max_clusters = self._options["max_clusters"]
            id_to_cluster: Any = {} if max_clusters is None else LogClusterCache(max_clusters)
            for key, size, tokens in document["clusters"]:
                cluster = LogCluster([str(t) for t in tokens], int(key))
                cluster.size = int(size)
                id_to_cluster[int(key)] = cluster
            root = _node_from_json(document["tree"], self._options["depth"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed drain parser state: {exc!r}") from None
        drain = self.miner.drain
        drain.id_to_cluster = id_to_cluster
        self._described = {}
        drain.clusters_counter = counter
        drain.root_node = root
        log.debug("restored %d drain templates", len(id_to_cluster))

    def _state_config(self) -> dict[str, Any]:
        return {
            key: self._options[key]
            for key in ("sim_th", "depth", "max_children", "max_clusters", "masking")
        }

    def __getstate__(self) -> dict[str, Any]:
        saved: dict[str, Any] = {"options": self._options, "state": self.state()}
        if self.running_year is not None:
            saved["running_year"] = self.running_year
        return saved

    def __setstate__(self, saved: dict[str, Any]) -> None:
        self.__init__(**saved["options"])  # type: ignore[misc]
        self.restore(saved["state"])
        if saved.get("running_year") is not None:
            self.running_year = saved["running_year"]


class _Described(NamedTuple):
    """What a cluster's template gives each of its events (``tokens``: that template)."""

    tokens: tuple[str, ...]
    template: str
    action: str
    #: Index of the last ``<*>`` token, -1 when there is none.
    last_wildcard: int


#: Clusters :attr:`DrainTemplateParser._described` keeps before it starts again.
_MAX_DESCRIBED = 1 << 16


def _unmask(placeholder_re: re.Pattern[str], token: str, values: list[str]) -> str:
    """Put the masked values back into a token, in order."""
    refill = iter(values)
    return placeholder_re.sub(lambda m: next(refill, m.group()), token)


def _compile(pattern: str | None, option: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{option}: {pattern!r} is not a regular expression ({exc})") from None


def _check_masks(masking: Sequence[Sequence[str]]) -> tuple[tuple[str, str], ...]:
    masks: list[tuple[str, str]] = []
    for pair in masking:
        if (
            isinstance(pair, str)
            or len(pair) != 2
            or not all(isinstance(part, str) and part for part in pair)
        ):
            raise ValueError(f"masking: {pair!r} is not a [regex, name] pair")
        pattern, name = pair
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"masking: mask name {name!r} must be a word")
        _compile(pattern, "masking")
        masks.append((pattern, name))
    return tuple(masks)


def _node_to_json(node: Any) -> dict[str, Any]:
    return {
        "children": {key: _node_to_json(child) for key, child in node.key_to_child_node.items()},
        "ids": list(node.cluster_ids),
    }


def _node_from_json(document: Any, depth: int, level: int = 0) -> Any:
    from drain3.drain import Node

    # The tree is depth - 1 levels below the root; deeper input is not ours.
    if not isinstance(document, dict) or level > depth:
        raise ValueError("bad prefix tree")
    node = Node()
    node.cluster_ids = [int(key) for key in document["ids"]]
    node.key_to_child_node = {
        str(key): _node_from_json(child, depth, level + 1)
        for key, child in document["children"].items()
    }
    return node
