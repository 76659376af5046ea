"""Shared fixtures for the streams tests."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    """The shipped fixture directory (cert_r42, cert_r62, lanl, jsonl)."""
    return FIXTURES
