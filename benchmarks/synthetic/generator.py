"""``generate``: a whole synthetic company's logs, ground truth and decoys in one call."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.synthetic import activity as act
from benchmarks.synthetic.activity import World, build_world, generate_ordinary
from benchmarks.synthetic.answers import write_answers
from benchmarks.synthetic.decoys import DECOY_KINDS, apply_schedule_decoys, inject_decoys
from benchmarks.synthetic.org import DEPARTMENTS, Calendar, Organisation, build_organisation
from benchmarks.synthetic.scenarios import (
    SCENARIO_NAMES,
    Truth,
    choose_insiders,
    inject_scenarios,
    plan_scenarios,
)
from benchmarks.synthetic.schedule import DAY, Schedule, build_schedule
from benchmarks.synthetic.tables import write_cert_csv

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "1.3.0"
#: Fewest days that hold every planted scenario.
MIN_DAYS = 14

# Independent random streams, so adding draws to one part never shifts another.
_STREAMS = (
    "org",
    "insiders",
    "schedule",
    "plan",
    "decoy_schedule",
    "world",
    "ordinary",
    "inject",
    "decoys",
)


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate` wrote.

    Examples
    --------
    >>> s = GenerationSummary(Path("out"), 7, 100, 30, date(2010, 1, 4), {"logon.csv": 5})
    >>> s.total_rows
    5
    """

    out: Path
    seed: int
    users: int
    days: int
    start: date
    row_counts: dict[str, int]
    planted: dict[str, list[str]] = field(default_factory=dict)
    ground_truth_rows: int = 0
    decoy_rows: int = 0
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        """Rows over all event files (``logon`` ... ``auth.txt``)."""
        return sum(self.row_counts.values())

    def describe(self) -> str:
        """A few lines for people: what was written where, and who was planted.

        Examples
        --------
        >>> s = GenerationSummary(Path("org"), 7, 100, 30, date(2010, 1, 4),
        ...                       {"logon.csv": 1200, "auth.txt": 34}, {"1": ["ACM2278"]}, 3, 2)
        >>> print(s.describe())
        wrote org: 100 users over 30 days, 2010-01-04 to 2010-02-02 (seed 7)
          1,234 events: logon.csv 1,200, auth.txt 34
          planted: scenario 1: ACM2278
          ground truth: org/ground_truth.csv (3 user-days), decoys: org/decoys.csv (2 user-days)
        """
        end = self.start + timedelta(days=self.days - 1)
        files = ", ".join(f"{name} {rows:,}" for name, rows in self.row_counts.items())
        planted = "; ".join(
            f"scenario {scenario}: {', '.join(users)}"
            for scenario, users in sorted(self.planted.items())
        )
        return "\n".join(
            [
                f"wrote {self.out}: {self.users} users over {self.days} days, "
                f"{self.start} to {end} (seed {self.seed})",
                f"  {self.total_rows:,} events: {files}",
                f"  planted: {planted or 'nobody'}",
                f"  ground truth: {self.out / 'ground_truth.csv'} ({self.ground_truth_rows} "
                f"user-days), decoys: {self.out / 'decoys.csv'} ({self.decoy_rows} user-days)",
            ]
        )


