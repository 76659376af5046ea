"""Shared fixtures: a small generated organisation, made once per test session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.synthetic import generate


@pytest.fixture(scope="session")
def small_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 users over 60 days with every planted scenario (a few seconds to generate)."""
    out = tmp_path_factory.mktemp("org") / "org"
    generate(out, users=100, days=60, seed=3)
    return out


@pytest.fixture(scope="session")
def small_org_manifest(small_org: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((small_org / "manifest.json").read_text())
    return manifest
