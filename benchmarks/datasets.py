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
import urllib.parse
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from benchmarks.datadir import DATA_ENV_VAR
from detector.errors import UsageError

FETCH_TIMEOUT_SECONDS = 30.0
"""Per-file network timeout of ``fetch`` (connect and each read)."""

MAX_CONSECUTIVE_FAILURES = 3
"""``fetch`` stops after this many downloads in a row fail to connect: the source is down."""


@dataclass(frozen=True)
class DatasetFile:
    """One file of a dataset: its path in the dataset folder, sha256 and upstream path.

    ``repository`` / ``commit`` override the dataset's when the file comes from elsewhere.

    Examples
    --------
    >>> DatasetFile("a.csv", "0" * 64, None).fetchable
    False
    """

    path: str
    sha256: str
    upstream: str | None
    repository: str | None = None
    commit: str | None = None

    @property
    def fetchable(self) -> bool:
        """Whether a public upstream path is known (else only a mirror can provide it)."""
        return self.upstream is not None


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
    copy_from: str = ""

    def url(self, file: DatasetFile, base_url: str | None, template: str) -> str | None:
        if base_url is not None:
            return f"{base_url.rstrip('/')}/{self.name}/{file.path}"
        if file.upstream is None:
            return None
        return template.format(
            repository=file.repository or self.repository,
            commit=file.commit or self.commit,
            upstream=file.upstream,
        )

    def unfetchable(self) -> list[DatasetFile]:
        """Files with no public source: ``fetch`` cannot download them without a mirror."""
        return [file for file in self.files if not file.fetchable]

    def no_source_note(self, count: int) -> str:
        """``"N file(s) cannot be fetched: no public source; copy ... from ..."``."""
        where = self.copy_from or "a machine that holds the dataset"
        return f"{count} file(s) cannot be fetched: no public source; copy them from {where}"


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
            copy_from=meta.get("copy_from", ""),
        )
        for name, meta in data["datasets"].items()
    }


def data_root(data_dir: Path | None, *, must_exist: bool = True) -> Path:
    """``--data-dir`` or ``$BASELINER_DATA``; a clear usage error when neither is given.

    With ``must_exist`` a folder that does not exist (or is a file) is a usage error too.
    """
    if data_dir is None:
        env = os.environ.get(DATA_ENV_VAR)
        if not env:
            raise UsageError(f"no data folder: pass --data-dir or set {DATA_ENV_VAR}")
        data_dir = Path(env)
    if must_exist and not data_dir.is_dir():
        what = "is not a folder" if data_dir.exists() else "does not exist"
        raise UsageError(f"data folder {data_dir} {what}")
    if data_dir.exists() and not data_dir.is_dir():
        raise UsageError(f"data folder {data_dir} is not a folder")
    return data_dir


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


def dataset_folder(dataset: Dataset, root: Path) -> Path:
    """``root/<name>``, or ``root`` itself when it is the dataset's own folder (as the benches).

    Examples
    --------
    >>> import tempfile
    >>> adbench = load_manifest()["adbench"]
    >>> root = Path(tempfile.mkdtemp())
    >>> dataset_folder(adbench, root) == root / "adbench"
    True
    >>> _ = (root / "6_cardio.npz").write_bytes(b"")
    >>> dataset_folder(adbench, root) == root
    True
    """
    nested = root / dataset.name

    def holds(folder: Path) -> bool:
        return any((folder / file.path).is_file() for file in dataset.files)

    if not holds(nested) and holds(root):
        return root
    return nested


def check(dataset: Dataset, root: Path) -> tuple[list[str], list[str]]:
    """Files of ``dataset`` missing from its folder under ``root``, and those whose sha differs."""
    folder = dataset_folder(dataset, root)
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
    """One entry per dataset: files, source, local status (with a data folder) and a note on
    the files no public source provides."""
    root = None
    if data_dir is not None or os.environ.get(DATA_ENV_VAR):
        root = data_root(data_dir)
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
        unfetchable = dataset.unfetchable()
        if unfetchable:
            lines.append(f"           {dataset.no_source_note(len(unfetchable))}")
    return "\n".join(lines)


