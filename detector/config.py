"""The daemon's TOML configuration: ``[daemon]``, ``[[source]]`` and ``[[sink]]`` tables.

Every key is checked when the file is loaded, and a wrong one is named exactly
(``source[1].parser: unknown parser 'foo'``), so ``baseliner run --check-config`` catches a
typo before the daemon starts. ``baseliner.example.toml`` in the repository root is an
annotated example.

``[daemon] peers = "path"`` names the entities' peer groups: a CSV file with the header
``entity,group`` (one entity a row, e.g. ``alice,Finance``), or a directory of CERT LDAP
snapshots (``YYYY-MM.csv``, or a release root holding ``LDAP/``), whose departments are the
groups, as the batch scan uses them (:mod:`detector.peers`). A new entity's first windows are
then scored against its group when the group has at least ``min_peers`` (default 5) members
with their own baseline. The file is read and checked when the configuration is loaded.

``[daemon] feature_families`` adds named feature families (:data:`features.catalog.
FEATURE_FAMILIES`) to the default catalogue: ``"auto"`` (the default) those the sources'
parsers imply (:data:`PARSER_FAMILIES`: ``drain`` and ``syslog`` -> ``templates``,
``windows.security`` -> ``windows``), a list names them (``[]``: none). They are part of
the feature schema: a checkpoint written with other families is refused.
"""

from __future__ import annotations

import difflib
import inspect
import ipaddress
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from detector.errors import UsageError
from detector.online_scoring import HISTORY_WINDOWS
from detector.peers import load_peers
from detector.suppression import Allowlist
from features.catalog import FAMILY_NAMES, check_families, default_specs
from models.registry import ONLINE_DETECTORS, available, create, resolve
from streams.parsers import PARSERS

_DURATION = re.compile(r"(\d+)\s*(s|m|h|d)")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_BUDGET = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*day")
_GLOB_MAGIC = re.compile(r"[*?[]")

_DAEMON_KEYS = frozenset(
    {
        "state_dir",
        "checkpoint_seconds",
        "poll_seconds",
        "metrics_address",
        "entity",
        "window",
        "allowed_lateness",
        "max_future",
        "source_idle",
        "close_idle_after",
        "max_entities",
        "idle_expiry",
        "departed_entities",
        "detector",
        "detector_params",
        "budget",
        "expected_entities",
        "warmup_windows",
        "cold_start_windows",
        "learn_flagged",
        "risk_half_life_days",
        "allowlist",
        "peers",
        "min_peers",
        "feature_families",
        "read_ahead",
    }
)
#: The most polls ``read_ahead`` may hold in flight (each holds its lines and events).
MAX_READ_AHEAD = 64
#: Parser -> the feature family its events feed (what ``feature_families = "auto"`` adds).
PARSER_FAMILIES: Mapping[str, str] = {
    "drain": "templates",
    "syslog": "templates",
    "windows.security": "windows",
}
_COMMON_SOURCE_KEYS = frozenset({"type", "parser", "parser_options", "name"})
#: Keys each source type takes besides the common ones.
_SOURCE_TYPE_KEYS: dict[str, frozenset[str]] = {
    "file": frozenset({"path"}),
    "glob": frozenset({"path"}),
    "stdin": frozenset(),
    "syslog_udp": frozenset({"listen", "max_queue"}),
    "syslog_tcp": frozenset(
        {"listen", "max_queue", "max_message", "max_connections", "idle_timeout"}
    ),
    "http": frozenset(
        {
            "listen",
            "max_queue",
            "max_body",
            "path",
            "max_connections",
            "request_timeout",
            "idle_timeout",
        }
    ),
}
#: A network source's keyword options: counts (ints >= 1), then durations (seconds > 0).
_NETWORK_COUNT_KEYS = ("max_queue", "max_message", "max_body", "max_connections")
_NETWORK_SECONDS_KEYS = ("request_timeout", "idle_timeout")
_SOURCE_TYPES = tuple(_SOURCE_TYPE_KEYS)
_NETWORK_SOURCE_TYPES = ("syslog_udp", "syslog_tcp", "http")
#: Keys each sink type takes besides ``type``.
_SINK_TYPE_KEYS: dict[str, frozenset[str]] = {
    "stdout": frozenset(),
    "jsonl": frozenset({"path", "max_bytes", "keep"}),
    "webhook": frozenset(
        {
            "url",
            "headers",
            "timeout",
            "max_attempts",
            "backoff",
            "max_backoff",
            "max_queue",
            "batch_size",
            "dead_letter",
            "drain_seconds",
        }
    ),
}
_SINK_TYPES = tuple(_SINK_TYPE_KEYS)


