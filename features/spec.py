"""Declarative feature specs: one definition, evaluated in batch (polars) and online.

A :class:`FeatureSpec` says *what* to measure for one entity (a user or a host) in one
window; :class:`WindowConfig` says how events are grouped into (entity, window) cells. The
batch evaluator (:func:`features.batch.evaluate_batch`) and the online evaluator must give the
same number for the same spec on the same events, so every kind is defined below precisely,
causally, and with the per-entity state an incremental evaluator needs.

Definitions shared by all kinds
-------------------------------
entity
    ``event.<config.entity>``; events whose entity is null are ignored everywhere.
window
    ``ts`` truncated to ``config.window`` ("1d" or "1h", aligned to UTC midnight / hours).
    A cell (entity, window) exists when the entity has at least one event in the window,
    whatever the specs' filters.
matching event
    An event whose fields satisfy every ``where`` condition: ``{"action": "logon"}`` means
    ``event.action == "logon"``; a tuple value means membership. A key ending in ``~`` is a
    pattern condition: ``{"target~": "keylogger|mimikatz"}`` means the field contains a match
    of that regular expression (Rust/Python common syntax, case-insensitive). A null field
    never matches. Field names are Event fields or ``"attrs.<key>"`` (the key of the JSON
    ``attrs`` object).
values of ``field``
    For a matching event, the field's value as a string; when ``params["split"]`` is set the
    string is split on that separator, each part stripped of surrounding white space, and
    every non-empty part is one value (email recipients). Null and empty values are no value.
history
    The entity's windows strictly before the current one. Population history is every
    entity's windows strictly before the current one. Nothing in the current window is
    history, so a value is "new" or "rare" the whole window long, whatever the order of its
    events inside the window.
hour, weekday
    ``ts.hour`` (0-23, UTC) and ISO ``ts.weekday`` (Monday 1 .. Sunday 7).
off hours
    ``weekday in config.weekend_days`` or ``hour`` outside ``config.work_hours = (start,
    end)``: in hours is ``start <= hour < end`` (or, for a night shift with ``start > end``,
    ``hour >= start or hour < end``).

Kinds
-----
Every value is a float; a cell where a kind has nothing to measure gets 0.

``count``
    Number of matching events. State: one counter per open window.
``failure_count``
    ``count`` of matching events whose ``outcome == "failure"``.
``sum``
    Sum over matching events of ``field`` read as a number (``bytes`` or ``"attrs.<key>"``);
    null or non-numeric values count 0.
``off_hours``
    Number of matching events in off hours (see above).
``weekend``
    Number of matching events whose weekday is in ``config.weekend_days``.
``distinct``
    Number of distinct values of ``field`` among matching events (split per ``split``).
``first_seen``
    Number of distinct values of ``field`` (split per ``split``) among this window's matching
    events that the entity never had among its matching events in any earlier window.
    **The entity's first window counts 0**: the first window in which the entity has any
    event at all (matching or not) has no history, so nothing in it is "new"; its values do
    become history. State: per entity, the set of values seen in closed windows, and whether
    the entity has had a window before.
``unusual_hour``
    Number of matching events at an hour ``h`` for which ``H[h] < min_share * T``, where
    ``H[h]`` is the number of the entity's historical matching events at hour ``h`` and ``T``
    the total of its historical matching events; 0 for the whole window while
    ``T < min_events``. Params ``min_share`` (0.02) and ``min_events`` (20). State: 24
    counters per entity, updated when a window closes.
``hour_deviation``
    Mean, over matching events, of the circular distance in hours (0-12) between the event's
    ``hour`` and the entity's historical circular mean hour
    ``m = atan2(sum_h H[h] sin(2 pi h / 24), sum_h H[h] cos(2 pi h / 24)) * 24 / (2 pi) mod 24``
    (``H`` as for ``unusual_hour``); 0 while ``T < min_events`` (param, 20) or when the
    historical hours have no mean direction (resultant length below 1e-9).
``rarity``
    Population rarity of the values touched: for each distinct value ``v`` of ``field`` in
    the entity's matching events of window ``w``, ``-log2((k + 1) / (N + 1))`` where ``k`` is
    the number of OTHER entities that had ``v`` among their matching events in windows
    strictly before ``w`` and ``N`` the number of entities that had any value of ``field``
    among their matching events in windows strictly before ``w`` (the population of this
    feature so far). Feature = max over ``v`` (param ``agg="max"``) or mean (``agg="mean"``).
    State: per value the set (or count, plus own membership) of entities that had it; the
    set of entities in the population; both updated when a window closes.
``rare_count``
    Number of distinct values ``v`` in the window with ``k <= max_entities`` (param, 1),
    ``k`` as for ``rarity``. At the very start of the data every value is rare (``k = 0``);
    detectors must treat the first windows as warm-up.
``periodicity``
    Beacon regularity: for each distinct value ``v`` with at least ``min_events`` (param,
    12) matching events in the window, take the inter-arrival times (seconds) of those events
    sorted by ``ts``, their mean ``mu`` and population standard deviation ``sd``
    (ddof = 0); regularity = ``max(0, 1 - sd / mu)``, or 0 when ``mu == 0``. Feature = max
    regularity over values (0 if none qualifies). A constant-period beacon gives 1.
``max_split``
    Maximum over matching events of the number of values in ``field`` (split per ``split``,
    default ``";"``): recipients of the largest email. An event with no value counts 0.
``max_per_target``
    Maximum over the values of ``field`` of the number of matching events with that value.

Examples
--------
>>> spec = FeatureSpec(name="usb_connects", kind="count", where={"action": "usb_connect"})
>>> spec.where["action"], spec.param("min_events")
('usb_connect', None)
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

#: Kind -> its params and their defaults. A param not listed for a kind is an error.
KIND_PARAMS: Final[Mapping[str, Mapping[str, float | int | str]]] = MappingProxyType(
    {
        "count": MappingProxyType({}),
        "failure_count": MappingProxyType({}),
        "sum": MappingProxyType({}),
        "off_hours": MappingProxyType({}),
        "weekend": MappingProxyType({}),
        "distinct": MappingProxyType({"split": ""}),
        "first_seen": MappingProxyType({"split": ""}),
        "unusual_hour": MappingProxyType({"min_share": 0.02, "min_events": 20}),
        "hour_deviation": MappingProxyType({"min_events": 20}),
        "rarity": MappingProxyType({"split": "", "agg": "max"}),
        "rare_count": MappingProxyType({"split": "", "max_entities": 1}),
        "periodicity": MappingProxyType({"split": "", "min_events": 12}),
        "max_split": MappingProxyType({"split": ";"}),
        "max_per_target": MappingProxyType({"split": ""}),
    }
)

#: Kinds that read ``field`` (the others only count matching events).
FIELD_KINDS: Final[frozenset[str]] = frozenset(
    {
        "sum",
        "distinct",
        "first_seen",
        "rarity",
        "rare_count",
        "periodicity",
        "max_split",
        "max_per_target",
    }
)

#: Event fields a spec may read or filter on (besides ``"attrs.<key>"``).
EVENT_FIELDS: Final[frozenset[str]] = frozenset(
    {"source", "action", "user", "host", "target", "bytes", "outcome"}
)

_EMPTY_WHERE: Mapping[str, str | tuple[str, ...]] = MappingProxyType({})
_EMPTY_PARAMS: Mapping[str, float | int | str] = MappingProxyType({})


def _check_field_name(name: str, what: str) -> None:
    if name in EVENT_FIELDS:
        return
    if name.startswith("attrs.") and len(name) > len("attrs."):
        return
    raise ValueError(
        f"{what} {name!r} is not an Event field ({sorted(EVENT_FIELDS)}) nor 'attrs.<key>'"
    )


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """One behavioural feature, defined once for both the batch and the online evaluator.

    The kinds, their params and their exact (causal, incremental) definitions are listed in
    the module docstring of :mod:`features.spec`.

    Parameters
    ----------
    name
        Output column name, e.g. ``"usb_file_copies"``.
    kind
        One of :data:`KIND_PARAMS` (``"count"``, ``"first_seen"``, ``"rarity"``...).
    field
        The Event field the kind reads (``"target"``, ``"host"``, ``"bytes"``,
        ``"attrs.<key>"``); required by the kinds in :data:`FIELD_KINDS`.
    where
        Filters: field -> value (equality) or tuple of values (membership). All must hold.
    params
        Kind-specific knobs; missing ones take the defaults of :data:`KIND_PARAMS`.
    doc
        One sentence: what it measures.
    explain
        Alert template; ``{observed}``, ``{typical}`` and ``{name}`` are filled in, and a
        ``(s)`` agrees with the observed count ("1 logon", "2 logons").
    technique
        MITRE ATT&CK technique id this feature is evidence of, if any.
    direction
        ``"up"`` (only higher than typical is suspicious) or ``"both"``.
    group
        The behaviour the feature measures (``"activity_time"``, ``"removable_media"``...);
        default: its own name. Features of one group are correlated views of one act; the
        ``tail`` detectors can count a group once, by its most surprising member
        (:mod:`models.combine`; off by default, ``PipelineConfig.behaviour_groups``). It
        decides how scores combine, not what a feature's value is, so it is not part of
        :meth:`definition` (the schema hash): a saved model or checkpoint keeps the groups of
        the specs it holds.

    Examples
    --------
    >>> s = FeatureSpec(name="new_recipients", kind="first_seen", field="target",
    ...                 where={"action": "email_send"}, params={"split": ";"})
    >>> s.param("split"), s.kind
    (';', 'first_seen')
    >>> FeatureSpec(name="x", kind="distinct")
    Traceback (most recent call last):
    ...
    ValueError: spec 'x': kind 'distinct' needs a field
    """

    name: str
    kind: str
    field: str | None = None
    where: Mapping[str, str | tuple[str, ...]] = dataclasses.field(
        default_factory=lambda: _EMPTY_WHERE
    )
    params: Mapping[str, float | int | str] = dataclasses.field(
        default_factory=lambda: _EMPTY_PARAMS
    )
    doc: str = ""
    explain: str = ""
    technique: str | None = None
    direction: str = "up"
    group: str = ""

    def __post_init__(self) -> None:
        if not self.name or self.name in ("entity", "window_start", "n_events"):
            raise ValueError(f"spec name {self.name!r} is empty or reserved")
        if not isinstance(self.group, str):
            raise ValueError(f"spec {self.name!r}: group must be a string, not {self.group!r}")
        if not self.group.strip():
            object.__setattr__(self, "group", self.name)
        if self.kind not in KIND_PARAMS:
            raise ValueError(
                f"spec {self.name!r}: unknown kind {self.kind!r} (known: {sorted(KIND_PARAMS)})"
            )
        if self.kind in FIELD_KINDS and self.field is None:
            raise ValueError(f"spec {self.name!r}: kind {self.kind!r} needs a field")
        if self.field is not None:
            _check_field_name(self.field, f"spec {self.name!r}: field")
        if self.direction not in ("up", "both"):
            raise ValueError(f"spec {self.name!r}: direction must be 'up' or 'both'")
        where: dict[str, str | tuple[str, ...]] = {}
        for key in sorted(self.where):
            _check_field_name(key.removesuffix("~"), f"spec {self.name!r}: where key")
            value = self.where[key]
            if key.endswith("~"):
                if not isinstance(value, str):
                    raise ValueError(f"spec {self.name!r}: pattern {key!r} must be one string")
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ValueError(f"spec {self.name!r}: bad pattern {value!r}: {exc}") from None
            where[key] = value if isinstance(value, str) else tuple(value)
        allowed = KIND_PARAMS[self.kind]
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise ValueError(
                f"spec {self.name!r}: unknown params {unknown} for kind {self.kind!r} "
                f"(allowed: {sorted(allowed)})"
            )
        params = {key: self.params[key] for key in sorted(self.params)}
        for key, given in params.items():
            default = allowed[key]
            if isinstance(default, str) != isinstance(given, str) or isinstance(given, bool):
                raise ValueError(
                    f"spec {self.name!r}: param {key!r} must be a "
                    f"{'string' if isinstance(default, str) else 'number'}, not {given!r}"
                )
        agg = params.get("agg", "max")
        if agg not in ("max", "mean"):
            raise ValueError(f"spec {self.name!r}: agg must be 'max' or 'mean'")
        # Frozen, sorted copies: the caller's dicts can change later, the spec cannot.
        object.__setattr__(self, "where", MappingProxyType(where))
        object.__setattr__(self, "params", MappingProxyType(params))

    def __reduce__(self) -> tuple[type[FeatureSpec], tuple[object, ...]]:
        # Read-only mapping proxies do not pickle; rebuild from plain dicts (saved models
        # hold their specs).
        return (
            FeatureSpec,
            (
                self.name,
                self.kind,
                self.field,
                dict(self.where),
                dict(self.params),
                self.doc,
                self.explain,
                self.technique,
                self.direction,
                self.group,
            ),
        )

    def param(self, key: str, default: float | int | str | None = None) -> float | int | str | None:
        """The param ``key``: as given, else the kind's default, else ``default``."""
        if key in self.params:
            return self.params[key]
        return KIND_PARAMS[self.kind].get(key, default)

    def number(self, key: str) -> float:
        """A numeric param (given or default) as a float.

        Examples
        --------
        >>> FeatureSpec(name="u", kind="unusual_hour").number("min_share")
        0.02
        """
        value = self.param(key)
        if not isinstance(value, int | float):
            raise KeyError(f"spec {self.name!r}: no numeric param {key!r}")
        return float(value)

    def definition(self) -> dict[str, object]:
        """What determines the numbers (not the prose): the input of the schema hash."""
        return {
            "name": self.name,
            "kind": self.kind,
            "field": self.field,
            "where": {k: v if isinstance(v, str) else list(v) for k, v in self.where.items()},
            "params": {k: self.param(k) for k in sorted(KIND_PARAMS[self.kind])},
            "direction": self.direction,
        }

    def __hash__(self) -> int:
        return hash(
            (
                self.name,
                self.kind,
                self.field,
                tuple(self.where.items()),
                tuple(self.params.items()),
                self.doc,
                self.explain,
                self.technique,
                self.direction,
                self.group,
            )
        )


