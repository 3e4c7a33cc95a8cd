"""The warehouse resource: one DuckDB file that analysts read while runs write.

DuckDB allows one writing process per file, and a reader in another process blocks that
writer. So a run never writes the published file (NEXCART_WAREHOUSE) that users query: it copies
it to a build file (data/warehouse/.build/nexcart.duckdb, same file name so DuckDB's catalog name
and the views bound to it stay valid), writes there, and on success publishes it with one atomic
rename. A reader opened before the rename keeps reading the previous state; the next reader
sees the new one. A run that fails or is killed leaves the published file as it was.

One run builds at a time: a lock file serialises runs from the UI, the schedule, the sensor and
`nexcart run`; a second run waits for the first to publish, then starts from its result.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster import ConfigurableResource, DagsterEventType, InitResourceContext
from pydantic import PrivateAttr

from orchestration.settings import duckdb_config, load_settings

WAREHOUSE_POOL = "warehouse"
BUILD_LOCK_TIMEOUT_S = 6 * 3600


class WarehouseLockedError(RuntimeError):
    """Another process holds the warehouse file for longer than we are willing to wait."""


def connect_with_retry(path: Path, read_only: bool = False, attempts: int = 8, first_wait: float = 0.5):
    """Open the DuckDB file; if another process holds its lock, wait and retry (0.5 s, 1 s, 2 s, ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wait = first_wait
    for attempt in range(1, attempts + 1):
        try:
            return duckdb.connect(str(path), read_only=read_only, config=duckdb_config())
        except duckdb.IOException as exc:
            # DuckDB's lock conflict; not any message with "block" in it (a damaged file says so)
            locked = "could not set lock" in str(exc).lower()
            if not locked:
                raise
            if attempt == attempts:
                raise WarehouseLockedError(
                    f"The warehouse {path} is locked by another process (after {attempts} tries): "
                    "close any DuckDB session writing to it (or a read-only one: it blocks writers "
                    "too) and run again."
                ) from exc
            time.sleep(wait)
            wait = min(wait * 2, 10.0)
    raise AssertionError("unreachable")


def build_path_for(published: Path) -> Path:
    return published.parent / ".build" / published.name


def _remove_database(path: Path) -> None:
    for suffix in ("", ".wal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _copy_database(source: Path, target: Path) -> None:
    _remove_database(target)
    for suffix in ("", ".wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")


def publish(build: Path, published: Path) -> None:
    """Make the build file the published one in one rename (same folder tree, same filesystem)."""
    con = duckdb.connect(str(build), config=duckdb_config())
    try:
        con.execute("checkpoint")  # fold the write-ahead log into the file before it moves
    finally:
        con.close()
    Path(f"{build}.wal").unlink(missing_ok=True)
    os.replace(build, published)
    Path(f"{published}.wal").unlink(missing_ok=True)
    fd = os.open(published.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def restore_months(con: duckdb.DuckDBPyConnection, published: Path, months: list[str]) -> int:
    """Put `months` back as the published warehouse has them, in every monthly table of the
    connection's database (raw and clean: text column `_month` 'YYYY-MM'; marts: date column
    `month`); returns the rows put back. A month the published file does not have ends up empty.

    This is how a run holds a month back: the other months of the run go on and are published,
    while that month stays at its last published state in every layer, consistent with itself.
    """
    if not months:
        return 0
    tables = con.execute(
        "select t.table_schema, t.table_name, c.column_name from information_schema.tables t "
        "join information_schema.columns c using (table_catalog, table_schema, table_name) "
        "where t.table_catalog = current_database() and t.table_type = 'BASE TABLE' "
        "and ((c.column_name = '_month' and c.data_type = 'VARCHAR') "
        "     or (c.column_name = 'month' and c.data_type = 'DATE')) "
        "qualify row_number() over (partition by t.table_schema, t.table_name order by c.column_name) = 1"
    ).fetchall()
    keys = list(months)
    restored = 0
    attached = published.exists()
    if attached:
        quoted = str(published).replace("'", "''")  # ATTACH takes no parameters
        con.execute(f"attach '{quoted}' as published (read_only)")
    try:
        for schema, table, column in tables:
            target = f'"{schema}"."{table}"'
            month_text = '"_month"' if column == "_month" else "strftime(\"month\", '%Y-%m')"
            match = f"{month_text} in (select unnest(?::varchar[]))"
            con.execute(f"delete from {target} where {match}", [keys])
            if not attached:
                continue
            common = [name for (name,) in con.execute(
                "select column_name from information_schema.columns where table_catalog = current_database() "
                "and table_schema = ? and table_name = ? intersect "
                "select column_name from information_schema.columns where table_catalog = 'published' "
                "and table_schema = ? and table_name = ?", [schema, table, schema, table]).fetchall()]
            if column not in common:
                continue  # the table is new in this build: the month had nothing published
            names = ", ".join(f'"{name}"' for name in common)
            restored += con.execute(
                f"insert into {target} ({names}) select {names} from published.{target} where {match}", [keys]
            ).fetchone()[0]
    finally:
        if attached:
            con.execute("detach published")
    return restored


class WarehouseResource(ConfigurableResource):
    """The DuckDB warehouse (NEXCART_WAREHOUSE). Steps call connect(); during a run that is the
    run's build file, published when the run succeeds."""

    path: str
    _build: Path | None = PrivateAttr(default=None)
    _lock: int | None = PrivateAttr(default=None)

    @property
    def published_path(self) -> Path:
        return Path(self.path)

    @property
    def database(self) -> Path:
        """The file this run reads and writes: the build file inside a run, else the published one."""
        return self._build or self.published_path

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if context.run is None:  # outside a run (e.g. a sensor): read the published file
            return
        published = self.published_path
        build = build_path_for(published)
        build.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _acquire_build_lock(build.parent / "build.lock", context)
        _release_dead_runs(context)
        # A build file left by a killed run is discarded: every run starts from the published state.
        _copy_database(published, build)
        self._build = build

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._build is None:
            return
        try:
            if _run_succeeded_so_far(context):
                publish(self._build, self.published_path)
                context.log.info(f"published the warehouse to {self.published_path}")
            else:
                context.log.warning("the run failed: the published warehouse is left as it was")
                _remove_database(self._build)
        finally:
            self._build = None
            if self._lock is not None:
                os.close(self._lock)  # closing releases the flock
                self._lock = None

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect_with_retry(self.database, read_only=read_only)
        try:
            yield con
        finally:
            con.close()

    def dbt_profile_values(self) -> dict[str, str]:
        """The environment variables the pipeline target of dbt_project/profiles.yml renders: this
        run's build file and the memory limit (what makes one dbt profile differ from another)."""
        return {"NEXCART_WAREHOUSE": str(self.database),
                "NEXCART_DUCKDB_MEMORY_LIMIT": load_settings().duckdb_memory_limit}

    @contextmanager
    def dbt_environment(self, **variables: str) -> Iterator[None]:
        """dbt runs as a subprocess reading its profile from the environment (dbt_profile_values):
        point it at this run's build file, and set `variables` (e.g. the month window), for the
        duration of the call."""
        values = {**self.dbt_profile_values(), **variables}
        previous = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _acquire_build_lock(lock_path: Path, context: InitResourceContext) -> int:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + BUILD_LOCK_TIMEOUT_S
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if not announced:
                context.log.info("another run is building the warehouse: waiting for it to publish")
                announced = True
            if time.monotonic() > deadline:
                os.close(fd)
                raise WarehouseLockedError(f"another run held {lock_path} for over {BUILD_LOCK_TIMEOUT_S} s")
            time.sleep(1.0)


def _release_dead_runs(context: InitResourceContext) -> None:
    """Free the 'warehouse' pool slot of a run that died (SIGKILL, OOM) while building.

    A run claims (or queues for) the pool's slot for a step only while it holds the build lock, and
    this run holds it now: another run holding or waiting for a slot is dead. Left alone, its slot
    would make every later run wait for the pool forever. It is marked failed, so the UI says so.
    """
    instance = context.instance
    if instance is None or not instance.event_log_storage.supports_global_concurrency_limits:
        return
    info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
    holders = {slot.run_id for slot in info.claimed_slots} | {step.run_id for step in info.pending_steps}
    for run_id in sorted(holders - {context.run.run_id}):
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(
                run, "This run stopped while building the warehouse (killed or crashed); the published "
                "warehouse was left as it was."
            )
        context.log.warning(f"released the warehouse pool slot of run {run_id}, which stopped while building")


def _run_succeeded_so_far(context: InitResourceContext) -> bool:
    """No step of this run failed (a failed blocking check fails its step too)."""
    if context.instance is None or context.run is None:
        return False
    failures = context.instance.get_records_for_run(
        run_id=context.run.run_id, of_type=DagsterEventType.STEP_FAILURE, limit=1
    ).records
    return not failures
