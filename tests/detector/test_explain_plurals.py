"""Explanation texts agree with the count: "1 logon", "2 logons"."""

from __future__ import annotations

import re

import pytest

from detector.explain import deviation_sentence
from features.catalog import DEFAULT_SPECS

SPECS = {spec.name: spec for spec in DEFAULT_SPECS}
#: The words the catalogue puts between a count and its noun.
ADJECTIVES = "distinct web|removable media|distinct|weekend|web|file|failed|network"


@pytest.mark.parametrize(
    ("feature", "observed", "text"),
    [
        ("logons", 1.0, "1 logon (typical 4)"),
        ("logons", 2.0, "2 logons (typical 4)"),
        ("logons", 0.0, "0 logons (typical 4)"),
        ("logon_hosts", 1.0, "logged on to 1 machine (typical 4)"),
        ("logon_hosts", 9.0, "logged on to 9 machines (typical 4)"),
        ("usb_file_copies", 1.0, "1 file copied to removable media (typical 4)"),
        ("emails_sent", 1.0, "1 email sent (typical 4)"),
    ],
)
def test_a_count_of_one_reads_singular(feature: str, observed: float, text: str) -> None:
    assert deviation_sentence(SPECS[feature], observed, 4.0, 4.0, 4.0) == text


def test_no_catalogue_sentence_says_one_of_a_plural() -> None:
    counts = [spec for spec in DEFAULT_SPECS if "{observed:g}" in spec.explain]
    assert len(counts) >= 40  # the measures (hours away, regularity) read "1.0", not "1"
    for spec in counts:
        text = deviation_sentence(spec, 1.0, 2.0, 1.0, 3.0)
        assert "(s)" not in text, spec.name
        # "1 logons", "1 removable media connections", "1 distinct web domains": none left.
        counted = re.search(f"\\b1 (?:{ADJECTIVES} )?([a-z-]+)", text)
        assert counted is not None and not counted.group(1).endswith("s"), text
