"""Where a benchmark's public data lives: ``--data-dir`` or ``$BASELINER_DATA``, no fixed path."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

DATA_ENV_VAR = "BASELINER_DATA"


def resolve_dataset_dir(
    data_dir: str | os.PathLike[str] | None,
    subfolder: str,
    holds: Callable[[Path], bool],
    error: type[Exception],
    what: str,
) -> Path:
    """The folder holding a dataset: ``data_dir`` itself or its ``subfolder``.

    ``data_dir`` defaults to ``$BASELINER_DATA``; the first of the two candidates for which
    ``holds`` is true wins. Otherwise ``error`` is raised with a message naming what was sought.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "nab").mkdir()
    >>> _ = (root / "nab" / "marker").write_text("")
    >>> resolve_dataset_dir(root, "nab", lambda p: (p / "marker").is_file(), ValueError,
    ...                     "NAB corpus").name
    'nab'
    """
    if data_dir is None:
        env = os.environ.get(DATA_ENV_VAR)
        if not env:
            raise error(f"no data directory for the {what}: pass --data-dir or set {DATA_ENV_VAR}")
        data_dir = env
    base = Path(data_dir)
    for candidate in (base, base / subfolder):
        if holds(candidate):
            return candidate
    raise error(f"{base}: no {what} here (looked in it and {subfolder}/)")
