"""``baseliner bench throughput --mode scan``: events/s from CERT CSV files to features and alerts.

Each stage runs in a fresh child process so that its peak memory (max RSS) is its own. The
baseline, measured in the same run on the same files, is a plain polars ``scan_csv`` and
group-by count per file: the floor cost of touching every line. We report our ratio to it.
Memory is measured on the full period and on its first third: flat memory means the scan's
footprint does not grow with the number of days.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks.orgcache import ensure_org
from benchmarks.results import write_results

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


def _stage_baseline(org: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    rows = 0
    for name in CERT_FILES:
        path = org / name
        if path.is_file():
            counts = pl.scan_csv(path, infer_schema=False).group_by("user").len().collect()
            rows += int(counts["len"].sum())
    return {"seconds": time.perf_counter() - t0, "events": rows}


def _stage_features(org: Path, out: Path) -> dict[str, Any]:
    from detector.scan import ScanOptions, read_vectors

    opts = ScanOptions(inputs=(("cert", org),), out=out, progress=False)
    t0 = time.perf_counter()
    try:
        vectors, n_events, rejects, timings = read_vectors(opts, out / ".spool")
    finally:
        shutil.rmtree(out / ".spool", ignore_errors=True)  # as run_scan does
    return {
        "seconds": time.perf_counter() - t0,
        "events": n_events,
        "windows": vectors.height,
        "rejects": rejects.height,
        "timings": timings,
    }


def _stage_alerts(org: Path, out: Path) -> dict[str, Any]:
    from detector.scan import ScanOptions, run_scan

    opts = ScanOptions(inputs=(("cert", org),), out=out, progress=False)
    t0 = time.perf_counter()
    result = run_scan(opts)
    return {
        "seconds": time.perf_counter() - t0,
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
    """Generate (or reuse) an organisation and measure every stage; write results.json."""
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

    def rate(stage: dict[str, Any]) -> float:
        return float(stage["events"]) / float(stage["seconds"])

    payload = {
        "benchmark": "throughput",
        "mode": "scan",
        "users": users,
        "days": days,
        "seed": seed,
        "baseline_groupby_count": baseline,
        "to_features": features,
        "to_alerts": alerts,
        f"to_features_{short_days}_days": features_short,
        "events_per_s": {
            "baseline_groupby_count": rate(baseline),
            "to_features": rate(features),
            "to_alerts": rate(alerts),
        },
        "ratio_to_baseline": {
            "to_features": rate(features) / rate(baseline),
            "to_alerts": rate(alerts) / rate(baseline),
        },
    }
    write_results(out, payload)
    lines = [
        f"throughput (scan mode): {users} users x {days} days, seed {seed}, "
        f"{features['events']:,} CERT events",
        f"  baseline polars group-by count: {rate(baseline):>12,.0f} events/s  "
        f"({baseline['seconds']:.2f} s, peak {baseline['peak_rss_mb']:.0f} MB)",
        f"  CSV -> feature vectors:         {rate(features):>12,.0f} events/s  "
        f"({features['seconds']:.2f} s, peak {features['peak_rss_mb']:.0f} MB)  "
        f"ratio to baseline {rate(features) / rate(baseline):.2f}",
        f"  CSV -> alerts (whole scan):     {rate(alerts):>12,.0f} events/s  "
        f"({alerts['seconds']:.2f} s, peak {alerts['peak_rss_mb']:.0f} MB)  "
        f"ratio to baseline {rate(alerts) / rate(baseline):.2f}",
        f"  memory vs days: features peak {features_short['peak_rss_mb']:.0f} MB over "
        f"{short_days} days ({features_short['events']:,} events), "
        f"{features['peak_rss_mb']:.0f} MB over {days} days",
        f"results: {out / 'results.json'}",
    ]
    return "\n".join(lines)


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
