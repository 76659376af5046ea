"""Ordinary behaviour: the catalogues (web, mail, files, hosts) and the vectorised event draws.

Each generator draws per-user-day counts, expands them with ``np.repeat`` and samples times
inside that day's session, so the cost is a few numpy passes per log, never a Python loop
per event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.synthetic.org import ADMIN, DEPARTMENTS, SALES, Calendar, Organisation
from benchmarks.synthetic.schedule import DAY, HOUR, Schedule
from benchmarks.synthetic.tables import Table, Vocab

Array = npt.NDArray[Any]

LOGON_COLUMNS = ("id", "date", "user", "pc", "activity")
DEVICE_COLUMNS = ("id", "date", "user", "pc", "file_tree", "activity")
FILE_COLUMNS = (
    "id",
    "date",
    "user",
    "pc",
    "filename",
    "activity",
    "to_removable_media",
    "from_removable_media",
    "content",
)
EMAIL_COLUMNS = (
    "id",
    "date",
    "user",
    "pc",
    "to",
    "cc",
    "bcc",
    "from",
    "activity",
    "size",
    "attachments",
    "content",
)
HTTP_COLUMNS = ("id", "date", "user", "pc", "url", "activity", "content")
AUTH_COLUMNS = (
    "time",
    "src_user",
    "dst_user",
    "src_computer",
    "dst_computer",
    "auth_type",
    "logon_type",
    "auth_orientation",
    "success",
)

#: Popular sites with their popularity rank (0 = most popular); job boards sit deep in the
#: tail so an occasional visit is ordinary noise, not a signal.
KNOWN_SITES: dict[str, int] = {
    "google.com": 0,
    "facebook.com": 1,
    "youtube.com": 2,
    "yahoo.com": 3,
    "wikipedia.org": 4,
    "amazon.com": 5,
    "twitter.com": 6,
    "msn.com": 7,
    "bing.com": 8,
    "ebay.com": 9,
    "cnn.com": 10,
    "espn.go.com": 12,
    "linkedin.com": 14,
    "weather.com": 16,
    "nytimes.com": 18,
    "dropbox.com": 22,
    "craigslist.org": 25,
    "indeed.com": 420,
    "monster.com": 700,
    "careerbuilder.com": 950,
    "glassdoor.com": 1300,
    "simplyhired.com": 1800,
    "dice.com": 2300,
    "jobhuntersbible.com": 2900,
}
JOB_SITES: tuple[str, ...] = (
    "linkedin.com",
    "indeed.com",
    "monster.com",
    "careerbuilder.com",
    "glassdoor.com",
    "simplyhired.com",
    "dice.com",
    "jobhuntersbible.com",
)
LEAK_SITES: tuple[str, ...] = ("wikileaks.org", "cryptome.org", "leaksource.info")
N_POPULAR = 3000
N_TAIL = 40000
PATHS_PER_DOMAIN = 4
N_FAVOURITES = 24
FILES_PER_USER = 24
N_CONTACTS = 10

_SYLLABLES = [
    "al",
    "ar",
    "ba",
    "be",
    "bo",
    "ca",
    "ce",
    "co",
    "da",
    "de",
    "do",
    "el",
    "en",
    "fa",
    "fi",
    "ga",
    "go",
    "ha",
    "he",
    "in",
    "ka",
    "ki",
    "la",
    "le",
    "li",
    "lo",
    "ma",
    "me",
    "mi",
    "mo",
    "na",
    "ne",
    "no",
    "pa",
    "pe",
    "po",
    "ra",
    "re",
    "ri",
    "ro",
    "sa",
    "se",
    "si",
    "so",
    "ta",
    "te",
    "ti",
    "to",
    "va",
    "ve",
    "vi",
    "wa",
    "xo",
    "za",
    "ze",
    "zo",
]
_TLDS = ("com", "com", "com", "net", "org", "info", "biz", "co.uk", "de", "us")
_WORDS = [
    "account",
    "agenda",
    "annual",
    "approval",
    "archive",
    "audit",
    "backup",
    "battery",
    "benefit",
    "board",
    "budget",
    "calendar",
    "campaign",
    "client",
    "cloud",
    "compliance",
    "contract",
    "customer",
    "dashboard",
    "deadline",
    "design",
    "draft",
    "energy",
    "estimate",
    "forecast",
    "funding",
    "hardware",
    "holiday",
    "invoice",
    "launch",
    "license",
    "market",
    "meeting",
    "memo",
    "network",
    "office",
    "order",
    "partner",
    "payroll",
    "planning",
    "policy",
    "portal",
    "pricing",
    "product",
    "project",
    "proposal",
    "quarterly",
    "quote",
    "recipe",
    "release",
    "report",
    "review",
    "roadmap",
    "safety",
    "schedule",
    "security",
    "server",
    "shipping",
    "software",
    "sprint",
    "status",
    "strategy",
    "summary",
    "supplier",
    "support",
    "survey",
    "team",
    "testing",
    "training",
    "travel",
    "update",
    "vendor",
    "weekly",
    "workshop",
]
_EXTENSIONS = ("doc", "docx", "xls", "xlsx", "pdf", "ppt", "txt", "zip", "jpg", "exe")
_FILE_MAGIC = {
    "doc": "D0-CF-11-E0-A1-B1-1A-E1",
    "docx": "50-4B-03-04-14-00-06-00",
    "xls": "D0-CF-11-E0-A1-B1-1A-E1",
    "xlsx": "50-4B-03-04-14-00-06-00",
    "pdf": "25-50-44-46-2D",
    "ppt": "D0-CF-11-E0-A1-B1-1A-E1",
    "txt": "",
    "zip": "50-4B-03-04",
    "jpg": "FF-D8-FF-E0",
    "exe": "4D-5A-90-00",
}
_EXTERNAL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "comcast.net", "aol.com")


def _phrase(rng: np.random.Generator, k: int) -> str:
    return " ".join(_WORDS[i] for i in rng.integers(0, len(_WORDS), k).tolist())


def _zipf_cdf(n: int, exponent: float) -> Array:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return cdf


def _draw(rng: np.random.Generator, cdf: Array, size: int) -> Array:
    """Indices drawn from a discrete distribution given by its cdf."""
    picks = np.searchsorted(cdf, rng.random(size), side="right")
    return np.minimum(picks, len(cdf) - 1).astype(np.int64)


def _expand(counts: Array) -> Array:
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


@dataclass
class World:
    """Catalogues, vocabularies and output tables shared by the ordinary, planted and decoy
    generators. Build it with :func:`build_world` once the schedule is final.

    Examples
    --------
    >>> from datetime import date
    >>> from benchmarks.synthetic.org import build_organisation
    >>> from benchmarks.synthetic.schedule import build_schedule
    >>> rng = np.random.default_rng(0)
    >>> org = build_organisation(rng, 40)
    >>> cal = Calendar.build(date(2010, 1, 4), 7)
    >>> world = build_world(rng, org, cal, build_schedule(rng, org, cal))
    >>> world.users.items[:1] == org.user_ids[:1], world.urls.items[0].startswith("http://")
    (True, True)
    """

    org: Organisation
    cal: Calendar
    sched: Schedule
    users: Vocab
    pcs: Vocab
    addresses: Vocab
    domains: list[str]
    urls: Vocab
    web_content: Vocab
    favourites: Array
    popular_cdf: Array
    contents: Vocab
    files: Vocab
    user_files: Array
    trees: Vocab
    user_tree: Array
    attachments: Vocab
    attachment_size: Array
    contacts: Array
    computers: Vocab
    auth_users: Vocab
    servers: dict[str, Array]
    destinations: list[Array]
    logon: Table
    device: Table
    file: Table
    email: Table
    http: Table
    auth: Table
    flags: Vocab = field(default_factory=lambda: Vocab(["False", "True"]))

    def url(self, domain: str, path: str) -> int:
        """Code of an extra URL (special sites for scenarios and decoys)."""
        return self.urls.code(f"http://{domain}/{path}")

    def domain_code(self, domain: str) -> int:
        """Index of a catalogue domain."""
        return self.domains.index(domain)

    def computer(self, pc: int) -> int:
        """Code of PC ``pc`` in the LANL computer vocabulary (``PC-1234`` -> ``C1234``)."""
        return self.computers.code("C" + self.pcs.items[pc][3:])

    def session(self, user: int, day: int) -> tuple[int, int]:
        """Absolute start and end seconds of ``user``'s session on ``day``."""
        return (
            int(day * DAY + self.sched.start[user, day]),
            int(day * DAY + self.sched.end[user, day]),
        )


