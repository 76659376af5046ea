"""Line parsers for the CERT Insider Threat Test Dataset (releases r4.2 and r6.2).

Every CERT activity file is a CSV with a header row. The releases differ in their columns,
so a parser reads the layout from the header: built without one it expects the r6.2
layout, and a header line met in the stream (the first line of a file) switches it to that
file's layout. Fields are split on commas without CSV quoting (the dataset has none); the
free-text ``content`` column is last, so commas inside it are kept in it.

The constants here (activity vocabularies, the date rule, the URL host rule, the order in
which problems are reported) are shared with :mod:`streams.batch`, whose polars expressions
must give the same events as these parsers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from streams import actions
from streams.errors import ParseError
from streams.event import Event
from streams.parsers.base import is_blank, strip_eol

CERT_DATE_FORMAT = "%m/%d/%Y %H:%M:%S"
#: ``MM/DD/YYYY HH:MM:SS`` is 19 characters; the batch path checks the same length.
CERT_DATE_LENGTH = 19
_DATE_RE = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")

LOGON_ACTIVITY: Mapping[str, str] = {"Logon": actions.LOGON, "Logoff": actions.LOGOFF}
DEVICE_ACTIVITY: Mapping[str, str] = {
    "Connect": actions.USB_CONNECT,
    "Disconnect": actions.USB_DISCONNECT,
}
FILE_ACTIVITY: Mapping[str, str] = {
    "File Open": actions.FILE_OPEN,
    "File Write": actions.FILE_WRITE,
    "File Copy": actions.FILE_COPY,
    "File Delete": actions.FILE_DELETE,
}
EMAIL_ACTIVITY: Mapping[str, str] = {"Send": actions.EMAIL_SEND, "View": actions.EMAIL_VIEW}
HTTP_ACTIVITY: Mapping[str, str] = {
    "WWW Visit": actions.HTTP_VISIT,
    "WWW Download": actions.HTTP_DOWNLOAD,
    "WWW Upload": actions.HTTP_UPLOAD,
}
CERT_BOOLEANS: Mapping[str, bool] = {"True": True, "False": False}

#: A non-negative integer as the dataset writes it; 15 digits keep sums inside int64.
NUMBER_PATTERN = r"^[0-9]{1,15}$"
_NUMBER_RE = re.compile(r"[0-9]{1,15}")
#: The size a CERT r6.2 attachment carries in brackets: ``C:\\a\\b.doc(12345)``.
ATTACHMENT_SIZE_PATTERN = r"\(([0-9]{1,15})\)$"
_ATTACHMENT_SIZE_RE = re.compile(r"\(([0-9]{1,15})\)\Z")
#: The host of a URL: after an optional scheme and user info, up to the path, query or port.
URL_HOST_PATTERN = r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://)?(?:[^/?#@]*@)?([^/?#:]*)"
_URL_HOST_RE = re.compile(URL_HOST_PATTERN)


def parse_cert_date(value: str, field: str = "date") -> datetime:
    """Parse a CERT ``MM/DD/YYYY HH:MM:SS`` timestamp, taken as UTC.

    Second 60 is read as a leap second rolling into the next minute, as polars does.

    Examples
    --------
    >>> parse_cert_date("01/04/2010 02:13:40")
    datetime.datetime(2010, 1, 4, 2, 13, 40, tzinfo=datetime.timezone.utc)
    >>> parse_cert_date("13/04/2010 02:13:40")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streams.errors.ParseError: bad_timestamp: field 'date': '13/04/2010 02:13:40' is not ...
    """
    if value == "":
        raise ParseError("missing_field", f"field {field!r} is empty")
    match = _DATE_RE.fullmatch(value)
    problem = ParseError("bad_timestamp", f"field {field!r}: {value!r} is not MM/DD/YYYY HH:MM:SS")
    if match is None:
        raise problem
    month, day, year, hour, minute, second = (int(g) for g in match.groups())
    leap = second == 60
    try:
        ts = datetime(year, month, day, hour, minute, 59 if leap else second, tzinfo=UTC)
    except ValueError:
        raise problem from None
    return ts + timedelta(seconds=1) if leap else ts


def url_host(url: str) -> str | None:
    """The host name of a URL, lower-cased, without a leading ``www.``.

    Examples
    --------
    >>> url_host("http://www.WikiLeaks.org/path?q=1")
    'wikileaks.org'
    >>> url_host("https://user@intranet.dtaa.com:8080/x"), url_host("/relative") is None
    ('intranet.dtaa.com', True)
    """
    match = _URL_HOST_RE.match(url)
    host = match.group(1).lower().removeprefix("www.") if match else ""
    return host or None


def attachment_summary(attachments: str) -> tuple[int, int]:
    """Count and total size of a r6.2 ``;``-separated attachment list.

    Items without a ``(size)`` suffix count but add nothing to the total.

    Examples
    --------
    >>> attachment_summary(r"C:\\a\\b.doc(12345);C:\\c.pdf(55)")
    (2, 12400)
    >>> attachment_summary("")
    (0, 0)
    """
    items = [item for item in attachments.split(";") if item]
    total = 0
    for item in items:
        size = _ATTACHMENT_SIZE_RE.search(item)
        if size is not None:
            total += int(size.group(1))
    return len(items), total


def join_recipients(*fields: str) -> str | None:
    """All ``;``-separated addresses of the given fields joined by ``;``, empties dropped.

    Examples
    --------
    >>> join_recipients("a@x.com;b@x.com", "", "c@y.com")
    'a@x.com;b@x.com;c@y.com'
    """
    joined = ";".join(address for f in fields for address in f.split(";") if address)
    return joined or None


@dataclass(frozen=True, slots=True)
class CertKind:
    """What one CERT activity file looks like in both releases.

    Examples
    --------
    >>> CERT_KINDS["http"].source
    'cert.http'
    """

    name: str
    required: tuple[str, ...]
    r42_header: tuple[str, ...]
    r62_header: tuple[str, ...]

    @property
    def source(self) -> str:
        """The Event source of this file's events."""
        return f"cert.{self.name}"


