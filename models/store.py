"""A versioned, verified envelope for persisted models.

File layout: one line of JSON (the header), then the pickle payload::

    {"format": "baseliner-model", "format_version": 1, "schema_hash": ..., "metadata": {...},
     "versions": {"python": ..., "numpy": ..., "scikit-learn": ..., "pyod": ...},
     "payload_sha256": ..., "payload_bytes": ..., "header_sha256": ...}\\n
    <pickle bytes>

Trust model: a model file is trusted because *we* wrote it, and the payload is only unpickled
after its SHA-256 matches the digest in the header. ``header_sha256`` covers the schema hash,
the metadata (a scan's window and entity kind, say) and the payload digest, so an edited
header is refused like an altered payload rather than read as if it were the model's. Files
written before it existed have no ``header_sha256``: they are read as before, and a caller
that depends on a metadata fact should check it against the verified payload as well.
The digests detect truncation, accidental corruption and edits; they are not a signature (no
key), so they do not defend against someone who can write to the model directory: keep that
directory as private as the code itself.

Writes are atomic (temporary file in the same directory, fsync, rename): a crash leaves either
the old model or the new one, never half a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import platform
import re
import tempfile
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

FORMAT_NAME = "baseliner-model"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 1 << 20
"""A header longer than this is not ours: refuse before parsing it."""

_VERSIONED_LIBRARIES = ("numpy", "scikit-learn", "pyod")


class ModelStoreError(Exception):
    """Base class of the errors raised when a stored model cannot be used."""


class CorruptModelError(ModelStoreError):
    """The file is not a complete, intact model envelope (bad header, truncated, tampered)."""


class IncompatibleModelError(ModelStoreError):
    """The file is intact but was written for another feature schema or format version."""


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries whose pickles a model depends on.

    Examples
    --------
    >>> sorted(library_versions())
    ['numpy', 'pyod', 'python', 'scikit-learn']
    """
    versions = {"python": platform.python_version()}
    for name in _VERSIONED_LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def encode_model(obj: object, *, schema_hash: str, metadata: Mapping[str, Any]) -> bytes:
    """Return the envelope bytes (header line + pickle payload) for ``obj``.

    Parameters
    ----------
    obj : object
        Any picklable object (a fitted detector, a calibrator, a dict of them).
    schema_hash : str
        Hash of the feature schema the model was fitted on.
    metadata : mapping
        JSON-serialisable facts worth keeping (training period, detector name, ...).

    Examples
    --------
    >>> data = encode_model({"w": 1}, schema_hash="abc", metadata={"note": "x"})
    >>> decode_model(data, expected_schema_hash="abc")
    {'w': 1}
    """
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "schema_hash": schema_hash,
        "metadata": dict(metadata),
        "versions": library_versions(),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "payload_bytes": len(payload),
    }
    try:
        header["header_sha256"] = header_digest(header)
        header_line = json.dumps(header, sort_keys=True, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise TypeError(f"model metadata must be JSON-serialisable: {error}") from error
    return header_line + b"\n" + payload


def header_digest(header: Mapping[str, Any]) -> str:
    """SHA-256 of what a header says about its model: schema hash, metadata, payload digest.

    Raises ``TypeError`` or ``ValueError`` for metadata that JSON cannot hold.

    Examples
    --------
    >>> daily = {"schema_hash": "s", "metadata": {"window": "1d"}, "payload_sha256": "p"}
    >>> hourly = {**daily, "metadata": {"window": "1h"}}
    >>> len(header_digest(daily)), header_digest(daily) == header_digest(hourly)
    (64, False)
    """
    covered = {key: header.get(key) for key in ("schema_hash", "metadata", "payload_sha256")}
    canonical = json.dumps(covered, sort_keys=True, allow_nan=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _split(data: bytes, source: str) -> tuple[dict[str, Any], bytes]:
    newline = data.find(b"\n", 0, MAX_HEADER_BYTES)
    if newline < 0:
        raise CorruptModelError(f"{source}: no model header found (not a baseliner model file)")
    try:
        header = json.loads(data[:newline].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptModelError(f"{source}: unreadable model header: {error}") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise CorruptModelError(f"{source}: not a baseliner model file")
    stored = header.get("header_sha256")
    # Absent from files written before the header had a digest: those are read as they are.
    if stored is not None:
        try:
            digest = header_digest(header)
        except (TypeError, ValueError):
            digest = ""
        if stored != digest:
            raise CorruptModelError(
                f"{source}: the model header (schema hash, metadata such as the window and "
                "entity) does not match its digest: it was edited after saving; refusing the model"
            )
    return header, data[newline + 1 :]


def read_header(data: bytes, source: str = "<bytes>") -> dict[str, Any]:
    """Parse, verify and return the header of envelope ``data`` without touching the payload.

    An edited header (its ``header_sha256`` no longer matching) is a
    :class:`CorruptModelError`; a header without that digest (an older file) is returned as
    it is.
    """
    return _split(data, source)[0]


def decode_model(data: bytes, *, expected_schema_hash: str, source: str = "<bytes>") -> object:
    """Verify envelope ``data`` and return the object it holds.

    Checks, in order: the header (and its digest, when it has one), the format version, the
    payload length and SHA-256 (the payload is never unpickled unless its digest matches), then
    the schema hash.

    Raises
    ------
    CorruptModelError
        Bad or missing header, truncated or altered payload.
    IncompatibleModelError
        Another format version or another feature schema.
    """
    header, payload = _split(data, source)
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise IncompatibleModelError(
            f"{source}: model format version {version!r}, this build reads {FORMAT_VERSION}"
        )
    expected_size = header.get("payload_bytes")
    if len(payload) != expected_size:
        raise CorruptModelError(
            f"{source}: payload is {len(payload)} bytes, header says {expected_size}"
            " (truncated or appended to)"
        )
    digest = hashlib.sha256(payload).hexdigest()
    if digest != header.get("payload_sha256"):
        raise CorruptModelError(
            f"{source}: payload SHA-256 {digest} does not match the header's"
            f" {header.get('payload_sha256')}; refusing to unpickle"
        )
    if header.get("schema_hash") != expected_schema_hash:
        raise IncompatibleModelError(
            f"{source}: model was fitted on feature schema {header.get('schema_hash')!r},"
            f" the current schema is {expected_schema_hash!r}; refit the model"
        )
    current = library_versions()
    stored = header.get("versions", {})
    changed = {k: (stored.get(k), v) for k, v in current.items() if stored.get(k) != v}
    if changed:
        # Usually harmless, but a pickled scikit-learn model may behave differently.
        logger.warning("%s: written with other library versions (stored, now): %s", source, changed)
    return pickle.loads(payload)


def save_model(path: Path, obj: object, *, schema_hash: str, metadata: Mapping[str, Any]) -> None:
    """Write ``obj`` to ``path`` in a verified envelope, atomically.

    Parameters
    ----------
    path : Path
        Destination file; its directory must exist.
    obj : object
        The picklable model.
    schema_hash : str
        Hash of the feature schema the model was fitted on.
    metadata : mapping
        JSON-serialisable facts stored in the header.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     target = Path(folder) / "model.bin"
    ...     save_model(target, [1, 2], schema_hash="s1", metadata={})
    ...     load_model(target, expected_schema_hash="s1")
    [1, 2]
    """
    data = encode_model(obj, schema_hash=schema_hash, metadata=metadata)
    write_atomically(Path(path), data)
    logger.info("saved model to %s (%d bytes)", path, len(data))


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that a crash leaves either the old file or the new one.

    Written to a temporary file beside it, flushed and synced, then renamed over it.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     target = Path(folder) / "state.bin"
    ...     write_atomically(target, b"one")
    ...     write_atomically(target, b"two")
    ...     target.read_bytes(), len(list(Path(folder).iterdir()))
    (b'two', 1)
    """
    descriptor, temporary_name = tempfile.mkstemp(prefix=_temporary_prefix(path), dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary_name, path)
    except BaseException:
        Path(temporary_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files :func:`write_atomically` left beside ``path`` when its
    process died mid-write; the files deleted.

    Only names of that form (``.<name>.`` and the 8 characters :func:`tempfile.mkstemp`
    adds) are touched. Call it when no write to ``path`` can be under way (at start, before
    the first one), or it may delete a write in progress.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     target = Path(folder) / "state.bin"
    ...     for name in (".state.bin.k2x_9qzp", ".state.bin.keep", "state.bin.1"):
    ...         _ = (Path(folder) / name).write_bytes(b"x")
    ...     removed = remove_stale_temporaries(target)
    ...     [p.name for p in removed], sorted(p.name for p in Path(folder).iterdir())
    (['.state.bin.k2x_9qzp'], ['.state.bin.keep', 'state.bin.1'])
    """
    pattern = re.compile(re.escape(_temporary_prefix(path)) + r"[a-z0-9_]{8}")
    removed: list[Path] = []
    try:
        candidates = sorted(path.parent.iterdir())
    except FileNotFoundError:
        return removed
    for candidate in candidates:
        if pattern.fullmatch(candidate.name) and candidate.is_file():
            try:
                candidate.unlink()
            except OSError as exc:
                logger.warning("cannot remove the stale temporary file %s: %s", candidate, exc)
                continue
            logger.info("removed %s, left by an interrupted write of %s", candidate, path.name)
            removed.append(candidate)
    return removed


def load_model(path: Path, *, expected_schema_hash: str) -> object:
    """Read, verify and return the model stored at ``path`` (see :func:`decode_model`).

    Raises
    ------
    CorruptModelError, IncompatibleModelError
        As :func:`decode_model`; the message names the file.
    """
    path = Path(path)
    return decode_model(
        path.read_bytes(), expected_schema_hash=expected_schema_hash, source=str(path)
    )


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; not every platform can open a directory, so best effort."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