@dataclass(frozen=True)
class SourceConfig:
    """One ``[[source]]``: where lines come from and how they are parsed.

    Examples
    --------
    >>> SourceConfig(name="auth", type="file", path=Path("auth.log"), parser="lanl.auth").type
    'file'
    """

    name: str
    type: str
    path: Path | None
    parser: str
    parser_options: Mapping[str, Any] = field(default_factory=dict)
    listen: tuple[str, int] | None = None
    """Host and port a network source (syslog_udp, syslog_tcp, http) binds."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """A network source's own keyword options (max_queue, max_message, max_body, path,
    max_connections, request_timeout, idle_timeout), as its constructor takes them."""


@dataclass(frozen=True)
class SinkConfig:
    """One ``[[sink]]``: where alerts go.

    ``path``, ``max_bytes`` and ``keep`` are the jsonl sink's; the other fields the webhook's
    (see :class:`detector.sinks.WebhookSink`).

    Examples
    --------
    >>> SinkConfig(type="stdout", path=None).type
    'stdout'
    """

    type: str
    path: Path | None
    max_bytes: int | None = None
    keep: int = 5
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    max_attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_queue: int = 10_000
    batch_size: int = 1
    dead_letter: Path | None = None
    drain_seconds: float = 10.0


@dataclass(frozen=True)
class DaemonConfig:
    """The whole, validated daemon configuration (see :func:`load_config`).

    Examples
    --------
    >>> config = DaemonConfig(state_dir=Path("state"))
    >>> config.metrics_address, config.detector, config.budget_per_day
    ('127.0.0.1:9108', 'robust_window', 5.0)
    >>> config.metrics_host_port
    ('127.0.0.1', 9108)
    """

    state_dir: Path
    checkpoint_seconds: float = 60.0
    poll_seconds: float = 0.5
    metrics_address: str = "127.0.0.1:9108"
    entity: str = "user"
    window: str = "1d"
    allowed_lateness: timedelta = timedelta(hours=1)
    max_future: timedelta = timedelta(hours=1)
    """How far past the wall clock an event's time may be; later ones are dead letters
    (``future``) and never move the watermark (one clock-skewed line would blind the
    windows for years)."""
    source_idle: timedelta = timedelta(seconds=60)
    """Wall time without an event after which a source stops holding the watermark back
    (with several sources, windows close when the slowest active source has passed them)."""
    close_idle_after: timedelta | None = timedelta(minutes=5)
    """Wall time without an event from any source after which the watermark advances with
    the wall clock (the last windows of a quiet stream are scored); ``None``: never."""
    max_entities: int | None = 100_000
    """Entities whose history is kept; past it the least recently seen one is evicted. A
    bound on memory that attacker-chosen names (one per failed login) cannot break; ``None``
    (``max_entities = 0`` in the file): no cap."""
    idle_expiry: timedelta | None = timedelta(days=30)
    """Forget an entity's history after this long without events (event time); ``None``
    (``idle_expiry = "off"``): never. At least one window."""
    departed_entities: int = 10_000
    """Rows kept for entities evicted or expired that had risk or alerts, so that they stay in
    ``entities.csv`` (status ``evicted`` / ``expired``); past it the least risky are dropped
    (:mod:`detector.departed`). 0: none kept."""
    detector: str = "robust_window"
    detector_params: Mapping[str, Any] = field(default_factory=dict)
    budget_per_day: float = 5.0
    expected_entities: int = 1000
    warmup_windows: int = 100
    cold_start_windows: int = 5
    learn_flagged: bool = False
    risk_half_life_days: float = 7.0
    allowlist: Path | None = None
    peers: Path | None = None
    """Peer groups of the entities: a CSV ``entity,group`` or a CERT LDAP directory."""
    peer_groups: Mapping[str, str] | None = None
    """The groups read from :attr:`peers` when the config was loaded (entity -> group)."""
    min_peers: int = 5
    read_ahead: int | None = None
    """Polls read and parsed ahead while earlier ones are handled (the daemon's pipeline,
    :class:`~detector.daemon.PollPipeline`); 0: one poll at a time on one thread; ``None``
    (``"auto"`` in the file): 8 where the process may use two cores or more, else 0."""
    feature_families: tuple[str, ...] | None = None
    """Feature families added to the default catalogue; ``None`` (``"auto"`` in the file):
    those the sources' parsers imply (:data:`PARSER_FAMILIES`). See :attr:`families`."""
    sources: tuple[SourceConfig, ...] = ()
    sinks: tuple[SinkConfig, ...] = ()

    @property
    def families(self) -> tuple[str, ...]:
        """The feature families in force: as configured, else implied by the parsers."""
        if self.feature_families is None:
            return implied_families(self.sources)
        return check_families(self.feature_families)

    def describe_families(self) -> str:
        """Which feature families are in force and why, for the start-up line and
        ``--check-config``.

        Examples
        --------
        >>> drain = SourceConfig(name="app", type="stdin", path=None, parser="drain")
        >>> DaemonConfig(state_dir=Path("s"), sources=(drain,)).describe_families()
        'feature families: templates (auto: parser drain)'
        >>> DaemonConfig(state_dir=Path("s"), feature_families=()).describe_families()
        'feature families: none (feature_families = [])'
        """
        names = ", ".join(self.families) or "none"
        if self.feature_families is not None:
            shown = ", ".join(f'"{name}"' for name in self.families)
            return f"feature families: {names} (feature_families = [{shown}])"
        parsers = sorted({s.parser for s in self.sources if s.parser in PARSER_FAMILIES})
        why = f"parser {', '.join(parsers)}" if parsers else "no source's parser implies one"
        return f"feature families: {names} (auto: {why})"

    @property
    def metrics_host_port(self) -> tuple[str, int]:
        """The metrics address split into host and port (an IPv6 host in brackets, as it is
        written in a URL: ``[::1]``)."""
        host, port = parse_listen(self.metrics_address)
        return (f"[{host}]" if ":" in host else host), port

    @property
    def windows_per_day(self) -> float:
        """Entity-windows expected per day: what the alert budget is a share of."""
        return float(self.expected_entities * (24 if self.window == "1h" else 1))


