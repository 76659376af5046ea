"""Where every benchmark leaves its numbers: results.json, and results.md when there is one."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_results(
    out: str | os.PathLike[str], results: Mapping[str, Any], markdown: str | None = None
) -> Path:
    """Write ``results.json`` (and ``results.md``) into ``out``, creating it; return the JSON path.

    Values JSON cannot encode (dates, paths) are written as strings.

    Examples
    --------
    >>> import tempfile
    >>> path = write_results(Path(tempfile.mkdtemp()) / "run", {"auc": 0.9}, "# run\\n")
    >>> path.read_text(), (path.parent / "results.md").read_text()
    ('{\\n  "auc": 0.9\\n}\\n', '# run\\n')
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if markdown is not None:
        (folder / "results.md").write_text(markdown)
    return path
