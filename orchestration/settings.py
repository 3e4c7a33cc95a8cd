"""Every setting of the pipeline, read from the environment, each with its default.

Paths are resolved against the project root (the folder holding pyproject.toml) when relative,
so the CLI, the Dagster UI, dbt and the tests agree on where the data is whatever the working
directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# dbt's target-path (dbt_project.yml); dagster-dbt gives each invocation a folder inside it
DBT_TARGET_DIR = DBT_PROJECT_DIR / "target"


def _path(env: str, default: str) -> Path:
    raw = os.environ.get(env, "").strip() or default
    path = Path(raw).expanduser()
    return path if path.is_absolute() else (PROJECT_ROOT / path)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    warehouse: Path
    currency: str
    timezone: str
    schedule_time: str  # HH:MM on the 1st of the month, store time zone
    freshness_day: int  # last month must be materialized by this day of the month
    output_dir: Path  # where runs write what people read: logs/, docs/, reports/
    keep_runs: int  # Dagster run history kept in DAGSTER_HOME (older runs and their event logs deleted)
    threshold_overrides: Path | None  # a shop's own values for some of expectations/thresholds.yml
    max_columns: int  # a raw file's header may name at most this many columns
    max_file_bytes: int  # a raw file may hold at most this many bytes once decompressed (.csv.gz expanded)
    max_line_bytes: int  # a longer line is quarantined (line_too_long); a longer header refuses the file
    max_gzip_ratio: int  # a .csv.gz expanding more than this many times its size (past 64 MiB) is a gzip bomb
    duckdb_memory_limit: str  # per DuckDB connection (ours and dbt's); past it DuckDB spills to disk

    @property
    def schedule_hour_minute(self) -> tuple[int, int]:
        hour, _, minute = self.schedule_time.partition(":")
        return int(hour), int(minute or 0)

    @property
    def logs_dir(self) -> Path:
        return self.output_dir / "logs"

    @property
    def docs_dir(self) -> Path:
        """The data-quality docs (index.html and GX's pages below gx/)."""
        return self.output_dir / "docs"

    @property
    def reports_dir(self) -> Path:
        return self.output_dir / "reports"

    @property
    def build_dir(self) -> Path:
        """The private build copy of the warehouse lives here, beside the published file."""
        return self.warehouse.parent / ".build"


def load_settings() -> Settings:
    """Read the settings now (not at import), so tests and the CLI can change the environment."""
    return Settings(
        data_dir=_path("NEXCART_DATA_DIR", "data/raw"),
        warehouse=_path("NEXCART_WAREHOUSE", "data/warehouse/nexcart.duckdb"),
        currency=(os.environ.get("NEXCART_CURRENCY", "").strip() or "USD").upper(),
        timezone=os.environ.get("NEXCART_TIMEZONE", "").strip() or "UTC",
        schedule_time=os.environ.get("NEXCART_SCHEDULE_TIME", "").strip() or "06:00",
        freshness_day=int(os.environ.get("NEXCART_FRESHNESS_DAY", "").strip() or 5),
        output_dir=_path("NEXCART_OUTPUT_DIR", "data"),
        keep_runs=int(os.environ.get("NEXCART_KEEP_RUNS", "").strip() or 10),
        threshold_overrides=_path("NEXCART_THRESHOLDS", "") if os.environ.get("NEXCART_THRESHOLDS", "").strip() else None,
        max_columns=int(os.environ.get("NEXCART_MAX_COLUMNS", "").strip() or 1000),
        max_file_bytes=int(os.environ.get("NEXCART_MAX_FILE_BYTES", "").strip() or 8 << 30),
        max_line_bytes=int(os.environ.get("NEXCART_MAX_LINE_BYTES", "").strip() or 16 << 20),
        max_gzip_ratio=int(os.environ.get("NEXCART_MAX_GZIP_RATIO", "").strip() or 200),
        duckdb_memory_limit=os.environ.get("NEXCART_DUCKDB_MEMORY_LIMIT", "").strip() or DEFAULT_DUCKDB_MEMORY_LIMIT,
    )


# DuckDB's own default is 80 % of the machine's RAM per connection: at 5M orders one dbt step held
# 19.8 of 24 GB. With a limit, joins, aggregations and sorts spill to a temporary folder beside the
# database file (<file>.tmp; `.tmp` in the working folder for an in-memory one) instead of growing.
# dbt_project/profiles.yml has the same default for a hand-run dbt (tests/test_settings.py keeps
# the two equal); the pipeline's dbt steps get the setting's value from the environment.
DEFAULT_DUCKDB_MEMORY_LIMIT = "1GB"


def duckdb_config(settings: Settings | None = None) -> dict[str, str]:
    """The config of every DuckDB connection the project opens (duckdb.connect(..., config=...))."""
    return {"memory_limit": (settings or load_settings()).duckdb_memory_limit}
