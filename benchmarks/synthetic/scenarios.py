"""The five planted insider / intruder scenarios and the ground truth they leave.

Planting runs in three steps so every log stays consistent: :func:`choose_insiders` picks
users whose role fits and adjusts their habits before the schedule is drawn;
:func:`plan_scenarios` fixes the days and removes leavers from the schedule; and
:func:`inject_scenarios` writes the malicious events once the ordinary ones exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.synthetic import activity as act
from benchmarks.synthetic.activity import World
from benchmarks.synthetic.org import (
    ADMIN,
    DEVELOPER,
    MANAGER,
    OFFICE,
    SALES,
    SHIFT,
    Calendar,
    Organisation,
)
from benchmarks.synthetic.schedule import DAY, HOUR, Schedule

Array = npt.NDArray[Any]

SCENARIO_NAMES: dict[int, str] = {
    1: "after-hours logons, USB copies and upload to a leak site, then leaves",
    2: "job-site browsing then growing USB file theft, then leaves for a competitor",
    3: "admin downloads a keylogger and sends a mass email from the supervisor's PC",
    4: "compromised account authenticates to dozens of new hosts at night",
    5: "beaconing to a rare domain at a near-constant period",
}


def training_days(days: int) -> int:
    """Length of the clean training prefix (the first third); nothing is planted in it.

    Examples
    --------
    >>> training_days(180), training_days(30), training_days(31)
    (60, 10, 11)
    """
    return math.ceil(days / 3)


def insiders_per_scenario(users: int) -> int:
    """How many users carry each scenario: 1 below 2000 users, 2 below 5000, then 3.

    Insiders are rare: at 1000 users the five scenarios plant six accounts (scenario 3 also
    abuses its supervisor's), well inside the top 1% that an analyst would review.

    Examples
    --------
    >>> insiders_per_scenario(100), insiders_per_scenario(1000), insiders_per_scenario(4000)
    (1, 1, 2)
    """
    return 1 if users < 2000 else 2 if users < 5000 else 3


@dataclass
class Truth:
    """Labelled user-days: ground truth (scenario number) or decoys (kind).

    Examples
    --------
    >>> t = Truth()
    >>> t.mark(3, np.array([10, 90_000, 90_001]), "1")
    >>> sorted(t.rows)
    [(3, 0, '1'), (3, 1, '1')]
    """

    rows: set[tuple[int, int, str]] = field(default_factory=set)
    redteam: list[tuple[int, int, int, int]] = field(default_factory=list)
    """Compromise events, LANL ``redteam.txt`` style: (seconds, user, src, dst computer code)."""

    def mark(self, user: int, ts: Array, label: str) -> None:
        """Label every day that ``ts`` (seconds since the period start) touches."""
        for day in np.unique(np.asarray(ts) // DAY).tolist():
            self.rows.add((user, int(day), label))

    def mark_days(self, user: int, days: Array | list[int], label: str) -> None:
        """Label whole days directly."""
        for day in np.asarray(days, dtype=np.int64).tolist():
            self.rows.add((user, int(day), label))


@dataclass
class Plan:
    """One planted instance: who, which days, and the scenario's extra actors."""

    scenario: int
    user: int
    days: dict[str, list[int]] = field(default_factory=dict)
    partner: int = -1  # scenario 3: the supervisor whose PC and account are abused


def choose_insiders(rng: np.random.Generator, org: Organisation) -> list[Plan]:
    """Pick the insiders (distinct users) and make their habits fit their scenario."""
    count = insiders_per_scenario(org.n)
    used: set[int] = {0}
    plans: list[Plan] = []

    def pick(candidates: list[int]) -> int:
        free = [u for u in candidates if u not in used]
        if not free:
            raise ValueError("organisation too small to plant every scenario")
        user = int(free[int(rng.integers(len(free)))])
        used.add(user)
        return user

    everyone = range(org.n)
    for scenario in (3, 1, 2, 4, 5):
        for _ in range(count):
            if scenario == 3:
                admins = [
                    u
                    for u in everyone
                    if org.rhythm[u] == ADMIN
                    and org.supervisor[u] > 0
                    and int(org.supervisor[u]) not in used
                ]
                user = pick(admins)
                partner = int(org.supervisor[user])
                used.add(partner)
                plans.append(Plan(3, user, partner=partner))
                continue
            if scenario == 1:
                pool = [u for u in everyone if org.rhythm[u] == OFFICE]
            elif scenario == 2:
                pool = [u for u in everyone if org.rhythm[u] in (OFFICE, DEVELOPER, SALES)]
            elif scenario == 4:
                pool = [u for u in everyone if org.rhythm[u] in (OFFICE, DEVELOPER, MANAGER)]
            else:
                pool = [u for u in everyone if org.rhythm[u] not in (SHIFT, ADMIN)]
            user = pick(pool)
            plans.append(Plan(scenario, user))
            if scenario == 1:
                # Someone who never works late and never used a USB stick.
                org.late_prob[user] = 0.0
                org.weekend_prob[user] = 0.0
                org.usb_day_prob[user] = 0.0
            if scenario == 2:
                org.usb_day_prob[user] = min(float(org.usb_day_prob[user]), 0.15)
                org.usb_copy_rate[user] = 1.5
    plans.sort(key=lambda p: (p.scenario, p.user))
    return plans


def _force_workdays(sched: Schedule, cal: Calendar, user: int, lo: int, hi: int) -> Array:
    """Make ``user`` present on every workday in ``[lo, hi)``; returns those days."""
    hi = min(hi, cal.days)
    days = np.arange(lo, hi)
    days = days[cal.workday[lo:hi]]
    sched.present[user, days] = True
    return days


def plan_scenarios(
    rng: np.random.Generator, plans: list[Plan], cal: Calendar, sched: Schedule
) -> None:
    """Fix each plan's days inside the test period and cut leavers from the schedule."""
    days = cal.days
    first = training_days(days) + 1
    for plan in plans:
        user = plan.user
        if plan.scenario == 1:
            span = int(np.clip(days // 12, 4, 14))
            begin = int(rng.integers(first, max(first + 1, days - span - 1)))
            work = _force_workdays(sched, cal, user, begin, begin + span)
            nights = work[rng.random(len(work)) < 0.6]
            if len(nights) < 2:
                nights = work[-2:]
            plan.days["night"] = nights.tolist()
            plan.days["upload"] = nights[-2:].tolist()
            sched.employ(user, leave_day=min(days, int(nights[-1]) + 2))
        elif plan.scenario == 2:
            job = int(np.clip(days // 5, 6, 42))
            copy = int(np.clip(days // 10, 3, 21))
            begin = int(rng.integers(first, max(first + 1, days - job - copy)))
            search = _force_workdays(sched, cal, user, begin, begin + job + copy)
            copies = search[search >= begin + job]
            progress = (search - begin) / (job + copy)
            keep = rng.random(len(search)) < 0.5 + 0.5 * progress
            plan.days["search"] = search[keep].tolist()
            plan.days["copy"] = copies.tolist()
            sched.employ(user, leave_day=min(days, begin + job + copy))
        elif plan.scenario == 3:
            begin = int(rng.integers(first, max(first + 1, days - 6)))
            work = np.flatnonzero(cal.workday[begin:]) + begin
            download = int(work[0])
            strike = int(work[1]) if len(work) > 1 else download
            sched.present[user, [download, strike]] = True
            sched.present[plan.partner, strike] = True
            plan.days["download"] = [download]
            plan.days["strike"] = [strike]
            sched.employ(user, leave_day=min(days, strike + 1 + int(rng.integers(0, 3))))
        elif plan.scenario == 4:
            span = int(np.clip(days // 20, 3, 8))
            begin = int(rng.integers(first, max(first + 1, days - span)))
            plan.days["spread"] = list(range(begin, min(days, begin + span)))
        else:
            span = int(np.clip(days // 15, 3, 10))
            begin = int(rng.integers(first, max(first + 1, days - span)))
            beacon = _force_workdays(sched, cal, user, begin, begin + span)
            if not len(beacon):
                # A short organisation's span can hold only weekend days and holidays: beacon
                # on the next workday instead (the previous one at the very end), drawing no
                # random number, so organisations whose span has a workday are unchanged.
                later = np.flatnonzero(cal.workday[begin:]) + begin
                earlier = np.flatnonzero(cal.workday[first:begin]) + first
                day = int(later[0]) if len(later) else int(earlier[-1])
                beacon = _force_workdays(sched, cal, user, day, day + 1)
            plan.days["beacon"] = beacon.tolist()


def inject_scenarios(
    rng: np.random.Generator, world: World, plans: list[Plan], truth: Truth
) -> None:
    """Write the malicious events of every plan and label the user-days they touch."""
    for plan in plans:
        label = str(plan.scenario)
        if plan.scenario == 1:
            _leak(rng, world, plan, truth, label)
        elif plan.scenario == 2:
            _job_theft(rng, world, plan, truth, label)
        elif plan.scenario == 3:
            _keylogger(rng, world, plan, truth, label)
        elif plan.scenario == 4:
            _lateral(rng, world, plan, truth, label)
        else:
            _beacon(rng, world, plan, truth, label)


def _usb_copy(
    rng: np.random.Generator,
    world: World,
    user: int,
    pc: int,
    connect: int,
    disconnect: int,
    files: Array,
) -> Array:
    """A USB session with ``files`` copied onto the stick; returns all event times."""
    tree = int(world.user_tree[user])
    world.device.add(np.array([connect]), user=user, pc=pc, file_tree=tree, activity=act.CONNECT)
    world.device.add(np.array([disconnect]), user=user, pc=pc, file_tree=-1, activity=1)
    ts = np.sort(rng.integers(connect + 5, max(connect + 6, disconnect - 5), len(files)))
    world.file.add(
        ts,
        user=user,
        pc=pc,
        filename=files,
        activity=act.FILE_COPY,
        to_removable_media=1,
        from_removable_media=0,
        content=rng.integers(0, len(world.contents), len(files)),
    )
    return np.concatenate([[connect, disconnect], ts])


def _stolen_files(rng: np.random.Generator, world: World, user: int, k: int) -> Array:
    """Files to steal: the user's own plus shared project documents they rarely touch."""
    own = world.user_files[user, rng.integers(0, act.FILES_PER_USER, k)]
    shared = world.files.codes(
        [f"C:\\shared\\{'ABCDEFGH'[i % 8]}{int(rng.integers(1000, 9999))}.docx" for i in range(k)]
    )
    return np.where(rng.random(k) < 0.5, own, shared)


def _leak(rng: np.random.Generator, world: World, plan: Plan, truth: Truth, label: str) -> None:
    user, pc = plan.user, int(world.org.pc[plan.user])
    leak_site = act.LEAK_SITES[int(rng.integers(len(act.LEAK_SITES)))]
    for day in plan.days["night"]:
        logon = day * DAY + int(rng.integers(int(0.5 * HOUR), 4 * HOUR))
        logoff = logon + int(rng.integers(40 * 60, 100 * 60))
        world.logon.add(np.array([logon, logoff]), user=user, pc=pc, activity=np.array([0, 1]))
        connect = logon + int(rng.integers(60, 600))
        disconnect = logoff - int(rng.integers(60, 300))
        files = _stolen_files(rng, world, user, int(rng.integers(8, 30)))
        times = _usb_copy(rng, world, user, pc, connect, disconnect, files)
        truth.mark(user, np.concatenate([[logon, logoff], times]), label)
        if day in plan.days["upload"]:
            k = int(rng.integers(2, 6))
            ts = np.sort(rng.integers(connect, disconnect, k))
            url = world.url(leak_site, "submit/upload.php")
            world.http.add(ts, user=user, pc=pc, url=url, activity=act.UPLOAD, content=0)
            truth.mark(user, ts, label)


def _job_theft(
    rng: np.random.Generator, world: World, plan: Plan, truth: Truth, label: str
) -> None:
    user = plan.user
    search, copies = plan.days["search"], plan.days["copy"]
    for i, day in enumerate(search):
        start, end = world.session(user, day)
        k = int(2 + 14 * (i + 1) / len(search) + rng.integers(0, 3))
        ts = np.sort(rng.integers(start, end, k))
        sites = rng.choice(act.JOB_SITES, size=k)
        url = np.array(
            [world.url(site, f"jobs/search?q={_job_query(rng)}") for site in sites.tolist()]
        )
        pc = int(world.sched.pc[user, day])
        world.http.add(
            ts, user=user, pc=pc, url=url, activity=act.VISIT, content=act.http_codes(world, url)
        )
        truth.mark(user, ts, label)
    for i, day in enumerate(copies):
        start, end = world.session(user, day)
        pc = int(world.sched.pc[user, day])
        k = int(15 + 60 * (i + 1) / len(copies))
        connect = int(rng.integers(start, max(start + 1, end - 2 * HOUR)))
        disconnect = min(end, connect + int(rng.integers(HOUR, 2 * HOUR)))
        times = _usb_copy(
            rng, world, user, pc, connect, disconnect, _stolen_files(rng, world, user, k)
        )
        truth.mark(user, times, label)


def _job_query(rng: np.random.Generator) -> str:
    titles = ("engineer", "analyst", "manager", "developer", "accountant", "sales", "director")
    return str(titles[int(rng.integers(len(titles)))])


def _keylogger(
    rng: np.random.Generator, world: World, plan: Plan, truth: Truth, label: str
) -> None:
    admin, boss = plan.user, plan.partner
    admin_pc, boss_pc = int(world.org.pc[admin]), int(world.org.pc[boss])
    download = plan.days["download"][0]
    strike = plan.days["strike"][0]
    start, end = world.session(admin, download)
    site = world.domains[act.N_POPULAR + int(rng.integers(act.N_TAIL))]
    ts = np.sort(rng.integers(start, end - 3 * HOUR, 3))
    urls = np.array(
        [
            world.url(site, "tools/index.html"),
            world.url(site, "download/keylogger_setup.exe"),
            world.url(site, "download/keylogger_setup.exe"),
        ]
    )
    world.http.add(ts, user=admin, pc=admin_pc, url=urls, activity=np.array([0, 1, 1]), content=0)
    connect = int(ts[-1]) + int(rng.integers(300, 1800))
    tool = world.files.codes(["C:\\Downloads\\keylogger_setup.exe"])
    times = _usb_copy(rng, world, admin, admin_pc, connect, connect + 900, tool)
    truth.mark(admin, np.concatenate([ts, times]), label)

    # The strike: after the supervisor has gone home, at the supervisor's own PC.
    boss_end = int(world.sched.end[boss, strike])
    logon = strike * DAY + min(boss_end + int(rng.integers(HOUR, 3 * HOUR)), 23 * HOUR)
    logoff = logon + int(rng.integers(20 * 60, 40 * 60))
    world.logon.add(np.array([logon, logoff]), user=admin, pc=boss_pc, activity=np.array([0, 1]))
    world.device.add(
        np.array([logon + 60]),
        user=admin,
        pc=boss_pc,
        file_tree=int(world.user_tree[admin]),
        activity=act.CONNECT,
    )
    world.device.add(
        np.array([logon + 240]), user=admin, pc=boss_pc, file_tree=-1, activity=act.DISCONNECT
    )
    truth.mark(admin, np.array([logon, logoff]), label)
    recipients = rng.choice(
        len(world.org.emails), size=min(len(world.org.emails), 60), replace=False
    )
    to = world.addresses.code(";".join(world.org.emails[r] for r in sorted(recipients.tolist())))
    content = world.contents.code("urgent layoffs announcement company failing resign now")
    sent = np.array([logon + int(rng.integers(300, 900))])
    world.email.add(
        sent,
        user=boss,
        pc=boss_pc,
        to1=to,
        to2=-1,
        to3=-1,
        cc1=-1,
        cc2=-1,
        bcc1=-1,
        **{"from": boss},
        activity=act.SEND,
        size=int(rng.integers(20000, 40000)),
        att1=-1,
        att2=-1,
        content=content,
    )
    truth.mark(boss, sent, label)


def _lateral(rng: np.random.Generator, world: World, plan: Plan, truth: Truth, label: str) -> None:
    user = plan.user
    home = world.computer(int(world.org.pc[user]))
    known = set(world.destinations[user].tolist()) | {home}
    candidates = np.array(
        [c for c in range(len(world.computers)) if c not in known], dtype=np.int64
    )
    pool = rng.permutation(candidates)
    reached: list[int] = [home]
    taken = 0
    for i, day in enumerate(plan.days["spread"]):
        fan_out = min(3 + round(4.5 * i), len(pool) - taken)
        targets = pool[taken : taken + fan_out]
        taken += fan_out
        night = rng.random(fan_out) < 0.7
        hour = np.where(night, rng.uniform(0.5, 5.0, fan_out), rng.uniform(20.0, 23.9, fan_out))
        ts = day * DAY + (hour * HOUR).astype(np.int64)
        src = np.array(reached)[rng.integers(0, len(reached), fan_out)]
        failed = rng.random(fan_out) < 0.25
        auth_type = np.where(rng.random(fan_out) < 0.6, act.NTLM, act.KERBEROS)
        world.auth.add(
            ts[failed] - 30,
            src_user=user,
            dst_user=user,
            src_computer=src[failed],
            dst_computer=targets[failed],
            auth_type=auth_type[failed],
            logon_type=act.NETWORK,
            auth_orientation=act.ORIENT_LOGON,
            success=act.FAIL,
        )
        world.auth.add(
            ts,
            src_user=user,
            dst_user=user,
            src_computer=src,
            dst_computer=targets,
            auth_type=auth_type,
            logon_type=act.NETWORK,
            auth_orientation=act.ORIENT_LOGON,
            success=act.SUCCESS,
        )
        truth.mark(user, ts, label)
        truth.redteam += [
            (int(t), user, int(a), int(b))
            for t, a, b in zip(ts.tolist(), src.tolist(), targets.tolist(), strict=True)
        ]
        # Hands-on-keyboard on a reached workstation now and then.
        workstations = [int(t) for t in targets.tolist() if t < len(world.pcs)]
        if i >= 1 and workstations:
            pc = workstations[0]
            logon = day * DAY + int(rng.integers(HOUR, 4 * HOUR))
            world.logon.add(
                np.array([logon, logon + int(rng.integers(600, 2400))]),
                user=user,
                pc=pc,
                activity=np.array([0, 1]),
            )
            truth.mark(user, np.array([logon]), label)
        reached.extend(targets.tolist())


def _beacon(rng: np.random.Generator, world: World, plan: Plan, truth: Truth, label: str) -> None:
    user = plan.user
    name = "".join(chr(c) for c in rng.integers(97, 123, 10).tolist())
    url = world.url(f"{name}-cdn.net", "api/v2/status.php")
    for day in plan.days["beacon"]:
        start, end = world.session(user, day)
        ts = np.arange(start + 120, end, 300) + rng.integers(
            -3, 4, len(range(start + 120, end, 300))
        )
        pc = int(world.sched.pc[user, day])
        world.http.add(ts, user=user, pc=pc, url=url, activity=act.VISIT, content=0)
        truth.mark(user, ts, label)
