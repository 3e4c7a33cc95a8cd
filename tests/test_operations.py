"""Operating the pipeline (issue 5): readers are never blocked, a killed run changes nothing, two
runs take turns, the instance limits warehouse writers, the freshness check and the raw-files sensor.

The end-to-end tests use real `nexcart run` processes, the real DuckDB CLI, real DuckDB files and
a real Dagster instance configured by the repo's dagster_home/dagster.yaml. A full run on the tiny
sample takes about a minute (dbt start-ups), so they share one prepared warehouse:

- `history` (once per module): a 1,500-order, 3-month sample (v1), one uninterrupted run on it,
  and a second version of the raw data (v2: quantities of some March lines changed), so the state
  before and after a run can be told apart;
- each test starts from a copy of the v1 warehouse with the v2 raw files and runs on those;
- the marts of the v1 warehouse after one uninterrupted v2 run are the reference the crash and
  concurrency tests compare with (recorded by the readers test, or computed if it did not run).

Nothing here asserts on timing: how long a step takes only decides when a signal is sent.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.conftest import PROJECT_ROOT, Pipeline, write_csv

DUCKDB_CLI = PROJECT_ROOT / ".venv" / "bin" / "duckdb"
REPO_DAGSTER_YAML = PROJECT_ROOT / "dagster_home" / "dagster.yaml"
# What an analyst asks while runs write: order lines and units. v1 and v2 differ in both.
READER_SQL = "select count(*), sum(quantity) from marts.fct_order_lines"
CHANGED_LINES = 25
RUN_TIMEOUT = 900


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def duckdb_cli(database: Path, sql: str) -> subprocess.CompletedProcess:
    """The real DuckDB CLI, read-only, as the README tells users to query the warehouse."""
    cli = str(DUCKDB_CLI) if DUCKDB_CLI.exists() else shutil.which("duckdb")
    assert cli, "the DuckDB CLI is not installed (.venv/bin/duckdb)"
    return subprocess.run([cli, "-readonly", str(database), "-csv", "-noheader", "-c", sql],
                          capture_output=True, text=True, timeout=120)


def marts_snapshot(database: Path) -> dict[str, list[tuple]]:
    """Every row of every marts.* table, sorted; doubles rounded to 9 places."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        tables = [row[0] for row in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts' order by 1").fetchall()]
        snapshot = {}
        for table in tables:
            rows = con.execute(f"select * from marts.{table} order by all").fetchall()
            snapshot[table] = [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows]
        return snapshot
    finally:
        con.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bump_quantities(order_items_csv: Path, lines: int = CHANGED_LINES) -> None:
    """A corrected re-delivery: the first `lines` order lines get one more unit each."""
    with open(order_items_csv, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    header, body = rows[0], rows[1:]
    quantity = header.index("quantity")
    for row in body[:lines]:
        row[quantity] = str(int(row[quantity]) + 1)
    with open(order_items_csv, "w", newline="", encoding="utf-8") as stream:
        csv.writer(stream, lineterminator="\n").writerows([header, *body])


def instance_for(dagster_home: Path):
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    return DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home)))


def run_events(instance, run_id: str) -> list:
    return [r.event_log_entry for r in instance.get_records_for_run(run_id, limit=100_000).records]


def started_steps(instance) -> tuple[str | None, set[str]]:
    """The newest run of the instance and the steps it has started."""
    from dagster import DagsterEventType

    runs = instance.get_runs(limit=1)
    if not runs:
        return None, set()
    records = instance.get_records_for_run(runs[0].run_id, of_type=DagsterEventType.STEP_START,
                                           limit=1000).records
    return runs[0].run_id, {r.event_log_entry.dagster_event.step_key for r in records}


