"""Reading the marts for one month's report, through one read-only DuckDB connection.

DuckDB lets one process write a file at a time, and a read-only connection still holds a lock
that blocks writers, so the connection is opened for the duration of the reads and closed
before any HTML is written (see `open_warehouse`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from orchestration.resources import connect_with_retry

# The marts the report reads (all in schema `marts`), by the columns it relies on. The
# scorecard and issue summary are optional: shown when present.
MARTS: dict[str, tuple[str, ...]] = {
    "monthly_revenue": ("month", "orders", "units", "gross_revenue", "discounts", "refunds",
                        "net_revenue", "aov", "cogs", "gross_margin", "new_customers",
                        "returning_customers", "mom_growth", "yoy_growth", "flagged_revenue",
                        "flagged_revenue_share", "data_delivered"),
    "monthly_channel_performance": ("month", "channel_id", "channel_name", "orders", "gross_revenue",
                                    "revenue_share"),
    "monthly_top_products": ("month", "rank", "product_id", "product_name", "category", "units",
                             "gross_revenue"),
    "monthly_geo_sales": ("month", "country", "region", "orders", "customers", "gross_revenue"),
    "monthly_category_region_rank": ("month", "country", "region", "category", "gross_revenue", "rank"),
    "monthly_payment_methods": ("month", "payment_method", "payments", "succeeded_amount",
                                "amount_share", "failed", "failure_rate", "refunds", "chargebacks"),
    "monthly_inventory": ("month", "product_id", "warehouse_id", "month_end_on_hand", "avg_on_hand",
                          "stockout_days", "units_sold", "days_of_supply", "below_reorder_point"),
    "daily_revenue": ("date", "orders", "gross_revenue", "revenue_7d_avg"),
    "customer_rfm": ("month", "customer_id", "recency_days", "frequency", "monetary", "r_score",
                     "f_score", "m_score", "segment"),
    "cohort_retention": ("cohort_month", "months_since_first", "customers", "retention_rate"),
}
OPTIONAL_MARTS = ("data_quality_scorecard", "data_quality_issues")


@contextmanager
def open_warehouse(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse file, always closed (retries while it is locked)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No warehouse at {path}: run the pipeline (nexcart run) first.")
    con = connect_with_retry(path, read_only=True)
    try:
        yield con
    finally:
        con.close()


class MartReader:
    """Small helpers over the connection: which tables exist, rows as dicts."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.tables: dict[str, set[str]] = {}
        for schema, table, column in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns"
        ).fetchall():
            self.tables.setdefault(f"{schema}.{table}", set()).add(column)

    def has(self, table: str, schema: str = "marts") -> bool:
        return f"{schema}.{table}" in self.tables

    def columns(self, table: str, schema: str = "marts") -> set[str]:
        return self.tables.get(f"{schema}.{table}", set())

    def rows(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def mart(self, table: str, where: str = "true", params: tuple[Any, ...] = (),
             order_by: str | None = None) -> list[dict[str, Any]]:
        """Rows of marts.<table> (empty when the table does not exist)."""
        if not self.has(table):
            return []
        sql = f"select * from marts.{table} where {where}"
        if order_by:
            sql += f" order by {order_by}"
        return self.rows(sql, params)
