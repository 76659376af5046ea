"""Batch evaluation of feature specs over a polars LazyFrame of events (the scan path).

The plan shares work between specs: one ``group_by(entity, window)`` computes every simple
kind (counts, sums, off hours, weekend, max_split); one (entity, window, value) table per
distinct (field, filter, split) serves every distinct / first_seen / rarity / rare_count /
periodicity / max_per_target spec on it; one (entity, window, hour) table per filter serves
unusual_hour and hour_deviation. Internally entities and values are keyed by their 64-bit
polars hash (two different strings sharing a hash is vanishingly unlikely at these
cardinalities, and it makes every group_by, sort and join numeric). Intermediate tables are
proportional to the number of (entity, window, value) cells, not to the number of events.
The definitions implemented here are those of :mod:`features.spec`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

import polars as pl

from features.spec import FeatureSpec, WindowConfig

logger = logging.getLogger(__name__)

ENTITY = "entity"
WINDOW = "window_start"
N_EVENTS = "n_events"

# Internal columns; the double underscore keeps them apart from spec names.
_VALUE = "__value"
_KEY = "__entity_key"
_HOUR = "__hour"
_OFF = "__off_hours"
_WEEKEND = "__weekend"
_CELL = "__cell"
_PAIR = "__pair"

_VALUE_KINDS = frozenset(
    {"distinct", "first_seen", "rarity", "rare_count", "periodicity", "max_per_target"}
)
_HOUR_KINDS = frozenset({"unusual_hour", "hour_deviation"})

_Condition = tuple[str, tuple[str, ...]]
_FilterKey = tuple[_Condition, ...]


def field_expr(name: str, attrs_struct: bool = False) -> pl.Expr:
    """An Event field as an expression; ``attrs.<key>`` reads the JSON text (or the struct).

    Examples
    --------
    >>> frame = pl.DataFrame({"attrs": ['{"size": "3"}']})
    >>> frame.select(field_expr("attrs.size")).item()
    '3'
    """
    if name.startswith("attrs."):
        key = name[len("attrs.") :]
        if attrs_struct:
            return pl.col("attrs").struct.field(key)
        key = key.replace("\\", "\\\\").replace("'", "\\'")
        return pl.col("attrs").str.json_path_match(f"$['{key}']")
    return pl.col(name)


def attrs_keys(specs: Sequence[FeatureSpec]) -> frozenset[str]:
    """The ``attrs`` keys the specs read or filter on (``attrs.<key>`` fields).

    Examples
    --------
    >>> attrs_keys([FeatureSpec(name="n", kind="sum", field="attrs.attachments")])
    frozenset({'attachments'})
    """
    keys: set[str] = set()
    for spec in specs:
        for name in [spec.field, *(key.removesuffix("~") for key in spec.where)]:
            if name is not None and name.startswith("attrs."):
                keys.add(name[len("attrs.") :])
    return frozenset(keys)


def required_columns(specs: Sequence[FeatureSpec], config: WindowConfig) -> frozenset[str]:
    """The event columns :func:`evaluate_batch` reads for these specs (``ts``, the entity...).

    Examples
    --------
    >>> spec = FeatureSpec(name="n", kind="distinct", field="host", where={"action": "logon"})
    >>> sorted(required_columns([spec], WindowConfig()))
    ['action', 'host', 'ts', 'user']
    """
    needed = {"ts", config.entity}
    for spec in specs:
        for name in [spec.field, *(key.removesuffix("~") for key in spec.where)]:
            if name is not None:
                needed.add("attrs" if name.startswith("attrs.") else name)
        if spec.kind == "failure_count":
            needed.add("outcome")
    return frozenset(needed)


def _filter_key(spec: FeatureSpec) -> _FilterKey:
    conditions: list[_Condition] = [
        (key, (value,) if isinstance(value, str) else tuple(value))
        for key, value in spec.where.items()
    ]
    if spec.kind == "failure_count":
        conditions.append(("outcome", ("failure",)))
    return tuple(sorted(conditions))


def mask_expr(key: Iterable[tuple[str, Collection[str]]], attrs_struct: bool = False) -> pl.Expr:
    """Whether a row matches a filter key: every ``(field, allowed values)`` condition holds.

    A field ending in ``~`` holds one case-insensitive regular expression instead of values.
    The batch evaluator and the online evaluator's micro-batches both filter with this.

    Examples
    --------
    >>> frame = pl.DataFrame({"action": ["logon", "http_visit"], "target": [None, "Job.com"]})
    >>> frame.select(mask_expr([("action", ("http_visit",)), ("target~", ("job",))])).to_series()
    shape: (2,)
    Series: 'action' [bool]
    [
        false
        true
    ]
    """
    parts = []
    patterns: list[tuple[pl.Expr, str]] = []
    for name, values in key:
        if name.endswith("~"):
            patterns.append(
                (field_expr(name[:-1], attrs_struct).cast(pl.String), next(iter(values)))
            )
            continue
        column = field_expr(name, attrs_struct).cast(pl.String)
        wanted = sorted(values)
        parts.append(column == wanted[0] if len(wanted) == 1 else column.is_in(wanted))
    if not parts and not patterns:
        return pl.lit(True)
    exact = pl.all_horizontal(parts) if parts else pl.lit(True)
    if patterns:
        # The regular expressions only see the rows the exact conditions keep: a null is
        # not searched, so a pattern over a few file events does not scan every URL host.
        matches = [
            pl.when(exact).then(text).str.contains(f"(?i){pattern}") for text, pattern in patterns
        ]
        exact = pl.all_horizontal([exact, *matches])
    return exact.fill_null(False)


def _split_of(spec: FeatureSpec) -> str:
    return str(spec.param("split", ""))


def _n_values_expr(column: pl.Expr, split: str) -> pl.Expr:
    """Number of values in a field (non-empty stripped parts when split)."""
    text = column.cast(pl.String)
    if not split:
        return (text.is_not_null() & (text != "")).cast(pl.Int64)
    part = pl.element().str.strip_chars()
    return text.str.split(split).list.eval(part.filter(part != "")).list.len().fill_null(0)


@dataclass
class _Plan:
    """Which derived columns the base frame needs, numbered in first-use order."""

    masks: dict[_FilterKey, str] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)
    n_values: dict[tuple[str, str, _FilterKey], str] = field(default_factory=dict)
    value_sources: dict[tuple[str, _FilterKey, str], list[FeatureSpec]] = field(
        default_factory=dict
    )
    hour_sources: dict[_FilterKey, list[FeatureSpec]] = field(default_factory=dict)
    needs_off_hours: bool = False
    needs_weekend: bool = False
    attrs_struct: bool = False

    def mask(self, key: _FilterKey) -> str:
        return self.masks.setdefault(key, f"__mask{len(self.masks)}")


def _make_plan(specs: Sequence[FeatureSpec], attrs_struct: bool = False) -> _Plan:
    plan = _Plan(attrs_struct=attrs_struct)
    for spec in specs:
        key = _filter_key(spec)
        if spec.kind not in _VALUE_KINDS | _HOUR_KINDS:
            plan.mask(key)
        if spec.kind == "sum":
            assert spec.field is not None
            plan.numbers.setdefault(spec.field, f"__number{len(plan.numbers)}")
        elif spec.kind == "max_split":
            assert spec.field is not None
            split_key = (spec.field, _split_of(spec), key)
            plan.n_values.setdefault(split_key, f"__n_values{len(plan.n_values)}")
        elif spec.kind == "off_hours":
            plan.needs_off_hours = True
        elif spec.kind == "weekend":
            plan.needs_weekend = True
        elif spec.kind in _VALUE_KINDS:
            assert spec.field is not None
            source = (spec.field, key, _split_of(spec))
            plan.value_sources.setdefault(source, []).append(spec)
        elif spec.kind in _HOUR_KINDS:
            plan.hour_sources.setdefault(key, []).append(spec)
    return plan


def _base_frame(events: pl.LazyFrame, plan: _Plan, config: WindowConfig) -> pl.LazyFrame:
    """Events reduced to the columns the per-window aggregates need, keyed by (entity, window).

    Not cached: the value and hour tables read the events again through :func:`_matching`,
    each only its own rows, so no copy of the event-level frame is ever held.
    """
    columns: list[pl.Expr] = [
        pl.col(config.entity).alias(ENTITY),
        pl.col(config.entity).hash().alias(_KEY),
        pl.col("ts").dt.truncate(config.window).alias(WINDOW),
        pl.col("ts"),
    ]
    in_struct = plan.attrs_struct
    columns += [mask_expr(key, in_struct).alias(name) for key, name in plan.masks.items()]
    columns += [
        field_expr(f, in_struct).cast(pl.Float64, strict=False).fill_null(0.0).alias(name)
        for f, name in plan.numbers.items()
    ]
    # Split and counted only where the spec's filter holds (null elsewhere is skipped):
    # splitting every event's field would cost more than all the other columns together.
    columns += [
        _n_values_expr(
            pl.when(mask_expr(key, in_struct)).then(field_expr(f, in_struct)), split
        ).alias(name)
        for (f, split, key), name in plan.n_values.items()
    ]
    hour = pl.col("ts").dt.hour().cast(pl.Int32)
    weekend = pl.col("ts").dt.weekday().is_in(list(config.weekend_days))
    if plan.needs_weekend:
        columns.append(weekend.alias(_WEEKEND))
    if plan.needs_off_hours:
        start, end = config.work_hours
        in_hours = (
            (hour >= start) & (hour < end) if start <= end else (hour >= start) | (hour < end)
        )
        columns.append((weekend | ~in_hours).alias(_OFF))
    return events.filter(pl.col(config.entity).is_not_null()).select(columns)


def _matching(
    events: pl.LazyFrame,
    plan: _Plan,
    config: WindowConfig,
    key: _FilterKey,
    columns: Sequence[pl.Expr],
) -> pl.LazyFrame:
    """The events matching one filter (entity set), keyed, with just ``columns`` besides."""
    matches = pl.col(config.entity).is_not_null() & mask_expr(key, plan.attrs_struct)
    return events.filter(matches).select(
        pl.col(config.entity).hash().alias(_KEY),
        pl.col("ts").dt.truncate(config.window).alias(WINDOW),
        *columns,
    )


def _simple_agg(spec: FeatureSpec, plan: _Plan) -> pl.Expr:
    mask = pl.col(plan.masks[_filter_key(spec)])
    if spec.kind in ("count", "failure_count"):
        expr = mask.sum()
    elif spec.kind == "off_hours":
        expr = (mask & pl.col(_OFF)).sum()
    elif spec.kind == "weekend":
        expr = (mask & pl.col(_WEEKEND)).sum()
    elif spec.kind == "sum":
        assert spec.field is not None
        expr = pl.when(mask).then(pl.col(plan.numbers[spec.field])).otherwise(0.0).sum()
    elif spec.kind == "max_split":
        assert spec.field is not None
        n_values = pl.col(plan.n_values[(spec.field, _split_of(spec), _filter_key(spec))])
        expr = pl.when(mask).then(n_values).otherwise(0).max()
    else:  # pragma: no cover - _make_plan routes every other kind elsewhere
        raise AssertionError(spec.kind)
    return expr.cast(pl.Float64).alias(spec.name)


def _gap_stats(values: pl.LazyFrame, busy: pl.LazyFrame) -> pl.LazyFrame:
    """Mean and population std (microseconds) of inter-arrival times per busy cell.

    ``busy`` holds the ``__cell`` hashes of the cells with enough events for some periodicity
    spec (a few percent of the cells of a proxy log): their events are picked out of
    ``values`` with a semi join on that one key, then sorted within each cell, which needs no
    global sort.
    """
    gap = pl.col("ts").sort().diff().dt.total_microseconds()
    return (
        values.with_columns(pl.struct(_KEY, WINDOW, _VALUE).hash().alias(_CELL))
        .join(busy, on=_CELL, how="semi")
        .group_by(_CELL)
        .agg(gap.mean().alias("__gap_mean"), gap.std(ddof=0).alias("__gap_sd"))
    )


def _source_values(
    events: pl.LazyFrame,
    plan: _Plan,
    config: WindowConfig,
    source: tuple[str, _FilterKey, str],
    with_ts: bool,
) -> pl.LazyFrame:
    """The (entity, window, value hash[, ts]) rows of one value source: one per value touched."""
    field_name, key, split = source
    value = field_expr(field_name, plan.attrs_struct).cast(pl.String).alias(_VALUE)
    values = _matching(events, plan, config, key, [value, pl.col("ts")] if with_ts else [value])
    if split:
        values = (
            values.with_columns(pl.col(_VALUE).str.split(split))
            .explode(_VALUE)
            .with_columns(pl.col(_VALUE).str.strip_chars())
        )
    values = values.filter(pl.col(_VALUE).is_not_null() & (pl.col(_VALUE) != ""))
    return values.with_columns(pl.col(_VALUE).hash())


def _value_features(
    events: pl.LazyFrame,
    plan: _Plan,
    config: WindowConfig,
    source: tuple[str, _FilterKey, str],
    specs: Sequence[FeatureSpec],
) -> pl.LazyFrame:
    """Per (entity, window) columns of the specs that read the values of one field.

    Everything is derived from the cell table, one row per (entity, window, value) with its
    event count, which is a few times smaller than the events: the events are read again
    only for the cells a periodicity spec needs. History is kept at the coarsest level that
    answers it: first touches per (entity, value) pair, and the entities that had a value
    before a window per (value, window). Pairs, (value, window)s and cells are joined and
    grouped on one 64-bit hash of their columns (single-key hashing is several times
    cheaper; a collision among a few million keys is as unlikely as among the strings).
    """
    kinds = {spec.kind for spec in specs}
    with_gaps = "periodicity" in kinds
    with_rarity = bool(kinds & {"rarity", "rare_count"})
    cells = (
        _source_values(events, plan, config, source, with_ts=False)
        .group_by(_KEY, WINDOW, _VALUE)
        .agg(pl.len().alias("__n"))
    )
    if "first_seen" in kinds or with_rarity:
        # A value is new in the window of the entity's first touch of it.
        first = pl.col(WINDOW).min().over(pl.struct(_KEY, _VALUE).hash())
        cells = cells.with_columns((pl.col(WINDOW) == first).alias("__is_new"))
    cells = cells.cache()
    if with_rarity:
        # k_before: entities (the current one included) whose first touch of the value came
        # in an earlier window: per value, the running count of first touches over its
        # windows in order, less the window's own. One row per (value, window), far fewer
        # than cells (a value is shared by many entities).
        k_before = (
            cells.group_by(pl.struct(_VALUE, WINDOW).hash().alias(_PAIR))
            .agg(
                pl.col(_VALUE).first(),
                pl.col(WINDOW).first(),
                pl.col("__is_new").sum().cast(pl.Int64).alias("__touches"),
            )
            .sort(_VALUE, WINDOW)
            .select(
                _PAIR,
                (pl.col("__touches").cum_sum().over(_VALUE) - pl.col("__touches")).alias(
                    "__k_before"
                ),
            )
        )
        # N: entities with any value of this field (under this filter) in earlier windows.
        joiners = (
            cells.group_by(_KEY)
            .agg(pl.col(WINDOW).min())
            .group_by(WINDOW)
            .agg(pl.len().cast(pl.Int64).alias("__joiners"))
        )
        population = (
            cells.select(WINDOW)
            .unique()
            .join(joiners, on=WINDOW, how="left")
            .with_columns(pl.col("__joiners").fill_null(0))
            .sort(WINDOW)
            .select(
                WINDOW,
                (pl.col("__joiners").cum_sum() - pl.col("__joiners")).alias("__population"),
            )
        )
        # k: OTHER entities with the value before; the entity itself is among k_before
        # exactly when its first touch came in an earlier window.
        cells = (
            cells.with_columns(pl.struct(_VALUE, WINDOW).hash().alias(_PAIR))
            .join(k_before, on=_PAIR, how="left")
            .join(population, on=WINDOW, how="left")
            .with_columns(
                (pl.col("__k_before") - (~pl.col("__is_new")).cast(pl.Int64)).alias("__k")
            )
        )
    if with_gaps:
        min_events = min(
            int(spec.number("min_events")) for spec in specs if spec.kind == "periodicity"
        )
        cells = cells.with_columns(pl.struct(_KEY, WINDOW, _VALUE).hash().alias(_CELL))
        busy = cells.filter(pl.col("__n") >= max(min_events, 2)).select(_CELL)
        values = _source_values(events, plan, config, source, with_ts=True)
        cells = cells.join(_gap_stats(values, busy), on=_CELL, how="left")

    aggs: list[pl.Expr] = []
    for spec in specs:
        if spec.kind == "distinct":
            expr = pl.len()
        elif spec.kind == "first_seen":
            expr = pl.col("__is_new").sum()
        elif spec.kind == "max_per_target":
            expr = pl.col("__n").max()
        elif spec.kind == "rarity":
            bits = (pl.col("__population") + 1).cast(pl.Float64).log(2) - (pl.col("__k") + 1).cast(
                pl.Float64
            ).log(2)
            expr = bits.mean() if spec.param("agg") == "mean" else bits.max()
        elif spec.kind == "rare_count":
            expr = (pl.col("__k") <= spec.number("max_entities")).sum()
        elif spec.kind == "periodicity":
            mean, sd = pl.col("__gap_mean"), pl.col("__gap_sd")
            regularity = (1.0 - sd / mean).clip(lower_bound=0.0)
            qualifies = (pl.col("__n") >= int(spec.number("min_events"))) & (mean > 0)
            expr = pl.when(qualifies).then(regularity).otherwise(0.0).max()
        else:  # pragma: no cover
            raise AssertionError(spec.kind)
        aggs.append(expr.cast(pl.Float64).alias(spec.name))
    return cells.group_by(_KEY, WINDOW).agg(aggs)


def _hour_features(
    events: pl.LazyFrame,
    plan: _Plan,
    config: WindowConfig,
    key: _FilterKey,
    specs: Sequence[FeatureSpec],
) -> pl.LazyFrame:
    """Per (entity, window) columns of the specs comparing event hours with own history."""
    hour = pl.col("ts").dt.hour().cast(pl.Int32).alias(_HOUR)
    hours = (
        _matching(events, plan, config, key, [hour])
        .group_by(_KEY, WINDOW, _HOUR)
        .agg(pl.len().cast(pl.Int64).alias("__c"))
        .sort(_KEY, _HOUR, WINDOW)
        .with_columns((pl.col("__c").cum_sum().over(_KEY, _HOUR) - pl.col("__c")).alias("__h"))
        .cache()
    )
    angle = pl.col(_HOUR).cast(pl.Float64) * (2.0 * math.pi / 24.0)
    totals = (
        hours.group_by(_KEY, WINDOW)
        .agg(
            pl.col("__c").sum().alias("__t"),
            (pl.col("__c") * angle.sin()).sum().alias("__sin"),
            (pl.col("__c") * angle.cos()).sum().alias("__cos"),
        )
        .sort(_KEY, WINDOW)
        .with_columns(
            (pl.col(c).cum_sum().over(_KEY) - pl.col(c)).alias(c + "_before")
            for c in ("__t", "__sin", "__cos")
        )
        .select(_KEY, WINDOW, "__t_before", "__sin_before", "__cos_before")
    )
    hours = hours.join(totals, on=[_KEY, WINDOW], how="left")
    history = pl.col("__t_before")
    aggs: list[pl.Expr] = []
    for spec in specs:
        min_events = int(spec.number("min_events"))
        if spec.kind == "unusual_hour":
            min_share = spec.number("min_share")
            unusual = (history >= min_events) & (pl.col("__h") < min_share * history)
            expr = pl.when(unusual).then(pl.col("__c")).otherwise(0).sum()
        elif spec.kind == "hour_deviation":
            s, c = pl.col("__sin_before"), pl.col("__cos_before")
            mean_hour = pl.arctan2(s, c) * (24.0 / (2.0 * math.pi))
            gap = (pl.col(_HOUR).cast(pl.Float64) - mean_hour).abs() % 24.0
            distance = pl.min_horizontal(gap, 24.0 - gap)
            trusted = (history >= min_events) & ((s * s + c * c).sqrt() > 1e-9)
            weighted = pl.when(trusted).then(pl.col("__c") * distance).otherwise(0.0)
            expr = weighted.sum() / pl.col("__c").sum()
        else:  # pragma: no cover
            raise AssertionError(spec.kind)
        aggs.append(expr.cast(pl.Float64).alias(spec.name))
    return hours.group_by(_KEY, WINDOW).agg(aggs)


def evaluate_batch(
    specs: Sequence[FeatureSpec],
    events: pl.LazyFrame,
    config: WindowConfig = WindowConfig(),  # noqa: B008 - frozen, so a shared default is safe
) -> pl.LazyFrame:
    """Evaluate ``specs`` over ``events``: one row per (entity, window) with any event.

    Parameters
    ----------
    specs
        The features, with unique names; definitions in :mod:`features.spec`.
    events
        Events with the columns of ``streams.event.POLARS_EVENT_SCHEMA`` (only the columns
        the specs read are required: :func:`required_columns`). ``attrs`` may be the JSON
        text of the schema or a struct holding at least the keys of :func:`attrs_keys`
        (``streams.batch.scan_events(..., attrs_keys=...)``), which is much faster to read.
    config
        Entity field, window length and the organisation's calendar.

    Returns
    -------
    pl.LazyFrame
        Columns ``entity`` (String), ``window_start`` (Datetime us UTC), ``n_events`` (Int64,
        all events of the entity in the window), then one Float64 column per spec in spec
        order. Rows of events with a null entity are dropped; sorted by entity, window_start.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> from streams.event import POLARS_EVENT_SCHEMA
    >>> events = pl.LazyFrame(
    ...     {"ts": [datetime(2024, 1, 1, 9, tzinfo=UTC), datetime(2024, 1, 1, 23, tzinfo=UTC)],
    ...      "source": ["x", "x"], "action": ["logon", "logon"], "user": ["ann", "ann"],
    ...      "host": ["pc1", "pc2"], "target": [None, None], "bytes": [None, None],
    ...      "outcome": [None, None], "attrs": [None, None]},
    ...     schema=POLARS_EVENT_SCHEMA)
    >>> specs = [FeatureSpec(name="logons", kind="count", where={"action": "logon"}),
    ...          FeatureSpec(name="off", kind="off_hours", where={"action": "logon"}),
    ...          FeatureSpec(name="hosts", kind="distinct", field="host")]
    >>> evaluate_batch(specs, events).collect().row(0)[2:]
    (2, 2.0, 1.0, 2.0)
    """
    names = [spec.name for spec in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate feature names: {duplicates}")
    schema = events.collect_schema()
    needed = required_columns(specs, config)
    missing = sorted(needed - set(schema.names()))
    plan = _make_plan(specs, "attrs" in needed and isinstance(schema.get("attrs"), pl.Struct))
    if missing:
        raise ValueError(f"events lack the columns {missing} that the feature specs read")

    base = _base_frame(events, plan, config)
    simple = [_simple_agg(s, plan) for s in specs if s.kind not in _VALUE_KINDS | _HOUR_KINDS]
    table = base.group_by(_KEY, WINDOW).agg(
        pl.col(ENTITY).first(), pl.len().cast(pl.Int64).alias(N_EVENTS), *simple
    )
    for source, source_specs in plan.value_sources.items():
        derived = _value_features(events, plan, config, source, source_specs)
        table = table.join(derived, on=[_KEY, WINDOW], how="left")
    for key, key_specs in plan.hour_sources.items():
        derived = _hour_features(events, plan, config, key, key_specs)
        table = table.join(derived, on=[_KEY, WINDOW], how="left")

    if any(spec.kind == "first_seen" for spec in specs):
        table = table.cache()
        first_windows = table.group_by(_KEY).agg(pl.col(WINDOW).min().alias("__entity_first"))
        table = table.join(first_windows, on=_KEY, how="left")
    entity_first_window = pl.col(WINDOW) == pl.col("__entity_first")
    outputs: list[pl.Expr] = []
    for spec in specs:
        value = pl.col(spec.name).fill_null(0.0)
        if spec.kind == "first_seen":
            # Nothing is new in the entity's first window: it has no history yet.
            value = pl.when(entity_first_window).then(0.0).otherwise(value)
        outputs.append(value.cast(pl.Float64).alias(spec.name))
    logger.debug(
        "evaluate_batch: %d specs, %d value tables, %d hour tables",
        len(specs),
        len(plan.value_sources),
        len(plan.hour_sources),
    )
    return table.select(
        pl.col(ENTITY).cast(pl.String), pl.col(WINDOW), pl.col(N_EVENTS), *outputs
    ).sort(ENTITY, WINDOW)


def spec_schema_hash(specs: Sequence[FeatureSpec], config: WindowConfig | None = None) -> str:
    """A stable hex digest of what determines the feature values (for model envelopes).

    Covers each spec's name, kind, field, filters, params (defaults filled in) and direction,
    in order, and the window config when given; prose (doc, explain, technique) is left out
    so rewording an alert does not invalidate stored models.

    Examples
    --------
    >>> a = FeatureSpec(name="logons", kind="count", where={"action": "logon"})
    >>> b = FeatureSpec(name="logons", kind="count", where={"action": "logoff"})
    >>> spec_schema_hash([a]) == spec_schema_hash([a])
    True
    >>> spec_schema_hash([a]) == spec_schema_hash([b])
    False
    """
    payload: dict[str, object] = {
        "version": 1,
        "specs": [spec.definition() for spec in specs],
    }
    if config is not None:
        payload["config"] = config.definition()
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
