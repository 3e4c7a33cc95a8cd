"""The one Definitions object of the code location: assets, resources (and, as they come,
checks, schedules and sensors)."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from orchestration.assets.dbt import dbt_asset_defs
from orchestration.assets.raw import raw_assets
from orchestration.assets.reports import report_assets
from orchestration.dbt_project import DBT_EXECUTABLE, nexcart_dbt_project
from orchestration.resources import WarehouseResource
from orchestration.settings import load_settings
from dagster_dbt import DbtCliResource


def build_definitions() -> Definitions:
    settings = load_settings()
    return Definitions(
        assets=[*raw_assets, *dbt_asset_defs, *report_assets],
        resources={
            "warehouse": WarehouseResource(path=str(settings.warehouse)),
            "dbt": DbtCliResource(project_dir=nexcart_dbt_project, dbt_executable=DBT_EXECUTABLE),
        },
        # Steps of a run write one DuckDB file, so they run one after another in one process.
        executor=in_process_executor,
    )


defs = build_definitions()