_BASE = ("id", "date", "user", "pc")
CERT_KINDS: Mapping[str, CertKind] = {
    "logon": CertKind("logon", (*_BASE, "activity"), (*_BASE, "activity"), (*_BASE, "activity")),
    "device": CertKind(
        "device",
        (*_BASE, "activity"),
        (*_BASE, "activity"),
        (*_BASE, "file_tree", "activity"),
    ),
    "file": CertKind(
        "file",
        (*_BASE, "filename"),
        (*_BASE, "filename", "content"),
        (
            *_BASE,
            "filename",
            "activity",
            "to_removable_media",
            "from_removable_media",
            "content",
        ),
    ),
    "email": CertKind(
        "email",
        (*_BASE, "to", "cc", "bcc", "from", "size", "attachments"),
        (*_BASE, "to", "cc", "bcc", "from", "size", "attachments", "content"),
        (*_BASE, "to", "cc", "bcc", "from", "activity", "size", "attachments", "content"),
    ),
    "http": CertKind(
        "http",
        (*_BASE, "url"),
        (*_BASE, "url", "content"),
        (*_BASE, "url", "activity", "content"),
    ),
}


def normalise_header(names: Sequence[str]) -> tuple[str, ...]:
    """Header names stripped of a byte-order mark and spaces, lower-cased.

    Examples
    --------
    >>> normalise_header(["\\ufeffID", " date"])
    ('id', 'date')
    """
    return tuple(n.replace("\ufeff", "").strip().lower() for n in names)


def looks_like_header(first_field: str) -> bool:
    """Whether a line whose first field is this is a CERT header row (data ids are ``{...}``)."""
    return normalise_header([first_field])[0] == "id"


