"""The raw data contract (v1) as data: which tables exist, their columns, keys and file layout.

The ingest, the sample-data generator and the tests read the contract from here, so there is one
place that says what a retailer's export must look like (docs/raw-data-contract.md explains it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A monthly drop is named after its month; anything else in a monthly folder is refused.
# \Z, not $: `$` also matches before a final newline, so '2024-01.csv\n' would pass as January.
MONTH_FILE_RE = re.compile(r"^(?P<month>\d{4}-(0[1-9]|1[0-2]))\.csv(\.gz)?\Z")
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])\Z")


@dataclass(frozen=True)
class RawTable:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    required_columns: tuple[str, ...]
    monthly: bool  # monthly drop (partitioned) or reference snapshot
    required: bool  # a monthly drop that must be present for every month

    @property
    def location(self) -> str:
        """Where the table's files live under the raw root."""
        return f"{self.name}/YYYY-MM.csv" if self.monthly else f"{self.name}.csv"


TABLES: dict[str, RawTable] = {
    t.name: t
    for t in (
        RawTable(
            name="orders",
            columns=(
                "order_id", "customer_id", "channel_id", "order_ts", "status", "currency",
                "ship_city", "ship_region", "ship_country", "shipping_amount",
            ),
            key=("order_id",),
            required_columns=("order_id", "order_ts"),
            monthly=True,
            required=True,
        ),
        RawTable(
            name="order_items",
            columns=("order_id", "line_number", "product_id", "quantity", "unit_price", "discount_amount"),
            key=("order_id", "line_number"),
            required_columns=("order_id", "line_number", "product_id", "quantity", "unit_price"),
            monthly=True,
            required=True,
        ),
        RawTable(
            name="transactions",
            columns=(
                "transaction_id", "order_id", "transaction_ts", "kind", "payment_method",
                "status", "amount", "currency",
            ),
            key=("transaction_id",),
            required_columns=("transaction_id", "order_id", "transaction_ts"),
            monthly=True,
            required=False,
        ),
        RawTable(
            name="inventory_snapshots",
            columns=("snapshot_date", "product_id", "warehouse_id", "on_hand_qty", "reserved_qty", "reorder_point"),
            key=("snapshot_date", "product_id", "warehouse_id"),
            required_columns=("snapshot_date", "product_id", "warehouse_id"),
            monthly=True,
            required=False,
        ),
        RawTable(
            name="customers",
            columns=(
                "customer_id", "email", "phone", "first_name", "last_name", "city", "region",
                "country", "signup_date",
            ),
            key=("customer_id",),
            required_columns=("customer_id",),
            monthly=False,
            required=False,
        ),
        RawTable(
            name="products",
            columns=("product_id", "product_name", "category", "brand", "unit_cost", "list_price"),
            key=("product_id",),
            required_columns=("product_id",),
            monthly=False,
            required=False,
        ),
        RawTable(
            name="channels",
            columns=("channel_id", "channel_name", "channel_type"),
            key=("channel_id",),
            required_columns=("channel_id",),
            monthly=False,
            required=False,
        ),
        RawTable(
            name="warehouses",
            columns=("warehouse_id", "warehouse_name", "region", "country"),
            key=("warehouse_id",),
            required_columns=("warehouse_id",),
            monthly=False,
            required=False,
        ),
    )
}

MONTHLY_TABLES = tuple(t.name for t in TABLES.values() if t.monthly)
REFERENCE_TABLES = tuple(t.name for t in TABLES.values() if not t.monthly)

# Lineage columns every raw table carries after the contract's columns.
LINEAGE_COLUMNS = ("_extra", "_source_file", "_source_line", "_month", "_loaded_at")
