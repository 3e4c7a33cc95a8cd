"""What the benchmark scripts share: a work folder with its own Dagster home, the sample, and
`nexcart run` as a user runs it (a subprocess with the project's environment variables)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def work_folder(keep: str | None) -> Iterator[Path]:
    """--keep's folder (kept), or a new temp folder (removed at the end); with the project's
    Dagster instance settings."""
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="nexcart-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    (root / "dagster_home").mkdir(exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster_home" / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    try:
        yield root
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "NEXCART_DATA_DIR": str(root / "raw"),
        "NEXCART_WAREHOUSE": str(root / "warehouse" / "nexcart.duckdb"),
        "NEXCART_OUTPUT_DIR": str(root),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def generate_sample(root: Path, orders: int, months: int) -> tuple[dict, float]:
    """The generator's sample in root/raw; returns its summary and the seconds it took."""
    from orchestration.sample_data import generate

    print(f"generating {orders:,} orders over {months} months in {root / 'raw'} ...", flush=True)
    started = time.perf_counter()
    summary = generate(root / "raw", orders=orders, months=months, seed=42)
    return summary, time.perf_counter() - started


def nexcart_run(root: Path) -> tuple[float, str]:
    """`nexcart run` on root's data; returns its wall time and stdout (exits on failure)."""
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "orchestration.cli", "run"], cwd=PROJECT_ROOT,
                               env=env(root), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"nexcart run failed:\n{completed.stdout}\n{completed.stderr}")
    return elapsed, completed.stdout


def last_run_records(dagster_home: Path) -> list:
    """The event log records of the newest run in dagster_home."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        return instance.get_records_for_run(run.run_id, limit=1_000_000).records


def print_seconds_table(share_title: str, rows: list[tuple[str, float, float | None]]) -> None:
    """A Markdown table for benchmarks/README.md: (measure, seconds, the seconds it is a share of,
    or None for no share)."""
    print(f"| measure | seconds | {share_title} |")
    print("|---|---:|---:|")
    for label, seconds, whole in rows:
        share = f"{100 * seconds / whole:.1f} %" if whole else ""
        print(f"| {label} | {seconds:.2f} | {share} |")

