"""Explanations: which features deviated, observed against the entity's typical values.

The baseline behind an explanation is computed from the training windows, independently of
which detector produced the score, so every detector's alerts read the same way: the entity's
own history when it has enough of it, else its peer group, else the whole population. An
entity first seen after training (a new hire) reads against its peers only until it has a
history of its own in the scored windows (see :meth:`BaselineProfile.with_history`).
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

import numpy as np
import polars as pl
from numpy.typing import NDArray

from detector.alerts import Deviation
from detector.scaling import scale_expr, scale_matrix
from features.spec import FeatureSpec
from models.batch.baselines import history_prefix

FloatMatrix = NDArray[np.float64]

#: MAD to standard deviation for a normal distribution.
_MAD_TO_STD = 1.4826


@dataclass(frozen=True)
class _Stats:
    """Per-key robust statistics of each feature: rows are keys, columns features."""

    index: dict[str, int]
    n_rows: NDArray[np.int64]
    median: FloatMatrix
    low: FloatMatrix
    high: FloatMatrix
    log_median: FloatMatrix
    log_scale: FloatMatrix


def _robust_stats(frame: pl.DataFrame, key: str | None, specs: Sequence[FeatureSpec]) -> _Stats:
    """Median, 10th/90th percentiles (raw) and median and MAD (on the comparison scale)."""
    aggs: list[pl.Expr] = [pl.len().alias("__n")]
    features = [s.name for s in specs]
    for spec in specs:
        name = spec.name
        col = pl.col(name)
        log = scale_expr(spec)
        aggs += [
            col.median().alias(f"{name}__med"),
            col.quantile(0.1, "lower").alias(f"{name}__lo"),
            col.quantile(0.9, "higher").alias(f"{name}__hi"),
            log.median().alias(f"{name}__lmed"),
            (log - log.median()).abs().median().alias(f"{name}__lmad"),
        ]
    if key is None:
        grouped = frame.select(aggs).with_columns(pl.lit("*").alias("__key"))
    else:
        grouped = frame.group_by(key).agg(aggs).rename({key: "__key"}).sort("__key")

    def matrix(suffix: str) -> FloatMatrix:
        cols = [f"{name}__{suffix}" for name in features]
        return grouped.select(cols).to_numpy().astype(np.float64)

    keys = grouped["__key"].cast(pl.String).to_list()
    return _Stats(
        index={k: i for i, k in enumerate(keys)},
        n_rows=grouped["__n"].to_numpy().astype(np.int64),
        median=matrix("med"),
        low=matrix("lo"),
        high=matrix("hi"),
        log_median=matrix("lmed"),
        log_scale=matrix("lmad") * _MAD_TO_STD,
    )


class BaselineProfile:
    """What is typical for each entity, its peer group and the population.

    Parameters
    ----------
    specs
        The feature specs whose columns the training frame holds.
    min_rows
        Windows of history an entity needs before its own baseline is used (cold start
        falls back to its peer group, then to the population).
    z_min
        Smallest robust z for a feature to be listed as deviating.
    max_share
        Largest fraction of training windows that may deviate as much for a feature to be
        listed: a deviation that one window in five shows explains nothing.

    Examples
    --------
    >>> import polars as pl
    >>> from features.spec import FeatureSpec
    >>> spec = FeatureSpec(name="usb", kind="count",
    ...                    explain="{observed:g} USB connects (typical {typical})")
    >>> train = pl.DataFrame({"entity": ["a"] * 6, "usb": [0.0, 1, 0, 0, 1, 0]})
    >>> profile = BaselineProfile([spec], train, groups=None)
    >>> devs, basis = profile.explain("a", {"usb": 12.0})
    >>> basis, devs[0].typical, devs[0].text
    ('own history', 0.0, '12 USB connects (typical 0–1)')
    """

    #: Scored windows of entities without a baseline of their own, by entity, in time order:
    #: their window starts and feature rows (see :meth:`with_history`).
    history: Mapping[str, tuple[list[datetime], pl.DataFrame]] = MappingProxyType({})

    def __init__(
        self,
        specs: Sequence[FeatureSpec],
        train: pl.DataFrame,
        *,
        groups: Mapping[str, str] | None,
        min_rows: int = 5,
        z_min: float = 2.0,
        max_share: float = 0.02,
        max_deviations: int = 5,
    ) -> None:
        self.specs = tuple(specs)
        self.features = [s.name for s in self.specs]
        self.min_rows = min_rows
        self.z_min = z_min
        self.max_deviations = max_deviations
        self.max_share = max_share
        self.groups = dict(groups or {})
        self.entity_stats = _robust_stats(train, "entity", self.specs)
        self.population = _robust_stats(train, None, self.specs)
        # A floor under every scale, so that a feature that was always 0 for an entity gives a
        # large but finite z when it becomes non-zero rather than an infinite one.
        pop_log_std = (
            train.select([scale_expr(s).std() for s in self.specs]).to_numpy().astype(np.float64)[0]
        )
        self.scale_floor = np.maximum(np.nan_to_num(pop_log_std) * 0.5, 0.25)
        if self.groups:
            grouped = train.with_columns(
                pl.col("entity").replace_strict(self.groups, default="(unknown)").alias("__group")
            )
            self.group_stats: _Stats | None = _robust_stats(grouped, "__group", self.specs)
        else:
            self.group_stats = None
        # How far above typical each feature goes on ordinary training windows: a deviation
        # is only worth naming if few windows ever deviate that much (see ``share``).
        scaled = scale_matrix(self.specs, train.select(self.features).to_numpy())
        entities = train["entity"].cast(pl.String).to_numpy()
        unique, inverse = np.unique(entities, return_inverse=True)
        centre = np.empty((len(unique), len(self.features)))
        spread = np.empty_like(centre)
        for k, entity in enumerate(unique):
            stats, i, _ = self._basis(str(entity))
            centre[k] = stats.log_median[i]
            spread[k] = np.maximum(stats.log_scale[i], self.scale_floor)
        inverse = inverse.reshape(-1)
        z = (scaled - centre[inverse]) / spread[inverse]
        self.z_reference = np.sort(np.maximum(z, 0.0), axis=0)

    def share(self, z: NDArray[np.float64]) -> NDArray[np.float64]:
        """Fraction of training windows whose feature deviated at least ``z`` above typical."""
        n = self.z_reference.shape[0]
        at_least = np.array(
            [
                n - np.searchsorted(self.z_reference[:, j], max(float(z[j]), 0.0), side="left")
                for j in range(len(z))
            ],
            dtype=np.float64,
        )
        return np.asarray((at_least + 1.0) / (n + 1.0), dtype=np.float64)

    def _has_own_baseline(self, entity: str) -> bool:
        idx = self.entity_stats.index.get(entity)
        return idx is not None and bool(self.entity_stats.n_rows[idx] >= self.min_rows)

    def with_history(self, scored: pl.DataFrame) -> BaselineProfile:
        """This profile, with the scored windows of entities that had no baseline of their own.

        A window of such an entity (first seen after training, or with fewer than
        ``min_rows`` training windows) is then explained against the entity's own strictly
        earlier scored windows once there are ``min_rows`` of them (a prefix of them, as the
        robust and tail detectors use: ``history_prefix``): a new hire is compared
        with its peers only until it has a history, and never with its later days. Entities
        with a training baseline read exactly as before.

        Parameters
        ----------
        scored
            The windows being scored: ``entity``, ``window_start`` and the feature columns.

        Returns
        -------
        BaselineProfile
            A shallow copy of this profile that knows those windows (this one is unchanged).

        Examples
        --------
        >>> from datetime import UTC, datetime, timedelta
        >>> spec = FeatureSpec(name="visits", kind="count", explain="{observed:g} web visits")
        >>> train = pl.DataFrame({"entity": ["a"] * 6, "visits": [40.0, 50, 60, 45, 55, 50]})
        >>> day0 = datetime(2010, 1, 19, tzinfo=UTC)
        >>> days = [day0 + timedelta(days=d) for d in range(7)]
        >>> scored = pl.DataFrame({"entity": ["new"] * 7, "window_start": days,
        ...                        "visits": [220.0, 230, 240, 250, 260, 235, 900]})
        >>> profile = BaselineProfile([spec], train, groups=None).with_history(scored)
        >>> profile.explain("new", {"window_start": days[1], "visits": 230.0})[1]
        'whole population (cold start)'
        >>> devs, basis = profile.explain("new", {"window_start": days[6], "visits": 900.0})
        >>> basis, devs[0].text
        ('own history (since 2010-01-19)', '900 web visits (typical 220–260)')
        """
        extended = copy.copy(self)
        if scored.height == 0:
            extended.history = MappingProxyType({})
            return extended
        entities = scored["entity"].cast(pl.String).unique().to_list()
        newcomers = [e for e in entities if e is not None and not self._has_own_baseline(e)]
        rows = (
            scored.filter(pl.col("entity").cast(pl.String).is_in(newcomers))
            .select("entity", "window_start", *self.features)
            .with_columns(pl.col("entity").cast(pl.String))
            .sort("entity", "window_start", maintain_order=True)
        )
        history: dict[str, tuple[list[datetime], pl.DataFrame]] = {}
        for (entity,), frame in rows.partition_by("entity", as_dict=True).items():
            history[str(entity)] = (frame["window_start"].to_list(), frame)
        extended.history = MappingProxyType(history)
        return extended

    def _own_history(self, entity: str, at: object) -> tuple[_Stats, str] | None:
        """Stats of a newcomer's scored windows before ``at``, if there are ``min_rows``.

        Fitted on the first :func:`~models.batch.baselines.history_prefix` of them.
        """
        known = self.history.get(entity)
        if known is None or not isinstance(at, datetime):
            return None
        starts, frame = known
        # The same earlier windows as the robust and tail detectors' own baseline of it.
        prefix = history_prefix(bisect.bisect_left(starts, at), self.min_rows)
        if prefix == 0:
            return None
        stats = _robust_stats(frame.head(prefix), None, self.specs)
        return stats, f"own history (since {starts[0].date().isoformat()})"

    def _basis(self, entity: str, at: object = None) -> tuple[_Stats, int, str]:
        idx = self.entity_stats.index.get(entity)
        if idx is not None and self.entity_stats.n_rows[idx] >= self.min_rows:
            return self.entity_stats, idx, "own history"
        if own := self._own_history(entity, at):
            return own[0], 0, own[1]
        group = self.groups.get(entity)
        if self.group_stats is not None and group is not None:
            gidx = self.group_stats.index.get(group)
            if gidx is not None and self.group_stats.n_rows[gidx] >= self.min_rows:
                return self.group_stats, gidx, f"peer group {group} (cold start)"
        return self.population, 0, "whole population (cold start)"

    def z_scores(
        self, entity: str, observed: NDArray[np.float64], at: datetime | None = None
    ) -> NDArray[np.float64]:
        """Robust z of each feature of one window against the entity's baseline.

        ``at`` is the window's start: it picks a newcomer's own earlier windows (see
        :meth:`with_history`).
        """
        return self._z_scores(self._basis(entity, at), observed)

    def _z_scores(
        self, basis: tuple[_Stats, int, str], observed: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        stats, i, _ = basis
        scale = np.maximum(stats.log_scale[i], self.scale_floor)
        scaled = scale_matrix(self.specs, observed[None, :])[0]
        return np.asarray((scaled - stats.log_median[i]) / scale, dtype=np.float64)

    def explain(
        self, entity: str, values: Mapping[str, float]
    ) -> tuple[tuple[Deviation, ...], str]:
        """The deviating features of one window and the baseline used.

        Ordered by how rarely the training population deviated that much on that feature
        (rarest first), then by z: one USB connect by a user who never uses USB is a large z
        but common across the organisation; a beacon's regularity is both. ``values`` may
        hold the window's ``window_start``: a newcomer's window is then explained against its
        own earlier windows once it has enough (see :meth:`with_history`).
        """
        chosen = self._basis(entity, values.get("window_start"))
        stats, i, basis = chosen
        observed = np.array([float(values.get(f, 0.0)) for f in self.features], dtype=np.float64)
        z = self._z_scores(chosen, observed)
        share = self.share(z)
        # With few training windows even "never seen" has a large share: never filter that.
        max_share = max(self.max_share, 1.0 / (self.z_reference.shape[0] + 1.0))
        found: list[Deviation] = []
        for j in np.lexsort((-np.abs(z), share)):
            spec = self.specs[j]
            zj = float(z[j])
            if spec.direction != "both" and zj < 0:
                continue
            if abs(zj) < self.z_min or share[j] > max_share:
                continue
            # Inside the entity's own usual range (10th-90th percentile) is not a reason,
            # however the robust scale turned out.
            if stats.low[i, j] <= observed[j] <= stats.high[i, j]:
                continue
            found.append(
                deviation_of(
                    spec,
                    observed[j],
                    stats.median[i, j],
                    stats.low[i, j],
                    stats.high[i, j],
                    zj,
                    share[j],
                )
            )
            if len(found) >= self.max_deviations:
                break
        if not found:
            combined = combination_deviations(
                self.specs, observed, z, stats.median[i], stats.low[i], stats.high[i], share
            )
            return combined, basis
        return tuple(found), basis


#: Features an explanation names when only their combination explains the window.
COMBINATION_SIZE = 3


def combination_deviations(
    specs: Sequence[FeatureSpec],
    observed: NDArray[np.float64],
    z: NDArray[np.float64],
    median: NDArray[np.float64],
    low: NDArray[np.float64],
    high: NDArray[np.float64],
    share: NDArray[np.float64] | None = None,
    limit: int = COMBINATION_SIZE,
) -> tuple[Deviation, ...]:
    """The features that deviated most, for a window no single feature explains.

    A detector can flag a window for many moderate deviations at once, none past the
    explanation threshold. The analyst still needs to see what was unusual: the ``limit``
    features furthest from typical in their suspicious direction (above typical, or either
    way for ``direction="both"``), largest robust z first, marked as a combination. When no
    feature lies on its suspicious side, the largest deviations either way are named, so an
    alert is never left without an explanation.

    Parameters
    ----------
    specs
        The feature specs, one per column of the other arguments.
    observed, z, median, low, high
        Per feature: the window's value, its robust z against the basis, and the basis's
        median and 10th/90th percentiles.
    share
        Per feature, the fraction of reference windows that deviated as much (optional).
    limit
        How many features to name at most.

    Examples
    --------
    >>> specs = [FeatureSpec(name="logons", kind="count", explain="{observed:g} logons"),
    ...          FeatureSpec(name="hosts", kind="count", explain="{observed:g} hosts"),
    ...          FeatureSpec(name="usb", kind="count", explain="{observed:g} USB connects")]
    >>> devs = combination_deviations(specs, np.array([14.0, 3.0, 0.0]),
    ...     z=np.array([1.8, 1.2, -0.4]), median=np.array([8.0, 2.0, 0.0]),
    ...     low=np.array([5.0, 1.0, 0.0]), high=np.array([11.0, 2.0, 1.0]))
    >>> [(d.feature, d.z, d.combination) for d in devs]
    [('logons', 1.8, True), ('hosts', 1.2, True)]
    >>> devs[0].text
    '14 logons (typical 5–11)'
    """
    z = np.asarray(z, dtype=np.float64)
    both = np.array([spec.direction == "both" for spec in specs], dtype=bool)
    suspicious = np.where(both, np.abs(z), z)
    chosen = [int(j) for j in np.argsort(-suspicious, kind="stable") if suspicious[j] > 0.0]
    if not chosen:
        chosen = [int(j) for j in np.argsort(-np.abs(z), kind="stable")]
    return tuple(
        deviation_of(
            specs[j],
            observed[j],
            median[j],
            low[j],
            high[j],
            z[j],
            None if share is None else share[j],
            combination=True,
        )
        for j in chosen[:limit]
    )


def deviation_of(
    spec: FeatureSpec,
    observed: float,
    median: float,
    low: float,
    high: float,
    z: float,
    share: float | None,
    *,
    combination: bool = False,
) -> Deviation:
    """One explanation entry: the feature's values as floats and its analyst sentence.

    Examples
    --------
    >>> spec = FeatureSpec(name="usb", kind="count", explain="{observed:g} USB copies")
    >>> d = deviation_of(spec, 4.0, 0.0, 0.0, 1.0, 6.5, 0.01)
    >>> d.feature, d.observed, d.z, d.text
    ('usb', 4.0, 6.5, '4 USB copies (typical 0–1)')
    """
    # Adding 0.0 turns a negative zero (a rarity of -log2(1), a sum sliced at a boundary)
    # into 0.0 and leaves every other value as it is.
    return Deviation(
        feature=spec.name,
        observed=float(observed) + 0.0,
        typical=float(median) + 0.0,
        typical_low=float(low) + 0.0,
        typical_high=float(high) + 0.0,
        z=float(z) + 0.0,
        text=deviation_sentence(spec, observed, median, low, high),
        technique=spec.technique,
        share=None if share is None else float(share),
        combination=combination,
    )


def _fmt(value: float) -> str:
    """A typical value as the sentence shows it: never "-0", nor "-0.00" for a tiny negative.

    Examples
    --------
    >>> _fmt(-0.0), _fmt(-0.001), _fmt(3.0), _fmt(5.489), _fmt(-1.5)
    ('0', '0.00', '3', '5.49', '-1.50')
    """
    text = f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def deviation_sentence(
    spec: FeatureSpec, observed: float, median: float, low: float, high: float
) -> str:
    """The analyst's sentence for one deviating feature, from the spec's ``explain`` template.

    A ``(s)`` in the template agrees with the observed count: nothing when it reads 1, else
    ``s`` ("1 logon", "0 logons", "2 logons").

    Examples
    --------
    >>> spec = FeatureSpec(name="usb", kind="count", explain="{observed:g} USB copies")
    >>> deviation_sentence(spec, 412.0, 1.0, 0.0, 3.0)
    '412 USB copies (typical 0–3)'
    >>> spec = FeatureSpec(name="hosts", kind="count", explain="on {observed:g} machine(s)")
    >>> deviation_sentence(spec, 1.0, 3.0, 3.0, 3.0), deviation_sentence(spec, 7.0, 3.0, 3.0, 3.0)
    ('on 1 machine (typical 3)', 'on 7 machines (typical 3)')
    """
    observed = float(observed) + 0.0  # no "-0" from a negative zero
    typical = _fmt(median) if low == high else f"{_fmt(low)}–{_fmt(high)}"
    template = spec.explain or "{name} = {observed:g} (typical {typical})"
    try:
        text = template.format(observed=observed, typical=typical, name=spec.name)
    except (KeyError, IndexError, ValueError):
        text = f"{spec.name} = {observed:g}"
    # The count as the sentence shows it: 0.9999999 reads "1" and takes the singular.
    text = text.replace("(s)", "" if f"{observed:g}" == "1" else "s")
    if "{typical}" not in template:
        text += f" (typical {typical})"
    return text