def _domain_names(rng: np.random.Generator) -> list[str]:
    """Popular domains (known sites at their ranks) followed by the long tail."""
    s = len(_SYLLABLES)
    wanted = N_POPULAR + N_TAIL
    names: list[str] = []
    known = set(KNOWN_SITES)
    for code in rng.permutation(s**3 * len(_TLDS)).tolist():
        a, b, c = code % s, (code // s) % s, (code // s // s) % s
        tld = _TLDS[code // (s**3)]
        word = _SYLLABLES[a] + _SYLLABLES[b] + ("" if c % 3 == 0 else _SYLLABLES[c])
        name = f"{word}.{tld}"
        if name not in known:
            known.add(name)
            names.append(name)
            if len(names) == wanted - len(KNOWN_SITES):
                break
    for site, rank in sorted(KNOWN_SITES.items(), key=lambda item: item[1]):
        names.insert(rank, site)
    return names


def build_world(
    rng: np.random.Generator, org: Organisation, cal: Calendar, sched: Schedule
) -> World:
    """Catalogues and habits: favourite sites, contacts, files, hosts; empty output tables."""
    n = org.n
    users = Vocab(org.user_ids)
    pcs = Vocab(org.pc_names)

    domains = _domain_names(rng)
    path_words = [f"{a}/{b}" for a in _WORDS[:20] for b in _WORDS[20:60]]
    # Distinct paths per domain, so URL codes are exactly domain * PATHS_PER_DOMAIN + path.
    stride = len(path_words) // PATHS_PER_DOMAIN
    path_pick = (
        rng.integers(0, len(path_words), size=(len(domains), 1))
        + np.arange(PATHS_PER_DOMAIN) * stride
    ) % len(path_words)
    urls = Vocab(
        f"http://{domain}/{path_words[p]}.html"
        for domain, row in zip(domains, path_pick.tolist(), strict=True)
        for p in row
    )
    assert len(urls) == len(domains) * PATHS_PER_DOMAIN
    web_content = Vocab(_phrase(rng, 5) for _ in range(600))

    popular_cdf = _zipf_cdf(N_POPULAR, 1.0)
    dept_sites = [rng.choice(np.arange(150, N_POPULAR), size=6, replace=False) for _ in DEPARTMENTS]
    favourites = np.empty((n, N_FAVOURITES), dtype=np.int64)
    for user in range(n):
        favourite_sites = np.concatenate(
            [
                _draw(rng, popular_cdf, 16),
                dept_sites[int(org.department[user])],
                rng.integers(300, N_POPULAR, 2),
            ]
        )
        favourites[user] = rng.permutation(favourite_sites)

    contents = Vocab(_phrase(rng, 4) for _ in range(400))
    files: Vocab = Vocab()
    user_files = np.empty((n, FILES_PER_USER), dtype=np.int64)
    for user in range(n):
        for slot in range(FILES_PER_USER):
            folder = _WORDS[int(rng.integers(len(_WORDS)))]
            stem = "".join(
                chr(c) for c in rng.integers(65, 91, 8).tolist()
            )  # CERT-like random stems
            ext = _EXTENSIONS[int(rng.integers(len(_EXTENSIONS) - 1))]
            user_files[user, slot] = files.code(f"C:\\{folder}\\{stem}.{ext}")

    trees = Vocab(
        "R:\\;" + ";".join(f"R:\\{w}" for w in rng.choice(_WORDS, size=k, replace=False))
        for k in [1, 2, 3] * 10
    )
    user_tree = rng.integers(0, len(trees), n)

    attachments: Vocab = Vocab()
    sizes: list[int] = []
    for _ in range(3000):
        size = int(rng.lognormal(11.0, 1.0))
        ext = _EXTENSIONS[int(rng.integers(len(_EXTENSIONS) - 2))]
        stem = "".join(chr(c) for c in rng.integers(65, 91, 8).tolist())
        attachments.code(f"C:\\{_WORDS[int(rng.integers(len(_WORDS)))]}\\{stem}.{ext}({size})")
        sizes.append(size)

    addresses = Vocab(org.emails)
    external_pool = [
        f"{first}.{last}@{_EXTERNAL_DOMAINS[i % len(_EXTERNAL_DOMAINS)]}"
        for i, (first, last) in enumerate(
            (org.names[i % n].split()[0], org.names[(i * 7 + 3) % n].split()[2])
            for i in range(2 * n)
        )
    ]
    external_codes = addresses.codes(external_pool)
    contacts = np.empty((n, N_CONTACTS), dtype=np.int64)
    for user in range(n):
        same_team = np.flatnonzero(
            (org.department == org.department[user]) & (org.team == org.team[user])
        )
        same_team = same_team[same_team != user]
        same_dept = np.flatnonzero(org.department == org.department[user])
        internal = rng.choice(same_team, size=min(5, len(same_team)), replace=False).tolist()
        sup = int(org.supervisor[user])
        internal.append(sup if sup >= 0 else int(rng.integers(n)))
        while len(internal) < 7:
            internal.append(int(rng.choice(same_dept)))
        external = rng.choice(external_codes, size=3, replace=False).tolist()
        contacts[user] = rng.permutation(np.array(internal + external))

    computers = Vocab("C" + name[3:] for name in org.pc_names)
    server_numbers = rng.choice(np.arange(1, 1000), size=70, replace=False)
    server_names = [f"C{s}" for s in server_numbers.tolist()]
    servers = {
        "dc": computers.codes(server_names[0:3]),
        "mail": computers.codes(server_names[3:5]),
        "file": computers.codes(server_names[5 : 5 + len(DEPARTMENTS)]),
        "app": computers.codes(server_names[5 + len(DEPARTMENTS) : 40]),
        "infra": computers.codes(server_names[40:70]),
    }
    auth_users = Vocab(f"{uid}@DOM1" for uid in org.user_ids)
    destinations: list[Array] = []
    for user in range(n):
        mine: list[int] = [
            int(servers["file"][int(org.department[user])]),
            int(servers["mail"][user % 2]),
            int(servers["dc"][user % 3]),
            *rng.choice(servers["app"], size=int(rng.integers(1, 4)), replace=False).tolist(),
        ]
        if org.rhythm[user] == ADMIN:
            mine += servers["infra"].tolist() + servers["app"].tolist()
            mine += org.pc_pool[user].tolist()
        destinations.append(np.array(mine, dtype=np.int64))

    user_pc: dict[str, Vocab | None] = {"user": users, "pc": pcs}
    return World(
        org=org,
        cal=cal,
        sched=sched,
        users=users,
        pcs=pcs,
        addresses=addresses,
        domains=domains,
        urls=urls,
        web_content=web_content,
        favourites=favourites,
        popular_cdf=popular_cdf,
        contents=contents,
        files=files,
        user_files=user_files,
        trees=trees,
        user_tree=user_tree,
        attachments=attachments,
        attachment_size=np.array(sizes, dtype=np.int64),
        contacts=contacts,
        computers=computers,
        auth_users=auth_users,
        servers=servers,
        destinations=destinations,
        logon=Table({**user_pc, "activity": Vocab(["Logon", "Logoff"])}),
        device=Table({**user_pc, "file_tree": trees, "activity": Vocab(["Connect", "Disconnect"])}),
        file=Table(
            {
                **user_pc,
                "filename": files,
                "activity": Vocab(["File Open", "File Write", "File Copy", "File Delete"]),
                "to_removable_media": Vocab(["False", "True"]),
                "from_removable_media": Vocab(["False", "True"]),
                "content": contents,
            }
        ),
        email=Table(
            {
                **user_pc,
                "to1": addresses,
                "to2": addresses,
                "to3": addresses,
                "cc1": addresses,
                "cc2": addresses,
                "bcc1": addresses,
                "from": addresses,
                "activity": Vocab(["Send", "View"]),
                "size": None,
                "att1": attachments,
                "att2": attachments,
                "content": contents,
            }
        ),
        http=Table(
            {
                **user_pc,
                "url": urls,
                "activity": Vocab(["WWW Visit", "WWW Download", "WWW Upload"]),
                "content": web_content,
            }
        ),
        auth=Table(
            {
                "src_user": auth_users,
                "dst_user": auth_users,
                "src_computer": computers,
                "dst_computer": computers,
                "auth_type": Vocab(["Kerberos", "NTLM", "Negotiate", "?"]),
                "logon_type": Vocab(
                    ["Network", "Interactive", "Batch", "Service", "RemoteInteractive", "?"]
                ),
                "auth_orientation": Vocab(["LogOn", "LogOff", "TGS", "TGT"]),
                "success": Vocab(["Success", "Fail"]),
            }
        ),
    )


# Codes of the fixed vocabularies above, named for readability at the call sites.
LOGON, LOGOFF = 0, 1
CONNECT, DISCONNECT = 0, 1
FILE_OPEN, FILE_WRITE, FILE_COPY, FILE_DELETE = 0, 1, 2, 3
SEND, VIEW = 0, 1
VISIT, DOWNLOAD, UPLOAD = 0, 1, 2
KERBEROS, NTLM, NEGOTIATE, UNKNOWN_AUTH = 0, 1, 2, 3
NETWORK, INTERACTIVE, BATCH, SERVICE, REMOTE_INTERACTIVE, UNKNOWN_LOGON = 0, 1, 2, 3, 4, 5
ORIENT_LOGON, ORIENT_LOGOFF, TGS, TGT = 0, 1, 2, 3
SUCCESS, FAIL = 0, 1


@dataclass(frozen=True)
class Sessions:
    """The present user-days flattened: user, day, absolute start/end seconds and PC."""

    user: Array
    day: Array
    start: Array
    end: Array
    pc: Array

    @classmethod
    def of(cls, sched: Schedule) -> Sessions:
        """Flatten the schedule's present user-days."""
        user, day = np.nonzero(sched.present)
        return cls(
            user=user.astype(np.int64),
            day=day.astype(np.int64),
            start=day * DAY + sched.start[user, day],
            end=day * DAY + sched.end[user, day],
            pc=sched.pc[user, day],
        )

    def sample(self, rng: np.random.Generator, rows: Array) -> Array:
        """One uniform time inside the session of each entry of ``rows``."""
        span = self.end[rows] - self.start[rows]
        return np.asarray(self.start[rows] + (rng.random(len(rows)) * span).astype(np.int64))

    @property
    def hours(self) -> Array:
        """Session lengths in hours."""
        return np.asarray((self.end - self.start) / HOUR)


def generate_ordinary(rng: np.random.Generator, world: World) -> None:
    """Fill every table with the ordinary behaviour of the whole organisation."""
    sessions = Sessions.of(world.sched)
    _logons(rng, world, sessions)
    usb_sessions = _devices(rng, world, sessions)
    _files(rng, world, sessions, usb_sessions)
    _emails(rng, world, sessions)
    _http(rng, world, sessions)
    _auth(rng, world, sessions)


def _logons(rng: np.random.Generator, world: World, s: Sessions) -> None:
    n = len(s.user)
    world.logon.add(s.start, user=s.user, pc=s.pc, activity=LOGON)
    # Not every session ends in a recorded logoff (power loss, forced shutdown).
    ended = rng.random(n) < 0.95
    world.logon.add(s.end[ended], user=s.user[ended], pc=s.pc[ended], activity=LOGOFF)
    # A screen unlock somewhere in the day shows up as another logon on the same PC.
    relog = np.flatnonzero(rng.random(n) < 0.2)
    world.logon.add(s.sample(rng, relog), user=s.user[relog], pc=s.pc[relog], activity=LOGON)
    # Admins and travellers log on to other machines during the day.
    org = world.org
    for user in range(org.n):
        if org.rhythm[user] not in (ADMIN, SALES) or len(org.pc_pool[user]) < 2:
            continue
        rows = np.flatnonzero(s.user == user)
        rate = 1.5 if org.rhythm[user] == ADMIN else 0.3
        visits = _expand(rng.poisson(rate, len(rows)))
        if len(visits) == 0:
            continue
        rows = rows[visits]
        ts = s.sample(rng, rows)
        pool = org.pc_pool[user][1:]
        pcs = pool[rng.integers(0, len(pool), len(rows))]
        world.logon.add(ts, user=user, pc=pcs, activity=LOGON)
        world.logon.add(ts + rng.integers(300, 2400, len(rows)), user=user, pc=pcs, activity=LOGOFF)


def _devices(rng: np.random.Generator, world: World, s: Sessions) -> Array:
    """USB habits; returns (session row, connect ts, disconnect ts) of each USB session."""
    org = world.org
    uses = np.flatnonzero(rng.random(len(s.user)) < org.usb_day_prob[s.user])
    rows = uses[_expand(1 + rng.poisson(0.3, len(uses)))]
    latest = np.maximum(s.end[rows] - 600, s.start[rows] + 1)
    connect = s.start[rows] + (rng.random(len(rows)) * (latest - s.start[rows])).astype(np.int64)
    length = (rng.exponential(2400, len(rows)) + 120).astype(np.int64)
    disconnect = np.minimum(connect + length, np.maximum(s.end[rows], connect + 60))
    user = s.user[rows]
    tree = world.user_tree[user]
    world.device.add(connect, user=user, pc=s.pc[rows], file_tree=tree, activity=CONNECT)
    world.device.add(disconnect, user=user, pc=s.pc[rows], file_tree=-1, activity=DISCONNECT)
    return np.stack([rows, connect, disconnect], axis=1)


def _files(rng: np.random.Generator, world: World, s: Sessions, usb: Array) -> None:
    org = world.org
    rows = _expand(rng.poisson(org.file_rate[s.user] * np.minimum(s.hours / 9.0, 1.5)))
    user = s.user[rows]
    n = len(rows)
    slot = _draw(rng, _zipf_cdf(FILES_PER_USER, 1.1), n)
    activity = _draw(rng, np.cumsum([0.5, 0.25, 0.13, 0.12]), n)
    world.file.add(
        s.sample(rng, rows),
        user=user,
        pc=s.pc[rows],
        filename=world.user_files[user, slot],
        activity=activity,
        to_removable_media=0,
        from_removable_media=0,
        content=rng.integers(0, len(world.contents), n),
    )
    # Habitual USB users copy a few files to the stick and open some from it.
    session_row, connect, disconnect = usb[:, 0], usb[:, 1], usb[:, 2]
    user_of_usb = s.user[session_row]
    for to_media, rate in ((True, org.usb_copy_rate[user_of_usb]), (False, 1.0)):
        pick = _expand(rng.poisson(rate, len(user_of_usb)))
        user = user_of_usb[pick]
        k = len(pick)
        span = disconnect[pick] - connect[pick]
        ts = connect[pick] + (rng.random(k) * span).astype(np.int64)
        world.file.add(
            ts,
            user=user,
            pc=s.pc[session_row[pick]],
            filename=world.user_files[user, rng.integers(0, FILES_PER_USER, k)],
            activity=FILE_COPY if to_media else FILE_OPEN,
            to_removable_media=int(to_media),
            from_removable_media=int(not to_media),
            content=rng.integers(0, len(world.contents), k),
        )


def _recipients(rng: np.random.Generator, k: int) -> Array:
    """Five distinct contact slots per row (a random permutation's head)."""
    return np.argsort(rng.random((k, N_CONTACTS)), axis=1)[:, :5]


def _emails(rng: np.random.Generator, world: World, s: Sessions) -> None:
    org = world.org
    rate = org.email_rate[s.user] * np.minimum(s.hours / 9.0, 1.5)
    for activity, factor in ((SEND, 1.0), (VIEW, 1.4)):
        rows = _expand(rng.poisson(rate * factor))
        k = len(rows)
        user = s.user[rows]
        ts = s.sample(rng, rows)
        if activity == SEND:
            # Now and then a mail goes out in the evening, from home.
            evening = rng.random(k) < 0.015
            day_start = s.day[rows] * DAY
            ts = np.where(evening, day_start + rng.integers(19 * HOUR, 23 * HOUR, k), ts)
        slots = _recipients(rng, k)
        contact = world.contacts[user[:, None], slots]
        n_to = _draw(rng, np.cumsum([0.6, 0.28, 0.12]), k) + 1
        n_cc = _draw(rng, np.cumsum([0.75, 0.18, 0.07]), k)
        bcc = rng.random(k) < 0.03
        n_att = _draw(rng, np.cumsum([0.78, 0.16, 0.06]), k)
        att = rng.integers(0, len(world.attachments), (k, 2))
        size = rng.lognormal(9.6, 0.7, k).astype(np.int64)
        size += np.where(n_att >= 1, world.attachment_size[att[:, 0]], 0)
        size += np.where(n_att >= 2, world.attachment_size[att[:, 1]], 0)
        if activity == SEND:
            sender = user
            to1, to2, to3 = contact[:, 0], contact[:, 1], contact[:, 2]
        else:
            sender = contact[:, 0]
            to1, to2, to3 = user, contact[:, 1], contact[:, 2]
        world.email.add(
            ts,
            user=user,
            pc=s.pc[rows],
            to1=to1,
            to2=np.where(n_to >= 2, to2, -1),
            to3=np.where(n_to >= 3, to3, -1),
            cc1=np.where(n_cc >= 1, contact[:, 3], -1),
            cc2=np.where(n_cc >= 2, contact[:, 4], -1),
            bcc1=np.where(bcc, world.contacts[user, 0], -1),
            **{"from": sender},
            activity=activity,
            size=size,
            att1=np.where(n_att >= 1, att[:, 0], -1),
            att2=np.where(n_att >= 2, att[:, 1], -1),
            content=rng.integers(0, len(world.contents), k),
        )


def http_codes(world: World, url: Array) -> Array:
    """Content codes of URL codes (a fixed page text per URL)."""
    return np.asarray((url * 7919) % len(world.web_content))


def _http(rng: np.random.Generator, world: World, s: Sessions) -> None:
    org = world.org
    rows = _expand(rng.poisson(org.http_rate[s.user] * np.minimum(s.hours / 9.0, 1.5)))
    k = len(rows)
    user = s.user[rows]
    kind = rng.random(k)
    favourite = kind < 0.82
    tail = kind >= 0.985
    domain = np.empty(k, dtype=np.int64)
    slot = _draw(rng, _zipf_cdf(N_FAVOURITES, 0.9), int(favourite.sum()))
    domain[favourite] = world.favourites[user[favourite], slot]
    popular = ~favourite & ~tail
    domain[popular] = _draw(rng, world.popular_cdf, int(popular.sum()))
    domain[tail] = N_POPULAR + rng.integers(0, N_TAIL, int(tail.sum()))
    url = domain * PATHS_PER_DOMAIN + rng.integers(0, PATHS_PER_DOMAIN, k)
    roll = rng.random(k)
    activity = np.where(roll < 0.02, DOWNLOAD, np.where(roll < 0.024, UPLOAD, VISIT))
    world.http.add(
        s.sample(rng, rows),
        user=user,
        pc=s.pc[rows],
        url=url,
        activity=activity,
        content=http_codes(world, url),
    )


def _auth(rng: np.random.Generator, world: World, s: Sessions) -> None:
    org = world.org
    n = len(s.user)
    src = np.array([world.computer(int(p)) for p in range(len(world.pcs))])[s.pc]
    dc = world.servers["dc"][s.user % 3]
    # Morning: ticket-granting ticket from the DC and the interactive logon on the PC; a
    # mistyped password first now and then.
    typo = np.flatnonzero(rng.random(n) < 0.03)
    table = world.auth
    table.add(
        s.start[typo] - 20,
        src_user=s.user[typo],
        dst_user=s.user[typo],
        src_computer=src[typo],
        dst_computer=src[typo],
        auth_type=NEGOTIATE,
        logon_type=INTERACTIVE,
        auth_orientation=ORIENT_LOGON,
        success=FAIL,
    )
    table.add(
        s.start,
        src_user=s.user,
        dst_user=s.user,
        src_computer=src,
        dst_computer=dc,
        auth_type=KERBEROS,
        logon_type=UNKNOWN_LOGON,
        auth_orientation=TGT,
        success=SUCCESS,
    )
    table.add(
        s.start + 1,
        src_user=s.user,
        dst_user=s.user,
        src_computer=src,
        dst_computer=src,
        auth_type=NEGOTIATE,
        logon_type=INTERACTIVE,
        auth_orientation=ORIENT_LOGON,
        success=SUCCESS,
    )
    # Network logons to the user's habitual servers during the day.
    rows = _expand(rng.poisson(org.auth_rate[s.user] * np.minimum(s.hours / 9.0, 1.5)))
    k = len(rows)
    user = s.user[rows]
    sizes = np.array([len(d) for d in world.destinations])[user]
    # Heavier use of the first few destinations: the user's own servers.
    pick = np.minimum((rng.random(k) ** 2.5 * sizes).astype(np.int64), sizes - 1)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in world.destinations])[:-1]])
    flat = np.concatenate(world.destinations)
    dst = flat[offsets[user] + pick]
    ts = s.sample(rng, rows)
    ntlm = rng.random(k) < 0.08
    failed = rng.random(k) < 0.004
    table.add(
        ts,
        src_user=user,
        dst_user=user,
        src_computer=src[rows],
        dst_computer=dst,
        auth_type=np.where(ntlm, NTLM, KERBEROS),
        logon_type=NETWORK,
        auth_orientation=ORIENT_LOGON,
        success=np.where(failed, FAIL, SUCCESS),
    )
    closes = np.flatnonzero(~failed & (rng.random(k) < 0.55))
    table.add(
        ts[closes] + rng.integers(1, 1800, len(closes)),
        src_user=user[closes],
        dst_user=user[closes],
        src_computer=dst[closes],
        dst_computer=dst[closes],
        auth_type=UNKNOWN_AUTH,
        logon_type=NETWORK,
        auth_orientation=ORIENT_LOGOFF,
        success=SUCCESS,
    )
    # Machine accounts renew their tickets and start services while the PC is on.
    machine_rows = _expand(rng.poisson(2.0, n))
    machine = np.array([world.auth_users.code(f"C{name[3:]}$@DOM1") for name in world.pcs.items])[
        s.pc[machine_rows]
    ]
    service = rng.random(len(machine_rows)) < 0.4
    table.add(
        s.sample(rng, machine_rows),
        src_user=machine,
        dst_user=machine,
        src_computer=src[machine_rows],
        dst_computer=np.where(service, src[machine_rows], dc[machine_rows]),
        auth_type=np.where(service, NEGOTIATE, KERBEROS),
        logon_type=np.where(service, SERVICE, NETWORK),
        auth_orientation=ORIENT_LOGON,
        success=SUCCESS,
    )