def implied_families(sources: Iterable[SourceConfig]) -> tuple[str, ...]:
    """The feature families the sources' parsers feed (:data:`PARSER_FAMILIES`).

    Examples
    --------
    >>> implied_families([SourceConfig(name="w", type="stdin", path=None,
    ...                                parser="windows.security")])
    ('windows',)
    """
    return check_families(PARSER_FAMILIES[s.parser] for s in sources if s.parser in PARSER_FAMILIES)


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"1d"`` (or a sum like ``"1h30m"``) as a timedelta.

    Examples
    --------
    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    compact = text.replace(" ", "")
    if not compact or _DURATION.sub("", compact):
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 2h, 1d")
    total = timedelta(0)
    for amount, unit in _DURATION.findall(compact):
        total += timedelta(**{_DURATION_UNITS[unit]: int(amount)})
    return total


def _parser_options(parser: str, options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check options against the parser factory's keyword parameters and build it once."""
    factory = PARSERS[parser]
    accepted = set(inspect.signature(factory).parameters)
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if key not in accepted:
            raise UsageError(
                f"{where}.parser_options.{key}: not an option of parser {parser!r}"
                f" (options: {', '.join(sorted(accepted)) or 'none'})"
            )
        if key == "epoch":
            if isinstance(value, str):
                try:
                    value = datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    raise UsageError(
                        f"{where}.parser_options.epoch: {value!r} is not an ISO 8601 date-time"
                    ) from None
            if not isinstance(value, datetime):
                raise UsageError(f"{where}.parser_options.epoch: must be a date-time")
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
        checked[key] = value
    try:
        factory(**checked)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}.parser_options: {exc}") from None
    return checked


