"""Ingest assets, group `raw`: one asset per contract table, raw/<table> in the UI.

Monthly drops are partitioned by month (a backfill of many months runs as one step); reference
snapshots are not partitioned. The loading itself lives in orchestration/ingest.py.
"""

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from orchestration.contract import TABLES, RawTable
from orchestration.ingest import (
    FAILED,
    IngestError,
    IngestResult,
    ensure_raw_schema,
    ingest_month,
    ingest_reference,
    log_ingest,
)
from orchestration.partitions import monthly_partitions
from orchestration.resources import WAREHOUSE_POOL, WarehouseResource
from orchestration.settings import load_settings

def _metadata(results: list[IngestResult]) -> dict:
    return {
        "rows_loaded": MetadataValue.int(sum(r.rows_loaded for r in results)),
        "rows_quarantined": MetadataValue.int(sum(r.lines_rejected for r in results)),
        "files": MetadataValue.md(
            "| month | file | sha256 | rows | quarantined | extra columns |\n|---|---|---|---|---|---|\n"
            + "\n".join(
                f"| {r.month or '-'} | {r.source_file or '(none)'} | {(r.checksum or '-')[:16]} | "
                f"{r.rows_loaded} | {r.lines_rejected} | {', '.join(r.extra_columns) or '-'} |"
                for r in results
            )
        ),
        "notes": MetadataValue.text("; ".join(n for r in results for n in r.notes) or "none"),
        # month -> why its file could not be loaded (the month is held back; `nexcart run` prints it)
        "failed_ingest": MetadataValue.json({r.month: r.failed for r in results if r.failed}),
    }

def build_raw_asset(table: RawTable) -> AssetsDefinition:
    @asset(
        key=["raw", table.name],
        group_name="raw",
        partitions_def=monthly_partitions if table.monthly else None,
        backfill_policy=BackfillPolicy.single_run() if table.monthly else None,
        pool=WAREHOUSE_POOL,
        kinds={"duckdb", "csv"},
        description=f"{table.name} as delivered ({table.location} under the raw root), every column as "
        f"text plus lineage; unreadable lines in raw.{table.name}_rejected_lines.",
        metadata={"table": f"raw.{table.name}", "key": ", ".join(table.key)},
    )
    def _raw_asset(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        data_dir = load_settings().data_dir
        results: list[IngestResult] = []
        with warehouse.connect() as con:
            ensure_raw_schema(con)
            if table.monthly:
                for month in context.partition_keys:
                    try:
                        results.append(ingest_month(con, table, data_dir, month))
                    except IngestError as exc:
                        # A broken or missing file is a failure of its month, not of the run: the
                        # month keeps its previous raw content, and the raw gate's "file loaded"
                        # check (expectations/raw.yml) holds it back; the other months go on.
                        log_ingest(con, table, month, FAILED, message=str(exc))
                        results.append(IngestResult(table.name, month, None, failed=str(exc)))
                        context.log.warning(f"{table.name} {month}: not loaded: {exc}")
                        continue
                    context.log.info(_describe(results[-1]))
            else:
                results.append(ingest_reference(con, table, data_dir))
                context.log.info(_describe(results[-1]))
        return MaterializeResult(metadata=_metadata(results))

    return _raw_asset

def _describe(result: IngestResult) -> str:
    where = f"{result.table} {result.month or ''}".strip()
    if result.source_file is None:
        return f"{where}: {'; '.join(result.notes)}"
    return f"{where}: {result.rows_loaded} rows loaded, {result.lines_rejected} lines quarantined from {result.source_file}"

raw_assets = [build_raw_asset(t) for t in TABLES.values()]
