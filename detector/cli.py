"""The ``baseliner`` command line.

This module is the composition root: it is the one place that wires the engine (``detector``)
and the benchmark harness (``benchmarks``) together, importing the latter lazily.
Bad usage prints one line naming the problem and exits 2; no traceback.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from detector import __version__
from detector.errors import UsageError

if TYPE_CHECKING:
    from detector.pipeline import Budget

log = logging.getLogger("baseliner")

EXIT_OK = 0
EXIT_DATA = 1
EXIT_USAGE = 2
DEFAULT_SCAN_OUT = Path("baseliner-out")
DEFAULT_TOP = 10
#: The generator's limits (``benchmarks.synthetic.MIN_USERS`` ...), repeated here so that
#: building the parser does not import the benchmarks; a test keeps them equal.
MIN_USERS, MAX_USERS, MIN_DAYS = 30, 8000, 14
#: Seeds go to numpy and scikit-learn, which take 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1
#: The smallest ``bench adbench --max-rows`` subsample: a stratified 70/30 split of it needs
#: anomalies on both sides, and the per-class draw keeps at least 2 of them.
ADBENCH_MIN_ROWS = 100


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as a single line (and exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        # main() prefixes "baseliner: error: "; the program name is not repeated.
        command = self.prog.removeprefix("baseliner").strip()
        raise UsageError(f"{command}: {message}" if command else message)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _train_until(text: str) -> date:
    """``--train-until``: a date (``2010-01-05``, its midnight UTC) or an ISO 8601 date-time
    (``2010-01-05T06:00``, UTC unless it has an offset), as a ``date`` or a ``datetime``."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return _instant(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD) or a date-time (YYYY-MM-DDTHH:MM)"
        ) from None


