"""DuckDB's memory limit (NEXCART_DUCKDB_MEMORY_LIMIT): every connection the project opens and
every dbt connection gets it, and past it DuckDB spills to disk instead of failing or growing."""

import os
import re
import subprocess

import duckdb

from orchestration.settings import DEFAULT_DUCKDB_MEMORY_LIMIT, load_settings
from tests.conftest import PROJECT_ROOT


def _as_duckdb_shows(limit: str) -> str:
    """current_setting('memory_limit') as DuckDB prints it for a limit set by hand (e.g. '286.1 MiB')."""
    con = duckdb.connect()
    try:
        con.execute(f"set memory_limit = '{limit}'")
        return con.execute("select current_setting('memory_limit')").fetchone()[0]
    finally:
        con.close()


def test_a_hand_run_dbt_has_the_same_default_as_the_pipeline():
    profile = (PROJECT_ROOT / "dbt_project" / "profiles.yml").read_text()
    defaults = re.findall(r"memory_limit: .*NEXCART_DUCKDB_MEMORY_LIMIT.* or '([^']+)'", profile)
    assert defaults == [DEFAULT_DUCKDB_MEMORY_LIMIT] * 2  # dev and pipeline targets


def test_our_connections_have_the_limit(tmp_path, monkeypatch):
    from orchestration.resources import WarehouseResource, connect_with_retry

    monkeypatch.setenv("NEXCART_DUCKDB_MEMORY_LIMIT", "300MB")
    con = connect_with_retry(tmp_path / "w.duckdb")
    try:
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] == _as_duckdb_shows("300MB")
    finally:
        con.close()
    monkeypatch.delenv("NEXCART_DUCKDB_MEMORY_LIMIT")
    assert load_settings().duckdb_memory_limit == DEFAULT_DUCKDB_MEMORY_LIMIT
    # the pipeline's dbt steps: the setting reaches dbt's profile through the environment
    with WarehouseResource(path=str(tmp_path / "w.duckdb")).dbt_environment():
        assert os.environ["NEXCART_DUCKDB_MEMORY_LIMIT"] == DEFAULT_DUCKDB_MEMORY_LIMIT
    assert "NEXCART_DUCKDB_MEMORY_LIMIT" not in os.environ


def test_dbt_connections_have_the_limit(tmp_path):
    from orchestration.dbt_project import DBT_EXECUTABLE

    env = {**os.environ, "NEXCART_WAREHOUSE": str(tmp_path / "w.duckdb"), "NEXCART_DUCKDB_MEMORY_LIMIT": "300MB",
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    completed = subprocess.run(
        [DBT_EXECUTABLE, "show", "--inline", "select current_setting('memory_limit') as memory_limit",
         "--target", "pipeline", "--profiles-dir", ".", "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs")],
        cwd=PROJECT_ROOT / "dbt_project", env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-2000:]
    assert _as_duckdb_shows("300MB") in completed.stdout


def test_past_the_limit_duckdb_spills_to_disk_and_finishes(tmp_path, monkeypatch):
    """An aggregation whose hash table is several times the limit: with no room to spill it runs
    out of memory, so the limit binds; with the folder beside the database file to spill to (the
    default) it finishes, right."""
    import pytest

    from orchestration.resources import connect_with_retry

    query = ("select count(*) from (select distinct (i * 7919) % 20000000 as k "
             "from range(20000000) t(i))")
    monkeypatch.setenv("NEXCART_DUCKDB_MEMORY_LIMIT", "64MB")
    for name, room in (("nowhere", "0KB"), ("spill", None)):
        con = connect_with_retry(tmp_path / f"{name}.duckdb")
        try:
            con.execute("set threads = 1")
            if room is not None:
                con.execute(f"set max_temp_directory_size = '{room}'")
                with pytest.raises(duckdb.OutOfMemoryException):
                    con.execute(query).fetchone()
            else:
                assert con.execute("select current_setting('temp_directory')").fetchone()[0] == \
                    str(tmp_path / "spill.duckdb.tmp")
                assert con.execute(query).fetchone()[0] == 20_000_000
        finally:
            con.close()