class Run:
    """`nexcart run` in the background, its output in a file."""

    def __init__(self, pipeline: Pipeline, name: str):
        self.log = pipeline.dagster_home.parent / f"{name}.out"
        self.stream = open(self.log, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "orchestration.cli", "run"], cwd=PROJECT_ROOT,
                                        env=pipeline.env, stdout=self.stream, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    @property
    def output(self) -> str:
        self.stream.flush()
        return self.log.read_text()

    def wait(self, timeout: float = RUN_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.stream.close()

    def kill(self) -> None:
        """SIGKILL to the `nexcart run` process only, as `kill -9 <pid>` or the OOM killer does:
        its children (dbt) are not signalled."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)
        self.stream.close()

    def wait_for_children(self, timeout: float = 120) -> None:
        """Wait until the orphaned children of the killed run (dbt, log tailers) have exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = subprocess.run(["pgrep", "-s", str(self.process.pid)], capture_output=True, text=True).stdout
            if not alive.strip():
                return
            time.sleep(0.5)
        os.killpg(self.process.pid, signal.SIGKILL)  # our own session only

    def cleanup(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=60)
        if not self.stream.closed:
            self.stream.close()


def run_ok(run: Run) -> None:
    code = run.wait()
    assert code == 0, f"nexcart run exited {code}:\n{run.output}"


# ------------------------------------------------------------------------------------------------
# The shared history: v1 sample, v1 warehouse, v2 raw files, reference marts
# ------------------------------------------------------------------------------------------------


@dataclass
class History:
    root: Path
    raw_v1: Path
    raw_v2: Path
    warehouse_v1: Path
    reader_v1: str
    marts_v1: dict
    reference: dict | None = field(default=None)

    def prepare(self, pipeline: Pipeline) -> None:
        """The v1 warehouse, the v2 raw files and the repo's dagster.yaml, in the test's folders."""
        shutil.rmtree(pipeline.raw)
        shutil.copytree(self.raw_v2, pipeline.raw)
        pipeline.warehouse.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.warehouse_v1, pipeline.warehouse)
        shutil.copyfile(REPO_DAGSTER_YAML, pipeline.dagster_home / "dagster.yaml")

    def reference_marts(self) -> dict:
        """The marts after one uninterrupted v2 run on the v1 warehouse."""
        if self.reference is None:
            pipeline = Pipeline(self.root / "reference")
            self.prepare(pipeline)
            pipeline.nexcart("run", timeout=RUN_TIMEOUT)
            self.reference = marts_snapshot(pipeline.warehouse)
        return self.reference


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    from orchestration.sample_data import generate

    root = tmp_path_factory.mktemp("history")
    base = Pipeline(root / "base")
    generate(base.raw, orders=1_500, months=3, seed=11, defect_rate=0.0)
    shutil.copyfile(REPO_DAGSTER_YAML, base.dagster_home / "dagster.yaml")
    base.nexcart("run", timeout=RUN_TIMEOUT)

    raw_v2 = root / "raw_v2"
    shutil.copytree(base.raw, raw_v2)
    bump_quantities(raw_v2 / "order_items" / "2024-03.csv")
    reader_v1 = duckdb_cli(base.warehouse, READER_SQL)
    assert reader_v1.returncode == 0, reader_v1.stderr
    return History(root=root, raw_v1=base.raw, raw_v2=raw_v2, warehouse_v1=base.warehouse,
                   reader_v1=reader_v1.stdout.strip(), marts_v1=marts_snapshot(base.warehouse))


# ------------------------------------------------------------------------------------------------
# 1. Readers are never blocked
# ------------------------------------------------------------------------------------------------


@dataclass
class Read:
    during_build: bool
    returncode: int
    answer: str
    error: str


