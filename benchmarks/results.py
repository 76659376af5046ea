"""Where every benchmark leaves its numbers, and what each records beside them.

``write_results`` writes ``results.json`` (and ``results.md``); ``environment`` gives the
library versions and machine facts every ``results.json`` carries; ``load_anchors`` reads the
published numbers of ``benchmarks/anchors.json``; ``Throughput`` and the peak-memory helpers
measure fit and scoring rates; ``progress_bar`` is the bar long runs show on a terminal.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

if TYPE_CHECKING:
    from detector.scan import ScanResult

ANCHORS_FILE = Path(__file__).resolve().parent / "anchors.json"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_VERSIONED = ("baseliner", "numpy", "polars", "scikit-learn", "scipy", "pyod", "river")


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


def load_anchors(benchmark: str, path: Path = ANCHORS_FILE) -> list[dict[str, Any]]:
    """The published numbers of one benchmark from ``benchmarks/anchors.json``.

    Each anchor has ``dataset``, ``metric``, ``value``, ``setting`` and ``source``.

    Examples
    --------
    >>> any(a["dataset"] == "16_http" for a in load_anchors("adbench"))
    True
    """
    if not path.is_file():
        return []
    anchors: list[dict[str, Any]] = json.loads(path.read_text())["anchors"]
    return [a for a in anchors if a.get("benchmark") == benchmark]


def _proc_field(path: str, key: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return None


def environment() -> dict[str, Any]:
    """Library versions, machine facts and the source commit recorded beside every result.

    Returns
    -------
    dict
        ``python`` (its version), ``versions`` (baseliner, python, numpy, polars, scikit-learn,
        scipy, pyod, river; ``None`` when absent), ``machine`` (platform, CPU model and
        count, total memory in MB) and ``git_commit`` (:func:`git_commit`).

    Examples
    --------
    >>> env = environment()
    >>> sorted(env), env["versions"]["python"] == env["python"]
    (['git_commit', 'machine', 'python', 'versions'], True)
    >>> env["machine"]["cpus"] == os.cpu_count()
    True
    """
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in _VERSIONED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    memory_kb = _proc_field("/proc/meminfo", "MemTotal")
    return {
        "python": platform.python_version(),
        "versions": versions,
        "machine": {
            "platform": platform.platform(),
            "cpu_model": _proc_field("/proc/cpuinfo", "model name")
            or platform.processor()
            or platform.machine(),
            "cpus": os.cpu_count(),
            "memory_mb": None if memory_kb is None else int(memory_kb.split()[0]) // 1024,
        },
        "git_commit": git_commit(),
    }


def git_commit(source: Path = PROJECT_ROOT) -> str | None:
    """The commit of the checkout holding ``source``, ``-dirty`` appended if files differ.

    ``None`` when ``source`` is not in a git checkout (an installed package) or git is absent.

    Examples
    --------
    >>> import tempfile
    >>> git_commit(Path(tempfile.mkdtemp())) is None
    True
    """
    try:
        head = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if head.returncode != 0:
            return None
        top, commit = head.stdout.split()[:2]
        # Only a checkout of this project counts, not some repository around an install.
        if Path(top).resolve() != source.resolve():
            return None
        status = subprocess.run(
            # --no-optional-locks: a status must never rewrite the checkout's index.
            [
                "git",
                "--no-optional-locks",
                "-C",
                str(source),
                "status",
                "--porcelain",
                "--untracked-files=no",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    dirty = status.returncode == 0 and bool(status.stdout.strip())
    return commit + ("-dirty" if dirty else "")


def machine_text(machine: Any) -> str:
    """The ``machine`` record as readable text (a string is returned as it is).

    Examples
    --------
    >>> machine_text({"platform": "Linux-6.1", "cpu_model": "Xeon", "cpus": 2, "memory_mb": 7900})
    'Linux-6.1, Xeon, 2 CPUs, 7,900 MB memory'
    >>> machine_text("box")
    'box'
    """
    if not isinstance(machine, Mapping):
        return str(machine)
    parts = [str(machine[key]) for key in ("platform", "cpu_model") if machine.get(key)]
    if machine.get("cpus"):
        parts.append(f"{machine['cpus']} CPUs")
    if machine.get("memory_mb"):
        parts.append(f"{int(machine['memory_mb']):,} MB memory")
    return ", ".join(parts)


def environment_line(results: Mapping[str, Any]) -> str:
    """The closing line of a markdown report: Python, library versions, machine and commit.

    Python is named once (``versions`` repeats it); the machine reads as text.

    Examples
    --------
    >>> environment_line({"python": "3.11.7", "versions": {"python": "3.11.7", "numpy": "2.1"},
    ...                   "machine": {"platform": "Linux", "cpus": 2}, "git_commit": "abc1234"})
    'Python 3.11.7; numpy 2.1; Linux, 2 CPUs; commit abc1234'
    >>> environment_line({"python": "3.11.7", "versions": {}, "machine": "box"})
    'Python 3.11.7; box'
    """
    versions = ", ".join(
        f"{k} {v}" for k, v in (results.get("versions") or {}).items() if k != "python"
    )
    parts = [f"Python {results.get('python')}"]
    if versions:
        parts.append(versions)
    parts.append(machine_text(results.get("machine")))
    if results.get("git_commit"):
        parts.append(f"commit {results['git_commit']}")
    return "; ".join(parts)


def peak_memory_mb() -> float:
    """Peak resident memory of this process (``VmHWM``, else ``ru_maxrss``), in MB.

    Examples
    --------
    >>> peak_memory_mb() > 0
    True
    """
    high_water = _proc_field("/proc/self/status", "VmHWM")
    if high_water is not None:
        return int(high_water.split()[0]) / 1024.0
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_memory() -> bool:
    """Reset ``VmHWM`` to the current resident size (Linux ``clear_refs``); True if it worked.

    Lets one process measure the peak of each detector it runs in turn.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


