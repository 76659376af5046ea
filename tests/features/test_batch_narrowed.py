"""narrowed_columns: the attrs keys a reader keeps only where a spec reads them, same features."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from features import FeatureSpec, WindowConfig, evaluate_batch
from features.batch import attrs_keys, narrowed_columns, required_columns
from features.catalog import default_specs
from streams.batch import scan_events
from tests.features._events import at, ev, frame

_STRUCT = pl.Struct({"activity": pl.String, "attachments": pl.String, "url": pl.String})


def _events(rows: list[dict[str, object]]) -> pl.DataFrame:
    return frame(rows).collect().with_columns(pl.col("attrs").str.json_decode(_STRUCT))


def test_each_key_is_kept_on_the_rows_its_readers_filters_keep() -> None:
    specs = [
        FeatureSpec(
            name="tools", kind="count", where={"action": "http_visit", "attrs.url~": "tool"}
        ),
        FeatureSpec(
            name="attached", kind="sum", field="attrs.attachments", where={"action": "email_send"}
        ),
        FeatureSpec(name="activities", kind="distinct", field="attrs.activity"),
    ]
    rows = [
        ev(at(1, 9), "http_visit", attrs='{"url": "a.com/tool", "activity": "x"}'),
        ev(at(1, 10), "http_visit", attrs='{"url": "a.com/news"}'),
        ev(at(1, 11), "http_download", attrs='{"url": "b.com/tool"}'),
        ev(at(1, 12), "email_send", attrs='{"attachments": "2", "url": "c.com/tool"}'),
        ev(at(1, 13), "email_view", attrs='{"attachments": "3", "activity": "y"}'),
    ]
    events = _events(rows)
    narrowed = events.select(narrowed_columns(specs, WindowConfig()))
    assert narrowed.columns == sorted(required_columns(specs, WindowConfig()))
    attrs = narrowed.get_column("attrs").struct.unnest()
    # The URL only where the pattern matched a visit; the attachments of sent mails only;
    # the activity, read without a filter, everywhere.
    assert attrs["url"].to_list() == ["a.com/tool", None, None, None, None]
    assert attrs["attachments"].to_list() == [None, None, None, "2", None]
    assert attrs["activity"].to_list() == ["x", None, None, None, "y"]
    assert narrowed.get_column("attrs").dtype == events.get_column("attrs").dtype
    expected = evaluate_batch(specs, events.lazy()).collect()
    assert_frame_equal(evaluate_batch(specs, narrowed.lazy()).collect(), expected)
    assert expected.select("tools", "attached", "activities").row(0) == (1.0, 2.0, 2.0)


def test_the_default_catalogue_over_a_generated_org_gives_the_same_features(
    small_org: Path,
) -> None:
    specs = default_specs("user")
    config = WindowConfig()
    keys = attrs_keys(specs)
    events = scan_events([small_org], "cert", attrs_keys=keys).events.collect()
    whole = events.select(sorted(required_columns(specs, config)))
    narrowed = events.select(narrowed_columns(specs, config))
    urls = narrowed.get_column("attrs").struct.field("url")
    # Nearly every URL is left out: only the downloads and visits the pattern matches stay.
    assert 0 < urls.is_not_null().sum() < whole.get_column("attrs").struct.field("url").len() / 100
    assert_frame_equal(
        evaluate_batch(specs, narrowed.lazy(), config).collect(),
        evaluate_batch(specs, whole.lazy(), config).collect(),
    )
