"""Shared fixtures: a small generated organisation, made once per test session."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from benchmarks.synthetic import generate

# CI draws the same property-test examples on every run (a landing never hangs on a new
# random draw, and a failure reproduces); a local run keeps drawing new ones and remembers
# failures in .hypothesis/. .ci/run selects the profile.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


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
