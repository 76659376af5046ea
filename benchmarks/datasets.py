"""``baseliner datasets list | verify NAME | fetch NAME``: the public datasets, checked by sha256.

``benchmarks/datasets.json`` (data, not code) names each dataset's public source (repository and
commit), licence and every file with its sha256. ``verify`` checks a local copy and says exactly
which files are missing or differ; ``fetch`` downloads what is missing or wrong from the public
source (or a mirror given as ``--base-url``), verifies each file before it takes its place, and
is the only code in baseliner that touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from benchmarks.datadir import DATA_ENV_VAR
from detector.errors import UsageError


@dataclass(frozen=True)
class DatasetFile:
    path: str
    sha256: str
    upstream: str | None


@dataclass(frozen=True)
class Dataset:
    """One dataset of the manifest.

    Examples
    --------
    >>> nab = load_manifest()["nab"]
    >>> nab.repository, len(nab.files) > 300
    ('numenta/NAB', True)
    """

    name: str
    description: str
    licence: str
    repository: str
    commit: str
    notes: str
    files: tuple[DatasetFile, ...]

    def url(self, file: DatasetFile, base_url: str | None, template: str) -> str | None:
        if base_url is not None:
            return f"{base_url.rstrip('/')}/{self.name}/{file.path}"
        if file.upstream is None:
            return None
        return template.format(
            repository=self.repository, commit=self.commit, upstream=file.upstream
        )


def _manifest_data() -> dict[str, Any]:
    text = resources.files("benchmarks").joinpath("datasets.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def load_manifest() -> dict[str, Dataset]:
    """Every dataset of ``datasets.json`` by name."""
    data = _manifest_data()
    return {
        name: Dataset(
            name=name,
            description=meta["description"],
            licence=meta["licence"],
            repository=meta["repository"],
            commit=meta["commit"],
            notes=meta.get("notes", ""),
            files=tuple(DatasetFile(**f) for f in meta["files"]),
        )
        for name, meta in data["datasets"].items()
    }


def data_root(data_dir: Path | None) -> Path:
    """``--data-dir`` or ``$BASELINER_DATA``; a clear usage error when neither is given."""
    if data_dir is not None:
        return data_dir
    env = os.environ.get(DATA_ENV_VAR)
    if not env:
        raise UsageError(f"no data folder: pass --data-dir or set {DATA_ENV_VAR}")
    return Path(env)


def _dataset(name: str) -> Dataset:
    manifest = load_manifest()
    if name not in manifest:
        raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(sorted(manifest))}")
    return manifest[name]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(dataset: Dataset, root: Path) -> tuple[list[str], list[str]]:
    """Files of ``dataset`` missing under ``root/<name>``, and files whose sha256 differs."""
    folder = root / dataset.name
    missing: list[str] = []
    different: list[str] = []
    for file in dataset.files:
        path = folder / file.path
        if not path.is_file():
            missing.append(file.path)
        elif _sha256(path) != file.sha256:
            different.append(file.path)
    return missing, different


def list_datasets(data_dir: Path | None) -> str:
    root = data_dir or (Path(os.environ[DATA_ENV_VAR]) if os.environ.get(DATA_ENV_VAR) else None)
    lines = []
    for dataset in load_manifest().values():
        status = ""
        if root is not None:
            missing, different = check(dataset, root)
            status = (
                "ok"
                if not missing and not different
                else (f"{len(missing)} missing, {len(different)} differ")
            )
        lines.append(
            f"{dataset.name:<10} {len(dataset.files):>4} files  {dataset.repository}@"
            f"{dataset.commit}  {status}\n           {dataset.description}; {dataset.licence}"
        )
    return "\n".join(lines)


def verify(name: str, data_dir: Path | None) -> tuple[bool, str]:
    """Whether the local copy is complete and intact, and a report naming every problem."""
    dataset = _dataset(name)
    root = data_root(data_dir)
    missing, different = check(dataset, root)
    if not missing and not different:
        return True, f"{name}: all {len(dataset.files)} files present with the expected sha256"
    lines = [
        f"{name}: {len(missing)} missing, {len(different)} with another sha256 (in {root / name})"
    ]
    lines += [f"  missing: {p}" for p in missing]
    lines += [f"  differs: {p}" for p in different]
    return False, "\n".join(lines)


def fetch(name: str, data_dir: Path | None, base_url: str | None = None) -> tuple[bool, str]:
    """Download the files of ``name`` that are missing or differ, verifying each one."""
    dataset = _dataset(name)
    root = data_root(data_dir)
    template = str(_manifest_data()["raw_url"])
    missing, different = check(dataset, root)
    wanted = {*missing, *different}
    fetched = 0
    problems: list[str] = []
    for file in dataset.files:
        if file.path not in wanted:
            continue
        url = dataset.url(file, base_url, template)
        if url is None:
            problems.append(f"  {file.path}: no public source (re-encoded or a licence copy)")
            continue
        target = root / dataset.name / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                payload = response.read()
        except (urllib.error.URLError, OSError) as exc:
            problems.append(f"  {file.path}: download failed from {url}: {exc}")
            continue
        if hashlib.sha256(payload).hexdigest() != file.sha256:
            problems.append(f"  {file.path}: downloaded bytes have another sha256; not kept")
            continue
        handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=".fetch-")
        with os.fdopen(handle, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fetched += 1
    head = f"{name}: fetched {fetched} file(s), {len(dataset.files) - len(wanted)} already ok"
    if problems:
        return False, "\n".join([head + f", {len(problems)} problem(s):", *problems])
    return True, head
