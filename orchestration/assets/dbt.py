"""The dbt models as Dagster assets: staging, clean, quality and marts, keyed <schema>/<model>
(marts/monthly_revenue is dbt_project/models/marts/monthly_revenue.sql); dbt tests become
asset checks.

Models tagged `monthly` are partitioned by month, and a backfill of any month range runs as one
dbt invocation with the range passed as the month window (macro run_window). Untagged models are split by
where they sit in the graph, so the run order is always raw -> dbt_reference -> dbt_monthly_clean ->
dbt_monthly_marts -> dbt_summary and no step waits on itself.
"""

import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, MetadataValue, Output
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.dbt_project import ensure_manifest, nexcart_dbt_project
from orchestration.partitions import monthly_partitions
from orchestration.quality.holds import held_metadata, hold_back_failed_months
from orchestration.resources import WAREHOUSE_POOL, WarehouseResource
from orchestration.settings import DBT_TARGET_DIR

MONTHLY_TAG = "tag:monthly"
# Run tag: dbt rebuilds its tables from scratch (`nexcart run --full-refresh`, or added to a run in
# the UI, over every month: a monthly table keeps only the months of the run).
FULL_REFRESH_TAG = "nexcart/full-refresh"
DBT_MANIFEST = ensure_manifest()
PARTIAL_PARSE_FILE = "partial_parse.msgpack"  # dbt's name for its saved parse
SAVED_PARSE_DIR = DBT_TARGET_DIR / "saved_parse"  # _saved_parse: one per dbt profile
SAVED_PARSES_KEPT = 8

class NexcartDbtTranslator(DagsterDbtTranslator):
    """Assets named and grouped by their warehouse schema, as the newcomer finds them on disk."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props.get("schema")

translator = NexcartDbtTranslator(settings=DagsterDbtTranslatorSettings(
    enable_asset_checks=True,
    # raw.<table> and raw.<table>_rejected_lines are both written by the asset raw/<table>
    enable_duplicate_source_asset_keys=True,
))

def _relation(props: Mapping[str, Any]) -> str:
    return f"{props['schema']}.{props['alias'] or props['name']}"


@cache
def _model_relations() -> dict[AssetKey, str]:
    """Each model's asset key -> its table or view (read once from the manifest, not per step)."""
    manifest = json.loads(DBT_MANIFEST.read_text())
    return {translator.get_asset_key(node): _relation(node)
            for node in manifest["nodes"].values() if node["resource_type"] == "model"}

def _window_environment(window: tuple[str, str] | None, held: list[str]) -> dict[str, str]:
    """The month window of a dbt invocation (macro run_window in dbt_project/macros/months.sql), as
    environment variables rather than --vars: dbt parses the whole project again whenever --vars
    change, and they would change every run. Always all three, so nothing from the shell leaks in."""
    first, last = window or ("", "")
    return {"NEXCART_DBT_START_MONTH": first, "NEXCART_DBT_END_MONTH": last,
            "NEXCART_DBT_HELD_BACK_MONTHS": ",".join(held)}


def _saved_parse(warehouse: WarehouseResource) -> Path:
    """Where the newest parse of dbt for this warehouse is kept between invocations. dbt parses
    the whole project again (~3 s) when the profile it renders changes (the build file's path, the
    memory limit): one saved parse per profile, so runs on other warehouses (another shop, the
    tests, the bench) do not undo each other's."""
    profile = json.dumps(warehouse.dbt_profile_values(), sort_keys=True)
    return SAVED_PARSE_DIR / f"{hashlib.sha256(profile.encode()).hexdigest()[:16]}.msgpack"


def _seed_partial_parse(invocation_target: Path, saved: Path) -> None:
    """dagster-dbt gives every invocation a fresh target folder; the saved parse for this profile
    goes in first, so dbt parses only what changed (dagster-dbt copies its own only when there is
    none)."""
    if saved.is_file():
        invocation_target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved, invocation_target / PARTIAL_PARSE_FILE)


def _keep_partial_parse(invocation_target: Path, saved: Path) -> None:
    """Keep the invocation's parse for the next one (the next step of the run, the next run), and
    only the newest SAVED_PARSES_KEPT profiles' (~1.3 MB each)."""
    parsed = invocation_target / PARTIAL_PARSE_FILE
    if not parsed.is_file():
        return
    saved.parent.mkdir(parents=True, exist_ok=True)
    scratch = saved.with_name(f".{saved.name}.{os.getpid()}")
    shutil.copyfile(parsed, scratch)
    os.replace(scratch, saved)  # readers see the old file or the new one, never half of one
    kept = sorted(saved.parent.glob("*.msgpack"), key=lambda f: f.stat().st_mtime, reverse=True)
    for old in kept[SAVED_PARSES_KEPT:]:
        old.unlink(missing_ok=True)