def _budget(text: str) -> Budget:
    """``--budget``: what :meth:`Budget.parse` reads, and any positive number of alerts a day
    written with an exponent (``1e9/day``), which its pattern does not take."""
    from detector.pipeline import Budget

    try:
        return Budget.parse(text)
    except UsageError as exc:
        refusal = exc
    number, slash, unit = text.strip().partition("/")
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if math.isnan(value) or (slash and unit.strip() != "day"):
        raise refusal
    if value <= 0:
        raise UsageError(f"budget {text!r} must be above 0 (e.g. 5/day, 0.5%)")
    if not math.isfinite(value):
        raise UsageError(f"budget {text!r} is not a finite number of alerts a day")
    return Budget(per_day=value, fraction=None)


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _org_size_arguments(parser: argparse.ArgumentParser, *, users: int, days: int) -> None:
    """--users, --days and --seed of a generated organisation, their limits in the help."""
    parser.add_argument(
        "--users",
        type=_positive_int,
        default=users,
        help=f"accounts in the organisation ({MIN_USERS} to {MAX_USERS}; default {users})",
    )
    parser.add_argument(
        "--days",
        type=_positive_int,
        default=days,
        help=f"days of logs (at least {MIN_DAYS}; default {days})",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="baseliner",
        description="Behavioral anomaly detection for users and hosts: learns each entity's "
        "normal from its logs and flags, explains and ranks what deviates.",
    )
    parser.add_argument("--version", action="version", version=f"baseliner {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    scan = sub.add_parser(
        "scan",
        help="retrospective scan of log files (CERT, LANL, JSON lines, Parquet) and of "
        "Windows Security, auth.log and syslog logs",
    )
    scan.add_argument(
        "inputs",
        nargs="+",
        metavar="PATH",
        help="log files or directories; prefix with a format to mix them (cert:DIR lanl:auth.txt)",
    )
    scan.add_argument(
        "--format",
        choices=["cert", "lanl", "jsonl", "parquet", "windows", "authlog", "syslog"],
        help="format of unprefixed paths (windows: Winlogbeat JSON lines of the Security log; "
        "authlog: Linux auth.log / secure; syslog: any syslog lines, mined into templates)",
    )
    scan.add_argument("--out", type=Path, help=f"output directory (default {DEFAULT_SCAN_OUT})")
    scan.add_argument(
        "--train-until",
        type=_train_until,
        help="fit on windows that start before this date, YYYY-MM-DD (midnight UTC), or "
        "date-time, YYYY-MM-DDTHH:MM (UTC unless it has an offset; on an hour's start, for "
        "--window 1h) (default: the first third of the time range)",
    )
    scan.add_argument(
        "--budget",
        help="alert budget: N/day (default 5/day) or P%% of windows (0 < P <= 100); the "
        "threshold is set so that alerts average the budget over the scored period",
    )
    scan.add_argument(
        "--detector",
        help="detector from the registry (default: tail, the per-entity baseline weighed by "
        "population rarity)",
    )
    scan.add_argument("--entity", choices=["user", "host"], help="who is baselined (default user)")
    scan.add_argument("--window", choices=["1d", "1h"], help="window length (default 1d)")
    scan.add_argument("--strict", action="store_true", help="stop at the first malformed line")
    scan.add_argument(
        "--slice-days",
        type=_positive_int,
        metavar="N",
        help="days of windows whose features are evaluated together (default 7): memory holds "
        "one slice of events, so fewer days use less memory and more days run a little faster",
    )
    scan.add_argument("--save-model", type=Path, metavar="DIR", help="save the fitted model")
    scan.add_argument(
        "--model",
        type=Path,
        metavar="DIR",
        help="score with a saved model (its window, entity and families unless given; "
        "--detector and --train-until are ignored with a warning)",
    )
    scan.add_argument(
        "--lanl-epoch",
        type=_instant,
        help="instant of LANL time 0 (ISO 8601; default 1970-01-01T00:00:00Z, the Unix epoch)",
    )
    scan.add_argument(
        "--mapping",
        type=Path,
        help='JSON file: Event field -> JSON-lines path(s), an "actions" table '
        '(the log\'s action -> baseliner\'s, e.g. {"signin": "logon"}) and an "attrs" table '
        '(attribute -> JSON path, e.g. {"attachments": "email.attachments"})',
    )
    scan.add_argument(
        "--families",
        help="feature families added to the default features: auto (default: those the "
        "formats imply, windows -> windows, syslog -> templates), none, or a comma-separated "
        "list (windows,templates)",
    )
    scan.add_argument(
        "--year",
        type=_year,
        help="year of the first BSD timestamp of each authlog and syslog file, which have "
        "none: later lines move to the next year at each New Year in the file (the month falls "
        "by 6 or more, as Dec -> Jan); default: each line's latest year that puts it in the "
        "past, as for logs of the last 12 months",
    )
    scan.add_argument(
        "--tz",
        help="time zone of authlog and syslog timestamps without an offset, an IANA name "
        "such as Europe/Berlin (default UTC)",
    )
    scan.add_argument(
        "--config",
        type=Path,
        help="TOML file with a [scan] table of these options, by the same names (save_model, "
        "no_progress...); a flag on the command line wins over the file",
    )
    scan.add_argument(
        "--allowlist", type=Path, help="TOML allow-list of reviewed findings to mute ([[allow]])"
    )
    scan.add_argument("--seed", type=int, help="seed of the detectors (default 7)")
    scan.add_argument(
        "--top",
        type=_positive_int,
        help="entities listed on screen and in the report (default 10)",
    )
    scan.add_argument("--no-progress", action="store_true", help="no progress bar")

    run = sub.add_parser("run", help="the streaming daemon: tail logs, score online, alert")
    run.add_argument("--config", type=Path, required=True, help="TOML daemon config")
    run.add_argument(
        "--check-config", action="store_true", help="validate the config and exit (0 if valid)"
    )

    gen = sub.add_parser("generate", help="write a synthetic organisation's logs and ground truth")
    _org_size_arguments(gen, users=1000, days=180)
    gen.add_argument(
        "--start", type=_date, default=date(2010, 1, 4), help="first day (default 2010-01-04)"
    )
    gen.add_argument("--out", type=Path, required=True, help="directory to write into")

    demo = sub.add_parser("demo", help="generate a seeded organisation, scan it, show the top")
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("demo-out"),
        help="directory for the organisation (org/) and the scan (scan/) (default demo-out)",
    )
    _org_size_arguments(demo, users=300, days=120)

    data = sub.add_parser("datasets", help="public benchmark datasets: list, verify, fetch")
    data_sub = data.add_subparsers(dest="datasets", metavar="ACTION", parser_class=_Parser)
    data_list = data_sub.add_parser("list", help="every dataset, its source and local status")
    data_list.add_argument("--data-dir", type=Path)
    for action, text in (
        ("verify", "check a local copy file by file (sha256)"),
        ("fetch", "download missing or differing files, verified"),
    ):
        one = data_sub.add_parser(action, help=text)
        one.add_argument("name")
        one.add_argument("--data-dir", type=Path, help="default: $BASELINER_DATA")
        if action == "fetch":
            one.add_argument("--base-url", help="a mirror laid out as BASE/NAME/PATH")

    bench = sub.add_parser("bench", help="measure detection quality and speed")
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCH", parser_class=_Parser)
    syn = bench_sub.add_parser("synthetic", help="quality on a generated organisation")
    syn.add_argument("--users", type=_positive_int, default=1000)
    syn.add_argument("--days", type=_positive_int, default=180)
    syn.add_argument("--seed", type=int, default=7)
    syn.add_argument("--detector", default="tail")
    syn.add_argument("--out", type=Path, default=Path("bench-out/synthetic"))
    syn.add_argument(
        "--mode",
        choices=["scan", "stream"],
        default="scan",
        help="scan: the batch scan; stream: the daemon's online scoring, replayed in time order",
    )
    syn.add_argument(
        "--peers",
        action="store_true",
        help="stream mode: score cold-start windows against the organisation's LDAP departments "
        "(the daemon's [daemon] peers)",
    )
    adb = bench_sub.add_parser("adbench", help="ADBench tabular sets (70/30 split, AUCROC/AUCPR)")
    adb.add_argument("--data-dir", type=Path, help="datasets folder (default: $BASELINER_DATA)")
    adb.add_argument("--detectors", help="comma-separated registry names (default: all batch)")
    adb.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    adb.add_argument("--datasets", help="comma-separated set names (default: all eight)")
    adb.add_argument(
        "--max-rows", type=int, default=10_000, help="subsample larger sets (0 = every row)"
    )
    adb.add_argument("--out", type=Path, default=Path("bench-out/adbench"))
    hdfs = bench_sub.add_parser(
        "hdfs",
        help="HDFS log sessions (HDFS_100k split, DeepLog files; full HDFS_v1 with --log/--labels)",
    )
    hdfs.add_argument("--data-dir", type=Path, help="datasets folder (default: $BASELINER_DATA)")
    hdfs.add_argument("--detectors", help="comma-separated session detectors (default: all)")
    hdfs.add_argument("--seed", type=int, help="default 0")
    hdfs.add_argument(
        "--out", type=Path, help="default bench-out/hdfs, bench-out/hdfs-v1 (--log), logparse"
    )
    hdfs.add_argument("--log", type=Path, help="full HDFS_v1: HDFS.log, mined by the drain parser")
    hdfs.add_argument("--labels", type=Path, help="full HDFS_v1: anomaly_label.csv")
    hdfs.add_argument(
        "--parsing",
        action="store_true",
        help="instead, the drain parser's grouping accuracy on loghub_2k (HDFS, Thunderbird)",
    )
    nab = bench_sub.add_parser("nab", help="NAB: our online detector on all 58 series, scored")
    nab.add_argument("--data-dir", type=Path, help="datasets folder (default: $BASELINER_DATA)")
    nab.add_argument(
        "--detector",
        help="online detector (registry name; default: cad_dual, CAD OSE on a linear and a log "
        "grid, with the file's range and probation as NAB gives them; cad: CAD OSE alone)",
    )
    nab.add_argument(
        "--subset",
        choices=("all", "dev", "holdout"),
        help="all 58 series (default), or the dev / held-out half (sorted path, even index = dev)",
    )
    nab.add_argument(
        "--files",
        help="a reduced run: comma-separated series (paths under data/, or file names such as "
        "nyc_taxi.csv); at least one must have an anomaly window",
    )
    nab.add_argument("--seed", type=int, help="default 0")
    nab.add_argument(
        "--out", type=Path, help="default bench-out/nab, bench-out/nab-scorer (--check-scorer)"
    )
    nab.add_argument(
        "--check-scorer",
        action="store_true",
        help="instead, score the official raw results and compare with the scoreboard "
        "(takes --data-dir and --out only)",
    )
    cert = bench_sub.add_parser("cert", help="a CERT Insider Threat release by path, vs answers/")
    cert.add_argument("--data-dir", type=Path, required=True, help="the release's directory")
    cert.add_argument("--release", default="r6.2", help="release name in answers/ (r4.2, r6.2)")
    cert.add_argument("--seed", type=int, default=7)
    cert.add_argument("--out", type=Path, default=Path("bench-out/cert"))
    lanl = bench_sub.add_parser("lanl", help="LANL auth.txt by path, vs redteam.txt")
    lanl.add_argument("--data-dir", type=Path, required=True, help="folder with both files")
    lanl.add_argument("--lanl-epoch", type=_instant, help="instant of LANL time 0 (ISO 8601)")
    lanl.add_argument("--seed", type=int, default=7)
    lanl.add_argument("--out", type=Path, default=Path("bench-out/lanl"))
    for long_bench in (syn, adb, hdfs, nab, cert, lanl):
        long_bench.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    thr = bench_sub.add_parser("throughput", help="events/s from logs to features and alerts")
    thr.add_argument(
        "--mode",
        choices=["scan", "stream"],
        default="scan",
        help="scan: CERT CSV files through the batch scan; stream: JSON lines through the daemon",
    )
    thr.add_argument("--users", type=_positive_int, help="default 1000 (scan), 10000 (stream)")
    thr.add_argument("--days", type=_positive_int, help="default 180 (scan), 2 (stream)")
    thr.add_argument("--seed", type=int, default=7)
    thr.add_argument(
        "--out", type=Path, help="default bench-out/throughput (scan), bench-out/stream-throughput"
    )
    return parser