def group_ids(specs: Sequence[FeatureSpec]) -> tuple[int, ...]:
    """The behaviour group of each spec as an integer id, numbered by first appearance.

    What the detectors (which see numbers, never specs) are given to count one behaviour once.

    Examples
    --------
    >>> specs = [FeatureSpec(name="weekend_logons", kind="weekend", group="time"),
    ...          FeatureSpec(name="usb_connects", kind="count"),
    ...          FeatureSpec(name="off_hours_logons", kind="off_hours", group="time")]
    >>> group_ids(specs), specs[1].group
    ((0, 1, 0), 'usb_connects')
    """
    ids: dict[str, int] = {}
    return tuple(ids.setdefault(spec.group, len(ids)) for spec in specs)


_WINDOWS: Final[Mapping[str, int]] = MappingProxyType({"1d": 24, "1h": 1})


@dataclasses.dataclass(frozen=True)
class WindowConfig:
    """How events are grouped into (entity, window) cells, and the organisation's calendar.

    Parameters
    ----------
    entity
        ``"user"`` or ``"host"``: the Event field that names the entity.
    window
        ``"1d"`` or ``"1h"``: window length (a polars duration), aligned to UTC.
    work_hours
        Working hours ``[start, end)`` in UTC hours; ``start > end`` means a night shift.
    weekend_days
        ISO weekdays (Monday 1 .. Sunday 7) that are not working days.
    min_history_windows
        Windows of own history needed before own-history features are trusted (used by the
        detectors; the evaluators compute every feature regardless).

    Examples
    --------
    >>> WindowConfig(entity="host", window="1h").window
    '1h'
    >>> WindowConfig().is_off_hours(hour=6, weekday=1), WindowConfig().is_off_hours(7, 1)
    (True, False)
    """

    entity: str = "user"
    window: str = "1d"
    work_hours: tuple[int, int] = (7, 19)
    weekend_days: tuple[int, ...] = (6, 7)
    min_history_windows: int = 5

    def __post_init__(self) -> None:
        if self.entity not in ("user", "host"):
            raise ValueError(f"WindowConfig.entity must be 'user' or 'host', not {self.entity!r}")
        if self.window not in _WINDOWS:
            raise ValueError(f"WindowConfig.window must be one of {sorted(_WINDOWS)}")
        start, end = self.work_hours
        if not (0 <= start <= 24 and 0 <= end <= 24):
            raise ValueError(f"WindowConfig.work_hours {self.work_hours} not within 0..24")
        if any(d not in range(1, 8) for d in self.weekend_days):
            raise ValueError(f"WindowConfig.weekend_days {self.weekend_days} not ISO weekdays")
        object.__setattr__(self, "work_hours", (int(start), int(end)))
        object.__setattr__(self, "weekend_days", tuple(sorted(set(self.weekend_days))))

    def is_off_hours(self, hour: int, weekday: int) -> bool:
        """Whether an event at ``hour`` (UTC) on ISO ``weekday`` is outside working time."""
        if weekday in self.weekend_days:
            return True
        start, end = self.work_hours
        in_hours = start <= hour < end if start <= end else (hour >= start or hour < end)
        return not in_hours

    def definition(self) -> dict[str, object]:
        """The settings that change feature values (input of the schema hash)."""
        return {
            "entity": self.entity,
            "window": self.window,
            "work_hours": list(self.work_hours),
            "weekend_days": list(self.weekend_days),
        }


def circular_hour_distance(a: float, b: float) -> float:
    """Distance in hours between two hours of day on the 24 h clock (0 to 12).

    Examples
    --------
    >>> circular_hour_distance(23, 1), circular_hour_distance(9, 15.5)
    (2.0, 6.5)
    """
    d = abs(float(a) - float(b)) % 24.0
    return min(d, 24.0 - d)


def rarity_score(k: int, n: int) -> float:
    """``-log2((k + 1) / (n + 1))``: bits of surprise of a value k of n entities had before.

    Examples
    --------
    >>> rarity_score(0, 3), rarity_score(3, 3)
    (2.0, 0.0)
    """
    return math.log2(n + 1) - math.log2(k + 1)
