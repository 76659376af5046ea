"""Prometheus metrics of the daemon and the small HTTP server for ``/metrics`` and ``/healthz``.

The daemon keeps its counters as plain dictionaries (they are checkpointed, so a restart
continues the totals instead of resetting them); :class:`DaemonCollector` exposes them to
prometheus-client at scrape time.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector


@dataclass
class DaemonTotals:
    """Running totals of the daemon, checkpointed with its state.

    ``records`` counts what each source handed on; each record is an event, a dead letter
    (``dead_letters``, by reason) or ``skipped``: a line its parser does not model (another
    program's syslog line, a Windows event id it does not read), which is neither. ``alerts``
    is keyed by ``(detector, severity)``.

    Examples
    --------
    >>> totals = DaemonTotals()
    >>> totals.events["auth"] += 2
    >>> totals.events["auth"]
    2
    """

    events: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[tuple[str, str]] = field(default_factory=Counter)
    late_events: int = 0
    windows_closed: int = 0
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    suppressed: int = 0
    records: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def __setstate__(self, state: dict[str, object]) -> None:
        # Totals of an earlier checkpoint lack the newer counters: they start at zero.
        self.__dict__.update(DaemonTotals().__dict__)
        self.__dict__.update(state)

    def adopt_detector(self, detector: str) -> None:
        """Key alerts counted by severity alone (an earlier checkpoint) under ``detector``.

        >>> totals = DaemonTotals(alerts=Counter({"high": 2}))
        >>> totals.adopt_detector("robust_window")
        >>> dict(totals.alerts)
        {('robust_window', 'high'): 2}
        """
        rekeyed: Counter[tuple[str, str]] = Counter()
        for key, count in self.alerts.items():
            rekeyed[key if isinstance(key, tuple) else (detector, key)] += count
        self.alerts = rekeyed


#: Upper bounds (seconds) of the alert latency histogram's buckets.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LatencyRecorder:
    """A histogram of latencies plus the most recent ones, for exact p50 / p99.

    Parameters
    ----------
    buckets
        Upper bounds of the histogram buckets, ascending (``+Inf`` is implied).
    recent
        How many of the latest observations :meth:`quantiles` is computed over.

    Examples
    --------
    >>> recorder = LatencyRecorder(buckets=(0.1, 1.0))
    >>> for seconds in (0.05, 0.2, 0.3, 2.0):
    ...     recorder.observe(seconds)
    >>> recorder.bucket_counts, recorder.count, round(recorder.total, 2)
    ([1, 3, 4], 4, 2.55)
    >>> recorder.quantiles()
    {'p50': 0.25, 'p99': 1.949}
    """

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS, recent: int = 10_000):
        self.buckets = buckets
        self._hits = [0] * (len(buckets) + 1)
        self.count = 0
        self.total = 0.0
        self._recent: deque[float] = deque(maxlen=recent)

    def observe(self, seconds: float) -> None:
        """Count one latency."""
        self._hits[bisect.bisect_left(self.buckets, seconds)] += 1
        self.count += 1
        self.total += seconds
        self._recent.append(seconds)

    @property
    def bucket_counts(self) -> list[int]:
        """Cumulative counts per bucket, the last one ``+Inf`` (Prometheus' convention)."""
        return list(itertools.accumulate(self._hits))

    def quantiles(self) -> dict[str, float]:
        """p50 and p99 (linear interpolation) of the recent latencies; NaN before any."""
        if not self._recent:
            return {"p50": math.nan, "p99": math.nan}
        ordered = sorted(self._recent)
        return {"p50": _quantile(ordered, 0.5), "p99": _quantile(ordered, 0.99)}


def _quantile(ordered: list[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 6)


@dataclass
class DaemonGauges:
    """Instantaneous values the collector reads at scrape time (set by the daemon).

    ``sources`` maps a source name to its counters (``received``, ``dropped``, ``oversize``,
    ``framing_errors``, ``connections_refused``, ``idle_timeouts``, ``rejected_too_large``,
    ``rejected_busy``, ``rejected_overloaded``, ``rejected_timeout``, ``queue_depth``: those it
    has); ``sinks`` maps a sink label to its type and :meth:`~detector.sinks.AlertSink.stats`;
    ``state_bytes`` maps a part of the state (``features``, ``detectors``) to its estimate.
    """

    entities: int = 0
    evictions: int = 0
    expirations: int = 0
    lag_bytes: dict[str, int] = field(default_factory=dict)
    last_checkpoint: float = field(default_factory=time.time)
    checkpoints: int = 0
    checkpoint_failures: int = 0
    checkpoint_bytes: int = 0
    sources: dict[str, dict[str, int]] = field(default_factory=dict)
    sinks: dict[str, tuple[str, dict[str, int]]] = field(default_factory=dict)
    state_bytes: dict[str, int] = field(default_factory=dict)
    latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    #: Polls read and parsed, not yet handled (the read-ahead of ``PollPipeline``).
    polls_in_flight: int = 0
    #: Entries of the allow-list in force, and its rereads (SIGHUP, file changed).
    allowlist_entries: int = 0
    allowlist_reloads: int = 0
    allowlist_reload_failures: int = 0


#: Source counters exported as ``baseliner_source_<name>_total``.
_SOURCE_COUNTERS = {
    "received": "Messages received by a network source",
    "dropped": "Messages dropped by a network source (queue full)",
    "oversize": "Messages cut at the maximum message size",
    "framing_errors": "Broken frames (connection closed)",
    "connections_refused": "Connections closed at once because max_connections were open",
    "idle_timeouts": "Connections closed after idle_timeout seconds without a byte",
}
#: Sink counters exported as ``baseliner_sink_<name>_total``.
_SINK_COUNTERS = {
    "delivered": "Alerts delivered by a sink",
    "retries": "Delivery attempts repeated after a failure",
    "dead_lettered": "Alerts a sink could not deliver, written to its dead-letter file",
    "duplicates_skipped": "Alerts already in the sink's files (a replay), not written again",
    "rotations": "Size-based rotations of a sink's file",
    "failed": "Alerts a sink could not write (stdout whose reader went away)",
}


class DaemonCollector(Collector):
    """Turns the daemon's totals and gauges into Prometheus metric families.

    Parameters
    ----------
    totals, gauges
        The live objects; read under ``lock`` so a scrape sees a consistent picture.
    lock
        Held by the daemon while it processes a batch of records.

    Examples
    --------
    >>> totals, gauges = DaemonTotals(), DaemonGauges()
    >>> totals.events["logon"] = 3
    >>> registry = CollectorRegistry()
    >>> registry.register(DaemonCollector(totals, gauges, threading.Lock()))
    >>> registry.get_sample_value("baseliner_events_total", {"source": "logon"})
    3
    """

    def __init__(
        self,
        totals: DaemonTotals,
        gauges: DaemonGauges,
        lock: threading.Lock,
        refresh: Callable[[], None] | None = None,
    ) -> None:
        self.totals = totals
        self.gauges = gauges
        self.lock = lock
        self.refresh = refresh

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            if self.refresh is not None:
                self.refresh()
            t, g = self.totals, self.gauges
            events = dict(t.events)
            records, skipped = dict(t.records), dict(t.skipped)
            dead = dict(t.dead_letters)
            alerts = dict(t.alerts)
            scalars = (t.late_events, t.windows_closed, t.suppressed, g.entities, g.evictions)
            expirations = g.expirations
            lag = dict(g.lag_bytes)
            in_flight = g.polls_in_flight
            allowlist = (g.allowlist_entries, g.allowlist_reloads, g.allowlist_reload_failures)
            age = max(0.0, time.time() - g.last_checkpoint)
            checkpoints = (g.checkpoints, g.checkpoint_failures, g.checkpoint_bytes)
            sources = {name: dict(values) for name, values in g.sources.items()}
            sinks = {name: (kind, dict(values)) for name, (kind, values) in g.sinks.items()}
            state = dict(g.state_bytes)
            latency = g.latency
            buckets = [
                (str(bound), count)
                for bound, count in zip(
                    (*latency.buckets, "+Inf"), latency.bucket_counts, strict=True
                )
            ]
            latency_sum = latency.total
            quantiles = latency.quantiles()
        late, windows, suppressed, entities, evictions = scalars
        family = CounterMetricFamily(
            "baseliner_records", "Records (lines, messages) a source handed on", labels=["source"]
        )
        for source, value in sorted(records.items()):
            family.add_metric([source], value)
        yield family
        family = CounterMetricFamily(
            "baseliner_records_skipped",
            "Records the source's parser does not model: neither an event nor a dead letter",
            labels=["source"],
        )
        for source, value in sorted(skipped.items()):
            family.add_metric([source], value)
        yield family
        family = CounterMetricFamily("baseliner_events", "Events parsed", labels=["source"])
        for source, value in sorted(events.items()):
            family.add_metric([source], value)
        yield family
        family = CounterMetricFamily(
            "baseliner_dead_letters",
            "Lines rejected (parse errors, late and future-dated events)",
            labels=["source", "reason"],
        )
        for (source, reason), value in sorted(dead.items()):
            family.add_metric([source, reason], value)
        yield family
        yield CounterMetricFamily(
            "baseliner_late_events", "Events whose window had closed", value=late
        )
        yield CounterMetricFamily("baseliner_windows_closed", "Windows scored", value=windows)
        family = CounterMetricFamily(
            "baseliner_alerts", "Alerts raised", labels=["detector", "severity"]
        )
        for (detector, severity), value in sorted(alerts.items()):
            family.add_metric([detector, severity], value)
        yield family
        yield CounterMetricFamily(
            "baseliner_suppressed", "Alerts muted by the allow-list", value=suppressed
        )
        yield GaugeMetricFamily("baseliner_entities", "Entities with history", value=entities)
        yield CounterMetricFamily(
            "baseliner_evictions", "Entity histories evicted by the cap", value=evictions
        )
        yield CounterMetricFamily(
            "baseliner_expirations",
            "Entity histories forgotten after idle_expiry without events",
            value=expirations,
        )
        yield GaugeMetricFamily(
            "baseliner_checkpoint_age_seconds", "Seconds since the last checkpoint", value=age
        )
        lag_family = GaugeMetricFamily(
            "baseliner_source_lag_bytes", "Bytes written but not yet read", labels=["source"]
        )
        for source, value in sorted(lag.items()):
            lag_family.add_metric([source], value)
        yield lag_family
        yield GaugeMetricFamily(
            "baseliner_allowlist_entries", "Entries of the allow-list in force", value=allowlist[0]
        )
        yield CounterMetricFamily(
            "baseliner_allowlist_reloads",
            "Allow-list rereads put in force (SIGHUP, or the file changed)",
            value=allowlist[1],
        )
        yield CounterMetricFamily(
            "baseliner_allowlist_reload_failures",
            "Allow-list rereads refused (the allow-list in force stayed)",
            value=allowlist[2],
        )
        yield GaugeMetricFamily(
            "baseliner_polls_in_flight",
            "Polls read and parsed but not yet handled (read ahead while windows close)",
            value=in_flight,
        )
        yield from _checkpoint_families(*checkpoints)
        yield from _source_families(sources)
        yield from _sink_families(sinks)
        state_family = GaugeMetricFamily(
            "baseliner_state_bytes", "Estimated bytes of state held", labels=["part"]
        )
        for part, size in sorted(state.items()):
            state_family.add_metric([part], size)
        yield state_family
        histogram = HistogramMetricFamily(
            "baseliner_alert_latency_seconds",
            "From the read of the batch holding the window-closing event to the alert written",
        )
        histogram.add_metric([], buckets, latency_sum)
        yield histogram
        quantile_family = GaugeMetricFamily(
            "baseliner_alert_latency_quantile_seconds",
            "p50 and p99 of the latest alert latencies",
            labels=["quantile"],
        )
        for label, seconds in (("0.5", quantiles["p50"]), ("0.99", quantiles["p99"])):
            if not math.isnan(seconds):
                quantile_family.add_metric([label], seconds)
        yield quantile_family


def _checkpoint_families(written: int, failed: int, size: int) -> Iterator[Metric]:
    yield CounterMetricFamily("baseliner_checkpoints", "Checkpoints written", value=written)
    yield CounterMetricFamily(
        "baseliner_checkpoint_failures", "Checkpoints that failed (logged)", value=failed
    )
    yield GaugeMetricFamily(
        "baseliner_checkpoint_bytes", "Size of the last checkpoint written", value=size
    )


def _source_families(sources: dict[str, dict[str, int]]) -> Iterator[Metric]:
    for key, text in _SOURCE_COUNTERS.items():
        family = CounterMetricFamily(f"baseliner_source_{key}", text, labels=["source"])
        for name, values in sorted(sources.items()):
            if key in values:
                family.add_metric([name], values[key])
        yield family
    family = CounterMetricFamily(
        "baseliner_source_rejected",
        "Requests an HTTP source refused (body too large, queue busy, too many connections, "
        "request deadline passed)",
        labels=["source", "reason"],
    )
    for name, values in sorted(sources.items()):
        for reason in ("too_large", "busy", "overloaded", "timeout"):
            if f"rejected_{reason}" in values:
                family.add_metric([name, reason], values[f"rejected_{reason}"])
    yield family
    gauge = GaugeMetricFamily(
        "baseliner_source_queue_depth",
        "Messages a network source has queued and the daemon not yet read",
        labels=["source"],
    )
    for name, values in sorted(sources.items()):
        if "queue_depth" in values:
            gauge.add_metric([name], values["queue_depth"])
    yield gauge


def _sink_families(sinks: dict[str, tuple[str, dict[str, int]]]) -> Iterator[Metric]:
    for key, text in _SINK_COUNTERS.items():
        family = CounterMetricFamily(f"baseliner_sink_{key}", text, labels=["sink", "type"])
        for name, (kind, values) in sorted(sinks.items()):
            if key in values:
                family.add_metric([name, kind], values[key])
        yield family
    gauge = GaugeMetricFamily(
        "baseliner_sink_queue_depth", "Alerts waiting for delivery", labels=["sink", "type"]
    )
    for name, (kind, values) in sorted(sinks.items()):
        if "queue_depth" in values:
            gauge.add_metric([name, kind], values["queue_depth"])
    yield gauge


#: What a health check returns: healthy or not, and what was checked (JSON-ready).
HealthCheck = Callable[[], "tuple[bool, dict[str, Any]] | bool"]


class _MetricsServer6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def serve_metrics(
    registry: CollectorRegistry, host: str, port: int, health: HealthCheck
) -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/healthz`` on a daemon thread; ``server.shutdown()`` stops it.

    ``host`` may be an IPv6 address, bracketed or not (``[::1]``). ``/healthz`` answers
    200 when ``health()`` says healthy, else 503, with a JSON body: ``status`` (``ok`` or
    ``unhealthy``) and what ``health`` reports (the checks and the problems found).

    Examples
    --------
    >>> import urllib.request
    >>> server = serve_metrics(CollectorRegistry(), "127.0.0.1", 0,
    ...                        lambda: (True, {"checks": {"loop_seconds_ago": 0.1}}))
    >>> url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    >>> urllib.request.urlopen(url, timeout=5).read()
    b'{"status": "ok", "checks": {"loop_seconds_ago": 0.1}}'
    >>> server.shutdown(); server.server_close()
    """
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/metrics":
                body, status, kind = generate_latest(registry), 200, CONTENT_TYPE_LATEST
            elif self.path.split("?")[0] == "/healthz":
                result = health()
                ok, detail = result if isinstance(result, tuple) else (bool(result), {})
                report = {"status": "ok" if ok else "unhealthy", **detail}
                body = json.dumps(report, default=str).encode()
                status, kind = (200 if ok else 503), "application/json"
            else:
                body, status, kind = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server_class = _MetricsServer6 if ":" in host else ThreadingHTTPServer
    server = server_class((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return server
