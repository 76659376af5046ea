"""Prometheus metrics of the daemon and the small HTTP server for ``/metrics`` and ``/healthz``.

The daemon keeps its counters as plain dictionaries (they are checkpointed, so a restart
continues the totals instead of resetting them); :class:`DaemonCollector` exposes them to
prometheus-client at scrape time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass
class DaemonTotals:
    """Running totals of the daemon, checkpointed with its state.

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
    alerts: Counter[str] = field(default_factory=Counter)
    suppressed: int = 0


@dataclass
class DaemonGauges:
    """Instantaneous values the collector reads at scrape time (set by the daemon)."""

    entities: int = 0
    evictions: int = 0
    lag_bytes: dict[str, int] = field(default_factory=dict)
    last_checkpoint: float = field(default_factory=time.time)


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

    def __init__(self, totals: DaemonTotals, gauges: DaemonGauges, lock: threading.Lock) -> None:
        self.totals = totals
        self.gauges = gauges
        self.lock = lock

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            t, g = self.totals, self.gauges
            events = dict(t.events)
            dead = dict(t.dead_letters)
            alerts = dict(t.alerts)
            scalars = (t.late_events, t.windows_closed, t.suppressed, g.entities, g.evictions)
            lag = dict(g.lag_bytes)
            age = max(0.0, time.time() - g.last_checkpoint)
        late, windows, suppressed, entities, evictions = scalars
        family = CounterMetricFamily("baseliner_events", "Events parsed", labels=["source"])
        for source, value in sorted(events.items()):
            family.add_metric([source], value)
        yield family
        family = CounterMetricFamily(
            "baseliner_dead_letters",
            "Lines rejected (parse errors and late events)",
            labels=["source", "reason"],
        )
        for (source, reason), value in sorted(dead.items()):
            family.add_metric([source, reason], value)
        yield family
        yield CounterMetricFamily(
            "baseliner_late_events", "Events whose window had closed", value=late
        )
        yield CounterMetricFamily("baseliner_windows_closed", "Windows scored", value=windows)
        family = CounterMetricFamily("baseliner_alerts", "Alerts raised", labels=["severity"])
        for severity, value in sorted(alerts.items()):
            family.add_metric([severity], value)
        yield family
        yield CounterMetricFamily(
            "baseliner_suppressed", "Alerts muted by the allow-list", value=suppressed
        )
        yield GaugeMetricFamily("baseliner_entities", "Entities with history", value=entities)
        yield CounterMetricFamily(
            "baseliner_evictions", "Entity histories evicted by the cap", value=evictions
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


def serve_metrics(
    registry: CollectorRegistry, host: str, port: int, healthy: Callable[[], bool]
) -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/healthz`` on a daemon thread; ``server.shutdown()`` stops it.

    Examples
    --------
    >>> import urllib.request
    >>> server = serve_metrics(CollectorRegistry(), "127.0.0.1", 0, lambda: True)
    >>> url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    >>> urllib.request.urlopen(url, timeout=5).read()
    b'ok\\n'
    >>> server.shutdown(); server.server_close()
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/metrics":
                body, status, kind = generate_latest(registry), 200, CONTENT_TYPE_LATEST
            elif self.path == "/healthz":
                ok = healthy()
                body = b"ok\n" if ok else b"unhealthy\n"
                status, kind = (200 if ok else 503), "text/plain"
            else:
                body, status, kind = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return server
