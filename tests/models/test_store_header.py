"""The model header's digest: an edited window or entity is refused, older files still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.store import CorruptModelError, load_model, read_header, save_model

SCHEMA = "sha256:features-v1"


def _rewrite_header(path: Path, edit: dict[str, object], drop: tuple[str, ...] = ()) -> None:
    data = path.read_bytes()
    newline = data.index(b"\n")
    header = json.loads(data[:newline])
    header["metadata"].update(edit)
    for key in drop:
        header.pop(key)
    path.write_bytes(json.dumps(header, sort_keys=True).encode() + data[newline:])


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    save_model(path, {"w": 1}, schema_hash=SCHEMA, metadata={"window": "1d", "entity": "user"})
    return path


def test_an_edited_window_is_refused_by_the_header_and_by_the_load(saved: Path) -> None:
    _rewrite_header(saved, {"window": "1h"})
    with pytest.raises(CorruptModelError, match="edited after saving"):
        read_header(saved.read_bytes(), str(saved))
    with pytest.raises(CorruptModelError, match="edited after saving"):
        load_model(saved, expected_schema_hash=SCHEMA)


def test_an_edited_entity_is_refused(saved: Path) -> None:
    _rewrite_header(saved, {"entity": "host"})
    with pytest.raises(CorruptModelError, match="does not match its digest"):
        read_header(saved.read_bytes())


def test_an_unchanged_header_rewritten_in_another_key_order_still_loads(saved: Path) -> None:
    _rewrite_header(saved, {})
    assert read_header(saved.read_bytes())["metadata"] == {"window": "1d", "entity": "user"}
    assert load_model(saved, expected_schema_hash=SCHEMA) == {"w": 1}


def test_an_older_file_without_the_digest_loads_as_before(saved: Path) -> None:
    # Written before the header had a digest: read as it is (the scan then checks the window
    # and entity against the verified payload).
    _rewrite_header(saved, {"window": "1h"}, drop=("header_sha256",))
    assert read_header(saved.read_bytes())["metadata"]["window"] == "1h"
    assert load_model(saved, expected_schema_hash=SCHEMA) == {"w": 1}