def test_readers_are_never_blocked_and_see_the_last_published_state(pipeline, history):
    history.prepare(pipeline)
    build = pipeline.warehouse.parent / ".build"
    old = history.reader_v1
    # A session an analyst opened before the run and keeps open through it.
    session = duckdb.connect(str(pipeline.warehouse), read_only=True)
    run = Run(pipeline, "run")
    reads: list[Read] = []
    try:
        while run.process.poll() is None:
            building = any(build.glob("**/*.duckdb"))
            result = duckdb_cli(pipeline.warehouse, READER_SQL)
            reads.append(Read(building and any(build.glob("**/*.duckdb")), result.returncode,
                              result.stdout.strip(), result.stderr.strip()))
            time.sleep(0.2)
        run_ok(run)
        kept = session.execute(READER_SQL).fetchone()
    finally:
        session.close()
        run.cleanup()

    new = duckdb_cli(pipeline.warehouse, READER_SQL)
    assert new.returncode == 0, new.stderr
    new = new.stdout.strip()
    assert new != old, "the v2 files should change the order lines"
    failed = [r for r in reads if r.returncode != 0]
    assert not failed, f"{len(failed)} of {len(reads)} reads failed, e.g. {failed[0].error}"
    assert {r.answer for r in reads} <= {old, new}
    # answers move from old to new once (at the publishing rename), never back
    answers = [r.answer for r in reads]
    assert answers == sorted(answers, key=lambda a: a == new)
    # the reads that overlapped the build (a .build file existed before and after them) saw v1
    during = [r for r in reads if r.during_build]
    assert during, "no read happened while the run was building"
    assert all(r.answer == old for r in during)
    # the session opened before the run still reads the state it opened, and did not block the run
    assert ",".join(str(v) for v in kept) == old
    assert not any(build.glob("**/*.duckdb")), "the build file is published (renamed), not left behind"
    history.reference = marts_snapshot(pipeline.warehouse)


# ------------------------------------------------------------------------------------------------
# 2. Crash safety
# ------------------------------------------------------------------------------------------------


def kill_when(pipeline: Pipeline, name: str, ready, settle: float = 0.0) -> tuple[Run, str, set[str]]:
    """Start `nexcart run`, SIGKILL it as soon as ready(started step keys) holds (plus `settle`
    seconds), and return the run, its Dagster run id and the steps it had started."""
    instance = instance_for(pipeline.dagster_home)
    before = {r.run_id for r in instance.get_runs()}
    run = Run(pipeline, name)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            assert run.process.poll() is None, f"the run ended before the kill point:\n{run.output}"
            assert time.monotonic() < deadline, "the kill point never came"
            run_id, steps = started_steps(instance)
            if run_id not in before and run_id is not None and ready(steps):
                break
            time.sleep(0.05)
        time.sleep(settle)
        assert run.process.poll() is None
        run.kill()
        _, steps = started_steps(instance)
        return run, run_id, steps
    except BaseException:
        run.cleanup()
        raise
    finally:
        instance.dispose()


def assert_published_intact(pipeline: Pipeline, history: History, digest: str) -> None:
    assert sha256(pipeline.warehouse) == digest, "the published warehouse file changed"
    reader = duckdb_cli(pipeline.warehouse, READER_SQL)
    assert (reader.returncode, reader.stdout.strip()) == (0, history.reader_v1), reader.stderr
    assert marts_snapshot(pipeline.warehouse) == history.marts_v1