_SCAN_KEYS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "out": str,
    "train_until": str,
    "budget": str,
    "detector": str,
    "detector_params": dict,
    "entity": str,
    "window": str,
    "strict": bool,
    "lanl_epoch": str,
    "seed": int,
    "allowlist": str,
    "slice_days": int,
    "save_model": str,
    "model": str,
    # A JSON mapping file, or the mapping itself as a table ([scan.mapping], with its
    # [scan.mapping.actions] table).
    "mapping": (str, dict),
    "top": int,
    "no_progress": bool,
    "families": (str, list),
    "year": int,
    "tz": str,
}


def _load_config(path: Path) -> dict[str, Any]:
    """The [scan] table of a TOML config, each key checked."""
    from detector.config import read_toml

    data = read_toml(path)
    unknown_tables = sorted(set(data) - {"scan"})
    if unknown_tables:
        raise UsageError(f"config {path}: unknown table [{unknown_tables[0]}] (expected [scan])")
    table = data.get("scan", {})
    for key, value in table.items():
        if key not in _SCAN_KEYS:
            raise UsageError(f"config {path}: unknown key scan.{key}")
        expected = _SCAN_KEYS[key]
        if not isinstance(value, expected):
            kinds = expected if isinstance(expected, tuple) else (expected,)
            kind = " or ".join(k.__name__ for k in kinds)
            raise UsageError(f"config {path}: scan.{key} must be a {kind}, got {value!r}")
    return dict(table)