@dataclass
class PeakMemory:
    """Peak resident memory over a block: ``with PeakMemory() as peak: ...; peak.mb``.

    ``scope`` says what the peak covers: ``"block"`` when the high-water mark could be reset
    before the block, ``"process"`` (the whole process so far) otherwise.

    Examples
    --------
    >>> with PeakMemory() as peak:
    ...     data = bytearray(1 << 20)
    >>> peak.mb > 1.0, peak.scope in ("block", "process")
    (True, True)
    """

    mb: float = 0.0
    scope: str = "process"

    def __enter__(self) -> PeakMemory:
        self.scope = "block" if reset_peak_memory() else "process"
        return self

    def __exit__(self, *exc: object) -> None:
        self.mb = peak_memory_mb()


@dataclass
class Throughput:
    """Fit and scoring rates of one detector (or one run) and its peak memory.

    ``unit`` names what is counted (rows, sessions, windows); ``read_items`` /
    ``read_seconds`` optionally give a reading stage (events read to features).

    Examples
    --------
    >>> t = Throughput("ecod", "rows", 1000, 0.5, 400, 0.1, peak_memory_mb=120.0)
    >>> t.fit_per_s, t.score_per_s
    (2000.0, 4000.0)
    >>> t.to_dict()["score_per_s"]
    4000.0
    """

    name: str
    unit: str
    fit_items: int
    fit_seconds: float
    score_items: int
    score_seconds: float
    peak_memory_mb: float | None = None
    memory_scope: str = "process"
    read_items: int | None = None
    read_seconds: float | None = None
    read_unit: str = "events"

    @staticmethod
    def _rate(items: int | None, seconds: float | None) -> float | None:
        if items is None or seconds is None or seconds <= 0:
            return None
        return items / seconds

    @property
    def fit_per_s(self) -> float | None:
        """Items fitted per second (``None`` if no time was measured)."""
        return self._rate(self.fit_items, self.fit_seconds)

    @property
    def score_per_s(self) -> float | None:
        """Items scored per second (``None`` if no time was measured)."""
        return self._rate(self.score_items, self.score_seconds)

    @property
    def read_per_s(self) -> float | None:
        """Items read per second, when there is a reading stage."""
        return self._rate(self.read_items, self.read_seconds)

    def to_dict(self) -> dict[str, Any]:
        """Every field and the three rates, for ``results.json``."""
        return {
            **self.__dict__,
            "fit_per_s": self.fit_per_s,
            "score_per_s": self.score_per_s,
            "read_per_s": self.read_per_s,
        }


