"""Where events come from: the Event schema, parsers for foreign log formats, dead letters.

``streams`` imports none of the other baseliner packages.
"""

from streams.batch import BatchScan, events_from_frame, events_to_frame, scan_events
from streams.cert_meta import ldap_directory, read_ldap, read_psychometric
from streams.errors import DeadLetter, ParseError
from streams.event import EVENT_COLUMNS, EVENT_SCHEMA, POLARS_EVENT_SCHEMA, Event
from streams.lines import LineReader, read_lines
from streams.parsers import PARSERS, Parser

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_SCHEMA",
    "PARSERS",
    "POLARS_EVENT_SCHEMA",
    "BatchScan",
    "DeadLetter",
    "Event",
    "LineReader",
    "ParseError",
    "Parser",
    "events_from_frame",
    "events_to_frame",
    "ldap_directory",
    "read_ldap",
    "read_lines",
    "read_psychometric",
    "scan_events",
]
