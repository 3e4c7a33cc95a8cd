"""Shared test helpers: run the real `nexcart` command against a temp raw root and warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def write_csv(path: Path, header: str, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


class Pipeline:
    """A raw root, a warehouse and a Dagster home in a temp dir, and the CLI to run on them."""

    def __init__(self, root: Path):
        self.root = root
        self.raw = root / "raw"
        self.warehouse = root / "warehouse" / "nexcart.duckdb"
        self.dagster_home = root / "dagster_home"
        self.raw.mkdir(parents=True, exist_ok=True)
        self.dagster_home.mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "NEXCART_DATA_DIR": str(self.raw),
            "NEXCART_WAREHOUSE": str(self.warehouse),
            "NEXCART_OUTPUT_DIR": str(self.root),
            "DAGSTER_HOME": str(self.dagster_home),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }

    def nexcart(self, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
        completed = subprocess.run(
            [sys.executable, "-m", "orchestration.cli", *args],
            cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
        )
        if check and completed.returncode != 0:
            raise AssertionError(f"nexcart {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}")
        return completed

    def query(self, sql: str) -> list[tuple]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


# Fixtures that build a warehouse with the whole pipeline (`nexcart run`, `dbt build` or
# `dagster dev`). A test that uses one is a `pipeline` test without saying so: `make test-fast`
# (the edit-test loop) leaves out the tests marked `pipeline` and `browser` (headless Chromium).
# The module-scoped ones are shared by their file's tests, so those tests go to one pytest-xdist
# worker together (--dist loadgroup), and the warehouse is built once; every other test goes to
# whichever worker is free, which keeps the two workers busy to the end.
PIPELINE_FIXTURES = {
    "built",    # test_marts.py
    "bad_run",  # test_bad_input.py
    "history",  # test_operations.py
    "exports",  # test_real_exports.py
    "ui",       # test_webserver.py
}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        used = sorted(PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ())))
        if not used:
            continue
        item.add_marker(pytest.mark.pipeline)
        shared = [name for name in used if fixtures and fixtures.name2fixturedefs[name][-1].scope != "function"]
        if shared:
            item.add_marker(pytest.mark.xdist_group(f"{item.module.__name__}:{shared[0]}"))


@pytest.fixture(autouse=True)
def output_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In-process code writes its logs, docs and reports under the test's own folder, never into
    the project's data/ (a test may point NEXCART_OUTPUT_DIR elsewhere itself)."""
    monkeypatch.setenv("NEXCART_OUTPUT_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline(tmp_path)


@pytest.fixture
def con(tmp_path: Path):
    """A new warehouse file with the raw schema, for ingest-level tests."""
    from orchestration.ingest import ensure_raw_schema

    connection = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_raw_schema(connection)
    yield connection
    connection.close()

