"""The one Definitions object of the code location: assets, checks, jobs, schedules, sensors
and resources."""

from dagster import AssetKey, Definitions, in_process_executor

from orchestration.assets.dbt import dbt_asset_defs, dbt_monthly_marts
from orchestration.assets.raw import raw_assets
from orchestration.assets.reports import report_assets
from orchestration.dbt_project import DBT_EXECUTABLE, DBT_PIPELINE_TARGET, NexcartDbtCliResource, nexcart_dbt_project
from orchestration.freshness import build_freshness
from orchestration.quality import quality_checks
from orchestration.resources import WarehouseResource
from orchestration.schedules import monthly_refresh_job, monthly_refresh_schedule
from orchestration.sensors import quality_docs_sensors, raw_files_sensor, run_failure_log
from orchestration.settings import load_settings

monthly_mart_keys: list[AssetKey] = list(dbt_monthly_marts.keys)
freshness_checks, freshness_sensor = build_freshness(monthly_mart_keys)


def build_definitions() -> Definitions:
    settings = load_settings()
    return Definitions(
        assets=[*raw_assets, *dbt_asset_defs, *report_assets],
        asset_checks=[*quality_checks, *freshness_checks],
        jobs=[monthly_refresh_job],
        schedules=[monthly_refresh_schedule],
        sensors=[raw_files_sensor, run_failure_log, *quality_docs_sensors, freshness_sensor],
        resources={
            "warehouse": WarehouseResource(path=str(settings.warehouse)),
            "dbt": NexcartDbtCliResource(project_dir=nexcart_dbt_project, dbt_executable=DBT_EXECUTABLE,
                                         target=DBT_PIPELINE_TARGET),
        },
        # Steps of a run write one DuckDB file, so they run one after another in one process.
        executor=in_process_executor,
    )


defs = build_definitions()
