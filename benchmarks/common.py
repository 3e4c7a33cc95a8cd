"""What the benchmark scripts share: a work folder with its own Dagster home, the sample,
`nexcart run` as a user runs it (a subprocess with the project's environment variables), the peak
memory of a process tree, and the timeline of a run read back from its Dagster event log."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
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
    dagster_home(root)
    try:
        yield root
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def dagster_home(root: Path) -> Path:
    """root/dagster_home, with the project's instance settings (dagster.yaml)."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return home


def env(root: Path, raw: Path | None = None) -> dict[str, str]:
    """The environment of a run in root: its warehouse, outputs and Dagster home; raw root
    root/raw unless given."""
    return {
        **os.environ,
        "NEXCART_DATA_DIR": str(raw or root / "raw"),
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


class PeakRss(threading.Thread):
    """Polls the resident memory of a process and all its descendants every `interval` seconds
    and keeps the largest sum. On Linux from /proc: each poll reads the known processes' statm, and
    the tree is re-listed every `rescan` seconds (a full /proc scan costs tens of milliseconds, too
    much CPU to do 5 times a second next to the process measured on 2 cores); elsewhere psutil."""

    def __init__(self, pid: int, interval: float = 0.2, rescan: float = 1.0):
        super().__init__(daemon=True)
        self.pid, self.interval, self.rescan = pid, interval, rescan
        self.peak = 0
        self.samples = 0
        self._halt = threading.Event()
        self._linux = os.path.isdir(f"/proc/{os.getpid()}")

    def run(self) -> None:
        tree: set[int] = {self.pid}
        listed = 0.0
        while not self._halt.is_set():
            if self._linux:
                if time.monotonic() - listed >= self.rescan:
                    tree, listed = _proc_tree(self.pid), time.monotonic()
                rss = _proc_rss(tree)
            else:
                rss = _psutil_tree_rss(self.pid)
            self.peak = max(self.peak, rss)
            self.samples += 1
            self._halt.wait(self.interval)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


def _proc_tree(pid: int) -> set[int]:
    """pid and its descendants, from /proc/*/stat (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    tree, frontier = {pid}, [pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


def _proc_rss(pids: set[int]) -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as statm:
                total += int(statm.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass  # ended since the tree was listed
    return total


def _psutil_tree_rss(pid: int) -> int:
    import psutil  # the bench extra (pyproject.toml)

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path = PROJECT_ROOT,
                 stdin_path: Path | None = None) -> dict:
    """Run cmd to its end: wall seconds, peak RSS of its process tree (bytes), start and end as
    epoch seconds (to line up with Dagster's event timestamps), return code and output."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        started_at = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        monitor = PeakRss(proc.pid)
        monitor.start()
        stdout, stderr = proc.communicate()
        wall = time.perf_counter() - started
        ended_at = time.time()
        peak = monitor.stop()
    finally:
        if stdin_path:
            stdin.close()
    return {"wall_s": wall, "peak_rss_bytes": peak, "rss_samples": monitor.samples, "started_at": started_at,
            "ended_at": ended_at, "returncode": proc.returncode, "stdout": stdout, "stderr": stderr}


def nexcart_run_measured(root: Path, *args: str, raw: Path | None = None) -> dict:
    """`nexcart run [args]` on root (raw root `raw` if given) in a subprocess, measured with
    run_measured; exits on failure."""
    result = run_measured([sys.executable, "-m", "orchestration.cli", "run", *args], env=env(root, raw))
    if result["returncode"] != 0:
        raise SystemExit(f"nexcart run {' '.join(args)} failed (exit {result['returncode']}):\n"
                         f"{result['stdout'][-4000:]}\n{result['stderr'][-4000:]}")
    return result


def last_run_records(dagster_home: Path) -> list:
    """The event log records of the newest run in dagster_home (DAGSTER_HOME is left as it is)."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        run = instance.get_runs(limit=1)[0]
        return instance.get_records_for_run(run.run_id, limit=1_000_000).records


def run_timeline(dagster_home: Path) -> dict:
    """The newest run of dagster_home, from its event log: run id, epoch timestamps of its first
    event (the run's planned materializations and checks are written before RUN_START), RUN_START
    and its end (RUN_SUCCESS / RUN_FAILURE), each step's seconds from STEP_START to STEP_SUCCESS /
    STEP_FAILURE in the order the steps started, and how many events of each type it wrote."""
    from dagster import DagsterEventType

    run_id = first_event = run_start = run_end = None
    starts: dict[str, float] = {}
    steps: dict[str, float] = {}
    counts: dict[str, int] = {}
    for record in last_run_records(dagster_home):
        entry = record.event_log_entry
        run_id = run_id or entry.run_id
        first_event = entry.timestamp if first_event is None else min(first_event, entry.timestamp)
        event = entry.dagster_event
        if event is None:
            counts["log message"] = counts.get("log message", 0) + 1
            continue
        kind = event.event_type
        counts[event.event_type_value] = counts.get(event.event_type_value, 0) + 1
        if kind == DagsterEventType.RUN_START:
            run_start = entry.timestamp
        elif kind in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
            run_end = entry.timestamp
        elif kind == DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            steps[event.step_key] = entry.timestamp - starts[event.step_key]
    return {"run_id": run_id, "first_event_at": first_event, "run_start_at": run_start, "run_end_at": run_end,
            "steps": {key: steps[key] for key in starts if key in steps}, "event_counts": counts}


def print_seconds_table(share_title: str, rows: list[tuple[str, float, float | None]]) -> None:
    """A Markdown table for benchmarks/README.md: (measure, seconds, the seconds it is a share of,
    or None for no share)."""
    print(f"| measure | seconds | {share_title} |")
    print("|---|---:|---:|")
    for label, seconds, whole in rows:
        share = f"{100 * seconds / whole:.1f} %" if whole else ""
        print(f"| {label} | {seconds:.2f} | {share} |")