def generate(
    out: Path, *, users: int, days: int, seed: int, start: date = date(2010, 1, 4)
) -> GenerationSummary:
    """Write a synthetic organisation's CERT r6.2-style logs, LANL-style auth, LDAP snapshots,
    psychometrics, ground truth, decoys and a manifest into ``out``.

    The same arguments always produce byte-identical files.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     summary = generate(Path(tmp), users=30, days=14, seed=1)
    ...     header = (Path(tmp) / "logon.csv").read_text().splitlines()[0]
    >>> header, sorted(summary.planted)
    ('id,date,user,pc,activity', ['1', '2', '3', '4', '5'])
    """
    if days < MIN_DAYS:
        raise ValueError(f"days must be >= {MIN_DAYS} to plant the scenarios, got {days}")
    began = time.perf_counter()
    rngs = {
        name: np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
        for i, name in enumerate(_STREAMS)
    }
    cal = Calendar.build(start, days)
    org = build_organisation(rngs["org"], users)
    plans = choose_insiders(rngs["insiders"], org)
    sched = build_schedule(rngs["schedule"], org, cal)
    plan_scenarios(rngs["plan"], plans, cal, sched)
    planted_users = {p.user for p in plans} | {p.partner for p in plans if p.partner >= 0}
    decoys = Truth()
    apply_schedule_decoys(rngs["decoy_schedule"], org, cal, sched, planted_users, decoys)
    world = build_world(rngs["world"], org, cal, sched)
    generate_ordinary(rngs["ordinary"], world)
    truth = Truth()
    inject_scenarios(rngs["inject"], world, plans, truth)
    inject_decoys(rngs["decoys"], world, planted_users, decoys)
    logger.info("drew %d events in %.1fs", _event_rows(world), time.perf_counter() - began)

    out.mkdir(parents=True, exist_ok=True)
    horizon = days * DAY
    counts: dict[str, int] = {}
    counts["logon.csv"] = write_cert_csv(
        world.logon.frame(horizon), out / "logon.csv", act.LOGON_COLUMNS, salt=1, start=start
    )
    counts["device.csv"] = write_cert_csv(
        world.device.frame(horizon), out / "device.csv", act.DEVICE_COLUMNS, salt=2, start=start
    )
    counts["file.csv"] = write_cert_csv(
        world.file.frame(horizon), out / "file.csv", act.FILE_COLUMNS, salt=3, start=start
    )
    counts["email.csv"] = write_cert_csv(
        _email_frame(world.email.frame(horizon)),
        out / "email.csv",
        act.EMAIL_COLUMNS,
        salt=4,
        start=start,
    )
    counts["http.csv"] = write_cert_csv(
        world.http.frame(horizon), out / "http.csv", act.HTTP_COLUMNS, salt=5, start=start
    )
    auth = world.auth.frame(horizon).rename({"ts": "time"})
    auth.write_csv(out / "auth.txt", include_header=False)
    counts["auth.txt"] = auth.height
    _write_redteam(out, truth, world, org)

    _write_ldap(out, org_rows=_ldap_rows(org), cal=cal, sched=sched)
    pl.DataFrame(
        {
            "employee_name": org.names,
            "user_id": org.user_ids,
            **{trait: org.psychometric[:, i] for i, trait in enumerate("OCEAN")},
        }
    ).write_csv(out / "psychometric.csv")

    truth_frame = _labels(truth, org.user_ids, start, "scenario", SCENARIO_NAMES_TEXT)
    truth_frame.write_csv(out / "ground_truth.csv")
    write_answers(out, truth_frame)
    decoy_frame = _labels(decoys, org.user_ids, start, "kind", None)
    decoy_frame.write_csv(out / "decoys.csv")

    planted: dict[str, list[str]] = {}
    for plan in plans:
        planted.setdefault(str(plan.scenario), []).append(org.user_ids[plan.user])
        if plan.partner >= 0:
            planted[str(plan.scenario)].append(org.user_ids[plan.partner])
    seconds = time.perf_counter() - began
    manifest = {
        "generator": "baseliner.benchmarks.synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "users": users,
        "days": days,
        "start": start.isoformat(),
        "end": (start + timedelta(days=days - 1)).isoformat(),
        "lanl_epoch": f"{start.isoformat()}T00:00:00Z",
        "training_days": -(-days // 3),
        "row_counts": counts,
        "ground_truth_rows": truth_frame.height,
        "decoy_rows": decoy_frame.height,
        "planted": planted,
        "scenarios": {str(k): v for k, v in SCENARIO_NAMES.items()},
        "decoy_kinds": sorted(set(decoy_frame["kind"].to_list())),
        "departments": [f"{d.functional_unit} / {d.department}" for d in DEPARTMENTS],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    logger.info("wrote %d rows to %s in %.1fs", sum(counts.values()), out, seconds)
    return GenerationSummary(
        out=out,
        seed=seed,
        users=users,
        days=days,
        start=start,
        row_counts=counts,
        planted=planted,
        ground_truth_rows=truth_frame.height,
        decoy_rows=decoy_frame.height,
        seconds=seconds,
    )


def _write_redteam(out: Path, truth: Truth, world: World, org: Organisation) -> None:
    """LANL ``redteam.txt``: ``time,user@domain,src_computer,dst_computer`` of compromise events."""
    events = sorted(truth.redteam)
    names = world.computers.items
    lines = [
        f"{t},{org.user_ids[user]}@DOM1,{names[src]},{names[dst]}" for t, user, src, dst in events
    ]
    (out / "redteam.txt").write_text("".join(line + "\n" for line in lines))


SCENARIO_NAMES_TEXT: dict[str, str] = {
    "1": "after_hours_usb_leak_upload",
    "2": "job_search_usb_theft",
    "3": "admin_keylogger_mass_email",
    "4": "compromised_account_lateral_movement",
    "5": "c2_beacon",
}


def _event_rows(world: act.World) -> int:
    tables = (world.logon, world.device, world.file, world.email, world.http, world.auth)
    return sum(len(t) for t in tables)


def _email_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Join the per-slot recipient and attachment columns into CERT's ``;`` lists."""

    def joined(columns: list[str]) -> pl.Expr:
        text = pl.concat_str([pl.col(c) for c in columns], separator=";", ignore_nulls=True)
        return pl.when(pl.any_horizontal(pl.col(c).is_not_null() for c in columns)).then(text)

    return frame.select(
        "ts",
        "user",
        "pc",
        joined(["to1", "to2", "to3"]).alias("to"),
        joined(["cc1", "cc2"]).alias("cc"),
        pl.col("bcc1").alias("bcc"),
        "from",
        "activity",
        "size",
        joined(["att1", "att2"]).alias("attachments"),
        "content",
    )


def _ldap_rows(org: Organisation) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "employee_name": org.names,
            "user_id": org.user_ids,
            "email": org.emails,
            "role": org.role,
            "projects": org.projects,
            "business_unit": ["1"] * org.n,
            "functional_unit": [DEPARTMENTS[d].functional_unit for d in org.department.tolist()],
            "department": [DEPARTMENTS[d].department for d in org.department.tolist()],
            "team": [f"Team {t}" for t in org.team.tolist()],
            "supervisor": [org.names[s] if s >= 0 else None for s in org.supervisor.tolist()],
        }
    )


