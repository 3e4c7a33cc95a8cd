"""What does "readers are never blocked" cost? The copy + checkpoint + rename of the warehouse, at scale.

Every run copies the published warehouse to data/warehouse/.build/, builds there and, when no step
failed, checkpoints the build file and renames it over the published one
(orchestration/resources.py). This script measures that overhead against a whole `nexcart run`:

1. generate a sample of --orders orders (default 1,000,000 over 24 months) into a temp raw root;
2. run `nexcart run` once from an empty warehouse (the first run: nothing to copy yet);
3. run `nexcart run` again on the same data: the realistic case, where the copy is of a full
   warehouse. From that run's Dagster event log: the warehouse resource's set-up (lock + copy) and
   tear-down (checkpoint + rename + fsync) against the run's wall time;
4. the same operations in isolation, --repeat times, with the real functions of
   orchestration.resources (_copy_database, publish), on the real warehouse file.

    .venv/bin/python benchmarks/publish_cost.py                 # 1M orders (several minutes)
    .venv/bin/python benchmarks/publish_cost.py --orders 250000 --keep /tmp/bench

The page cache is warm in all measurements (the file was just written); a cold copy reads the file
from disk once more. Results are printed as a Markdown table for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import generate_sample, last_run_records, nexcart_run, print_seconds_table, work_folder  # noqa: E402
from orchestration.resources import _copy_database, build_path_for, publish  # noqa: E402


def _run_breakdown(dagster_home: Path) -> dict[str, float]:
    """From the last run's event log: run wall time, resource set-up, steps, and tear-down."""
    from dagster import DagsterEventType

    stamps: dict[str, list[float]] = {}
    published_at = None
    for record in last_run_records(dagster_home):
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is not None:
            stamps.setdefault(event.event_type_value, []).append(entry.timestamp)
        elif "published the warehouse" in (entry.user_message or ""):
            published_at = entry.timestamp
    run_start = stamps[DagsterEventType.RUN_START.value][0]
    run_end = stamps[DagsterEventType.RUN_SUCCESS.value][0]
    init_start = min(stamps[DagsterEventType.RESOURCE_INIT_STARTED.value])
    init_end = max(stamps[DagsterEventType.RESOURCE_INIT_SUCCESS.value])
    last_step_end = max(stamps[DagsterEventType.STEP_SUCCESS.value])
    return {
        "run": run_end - run_start,
        "setup (lock + copy)": init_end - init_start,
        "teardown (checkpoint + rename)": (published_at or run_end) - last_step_end,
    }


def _isolated(published: Path, repeat: int) -> dict[str, list[float]]:
    """The copy and the publish of orchestration.resources, on the real file, `repeat` times."""
    build = build_path_for(published)
    build.parent.mkdir(parents=True, exist_ok=True)
    copies, publishes = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        _copy_database(published, build)
        copies.append(time.perf_counter() - started)
        started = time.perf_counter()
        publish(build, published)
        publishes.append(time.perf_counter() - started)
    return {"copy": copies, "checkpoint + rename + fsync": publishes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temp folder, removed)")
    args = parser.parse_args()

    with work_folder(args.keep) as root:
        published = root / "warehouse" / "nexcart.duckdb"
        summary, generate_s = generate_sample(root, args.orders, args.months)
        raw_bytes = sum(p.stat().st_size for p in (root / "raw").rglob("*.csv"))

        print("nexcart run #1 (empty warehouse) ...", flush=True)
        first_s, _ = nexcart_run(root)
        print(f"  {first_s:.1f} s; nexcart run #2 (same data, full warehouse to copy) ...", flush=True)
        second_s, _ = nexcart_run(root)
        breakdown = _run_breakdown(root / "dagster_home")
        size = published.stat().st_size
        print(f"  {second_s:.1f} s; isolated copy/publish x{args.repeat} on {size / 1e6:,.0f} MB ...", flush=True)
        isolated = _isolated(published, args.repeat)

        copy_s = statistics.median(isolated["copy"])
        publish_s = statistics.median(isolated["checkpoint + rename + fsync"])
        in_run = breakdown["setup (lock + copy)"] + breakdown["teardown (checkpoint + rename)"]
        result = {
            "date": datetime.now().strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}",
            "orders": args.orders, "months": args.months, "order_rows": summary["rows"]["orders"],
            "raw_csv_mb": round(raw_bytes / 1e6), "warehouse_mb": round(size / 1e6),
            "generate_s": round(generate_s, 1), "run1_s": round(first_s, 1), "run2_s": round(second_s, 1),
            "run2_dagster": {k: round(v, 2) for k, v in breakdown.items()},
            "isolated_copy_s": [round(x, 2) for x in isolated["copy"]],
            "isolated_publish_s": [round(x, 2) for x in isolated["checkpoint + rename + fsync"]],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        }
        print(json.dumps(result, indent=2))
        print()
        setup, teardown = breakdown["setup (lock + copy)"], breakdown["teardown (checkpoint + rename)"]
        print_seconds_table("share of run #2", [
            ("`nexcart run` #1, empty warehouse (wall)", first_s, None),
            ("`nexcart run` #2, same data (wall)", second_s, second_s),
            ("run #2 in Dagster (RUN_START to RUN_SUCCESS)", breakdown["run"], second_s),
            ("in run #2: resource set-up (lock + copy)", setup, second_s),
            ("in run #2: tear-down (checkpoint + rename + fsync)", teardown, second_s),
            ("in run #2: copy + publish together", in_run, second_s),
            (f"isolated copy of {size / 1e6:,.0f} MB (median of {args.repeat})", copy_s, None),
            (f"isolated checkpoint + rename + fsync (median of {args.repeat})", publish_s, None),
        ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
