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

The value and hour tables can also take history carried from earlier time slices
(:class:`features.sliced.SlicedFeatures`): rows of a window before every real window that
count as history and are never output, so slice-by-slice evaluation runs this same code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
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

# Columns of carried history (features.sliced): whether the cell's (entity, value) pair was
# seen before the slice, how many entities had the value before the slice, whether the
# entity had any value before the slice.
SEEN = "__seen"
K_BEFORE_SLICE = "__k_hist"
IN_POPULATION = "__in_pop"

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


def narrowed_columns(specs: Sequence[FeatureSpec], config: WindowConfig) -> list[str | pl.Expr]:
    """The :func:`required_columns` (sorted) as a reader that keeps events for these specs
    needs them: ``attrs`` (a struct of the :func:`attrs_keys`) holds each key only on the
    rows where some spec that reads the key applies (its filter holds), null elsewhere.

    A spec reads a field only on the rows its filter keeps (a pattern included), so
    :func:`evaluate_batch` gives the same values over the narrowed events; a long text read
    by one narrow spec (a proxy log's URL, searched by a pattern over downloads) is then not
    carried for every event. A key that some spec reads without a filter is kept whole.

    Examples
    --------
    >>> spec = FeatureSpec(name="tools", kind="count",
    ...                    where={"action": "http_download", "attrs.url~": "tool"})
    >>> columns = narrowed_columns([spec], WindowConfig())
    >>> events = pl.DataFrame({"ts": [None, None], "user": ["a", "b"],
    ...     "action": ["http_visit", "http_download"],
    ...     "attrs": [{"url": "a.com/tool"}, {"url": "b.com/tool"}]})
    >>> events.select(columns).get_column("attrs").struct.field("url").to_list()
    [None, 'b.com/tool']
    """
    keys = attrs_keys(specs)
    readers: dict[str, list[_FilterKey]] = {key: [] for key in keys}
    for spec in specs:
        for name in [spec.field, *(key.removesuffix("~") for key in spec.where)]:
            if name is not None and name.startswith("attrs."):
                readers[name[len("attrs.") :]].append(_filter_key(spec))
    fields: list[pl.Expr] = []
    for key in sorted(keys):
        value = pl.col("attrs").struct.field(key)
        filters = list(dict.fromkeys(readers[key]))
        # Unless a spec reads the key on every row (an empty filter key).
        if all(filters):
            applies = pl.any_horizontal([mask_expr(f, attrs_struct=True) for f in filters])
            value = pl.when(applies).then(value)
        fields.append(value.alias(key))
    return [
        pl.struct(fields).alias("attrs") if name == "attrs" else name
        for name in sorted(required_columns(specs, config))
    ]


def _filter_key(spec: FeatureSpec) -> _FilterKey:
    conditions: list[_Condition] = [
        (key, (value,) if isinstance(value, str) else tuple(value))
        for key, value in spec.where.items()
    ]
    if spec.kind == "failure_count":
        conditions.append(("outcome", ("failure",)))
    return tuple(sorted(conditions))


#: Up to this many allowed values, a filter compares them one by one rather than ``is_in``.
_FEW_VALUES: Final = 4


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
    conditions: list[tuple[pl.Expr, list[str]]] = []
    patterns: list[tuple[pl.Expr, str]] = []
    for name, values in key:
        if name.endswith("~"):
            patterns.append(
                (field_expr(name[:-1], attrs_struct).cast(pl.String), next(iter(values)))
            )
            continue
        conditions.append((field_expr(name, attrs_struct).cast(pl.String), sorted(values)))
    if not conditions and not patterns:
        return pl.lit(True)
    # A few values are compared one by one: ``is_in`` over a short list of strings costs
    # about twice as much (the actions of the file or the web events, on every event).
    parts = [
        column == wanted[0]
        if len(wanted) == 1
        else pl.any_horizontal(column == value for value in wanted)
        if len(wanted) <= _FEW_VALUES
        else column.is_in(wanted)
        for column, wanted in conditions
    ]
    # A pattern is searched on every row's text: masking the rows the exact conditions drop
    # (``when(exact).then(text)``) saves nothing, since polars (2.1) still runs the regex on
    # the masked rows' data, and costs the mask. A null (no text) leaves the conjunction
    # false or null, counted false.
    parts.extend(text.str.contains(f"(?i){pattern}") for text, pattern in patterns)
    return pl.all_horizontal(parts).fill_null(False)


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
    # ``ts`` is Datetime("us", "UTC"): its hour is integer arithmetic on the microseconds.
    ts_utc_micros: bool = False
    # Carried history (features.sliced): the events carry their entity key in this column,
    # and the values of sources with history are keyed by this stable hash.
    key_column: str | None = None
    stable_hash: Callable[[pl.Expr], pl.Expr] | None = None
    # The caller has dropped the events without an entity already (features.sliced): the
    # tables then skip that filter, which would copy every column they read.
    entity_not_null: bool = False

    def mask(self, key: _FilterKey) -> str:
        return self.masks.setdefault(key, f"__mask{len(self.masks)}")

    def entity_key(self, entity: str) -> pl.Expr:
        if self.key_column is not None:
            return pl.col(self.key_column)
        return pl.col(entity).hash()


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


