"""Model store: round trip and every refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.batch.baselines import RobustBaselineDetector
from models.store import (
    CorruptModelError,
    IncompatibleModelError,
    load_model,
    read_header,
    save_model,
)

SCHEMA = "sha256:features-v1"


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, RobustBaselineDetector, np.ndarray]:
    X = np.log1p(np.random.default_rng(1).poisson(2.0, size=(30, 3)).astype(float))
    entities = np.array([f"u{i % 3}" for i in range(30)])
    detector = RobustBaselineDetector().fit(X, entities=entities)
    path = tmp_path / "robust.model"
    save_model(path, detector, schema_hash=SCHEMA, metadata={"detector": "robust", "rows": 30})
    return path, detector, X


def test_round_trip_scores_identically(
    saved: tuple[Path, RobustBaselineDetector, np.ndarray],
) -> None:
    path, detector, X = saved
    entities = np.array(["u0"] * X.shape[0])
    loaded = load_model(path, expected_schema_hash=SCHEMA)
    assert isinstance(loaded, RobustBaselineDetector)
    np.testing.assert_array_equal(
        loaded.decision_function(X, entities=entities),
        detector.decision_function(X, entities=entities),
    )


def test_header_records_versions_schema_and_metadata(
    saved: tuple[Path, RobustBaselineDetector, np.ndarray],
) -> None:
    header = read_header(saved[0].read_bytes())
    assert header["format_version"] == 1
    assert header["schema_hash"] == SCHEMA
    assert header["metadata"] == {"detector": "robust", "rows": 30}
    assert set(header["versions"]) == {"python", "numpy", "scikit-learn", "pyod"}
    assert len(header["payload_sha256"]) == 64


def test_no_temporary_file_is_left_behind(
    saved: tuple[Path, RobustBaselineDetector, np.ndarray],
) -> None:
    assert [p.name for p in saved[0].parent.iterdir()] == ["robust.model"]


def test_tampered_payload_is_refused_before_unpickling(
    saved: tuple[Path, RobustBaselineDetector, np.ndarray],
) -> None:
    path = saved[0]
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptModelError, match="SHA-256"):
        load_model(path, expected_schema_hash=SCHEMA)


def test_wrong_schema_hash_is_refused(
    saved: tuple[Path, RobustBaselineDetector, np.ndarray],
) -> None:
    with pytest.raises(IncompatibleModelError, match="features-v1"):
        load_model(saved[0], expected_schema_hash="sha256:features-v2")


def test_truncated_file_is_refused(saved: tuple[Path, RobustBaselineDetector, np.ndarray]) -> None:
    path = saved[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(CorruptModelError, match="truncated"):
        load_model(path, expected_schema_hash=SCHEMA)
    path.write_bytes(data[:20])  # cut inside the header
    with pytest.raises(CorruptModelError, match="header"):
        load_model(path, expected_schema_hash=SCHEMA)


def test_future_format_version_is_incompatible(
    saved: tuple[Path, RobustBaselineDetector, np.ndarray],
) -> None:
    path = saved[0]
    header_line, payload = path.read_bytes().split(b"\n", 1)
    header = json.loads(header_line)
    header["format_version"] = 2
    path.write_bytes(json.dumps(header).encode() + b"\n" + payload)
    with pytest.raises(IncompatibleModelError, match="format version"):
        load_model(path, expected_schema_hash=SCHEMA)


def test_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b'{"hello": "world"}\nsomething')
    with pytest.raises(CorruptModelError, match="not a baseliner model"):
        load_model(path, expected_schema_hash=SCHEMA)


def test_metadata_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="JSON"):
        save_model(tmp_path / "m", 1, schema_hash=SCHEMA, metadata={"when": object()})
    assert list(tmp_path.iterdir()) == []