def stage_throughput(name: str, stage: Mapping[str, Any]) -> dict[str, Any]:
    """One stage as a throughput entry: events per wall second and the stage's own peak memory.

    Each stage runs in a fresh process, so its peak is its own (scope ``"block"``).

    Examples
    --------
    >>> entry = stage_throughput("to_features", {"events": 100, "seconds": 2.0, "peak_rss_mb": 9})
    >>> entry["score_per_s"], entry["memory_scope"]
    (50.0, 'block')
    """
    return Throughput(
        name=name,
        unit="events",
        fit_items=0,
        fit_seconds=0.0,
        score_items=int(stage["events"]),
        score_seconds=float(stage["seconds"]),
        peak_memory_mb=stage.get("peak_rss_mb"),
        memory_scope="block",
    ).to_dict()


def scan_throughput(name: str, result: ScanResult, peak: PeakMemory) -> dict[str, Any]:
    """Throughput of one scan: events read to features, windows fitted and windows scored.

    ``peak`` is the :class:`PeakMemory` measured around the scan.
    """
    import polars as pl

    timings = result.timings
    fitted = 0
    if result.train_until is not None:
        fitted = result.vectors.filter(pl.col("window_start") < result.train_until).height
    return Throughput(
        name=name,
        unit="windows",
        fit_items=fitted,
        fit_seconds=timings.get("fit_s", 0.0),
        score_items=result.scored.windows.height,
        score_seconds=timings.get("score_s", 0.0),
        peak_memory_mb=peak.mb,
        memory_scope=peak.scope,
        read_items=result.events,
        read_seconds=timings.get("read_s", 0.0) + timings.get("features_s", 0.0),
    ).to_dict()


def scan_config(result: ScanResult) -> dict[str, Any]:
    """The configuration a scan actually ran with, for ``results.json``.

    The detector and its parameters, seed, budget, training cut, entity and window, the risk
    rule's settings and the feature columns (with their schema hash).
    """
    config = result.pipeline.config
    risk = config.risk
    return {
        "detector": config.detector,
        "detector_params": dict(config.detector_params),
        "seed": config.seed,
        "budget": str(config.budget),
        "train_until": None if result.train_until is None else result.train_until.isoformat(),
        "entity": config.entity_type,
        "window_seconds": config.window.total_seconds(),
        "z_min": config.z_min,
        "min_history": config.min_history,
        "risk": asdict(risk) if is_dataclass(risk) and not isinstance(risk, type) else str(risk),
        "slice_days": result.options.slice_days,
        "features": list(result.pipeline.features),
        "schema_hash": result.pipeline.schema_hash,
    }


def progress_enabled(quiet: bool = False) -> bool:
    """Whether a progress bar should show: not ``quiet`` and stderr is a terminal.

    Examples
    --------
    >>> progress_enabled(quiet=True)
    False
    """
    return not quiet and sys.stderr.isatty()


@contextmanager
def progress_bar(total: float, desc: str, unit: str, enabled: bool) -> Iterator[tqdm[Any]]:
    """A tqdm bar on stderr whose ETA (from the first update on) is the run's time estimate.

    Weight ``total`` by the work (rows rather than files) so the estimate holds when units
    differ in size. Counts below 1,000 (fits, detectors) show as integers ("4/4 fits");
    larger ones (rows, bytes) with SI prefixes. Disabled bars cost nothing.

    Examples
    --------
    >>> with progress_bar(10, "series", "rows", enabled=False) as bar:
    ...     _ = bar.update(10)
    """
    with tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=total >= 1000,
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} "
        "[{elapsed}, about {remaining} left]",
    ) as bar:
        yield bar