def _cmd_scan(args: argparse.Namespace) -> int:
    from detector.scan import ScanOptions, parse_input, run_scan, saved_model_settings

    config = _load_config(args.config) if args.config else {}

    def given(name: str) -> bool:
        """Whether the command line or the config file sets ``name``."""
        value = getattr(args, name, None)
        return (value is not None and value is not False) or name in config

    def pick(name: str, default: Any) -> Any:
        # A flag given on the command line wins, then the config; the flags' defaults are
        # None (or False) so that they never override a config value.
        value = getattr(args, name, None)
        if value is not None and value is not False:
            return value
        return config.get(name, default)

    try:
        train_until = pick("train_until", None)
        if isinstance(train_until, str):
            train_until = _train_until(train_until)
        epoch = pick("lanl_epoch", datetime(1970, 1, 1, tzinfo=UTC))
        if isinstance(epoch, str):
            epoch = _instant(epoch)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise UsageError(f"config {args.config}: {exc}") from None
    top = int(pick("top", DEFAULT_TOP))
    if top <= 0:
        raise UsageError(f"config {args.config}: scan.top must be positive, got {top}")
    mapping_given = pick("mapping", None)
    mapping = (
        _load_mapping(Path(mapping_given))
        if isinstance(mapping_given, str | Path)
        else mapping_given
    )
    model = Path(pick("model", "")) if given("model") else None
    window = pick("window", None)
    entity = pick("entity", None)
    saved: dict[str, str] = {}
    if model is not None:
        # Scoring with a saved model: its window and entity unless asked otherwise (a
        # different one is refused by the scan), and nothing to fit.
        saved = saved_model_settings(model)
        window = window or saved.get("window")
        entity = entity or saved.get("entity")
        for name, flag in (("detector", "--detector"), ("train_until", "--train-until")):
            if given(name):
                log.warning(
                    "%s is ignored with --model: the saved model %s scores as it was fitted",
                    flag,
                    model,
                )
    # Parsed here rather than by argparse, so that "--families auto" wins over the config.
    from_flag = args.families is not None
    try:
        families = _families(args.families if from_flag else config.get("families", "auto"))
    except argparse.ArgumentTypeError as exc:
        where = "--families" if from_flag else f"config {args.config}: scan.families"
        raise UsageError(f"{where}: {exc}") from None
    if families is None and "families" in saved:
        # Scoring with a saved model: its families unless asked otherwise.
        families = tuple(name for name in saved["families"].split(",") if name)
    year = pick("year", None)
    if year is not None:
        try:
            year = _year(str(year))
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"config {args.config}: scan.year: {exc}") from None
    fmt = pick("format", None)
    save_model = pick("save_model", None)
    allowlist = pick("allowlist", None)
    opts = ScanOptions(
        inputs=tuple(parse_input(p, fmt) for p in args.inputs),
        out=Path(pick("out", DEFAULT_SCAN_OUT)),
        train_until=train_until,
        budget=_budget(str(pick("budget", "5/day"))),
        budget_given=given("budget"),
        detector=str(pick("detector", "tail")),
        detector_params=config.get("detector_params", {}),
        entity=str(entity or "user"),
        window=str(window or "1d"),
        strict=bool(pick("strict", False)),
        save_model=Path(save_model) if save_model else None,
        model=model,
        lanl_epoch=epoch,
        jsonl_mapping=mapping,
        progress=not pick("no_progress", False) and sys.stderr.isatty(),
        seed=int(pick("seed", 7)),
        report_top=top,
        allowlist=Path(allowlist) if allowlist else None,
        slice_days=int(pick("slice_days", 7)),
        families=families,
        year=year,
        tz=str(pick("tz", "UTC")),
    )
    _check_detector(opts.detector)
    result = run_scan(opts)
    print(_scan_summary(result, top=opts.report_top))
    return EXIT_OK


def _families(value: str | list[Any] | tuple[str, ...]) -> tuple[str, ...] | None:
    """``--families``: ``auto`` (None), ``none`` (no family), or names separated by commas
    (a list of names from a config file, ``[]`` for none).

    Examples
    --------
    >>> _families("auto"), _families("none"), _families("windows, templates"), _families([])
    (None, (), ('templates', 'windows'), ())
    """
    from features.catalog import FAMILY_NAMES, check_families

    if isinstance(value, str):
        if value.strip() == "auto":
            return None
        if value.strip() == "none":
            return ()
        names: list[Any] = [name.strip() for name in value.split(",") if name.strip()]
    else:
        names = list(value)
        if not names:
            return ()
    if not names or not all(isinstance(name, str) for name in names):
        raise argparse.ArgumentTypeError(
            f"{value!r}: give auto, none or family names ({', '.join(FAMILY_NAMES)})"
        )
    try:
        return check_families(names)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _year(text: str) -> int:
    """``--year``: a whole year 1..9999."""
    try:
        year = int(text)
    except ValueError:
        year = 0
    if not 1 <= year <= 9999:
        raise argparse.ArgumentTypeError(f"{text!r} is not a year (1..9999)")
    if year == 9999:
        # A file's lines after New Year would be in 10000, and a scan's windows of late 9999
        # end there: no datetime holds either.
        raise argparse.ArgumentTypeError(
            "'9999' leaves no year for the lines after a New Year in a file (1..9998)"
        )
    return year


