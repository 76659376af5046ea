"""Generated organisations reused between runs when their parameters match."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.synthetic import GENERATOR_VERSION, generate


def ensure_org(directory: Path, *, users: int, days: int, seed: int) -> dict[str, object]:
    """Generate an organisation into ``directory`` unless one with these parameters is there.

    Returns the manifest. The generator is deterministic, so a cached copy with the same
    users, days, seed and generator version holds the same bytes as a fresh one.
    """
    manifest_path = directory / "manifest.json"
    if manifest_path.is_file():
        manifest: dict[str, object] = json.loads(manifest_path.read_text())
        wanted = (users, days, seed, GENERATOR_VERSION)
        found = tuple(manifest.get(k) for k in ("users", "days", "seed", "generator_version"))
        if found == wanted:
            return manifest
    generate(directory, users=users, days=days, seed=seed)
    loaded: dict[str, object] = json.loads(manifest_path.read_text())
    return loaded
