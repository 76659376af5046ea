"""The synthetic company: departments, people, their habits, machines and the calendar.

Everything here is per user or per day (a few thousand values), so plain loops are fine;
the per-event work lives in :mod:`benchmarks.synthetic.activity`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

#: Rhythm classes: how a person's working day looks.
OFFICE = "office"
DEVELOPER = "developer"
MANAGER = "manager"
SALES = "sales"
SHIFT = "shift"
ADMIN = "admin"
RHYTHMS: tuple[str, ...] = (OFFICE, DEVELOPER, MANAGER, SALES, SHIFT, ADMIN)

#: Shift kinds for shift workers (index into ``SHIFT_START_HOURS``); rotating workers cycle
#: through all three week by week.
SHIFT_START_HOURS: tuple[float, float, float] = (6.0, 14.0, 22.0)

COMPANY_DOMAIN = "dtaa.com"
#: Fewest accounts of an organisation: a head for every department and teams beneath them.
MIN_USERS = 30
#: Most accounts: CERT-style user ids carry four digits.
MAX_USERS = 8000


@dataclass(frozen=True)
class Department:
    """One department of the org chart and the kind of people working in it.

    Examples
    --------
    >>> d = Department("2 - ResearchAndEngineering", "1 - Software", DEVELOPER,
    ...                ("Software Engineer",), weight=1.0)
    >>> d.rhythm
    'developer'
    """

    functional_unit: str
    department: str
    rhythm: str
    roles: tuple[str, ...]
    weight: float
    shared_pcs: bool = False


DEPARTMENTS: tuple[Department, ...] = (
    Department("1 - Administration", "1 - Human Resources", OFFICE, ("HR Specialist",), 0.6),
    Department(
        "1 - Administration", "2 - Finance", OFFICE, ("Accountant", "Financial Analyst"), 0.8
    ),
    Department(
        "1 - Administration", "3 - Legal", OFFICE, ("Lawyer", "Administrative Assistant"), 0.4
    ),
    Department(
        "2 - ResearchAndEngineering",
        "1 - Software Engineering",
        DEVELOPER,
        ("Software Engineer", "Software Tester", "Software Architect"),
        1.6,
    ),
    Department(
        "2 - ResearchAndEngineering",
        "2 - Hardware Engineering",
        DEVELOPER,
        ("Electrical Engineer", "Mechanical Engineer"),
        0.9,
    ),
    Department(
        "3 - Manufacturing",
        "1 - Assembly",
        SHIFT,
        ("Production Line Worker", "Technician"),
        1.0,
        shared_pcs=True,
    ),
    Department("3 - Manufacturing", "2 - Quality Assurance", OFFICE, ("Quality Engineer",), 0.5),
    Department("4 - Operations", "1 - Security", SHIFT, ("Security Guard",), 0.4, shared_pcs=True),
    Department("5 - SalesAndMarketing", "1 - Sales", SALES, ("Salesman", "Sales Engineer"), 1.1),
    Department("5 - SalesAndMarketing", "2 - Marketing", OFFICE, ("Marketing Specialist",), 0.6),
    Department("6 - InformationTechnology", "1 - IT Operations", ADMIN, ("ITAdmin",), 0.5),
    Department("6 - InformationTechnology", "2 - Help Desk", ADMIN, ("Help Desk Technician",), 0.3),
)

_FIRST = [
    "Aaron",
    "Abel",
    "Ada",
    "Adria",
    "Alan",
    "Alma",
    "Amos",
    "Anika",
    "Bert",
    "Blair",
    "Bruno",
    "Calvin",
    "Cara",
    "Cedric",
    "Clio",
    "Dale",
    "Dana",
    "Dawn",
    "Drew",
    "Edna",
    "Elias",
    "Emery",
    "Fay",
    "Felix",
    "Gail",
    "Glen",
    "Hana",
    "Hugo",
    "Ida",
    "Iris",
    "Ivan",
    "Jada",
    "Jonah",
    "Kara",
    "Keith",
    "Lana",
    "Leo",
    "Lois",
    "Mara",
    "Milo",
    "Nadia",
    "Noel",
    "Nora",
    "Omar",
    "Opal",
    "Petra",
    "Quinn",
    "Rhea",
    "Rory",
    "Sade",
    "Seth",
    "Tara",
    "Tobias",
    "Uma",
    "Vera",
    "Wade",
    "Xena",
    "Yara",
    "Zane",
    "Zelda",
]
_MIDDLE = [
    "Amber",
    "Blake",
    "Carter",
    "Dean",
    "Eve",
    "Faith",
    "Grant",
    "Hope",
    "Irene",
    "James",
    "Kane",
    "Lee",
    "Mae",
    "Neil",
    "Owen",
    "Paige",
    "Quincy",
    "Ray",
    "Sky",
    "Troy",
    "Uriel",
    "Vaughn",
    "Wynn",
    "Yves",
    "Ainsley",
    "Brock",
    "Celeste",
    "Dorian",
    "Elise",
    "Flynn",
]
_LAST = [
    "Abbott",
    "Acosta",
    "Baird",
    "Barker",
    "Becker",
    "Bishop",
    "Blevins",
    "Bowen",
    "Boyd",
    "Bright",
    "Burke",
    "Cain",
    "Cardenas",
    "Chan",
    "Chase",
    "Cline",
    "Cobb",
    "Combs",
    "Conway",
    "Crane",
    "Cruz",
    "Dalton",
    "Delgado",
    "Dillon",
    "Dorsey",
    "Duffy",
    "Dunn",
    "Espinoza",
    "Farley",
    "Finch",
    "Flowers",
    "Frost",
    "Gaines",
    "Garner",
    "Gentry",
    "Glass",
    "Golden",
    "Grimes",
    "Hale",
    "Hardin",
    "Hayes",
    "Herring",
    "Hines",
    "Holt",
    "Hooper",
    "Horn",
    "Hurst",
    "Ingram",
    "Jarvis",
    "Joyner",
    "Keller",
    "Kent",
    "Knox",
    "Lamb",
    "Lane",
    "Love",
    "Lowe",
    "Lynch",
    "Mack",
    "Maddox",
    "Marsh",
    "Mayo",
    "Mercer",
    "Monroe",
    "Moss",
    "Nash",
    "Noble",
    "Ochoa",
    "Oneal",
    "Pace",
    "Parks",
    "Pate",
    "Pitts",
    "Pratt",
    "Quinn",
    "Rasmussen",
    "Reese",
    "Rios",
    "Roach",
    "Rowe",
    "Salas",
    "Sharp",
    "Shields",
    "Sims",
    "Slater",
    "Snow",
    "Sosa",
    "Stark",
    "Stone",
    "Tate",
    "Todd",
    "Underwood",
    "Vance",
    "Walsh",
    "Weeks",
    "Wolfe",
    "Yates",
    "York",
    "Zamora",
]


@dataclass
class Organisation:
    """The people of the synthetic company, one row per user in every array.

    Attributes are parallel arrays indexed by user (0..n-1). ``supervisor`` holds the user
    index of the manager or -1. Times are hours of the day.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> org = build_organisation(rng, 40)
    >>> len(org.user_ids), org.user_ids[0][:3].isalpha(), org.user_ids[0][3:].isdigit()
    (40, True, True)
    >>> bool((org.supervisor[1:] >= 0).all())
    True
    """

    user_ids: list[str]
    names: list[str]
    emails: list[str]
    department: Array  # index into DEPARTMENTS
    team: Array  # team number inside the department (1-based)
    role: list[str]
    rhythm: list[str]
    supervisor: Array
    start_hour: Array
    start_sd: Array
    duration: Array
    late_prob: Array
    weekend_prob: Array
    shift_kind: Array  # -1 not a shift worker, 0..2 fixed shift, 3 rotating
    usb_day_prob: Array  # 0 for users without a USB habit
    usb_copy_rate: Array
    http_rate: Array
    email_rate: Array
    file_rate: Array
    auth_rate: Array
    pc: Array  # own PC index into ``pc_names``
    pc_pool: list[Array]  # PCs a user may sit at (travellers, shared PCs, admins' managed)
    psychometric: Array  # (n, 5) O C E A N
    projects: list[str]
    pc_names: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of users."""
        return len(self.user_ids)

    def new_pc(self, rng: np.random.Generator) -> int:
        """Add a brand-new PC (never used by anyone) and return its index."""
        used = {int(name[3:]) for name in self.pc_names}
        while True:
            number = int(rng.integers(1000, 10000))
            if number not in used:
                self.pc_names.append(f"PC-{number}")
                return len(self.pc_names) - 1