@dataclass(frozen=True, slots=True)
class CertLayout:
    """The columns of one CERT file, read from its header.

    A layout with an ``activity`` column follows the r6.2 semantics; without one, r4.2.

    Examples
    --------
    >>> layout = CertLayout.from_header("file", "id,date,user,pc,filename,content".split(","))
    >>> layout.release, layout.n_fields, layout.content_last
    ('r4.2', 6, True)
    """

    kind: CertKind
    header: tuple[str, ...]

    @classmethod
    def from_header(cls, kind: str | CertKind, header: Sequence[str]) -> CertLayout:
        """Build and check a layout; raises ``ValueError`` naming missing columns."""
        cert_kind = CERT_KINDS[kind] if isinstance(kind, str) else kind
        names = normalise_header(header)
        required = list(cert_kind.required)
        if cert_kind.name == "file" and "activity" in names:
            required += ["to_removable_media", "from_removable_media"]
        missing = [c for c in required if c not in names]
        if missing:
            raise ValueError(
                f"CERT {cert_kind.name} header {','.join(names)!r} lacks column(s) {missing}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"CERT {cert_kind.name} header {','.join(names)!r} repeats a name")
        return cls(cert_kind, names)

    @classmethod
    def default(cls, kind: str) -> CertLayout:
        """The r6.2 layout, used when no header has been seen."""
        return cls.from_header(kind, CERT_KINDS[kind].r62_header)

    @property
    def n_fields(self) -> int:
        """How many fields a data line must have."""
        return len(self.header)

    @property
    def content_last(self) -> bool:
        """Whether the free-text ``content`` column is last (it then absorbs extra commas)."""
        return self.header[-1] == "content"

    @property
    def release(self) -> str:
        """``"r6.2"`` when the file carries an ``activity`` column (or ``file_tree``)."""
        if self.kind.name == "logon":
            return "r6.2" if self.header == self.kind.r62_header else "r4.2"
        r62 = "activity" in self.header and self.kind.name != "device"
        return "r6.2" if r62 or "file_tree" in self.header else "r4.2"

    def has(self, column: str) -> bool:
        """Whether the layout carries a column."""
        return column in self.header

    def index(self, column: str) -> int:
        """The 0-based position of a column."""
        return self.header.index(column)


def _required(value: str, field: str) -> str:
    if value == "":
        raise ParseError("missing_field", f"field {field!r} is empty")
    return value


def _lookup(value: str, vocabulary: Mapping[str, str], field: str) -> str:
    if value == "":
        raise ParseError("missing_field", f"field {field!r} is empty")
    try:
        return vocabulary[value]
    except KeyError:
        raise ParseError(
            "unknown_value", f"field {field!r}: {value!r} not in {sorted(vocabulary)}"
        ) from None


def _boolean(value: str, field: str) -> bool:
    if value == "":
        raise ParseError("missing_field", f"field {field!r} is empty")
    try:
        return CERT_BOOLEANS[value]
    except KeyError:
        raise ParseError("unknown_value", f"field {field!r}: {value!r} is not True/False") from None


def _number(value: str, field: str) -> int | None:
    if value == "":
        return None
    if _NUMBER_RE.fullmatch(value) is None:
        raise ParseError("bad_number", f"field {field!r}: {value!r} is not a whole number")
    return int(value)


class CertParser:
    """Shared machinery of the CERT line parsers: layout, splitting, common fields.

    Subclasses set ``kind`` and implement ``_event``. Problems are reported in a fixed
    order (field count, date, user, pc, activity, then the file's own columns) that the
    batch reader follows too.
    """

    kind: ClassVar[str]

    def __init__(self, header: Sequence[str] | None = None) -> None:
        self.layout = (
            CertLayout.default(self.kind)
            if header is None
            else CertLayout.from_header(self.kind, header)
        )

    @property
    def source(self) -> str:
        """The Event source this parser stamps."""
        return CERT_KINDS[self.kind].source

    def parse(self, line: str) -> Event | None:
        """Parse one CSV line; a header line switches the layout and yields ``None``."""
        line = strip_eol(line)
        if is_blank(line):
            return None
        layout = self.layout
        if looks_like_header(line.split(",", 1)[0]):
            try:
                self.layout = CertLayout.from_header(self.kind, line.split(","))
            except ValueError as exc:
                raise ParseError("bad_header", str(exc)) from None
            return None
        n = layout.n_fields
        fields = line.split(",", n - 1 if layout.content_last else n)
        if len(fields) != n:
            raise ParseError(
                "wrong_field_count",
                f"{len(fields)} field(s), {self.kind} layout {','.join(layout.header)!r} has {n}",
            )
        row = dict(zip(layout.header, fields, strict=True))
        ts = parse_cert_date(row["date"])
        user = _required(row["user"], "user")
        pc = _required(row["pc"], "pc")
        return self._event(row, ts, user, pc)

    def _event(self, row: dict[str, str], ts: datetime, user: str, pc: str) -> Event:
        raise NotImplementedError

    @staticmethod
    def _attrs(**values: str) -> dict[str, str]:
        return {k: v for k, v in values.items() if v != ""}


class CertLogonParser(CertParser):
    """``logon.csv``: ``id,date,user,pc,activity`` (both releases).

    Examples
    --------
    >>> p = CertLogonParser()
    >>> p.parse("id,date,user,pc,activity") is None
    True
    >>> e = p.parse("{X1D9-S0ES98JV-5357PWMI},01/02/2010 06:49:00,NGF0157,PC-6056,Logon")
    >>> e.action, e.user, e.host, e.target, e.attrs["id"]
    ('logon', 'NGF0157', 'PC-6056', 'PC-6056', '{X1D9-S0ES98JV-5357PWMI}')
    """

    kind = "logon"

    def _event(self, row: dict[str, str], ts: datetime, user: str, pc: str) -> Event:
        action = _lookup(row["activity"], LOGON_ACTIVITY, "activity")
        return Event(ts, self.source, action, user, pc, pc, attrs=self._attrs(id=row["id"]))


class CertDeviceParser(CertParser):
    """``device.csv``: r4.2 ``id,date,user,pc,activity``; r6.2 adds ``file_tree``.

    Examples
    --------
    >>> p = CertDeviceParser(header="id,date,user,pc,activity".split(","))
    >>> p.parse("{A1},01/02/2010 07:21:06,LRR0148,PC-9975,Connect").action
    'usb_connect'
    """

    kind = "device"

    def _event(self, row: dict[str, str], ts: datetime, user: str, pc: str) -> Event:
        action = _lookup(row["activity"], DEVICE_ACTIVITY, "activity")
        attrs = self._attrs(id=row["id"], file_tree=row.get("file_tree", ""))
        return Event(ts, self.source, action, user, pc, pc, attrs=attrs)


class CertFileParser(CertParser):
    """``file.csv``: every r4.2 row is a copy to removable media; r6.2 says which.

    Examples
    --------
    >>> p = CertFileParser()
    >>> line = r"{F1},01/04/2010 09:21:40,MOH0273,PC-6699,R:\\a.doc,File Write,True,False,x y"
    >>> e = p.parse(line)
    >>> e.action, e.target, e.attrs["activity"]
    ('file_copy_removable', 'R:\\\\a.doc', 'File Write')
    """

    kind = "file"

    def _event(self, row: dict[str, str], ts: datetime, user: str, pc: str) -> Event:
        if not self.layout.has("activity"):
            filename = _required(row["filename"], "filename")
            return Event(
                ts,
                self.source,
                actions.FILE_COPY_REMOVABLE,
                user,
                pc,
                filename,
                attrs=self._attrs(id=row["id"]),
            )
        verb = _lookup(row["activity"], FILE_ACTIVITY, "activity")
        filename = _required(row["filename"], "filename")
        to_removable = _boolean(row["to_removable_media"], "to_removable_media")
        _boolean(row["from_removable_media"], "from_removable_media")
        attrs = self._attrs(
            id=row["id"],
            activity=row["activity"],
            to_removable_media=row["to_removable_media"],
            from_removable_media=row["from_removable_media"],
        )
        action = actions.FILE_COPY_REMOVABLE if to_removable else verb
        return Event(ts, self.source, action, user, pc, filename, attrs=attrs)


class CertEmailParser(CertParser):
    """``email.csv``: r4.2 counts attachments; r6.2 lists them with sizes and adds activity.

    Examples
    --------
    >>> p = CertEmailParser()
    >>> e = p.parse("{E1},01/04/2010 07:36:48,BJC0569,PC-5866,a@dtaa.com;b@dtaa.com,,"
    ...             "c@x.com,BJC0569@dtaa.com,Send,24052,C:\\\\f.pdf(1200),hello")
    >>> e.action, e.target, e.bytes, e.attrs["attachments"], e.attrs["attachment_bytes"]
    ('email_send', 'a@dtaa.com;b@dtaa.com;c@x.com', 24052, '1', '1200')
    """

    kind = "email"

    def _event(self, row: dict[str, str], ts: datetime, user: str, pc: str) -> Event:
        r62 = self.layout.has("activity")
        action = _lookup(row["activity"], EMAIL_ACTIVITY, "activity") if r62 else actions.EMAIL_SEND
        size = _number(row["size"], "size")
        if r62:
            count, total = attachment_summary(row["attachments"])
            attachments, attachment_bytes = str(count), str(total)
        else:
            n_attached = _number(row["attachments"], "attachments")
            attachments = "" if n_attached is None else str(n_attached)
            attachment_bytes = ""
        attrs = self._attrs(
            id=row["id"],
            attachments=attachments,
            attachment_bytes=attachment_bytes,
            **{"from": row["from"]},
        )
        target = join_recipients(row["to"], row["cc"], row["bcc"])
        return Event(ts, self.source, action, user, pc, target, size, attrs=attrs)


class CertHttpParser(CertParser):
    """``http.csv``: target is the URL's host without ``www.``; r6.2 adds the activity.

    Examples
    --------
    >>> p = CertHttpParser(header="id,date,user,pc,url,content".split(","))
    >>> e = p.parse("{H1},01/02/2010 06:55:16,LRR0148,PC-4275,http://www.WikiLeaks.org/a,x")
    >>> e.action, e.target, e.attrs["url"]
    ('http_visit', 'wikileaks.org', 'http://www.WikiLeaks.org/a')
    """

    kind = "http"

    def _event(self, row: dict[str, str], ts: datetime, user: str, pc: str) -> Event:
        action = (
            _lookup(row["activity"], HTTP_ACTIVITY, "activity")
            if self.layout.has("activity")
            else actions.HTTP_VISIT
        )
        url = _required(row["url"], "url")
        attrs = self._attrs(id=row["id"], url=url)
        return Event(ts, self.source, action, user, pc, url_host(url), attrs=attrs)


CERT_PARSERS: Mapping[str, type[CertParser]] = {
    "logon": CertLogonParser,
    "device": CertDeviceParser,
    "file": CertFileParser,
    "email": CertEmailParser,
    "http": CertHttpParser,
}