def _get(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = table[key]
    # TOML booleans are ints to isinstance: a number key must not take true/false.
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        article = "an" if names[0] in "aeiou" else "a"
        raise UsageError(f"{where}.{key}: must be {article} {names}, got {value!r}")
    return value


def _number(
    table: Mapping[str, Any], key: str, where: str, *, minimum: float, integer: bool
) -> Any:
    """An int (or a float too when not ``integer``) at least ``minimum``, named on error."""
    value = _get(table, key, int if integer else (int, float), where)
    if value < minimum:
        raise UsageError(f"{where}.{key}: must be >= {minimum:g}, got {value!r}")
    return value if integer else float(value)


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:5514"`` or ``"[::1]:5514"`` as (host, port); port 0 picks a free one.

    Examples
    --------
    >>> parse_listen("0.0.0.0:514"), parse_listen("[::1]:8080")
    (('0.0.0.0', 514), ('::1', 8080))
    >>> parse_listen("5514")
    Traceback (most recent call last):
    ...
    ValueError: '5514' is not HOST:PORT (e.g. 127.0.0.1:5514)
    """
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:5514)")
    return host, int(port)


def _network_options(kind: str, table: Mapping[str, Any], where: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key in _NETWORK_COUNT_KEYS:
        if key in table:
            options[key] = _number(table, key, where, minimum=1, integer=True)
    for key in _NETWORK_SECONDS_KEYS:
        if key in table:
            seconds = _number(table, key, where, minimum=0, integer=False)
            if not seconds > 0:
                raise UsageError(f"{where}.{key}: must be > 0 seconds, got {seconds!r}")
            options[key] = seconds
    if kind == "http" and "path" in table:
        url_path = _get(table, "path", str, where)
        if not url_path.startswith("/") or any(c.isspace() for c in url_path):
            raise UsageError(f"{where}.path: {url_path!r} is not a URL path like /ingest")
        options["path"] = url_path
    return options


def _source(index: int, table: Any, base: Path) -> SourceConfig:
    where = f"source[{index}]"
    if not isinstance(table, dict):
        raise UsageError(f"{where}: must be a table ([[source]])")
    if "type" not in table:
        raise UsageError(f"{where}.type: required")
    kind = _get(table, "type", str, where)
    if kind not in _SOURCE_TYPES:
        raise UsageError(f"{where}.type: unknown type {kind!r} (one of {', '.join(_SOURCE_TYPES)})")
    allowed = _COMMON_SOURCE_KEYS | _SOURCE_TYPE_KEYS[kind]
    unknown = sorted(set(table) - allowed)
    if unknown:
        known = any(unknown[0] in keys for keys in _SOURCE_TYPE_KEYS.values())
        reason = f"not a key of a {kind} source" if known else "unknown key"
        raise UsageError(f"{where}.{unknown[0]}: {reason}")
    if "parser" not in table:
        raise UsageError(f"{where}.parser: required")
    parser = _get(table, "parser", str, where)
    if parser not in PARSERS:
        raise UsageError(
            f"{where}.parser: unknown parser {parser!r} (one of {', '.join(sorted(PARSERS))})"
        )
    path: Path | None = None
    listen: tuple[str, int] | None = None
    options: dict[str, Any] = {}
    if kind in ("file", "glob"):
        if "path" not in table:
            raise UsageError(f"{where}.path: required for a {kind} source")
        path = base / _get(table, "path", str, where)
        # A pattern may match directories among files (they are skipped); a plain path to
        # a directory can only fail once the daemon runs.
        if path.is_dir() and (kind == "file" or not _GLOB_MAGIC.search(str(path))):
            raise UsageError(
                f'{where}.path: {path} is a directory; name a file, or use type = "glob"'
                f" with a pattern such as {path / '*.log'}"
            )
    elif kind in _NETWORK_SOURCE_TYPES:
        if "listen" not in table:
            raise UsageError(f"{where}.listen: required for a {kind} source (e.g. 127.0.0.1:5514)")
        try:
            listen = parse_listen(_get(table, "listen", str, where))
        except ValueError as exc:
            raise UsageError(f"{where}.listen: {exc}") from None
        options = _network_options(kind, table, where)
    parser_options = _get(table, "parser_options", dict, where) if "parser_options" in table else {}
    name = _get(table, "name", str, where) if "name" in table else f"source{index}"
    return SourceConfig(
        name=name,
        type=kind,
        path=path,
        parser=parser,
        parser_options=_parser_options(parser, parser_options, where),
        listen=listen,
        options=options,
    )


def _sink(index: int, table: Any, base: Path, state_dir: Path) -> SinkConfig:
    where = f"sink[{index}]"
    if not isinstance(table, dict):
        raise UsageError(f"{where}: must be a table ([[sink]])")
    if "type" not in table:
        raise UsageError(f"{where}.type: required")
    kind = _get(table, "type", str, where)
    if kind not in _SINK_TYPES:
        raise UsageError(f"{where}.type: unknown type {kind!r} (one of {', '.join(_SINK_TYPES)})")
    unknown = sorted(set(table) - _SINK_TYPE_KEYS[kind] - {"type"})
    if unknown:
        known = any(unknown[0] in keys for keys in _SINK_TYPE_KEYS.values())
        reason = f"not a key of a {kind} sink" if known else "unknown key"
        raise UsageError(f"{where}.{unknown[0]}: {reason}")
    if kind == "stdout":
        return SinkConfig(type=kind, path=None)
    if kind == "jsonl":
        if "path" not in table:
            raise UsageError(f"{where}.path: required for a jsonl sink")
        jsonl: dict[str, Any] = {"path": base / _get(table, "path", str, where)}
        if "max_bytes" in table:
            jsonl["max_bytes"] = _number(table, "max_bytes", where, minimum=1, integer=True)
        if "keep" in table:
            jsonl["keep"] = _number(table, "keep", where, minimum=0, integer=True)
        return SinkConfig(type=kind, **jsonl)
    if "url" not in table:
        raise UsageError(f"{where}.url: required for a webhook sink")
    url = _get(table, "url", str, where)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{where}.url: {url!r} is not an http:// or https:// URL")
    try:
        _ = parts.port
    except ValueError:
        raise UsageError(f"{where}.url: {url!r} has a bad port") from None
    webhook: dict[str, Any] = {"url": url}
    if "headers" in table:
        headers = _get(table, "headers", dict, where)
        for name, value in headers.items():
            if not isinstance(value, str):
                raise UsageError(f"{where}.headers.{name}: must be a string, got {value!r}")
        webhook["headers"] = dict(headers)
    for key in ("max_attempts", "max_queue", "batch_size"):
        if key in table:
            webhook[key] = _number(table, key, where, minimum=1, integer=True)
    for key in ("backoff", "max_backoff", "drain_seconds"):
        if key in table:
            webhook[key] = _number(table, key, where, minimum=0, integer=False)
    if "timeout" in table:
        timeout = _number(table, "timeout", where, minimum=0, integer=False)
        if not timeout > 0:
            raise UsageError(f"{where}.timeout: must be > 0, got {timeout!r}")
        webhook["timeout"] = timeout
    webhook["dead_letter"] = (
        base / _get(table, "dead_letter", str, where)
        if "dead_letter" in table
        else state_dir / f"sink{index}-dead-letters.jsonl"
    )
    return SinkConfig(type=kind, path=None, **webhook)


def _daemon(table: Any, base: Path) -> dict[str, Any]:
    where = "daemon"
    if not isinstance(table, dict):
        raise UsageError("daemon: must be a table ([daemon])")
    unknown = sorted(set(table) - _DAEMON_KEYS)
    if unknown:
        raise UsageError(f"daemon.{unknown[0]}: unknown key")
    if "state_dir" not in table:
        raise UsageError("daemon.state_dir: required")
    out: dict[str, Any] = {"state_dir": base / _get(table, "state_dir", str, where)}
    for key in ("checkpoint_seconds", "poll_seconds"):
        if key in table:
            value = float(_get(table, key, (int, float), where))
            if not value > 0:
                raise UsageError(f"daemon.{key}: must be > 0, got {value!r}")
            out[key] = value
    if "metrics_address" in table:
        address = _get(table, "metrics_address", str, where)
        try:
            host, _ = parse_listen(address)
            if ":" in host:  # IPv6: served, but only a literal address (no zone, no typo)
                ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(
                f"daemon.metrics_address: {address!r} is not HOST:PORT (IPv6: [::1]:9108)"
            ) from None
        out["metrics_address"] = address
    for key, choices in (("entity", ("user", "host")), ("window", ("1h", "1d"))):
        if key in table:
            value = _get(table, key, str, where)
            if value not in choices:
                raise UsageError(f"daemon.{key}: {value!r} is not one of {', '.join(choices)}")
            out[key] = value
    for key in ("allowed_lateness", "max_future", "source_idle"):
        if key in table:
            try:
                out[key] = parse_duration(_get(table, key, str, where))
            except ValueError as exc:
                raise UsageError(f"daemon.{key}: {exc}") from None
    if "close_idle_after" in table:
        text = _get(table, "close_idle_after", str, where)
        try:
            quiet = None if text.strip().lower() in ("off", "0") else parse_duration(text)
        except ValueError as exc:
            raise UsageError(f'daemon.close_idle_after: {exc} (or "off")') from None
        out["close_idle_after"] = quiet or None  # a zero duration disables it too
    for key in (
        "max_entities",
        "expected_entities",
        "warmup_windows",
        "cold_start_windows",
        "min_peers",
        "departed_entities",
    ):
        if key in table:
            number = _get(table, key, int, where)
            if key == "max_entities" and number == 0:  # 0: no cap, said explicitly
                out[key] = None
                continue
            if key == "departed_entities":  # 0: keep none
                if number < 0:
                    raise UsageError(f"daemon.{key}: must be >= 0, got {number}")
                out[key] = number
                continue
            if number < 1:
                raise UsageError(f"daemon.{key}: must be >= 1, got {number}")
            if key == "cold_start_windows" and number > HISTORY_WINDOWS:
                raise UsageError(
                    f"daemon.{key}: must be at most {HISTORY_WINDOWS} (the windows of history"
                    f" kept per entity), got {number}"
                )
            out[key] = number
    if "idle_expiry" in table:
        out["idle_expiry"] = _idle_expiry(_get(table, "idle_expiry", str, where), out)
    if "read_ahead" in table:
        value = table["read_ahead"]
        # bool is an int to Python: `read_ahead = true` is refused, not taken as 1.
        if value == "auto":
            out["read_ahead"] = None
        elif type(value) is int and 0 <= value <= MAX_READ_AHEAD:
            out["read_ahead"] = value
        else:
            raise UsageError(
                f'daemon.read_ahead: {value!r} is not "auto" or a number of polls from 0 to '
                f"{MAX_READ_AHEAD}"
            )
    if "learn_flagged" in table:
        out["learn_flagged"] = _get(table, "learn_flagged", bool, where)
    if "risk_half_life_days" in table:
        half_life = float(_get(table, "risk_half_life_days", (int, float), where))
        if not half_life > 0:
            raise UsageError(f"daemon.risk_half_life_days: must be > 0, got {half_life!r}")
        out["risk_half_life_days"] = half_life
    if "detector" in table:
        name = _get(table, "detector", str, where)
        if name not in ONLINE_DETECTORS:
            raise UsageError(
                f"daemon.detector: unknown online detector {name!r}"
                f" (one of {', '.join(sorted(ONLINE_DETECTORS))})"
            )
        out["detector"] = name
    if "detector_params" in table:
        out["detector_params"] = dict(_get(table, "detector_params", dict, where))
    _check_detector_params(
        out.get("detector", DaemonConfig.detector), out.get("detector_params", {})
    )
    if "budget" in table:
        text = _get(table, "budget", str, where)
        match = _BUDGET.fullmatch(text.strip())
        if match is None or not float(match.group(1)) > 0:
            raise UsageError(f"daemon.budget: {text!r} is not 'N/day' with N > 0 (e.g. 5/day)")
        out["budget_per_day"] = float(match.group(1))
    if "allowlist" in table:
        out["allowlist"] = base / _get(table, "allowlist", str, where)
        # Read here too: a missing or malformed file stops --check-config, not the start.
        # Its features are checked once the sources fix the feature families.
        out[_LOADED_ALLOWLIST] = load_allowlist(out["allowlist"], features=None)
    if "feature_families" in table:
        out["feature_families"] = _feature_families(table["feature_families"])
    if "peers" in table:
        out["peers"] = base / _get(table, "peers", str, where)
        # Read once, here: a bad file stops --check-config too, and the daemon uses this.
        try:
            out["peer_groups"] = load_peers(out["peers"])
        except UsageError as exc:
            raise UsageError(f"daemon.peers: {exc}") from None
    return out


def _check_detector_params(detector: str, params: Mapping[str, Any]) -> None:
    """Build the detector once; a bad parameter is named (unknown, wrong type, bad value).

    A parameter whose default is a bool, an int, a float or a str must be given one (an int
    for a float); TOML's ``true`` is not a number here, although Python would take it.
    """
    where = "daemon.detector_params"
    parameters = inspect.signature(resolve(detector)).parameters
    variadic = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for key, value in params.items():
        parameter = parameters.get(key)
        if parameter is None or parameter.kind in variadic:
            if takes_any:
                continue
            names = ", ".join(n for n, p in parameters.items() if p.kind not in variadic)
            raise UsageError(
                f"{where}.{key}: not a parameter of detector {detector!r}"
                f" (parameters: {names or 'none'})"
            )
        expected = _PARAM_TYPES.get(type(parameter.default))
        if expected is not None and (
            isinstance(value, bool) is not (expected is bool) or not isinstance(value, expected)
        ):
            kind = type(parameter.default).__name__
            raise UsageError(f"{where}.{key}: must be {_article(kind)} {kind}, got {value!r}")
    try:
        create(detector, **params)
    except (TypeError, ValueError) as exc:
        for key, value in params.items():
            try:
                create(detector, **{key: value})
            except (TypeError, ValueError) as alone:
                raise UsageError(f"{where}.{key}: {alone}") from None
        raise UsageError(f"{where}: {exc}") from None


#: Types a detector parameter with a default of the key's type accepts (TOML gives ints for
#: whole floats).
_PARAM_TYPES: dict[type, type | tuple[type, ...]] = {
    bool: bool,
    int: int,
    float: (int, float),
    str: str,
}


def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


#: Where :func:`_daemon` leaves the allow-list it read for :func:`parse_config`.
_LOADED_ALLOWLIST = "_allowlist"


def _feature_families(value: Any) -> tuple[str, ...] | None:
    """``feature_families``: ``"auto"`` (None) or a list of family names, each checked."""
    known = ", ".join(FAMILY_NAMES)
    if value == "auto":
        return None
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise UsageError(
            f'daemon.feature_families: must be "auto" or a list of family names ({known}),'
            f" got {value!r}"
        )
    for name in value:
        if name not in FAMILY_NAMES:
            close = difflib.get_close_matches(name, FAMILY_NAMES, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise UsageError(
                f"daemon.feature_families: unknown family {name!r} (known: {known}){hint}"
            )
    return check_families(value)


def load_allowlist(path: Path, features: Sequence[str] | None) -> Allowlist:
    """Read the allow-list at ``path`` (the ``daemon.allowlist`` key) and check it.

    Parameters
    ----------
    path
        The allow-list file.
    features
        The feature names in force: an entry naming another is refused (``None``: not
        checked). An entry naming a detector that is not registered is always refused.

    Raises
    ------
    UsageError
        One line naming the key, the file and, for a bad entry, its number.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "allow.toml"
    >>> _ = path.write_text('[[allow]]\\nentity = "svc-*"\\nfeature = "logons"\\nreason = "b"\\n')
    >>> len(load_allowlist(path, features=["logons"]).entries)
    1
    >>> load_allowlist(path, features=["auths"])
    Traceback (most recent call last):
    ...
    detector.errors.UsageError: daemon.allowlist: ...: unknown feature 'logons' (one of auths)
    """
    try:
        allowlist = Allowlist.load(path)
    except UsageError as exc:
        raise UsageError(f"daemon.allowlist: {exc}") from None
    _check_allowlist(allowlist, path, features)
    return allowlist


def _check_allowlist(allowlist: Allowlist, path: Path, features: Sequence[str] | None) -> None:
    """Refuse entries naming a feature (when ``features`` is given) or a detector that does
    not exist: a typo would mute nothing, silently."""
    detectors = available()
    for number, entry in enumerate(allowlist.entries, start=1):
        where = f"daemon.allowlist: {path}: entry {number}"
        for key, value, known in (
            ("feature", entry.feature, features),
            ("detector", entry.detector, detectors),
        ):
            if known is not None and value is not None and value not in known:
                close = difflib.get_close_matches(value, known, n=3)
                hint = (
                    f"did you mean {', '.join(close)}?" if close else f"one of {', '.join(known)}"
                )
                raise UsageError(f"{where}: unknown {key} {value!r} ({hint})")


def _idle_expiry(text: str, settings: Mapping[str, Any]) -> timedelta | None:
    """``idle_expiry``: a duration of at least one window, or ``"off"`` (never expire)."""
    if text.strip().lower() == "off":
        return None
    try:
        expiry = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f'daemon.idle_expiry: {exc} (or "off")') from None
    window = settings.get("window", DaemonConfig.window)
    if expiry < (timedelta(hours=1) if window == "1h" else timedelta(days=1)):
        raise UsageError(
            f"daemon.idle_expiry: {text!r} is shorter than a window ({window}); entities"
            " would be forgotten between their own events"
        )
    return expiry


def _check_addresses(sources: tuple[SourceConfig, ...], metrics_address: str) -> None:
    """Two listeners on one fixed (protocol, host, port) cannot both bind: say so now."""
    host, port = parse_listen(metrics_address)
    taken: dict[tuple[str, str, int], str] = {("tcp", host, port): "daemon.metrics_address"}
    for index, source in enumerate(sources, start=1):
        if source.listen is None or source.listen[1] == 0:
            continue
        protocol = "udp" if source.type == "syslog_udp" else "tcp"
        key = (protocol, *source.listen)
        if key in taken:
            raise UsageError(
                f"source[{index}].listen: {source.listen[0]}:{source.listen[1]} is already"
                f" used by {taken[key]}"
            )
        taken[key] = f"source[{index}].listen"


def _check_source_files(sources: tuple[SourceConfig, ...]) -> None:
    """One file read by two sources would count every line twice: refuse it, by key.

    Paths are compared resolved (``a.log`` and ``./a.log``, a symbolic link); a file source
    is also compared with the other sources' glob patterns.
    """
    files: dict[Path, str] = {}
    patterns: list[tuple[str, str]] = []
    for index, source in enumerate(sources, start=1):
        if source.path is None:
            continue
        key = f"source[{index}].path"
        resolved = source.path.resolve()
        if source.type == "glob":
            pattern = str(source.path.parent.resolve() / source.path.name)
            for other_pattern, other in patterns:
                if other_pattern == pattern:
                    raise UsageError(f"{key}: {source.path} is the same pattern as {other}")
            for path, other in files.items():
                if path.match(pattern):
                    raise UsageError(f"{key}: {source.path} also matches {other} ({path})")
            patterns.append((pattern, key))
            continue
        if resolved in files:
            raise UsageError(
                f"{key}: {source.path} is the same file as {files[resolved]}"
                " (each line would be counted twice)"
            )
        for pattern, other in patterns:
            if resolved.match(pattern):
                raise UsageError(f"{key}: {source.path} is also matched by {other}")
        files[resolved] = key


def _check_sink_files(sinks: tuple[SinkConfig, ...]) -> None:
    """Two sinks writing one file (two jsonl sinks, a jsonl file and a webhook's dead
    letters) would interleave and rotate each other's lines: refuse it, by key."""
    taken: dict[Path, str] = {}
    for index, sink in enumerate(sinks, start=1):
        for key, path in (("path", sink.path), ("dead_letter", sink.dead_letter)):
            if path is None:
                continue
            resolved = path.resolve()
            if resolved in taken:
                raise UsageError(
                    f"sink[{index}].{key}: {path} is the same file as {taken[resolved]}"
                )
            taken[resolved] = f"sink[{index}].{key}"


def parse_config(data: Mapping[str, Any], base: Path = Path()) -> DaemonConfig:
    """Validate a parsed TOML document; relative paths are resolved against ``base``.

    Raises
    ------
    UsageError
        Naming the first wrong key, e.g. ``source[1].parser: unknown parser 'foo'``.

    Examples
    --------
    >>> config = parse_config({"daemon": {"state_dir": "s", "window": "1h"},
    ...     "source": [{"type": "file", "path": "a.csv", "parser": "cert.logon"}],
    ...     "sink": [{"type": "stdout"}]})
    >>> config.window, config.sources[0].parser, config.windows_per_day
    ('1h', 'cert.logon', 24000.0)
    >>> parse_config({"daemon": {"state_dir": "s"},
    ...     "source": [{"type": "stdin", "parser": "foo"}]})
    Traceback (most recent call last):
    ...
    detector.errors.UsageError: source[1].parser: unknown parser 'foo' (one of ...)
    """
    unknown = sorted(set(data) - {"daemon", "source", "sink"})
    if unknown:
        raise UsageError(f"{unknown[0]}: unknown table (expected [daemon], [[source]], [[sink]])")
    if "daemon" not in data:
        raise UsageError("daemon: required table [daemon] is missing")
    settings = _daemon(data["daemon"], base)
    raw_sources = data.get("source", [])
    raw_sinks = data.get("sink", [{"type": "stdout"}])
    if not isinstance(raw_sources, list) or not raw_sources:
        raise UsageError("source: at least one [[source]] table is required")
    if not isinstance(raw_sinks, list) or not raw_sinks:
        raise UsageError("sink: must be one or more [[sink]] tables")
    sources = tuple(_source(i, t, base) for i, t in enumerate(raw_sources, start=1))
    names = [s.name for s in sources]
    for index, name in enumerate(names, start=1):
        if names.index(name) != index - 1:
            raise UsageError(f"source[{index}].name: duplicate source name {name!r}")
    if sum(s.type == "stdin" for s in sources) > 1:
        raise UsageError("source: at most one stdin source")
    _check_addresses(sources, settings.get("metrics_address", DaemonConfig.metrics_address))
    _check_source_files(sources)
    sinks = tuple(
        _sink(i, t, base, settings["state_dir"]) for i, t in enumerate(raw_sinks, start=1)
    )
    _check_sink_files(sinks)
    allowlist = settings.pop(_LOADED_ALLOWLIST, None)
    config = DaemonConfig(**settings, sources=sources, sinks=sinks)
    if allowlist is not None:
        # The features of the catalogue in force (the entity's, with the families).
        features = sorted(s.name for s in default_specs(config.entity, config.families))
        _check_allowlist(allowlist, settings["allowlist"], features=features)
    return config


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML config file's tables; a missing, unreadable or malformed file is one UsageError.

    Examples
    --------
    >>> read_toml(Path("no-such.toml"))
    Traceback (most recent call last):
    ...
    detector.errors.UsageError: config file not found: no-such.toml
    """
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config {path} is not valid TOML: {exc}") from None


def config_warnings(config: DaemonConfig) -> list[str]:
    """What is valid but probably not meant: sources whose parser names no entity of the
    configured kind (their events reach no window; only the counters see them).

    Examples
    --------
    >>> config = parse_config({"daemon": {"state_dir": "s"}, "source": [
    ...     {"type": "stdin", "parser": "syslog"}]}, Path("."))
    >>> config_warnings(config)  # doctest: +ELLIPSIS
    ['source1: the syslog parser gives events no user; with entity = "user" ...']
    """
    found: list[str] = []
    if config.entity != "user":
        return found
    for source in config.sources:
        names_users = "(?P<user>" in str(source.parser_options.get("entity_regex") or "")
        if source.parser == "syslog" or (source.parser == "drain" and not names_users):
            found.append(
                f"{source.name}: the {source.parser} parser gives events no user; with "
                'entity = "user" they reach no window (use linux.auth for sshd, sudo and su, '
                'a drain entity_regex with a (?P<user>...) group, or entity = "host")'
            )
    return found


def load_config(path: Path) -> DaemonConfig:
    """Read and validate a daemon config file; relative paths are relative to the file.

    Raises
    ------
    UsageError
        The file is missing, not TOML, or a key is wrong (the message names it).
    """
    data = read_toml(Path(path))
    try:
        return parse_config(data, Path(path).parent)
    except UsageError as exc:
        raise UsageError(f"config {path}: {exc}") from None