def _run_dbt(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
             window: tuple[str, str] | None = None) -> Iterator[Any]:
    """Run `dbt build` for the selected models (monthly ones over the run's month window), then
    report each model's row count.

    Months whose upstream error gate failed in this run are held back (orchestration/quality/
    holds.py): dbt leaves them out, and the outputs name them. Row counts are read after dbt exits: DuckDB lets one process hold the file, and
    during the build that process is dbt.
    """
    held = hold_back_failed_months(context, warehouse)
    monthly = context.assets_def.partitions_def is not None
    # buildable: a test runs with the step that builds the last of its parents, and never
    # against a model another step has not built yet.
    args = ["build", "--indirect-selection", "buildable"]
    if context.run.tags.get(FULL_REFRESH_TAG) == "true":
        args.append("--full-refresh")  # every month of the run rebuilt from scratch
    saved_parse = _saved_parse(warehouse)
    # dagster-dbt's own folder for the invocation (<step>-<run>-<random>, as run_log.py prunes
    # them), asked for first so that the saved parse can go in before dbt starts
    target = dbt._get_unique_target_path(context=context)
    if not target.is_absolute():  # dbt's target-path, relative to the project
        target = Path(dbt.project_dir) / target
    _seed_partial_parse(target, saved_parse)
    with warehouse.dbt_environment(**_window_environment(window, held)):
        invocation = dbt.cli(args, context=context, target_path=target)
        events = list(invocation.stream())
    _keep_partial_parse(invocation.target_path, saved_parse)
    relations = _model_relations()
    with warehouse.connect(read_only=True) as con:
        for event in events:
            if isinstance(event, Output):
                key = context.asset_key_for_output(event.output_name)
                relation = relations.get(key)
                if relation:
                    rows = con.execute(f"select count(*) from {relation}").fetchone()[0]
                    event = event.with_metadata({**event.metadata, "dagster/row_count": MetadataValue.int(rows)})
                if monthly and held:
                    event = event.with_metadata({**event.metadata, **held_metadata(held)})
            yield event


@dbt_assets(
    manifest=DBT_MANIFEST,
    select="+" + MONTHLY_TAG,
    exclude=MONTHLY_TAG,
    name="dbt_reference",
    dagster_dbt_translator=translator,
    project=nexcart_dbt_project,
    pool=WAREHOUSE_POOL,
)
def dbt_reference(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Reference tables (customers, products, channels, warehouses) that the monthly models join."""
    yield from _run_dbt(context, dbt, warehouse)

def _monthly_dbt_assets(name: str, select: str, doc: str):
    """Monthly models of some layers, for the partition range of the run, in one dbt invocation."""

    @dbt_assets(
        manifest=DBT_MANIFEST,
        select=select,
        name=name,
        dagster_dbt_translator=translator,
        project=nexcart_dbt_project,
        partitions_def=monthly_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
    )
    def _assets(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
        first, last = context.partition_key_range.start, context.partition_key_range.end
        yield from _run_dbt(context, dbt, warehouse, (first, last))

    _assets.__doc__ = doc
    return _assets


# Two steps, not one: the clean layer's quality gates run between them, so a failed error gate
# on a clean table stops the marts of that month.
dbt_monthly_clean = _monthly_dbt_assets(
    "dbt_monthly_clean",
    f"{MONTHLY_TAG},path:models/staging {MONTHLY_TAG},path:models/clean",
    "Monthly staging views and clean tables, for the partition range of the run.",
)
dbt_monthly_marts = _monthly_dbt_assets(
    "dbt_monthly_marts",
    f"{MONTHLY_TAG},path:models/marts",
    "Monthly marts, for the partition range of the run.",
)


@dbt_assets(
    manifest=DBT_MANIFEST,
    exclude="+" + MONTHLY_TAG,
    name="dbt_summary",
    dagster_dbt_translator=translator,
    project=nexcart_dbt_project,
    pool=WAREHOUSE_POOL,
)
def dbt_summary(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Models over the whole history: quality tables, dimensions, cohorts."""
    yield from _run_dbt(context, dbt, warehouse)


dbt_asset_defs = [dbt_reference, dbt_monthly_clean, dbt_monthly_marts, dbt_summary]
