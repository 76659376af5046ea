"""Tiny hand-built event frames for the feature tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl
from polars.testing import assert_frame_equal

from features import FeatureSpec, WindowConfig, evaluate_batch
from streams.event import POLARS_EVENT_SCHEMA


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """2024-01-<day> <hour>:<minute>:<second> UTC; 2024-01-01 is a Monday."""
    return datetime(2024, 1, day, hour, minute, second, tzinfo=UTC)


def ev(
    ts: datetime,
    action: str,
    user: str | None = "a",
    *,
    host: str | None = None,
    target: str | None = None,
    nbytes: int | None = None,
    outcome: str | None = None,
    attrs: str | None = None,
) -> dict[str, object]:
    return {
        "ts": ts,
        "source": "test",
        "action": action,
        "user": user,
        "host": host,
        "target": target,
        "bytes": nbytes,
        "outcome": outcome,
        "attrs": attrs,
    }


def frame(rows: list[dict[str, object]]) -> pl.LazyFrame:
    return pl.DataFrame(rows, schema=POLARS_EVENT_SCHEMA).lazy()


def table(
    rows: list[dict[str, object]], specs: Sequence[FeatureSpec], config: WindowConfig | None = None
) -> dict[tuple[str, datetime], dict[str, float]]:
    """evaluate_batch as {(entity, window_start): {feature: value}}, checked on both engines."""
    lazy = evaluate_batch(specs, frame(rows), config or WindowConfig())
    out = lazy.collect(engine="in-memory")
    assert_frame_equal(out, lazy.collect(engine="streaming"))
    names = [s.name for s in specs]
    return {
        (r["entity"], r["window_start"]): {n: r[n] for n in ["n_events", *names]}
        for r in out.iter_rows(named=True)
    }


def feature(
    rows: list[dict[str, object]], spec: FeatureSpec, config: WindowConfig | None = None
) -> dict[tuple[str, int], float]:
    """One feature as {(entity, day of month or hour index): value}."""
    result = {}
    window = (config or WindowConfig()).window
    for (entity, start), values in table(rows, [spec], config).items():
        slot = start.day if window == "1d" else start.day * 100 + start.hour
        result[(entity, slot)] = values[spec.name]
    return result
