"""``baseliner datasets``: verify names every problem; fetch downloads from a mirror, verified.

The fetch test serves a mirror from a local HTTP server on 127.0.0.1: no test needs the network.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from detector.cli import main

DATA = os.environ.get("BASELINER_DATA")
needs_data = pytest.mark.skipif(
    not DATA or not (Path(DATA) / "adbench").is_dir(),
    reason="BASELINER_DATA is not set to the datasets folder",
)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def mirror(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "mirror"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_list_names_every_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("nab", "adbench", "hdfs_100k", "loghub_2k"):
        assert name in out


@needs_data
def test_verify_names_missing_and_changed_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert DATA is not None
    copy = tmp_path / "data" / "adbench"
    shutil.copytree(Path(DATA) / "adbench", copy)
    (copy / "6_cardio.npz").unlink()
    (copy / "38_thyroid.npz").write_bytes(b"not the file")
    assert main(["datasets", "verify", "adbench", "--data-dir", str(tmp_path / "data")]) == 1
    out = capsys.readouterr().out
    assert "1 missing, 1 with another sha256" in out
    assert "missing: 6_cardio.npz" in out and "differs: 38_thyroid.npz" in out


@needs_data
def test_fetch_downloads_and_verifies_from_a_mirror(
    tmp_path: Path, mirror: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert DATA is not None
    root, url = mirror
    shutil.copytree(Path(DATA) / "adbench", root / "adbench")
    (root / "adbench" / "34_smtp.npz").write_bytes(b"tampered")
    target = tmp_path / "data"
    assert main(["datasets", "fetch", "adbench", "--data-dir", str(target), "--base-url", url]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "fetched 8 file(s)" in err and "34_smtp.npz: downloaded bytes have another sha256" in err
    assert not (target / "adbench" / "34_smtp.npz").exists()
    shutil.copy(Path(DATA) / "adbench" / "34_smtp.npz", root / "adbench" / "34_smtp.npz")
    assert main(["datasets", "fetch", "adbench", "--data-dir", str(target), "--base-url", url]) == 0
    assert main(["datasets", "verify", "adbench", "--data-dir", str(target)]) == 0


def test_unknown_dataset_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "verify", "imagenet", "--data-dir", "."]) == 2
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err