def _load_mapping(path: Path) -> dict[str, Any]:
    """A JSON-lines field mapping file: a JSON object (its fields are checked by the scan)."""
    try:
        mapping = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"mapping file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"mapping {path} is not a JSON object: {exc}") from None
    if not isinstance(mapping, dict):
        raise UsageError(f"mapping {path} is not a JSON object")
    return mapping


def _check_detector(name: str) -> None:
    from models import available

    if name not in available():
        raise UsageError(f"unknown detector {name!r}; choose one of {', '.join(available())}")


def _scan_summary(result: Any, top: int = 10) -> str:
    from detector.risk import entity_reason

    without = getattr(result, "without_entity", 0)
    kind = result.options.entity if without else ""
    lines = [
        f"read {result.events:,} events ({result.rejects} dead letters"
        + (f", {without:,} without a {kind}, in no window" if without else "")
        + "), "
        f"{result.vectors.height:,} windows; scored {result.scored.windows.height:,}, "
        f"{len(result.scored.alerts)} alerts (budget {result.pipeline.config.budget})"
        + (f", {result.suppressed} muted by the allow-list" if result.suppressed else ""),
        "",
        "top entities by risk:",
    ]
    by_entity: dict[str, Any] = {}
    for alert in result.scored.alerts:
        best = by_entity.get(alert.entity)
        if best is None or alert.score > best.score:
            by_entity[alert.entity] = alert
    for row in result.scored.entities.head(top).iter_rows(named=True):
        alert = by_entity.get(row["entity"])
        reason = entity_reason(alert, row["risk"])
        when = f" on {alert.window_start.date()}" if alert else ""
        lines.append(
            f"  {row['rank']:>3}. {row['entity']:<12} risk {row['risk']:6.2f}  "
            f"{row['alerts']} alert(s){when}: {reason}"
        )
    lines += [
        "",
        f"report: {result.outputs['report_html']} (and report.md), alerts: "
        f"{result.outputs['alerts']}",
    ]
    return "\n".join(lines)


def _cmd_run(args: argparse.Namespace) -> int:
    from detector.config import config_warnings, load_config

    config = load_config(args.config)
    for warning in config_warnings(config):
        sys.stderr.write(f"baseliner: warning: {warning}\n")
    if args.check_config:
        counts = (
            f"{len(config.sources)} source(s), {len(config.sinks)} sink(s);"
            f" {config.describe_families()}"
        )
        print(f"config {args.config}: ok ({counts})")
        return EXIT_OK
    from detector.daemon import Daemon

    try:
        daemon = Daemon(config)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot start the daemon: {exc}") from None
    daemon.run()
    # The input stopped on a read error: what was read is processed and checkpointed, but
    # a pipeline (`cat logs | baseliner run`) must see that it did not all arrive.
    return EXIT_DATA if daemon.input_errors() else EXIT_OK


def _check_org_size(users: int, days: int) -> None:
    """The generator's limits on ``--users`` and ``--days``, as one-line usage errors."""
    if not MIN_USERS <= users <= MAX_USERS:
        raise UsageError(
            f"--users {users}: an organisation has {MIN_USERS} to {MAX_USERS} users "
            "(a head per department; CERT-style ids have 4 digits)"
        )
    if days < MIN_DAYS:
        raise UsageError(f"--days {days}: give at least {MIN_DAYS} days (to plant every scenario)")


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory")


def _cmd_generate(args: argparse.Namespace) -> int:
    _check_org_size(args.users, args.days)
    _check_out_dir(args.out)
    from benchmarks.synthetic import generate

    summary = generate(args.out, users=args.users, days=args.days, seed=args.seed, start=args.start)
    print(summary.describe())
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    _check_org_size(args.users, args.days)
    _check_out_dir(args.out)
    from benchmarks.demo import run_demo

    print(run_demo(args.out, users=args.users, days=args.days, seed=args.seed))
    return EXIT_OK


def _bench_out(args: argparse.Namespace) -> Path:
    """The bench's output folder: ``--out``, else the default of that bench and mode."""
    if args.out is not None:
        out: Path = args.out
        return out
    if args.bench == "throughput":
        stream = args.mode == "stream"
        return Path("bench-out/stream-throughput" if stream else "bench-out/throughput")
    if args.bench == "hdfs":
        if args.parsing:
            return Path("bench-out/logparse")
        return Path("bench-out/hdfs-v1" if args.log is not None else "bench-out/hdfs")
    if args.bench == "nab":
        return Path("bench-out/nab-scorer" if args.check_scorer else "bench-out/nab")
    return Path(f"bench-out/{args.bench}")


def _check_seed(seed: int, flag: str = "--seed") -> int:
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"{flag} {seed}: a seed is an integer from 0 to {MAX_SEED}")
    return seed