def test_a_run_killed_at_any_step_leaves_the_warehouse_intact_and_the_next_run_completes(pipeline, history):
    history.prepare(pipeline)
    digest = sha256(pipeline.warehouse)
    build = pipeline.warehouse.parent / ".build"

    # During raw ingest: a raw step has started, no dbt step yet.
    run, _, steps = kill_when(pipeline, "killed-in-ingest", lambda s: any(k.startswith("raw__") for k in s))
    assert steps and all(k.startswith("raw__") for k in steps), f"killed after ingest: {sorted(steps)}"
    assert any(build.glob("**/*.duckdb")), "the killed run had a build file"
    assert_published_intact(pipeline, history, digest)

    # During dbt: the monthly models' dbt build is running (and writing the build file).
    in_monthly_dbt = lambda s: any(k.startswith("dbt_monthly") for k in s)  # noqa: E731
    run, in_dbt, steps = kill_when(pipeline, "killed-in-dbt", in_monthly_dbt, settle=3.0)
    assert in_monthly_dbt(steps) and "reports__monthly_report" not in steps
    assert_published_intact(pipeline, history, digest)
    run.wait_for_children()  # dbt, orphaned by the kill, stops on its own
    assert_published_intact(pipeline, history, digest)

    # The next run completes (it does not wait for the killed runs' warehouse pool slots) ...
    pipeline.nexcart("run", timeout=RUN_TIMEOUT)
    # ... with the marts of a run that was never interrupted.
    assert marts_snapshot(pipeline.warehouse) == history.reference_marts()
    assert duckdb_cli(pipeline.warehouse, READER_SQL).stdout.strip() != history.reader_v1
    # No pool slot is left to a dead run, and the run killed in dbt (it held the slot) is marked
    # failed rather than left "started" forever.
    instance = instance_for(pipeline.dagster_home)
    try:
        pool = instance.event_log_storage.get_concurrency_info("warehouse")
        assert not pool.claimed_slots and not pool.pending_steps
        assert instance.get_run_by_id(in_dbt).is_failure
        assert [r.is_success for r in instance.get_runs(limit=1)] == [True]
    finally:
        instance.dispose()


# ------------------------------------------------------------------------------------------------
# 3. Concurrency
# ------------------------------------------------------------------------------------------------


def test_two_runs_started_at_once_both_succeed_one_after_the_other(pipeline, history):
    from dagster import DagsterEventType

    history.prepare(pipeline)
    # The instance exists already, as it does after the first run ever: two processes creating a
    # new DAGSTER_HOME's SQLite storage at the same moment can stamp its schema version twice.
    instance_for(pipeline.dagster_home).dispose()
    runs = [Run(pipeline, "first"), Run(pipeline, "second")]
    try:
        for run in runs:
            run_ok(run)
    finally:
        for run in runs:
            run.cleanup()

    instance = instance_for(pipeline.dagster_home)
    try:
        dagster_runs = instance.get_runs()
        assert len(dagster_runs) == 2 and all(r.is_success for r in dagster_runs)
        windows = []
        waited = []
        for dagster_run in dagster_runs:
            entries = run_events(instance, dagster_run.run_id)
            steps = [e.timestamp for e in entries if e.dagster_event and e.dagster_event.event_type in
                     (DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS)]
            windows.append((min(steps), max(steps)))
            waited.append(any("waiting for it to publish" in (e.user_message or "") for e in entries))
        (first_start, first_end), (second_start, second_end) = sorted(windows)
        assert first_end < second_start, "the two runs' steps overlapped"
        assert waited.count(True) == 1, "exactly one run waited for the other's build"
    finally:
        instance.dispose()
    # The second run built on the first one's result: the same marts as one uninterrupted run.
    assert marts_snapshot(pipeline.warehouse) == history.reference_marts()


INSPECT_POOLS = """
import json
from dagster import AssetsDefinition, AssetChecksDefinition
from orchestration.definitions import defs
out = []
nodes = [*defs.assets, *(defs.asset_checks or [])]
for node in nodes:
    if not isinstance(node, (AssetsDefinition, AssetChecksDefinition)):
        continue
    op = node.node_def
    keys = sorted(k.to_user_string() for k in getattr(node, "keys", [])) or sorted(
        str(k) for k in node.check_keys)
    out.append({"name": op.name, "keys": keys, "pool": op.pool,
                "resources": sorted(node.required_resource_keys)})
print("JSON" + json.dumps(out))
"""


