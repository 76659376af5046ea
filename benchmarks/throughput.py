"""``baseliner bench throughput --mode scan``: events/s from CERT CSV files to features and alerts.

Each stage runs in a fresh child process so that its peak memory (max RSS) is its own. The
baseline, measured in the same run on the same files, is a plain polars ``scan_csv`` and
group-by count per file: the floor cost of touching every line. We report our ratio to it.
Memory is measured on the full period and on its first third: flat memory means the scan's
footprint does not grow with the number of days. Each stage also reports its CPU seconds (all
threads): on a machine shared with other work the wall clock stretches with the load, while
events per CPU second, and their ratio to the baseline's, move much less.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks.orgcache import ensure_org
from benchmarks.report import write_bench_outputs
from benchmarks.results import environment, environment_line, stage_throughput

CERT_FILES = ("logon.csv", "device.csv", "file.csv", "email.csv", "http.csv")


def _rss_mb() -> float:
    """Peak resident memory of this process image, in MB.

    Linux keeps ``ru_maxrss`` across ``exec``, so a stage child would report the parent's
    peak (e.g. the generator's) whenever it is higher; ``VmHWM`` belongs to the new image.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_s() -> float:
    """CPU seconds (user + system, every thread) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stage_baseline(org: Path) -> dict[str, Any]:
    t0, cpu0 = time.perf_counter(), _cpu_s()
    rows = 0
    for name in CERT_FILES:
        path = org / name
        if path.is_file():
            counts = pl.scan_csv(path, infer_schema=False).group_by("user").len().collect()
            rows += int(counts["len"].sum())
    return {"seconds": time.perf_counter() - t0, "cpu_s": _cpu_s() - cpu0, "events": rows}


def _stage_features(org: Path, out: Path) -> dict[str, Any]:
    from detector.scan import ScanOptions, read_vectors

    opts = ScanOptions(inputs=(("cert", org),), out=out, progress=False)
    t0, cpu0 = time.perf_counter(), _cpu_s()
    try:
        vectors, n_events, rejects, timings = read_vectors(opts, out / ".spool")
    finally:
        shutil.rmtree(out / ".spool", ignore_errors=True)  # as run_scan does
    return {
        "seconds": time.perf_counter() - t0,
        "cpu_s": _cpu_s() - cpu0,
        "events": n_events,
        "windows": vectors.height,
        "rejects": rejects.height,
        "timings": timings,
    }


def _stage_alerts(org: Path, out: Path) -> dict[str, Any]:
    from detector.scan import ScanOptions, run_scan

    opts = ScanOptions(inputs=(("cert", org),), out=out, progress=False)
    t0, cpu0 = time.perf_counter(), _cpu_s()
    result = run_scan(opts)
    return {
        "seconds": time.perf_counter() - t0,
        "cpu_s": _cpu_s() - cpu0,
        "events": result.events,
        "alerts": len(result.scored.alerts),
        "timings": result.timings,
    }


def _child(stage: str, org: Path, out: Path) -> dict[str, Any]:
    """Run one stage in a fresh interpreter and return its measurements."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.throughput",
        "--stage",
        stage,
        "--org",
        str(org),
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"throughput stage {stage} failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_throughput_bench(out: Path, *, users: int, days: int, seed: int) -> str:
    """Generate (or reuse) an organisation and measure every stage.

    Writes ``results.json`` (with the environment), ``results.md`` and ``report.html``.
    """
    out.mkdir(parents=True, exist_ok=True)
    org = out / f"org-u{users}-d{days}-s{seed}"
    ensure_org(org, users=users, days=days, seed=seed)
    short_days = max(days // 3, 14)
    short = out / f"org-u{users}-d{short_days}-s{seed}"
    ensure_org(short, users=users, days=short_days, seed=seed)

    baseline = _child("baseline", org, out / "work")
    features = _child("features", org, out / "work")
    alerts = _child("alerts", org, out / "work")
    features_short = _child("features", short, out / "work")

    payload, text = summarise(
        {"users": users, "days": days, "seed": seed},
        baseline=baseline,
        features=features,
        alerts=alerts,
        features_short=features_short,
        short_days=short_days,
    )
    payload["config"] = {"users": users, "days": days, "seed": seed, "short_days": short_days}
    payload["throughput"] = [
        stage_throughput(name, stage)
        for name, stage in (
            ("baseline_groupby_count", baseline),
            ("to_features", features),
            ("to_alerts", alerts),
        )
    ]
    payload.update(environment())
    markdown = (
        f"# Scan throughput\n\n```\n{text}\n```\n\nThroughput: score /s is each stage's "
        "events per wall second, end to end (stages run in separate processes).\n\n"
        f"Seed {seed}; {environment_line(payload)}\n"
    )
    write_bench_outputs(out, "Scan throughput", payload, markdown)
    return f"{text}\nresults: {out / 'results.json'} (and results.md, report.html)"


def _rate(stage: Mapping[str, Any], clock: str) -> float:
    return float(stage["events"]) / float(stage[clock])


def summarise(
    run: Mapping[str, Any],
    *,
    baseline: Mapping[str, Any],
    features: Mapping[str, Any],
    alerts: Mapping[str, Any],
    features_short: Mapping[str, Any],
    short_days: int,
) -> tuple[dict[str, Any], str]:
    """The results payload and the printed summary of one run, from its stages' measurements.

    Each stage maps ``events``, ``seconds`` (wall), ``cpu_s`` and ``peak_rss_mb``. Rates are
    events per wall second and per CPU second; ratios divide ours by the baseline's.

    Examples
    --------
    >>> base = {"events": 100, "seconds": 1.0, "cpu_s": 2.0, "peak_rss_mb": 50.0}
    >>> ours = {"events": 100, "seconds": 4.0, "cpu_s": 5.0, "peak_rss_mb": 80.0}
    >>> payload, text = summarise({"users": 1, "days": 3, "seed": 7}, baseline=base,
    ...     features=ours, alerts=ours, features_short=ours, short_days=14)
    >>> payload["ratio_to_baseline"]["to_features"], payload["ratio_to_baseline_cpu"]["to_features"]
    (0.25, 0.4)
    >>> timed = {**ours, "timings": {"read_s": 1.5, "features_s": 2.5}}
    >>> print(summarise({"users": 1, "days": 3, "seed": 7}, baseline=base, features=timed,
    ...     alerts=ours, features_short=ours, short_days=14)[1].splitlines()[-1])
      CSV -> feature vectors stages: read 1.50 s, features 2.50 s
    """
    users, days, seed = run["users"], run["days"], run["seed"]
    stages = {"baseline_groupby_count": baseline, "to_features": features, "to_alerts": alerts}
    wall = {name: _rate(stage, "seconds") for name, stage in stages.items()}
    cpu = {name: _rate(stage, "cpu_s") for name, stage in stages.items()}
    payload: dict[str, Any] = {
        "benchmark": "throughput",
        "mode": "scan",
        **run,
        "baseline_groupby_count": dict(baseline),
        "to_features": dict(features),
        "to_alerts": dict(alerts),
        f"to_features_{short_days}_days": dict(features_short),
        "events_per_s": wall,
        "events_per_cpu_s": cpu,
        "ratio_to_baseline": {
            name: wall[name] / wall["baseline_groupby_count"]
            for name in ("to_features", "to_alerts")
        },
        "ratio_to_baseline_cpu": {
            name: cpu[name] / cpu["baseline_groupby_count"] for name in ("to_features", "to_alerts")
        },
    }

    def line(label: str, name: str) -> str:
        stage = stages[name]
        text = (
            f"  {label:<32}{wall[name]:>12,.0f} events/s  ({stage['seconds']:.2f} s, "
            f"{stage['cpu_s']:.2f} CPU s, peak {stage['peak_rss_mb']:.0f} MB)"
        )
        if name != "baseline_groupby_count":
            text += (
                f"  ratio to baseline {payload['ratio_to_baseline'][name]:.2f} "
                f"(per CPU s {payload['ratio_to_baseline_cpu'][name]:.2f})"
            )
        return text

    lines = [
        f"throughput (scan mode): {users} users x {days} days, seed {seed}, "
        f"{features['events']:,} CERT events",
        line("baseline polars group-by count:", "baseline_groupby_count"),
        line("CSV -> feature vectors:", "to_features"),
        line("CSV -> alerts (whole scan):", "to_alerts"),
        f"  memory vs days: features peak {features_short['peak_rss_mb']:.0f} MB over "
        f"{short_days} days ({features_short['events']:,} events), "
        f"{features['peak_rss_mb']:.0f} MB over {days} days",
    ]
    timings = features.get("timings") or {}
    if "read_s" in timings and "features_s" in timings:
        # Where the wall time of CSV -> feature vectors goes: the read (CSV to the spooled
        # events) and the feature evaluation (slice by slice).
        lines.append(
            f"  CSV -> feature vectors stages: read {timings['read_s']:.2f} s, "
            f"features {timings['features_s']:.2f} s"
        )
    return payload, "\n".join(lines)


def _main() -> None:
    parser = argparse.ArgumentParser(description="one throughput stage (internal)")
    parser.add_argument("--stage", choices=["baseline", "features", "alerts"], required=True)
    parser.add_argument("--org", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.stage == "baseline":
        result = _stage_baseline(args.org)
    elif args.stage == "features":
        result = _stage_features(args.org, args.out)
    else:
        result = _stage_alerts(args.org, args.out)
    result["peak_rss_mb"] = _rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    _main()
