"""Faults around the warehouse file: locked by another process, damaged, a full disk during a
write, a load interrupted by SIGINT or SIGKILL. Each ends in a clear message, and the data the
warehouse held before stays intact. Real DuckDB files, real second processes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from orchestration.contract import TABLES
from orchestration.ingest import IngestError, ensure_raw_schema, ingest_month
from orchestration.resources import WarehouseLockedError, connect_with_retry
from orchestration.warehouse_health import WarehouseCorruptError, check_warehouse
from tests.conftest import PROJECT_ROOT

ORDERS = TABLES["orders"]
HEADER = "order_id,customer_id,channel_id,order_ts,status,currency,ship_city,ship_region,ship_country,shipping_amount\n"


def orders_file(path: Path, count: int, status: str = "paid", padding: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        out.write(HEADER)
        for i in range(count):
            out.write(f"O{i},C{i % 1000},CH1,2024-01-05 10:00:00,{status},USD,Austin{padding},TX,US,5.00\n")
    return path


def month_state(warehouse: Path) -> tuple[int, set[str], list[tuple]]:
    """January's raw rows, their statuses, and the ingest log, read from a fresh connection."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        count, statuses = con.execute("select count(*), list(distinct status) from raw.orders where _month = '2024-01'").fetchone()
        log = con.execute("select rows_loaded from raw._ingest_log order by _loaded_at").fetchall()
        return count, set(statuses or []), log
    finally:
        con.close()


@pytest.fixture
def raw_root(tmp_path: Path) -> Path:
    return tmp_path / "raw"


def loaded_warehouse(path: Path, raw_root: Path, rows: int = 2) -> Path:
    """A warehouse whose January holds `rows` 'paid' orders."""
    orders_file(raw_root / "orders/2024-01.csv", rows)
    con = duckdb.connect(str(path))
    try:
        ensure_raw_schema(con)
        ingest_month(con, ORDERS, raw_root, "2024-01")
    finally:
        con.close()
    return path


# --------------------------------------------------------------------------- locked by another process


def hold_write_lock(path: Path, seconds: float) -> subprocess.Popen:
    """A second process that opens the warehouse for writing (DuckDB's file lock) for `seconds`."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, time
            con = duckdb.connect({str(path)!r})
            print("locked", flush=True)
            time.sleep({seconds})
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_locked_warehouse_is_retried_with_backoff_then_reported_clearly(tmp_path):
    warehouse = tmp_path / "nexcart.duckdb"
    duckdb.connect(str(warehouse)).close()
    holder = hold_write_lock(warehouse, 60)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseLockedError) as caught:
            connect_with_retry(warehouse, attempts=3, first_wait=0.2)
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert str(caught.value).startswith(f"The warehouse {warehouse} is locked by another process (after 3 tries)")
    assert "run again" in str(caught.value)
    assert 0.2 + 0.4 <= waited < 10  # it backed off (0.2 s, then 0.4 s) before giving up


def test_a_lock_released_during_the_backoff_is_waited_for(tmp_path):
    warehouse = tmp_path / "nexcart.duckdb"
    duckdb.connect(str(warehouse)).close()
    holder = hold_write_lock(warehouse, 1.0)
    try:
        con = connect_with_retry(warehouse, attempts=6, first_wait=0.25)  # 0.25 + 0.5 + 1 + 2 s
        assert con.execute("select 42").fetchone() == (42,)
        con.close()
    finally:
        holder.kill()
        holder.wait()


# --------------------------------------------------------------------------- a damaged file


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as stream:
        stream.seek(offset)
        stream.write(data)


def _damage(kind: str, path: Path) -> None:
    if kind == "random-bytes":
        path.write_bytes(bytes(range(256)) * 400)
        return
    con = duckdb.connect(str(path))
    con.execute("create schema raw; create table raw.t as select range as i, 'x' || range as s from range(200000)")
    con.close()
    size = path.stat().st_size
    if kind == "empty-file":
        path.write_bytes(b"")
    elif kind == "truncated":
        with open(path, "r+b") as stream:
            stream.truncate(size // 3)
    elif kind == "damaged-data-block":
        _overwrite(path, size // 2, b"\xa5" * 50_000)
    elif kind == "damaged-header":
        _overwrite(path, 0, b"\x00" * 4096)


@pytest.mark.parametrize("kind", ["random-bytes", "empty-file", "truncated", "damaged-data-block", "damaged-header"])
def test_a_damaged_warehouse_is_detected_with_how_to_rebuild_it(tmp_path, kind):
    warehouse = tmp_path / "nexcart.duckdb"
    _damage(kind, warehouse)
    with pytest.raises(WarehouseCorruptError) as caught:
        check_warehouse(warehouse)
    message = str(caught.value)
    assert message.startswith(f"The warehouse {warehouse} is damaged and cannot be read (")
    assert message.endswith(
        f"delete it (rm '{warehouse}' '{warehouse}.wal') and run `nexcart run` to rebuild it from the raw files.")


@pytest.mark.parametrize("name", ["orders.csv", "folder"])
def test_a_warehouse_setting_that_names_something_else_is_refused_not_advised_for_deletion(tmp_path, name):
    """NEXCART_WAREHOUSE pointed at a shop's CSV (or a folder) by mistake: never 'delete it'."""
    target = tmp_path / name
    if name == "folder":
        target.mkdir()
    else:
        target.write_text("order_id,order_ts\nO1,2024-01-05 10:00\n")
    with pytest.raises(WarehouseCorruptError) as caught:
        check_warehouse(target)
    assert str(caught.value).startswith(f"NEXCART_WAREHOUSE names {target}, which is not a DuckDB database")
    assert "rm " not in str(caught.value) and "delete" not in str(caught.value)
    if name != "folder":
        assert target.read_text().startswith("order_id")


