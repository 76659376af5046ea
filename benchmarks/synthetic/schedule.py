"""Who is at work on which day, from when to when, and at which PC.

The schedule is a handful of (users x days) arrays. Activity generators draw every event
inside these sessions, so a change here (a vacation, a late night, a laptop swap, a leaver)
shows up consistently in every log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.synthetic.org import (
    ADMIN,
    SALES,
    SHIFT,
    SHIFT_START_HOURS,
    Calendar,
    Organisation,
)

Array = npt.NDArray[Any]
HOUR = 3600
DAY = 86400


@dataclass
class Schedule:
    """Per user-day session: presence, start and end (seconds from that day's 00:00; the end
    may pass midnight) and the PC used.

    ``hire_day`` is the first employed day, ``leave_day`` the first day no longer employed
    (``days`` when the user stays).

    Examples
    --------
    >>> from datetime import date
    >>> from benchmarks.synthetic.org import build_organisation
    >>> rng = np.random.default_rng(3)
    >>> org = build_organisation(rng, 40)
    >>> cal = Calendar.build(date(2010, 1, 4), 21)
    >>> s = build_schedule(rng, org, cal)
    >>> s.present.shape, bool((s.end[s.present] > s.start[s.present]).all())
    ((40, 21), True)
    """

    present: Array
    start: Array
    end: Array
    pc: Array
    hire_day: Array
    leave_day: Array

    def employ(self, user: int, hire_day: int | None = None, leave_day: int | None = None) -> None:
        """Restrict ``user``'s employment; days outside it become absent."""
        if hire_day is not None:
            self.hire_day[user] = hire_day
            self.present[user, :hire_day] = False
        if leave_day is not None:
            self.leave_day[user] = leave_day
            self.present[user, leave_day:] = False

    def present_days(self, user: int, lo: int = 0, hi: int | None = None) -> Array:
        """Day indices in ``[lo, hi)`` on which ``user`` works."""
        row = self.present[user]
        days = np.flatnonzero(row)
        return days[(days >= lo) & (days < (len(row) if hi is None else hi))]


def build_schedule(rng: np.random.Generator, org: Organisation, cal: Calendar) -> Schedule:
    """Draw presence, session times and PCs for every user and day."""
    n, days = org.n, cal.days
    present = np.zeros((n, days), dtype=bool)
    start = np.zeros((n, days), dtype=np.int64)
    end = np.zeros((n, days), dtype=np.int64)
    pc = np.repeat(org.pc[:, None], days, axis=1)
    day_index = np.arange(days)
    weekend = cal.weekday >= 5
    for user in range(n):
        cls = org.rhythm[user]
        if cls == SHIFT:
            # A rota of 5 days on, 2 off, shifted per person; the plant runs on holidays
            # with a reduced crew.
            offset = int(rng.integers(7))
            works = ((day_index + offset) % 7) < 5
            works &= ~(cal.holiday & (rng.random(days) < 0.5))
            kind = int(org.shift_kind[user])
            kinds = (day_index // 7 + offset) % 3 if kind == 3 else np.full(days, kind)
            base = np.array(SHIFT_START_HOURS)[kinds] * HOUR
            first = base + rng.normal(0, 0.2, days) * HOUR
            length = (org.duration[user] + rng.normal(0, 0.25, days)) * HOUR
            weekend_work = np.zeros(days, dtype=bool)
        else:
            works = cal.workday.copy()
            weekend_work = weekend & ~cal.holiday & (rng.random(days) < org.weekend_prob[user])
            earliest = 5.0 if cls in (SALES, ADMIN) else 6.0
            first_hours = org.start_hour[user] + rng.normal(0, org.start_sd[user], days)
            first = np.clip(first_hours, earliest, 12.0) * HOUR
            hours = org.duration[user] + rng.normal(0, 0.5, days)
            late = rng.random(days) < org.late_prob[user]
            hours = hours + late * rng.uniform(1.5, 4.0, days)
            length = np.clip(hours, 3.0, 16.0) * HOUR
            # Ordinary late evenings end before midnight; past-midnight nights are decoys.
            length = np.minimum(length, 23.75 * HOUR - first)
            weekend_first = rng.uniform(9.0, 14.0, days) * HOUR
            weekend_length = rng.uniform(1.0, 4.0, days) * HOUR
            first = np.where(weekend_work, weekend_first, first)
            length = np.where(weekend_work, weekend_length, length)
        # Vacations (1-2 weeks) and sick days.
        for _ in range(int(rng.choice([0, 1, 1, 2]))):
            length_days = int(rng.integers(5, 15))
            if days > length_days:
                begin = int(rng.integers(0, days - length_days))
                works[begin : begin + length_days] = False
                weekend_work[begin : begin + length_days] = False
        sick = rng.random(days) < 0.02
        present[user] = (works | weekend_work) & ~sick
        start[user] = first.astype(np.int64)
        end[user] = (first + length).astype(np.int64)
        pool = org.pc_pool[user]
        if cls == SHIFT and len(pool) > 1:
            pc[user] = pool[rng.integers(0, len(pool), days)]
        elif cls == SALES and len(pool) > 1:
            away = rng.random(days) < 0.3
            pc[user] = np.where(away, pool[rng.integers(0, len(pool), days)], org.pc[user])
    return Schedule(
        present=present,
        start=start,
        end=end,
        pc=pc,
        hire_day=np.zeros(n, dtype=np.int64),
        leave_day=np.full(n, days, dtype=np.int64),
    )
