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
"""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from detector.errors import UsageError
from detector.online_scoring import HISTORY_WINDOWS
from detector.peers import load_peers
from detector.suppression import Allowlist
from models.registry import ONLINE_DETECTORS, create
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
        "max_entities",
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
    }
)
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
    max_entities: int | None = None
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
    sources: tuple[SourceConfig, ...] = ()
    sinks: tuple[SinkConfig, ...] = ()

    @property
    def metrics_host_port(self) -> tuple[str, int]:
        """The metrics address split into host and port."""
        host, _, port = self.metrics_address.rpartition(":")
        return host, int(port)

    @property
    def windows_per_day(self) -> float:
        """Entity-windows expected per day: what the alert budget is a share of."""
        return float(self.expected_entities * (24 if self.window == "1h" else 1))


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
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise UsageError(f"daemon.metrics_address: {address!r} is not HOST:PORT")
        out["metrics_address"] = address
    for key, choices in (("entity", ("user", "host")), ("window", ("1h", "1d"))):
        if key in table:
            value = _get(table, key, str, where)
            if value not in choices:
                raise UsageError(f"daemon.{key}: {value!r} is not one of {', '.join(choices)}")
            out[key] = value
    for key in ("allowed_lateness", "max_future"):
        if key in table:
            try:
                out[key] = parse_duration(_get(table, key, str, where))
            except ValueError as exc:
                raise UsageError(f"daemon.{key}: {exc}") from None
    for key in (
        "max_entities",
        "expected_entities",
        "warmup_windows",
        "cold_start_windows",
        "min_peers",
    ):
        if key in table:
            number = _get(table, key, int, where)
            if number < 1:
                raise UsageError(f"daemon.{key}: must be >= 1, got {number}")
            if key == "cold_start_windows" and number > HISTORY_WINDOWS:
                raise UsageError(
                    f"daemon.{key}: must be at most {HISTORY_WINDOWS} (the windows of history"
                    f" kept per entity), got {number}"
                )
            out[key] = number
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
    try:
        create(out.get("detector", "robust_window"), **out.get("detector_params", {}))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"daemon.detector_params: {exc}") from None
    if "budget" in table:
        text = _get(table, "budget", str, where)
        match = _BUDGET.fullmatch(text.strip())
        if match is None or not float(match.group(1)) > 0:
            raise UsageError(f"daemon.budget: {text!r} is not 'N/day' with N > 0 (e.g. 5/day)")
        out["budget_per_day"] = float(match.group(1))
    if "allowlist" in table:
        out["allowlist"] = base / _get(table, "allowlist", str, where)
        # Read here too: a missing or malformed file stops --check-config, not the start.
        try:
            Allowlist.load(out["allowlist"])
        except UsageError as exc:
            raise UsageError(f"daemon.allowlist: {exc}") from None
    if "peers" in table:
        out["peers"] = base / _get(table, "peers", str, where)
        # Read once, here: a bad file stops --check-config too, and the daemon uses this.
        out["peer_groups"] = load_peers(out["peers"])
    return out


def _check_addresses(sources: tuple[SourceConfig, ...], metrics_address: str) -> None:
    """Two listeners on one fixed (protocol, host, port) cannot both bind: say so now."""
    host, _, port = metrics_address.rpartition(":")
    taken: dict[tuple[str, str, int], str] = {("tcp", host, int(port)): "daemon.metrics_address"}
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
    sinks = tuple(
        _sink(i, t, base, settings["state_dir"]) for i, t in enumerate(raw_sinks, start=1)
    )
    return DaemonConfig(**settings, sources=sources, sinks=sinks)


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