def _allocate(total: int, weights: Array, minimum: int) -> Array:
    """Split ``total`` into integer parts proportional to ``weights``, each >= ``minimum``."""
    extra = total - minimum * len(weights)
    raw = weights / weights.sum() * extra
    parts = np.floor(raw).astype(np.int64)
    remainder = extra - int(parts.sum())
    # Largest remainders first: deterministic and close to proportional.
    order = np.argsort(-(raw - parts), kind="stable")
    parts[order[:remainder]] += 1
    return np.asarray(parts + minimum)


def build_organisation(rng: np.random.Generator, users: int) -> Organisation:
    """Draw departments, teams, supervisors, names, habits and PCs for ``users`` people.

    User 0 is the chief executive (no supervisor); each department has a head reporting to
    user 0, and teams of 4-10 with a manager reporting to the head.
    """
    if users < MIN_USERS:
        raise ValueError(f"users must be >= {MIN_USERS} (one head per department), got {users}")
    if users > MAX_USERS:
        raise ValueError(
            f"users must be <= {MAX_USERS} (CERT-style ids have 4 digits), got {users}"
        )
    weights = np.array([d.weight for d in DEPARTMENTS])
    sizes = _allocate(users - 1, weights, 2)

    department = np.zeros(users, dtype=np.int64)
    team = np.zeros(users, dtype=np.int64)
    supervisor = np.full(users, -1, dtype=np.int64)
    role: list[str] = ["President"]
    rhythm: list[str] = [MANAGER]
    is_manager = np.zeros(users, dtype=bool)
    is_manager[0] = True
    cursor = 1
    for dept_index, (dept, size) in enumerate(zip(DEPARTMENTS, sizes, strict=True)):
        head = cursor
        department[head] = dept_index
        team[head] = 1
        supervisor[head] = 0
        role.append("Manager")
        rhythm.append(MANAGER)
        is_manager[head] = True
        cursor += 1
        members = int(size) - 1
        n_teams = max(1, round(members / 8))
        team_sizes = _allocate(members, np.ones(n_teams), 0)
        for team_index, team_size in enumerate(team_sizes, start=1):
            manager = -1
            for k in range(int(team_size)):
                user = cursor
                cursor += 1
                department[user] = dept_index
                team[user] = team_index
                if k == 0 and team_size >= 5:
                    manager = user
                    supervisor[user] = head
                    role.append("Manager")
                    rhythm.append(MANAGER)
                    is_manager[user] = True
                else:
                    supervisor[user] = manager if manager >= 0 else head
                    role.append(str(rng.choice(dept.roles)))
                    rhythm.append(dept.rhythm)
    assert cursor == users

    name_codes = rng.choice(len(_FIRST) * len(_MIDDLE) * len(_LAST), size=users, replace=False)
    names: list[str] = []
    user_ids: list[str] = []
    numbers = rng.choice(np.arange(1000, 10000), size=users, replace=False)
    for code, number in zip(name_codes.tolist(), numbers.tolist(), strict=True):
        first = _FIRST[code % len(_FIRST)]
        middle = _MIDDLE[(code // len(_FIRST)) % len(_MIDDLE)]
        last = _LAST[code // (len(_FIRST) * len(_MIDDLE))]
        names.append(f"{first} {middle} {last}")
        user_ids.append(f"{first[0]}{middle[0]}{last[0]}{number}")
    emails = [f"{name.replace(' ', '.')}@{COMPANY_DOMAIN}" for name in names]

    start_hour = np.empty(users)
    start_sd = np.empty(users)
    duration = np.empty(users)
    late_prob = np.empty(users)
    weekend_prob = np.empty(users)
    shift_kind = np.full(users, -1, dtype=np.int64)
    usb_day_prob = np.zeros(users)
    http_rate = np.empty(users)
    email_rate = np.empty(users)
    file_rate = np.empty(users)
    auth_rate = np.empty(users)
    # Per-class (start hour, start sd, hours, late prob, weekend prob, usb share,
    # http/day, emails/day, files/day, auth accesses/day).
    params: dict[str, tuple[float, ...]] = {
        OFFICE: (8.0, 0.35, 8.8, 0.02, 0.01, 0.08, 75, 5, 4, 5),
        DEVELOPER: (9.8, 0.7, 9.0, 0.12, 0.05, 0.3, 95, 3, 7, 7),
        MANAGER: (7.8, 0.4, 10.0, 0.07, 0.05, 0.1, 70, 11, 3, 5),
        SALES: (8.5, 1.4, 8.0, 0.08, 0.12, 0.4, 85, 8, 3, 4),
        SHIFT: (6.0, 0.25, 8.0, 0.0, 0.0, 0.05, 25, 1, 1, 2),
        ADMIN: (7.9, 0.6, 9.0, 0.06, 0.07, 0.9, 70, 4, 9, 8),
    }
    for user in range(users):
        cls = rhythm[user]
        s_hour, s_sd, hours, late, weekend, usb_share, http, mail, files, auth = params[cls]
        start_hour[user] = s_hour + rng.normal(0, 0.5)
        start_sd[user] = s_sd * rng.uniform(0.6, 1.4)
        duration[user] = hours + rng.normal(0, 0.4)
        # Most office workers never stay late; some do now and then.
        late_prob[user] = 0.0 if cls == OFFICE and rng.random() < 0.6 else late
        weekend_prob[user] = weekend * rng.uniform(0.0, 2.0)
        if rng.random() < usb_share:
            usb_day_prob[user] = rng.uniform(0.15, 0.7)
        http_rate[user] = http * rng.lognormal(0.0, 0.35)
        email_rate[user] = mail * rng.lognormal(0.0, 0.3)
        file_rate[user] = files * rng.lognormal(0.0, 0.4)
        auth_rate[user] = auth * rng.lognormal(0.0, 0.3)
        if cls == SHIFT:
            shift_kind[user] = int(rng.choice(4, p=[0.35, 0.15, 0.25, 0.25]))
    usb_copy_rate = rng.uniform(1.0, 6.0, size=users)

    pc_numbers = rng.choice(np.arange(1000, 10000), size=users + users // 3 + 8, replace=False)
    pc_names = [f"PC-{n}" for n in pc_numbers.tolist()]
    pc = np.arange(users, dtype=np.int64)
    next_pc = users
    pc_pool: list[Array] = [np.array([p]) for p in range(users)]
    # Shared PCs: each shared-PC department gets a pool of about a third of its headcount.
    for dept_index, dept in enumerate(DEPARTMENTS):
        if not dept.shared_pcs:
            continue
        sharing = np.flatnonzero((department == dept_index) & ~is_manager)
        n_shared = max(2, len(sharing) // 3)
        shared = np.arange(next_pc, next_pc + n_shared)
        next_pc += n_shared
        for member in sharing.tolist():
            pc_pool[member] = shared
            pc[member] = int(shared[member % n_shared])
    for user in range(users):
        if rhythm[user] == SALES:
            visits = rng.choice(users, size=int(rng.integers(1, 4)), replace=False)
            pc_pool[user] = np.concatenate([[pc[user]], pc[visits]])
        elif rhythm[user] == ADMIN:
            # Admins look after colleagues' PCs, though not their own boss's.
            others = np.setdiff1d(np.arange(users), [user, supervisor[user]])
            managed = rng.choice(others, size=min(len(others), 30), replace=False)
            pc_pool[user] = np.concatenate([[pc[user]], pc[managed]])
    del pc_names[next_pc + 8 :]

    psychometric = np.clip(np.round(rng.normal(30, 8, size=(users, 5))), 10, 50).astype(np.int64)
    project_names = [f"Project {i}" for i in range(1, 41)]
    projects: list[str] = []
    for user in range(users):
        if rhythm[user] in (DEVELOPER, MANAGER) and rng.random() < 0.7:
            k = int(rng.integers(1, 3))
            chosen = rng.choice(len(project_names), size=k, replace=False)
            projects.append(";".join(project_names[i] for i in sorted(chosen.tolist())))
        else:
            projects.append("")

    return Organisation(
        user_ids=user_ids,
        names=names,
        emails=emails,
        department=department,
        team=team,
        role=role,
        rhythm=rhythm,
        supervisor=supervisor,
        start_hour=start_hour,
        start_sd=start_sd,
        duration=duration,
        late_prob=late_prob,
        weekend_prob=weekend_prob,
        shift_kind=shift_kind,
        usb_day_prob=usb_day_prob,
        usb_copy_rate=usb_copy_rate,
        http_rate=http_rate,
        email_rate=email_rate,
        file_rate=file_rate,
        auth_rate=auth_rate,
        pc=pc,
        pc_pool=pc_pool,
        psychometric=psychometric,
        projects=projects,
        pc_names=pc_names,
    )


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


def public_holidays(year: int) -> set[date]:
    """US federal-style public holidays of ``year`` (observed dates).

    Examples
    --------
    >>> sorted(d.isoformat() for d in public_holidays(2010))[:3]
    ['2010-01-01', '2010-01-18', '2010-02-15']
    """
    thanksgiving = _nth_weekday(year, 11, 3, 4)
    return {
        _observed(date(year, 1, 1)),
        _nth_weekday(year, 1, 0, 3),
        _nth_weekday(year, 2, 0, 3),
        _last_weekday(year, 5, 0),
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),
        thanksgiving,
        thanksgiving + timedelta(days=1),
        _observed(date(year, 12, 25)),
    }


@dataclass(frozen=True)
class Calendar:
    """The days of the period: weekday and holiday flags.

    Examples
    --------
    >>> cal = Calendar.build(date(2010, 1, 4), 14)
    >>> cal.weekday[:7].tolist(), int(cal.workday.sum())
    ([0, 1, 2, 3, 4, 5, 6], 10)
    """

    start: date
    days: int
    weekday: Array
    holiday: Array
    workday: Array

    @classmethod
    def build(cls, start: date, days: int) -> Calendar:
        """Flag weekends and public holidays for ``days`` days from ``start``."""
        dates = [start + timedelta(days=d) for d in range(days)]
        holidays: set[date] = set()
        for year in {d.year for d in dates}:
            holidays |= public_holidays(year)
        weekday = np.array([d.weekday() for d in dates], dtype=np.int64)
        holiday = np.array([d in holidays for d in dates], dtype=bool)
        return cls(start, days, weekday, holiday, (weekday < 5) & ~holiday)

    def date_of(self, day: int) -> date:
        """The calendar date of day index ``day``."""
        return self.start + timedelta(days=day)
