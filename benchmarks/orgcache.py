"""Generated organisations reused between runs when their parameters match."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.synthetic import generate


def ensure_org(directory: Path, *, users: int, days: int, seed: int) -> dict[str, object]:
    """Generate an organisation into ``directory`` unless one with these parameters is there.

    Returns the manifest. The generator is deterministic, so a cached copy with the same
    users, days and seed holds the same bytes as a fresh one.
    """
    manifest_path = directory / "manifest.json"
    if manifest_path.is_file():
        manifest: dict[str, object] = json.loads(manifest_path.read_text())
        if (manifest.get("users"), manifest.get("days"), manifest.get("seed")) == (
            users,
            days,
            seed,
        ):
            return manifest
    generate(directory, users=users, days=days, seed=seed)
    loaded: dict[str, object] = json.loads(manifest_path.read_text())
    return loaded