def _unique(items: Sequence[Any], what: str) -> list[Any]:
    """``items`` without repeats (first kept), with one warning naming what was repeated."""
    unique = list(dict.fromkeys(items))
    if len(unique) < len(items):
        repeated = sorted({str(item) for item in items if items.count(item) > 1})
        log.warning("%s given more than once: %s (each runs once)", what, ", ".join(repeated))
    return unique


def _check_batch_detectors(names: Sequence[str], bench: str) -> None:
    """Registry names that are batch detectors; an online or unknown name is a usage error."""
    from models.registry import BATCH_DETECTORS, ONLINE_DETECTORS

    for name in names:
        if name in BATCH_DETECTORS:
            continue
        kind = "an online detector" if name in ONLINE_DETECTORS else "not a detector"
        raise UsageError(
            f"bench {bench}: {name!r} is {kind}; this bench fits batch detectors: "
            f"{', '.join(sorted(BATCH_DETECTORS))}"
        )


def _adbench_sets(text: str | None) -> list[str] | None:
    """``--datasets`` as file stems, every name checked before the first run, repeats dropped."""
    from benchmarks.adbench.data import ADBENCH_SETS

    names = _names(text)
    if names is None:
        return None
    stem_of = {alias: stem for stem in ADBENCH_SETS for alias in (stem, stem.split("_", 1)[1])}
    unknown = [name for name in names if name not in stem_of]
    if unknown:
        raise UsageError(
            f"bench adbench: unknown set {', '.join(unknown)}; choose from "
            f"{', '.join(stem.split('_', 1)[1] for stem in ADBENCH_SETS)}"
        )
    stems: list[str] = _unique([stem_of[name] for name in names], "--datasets: sets")
    return stems


def _check_bench_args(args: argparse.Namespace) -> None:
    """Every flag check that needs no data, before any bench does work."""
    if args.bench is None:
        raise UsageError(
            "bench: choose a benchmark: synthetic, throughput, adbench, hdfs, nab, cert or lanl"
        )
    out = _bench_out(args)
    _check_out_dir(out)
    if getattr(args, "seed", None) is not None:
        _check_seed(args.seed)
    if args.bench == "synthetic" or (args.bench == "throughput" and args.mode == "scan"):
        if args.bench == "throughput":
            args.users, args.days = args.users or 1000, args.days or 180
        _check_org_size(args.users, args.days)


class ConsoleFormatter(logging.Formatter):
    """The console's log lines: problems as the CLI's own messages, progress as it was.

    A warning (and anything worse) reads ``baseliner: warning: <message>``, as the errors the
    CLI prints do (``baseliner: error: ...``); INFO and DEBUG keep ``LEVEL logger: <message>``
    (``-v`` progress, where the logger's name says which stage speaks).

    Examples
    --------
    >>> formatter = ConsoleFormatter()
    >>> def line(level, message):
    ...     return formatter.format(
    ...         logging.LogRecord("detector.scan", level, "", 0, message, (), None))
    >>> line(logging.WARNING, "3 windows only")
    'baseliner: warning: 3 windows only'
    >>> line(logging.INFO, "read 10 events")
    'INFO detector.scan: read 10 events'
    """

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self._problem = logging.Formatter("baseliner: %(levelname)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno < logging.WARNING:
            return super().format(record)
        # A copy: the other handlers of the record (a test's capture) see it unchanged.
        shown = copy.copy(record)
        shown.levelname = record.levelname.lower()
        return self._problem.format(shown)


def configure_console_logging(*, verbose: bool) -> None:
    """Log to stderr with :class:`ConsoleFormatter`, INFO and up with ``verbose``, else
    WARNING and up; nothing is changed when the root logger has a handler already (as
    :func:`logging.basicConfig`)."""
    console = logging.StreamHandler()
    console.setFormatter(ConsoleFormatter())
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[console])


