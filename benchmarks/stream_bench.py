"""``baseliner bench throughput --mode stream``: events/s through the daemon's whole path.

The input is a JSON-lines file (Elastic Common Schema names) of a busy organisation: web
proxy, mail, authentication, logon, file and USB events of ``users`` users over ``days`` days
of working hours, in time order, generated deterministically and cached. The real
:class:`~detector.daemon.Daemon` (file source, JSON-lines parser, hourly windows, the default
detector and features, a JSON-lines alert sink) polls the file until it is consumed, in a
child process of its own so that its peak memory is its own. Measured:

* events/s of the micro-batched path (``parse_batch`` + ``ColumnarOnline.update_columns``)
  over the whole file, driven as ``baseliner run`` drives it (the next poll read and parsed
  while one is handled, :class:`~detector.daemon.PollPipeline`): pinned to one core (the
  target's setting), and again on every core the process may use; the seconds (wall and CPU)
  spent in each stage: reading the file (``read_blocks``), parse, features (windowing and the
  evaluation of closed windows, the evaluator's share also on its own), scoring, sinks. The
  stages' CPU is that of the thread running each (read and parse on the main thread, the
  rest on the handler thread); "other" is the rest of the process's CPU, the evaluator's and
  polars' worker threads included. With more than one core the stages' wall seconds overlap;
* the same daemon forced to parse line by line over a prefix (what the batch parse gains);
* p50 / p99 latency from the poll that read the batch closing a window to its alert written;
* bytes of state per entity (feature state, and the whole checkpoint file);
* the naive pipeline the target is stated against: every event parsed with ``orjson`` into a
  small feature dict and fed to river's ``HalfSpaceTrees`` (``score_one`` then
  ``learn_one``), over a prefix, on one core (it is one Python thread), and our ratio to it:
  one core against one core, and every core against it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks.report import write_bench_outputs
from benchmarks.results import environment, environment_line, peak_memory_mb, stage_throughput

_ACTIONS = (
    "http_visit",
    "http_download",
    "http_upload",
    "email_send",
    "auth",
    "logon",
    "file_open",
    "file_copy_removable",
    "usb_connect",
)
_ACTION_SHARE = (0.55, 0.06, 0.02, 0.09, 0.12, 0.05, 0.08, 0.01, 0.02)
_START = np.datetime64("2024-03-04T00:00:00", "us")  # a Monday
_DOMAINS = 5000
_SERVERS = 200


def input_path(out: Path, users: int, days: int, rate: int, seed: int) -> Path:
    """Where the generated input of these settings is cached.

    Examples
    --------
    >>> input_path(Path("bench-out"), 10, 1, 5, 7).name
    'stream-u10-d1-r5-s7.jsonl'
    """
    return out / f"stream-u{users}-d{days}-r{rate}-s{seed}.jsonl"


def generate_lines(path: Path, *, users: int, days: int, rate: int, seed: int) -> int:
    """Write the benchmark's JSON lines (unless cached); return the number of events.

    Each user works 9 hours a day from a start hour of 7, 8 or 9 UTC and makes a Poisson
    number of events (mean ``rate``) in each working hour, at uniform instants. Web
    targets come mostly from a small personal set of domains, mail goes to one to three
    colleagues, authentications go to a few servers.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "in.jsonl"
    >>> n = generate_lines(path, users=3, days=1, rate=4, seed=1)
    >>> n == len(path.read_text().splitlines()) > 0
    True
    """
    if path.is_file() and path.with_suffix(".count").is_file():
        return int(path.with_suffix(".count").read_text())
    rng = np.random.default_rng(seed)
    start_hour = rng.integers(7, 10, size=users)
    cell_user = np.repeat(np.arange(users), days * 9)
    cell_day = np.tile(np.repeat(np.arange(days), 9), users)
    cell_hour = start_hour[cell_user] + np.tile(np.arange(9), users * days)
    per_cell = rng.poisson(rate, size=cell_user.size)
    user = np.repeat(cell_user, per_cell)
    offset_us = np.repeat(cell_day * 86_400 + cell_hour * 3600, per_cell).astype(
        np.int64
    ) * 1_000_000 + rng.integers(0, 3_600_000_000, size=user.size)
    n = int(user.size)
    action = rng.choice(len(_ACTIONS), size=n, p=_ACTION_SHARE)
    personal = rng.integers(0, 25, size=n)
    popular = rng.random(n) < 0.2
    domain = np.where(popular, rng.integers(0, 50, size=n), (user * 37 + personal) % _DOMAINS)
    frame = pl.DataFrame(
        {
            "us": offset_us,
            "user": user,
            "action": np.array(_ACTIONS)[action],
            "domain": domain,
            "server": (user + rng.integers(0, 4, size=n) * 53) % _SERVERS,
            "mate": (user + rng.integers(1, 40, size=n)) % max(users, 1),
            "n_rcpt": rng.integers(1, 4, size=n),
            "bytes": rng.integers(200, 2_000_000, size=n),
            "failed": rng.random(n) < 0.05,
        }
    ).sort("us")
    act = pl.col("action")
    user_name = pl.format("u{}", pl.col("user").cast(pl.String).str.zfill(5))
    recipients = pl.concat_str(
        [
            pl.format("u{}@corp.example", pl.col("mate").cast(pl.String).str.zfill(5)),
            pl.when(pl.col("n_rcpt") > 1).then(pl.lit("; partner@vendor.example")),
        ],
        ignore_nulls=True,
    )
    target = (
        pl.when(act.is_in(["http_visit", "http_download", "http_upload"]))
        .then(pl.format("site{}.example", pl.col("domain")))
        .when(act == "email_send")
        .then(recipients)
        .when(act == "auth")
        .then(pl.format("srv-{}", pl.col("server")))
        .when(act == "logon")
        .then(pl.format("pc-{}", pl.col("user")))
        .when(act.is_in(["file_open", "file_copy_removable"]))
        .then(pl.format("C:\\\\Users\\\\{}\\\\doc{}.docx", user_name, pl.col("domain") % 97))
    )
    stamp = (pl.lit(_START) + pl.duration(microseconds=pl.col("us"))).dt.strftime(
        "%Y-%m-%dT%H:%M:%S%.3fZ"
    )
    lines = frame.select(
        stamp.alias("@timestamp"),
        pl.struct(user_name.alias("name")).alias("user"),
        pl.struct(pl.format("pc-{}", pl.col("user")).alias("name")).alias("host"),
        pl.struct(
            act.alias("action"),
            pl.when(act == "auth")
            .then(pl.when(pl.col("failed")).then(pl.lit("failure")).otherwise(pl.lit("success")))
            .alias("outcome"),
            pl.lit("bench").alias("dataset"),
        ).alias("event"),
        pl.struct(target.alias("address")).alias("destination"),
        pl.struct(
            pl.when(act.is_in(["http_upload", "email_send"])).then(pl.col("bytes")).alias("bytes")
        ).alias("source"),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    lines.write_ndjson(partial)
    partial.replace(path)
    path.with_suffix(".count").write_text(str(n))
    return n


def _config(work: Path, lines: Path) -> Any:
    from detector.config import parse_config

    return parse_config(
        {
            "daemon": {
                "state_dir": str((work / "state").resolve()),
                "window": "1h",
                "metrics_address": "127.0.0.1:0",
                "checkpoint_seconds": 1e9,
            },
            "source": [
                {"type": "file", "path": str(lines.resolve()), "parser": "jsonl", "name": "bench"}
            ],
            "sink": [{"type": "jsonl", "path": str((work / "alerts.jsonl").resolve())}],
        },
        work.resolve(),
    )


class _PerRecordParser:
    """A parser without ``parse_batch``: makes the daemon parse line by line (the features
    stage is the same either way)."""

    def __init__(self, parser: Any) -> None:
        self._parser = parser

    def parse(self, line: str) -> Any:
        return self._parser.parse(line)


def _stage_daemon(
    lines: Path, work: Path, *, per_record: bool, limit: int | None
) -> dict[str, Any]:
    import shutil

    from detector.daemon import Daemon, PollPipeline

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    daemon = Daemon(_config(work, lines))
    if per_record:
        daemon.parsers["bench"] = _PerRecordParser(daemon.parsers["bench"])  # type: ignore[assignment]
    latencies: list[float] = []
    emit = daemon._emit

    def timed_emit(alert: Any) -> None:
        emit(alert)
        latencies.append(time.monotonic() - daemon._batch_arrival)

    daemon._emit = timed_emit  # type: ignore[method-assign]
    spent, cpu_spent, evaluator_seconds, unwrap = _time_stages(daemon)
    records = 0
    t0, cpu0 = time.perf_counter(), time.process_time()
    # The daemon's own loop: the next poll is read and parsed while one is handled.
    with PollPipeline(daemon) as pipeline:
        while read := pipeline.advance():
            records += read
            if limit is not None and records >= limit:
                break
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    events = int(daemon.totals.events["bench"])
    if not events:
        raise RuntimeError(f"no events read from {lines}")
    entities = max(daemon.features.entities, 1)
    unwrap()
    # Scoring runs inside update_columns (at each closing step), the sinks inside scoring.
    for totals in (spent, cpu_spent):
        totals["features"] -= totals["scoring"]
        totals["scoring"] -= totals["sinks"]
    feature_bytes = daemon.features.state_bytes()
    daemon.checkpoint()
    checkpoint_bytes = daemon.checkpoint_path.stat().st_size
    daemon.close()
    ordered = sorted(latencies)
    return {
        "path": "per-record" if per_record else "micro-batched",
        "seconds": seconds,
        "records": records,
        "events": events,
        "events_per_s": events / seconds if seconds > 0 else math.nan,
        # CPU seconds of every thread of the process: on a shared machine, the cost of the
        # work, which wall time is not.
        "cpu_seconds": cpu_seconds,
        "events_per_cpu_s": events / cpu_seconds if cpu_seconds > 0 else math.nan,
        "windows_closed": int(daemon.totals.windows_closed),
        "alerts": len(latencies),
        "latency_p50_ms": 1000 * _quantile(ordered, 0.5),
        "latency_p99_ms": 1000 * _quantile(ordered, 0.99),
        "entities": daemon.features.entities,
        "seconds_by_stage": {**spent, "other": seconds - sum(spent.values())},
        "cpu_seconds_by_stage": {**cpu_spent, "other": cpu_seconds - sum(cpu_spent.values())},
        "features_evaluator_seconds": evaluator_seconds[0],
        "feature_state_bytes_per_entity": feature_bytes / entities,
        "checkpoint_bytes_per_entity": checkpoint_bytes / entities,
    }


def _timed(
    spent: dict[str, float],
    stage: str,
    call: Callable[..., Any],
    cpu_spent: dict[str, float] | None = None,
) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        # The CPU of this thread: the stages run on two threads at once (PollPipeline).
        t0, cpu0 = time.perf_counter(), time.thread_time()
        try:
            return call(*args, **kwargs)
        finally:
            spent[stage] += time.perf_counter() - t0
            if cpu_spent is not None:
                cpu_spent[stage] += time.thread_time() - cpu0

    return timed


def _time_stages(
    daemon: Any,
) -> tuple[dict[str, float], dict[str, float], list[float], Callable[[], None]]:
    """Wrap the daemon's read, parse, feature, scoring and sink calls to add up the wall and
    CPU seconds (of the thread running it) each takes.

    The features stage (``update_columns``) includes the scoring of the windows it closes and
    scoring includes the sinks: the caller subtracts. Returns the wall and CPU totals, the
    seconds of the evaluator of closed windows (part of features), and a function that
    removes the wrappers (before a checkpoint: the parser and the features are pickled, the
    wrappers would not be).
    """
    spent = {"read": 0.0, "parse": 0.0, "features": 0.0, "scoring": 0.0, "sinks": 0.0}
    cpu_spent = dict.fromkeys(spent, 0.0)
    evaluator_spent = {"evaluator": 0.0}
    evaluator = daemon.features.evaluator
    wrapped = [
        (daemon.sources["bench"], "read_blocks", spent, "read"),
        # Each piece of a poll, parsed at once or line by line (``per_record``).
        (daemon, "_parse_piece", spent, "parse"),
        (daemon.features, "update_columns", spent, "features"),
        (daemon, "_score", spent, "scoring"),
        (daemon, "_emit", spent, "sinks"),
        (evaluator, "evaluate", evaluator_spent, "evaluator"),
    ]
    for owner, name, totals, stage in wrapped:
        cpu = cpu_spent if totals is spent else None
        setattr(owner, name, _timed(totals, stage, getattr(owner, name), cpu))
    seconds = [0.0]

    def unwrap() -> None:
        for owner, name, _, _ in wrapped:
            delattr(owner, name)
        seconds[0] = evaluator_spent["evaluator"]

    return spent, cpu_spent, seconds, unwrap


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _naive_features(lines: Iterator[bytes]) -> Iterator[dict[str, float]]:
    import orjson

    for raw in lines:
        obj = orjson.loads(raw)
        stamp = obj["@timestamp"]
        action = obj["event"]["action"]
        size = (obj.get("source") or {}).get("bytes") or 0
        yield {
            "hour": int(stamp[11:13]) / 23.0,
            "bytes": min(math.log1p(size) / 16.0, 1.0),
            "web": float(action.startswith("http")),
            "auth": float(action == "auth"),
            "mail": float(action == "email_send"),
        }


def _stage_naive(lines: Path, limit: int) -> dict[str, Any]:
    from river.anomaly import HalfSpaceTrees

    model = HalfSpaceTrees(seed=7)
    n = 0
    t0, cpu0 = time.perf_counter(), time.process_time()
    with lines.open("rb") as handle:
        prefix = (raw for _, raw in zip(range(limit), handle, strict=False))
        for x in _naive_features(prefix):
            model.score_one(x)  # type: ignore[no-untyped-call]
            model.learn_one(x)  # type: ignore[no-untyped-call]
            n += 1
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "seconds": seconds,
        "events": n,
        "events_per_s": n / seconds if seconds else math.nan,
        "cpu_seconds": cpu_seconds,
        "events_per_cpu_s": n / cpu_seconds if cpu_seconds else math.nan,
    }


#: Runs this module in a process pinned to one CPU from its first instruction (so numpy's and
#: polars' thread pools are sized for it, as under ``taskset``).
_PINNED = (
    "import os, runpy; os.sched_setaffinity(0, {{{cpu}}}); "
    "runpy.run_module('benchmarks.stream_bench', run_name='__main__', alter_sys=True)"
)


def one_core() -> int | None:
    """The CPU the one-core runs are pinned to (the first this process may use); ``None``
    where the platform cannot pin a process (no ``sched_setaffinity``: macOS, Windows)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    return min(os.sched_getaffinity(0))


