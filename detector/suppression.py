"""Allow-lists: findings an operator has reviewed and decided to mute, with a reason.

A TOML file of ``[[allow]]`` entries::

    [[allow]]
    entity = "svc-backup*"         # glob over entity names (required)
    feature = "off_hours_auths"    # optional: mute only this feature's part of a finding
    detector = "tail"              # optional: only findings of this detector
    expires = 2026-12-31           # optional: no finding of a later window is muted by it
    reason = "nightly backup job"  # required: why it is muted

An entry without ``feature`` mutes the entity's findings entirely. An entry with ``feature``
removes that feature from a finding's explanation; a finding left with no deviating feature is
muted. Every muted finding is counted, so suppression never hides silently.

A finding that keeps some of its features keeps the detector's score and severity: they are
the model's judgement of the whole window (the muted features included), which the allow-list
does not re-score; only its explanation (and the ATT&CK techniques drawn from it) loses the
muted features. A muted finding is not an alert: in the daemon it takes no slot of the daily
alert cap (the scorer is given the allow-list and skips it there), and adds no risk.

``expires`` is compared with the day the finding's window starts, not with today's date: a
retrospective scan of 2010 logs honours an entry that was valid in 2010, and an entry that has
since expired still mutes the findings of the windows it covered. A live daemon, whose windows
are recent, stops applying an entry once its windows pass that day.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from detector.alerts import Alert
from detector.errors import UsageError

_KEYS = {"entity", "feature", "detector", "expires", "reason"}


@dataclass(frozen=True)
class AllowEntry:
    """One reviewed exception.

    Examples
    --------
    >>> AllowEntry(entity="adm-*", reason="maintenance").covers_entity("adm-7")
    True
    """

    entity: str
    reason: str
    feature: str | None = None
    detector: str | None = None
    expires: date | None = None

    def covers_entity(self, entity: str) -> bool:
        return fnmatch.fnmatchcase(entity, self.entity)

    def active_on(self, day: date) -> bool:
        """Whether the entry applies to a finding of a window on ``day`` (not today's date).

        >>> entry = AllowEntry(entity="a", reason="r", expires=date(2010, 6, 30))
        >>> entry.active_on(date(2010, 6, 30)), entry.active_on(date(2010, 7, 1))
        (True, False)
        """
        return self.expires is None or day <= self.expires


@dataclass(frozen=True)
class Allowlist:
    """The entries of an allow-list file, applied to alerts.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> from detector.alerts import Deviation
    >>> allow = Allowlist((AllowEntry(entity="ADM*", feature="off_hours_auths",
    ...                               reason="change window"),))
    >>> devs = (Deviation("off_hours_auths", 40, 0, 0, 2, 9.0, "40 auths off hours"),)
    >>> alert = Alert.build(entity="ADM1", window_start=datetime(2010, 3, 1, tzinfo=UTC),
    ...     window_end=datetime(2010, 3, 2, tzinfo=UTC), detector="tail", score=9.0,
    ...     threshold=5.0, severity="high", schema_hash="h", deviations=devs)
    >>> kept, muted = allow.apply([alert])
    >>> len(kept), muted
    (0, 1)
    """

    entries: tuple[AllowEntry, ...] = ()

    @classmethod
    def load(cls, path: Path) -> Allowlist:
        """Read and check an allow-list file; a bad entry stops with its position and key."""
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"allow-list not found: {path}") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read allow-list {path}: {exc}") from None
        unknown_tables = sorted(set(data) - {"allow"})
        if unknown_tables:
            raise UsageError(f"allow-list {path}: unknown table {unknown_tables[0]!r}")
        raw = data.get("allow", [])
        if not isinstance(raw, list):
            raise UsageError(f"allow-list {path}: 'allow' must be an array of tables [[allow]]")
        entries: list[AllowEntry] = []
        for number, item in enumerate(raw, start=1):
            where = f"allow-list {path}: entry {number}"
            unknown = sorted(set(item) - _KEYS)
            if unknown:
                raise UsageError(f"{where}: unknown key {unknown[0]!r}")
            for key in ("entity", "reason"):
                if not isinstance(item.get(key), str) or not item[key].strip():
                    raise UsageError(f"{where}: '{key}' is required (a non-empty string)")
            for key in ("feature", "detector"):
                if key in item and not isinstance(item[key], str):
                    raise UsageError(f"{where}: '{key}' must be a string")
            expires = item.get("expires")
            if expires is not None and not isinstance(expires, date):
                raise UsageError(f"{where}: 'expires' must be a date like 2026-12-31")
            entries.append(
                AllowEntry(
                    entity=item["entity"],
                    reason=item["reason"],
                    feature=item.get("feature"),
                    detector=item.get("detector"),
                    expires=expires,
                )
            )
        return cls(tuple(entries))

    def matching(self, entity: str, day: date, detector: str) -> list[AllowEntry]:
        """The entries that apply to a finding of ``entity`` by ``detector`` in a window
        starting on ``day``.

        >>> allow = Allowlist((AllowEntry(entity="a*", reason="r", detector="tail"),))
        >>> len(allow.matching("ann", date(2010, 1, 4), "tail")), allow.matching(
        ...     "ann", date(2010, 1, 4), "robust_window")
        (1, [])
        """
        return [
            e
            for e in self.entries
            if e.covers_entity(entity)
            and e.active_on(day)
            and (e.detector is None or e.detector == detector)
        ]

    def mutes(
        self,
        entity: str,
        day: date,
        detector: str,
        explaining: Callable[[], Sequence[str]],
    ) -> bool:
        """Whether :meth:`apply` would mute such a finding entirely.

        ``explaining`` gives the features of the finding's explanation; it is called only
        when an entry with a ``feature`` applies (an explanation costs more than this test).

        >>> allow = Allowlist((AllowEntry(entity="ann", feature="usb", reason="r"),))
        >>> day = date(2010, 1, 4)
        >>> allow.mutes("ann", day, "tail", lambda: ["usb"]), allow.mutes(
        ...     "ann", day, "tail", lambda: ["usb", "logons"])
        (True, False)
        """
        matching = self.matching(entity, day, detector)
        if not matching:
            return False
        if any(e.feature is None for e in matching):
            return True
        allowed = {e.feature for e in matching}
        features = explaining()
        return bool(features) and all(feature in allowed for feature in features)

    def apply(self, alerts: Sequence[Alert]) -> tuple[list[Alert], int]:
        """The alerts that remain after the allow-list, and how many were muted.

        A partly muted alert keeps its score and severity (see the module documentation).
        """
        kept: list[Alert] = []
        muted = 0
        for alert in alerts:
            matching = self.matching(alert.entity, alert.window_start.date(), alert.detector)
            if any(e.feature is None for e in matching):
                muted += 1
                continue
            allowed = {e.feature for e in matching}
            if not allowed:
                kept.append(alert)
                continue
            remaining = tuple(d for d in alert.deviations if d.feature not in allowed)
            if alert.deviations and not remaining:
                muted += 1
                continue
            if len(remaining) != len(alert.deviations):
                alert = replace(
                    alert,
                    deviations=remaining,
                    techniques=tuple(dict.fromkeys(d.technique for d in remaining if d.technique)),
                )
            kept.append(alert)
        return kept, muted