def _hour_of_day(plan: _Plan) -> pl.Expr:
    """The hour (0-23, Int32) of ``ts``, as ``dt.hour`` gives it.

    On UTC microseconds (the event schema) by floor division, a few times cheaper than
    ``dt.hour``, which converts every timestamp to a calendar date and time first.
    """
    if not plan.ts_utc_micros:
        return pl.col("ts").dt.hour().cast(pl.Int32)
    hours = pl.col("ts").cast(pl.Int64) // 3_600_000_000
    return (hours - (hours // 24) * 24).cast(pl.Int32)


def _base_frame(
    events: pl.LazyFrame, plan: _Plan, config: WindowConfig, without_entity: bool = False
) -> pl.LazyFrame:
    """Events reduced to the columns the per-window aggregates need, keyed by (entity, window).

    Not cached: the value and hour tables read the events again through :func:`_matching`,
    each only its own rows, so no copy of the event-level frame is ever held.
    ``without_entity``: leave the entity's name out (the caller knows the names by key).
    """
    columns: list[pl.Expr] = [
        *([] if without_entity else [pl.col(config.entity).alias(ENTITY)]),
        plan.entity_key(config.entity).alias(_KEY),
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
    hour = _hour_of_day(plan)
    weekend = pl.col("ts").dt.weekday().is_in(list(config.weekend_days))
    if plan.needs_weekend:
        columns.append(weekend.alias(_WEEKEND))
    if plan.needs_off_hours:
        start, end = config.work_hours
        in_hours = (
            (hour >= start) & (hour < end) if start <= end else (hour >= start) | (hour < end)
        )
        columns.append((weekend | ~in_hours).alias(_OFF))
    if plan.entity_not_null:
        return events.select(columns)
    return events.filter(pl.col(config.entity).is_not_null()).select(columns)


def _matching(
    events: pl.LazyFrame,
    plan: _Plan,
    config: WindowConfig,
    key: _FilterKey,
    columns: Sequence[pl.Expr],
) -> pl.LazyFrame:
    """The events matching one filter (entity set), keyed, with just ``columns`` besides."""
    matches = mask_expr(key, plan.attrs_struct)
    if not plan.entity_not_null:
        matches = pl.col(config.entity).is_not_null() & matches
    return events.filter(matches).select(
        plan.entity_key(config.entity).alias(_KEY),
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
    ``values`` with a semi join on that one key. The gaps come from a sort by (cell, time)
    and one ``diff`` over it, null at each cell's first event: sorting and differencing
    within each group instead evaluates the expression once per cell (5x the CPU over a
    proxy log's tens of thousands of busy cells). Each cell's gaps, in time order, are then
    reduced as one list each (``list.mean``, ``list.std``), a series reduction per cell as
    before: bit-identical to the per-group expression in the tests and over 180 days of a
    1,000-user organisation. (A grouped ``std`` over the plain column is not: its kernel
    depends on the groups' layout, and a slice and the whole range differed by an ulp.)
    """
    gap = pl.col("ts").diff().dt.total_microseconds()
    cell_start = (pl.col(_CELL) != pl.col(_CELL).shift(1)).fill_null(True)
    return (
        values.with_columns(pl.struct(_KEY, WINDOW, _VALUE).hash().alias(_CELL))
        .join(busy, on=_CELL, how="semi")
        # Two stable sorts of one key each, times then cells: the (cell, time) order of one
        # sort on both keys (rows equal in both are alike here) at about half its cost.
        .sort("ts", maintain_order=True)
        .sort(_CELL, maintain_order=True)
        .with_columns(pl.when(cell_start).then(None).otherwise(gap).alias("__gap"))
        .group_by(_CELL)
        .agg(pl.col("__gap"))
        .select(
            _CELL,
            pl.col("__gap").list.mean().alias("__gap_mean"),
            pl.col("__gap").list.std(ddof=0).alias("__gap_sd"),
        )
    )


def _cell_key() -> pl.Expr:
    """The one 64-bit key of a cell (entity, window, value) that :func:`_gap_stats` joins on."""
    return pl.struct(_KEY, WINDOW, _VALUE).hash().alias(_CELL)


def _busy_cells(cells: pl.LazyFrame, specs: Sequence[FeatureSpec]) -> pl.LazyFrame:
    """The ``__cell`` keys of the cells with enough events for some periodicity spec.

    ``cells``: a value source's cell table (entity, window, value, event count ``__n``).
    """
    min_events = min(int(spec.number("min_events")) for spec in specs if spec.kind == "periodicity")
    return cells.filter(pl.col("__n") >= max(min_events, 2)).select(_cell_key())


def _source_values(
    events: pl.LazyFrame,
    plan: _Plan,
    config: WindowConfig,
    source: tuple[str, _FilterKey, str],
    with_ts: bool,
    stable: bool = False,
) -> pl.LazyFrame:
    """The (entity, window, value hash[, ts]) rows of one value source: one per value touched.

    ``stable``: hash the values with ``plan.stable_hash`` (carried history outlives the
    process; polars' own hash does not promise that) instead of polars' hash.
    """
    values = _source_strings(events, plan, config, source, with_ts)
    if stable and plan.stable_hash is not None:
        return values.with_columns(plan.stable_hash(pl.col(_VALUE)))
    return values.with_columns(pl.col(_VALUE).hash())


def _source_strings(
    events: pl.LazyFrame,
    plan: _Plan,
    config: WindowConfig,
    source: tuple[str, _FilterKey, str],
    with_ts: bool,
) -> pl.LazyFrame:
    """:func:`_source_values` with the values still as text (non-empty, not yet hashed)."""
    field_name, key, split = source
    value = field_expr(field_name, plan.attrs_struct).cast(pl.String).alias(_VALUE)
    values = _matching(events, plan, config, key, [value, pl.col("ts")] if with_ts else [value])
    if split:
        values = (
            values.with_columns(pl.col(_VALUE).str.split(split))
            .explode(_VALUE)
            .with_columns(pl.col(_VALUE).str.strip_chars())
        )
    return values.filter(pl.col(_VALUE).is_not_null() & (pl.col(_VALUE) != ""))


def _value_cells(
    events: pl.LazyFrame,
    plan: _Plan,
    config: WindowConfig,
    source: tuple[str, _FilterKey, str],
    stable: bool = False,
) -> pl.LazyFrame:
    """The cell table of one value source: (entity, window, value hash, event count)."""
    return (
        _source_values(events, plan, config, source, with_ts=False, stable=stable)
        .group_by(_KEY, WINDOW, _VALUE)
        .agg(pl.len().alias("__n"))
    )


def _value_features(
    events: pl.LazyFrame,
    plan: _Plan,
    config: WindowConfig,
    source: tuple[str, _FilterKey, str],
    specs: Sequence[FeatureSpec],
    cells: pl.LazyFrame | None = None,
    population_before: int | None = None,
    stable: bool = False,
    single_window: bool = False,
    values: pl.LazyFrame | None = None,
    gaps: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Per (entity, window) columns of the specs that read the values of one field.

    ``cells`` (default: :func:`_value_cells` of the events) may carry history from earlier
    slices (``population_before`` is then the number of entities with any value before the
    slice): columns :data:`SEEN`, :data:`K_BEFORE_SLICE` and :data:`IN_POPULATION` count it
    as if it came in a window before every window of the events. ``stable``: the values are
    (to be) keyed by ``plan.stable_hash`` (see :func:`_source_values`).

    Everything is derived from the cell table, one row per (entity, window, value) with its
    event count, which is a few times smaller than the events: the events are read again
    only for the cells a periodicity spec needs. History is kept at the coarsest level that
    answers it: first touches per (entity, value) pair, and the entities that had a value
    before a window per (value, window). Pairs, (value, window)s and cells are joined and
    grouped on one 64-bit hash of their columns (single-key hashing is several times
    cheaper; a collision among a few million keys is as unlikely as among the strings).

    ``single_window``: the events (and carried ``cells``) hold one window only, so the
    history before it is the carried history alone and no window functions are needed; the
    table is then keyed by the entity alone. ``values``: the source's rows with their times
    (:func:`_source_values` ``with_ts``, keyed as the cells are), when the caller has them
    already: the cells (by default) and the periodicity gaps are then read from them
    instead of from the events. ``gaps``: the periodicity gaps of the cells, when the caller
    has computed them already (:func:`_gap_stats` of the values and :func:`_busy_cells`).
    """
    kinds = {spec.kind for spec in specs}
    with_gaps = "periodicity" in kinds
    with_rarity = bool(kinds & {"rarity", "rare_count"})
    carried = population_before is not None
    if cells is None and values is not None:
        cells = values.group_by(_KEY, WINDOW, _VALUE).agg(pl.len().alias("__n"))
    elif cells is None:
        cells = _value_cells(events, plan, config, source, stable)
    if carried and single_window:
        assert population_before is not None
        # One window: a pair is new unless carried, k counts the carried entities with the
        # value but the entity itself, and N is the carried population.
        if "first_seen" in kinds or with_rarity:
            cells = cells.with_columns((~pl.col(SEEN)).alias("__is_new"))
        if with_rarity:
            cells = cells.with_columns(
                pl.lit(population_before, dtype=pl.Int64).alias("__population"),
                (pl.col(K_BEFORE_SLICE) - pl.col(SEEN).cast(pl.Int64)).alias("__k"),
            )
    elif "first_seen" in kinds or with_rarity:
        # A value is new in the window of the entity's first touch of it.
        first = pl.col(WINDOW).min().over(pl.struct(_KEY, _VALUE).hash())
        is_new = pl.col(WINDOW) == first
        if carried:
            is_new = is_new & ~pl.col(SEEN)
        cells = cells.with_columns(is_new.alias("__is_new"))
    if not (carried and single_window):
        cells = cells.cache()
    if with_rarity and not (carried and single_window):
        # k_before: entities (the current one included) whose first touch of the value came
        # in an earlier window: per value, the running count of first touches over its
        # windows in order, less the window's own. One row per (value, window), far fewer
        # than cells (a value is shared by many entities).
        touches = pl.col("__touches")
        k_before_expr = touches.cum_sum().over(_VALUE) - touches
        if carried:
            k_before_expr = k_before_expr + pl.col(K_BEFORE_SLICE)
        k_before = (
            cells.group_by(pl.struct(_VALUE, WINDOW).hash().alias(_PAIR))
            .agg(
                pl.col(_VALUE).first(),
                pl.col(WINDOW).first(),
                pl.col("__is_new").sum().cast(pl.Int64).alias("__touches"),
                *([pl.col(K_BEFORE_SLICE).first()] if carried else []),
            )
            .sort(_VALUE, WINDOW)
            .select(_PAIR, k_before_expr.alias("__k_before"))
        )
        # N: entities with any value of this field (under this filter) in earlier windows.
        joiners = (
            (cells.filter(~pl.col(IN_POPULATION)) if carried else cells)
            .group_by(_KEY)
            .agg(pl.col(WINDOW).min())
            .group_by(WINDOW)
            .agg(pl.len().cast(pl.Int64).alias("__joiners"))
        )
        joined_before = pl.col("__joiners").cum_sum() - pl.col("__joiners")
        if carried:
            joined_before = joined_before.cast(pl.Int64) + population_before
        population = (
            cells.select(WINDOW)
            .unique()
            .join(joiners, on=WINDOW, how="left")
            .with_columns(pl.col("__joiners").fill_null(0))
            .sort(WINDOW)
            .select(WINDOW, joined_before.alias("__population"))
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
        cells = cells.with_columns(_cell_key())
        if gaps is None:
            if values is None:
                values = _source_values(events, plan, config, source, with_ts=True, stable=stable)
            gaps = _gap_stats(values, _busy_cells(cells, specs))
        cells = cells.join(gaps, on=_CELL, how="left")

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
    if single_window:
        # Keyed by entity alone (no window column): :func:`_assemble` joins on it.
        return cells.group_by(_KEY).agg(aggs)
    return cells.group_by(_KEY, WINDOW).agg(aggs)


#: Columns of the per-hour counts of an hour source's cells (and of its carried history).
HOUR_COUNTS = tuple(f"__c{h}" for h in range(24))
_HOURS_BEFORE = tuple(f"__b{h}" for h in range(24))
# The hour angles' sines and cosines as Python computes them (the online evaluator's
# constants), summed below in hour order: the same floats whatever the row order.
_ANGLE = 2.0 * math.pi / 24.0
_SIN = tuple(math.sin(h * _ANGLE) for h in range(24))
_COS = tuple(math.cos(h * _ANGLE) for h in range(24))


def _hour_cells(
    events: pl.LazyFrame, plan: _Plan, config: WindowConfig, key: _FilterKey
) -> pl.LazyFrame:
    """(entity, window, matching events at each hour ``__c0`` .. ``__c23``) of one hour source."""
    hour = pl.col("ts").dt.hour()
    return (
        _matching(events, plan, config, key, [hour.alias(_HOUR)])
        .group_by(_KEY, WINDOW)
        .agg((pl.col(_HOUR) == h).sum().cast(pl.Int64).alias(HOUR_COUNTS[h]) for h in range(24))
    )


def _hour_history(cells: pl.LazyFrame) -> pl.LazyFrame:
    """The hour cells with the entity's matching events per hour in earlier windows.

    Adds ``__b0`` .. ``__b23``. Counts are integers, so the history is exact in any order.
    (:class:`features.sliced.SlicedFeatures` adds its carried history in numpy.)
    """
    # Running sums over the whole sorted table less their value at each entity's first row:
    # one pass per column, where 24 window functions over the entities cost ~20x more.
    cells = cells.sort(_KEY, WINDOW).with_columns(
        (pl.col(_KEY) != pl.col(_KEY).shift(1)).fill_null(True).alias("__entity_start")
    )
    running = [pl.col(now).cum_sum() - pl.col(now) for now in HOUR_COUNTS]
    return cells.with_columns(
        (sums - pl.when(pl.col("__entity_start")).then(sums).forward_fill()).alias(before)
        for sums, before in zip(running, _HOURS_BEFORE, strict=True)
    ).drop("__entity_start")


def _hour_features(
    events: pl.LazyFrame,
    plan: _Plan,
    config: WindowConfig,
    key: _FilterKey,
    specs: Sequence[FeatureSpec],
    hours: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Per (entity, window) columns of the specs comparing event hours with own history.

    ``hours``: the cells with their history (:func:`_hour_history`'s columns); by default
    those of the events alone. Sums over hours run in hour order from 0 (as the online evaluator
    does), so a value never depends on how rows were ordered or grouped.
    """
    if hours is None:
        hours = _hour_history(_hour_cells(events, plan, config, key))
    now = [pl.col(name) for name in HOUR_COUNTS]
    before = [pl.col(name) for name in _HOURS_BEFORE]
    # In steps of plain columns: one expression holding every sum would repeat the sums in
    # each hour's term, and planning it would cost more than computing it.
    history = pl.col("__t_before")
    hours = hours.with_columns(pl.sum_horizontal(before).alias("__t_before"))
    if any(spec.kind == "hour_deviation" for spec in specs):
        s = c = pl.lit(0.0)
        for h in range(24):
            s = s + before[h].cast(pl.Float64) * _SIN[h]
            c = c + before[h].cast(pl.Float64) * _COS[h]
        hours = hours.with_columns(s.alias("__sin_before"), c.alias("__cos_before"))
        s, c = pl.col("__sin_before"), pl.col("__cos_before")
        hours = hours.with_columns(
            (pl.arctan2(s, c) * (24.0 / (2.0 * math.pi))).alias("__mean_hour"),
            ((s * s + c * c).sqrt() > 1e-9).alias("__has_mean"),
        )
        weighted = pl.lit(0.0)
        for h in range(24):
            gap = (h - pl.col("__mean_hour")).abs() % 24.0
            weighted = weighted + now[h].cast(pl.Float64) * pl.min_horizontal(gap, 24.0 - gap)
        hours = hours.with_columns(
            (weighted / pl.sum_horizontal(now).cast(pl.Float64)).alias("__deviation")
        )
    outputs: list[pl.Expr] = []
    for spec in specs:
        min_events = int(spec.number("min_events"))
        if spec.kind == "unusual_hour":
            limit = spec.number("min_share") * history
            unusual = pl.sum_horizontal(
                pl.when(b < limit).then(c).otherwise(0) for b, c in zip(before, now, strict=True)
            )
            expr = pl.when(history >= min_events).then(unusual).otherwise(0)
        elif spec.kind == "hour_deviation":
            trusted = (history >= min_events) & pl.col("__has_mean")
            expr = pl.when(trusted).then(pl.col("__deviation")).otherwise(0.0)
        else:  # pragma: no cover
            raise AssertionError(spec.kind)
        outputs.append(expr.cast(pl.Float64).alias(spec.name))
    return hours.select(_KEY, WINDOW, *outputs)


def hour_feature_values(
    specs: Sequence[FeatureSpec], now: npt.NDArray[np.int64], before: npt.NDArray[np.int64]
) -> dict[str, npt.NDArray[np.float64]]:
    """The values of hour specs from per-hour counts, as :func:`_hour_features` computes them.

    ``now`` and ``before`` are (cells, 24) matching events per hour in the window and in the
    entity's earlier windows. Every step is the same IEEE operation in the same order as the
    polars expressions (products summed in hour order from 0.0, the angle through polars'
    own ``arctan2``), so the floats are bit-identical; without an expression to plan, a
    one-window slice (the daemon's hourly close) pays microseconds instead of milliseconds.

    Examples
    --------
    >>> spec = FeatureSpec(name="odd_hour", kind="unusual_hour", where={"action": "logon"},
    ...                    params={"min_events": 2, "min_share": 0.1})
    >>> now = np.zeros((1, 24), dtype=np.int64); now[0, 3] = 2; now[0, 9] = 1
    >>> before = np.zeros((1, 24), dtype=np.int64); before[0, 9] = 5
    >>> hour_feature_values([spec], now, before)["odd_hour"].tolist()
    [2.0]
    """
    history = before.sum(axis=1)
    deviation: npt.NDArray[np.float64] | None = None
    has_mean: npt.NDArray[np.bool_] | None = None
    if any(spec.kind == "hour_deviation" for spec in specs):
        # Hour-major copy: each step below reads one contiguous row per hour.
        before_by_hour = before.T.astype(np.float64, order="C")
        s = np.zeros(len(before), dtype=np.float64)
        c = np.zeros(len(before), dtype=np.float64)
        term = np.empty(len(before), dtype=np.float64)
        for h in range(24):
            s += np.multiply(before_by_hour[h], _SIN[h], out=term)
            c += np.multiply(before_by_hour[h], _COS[h], out=term)
        # polars' arctan2 (the C library's), not numpy's: numpy may dispatch to SIMD code
        # of other rounding on some CPUs.
        angle = pl.DataFrame({"s": s, "c": c}).select(pl.arctan2("s", "c")).to_series()
        mean_hour = angle.to_numpy() * (24.0 / (2.0 * math.pi))
        has_mean = np.sqrt(s * s + c * c) > 1e-9
        # Only the hours with events: a skipped term is +0.0 added to a sum that is never
        # -0.0 (every term is >= +0.0), which changes no bit; an hourly window has one hour.
        hour_of, row_of = np.nonzero(now.T)
        bounds = np.searchsorted(hour_of, np.arange(25))
        weighted = np.zeros(len(now), dtype=np.float64)
        for h in range(24):
            rows = row_of[bounds[h] : bounds[h + 1]]
            if rows.size == 0:
                continue
            gap = np.abs(h - mean_hour[rows]) % 24.0
            weighted[rows] += now[rows, h].astype(np.float64) * np.minimum(gap, 24.0 - gap)
        deviation = weighted / now.sum(axis=1).astype(np.float64)
    values: dict[str, npt.NDArray[np.float64]] = {}
    for spec in specs:
        min_events = int(spec.number("min_events"))
        if spec.kind == "unusual_hour":
            limit = spec.number("min_share") * history.astype(np.float64)
            unusual = np.where(before < limit[:, None], now, 0).sum(axis=1)
            value = np.where(history >= min_events, unusual, 0).astype(np.float64)
        elif spec.kind == "hour_deviation":
            assert deviation is not None and has_mean is not None
            trusted = (history >= min_events) & has_mean
            value = np.where(trusted, deviation, 0.0)
        else:  # pragma: no cover
            raise AssertionError(spec.kind)
        values[spec.name] = value
    return values


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
    plan = _checked_plan(specs, events, config)
    value_tables = {
        source: _value_features(events, plan, config, source, source_specs)
        for source, source_specs in plan.value_sources.items()
    }
    hour_tables = {
        key: _hour_features(events, plan, config, key, key_specs)
        for key, key_specs in plan.hour_sources.items()
    }
    return _assemble(specs, events, config, plan, value_tables, hour_tables)


def _checked_plan(
    specs: Sequence[FeatureSpec], events: pl.LazyFrame, config: WindowConfig
) -> _Plan:
    """The plan of ``specs`` over ``events``; ValueError on duplicate names, missing columns."""
    names = [spec.name for spec in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate feature names: {duplicates}")
    schema = events.collect_schema()
    needed = required_columns(specs, config)
    missing = sorted(needed - set(schema.names()))
    plan = _make_plan(specs, "attrs" in needed and isinstance(schema.get("attrs"), pl.Struct))
    plan.ts_utc_micros = schema.get("ts") == pl.Datetime("us", "UTC")
    if missing:
        raise ValueError(f"events lack the columns {missing} that the feature specs read")
    return plan


def _assemble(
    specs: Sequence[FeatureSpec],
    events: pl.LazyFrame,
    config: WindowConfig,
    plan: _Plan,
    value_tables: Mapping[tuple[str, _FilterKey, str], pl.LazyFrame],
    hour_tables: Mapping[_FilterKey, pl.LazyFrame],
    known_entities: pl.Series | None = None,
    single_window: bool = False,
    window_table: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """The output table: simple kinds, the derived tables joined, first windows zeroed.

    ``known_entities``: keys of entities that had a window before these events (carried
    history), whose first window here is not their first. ``single_window``: the events
    hold one window, every entity's first here (the value tables may lack the window).
    ``window_table``: :func:`_window_table` of the same arguments, when the caller has it
    already (:class:`features.sliced.SlicedFeatures` computes it beside the value tables).
    """
    if window_table is None:
        window_table = _window_table(specs, events, config, plan, single_window)
    # One window: grouping and joining on the entity alone is cheaper than on two keys.
    keys = [_KEY] if single_window else [_KEY, WINDOW]
    table = window_table
    for source in plan.value_sources:
        values = value_tables[source]
        if single_window:
            values = values.drop(WINDOW, strict=False)
        table = table.join(values, on=keys, how="left")
    for key in plan.hour_sources:
        hours = hour_tables[key]
        if single_window:
            hours = hours.drop(WINDOW, strict=False)
        table = table.join(hours, on=keys, how="left")

    if single_window:
        table = table.with_columns(pl.col(WINDOW).alias("__entity_first"))
    elif any(spec.kind == "first_seen" for spec in specs):
        table = table.cache()
        first_windows = table.group_by(_KEY).agg(pl.col(WINDOW).min().alias("__entity_first"))
        table = table.join(first_windows, on=_KEY, how="left")
    entity_first_window = pl.col(WINDOW) == pl.col("__entity_first")
    if known_entities is not None:
        entity_first_window = entity_first_window & ~pl.col(_KEY).is_in(known_entities.implode())
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


def _window_table(
    specs: Sequence[FeatureSpec],
    events: pl.LazyFrame,
    config: WindowConfig,
    plan: _Plan,
    single_window: bool = False,
    names: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Per (entity, window): entity name, event count and the simple kinds (no history).

    Keyed by the entity alone when ``single_window`` (the window is a column all the same).
    ``names``: the entity name (``entity``) of each key (``__entity_key``) of the events,
    joined to the aggregates instead of taking each group's first name, a string gather
    over every event that costs about a third of all the other aggregates together.
    """
    base = _base_frame(events, plan, config, without_entity=names is not None)
    simple = [_simple_agg(s, plan) for s in specs if s.kind not in _VALUE_KINDS | _HOUR_KINDS]
    keys = [_KEY] if single_window else [_KEY, WINDOW]
    table = base.group_by(keys).agg(
        *([pl.col(WINDOW).first()] if single_window else []),
        *([] if names is not None else [pl.col(ENTITY).first()]),
        pl.len().cast(pl.Int64).alias(N_EVENTS),
        *simple,
    )
    if names is not None:
        table = table.join(names.select(_KEY, ENTITY), on=_KEY, how="left")
    return table


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