def _child(stage: str, *args: str, cpu: int | None = None) -> dict[str, Any]:
    """Run one stage in a child process (pinned to ``cpu`` if given); its JSON result."""
    if cpu is None:
        cmd = [sys.executable, "-m", "benchmarks.stream_bench", "--stage", stage, *args]
    else:
        cmd = [sys.executable, "-c", _PINNED.format(cpu=cpu), "--stage", stage, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=7200)
    if done.returncode != 0:
        raise RuntimeError(f"stream bench stage {stage} failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_stream_throughput_bench(
    out: Path,
    *,
    users: int = 10_000,
    days: int = 2,
    rate: int = 15,
    seed: int = 7,
    per_record_prefix: int = 400_000,
    naive_prefix: int = 100_000,
    repeats: int = 2,
) -> str:
    """Generate (or reuse) the input, measure every stage in child processes, write results.

    The micro-batched daemon runs ``repeats`` times on one core and ``repeats`` times on
    every usable core (when there are several), and the best run of each is reported; the
    daemon parsing line by line and the naive river pipeline run over prefixes on one core
    (they are slow). Where a process cannot be pinned, the "one core" runs use every core
    and say so (``one_core_pinned``).
    """
    from detector.daemon import usable_cores

    out.mkdir(parents=True, exist_ok=True)
    lines = input_path(out, users, days, rate, seed)
    n_events = generate_lines(lines, users=users, days=days, rate=rate, seed=seed)
    work = out / "work"
    cpu, cores = one_core(), usable_cores()
    runs = [_child("daemon", str(lines), str(work), cpu=cpu) for _ in range(max(repeats, 1))]
    best = max(runs, key=lambda run: float(run["events_per_s"]))
    all_core_runs = (
        [_child("daemon", str(lines), str(work)) for _ in range(max(repeats, 1))]
        if cpu is not None and cores > 1
        else []
    )
    best_all = max(all_core_runs, key=lambda run: float(run["events_per_s"]), default=best)
    prefix = ["--limit", str(per_record_prefix)]
    batched_prefix = _child("daemon", str(lines), str(work), *prefix, cpu=cpu)
    per_record = _child("daemon", str(lines), str(work), "--per-record", *prefix, cpu=cpu)
    naive = _child("naive", str(lines), str(work), "--limit", str(naive_prefix), cpu=cpu)
    ratio = float(best["events_per_s"]) / float(naive["events_per_s"])
    cpu_ratio = float(best["events_per_cpu_s"]) / float(naive["events_per_cpu_s"])
    ratio_all = float(best_all["events_per_s"]) / float(naive["events_per_s"])
    where = "one core" if cpu is not None else f"{cores} cores, not pinned"
    # Like for like: both daemon paths over the same first lines.
    gain = float(batched_prefix["events_per_s"]) / float(per_record["events_per_s"])
    payload = {
        "benchmark": "throughput",
        "mode": "stream",
        "users": users,
        "days": days,
        "events_per_user_hour": rate,
        "seed": seed,
        "events": n_events,
        "input_bytes": lines.stat().st_size,
        "one_core_pinned": cpu is not None,
        "usable_cores": cores,
        "daemon": best,
        "daemon_runs": runs,
        "daemon_all_cores": best_all,
        "daemon_all_cores_runs": all_core_runs,
        "daemon_prefix": batched_prefix,
        "daemon_per_record_prefix": per_record,
        "naive_river_hst_prefix": naive,
        "ratio_to_naive": ratio,
        "cpu_ratio_to_naive": cpu_ratio,
        "ratio_to_naive_all_cores": ratio_all,
        "gain_over_per_record": gain,
        "targets": {"events_per_s": 300_000, "ratio_to_naive": 10.0},
        "config": {
            "users": users,
            "days": days,
            "events_per_user_hour": rate,
            "seed": seed,
            "per_record_prefix": per_record_prefix,
            "naive_prefix": naive_prefix,
            "repeats": repeats,
        },
        # Each stage runs in a fresh process: its peak memory is its own.
        "throughput": [
            stage_throughput(name, stage)
            for name, stage in (
                (f"daemon, micro-batched, {where}", best),
                (f"daemon, micro-batched, {cores} cores", best_all),
                ("daemon, per-line parse (prefix)", per_record),
                ("naive river HST (prefix)", naive),
            )
        ],
        **environment(),
    }
    table = [
        f"throughput (stream mode): {users:,} users x {days} days, ~{rate} events per "
        f"user-hour, {n_events:,} JSON lines ({lines.stat().st_size / 1e6:,.0f} MB), window 1h",
        f"  daemon, micro-batched, {where}: {best['events_per_s']:>10,.0f} events/s  "
        f"({best['seconds']:.1f} s, {best['windows_closed']:,} windows, {best['alerts']} alerts, "
        f"peak {best['peak_rss_mb']:.0f} MB)",
        *(
            [
                f"  same, {cores} cores:          {best_all['events_per_s']:>10,.0f} events/s  "
                f"({best_all['seconds']:.1f} s, {best_all['cpu_seconds']:.1f} CPU s, close -> "
                f"alert p50 {best_all['latency_p50_ms']:.0f} ms; ratio to the naive pipeline "
                f"{ratio_all:.1f}x)"
            ]
            if all_core_runs
            else []
        ),
        f"  same, first {batched_prefix['events']:,} events: "
        f"{batched_prefix['events_per_s']:>10,.0f} events/s  "
        f"({batched_prefix['windows_closed']:,} windows)",
        f"  per-line parse, same:    {per_record['events_per_s']:>10,.0f} events/s  "
        f"batch parsing gains {gain:.1f}x",
        f"  naive river HST:         {naive['events_per_s']:>10,.0f} events/s  "
        f"(first {naive['events']:,} events, {where})  ratio {ratio:.1f}x (target 10x)",
        f"  per CPU second:          {best['events_per_cpu_s']:>10,.0f} events/s daemon, "
        f"{naive['events_per_cpu_s']:,.0f} naive: ratio {cpu_ratio:.1f}x",
        f"  wall time in each stage (micro-batched, {where}): "
        + ", ".join(
            f"{stage} {secs / best['seconds']:.0%}"
            for stage, secs in best["seconds_by_stage"].items()
        ),
        f"  CPU by stage (micro-batched, {where}): "
        + ", ".join(
            f"{stage} {secs:.1f} s" for stage, secs in best.get("cpu_seconds_by_stage", {}).items()
        ),
        f"  of the features' {best['seconds_by_stage']['features']:.1f} s (wall): evaluating "
        f"closed windows {best['features_evaluator_seconds']:.1f} s, windowing the rest",
        "  time by stage (per-line parse, prefix): "
        + ", ".join(
            f"{stage} {secs / per_record['seconds']:.0%}"
            for stage, secs in per_record["seconds_by_stage"].items()
        ),
        f"  window close -> alert:   p50 {best['latency_p50_ms']:.1f} ms, "
        f"p99 {best['latency_p99_ms']:.1f} ms",
        f"  state per entity:        {best['feature_state_bytes_per_entity']:,.0f} B features, "
        f"{best['checkpoint_bytes_per_entity']:,.0f} B checkpoint ({best['entities']:,} entities)",
        f"results: {out / 'results.json'}",
    ]
    markdown = (
        "# Stream throughput\n\n```\n"
        + "\n".join(table[:-1])
        + "\n```\n\nThroughput: score /s is each stage's events per wall second, end to end.\n\n"
        + f"Seed {seed}; {environment_line(payload)}\n"
    )
    write_bench_outputs(out, "Stream throughput", payload, markdown)
    table[-1] += " (and results.md, report.html)"
    return "\n".join(table)


def _main() -> None:
    parser = argparse.ArgumentParser(description="one stream throughput stage (internal)")
    parser.add_argument("--stage", choices=["daemon", "naive"], required=True)
    parser.add_argument("lines", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--per-record", action="store_true")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    if args.stage == "daemon":
        result = _stage_daemon(args.lines, args.work, per_record=args.per_record, limit=args.limit)
    else:
        result = _stage_naive(args.lines, args.limit or 100_000)
    result["peak_rss_mb"] = peak_memory_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    _main()