def verify(name: str, data_dir: Path | None) -> tuple[bool, str]:
    """Whether the local copy is complete and intact, and a report naming every problem."""
    dataset = _dataset(name)
    root = data_root(data_dir)
    missing, different = check(dataset, root)
    if not missing and not different:
        return True, f"{name}: all {len(dataset.files)} files present with the expected sha256"
    folder = dataset_folder(dataset, root)
    lines = [f"{name}: {len(missing)} missing, {len(different)} with another sha256 (in {folder})"]
    lines += [f"  missing: {p}" for p in missing]
    lines += [f"  differs: {p}" for p in different]
    no_source = {file.path for file in dataset.unfetchable()} & {*missing, *different}
    if no_source:
        lines.append(f"  of these, {dataset.no_source_note(len(no_source))}")
    return False, "\n".join(lines)


def _download(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        payload: bytes = response.read()
    return payload


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return " ".join(str(reason).split())[:160] or type(exc).__name__


def fetch(
    name: str,
    data_dir: Path | None,
    base_url: str | None = None,
    *,
    timeout: float = FETCH_TIMEOUT_SECONDS,
    max_consecutive_failures: int = MAX_CONSECUTIVE_FAILURES,
) -> tuple[bool, str]:
    """Download the files of ``name`` that are missing or differ, verifying each one.

    Returns ``(True, one line)`` when the copy is complete afterwards. Otherwise raises
    :class:`UsageError` with one line: how many files were fetched, how many failed and the
    first reason, and how many have no public source. Folders are created only for a file
    that arrived intact, so a failed fetch leaves no empty tree; after
    ``max_consecutive_failures`` connection failures in a row the rest is not tried.
    """
    dataset = _dataset(name)
    if base_url is not None and urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
        raise UsageError(f"--base-url {base_url!r}: expected an http:// or https:// URL")
    root = data_root(data_dir, must_exist=False)
    template = str(_manifest_data()["raw_url"])
    missing, different = (
        check(dataset, root) if root.is_dir() else ([f.path for f in dataset.files], [])
    )
    folder = dataset_folder(dataset, root) if root.is_dir() else root / dataset.name
    wanted = {*missing, *different}
    fetched = 0
    failures: list[str] = []
    no_source = 0
    not_tried = 0
    in_a_row = 0
    for file in dataset.files:
        if file.path not in wanted:
            continue
        url = dataset.url(file, base_url, template)
        if url is None:
            no_source += 1
            continue
        if in_a_row >= max_consecutive_failures:
            not_tried += 1
            continue
        try:
            payload = _download(url, timeout)
        except urllib.error.HTTPError as exc:
            # The server answered: the source is up, this one file is not there.
            in_a_row = 0
            failures.append(f"{file.path}: HTTP {exc.code} from {url}")
            continue
        except (urllib.error.URLError, OSError, ValueError) as exc:
            in_a_row += 1
            failures.append(f"{file.path}: cannot download from {url} ({_reason(exc)})")
            continue
        in_a_row = 0
        if hashlib.sha256(payload).hexdigest() != file.sha256:
            failures.append(f"{file.path}: downloaded bytes have another sha256; not kept")
            continue
        target = folder / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=".fetch-")
        with os.fdopen(handle, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fetched += 1
    already = len(dataset.files) - len(wanted)
    head = f"{name}: fetched {fetched} file(s), {already} already ok"
    if not failures and not no_source:
        return True, head
    parts = [head]
    if failures:
        parts.append(f"{len(failures)} failed (first: {failures[0]})")
    if not_tried:
        parts.append(
            f"{not_tried} not tried after {max_consecutive_failures} connection failures in a row"
        )
    if no_source:
        parts.append(dataset.no_source_note(no_source))
    raise UsageError("; ".join(parts))