def test_every_warehouse_step_is_in_the_warehouse_pool(pipeline):
    write_csv(pipeline.raw / "orders" / "2024-01.csv", "order_id,order_ts", "O1,2024-01-02 10:00")
    completed = subprocess.run([sys.executable, "-c", INSPECT_POOLS], cwd=PROJECT_ROOT, env=pipeline.env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    nodes = json.loads(completed.stdout.split("JSON", 1)[1])
    touching = [n for n in nodes if "warehouse" in n["resources"]]
    names = {n["name"] for n in touching}
    assert {"dbt_reference", "dbt_summary", "raw__orders", "reports__monthly_report"} <= names
    assert any(name.startswith("dbt_monthly") for name in names)
    assert [n["name"] for n in touching if n["pool"] != "warehouse"] == []
    # and the other way round: a step in the pool holds the build lock (it uses the warehouse
    # resource), which is what lets a run free the pool slot of a run that died while building
    assert [n["name"] for n in nodes if n["pool"] == "warehouse" and "warehouse" not in n["resources"]] == []


def test_the_instance_config_allows_one_warehouse_writer(tmp_path):
    config = yaml.safe_load(REPO_DAGSTER_YAML.read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 1
    # `run_queue` limits cannot be combined with `concurrency: pools` in Dagster 1.13
    assert "run_queue" not in config and "run_coordinator" not in config
    shutil.copyfile(REPO_DAGSTER_YAML, tmp_path / "dagster.yaml")
    instance = instance_for(tmp_path)  # validates the file against Dagster's instance schema
    try:
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1
        assert instance.global_op_concurrency_default_limit == 1
        assert pools.pool_granularity in (None,) or pools.pool_granularity.value == "op"
        assert instance.event_log_storage.supports_global_concurrency_limits
    finally:
        instance.dispose()


# ------------------------------------------------------------------------------------------------
# 5. Freshness
# ------------------------------------------------------------------------------------------------

FRESHNESS = """
import json, sys
from dagster import AssetKey, AssetMaterialization, DagsterInstance
from dagster._core.instance.ref import InstanceRef
from orchestration.definitions import defs, freshness_checks

instance = DagsterInstance.from_ref(InstanceRef.from_dir(sys.argv[1]))
mart = AssetKey(["marts", "monthly_revenue"])
check_keys = {key for checks in freshness_checks for key in checks.check_keys}
job = defs.resolve_implicit_global_asset_job_def().get_subset(
    asset_selection=set(), asset_check_selection={k for k in check_keys if k.asset_key == mart})
out = {"checked": sorted(k.asset_key.to_user_string() for k in check_keys), "evaluations": []}
for months in json.loads(sys.argv[2]):  # materializations to record, then an evaluation
    for month in months:
        instance.report_runless_asset_event(AssetMaterialization(asset_key=mart, partition=month))
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    out["evaluations"].append([
        {"asset": e.asset_key.to_user_string(), "check": e.check_name, "passed": e.passed,
         "description": e.description}
        for e in result.get_asset_check_evaluations()
    ])
print("JSON" + json.dumps(out))
"""


def month_before(month: str, n: int = 1) -> str:
    year, mon = map(int, month.split("-"))
    index = year * 12 + (mon - 1) - n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def evaluate_freshness(pipeline: Pipeline, freshness_day: int, steps: list[list[str]]) -> dict:
    """The real freshness check of marts/monthly_revenue, evaluated now with NEXCART_FRESHNESS_DAY
    = freshness_day, after recording each step's month partitions as materialized."""
    home = pipeline.dagster_home / f"day{freshness_day}"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**pipeline.env, "NEXCART_FRESHNESS_DAY": str(freshness_day), "NEXCART_TIMEZONE": "UTC"}
    completed = subprocess.run([sys.executable, "-c", FRESHNESS, str(home), json.dumps(steps)],
                               cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.split("JSON", 1)[1])


def test_freshness_check_fails_when_last_month_is_not_built_by_the_deadline(pipeline):
    now = datetime.now(timezone.utc)
    this_month = f"{now.year:04d}-{now.month:02d}"
    last_month, month_before_last = month_before(this_month), month_before(this_month, 2)
    # partitions start at the first month in the raw root: a year of history
    first = month_before(this_month, 12)
    write_csv(pipeline.raw / "orders" / f"{first}.csv", "order_id,order_ts", f"O1,{first}-02 10:00")

    # Deadline the 1st: last month is due. Built up to the month before: the check fails.
    # Then last month is built: it passes.
    result = evaluate_freshness(pipeline, 1, [[month_before_last], [last_month]])
    assert {"marts/monthly_revenue", "marts/monthly_channel_performance"} <= set(result["checked"])
    assert all(key.startswith("marts/") for key in result["checked"])
    [overdue], [fresh] = result["evaluations"]
    assert overdue["asset"] == "marts/monthly_revenue" and overdue["check"] == "freshness_check"
    assert not overdue["passed"] and last_month in overdue["description"]
    assert fresh["passed"], fresh["description"]

    # The deadline day is configurable: before it, the month before last is what is due.
    if now.day < 28:
        [[not_yet]] = evaluate_freshness(pipeline, now.day + 1, [[month_before_last]])["evaluations"]
        assert not_yet["passed"] and month_before_last in not_yet["description"]


# ------------------------------------------------------------------------------------------------
# 6. The raw-files sensor
# ------------------------------------------------------------------------------------------------


def test_raw_files_sensor_runs_what_new_or_corrected_files_affect(tmp_path, monkeypatch):
    from dagster import build_sensor_context

    from orchestration.sample_data import generate
    from orchestration.sensors import raw_files_sensor

    raw = tmp_path / "raw"
    summary = generate(raw, orders=400, months=4, seed=5, defect_rate=0.0)  # 2024-01 .. 2024-04
    # one of February and March is the sample's empty month (no files): use the other one
    [month] = [m for m in ("2024-02", "2024-03") if m != summary["empty_month"]]
    late = raw / "transactions" / f"{month}.csv"
    late_bytes = late.read_bytes()
    late.unlink()  # February's transactions arrive late
    monkeypatch.setenv("NEXCART_DATA_DIR", str(raw))

    cursor = None

    def tick():
        nonlocal cursor
        result = raw_files_sensor(build_sensor_context(cursor=cursor))
        cursor = result.cursor
        return [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"],
                 r.run_key, r.job_name) for r in result.run_requests or []]

    # First tick: everything is new, the reference snapshots too: every month.
    [(first, last, _, job)] = tick()
    assert (first, last, job) == ("2024-01", "2024-04", "monthly_refresh")
    assert tick() == []

    # Touched (new mtime, same bytes) or copied again: nothing.
    orders = raw / "orders" / "2024-01.csv"
    later = time.time() + 60
    os.utime(orders, (later, later))
    assert tick() == []
    shutil.copyfile(orders, tmp_path / "copy.csv")
    shutil.copyfile(tmp_path / "copy.csv", orders)
    assert tick() == []

    # A new monthly file: that month, to the last month.
    late.write_bytes(late_bytes)
    assert [r[:2] for r in tick()] == [(month, "2024-04")]
    assert tick() == []

    # A corrected re-delivery of a past month: that month to the last, again for a second correction.
    keys = []
    for _ in range(2):
        bump_quantities(raw / "order_items" / f"{month}.csv", lines=3)
        [(first, last, key, _)] = tick()
        assert (first, last) == (month, "2024-04")
        keys.append(key)
        assert tick() == []
    # Dagster launches a run key once per sensor: two corrections of one file need two run keys.
    assert keys[0] != keys[1]

    # A changed reference snapshot: every month.
    products = raw / "products.csv"
    products.write_text(products.read_text().replace("\n", "\r\n"))
    assert [r[:2] for r in tick()] == [("2024-01", "2024-04")]
    assert tick() == []
