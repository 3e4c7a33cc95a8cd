"""Is the warehouse file readable? A damaged file (random bytes, a truncated copy, a block whose
checksum no longer matches) is reported with how to rebuild it, before a run starts, instead of
as a DuckDB stack trace from the middle of the run.

Rebuilding loses nothing: every layer of the warehouse is derived by `nexcart run` from the raw
root, which also holds the corrections replayed from quarantine.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestration.resources import connect_with_retry
from orchestration.settings import duckdb_config


class WarehouseCorruptError(RuntimeError):
    """The warehouse file exists but DuckDB cannot read it."""


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    # DuckDB's words when another process holds the file; not a sign of damage.
    return "could not set lock" in str(exc).lower()


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file
DUCKDB_MAGIC_OFFSET = 8


def _looks_like_a_warehouse(path: Path) -> bool:
    """A DuckDB file by its header, or a file named like one (a warehouse damaged past its header).
    Anything else (a CSV that NEXCART_WAREHOUSE names by mistake) must never be advised for deletion."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC))
    except OSError:
        return False
    return head[DUCKDB_MAGIC_OFFSET:] == DUCKDB_MAGIC or path.suffix == ".duckdb"


def rebuild_advice(path: Path, problem: str) -> str:
    wal = path.with_name(path.name + ".wal")
    return (
        f"The warehouse {path} is damaged and cannot be read ({problem}). It holds nothing that is not "
        f"in the raw root: delete it (rm '{path}' '{wal}') and run `nexcart run` to rebuild it "
        "from the raw files."
    )


def check_warehouse(path: Path) -> None:
    """Raise WarehouseCorruptError when `path` exists but is not a readable DuckDB database.

    Opens the file read-only, reads its catalogue, then every row of every table: DuckDB checks a
    block's checksum when it reads it, so damage anywhere in the data is found (a full scan, about
    0.3 s for a 50 MB warehouse). A missing file is fine: the first run creates it. A file locked
    by another process is waited for, then reported as WarehouseLockedError (not as damage).
    """
    if not path.exists():
        return
    if not path.is_file() or not _looks_like_a_warehouse(path):
        raise WarehouseCorruptError(
            f"NEXCART_WAREHOUSE names {path}, which is not a DuckDB database (nor a file named *.duckdb): "
            "check the setting. Nothing was changed, and a run will not write over it."
        )
    try:
        con = duckdb.connect(str(path), read_only=True, config=duckdb_config())
    except duckdb.Error as exc:
        if not _is_lock_conflict(exc):
            raise WarehouseCorruptError(rebuild_advice(path, str(exc).splitlines()[0])) from exc
        con = connect_with_retry(path, read_only=True)
    try:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database()"
        ).fetchall()
        for schema, table in tables:
            # hash(t) reads every column of the row, so every data block is read and verified
            con.execute(f"select count(*) from {_quoted(schema)}.{_quoted(table)} as t where hash(t) is not null").fetchall()
    except duckdb.Error as exc:
        raise WarehouseCorruptError(rebuild_advice(path, str(exc).splitlines()[0])) from exc
    finally:
        con.close()
