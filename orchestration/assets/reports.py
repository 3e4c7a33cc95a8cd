"""The monthly business report as an asset: reports/monthly_report writes data/reports/YYYY-MM.html
for each month it is run for (earlier months stay), then rewrites data/reports/index.html.

The reports folder is reports/ under the output root (NEXCART_OUTPUT_DIR, default data/). A month
held back by a failed error gate gets its report too, with a banner saying so. The report reads the marts through one
read-only DuckDB connection that is closed before the HTML is written; it still runs in the
'warehouse' pool, since even a read-only connection blocks a writer of the file.
"""

from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    MonthlyPartitionsDefinition,
    asset,
)

from orchestration.partitions import monthly_partitions
from orchestration.quality.gx_project import QualityPaths
from orchestration.quality.holds import failed_gate_months, held_metadata, hold_back_failed_months
from orchestration.reporting import render_index, render_month_report
from orchestration.reporting.data import MARTS
from orchestration.reporting.render import MAX_REPORT_BYTES
from orchestration.resources import WAREHOUSE_POOL, WarehouseResource
from orchestration.settings import load_settings

REPORT_MARTS = list(MARTS)  # monthly_revenue, ..., cohort_retention (the marts the report reads)




def build_monthly_report(partitions_def: MonthlyPartitionsDefinition = monthly_partitions) -> AssetsDefinition:
    """The reports/monthly_report asset over the given monthly partitions (the project's by default).

    A run over a range of months (a backfill runs as one) renders each month, with each month's
    report link and KPI table as the metadata of its own partition.
    """

    @asset(
        key=AssetKey(["reports", "monthly_report"]),
        group_name="reports",
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[AssetKey(["marts", name]) for name in REPORT_MARTS],
        pool=WAREHOUSE_POOL,
        kinds={"html"},
        description=(
            "The monthly business report: an offline HTML page per month (data/reports/YYYY-MM.html) "
            "with the KPI header, revenue trend, channels, products, geography, inventory, payments, "
            "customer segments, cohorts and data quality; plus data/reports/index.html."
        ),
    )
    def monthly_report(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        settings = load_settings()
        out_dir = settings.reports_dir
        docs = QualityPaths.from_settings().site_dir / "index.html"
        held = hold_back_failed_months(context, warehouse)
        notices = _held_notices(context, warehouse, held)
        months = sorted(context.partition_keys)
        per_month: dict[str, dict[str, MetadataValue]] = {}
        for month in months:
            # the run's own build of the warehouse: this run's marts (a held month: as last published)
            result = render_month_report(warehouse.database, month, out_dir, currency=settings.currency,
                                         quality_docs=docs, notice=notices.get(month))
            hidden = sorted(k for k, shown in result.sections.items() if not shown)
            context.log.info(f"Report {month}: {result.path} ({result.size_bytes:,} bytes)"
                             + (f"; hidden sections: {', '.join(hidden)}" if hidden else ""))
            if result.size_bytes > MAX_REPORT_BYTES:
                context.log.warning(f"Report {month} is {result.size_bytes:,} bytes, over the 1 MB target.")
            per_month[month] = {
                "report": MetadataValue.path(str(result.path)),
                "report_url": MetadataValue.url(result.path.resolve().as_uri()),
                "kpis": MetadataValue.md(result.kpi_markdown()),
                "size_bytes": MetadataValue.int(result.size_bytes),
                "hidden_sections": MetadataValue.text(", ".join(hidden) or "none"),
            }
        index = render_index(out_dir)
        common = {"index": MetadataValue.path(str(index)), "index_url": MetadataValue.url(index.resolve().as_uri())}
        held_md = held_metadata(held) if held else {}
        if len(months) == 1:
            return MaterializeResult(metadata={**per_month[months[0]], **common, **held_md})
        for month, meta in per_month.items():  # each month's report link and KPIs on its own partition
            context.add_asset_metadata(meta, partition_key=month)
        return MaterializeResult(metadata={**common, **held_md, "months": MetadataValue.int(len(months))})

    return monthly_report


def _held_notices(context: AssetExecutionContext, warehouse: WarehouseResource, held: list[str]) -> dict[str, str]:
    """The banner of each held-back month's report: which gates held it, and whether the figures
    shown are its last published ones or there are none yet."""
    if not held:
        return {}
    failed = failed_gate_months(context.instance, context.run.run_id)
    with warehouse.connect(read_only=True) as con:
        published = {month for (month,) in con.execute(
            "select strftime(month, '%Y-%m') from marts.monthly_revenue where strftime(month, '%Y-%m') in "
            "(select unnest(?::varchar[]))", [held]).fetchall()}
    return {
        month: (f"Held back: the latest delivery of {month} failed an error-level quality gate "
                f"({', '.join(sorted(set(failed.get(month, []))))}). "
                + ("These are the month's last published figures. " if month in published
                   else "Nothing of this month has been published yet. ")
                + "See the data-quality docs for what failed.")
        for month in held
    }


monthly_report = build_monthly_report()
report_assets = [monthly_report]
