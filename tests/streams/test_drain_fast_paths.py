"""The drain parser's fast paths mine, mask and collect parameters exactly as the plain ones.

The default masks run as one rewritten regex (``_DEFAULT_MASK_SCAN``) instead of the joined
alternation of :data:`DEFAULT_MASKS`; parameters are collected without tokenising lines whose
template has no wildcard; each cluster's template text and action are kept between its events.
The reference below is the parser as it was before those: the same events and state must come
out of both for any lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import Event, ParseError
from streams.parsers import DrainTemplateParser
from streams.parsers.drain import _DEFAULT_MASK_SCAN, DEFAULT_MASKS, _Described

#: The default masks joined as the parser joins any masks.
JOINED_DEFAULT_MASKS = re.compile(
    "|".join(f"(?P<m{i}>{pattern})" for i, (pattern, _) in enumerate(DEFAULT_MASKS))
)


class PlainParser(DrainTemplateParser):
    """The parser with the joined masks, re-tokenising every line to collect its parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.mask_re = JOINED_DEFAULT_MASKS

    def _params(self, described: _Described, masked: str, values: list[str]) -> list[str]:
        template = described.tokens
        tokens = self.miner.drain.get_content_as_tokens(masked)
        if len(tokens) != len(template):
            return values
        queue: Iterator[str] = iter(values)
        params: list[str] = []
        for token, pattern in zip(tokens, template, strict=True):
            own = iter(list(islice(queue, len(self.placeholder_re.findall(token)))))
            if pattern == "<*>":
                refill = lambda m, own=own: next(own, m.group())  # noqa: E731
                params.append(self.placeholder_re.sub(refill, token))
            else:
                params.extend(own)
        return params


def spans(pattern: re.Pattern[str], text: str) -> list[tuple[tuple[int, int], str | None]]:
    return [(match.span(), match.lastgroup) for match in pattern.finditer(text)]


# Pieces around and inside every mask's edges: signs, dots, colons, hex letters, "blk_",
# letters and digits that end a number or an address, digits of other scripts (\d is Unicode:
# Arabic-Indic, Devanagari, mathematical; "²" is a digit to str.isdigit but not to \d).
PIECES = st.sampled_from(
    [
        "0", "7", "42", "255", "1234", "٣", "४२", "𝟘", "²", "-", "+", ".", ":", "_", "b",
        "blk_", "blk_-", "lk_", "0x", "0X", "x", "fF", "g", "a", "Z", " ", "\t", "\n", "é",
        "<", ">", "<NUM>", "<IP>", "10.0.0.1", "1.2.3.4:22", "1.2.3.4.5", "999.1.1.1",
        "0x1f", "0xZ", "-12", "+3", "a1", "1a", "1.5", "blk_9", "blk_-77",
    ]
)  # fmt: skip
TEXTS = st.one_of(
    st.lists(PIECES, max_size=14).map("".join),
    st.text(alphabet="0123456789٣blk_-+.:xXaf <>", max_size=30),
    st.text(max_size=30),
)


@settings(max_examples=2000, deadline=None)
@given(TEXTS)
def test_the_default_mask_scan_masks_what_the_joined_masks_mask(text: str) -> None:
    assert spans(_DEFAULT_MASK_SCAN, text) == spans(JOINED_DEFAULT_MASKS, text)
    fast, plain = DrainTemplateParser(), PlainParser()
    assert fast.mask_re is _DEFAULT_MASK_SCAN
    assert fast._mask(text) == plain._mask(text)


def test_the_default_mask_scan_on_the_edges_of_each_mask() -> None:
    masked = [
        ("blk_-42 blk_7x ablk_3", ["<BLK>", "<BLK>x", "a<BLK>"]),
        (
            "10.0.0.1:22 10.0.0.1.5 a1.2.3.4 1.2.3.4a",
            ["<IP>", "<IP>.<NUM>", "a1.<NUM>.<NUM>.<NUM>", "<NUM>.<NUM>.<NUM>.4a"],
        ),
        ("0x1F 0xg x0x1 -0x1", ["<HEX>", "0xg", "x0x1", "-<HEX>"]),
        ("-5 +6 a7 7a 12٣a ٣", ["<NUM>", "<NUM>", "a7", "7a", "<NUM>٣a", "<NUM>"]),
    ]  # fmt: skip
    parser = DrainTemplateParser()
    for text, tokens in masked:
        assert parser._mask(text)[0].split() == tokens
        assert parser._mask(text) == PlainParser()._mask(text)


def outcome(parser: DrainTemplateParser, line: str) -> Event | str | None:
    try:
        return parser.parse(line)
    except ParseError as exc:
        return exc.reason


WORDS = st.sampled_from(
    ["disk", "full", "user", "ann", "bob", "from", "port", "<NUM>", "<*>", "a<IP>", "x<NUM>y"]
)
VALUES = st.sampled_from(["3", "-4", "10.0.0.7", "10.0.0.7:22", "0xff", "blk_-9", "a12", "٣"])
MESSAGES = st.lists(st.one_of(WORDS, VALUES, st.tuples(WORDS, VALUES).map("".join)), max_size=7)


@settings(max_examples=300, deadline=None)
@given(st.lists(MESSAGES, min_size=1, max_size=30))
def test_events_and_state_are_those_of_the_plain_parser(messages: list[list[str]]) -> None:
    fast, plain = DrainTemplateParser(), PlainParser()
    for words in messages:
        line = "2026-11-27T10:00:00Z " + " ".join(words)
        event = outcome(fast, line)
        assert event == outcome(plain, line)
        if isinstance(event, Event):  # the kept template text is the cluster's template now
            cluster_id = int(event.action.removeprefix("template:"))
            assert event.attrs["template"] == fast.templates()[cluster_id]
    assert fast.state() == plain.state()


def test_parameters_of_wildcards_values_and_literal_placeholders() -> None:
    fast, plain = DrainTemplateParser(), PlainParser()
    lines = [
        "2026-11-27T10:00:00Z login ann from 10.0.0.1 port 22 took 5 ms",
        "2026-11-27T10:00:01Z login bob from 10.0.0.2 port 23 took 6 ms",
        # "<NUM>" written in the line takes the first value (it looks like a placeholder), as
        # it always did: the wildcard word gets "7" and the address.
        "2026-11-27T10:00:02Z login <NUM>:7 from 10.0.0.3 port 24 took 7 ms",
    ]
    events = [fast.parse(line) for line in lines]
    assert events == [plain.parse(line) for line in lines]
    params = [
        {key: value for key, value in event.attrs.items() if key.startswith("param_")}
        for event in events
        if event is not None
    ]
    assert params == [
        {"param_0": "10.0.0.1", "param_1": "22", "param_2": "5"},
        {"param_0": "bob", "param_1": "10.0.0.2", "param_2": "23", "param_3": "6"},
        {"param_0": "7:10.0.0.3", "param_1": "24", "param_2": "7"},
    ]


@pytest.mark.parametrize(
    ("max_params", "kept", "dropped"), [(3, 3, "67"), (66, 66, "4"), (100, 70, None)]
)
def test_more_parameters_than_the_names_made_ahead(
    max_params: int, kept: int, dropped: str | None
) -> None:
    parser = DrainTemplateParser(max_params=max_params)
    event = parser.parse("2026-11-27T10:00:00Z sums " + " ".join(str(n) for n in range(70)))
    assert event is not None
    params = {key: value for key, value in event.attrs.items() if key.startswith("param_")}
    assert params == {f"param_{n}": str(n) for n in range(kept)}
    assert event.attrs.get("params_dropped") == dropped