class _OnceEach(logging.Filter):
    """Passes each distinct warning once: a bench fits the same detector many times.

    Examples
    --------
    >>> once = _OnceEach()
    >>> record = logging.LogRecord("m", logging.WARNING, "", 0, "fitted without %s", ("x",), None)
    >>> once.filter(record), once.filter(record)
    (True, False)
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def _cmd_bench(args: argparse.Namespace) -> int:
    """A bench, each distinct warning shown once (on every handler of the root logger)."""
    # One filter per handler: a shared one would pass a record to the first handler only.
    filters = [(handler, _OnceEach()) for handler in logging.getLogger().handlers]
    for handler, once in filters:
        handler.addFilter(once)
    try:
        return _run_bench(args)
    finally:
        for handler, once in filters:
            handler.removeFilter(once)


def _run_bench(args: argparse.Namespace) -> int:
    from benchmarks.results import progress_enabled

    _check_bench_args(args)
    # Only the long benches have --quiet; a bar shows only on a terminal.
    progress = progress_enabled(getattr(args, "quiet", False))
    if args.bench == "synthetic" and args.mode == "stream":
        from benchmarks.stream_quality import StreamSettings, run_stream_bench, stream_detector

        settings = StreamSettings(
            detector=stream_detector(args.detector), seed=args.seed, peers=args.peers
        )
        print(
            run_stream_bench(
                args.out,
                users=args.users,
                days=args.days,
                seed=args.seed,
                settings=settings,
                progress=progress,
            )
        )
        return EXIT_OK
    if args.bench == "synthetic":
        from benchmarks.synthetic_bench import run_synthetic_bench

        if args.peers:
            raise UsageError("--peers applies to --mode stream (the batch scan always uses LDAP)")

        _check_batch_detectors([args.detector], "synthetic")
        print(
            run_synthetic_bench(
                args.out,
                users=args.users,
                days=args.days,
                seed=args.seed,
                detector=args.detector,
                progress=progress,
            )
        )
        return EXIT_OK
    if args.bench == "throughput" and args.mode == "stream":
        from benchmarks.stream_bench import run_stream_throughput_bench

        print(
            run_stream_throughput_bench(
                _bench_out(args),
                users=args.users or 10_000,
                days=args.days or 2,
                seed=args.seed,
            )
        )
        return EXIT_OK
    if args.bench == "throughput":
        from benchmarks.throughput import run_throughput_bench

        print(
            run_throughput_bench(
                _bench_out(args),
                users=args.users,
                days=args.days,
                seed=args.seed,
            )
        )
        return EXIT_OK
    if args.bench == "cert":
        from benchmarks.cert_bench import run_cert_bench

        print(
            run_cert_bench(args.data_dir, args.release, args.out, seed=args.seed, progress=progress)
        )
        return EXIT_OK
    if args.bench == "lanl":
        from benchmarks.lanl_bench import run_lanl_bench

        print(
            run_lanl_bench(
                args.data_dir, args.out, epoch=args.lanl_epoch, seed=args.seed, progress=progress
            )
        )
        return EXIT_OK
    if args.bench == "adbench":
        from benchmarks.adbench import run_adbench
        from benchmarks.adbench.data import AdbenchDataError

        detectors = _names(args.detectors)
        if detectors is not None:
            detectors = _unique(detectors, "--detectors: detectors")
            _check_batch_detectors(detectors, "adbench")
        seeds = _unique([_seed(x) for x in args.seeds.split(",")], "--seeds: seeds")
        datasets = _adbench_sets(args.datasets)
        if args.max_rows < 0 or 0 < args.max_rows < ADBENCH_MIN_ROWS:
            raise UsageError(
                f"--max-rows {args.max_rows}: give 0 (every row) or at least {ADBENCH_MIN_ROWS} "
                "(a stratified 70/30 split needs anomalies on both sides)"
            )
        try:
            _, table = run_adbench(
                args.data_dir,
                args.out,
                detectors,
                seeds,
                datasets=datasets,
                max_rows=args.max_rows or None,
                progress=progress,
            )
        except AdbenchDataError as exc:
            raise UsageError(str(exc)) from None
        print(table)
        return EXIT_OK
    if args.bench == "hdfs":
        return _bench_hdfs(args, progress)
    if args.bench == "nab":
        return _bench_nab(args, progress)
    raise UsageError(
        "bench: choose a benchmark: synthetic, throughput, adbench, hdfs, nab, cert or lanl"
    )


def _bench_nab(args: argparse.Namespace, progress: bool) -> int:
    """NAB: our online detector over the corpus (or ``--files``), or ``--check-scorer``."""
    from benchmarks.nab.corpus import NabDataError

    out = _bench_out(args)
    if args.check_scorer:
        given = [
            flag
            for flag, value in (
                ("--detector", args.detector),
                ("--subset", args.subset),
                ("--files", args.files),
                ("--seed", args.seed),
            )
            if value is not None
        ]
        if given:
            raise UsageError(
                f"bench nab: --check-scorer scores NAB's stored results; it takes no "
                f"{', '.join(given)}"
            )
        from benchmarks.nab.__main__ import check_scorer

        try:
            ok, table, _ = check_scorer(args.data_dir, out)
        except NabDataError as exc:
            raise UsageError(str(exc)) from None
        print(table)
        return EXIT_OK if ok else EXIT_DATA
    from benchmarks.nab.corpus import load_nab
    from benchmarks.nab.run import DEFAULT_DETECTOR, run_nab
    from models.registry import BATCH_DETECTORS, ONLINE_DETECTORS

    detector = args.detector or DEFAULT_DETECTOR
    if detector not in ONLINE_DETECTORS:
        batch = " (a batch detector)" if detector in BATCH_DETECTORS else ""
        raise UsageError(
            f"unknown online detector {detector!r}{batch}; choose one of "
            f"{', '.join(sorted(ONLINE_DETECTORS))}"
        )
    if args.files is not None and args.subset is not None:
        raise UsageError("bench nab: give --files or --subset, not both")
    files = _names(args.files)
    try:
        corpus = load_nab(args.data_dir)
        only = None if files is None else _nab_files(files, list(corpus.series))
        _, table = run_nab(
            args.data_dir,
            out,
            detector=detector,
            seed=args.seed or 0,
            corpus=corpus,
            only=only,
            subset=args.subset or "all",
            progress=progress,
        )
    except NabDataError as exc:
        raise UsageError(str(exc)) from None
    print(table)
    return EXIT_OK


def _nab_files(files: Sequence[str], names: Sequence[str]) -> list[str]:
    """``--files`` as series names under ``data/``: a relative path or an unambiguous file name."""
    chosen: list[str] = []
    for given in files:
        if given in names:
            chosen.append(given)
            continue
        matches = [name for name in names if name.rsplit("/", 1)[-1] == given]
        if len(matches) != 1:
            why = "no such series" if not matches else f"ambiguous ({', '.join(matches)})"
            raise UsageError(f"bench nab: --files {given}: {why} under data/")
        chosen.append(matches[0])
    unique: list[str] = _unique(chosen, "--files: series")
    return unique


def _check_deeplog_files(data_dir: Path | None) -> None:
    """DeepLog's two key files, checked before the session detectors spend minutes."""
    from benchmarks.hdfs.data import DEEPLOG_DIR, resolve_hdfs_dir

    folder = resolve_hdfs_dir(data_dir) / DEEPLOG_DIR
    for name in ("hdfs_train", "hdfs_test_abnormal"):
        if not (folder / name).is_file():
            raise UsageError(f"{folder / name}: no such file (DeepLog's HDFS key sequences)")


