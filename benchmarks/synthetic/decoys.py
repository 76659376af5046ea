"""Benign rare events: the things that look odd but are not attacks.

They make the benchmark hard: a detector that flags anything rare drowns in these, while one
that knows each user's and each peer group's normal should rank them below the insiders.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.synthetic import activity as act
from benchmarks.synthetic.activity import World
from benchmarks.synthetic.org import ADMIN, DEPARTMENTS, SHIFT, Calendar, Organisation
from benchmarks.synthetic.scenarios import Truth, training_days
from benchmarks.synthetic.schedule import DAY, HOUR, Schedule

Array = npt.NDArray[Any]

DECOY_KINDS: dict[str, str] = {
    "new_hire": "joined mid-period: no history (cold start)",
    "return_from_leave": "back after several weeks of leave",
    "laptop_swap": "moved to a brand-new PC for good",
    "deadline_night": "worked past midnight before a deadline",
    "department_new_site": "whole department adopted a new web tool the same week",
    "maintenance_night": "admin maintenance night across many hosts",
    "usb_presentation": "one-off USB copy of slides for a presentation",
    "job_site_browsing": "a few days of job-site browsing and nothing else",
}


def decoys_per_kind(users: int) -> int:
    """How many instances of each decoy kind: at least 2, about one per 150 users.

    Examples
    --------
    >>> decoys_per_kind(40), decoys_per_kind(1000)
    (2, 7)
    """
    return max(2, round(users / 150))


class _Picker:
    """Draws distinct users, never the planted ones."""

    def __init__(self, rng: np.random.Generator, excluded: set[int]) -> None:
        self.rng = rng
        self.used = set(excluded) | {0}

    def pick(self, candidates: Iterable[int]) -> int | None:
        free = [int(u) for u in candidates if int(u) not in self.used]
        if not free:
            return None
        user = free[int(self.rng.integers(len(free)))]
        self.used.add(user)
        return user


def _first_present(sched: Schedule, user: int, lo: int, k: int) -> Array:
    return sched.present_days(user, lo)[:k]


def apply_schedule_decoys(
    rng: np.random.Generator,
    org: Organisation,
    cal: Calendar,
    sched: Schedule,
    planted: set[int],
    decoys: Truth,
) -> None:
    """Decoys that change the schedule (and PCs) before any event is drawn."""
    days = cal.days
    first = training_days(days)
    count = decoys_per_kind(org.n)
    picker = _Picker(rng, planted | {int(s) for s in org.supervisor.tolist() if s >= 0})
    office_like = [u for u in range(org.n) if org.rhythm[u] != SHIFT]
    for _ in range(count):
        user = picker.pick(range(org.n))
        if user is not None:
            hire = int(rng.integers(days // 4, max(days // 4 + 1, days - 7)))
            sched.employ(user, hire_day=hire)
            decoys.mark_days(user, _first_present(sched, user, hire, 5), "new_hire")
        user = picker.pick(range(org.n))
        if user is not None:
            back = int(rng.integers(first + 3, max(first + 4, days - 3)))
            away = int(rng.integers(21, 50))
            sched.present[user, max(0, back - away) : back] = False
            decoys.mark_days(user, _first_present(sched, user, back, 3), "return_from_leave")
        user = picker.pick(office_like)
        if user is not None:
            swap = int(rng.integers(first, max(first + 1, days - 3)))
            new_pc = org.new_pc(rng)
            sched.pc[user, swap:] = new_pc
            org.pc[user] = new_pc
            org.pc_pool[user] = np.concatenate([[new_pc], org.pc_pool[user][1:]])
            decoys.mark_days(user, _first_present(sched, user, swap, 2), "laptop_swap")
        user = picker.pick(office_like)
        if user is not None:
            worked = sched.present_days(user, first)
            if len(worked):
                day = int(worked[int(rng.integers(len(worked)))])
                sched.end[user, day] = int(rng.uniform(24.3, 26.5) * HOUR)
                decoys.mark_days(user, [d for d in (day, day + 1) if d < days], "deadline_night")


def inject_decoys(rng: np.random.Generator, world: World, planted: set[int], decoys: Truth) -> None:
    """Decoys that add events on top of the ordinary ones."""
    org, sched, cal = world.org, world.sched, world.cal
    days = cal.days
    first = training_days(days)
    count = decoys_per_kind(org.n)
    excluded = planted | {u for u, _, _ in decoys.rows}
    picker = _Picker(rng, excluded)

    # A department adopts a new site the same week.
    for i in range(max(1, count // 2)):
        dept = int(rng.integers(len(DEPARTMENTS)))
        members = np.flatnonzero(org.department == dept)
        site = "".join(chr(c) for c in rng.integers(97, 123, 7).tolist()) + f"-{i}.io"
        url = world.url(site, "app/home")
        day0 = int(rng.integers(first, max(first + 1, days - 7)))
        for member in members.tolist():
            for day in sched.present_days(member, day0).tolist():
                start, end = world.session(member, day)
                k = int(rng.poisson(6 if day < day0 + 7 else 2))
                if k == 0:
                    continue
                ts = rng.integers(start, end, k)
                pc = int(sched.pc[member, day])
                world.http.add(ts, user=member, pc=pc, url=url, activity=act.VISIT, content=0)
                if day < day0 + 7:
                    decoys.mark(member, ts, "department_new_site")

    for _ in range(count):
        # An admin's maintenance night across many hosts.
        admins = [u for u in range(org.n) if org.rhythm[u] == ADMIN]
        user = picker.pick(admins)
        if user is not None:
            day = int(rng.integers(first, days - 1))
            hosts = np.concatenate([world.servers["infra"], world.servers["app"]])
            pcs = rng.choice(len(world.pcs), size=min(len(world.pcs), 25), replace=False)
            targets = np.concatenate([hosts, pcs])
            ts = day * DAY + (rng.uniform(21.0, 27.0, len(targets)) * HOUR).astype(np.int64)
            home = world.computer(int(org.pc[user]))
            world.auth.add(
                ts,
                src_user=user,
                dst_user=user,
                src_computer=home,
                dst_computer=targets,
                auth_type=act.KERBEROS,
                logon_type=act.NETWORK,
                auth_orientation=act.ORIENT_LOGON,
                success=act.SUCCESS,
            )
            visits = pcs[:6]
            logon = day * DAY + (rng.uniform(21.5, 26.0, len(visits)) * HOUR).astype(np.int64)
            world.logon.add(logon, user=user, pc=visits, activity=act.LOGON)
            world.logon.add(logon + 900, user=user, pc=visits, activity=act.LOGOFF)
            decoys.mark(user, np.concatenate([ts, logon]), "maintenance_night")

        # A one-off USB copy of presentation material by someone with no USB habit.
        no_usb = [u for u in range(org.n) if org.usb_day_prob[u] == 0 and org.rhythm[u] != SHIFT]
        user = picker.pick(no_usb)
        if user is not None:
            worked = sched.present_days(user, first)
            if len(worked):
                day = int(worked[int(rng.integers(len(worked)))])
                start, end = world.session(user, day)
                connect = int(rng.integers(start, max(start + 1, end - HOUR)))
                k = int(rng.integers(8, 25))
                files = world.files.codes(
                    [f"C:\\presentations\\deck_{day}_{j}.ppt" for j in range(k)]
                )
                ts = np.sort(rng.integers(connect + 10, connect + 1200, k))
                pc = int(sched.pc[user, day])
                tree = int(world.user_tree[user])
                world.device.add(
                    np.array([connect]), user=user, pc=pc, file_tree=tree, activity=act.CONNECT
                )
                world.device.add(
                    np.array([connect + 1300]),
                    user=user,
                    pc=pc,
                    file_tree=-1,
                    activity=act.DISCONNECT,
                )
                world.file.add(
                    ts,
                    user=user,
                    pc=pc,
                    filename=files,
                    activity=act.FILE_COPY,
                    to_removable_media=1,
                    from_removable_media=0,
                    content=0,
                )
                decoys.mark(user, ts, "usb_presentation")

        # A few days of job-site browsing that lead nowhere.
        user = picker.pick([u for u in range(org.n) if org.rhythm[u] != SHIFT])
        if user is not None:
            worked = sched.present_days(user, first)
            skip = int(rng.integers(0, max(1, len(worked) - 4)))
            for day in worked[skip : skip + int(rng.integers(2, 5))].tolist():
                start, end = world.session(user, day)
                k = int(rng.integers(3, 10))
                ts = rng.integers(start, end, k)
                sites = rng.choice(act.JOB_SITES, size=k).tolist()
                job_urls = np.array([world.url(site, "jobs/browse") for site in sites])
                pc = int(sched.pc[user, day])
                world.http.add(ts, user=user, pc=pc, url=job_urls, activity=act.VISIT, content=0)
                decoys.mark(user, ts, "job_site_browsing")
