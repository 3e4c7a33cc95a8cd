"""How much of a run do the quality gates take? Their share of a full `nexcart run`, at scale.

1. generate a sample of --orders orders (default 1,000,000 over 24 months) into a temp raw root;
2. run `nexcart run` on it (an empty warehouse: the first run, the biggest);
3. from that run's Dagster event log: each step's duration (STEP_START to STEP_SUCCESS/FAILURE);
   the gates are the steps of the `gx_gate` asset checks (`<asset>_gx_gate`);
4. the data-quality docs build that `nexcart run` does after the run, timed again on its own with
   the same function (orchestration.quality.build_quality_docs): the pages of the run's results.

The share is (gate steps) / (run in Dagster + docs build), and (gate steps + docs build) / the same.

    .venv/bin/python benchmarks/gate_share.py                   # 1M orders (about 10 minutes)
    .venv/bin/python benchmarks/gate_share.py --orders 100000 --keep /tmp/gates

Results are printed as JSON and as a Markdown table for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import generate_sample, nexcart_run, print_seconds_table, run_timeline, work_folder  # noqa: E402

GATE_STEP_SUFFIX = "_gx_gate"


def step_durations(dagster_home: Path) -> tuple[dict[str, float], float]:
    """Seconds per step of the newest run, and the run's own duration (RUN_START to its end)."""
    timeline = run_timeline(dagster_home)
    return timeline["steps"], (timeline["run_end_at"] or 0) - (timeline["run_start_at"] or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temp folder, removed)")
    args = parser.parse_args()

    with work_folder(args.keep) as root:
        summary, generate_s = generate_sample(root, args.orders, args.months)
        print("nexcart run ...", flush=True)
        wall_s, _ = nexcart_run(root)
        steps, run_s = step_durations(root / "dagster_home")

        from orchestration.quality import build_quality_docs
        from orchestration.quality.gx_project import QualityPaths

        # Each run renders the pages of its own results (earlier runs' pages are kept): as many as
        # a build from scratch after this one run renders.
        warehouse = root / "warehouse" / "nexcart.duckdb"
        shutil.rmtree(QualityPaths.from_settings().site_dir)
        started = time.perf_counter()
        build_quality_docs(warehouse)
        docs_s = time.perf_counter() - started

        gates = {k: v for k, v in steps.items() if k.endswith(GATE_STEP_SUFFIX)}
        gates_s = sum(gates.values())
        total = run_s + docs_s
        result = {
            "date": datetime.now().strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
                       f"Python {platform.python_version()}",
            "orders": args.orders, "months": args.months, "order_rows": summary["rows"]["orders"],
            "generate_s": round(generate_s, 1), "nexcart_run_wall_s": round(wall_s, 1),
            "run_in_dagster_s": round(run_s, 1), "docs_build_s": round(docs_s, 1),
            "gate_steps": len(gates), "gate_steps_s": round(gates_s, 1),
            "gate_share": round(gates_s / total, 3), "gate_and_docs_share": round((gates_s + docs_s) / total, 3),
            "slowest_gates_s": {k: round(v, 1) for k, v in sorted(gates.items(), key=lambda kv: -kv[1])[:8]},
            "slowest_other_steps_s": {k: round(v, 1) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])
                                      if k not in gates},
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        }
        print(json.dumps(result, indent=2))
        print()
        print_seconds_table("share", [
            ("run in Dagster (RUN_START to RUN_SUCCESS)", run_s, None),
            ("data-quality docs build", docs_s, total),
            ("run + docs build", total, total),
            (f"gate steps ({len(gates)})", gates_s, total),
            ("gate steps + docs build", gates_s + docs_s, total),
        ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