def test_a_healthy_or_missing_warehouse_passes_the_check(tmp_path, raw_root):
    check_warehouse(tmp_path / "not-built-yet.duckdb")
    check_warehouse(loaded_warehouse(tmp_path / "nexcart.duckdb", raw_root))


# --------------------------------------------------------------------------- the disk fills up


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 3 MiB filesystem (tmpfs), as root; skipped where mounting is not permitted."""
    mount_point = tmp_path / "tiny_disk"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no `mount` command: cannot simulate a full disk")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to simulate a full disk (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_fails_the_load_clearly_and_the_warehouse_keeps_its_data(tiny_disk, raw_root):
    warehouse = loaded_warehouse(tiny_disk / "nexcart.duckdb", raw_root)
    # a corrected January, about 15 MB: more than the disk has left
    orders_file(raw_root / "orders/2024-01.csv", 60_000, status="shipped", padding="x" * 150)

    con = duckdb.connect(str(warehouse))
    try:
        with pytest.raises(IngestError) as caught:
            ingest_month(con, ORDERS, raw_root, "2024-01")
    finally:
        con.close()
    assert str(caught.value).startswith("orders 2024-01: the warehouse's disk is full (")
    assert "No space left on device" in str(caught.value)
    assert "Nothing was changed: the warehouse still holds what it held before this load." in str(caught.value)

    check_warehouse(warehouse)
    assert month_state(warehouse) == (2, {"paid"}, [(2,)])  # the old January, untouched


# --------------------------------------------------------------------------- a load interrupted


INTERRUPTED_LOAD = """
import sys
from pathlib import Path
import duckdb
from orchestration.contract import TABLES
from orchestration.ingest import ingest_month
con = duckdb.connect(sys.argv[1])
print("loading", flush=True)
ingest_month(con, TABLES["orders"], Path(sys.argv[2]), "2024-01")
print("done", flush=True)
"""


@pytest.mark.parametrize("delay", [0.2, 0.9, 1.6], ids=["after-0.2s", "after-0.9s", "after-1.6s"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_load_leaves_the_month_as_it_was_or_fully_replaced(tmp_path, raw_root, sig, delay):
    """Whenever the signal lands in the ~2 s load (reading and mapping the file, staging it, the
    publishing transaction), the warehouse opens fine and January is the old one or the whole new one."""
    warehouse = loaded_warehouse(tmp_path / "nexcart.duckdb", raw_root)
    new_rows = 400_000
    orders_file(raw_root / "orders/2024-01.csv", new_rows, status="shipped")
    loader = subprocess.Popen([sys.executable, "-c", INTERRUPTED_LOAD, str(warehouse), str(raw_root)],
                              cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert loader.stdout.readline().strip() == "loading"
    time.sleep(delay)
    loader.send_signal(sig)
    stdout, _ = loader.communicate(timeout=60)

    check_warehouse(warehouse)
    state = month_state(warehouse)
    if "done" in stdout:  # the load finished before the signal: the new month, whole
        assert state == (new_rows, {"shipped"}, [(2,), (new_rows,)])
    else:
        assert loader.returncode != 0
        assert state in [(2, {"paid"}, [(2,)]), (new_rows, {"shipped"}, [(2,), (new_rows,)])]
