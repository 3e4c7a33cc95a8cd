"""The warehouse resource: one DuckDB file, opened per step and always closed.

DuckDB allows one writing process per file; every asset that writes also runs in the
'warehouse' pool (limit 1 in dagster_home/dagster.yaml), and a connection that meets a lock held
by another process retries with backoff instead of failing at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster import ConfigurableResource

WAREHOUSE_POOL = "warehouse"


class WarehouseLockedError(RuntimeError):
    """Another process holds the warehouse file for longer than we are willing to wait."""


def connect_with_retry(path: Path, read_only: bool = False, attempts: int = 8, first_wait: float = 0.5):
    """Open the DuckDB file; if another process holds its lock, wait and retry (0.5 s, 1 s, 2 s, ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wait = first_wait
    for attempt in range(1, attempts + 1):
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or attempt == attempts:
                if "lock" in str(exc).lower():
                    raise WarehouseLockedError(
                        f"The warehouse {path} is locked by another process (after {attempts} tries): "
                        "close any DuckDB session writing to it (or a read-only one: it blocks writers "
                        "too) and run again."
                    ) from exc
                raise
            time.sleep(wait)
            wait = min(wait * 2, 10.0)
    raise AssertionError("unreachable")


class WarehouseResource(ConfigurableResource):
    """The DuckDB warehouse file (NEXCART_WAREHOUSE)."""

    path: str

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect_with_retry(Path(self.path), read_only=read_only)
        try:
            yield con
        finally:
            con.close()