def _write_ldap(out: Path, *, org_rows: pl.DataFrame, cal: Calendar, sched: Schedule) -> None:
    """One snapshot per month: everyone employed on at least one day of that month."""
    folder = out / "LDAP"
    folder.mkdir(exist_ok=True)
    months: dict[str, list[int]] = {}
    for day in range(cal.days):
        months.setdefault(cal.date_of(day).strftime("%Y-%m"), []).append(day)
    for month, month_days in months.items():
        first, last = month_days[0], month_days[-1]
        employed = (sched.hire_day <= last) & (sched.leave_day > first)
        org_rows.filter(pl.Series(employed)).write_csv(folder / f"{month}.csv")


def _labels(
    truth: Truth, user_ids: list[str], start: date, column: str, names: dict[str, str] | None
) -> pl.DataFrame:
    rows = sorted(truth.rows, key=lambda r: (r[1], user_ids[r[0]], r[2]))
    labels = [r[2] for r in rows]
    return pl.DataFrame(
        {
            "entity": [user_ids[r[0]] for r in rows],
            "day": [(start + timedelta(days=r[1])).isoformat() for r in rows],
            column: labels,
            "description": [names[x] if names else DECOY_KINDS.get(x, x) for x in labels],
        },
        schema={"entity": pl.String, "day": pl.String, column: pl.String, "description": pl.String},
    )