def _bench_hdfs(args: argparse.Namespace, progress: bool) -> int:
    """HDFS_100k + DeepLog files, full HDFS_v1 by path (--log/--labels), or --parsing."""
    from benchmarks.hdfs import SESSION_DETECTORS, run_hdfs, run_hdfs_v1, run_logparse
    from benchmarks.hdfs.data import HdfsDataError

    detectors = _names(args.detectors)
    unknown = sorted(set(detectors or ()) - set(SESSION_DETECTORS))
    if unknown:
        raise UsageError(
            f"unknown session detectors {', '.join(unknown)}; choose from "
            f"{', '.join(sorted(SESSION_DETECTORS))}"
        )
    if detectors is not None:
        detectors = _unique(detectors, "--detectors: detectors")
    if (args.log is None) != (args.labels is None):
        raise UsageError("bench hdfs: --log and --labels go together (HDFS.log, anomaly_label.csv)")
    if args.parsing and args.log is not None:
        raise UsageError("bench hdfs: --parsing reads loghub_2k; it takes no --log/--labels")
    if args.parsing and (args.detectors is not None or args.seed is not None):
        raise UsageError(
            "bench hdfs: --parsing measures the drain parser only; it takes no --detectors/--seed"
        )
    seed = 0 if args.seed is None else args.seed
    out = _bench_out(args)
    try:
        if args.parsing:
            _, table = run_logparse(args.data_dir, out)
        elif args.log is not None:
            _, table = run_hdfs_v1(args.log, args.labels, out, detectors, seed, progress=progress)
        else:
            _check_deeplog_files(args.data_dir)
            _, table = run_hdfs(args.data_dir, out, detectors, seed, progress=progress)
    except HdfsDataError as exc:
        raise UsageError(str(exc)) from None
    print(table)
    return EXIT_OK


def _cmd_datasets(args: argparse.Namespace) -> int:
    from benchmarks.datasets import fetch, list_datasets, verify

    if args.datasets == "list":
        print(list_datasets(args.data_dir))
        return EXIT_OK
    if args.datasets == "verify":
        ok, report = verify(args.name, args.data_dir)
    elif args.datasets == "fetch":
        ok, report = fetch(args.name, args.data_dir, args.base_url)
    else:
        raise UsageError("datasets: choose list, verify NAME or fetch NAME")
    print(report)
    return EXIT_OK if ok else EXIT_DATA


def _names(text: str | None) -> list[str] | None:
    """``"a,b"`` into ``["a", "b"]``; ``None`` stays ``None`` (the default set)."""
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError(f"empty list {text!r}")
    return names


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise UsageError(f"seed {text!r} is not an integer") from None
    return _check_seed(seed, "--seeds")


def _attach_negative_values(argv: Sequence[str] | None) -> list[str]:
    """``--budget -5/day`` as ``--budget=-5/day``.

    argparse takes a value that starts with ``-`` for an option and reports "expected one
    argument"; attached, the value reaches the budget's own check and its message.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    for i in range(len(args) - 2, -1, -1):
        value = args[i + 1]
        if args[i] == "--budget" and value[:1] == "-" and value[1:2].isdigit():
            args[i : i + 2] = [f"--budget={value}"]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``baseliner`` console script; returns the exit code."""
    from detector.scan import DataError

    try:
        args = build_parser().parse_args(_attach_negative_values(argv))
        configure_console_logging(verbose=args.verbose)
        if args.command == "scan":
            return _cmd_scan(args)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "generate":
            return _cmd_generate(args)
        if args.command == "demo":
            return _cmd_demo(args)
        if args.command == "bench":
            return _cmd_bench(args)
        if args.command == "datasets":
            return _cmd_datasets(args)
        raise UsageError(
            "choose a command: scan, run, generate, demo, bench, datasets (see --help)"
        )
    except UsageError as exc:
        print(f"baseliner: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DataError as exc:
        print(f"baseliner: data error: {exc}", file=sys.stderr)
        return EXIT_DATA
    except KeyboardInterrupt:
        print("baseliner: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (``baseliner scan ... | head``): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
