"""Quality gates: real Great Expectations on real DuckDB files, through real Dagster asset checks.

The small warehouse is written here with SQL (raw, clean and marts tables as docs/_interfaces.md
and the marts' contracts describe them, with staging views holding only what the clean gates
read: no row quarantined), so these tests do not depend on the dbt models: two months (2024-01,
2024-02) whose marts are derived from their clean layer and reconcile with it. Real dbt on real
exports: tests/test_real_exports.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    MonthlyPartitionsDefinition,
    asset,
    materialize,
)

from orchestration.ingest import ensure_raw_schema
from orchestration.quality import (
    GATE_CHECK_NAME,
    build_quality_checks,
    build_quality_docs,
    failed_gates_summary,
    load_config,
    validate_gate,
)
from orchestration.quality.docs import CDN_ASSETS, make_docs_server
from orchestration.quality.gx_project import QualityPaths
from orchestration.quality.holds import failed_gate_months
from orchestration.resources import WarehouseResource, restore_months

MONTHS = ("2024-01", "2024-02")

# ------------------------------------------------------------------------------- the warehouse

RAW_ORDERS = [  # order_id, customer_id, channel_id, order_ts, status, month
    ("O1", "C1", "W1", "2024-01-05 10:00:00", "paid", "2024-01"),
    ("O2", "C2", "W1", "2024-01-20 12:30:00", "completed", "2024-01"),
    ("O3", None, None, "2024-01-25 08:00:00", "cancelled", "2024-01"),
    ("O4", "C1", "W1", "2024-02-03 09:00:00", "delivered", "2024-02"),
    ("O5", "C3", "W1", "2024-02-14 18:00:00", "returned", "2024-02"),
]
RAW_ITEMS = [  # order_id, line_number, product_id, quantity, unit_price, discount, month
    ("O1", 1, "P1", 2, "10.00", "0", "2024-01"),
    ("O1", 2, "P2", 1, "4.00", "1.00", "2024-01"),
    ("O2", 1, "P1", 1, "10.00", "0", "2024-01"),
    ("O3", 1, "P2", 1, "4.00", "0", "2024-01"),
    ("O4", 1, "P1", 3, "10.00", "5.00", "2024-02"),
    ("O5", 1, "P2", 2, "4.00", "0", "2024-02"),
]
RAW_TRANSACTIONS = [  # id, order_id, ts, kind, method, status, amount, month
    ("T1", "O1", "2024-01-05 10:01:00", "payment", "credit_card", "succeeded", "23.00", "2024-01"),
    ("T2", "O2", "2024-01-20 12:31:00", "payment", "paypal", "succeeded", "10.00", "2024-01"),
    ("T3", "O2", "2024-01-20 12:30:30", "payment", "paypal", "failed", "10.00", "2024-01"),
    ("T4", "O4", "2024-02-03 09:01:00", "payment", "credit_card", "succeeded", "25.00", "2024-02"),
    ("T5", "O5", "2024-02-14 18:01:00", "payment", "paypal", "succeeded", "8.00", "2024-02"),
    ("T6", "O5", "2024-02-20 10:00:00", "refund", "paypal", "succeeded", "8.00", "2024-02"),
]
RAW_INVENTORY = [  # date, product, warehouse, on_hand, reserved, reorder, month
    ("2024-01-31", "P1", "WH1", 10, 0, 3, "2024-01"),
    ("2024-02-29", "P1", "WH1", 7, 1, 3, "2024-02"),
]


def _insert_raw(con, table: str, columns: list[str], rows: list[tuple], month_of) -> None:
    by_file: dict[str | None, int] = {}
    for row in rows:
        month = month_of(row)
        source = f"{table}/{month}.csv" if month else f"{table}.csv"
        line = by_file[source] = by_file.get(source, 1) + 1
        values = [None if v is None else str(v) for v in row[: len(columns)]]
        placeholders = ", ".join(["?"] * len(columns))
        con.execute(
            f"insert into raw.{table} ({', '.join(columns)}, _source_file, _source_line, _month, _loaded_at) "
            f"values ({placeholders}, ?, ?, ?, current_timestamp::timestamp)",
            [*values, source, line, month],
        )
    for source, last_line in by_file.items():
        month = source.split("/")[1][:7] if "/" in source else None
        con.execute("insert into raw._ingest_log (table_name, _month, source_file, checksum, rows_loaded, "
                    "lines_rejected, _loaded_at, outcome) values (?, ?, ?, 'sha', ?, 0, current_timestamp::timestamp, "
                    "'loaded')", [table, month, source, last_line - 1])


def build_small_warehouse(path: Path) -> Path:
    """Raw, clean and marts of two clean months, consistent with each other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        ensure_raw_schema(con)
        _insert_raw(con, "orders", ["order_id", "customer_id", "channel_id", "order_ts", "status"],
                    RAW_ORDERS, lambda r: r[-1])
        _insert_raw(con, "order_items",
                    ["order_id", "line_number", "product_id", "quantity", "unit_price", "discount_amount"],
                    RAW_ITEMS, lambda r: r[-1])
        _insert_raw(con, "transactions",
                    ["transaction_id", "order_id", "transaction_ts", "kind", "payment_method", "status", "amount"],
                    RAW_TRANSACTIONS, lambda r: r[-1])
        _insert_raw(con, "inventory_snapshots",
                    ["snapshot_date", "product_id", "warehouse_id", "on_hand_qty", "reserved_qty", "reorder_point"],
                    RAW_INVENTORY, lambda r: r[-1])
        _insert_raw(con, "customers", ["customer_id", "email", "country", "region"],
                    [("C1", "a@x.com", "FR", "IDF"), ("C2", "b@x.com", "FR", "ARA"), ("C3", "c@x.com", "DE", "BE")],
                    lambda r: None)
        _insert_raw(con, "products", ["product_id", "product_name", "category", "unit_cost", "list_price"],
                    [("P1", "Mug", "Kitchen", "5.00", "10.00"), ("P2", "Pen", "Office", "2.00", "4.00")],
                    lambda r: None)
        _insert_raw(con, "channels", ["channel_id", "channel_name", "channel_type"],
                    [("W1", "Web shop", "web")], lambda r: None)
        _insert_raw(con, "warehouses", ["warehouse_id", "warehouse_name"], [("WH1", "Lyon")], lambda r: None)

        con.execute(CLEAN_SQL)
        con.execute(MARTS_SQL)
    finally:
        con.close()
    return path


CLEAN_SQL = """
create schema clean;
create table clean.orders as
select order_id, customer_id, coalesce(channel_id, 'unknown') as channel_id,
       cast(order_ts as timestamp) as order_ts, cast(order_ts as date) as order_date,
       cast(date_trunc('month', cast(order_ts as timestamp)) as date) as order_month,
       status, 'USD' as currency, ship_city, ship_region, ship_country,
       cast(0 as decimal(18,4)) as shipping_amount, _month, _source_file, _source_line
from raw.orders;
create table clean.order_items as
select order_id, cast(line_number as integer) as line_number, product_id,
       cast(quantity as integer) as quantity, cast(unit_price as decimal(18,4)) as unit_price,
       cast(discount_amount as decimal(18,4)) as discount_amount,
       cast(cast(quantity as integer) * cast(unit_price as decimal(18,4)) - cast(discount_amount as decimal(18,4))
            as decimal(18,4)) as line_revenue,
       _month, _source_file, _source_line
from raw.order_items;
create table clean.transactions as
select transaction_id, order_id, cast(transaction_ts as timestamp) as transaction_ts,
       cast(transaction_ts as date) as transaction_date, kind, payment_method, status,
       cast(amount as decimal(18,4)) as amount, 'USD' as currency, _month, _source_file, _source_line
from raw.transactions;
create table clean.inventory_snapshots as
select cast(snapshot_date as date) as snapshot_date, product_id, warehouse_id,
       cast(on_hand_qty as integer) as on_hand_qty, cast(reserved_qty as integer) as reserved_qty,
       cast(reorder_point as integer) as reorder_point, _month, _source_file, _source_line
from raw.inventory_snapshots;
create table clean.customers as
select customer_id, email, phone, first_name, last_name, city, region, country,
       cast(signup_date as date) as signup_date, email like '%@%.%' as email_is_valid,
       cast(null as boolean) as phone_is_valid, _month, _source_file, _source_line
from raw.customers;
create table clean.products as
select product_id, product_name, category, brand, cast(unit_cost as decimal(18,4)) as unit_cost,
       cast(list_price as decimal(18,4)) as list_price, _month, _source_file, _source_line
from raw.products;
create table clean.channels as
select channel_id, channel_name, channel_type, _month, _source_file, _source_line from raw.channels
union all select 'unknown', 'Unknown', 'other', null, null, null;
create table clean.warehouses as
select warehouse_id, warehouse_name, region, country, _month, _source_file, _source_line from raw.warehouses;
create schema staging;
create view staging.stg_orders as
select _month, _source_file, _source_line, cast(null as varchar) as quarantine_reason,
       cast(null as varchar) as quarantine_column, cast(null as varchar) as raw_record from raw.orders;
create view staging.stg_order_items as
select _month, _source_file, _source_line, cast(null as varchar) as quarantine_reason,
       cast(null as varchar) as quarantine_column, cast(null as varchar) as raw_record from raw.order_items;
create view staging.stg_transactions as
select _month, _source_file, _source_line, cast(null as varchar) as quarantine_reason,
       cast(null as varchar) as quarantine_column, cast(null as varchar) as raw_record from raw.transactions;
create view staging.stg_inventory_snapshots as
select _month, _source_file, _source_line, cast(null as varchar) as quarantine_reason,
       cast(null as varchar) as quarantine_column, cast(null as varchar) as raw_record from raw.inventory_snapshots;
"""

MARTS_SQL = """
create schema marts;
create table marts.monthly_revenue as
with lines as (
    select o.order_month as month, o.order_id, o.customer_id, i.quantity, i.discount_amount, i.line_revenue
    from clean.orders o join clean.order_items i using (order_id) where o.status <> 'cancelled'
), sales as (
    select month, count(distinct order_id) as orders, sum(quantity) as units,
           sum(line_revenue) as gross, sum(discount_amount) as discounts
    from lines group by month
), refunds as (
    select cast(date_trunc('month', transaction_ts) as date) as month, sum(amount) as refunds
    from clean.transactions where kind in ('refund', 'chargeback') and status = 'succeeded' group by 1
)
select s.month, cast(s.orders as bigint) as orders, cast(s.units as bigint) as units,
       cast(round(s.gross, 2) as decimal(18,2)) as gross_revenue,
       cast(round(s.discounts, 2) as decimal(18,2)) as discounts,
       cast(round(coalesce(r.refunds, 0), 2) as decimal(18,2)) as refunds,
       cast(round(s.gross - coalesce(r.refunds, 0), 2) as decimal(18,2)) as net_revenue,
       cast(round(s.gross / s.orders, 2) as decimal(18,2)) as aov,
       cast(null as decimal(18,2)) as cogs, cast(null as decimal(18,2)) as gross_margin,
       cast(0 as bigint) as new_customers, cast(0 as bigint) as returning_customers,
       cast(null as double) as mom_growth, cast(null as double) as yoy_growth,
       cast(0 as decimal(18,2)) as flagged_revenue, cast(0 as double) as flagged_revenue_share,
       true as data_delivered
from sales s left join refunds r using (month);
create table marts.monthly_channel_performance as
with by_channel as (
    select o.order_month as month, o.channel_id, count(distinct o.order_id) as orders, sum(i.line_revenue) as gross
    from clean.orders o join clean.order_items i using (order_id) where o.status <> 'cancelled'
    group by 1, 2
)
select month, channel_id, channel_id as channel_name, cast(orders as bigint) as orders,
       cast(round(gross, 2) as decimal(18,2)) as gross_revenue,
       cast(gross as double) / sum(cast(gross as double)) over (partition by month) as revenue_share
from by_channel;
create table marts.monthly_payment_methods as
with p as (
    select cast(date_trunc('month', transaction_ts) as date) as month, payment_method,
           count(*) filter (where kind = 'payment') as payments,
           coalesce(sum(amount) filter (where kind = 'payment' and status = 'succeeded'), 0) as succeeded,
           count(*) filter (where kind = 'payment' and status = 'failed') as failed
    from clean.transactions group by 1, 2
)
select month, payment_method, cast(payments as bigint) as payments,
       cast(round(succeeded, 2) as decimal(18,2)) as succeeded_amount,
       cast(succeeded as double) / sum(cast(succeeded as double)) over (partition by month) as amount_share,
       cast(failed as bigint) as failed, cast(failed as double) / nullif(payments, 0) as failure_rate,
       cast(0 as decimal(18,2)) as refunds, cast(0 as decimal(18,2)) as chargebacks
from p;
create table marts.monthly_top_products as
select o.order_month as month, cast(row_number() over (partition by o.order_month order by sum(i.line_revenue) desc,
       i.product_id) as integer) as rank, i.product_id, i.product_id as product_name, 'x' as category,
       cast(sum(i.quantity) as bigint) as units, cast(round(sum(i.line_revenue), 2) as decimal(18,2)) as gross_revenue
from clean.orders o join clean.order_items i using (order_id) where o.status <> 'cancelled'
group by o.order_month, i.product_id;
create table marts.monthly_geo_sales as
select o.order_month as month, coalesce(c.country, 'Unknown') as country, coalesce(c.region, 'Unknown') as region,
       cast(count(distinct o.order_id) as bigint) as orders, cast(count(distinct o.customer_id) as bigint) as customers,
       cast(round(sum(i.line_revenue), 2) as decimal(18,2)) as gross_revenue
from clean.orders o join clean.order_items i using (order_id) left join clean.customers c using (customer_id)
where o.status <> 'cancelled' group by 1, 2, 3;
create table marts.customer_rfm as
select o.order_month as month, o.customer_id, cast(1 as integer) as recency_days, cast(1 as bigint) as frequency,
       cast(10 as decimal(18,2)) as monetary,
       cast(ntile(5) over (partition by o.order_month order by o.customer_id) as integer) as r_score,
       cast(3 as integer) as f_score, cast(3 as integer) as m_score, 'Loyal' as segment
from clean.orders o where o.customer_id is not null and o.status <> 'cancelled';
"""


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return build_small_warehouse(tmp_path / "warehouse" / "nexcart.duckdb")


def execute(warehouse: Path, sql: str) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(sql)
    finally:
        con.close()


# -------------------------------------------------------------- a graph shaped like the real one

PARTITIONS = MonthlyPartitionsDefinition(start_date="2024-01", fmt="%Y-%m", end_offset=0)
GRAPH = {  # asset -> upstream assets; stand-ins for the ingest and dbt assets, same keys
    "raw/orders": [],
    "raw/order_items": [],
    "clean/orders": ["raw/orders"],
    "clean/order_items": ["raw/order_items", "clean/orders"],
    "marts/monthly_revenue": ["clean/orders", "clean/order_items"],
    "marts/monthly_channel_performance": ["clean/orders", "clean/order_items"],
    "report/monthly_summary": ["marts/monthly_revenue"],  # downstream of the marts, not gated
}


def _stand_in(key: str, deps: list[str]):
    @asset(key=key.split("/"), deps=[AssetKey(d.split("/")) for d in deps], partitions_def=PARTITIONS,
           backfill_policy=BackfillPolicy.single_run())
    def _built(context) -> None:
        context.log.info(f"built {key} for {context.partition_keys}")

    return _built


@pytest.fixture(scope="module")
def graph():
    assets = [_stand_in(key, deps) for key, deps in GRAPH.items()]
    checks = build_quality_checks(assets)
    return assets, checks


def run_graph(graph, warehouse: Path, months: tuple[str, ...], instance: DagsterInstance | None = None):
    assets, checks = graph
    tags = ({"dagster/asset_partition_range_start": months[0], "dagster/asset_partition_range_end": months[-1]}
            if len(months) > 1 else {})
    return materialize(
        [*assets, *checks], instance=instance or DagsterInstance.ephemeral(), raise_on_error=False,
        resources={"warehouse": WarehouseResource(path=str(warehouse))},
        partition_key=months[0] if len(months) == 1 else None, tags=tags,
    )


def evaluations(result) -> dict[tuple[str, str | None], object]:
    return {(e.asset_key.to_user_string(), e.partition): e for e in result.get_asset_check_evaluations()}


def materialized(result) -> set[str]:
    return {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}


# ------------------------------------------------------------------------------------------ tests


def test_suites_load_and_every_expectation_is_a_gx_expectation():
    import great_expectations.expectations as gxe

    config = load_config()
    assert {g.layer for g in config.gates} == {"raw", "clean", "marts"}
    for gate in config.gates:
        for expectation in gate.expectations:
            assert expectation.severity in ("error", "warn")
            assert hasattr(gxe, expectation.gx_class_name), expectation.type
        for check in gate.sql_checks:
            assert check.severity in ("error", "warn") and (check.min is not None or check.max is not None)
    # thresholds come from thresholds.yml, not from code
    raw_orders = config.gate("raw.orders")
    share = next(c for c in raw_orders.sql_checks if c.name == "quarantined line share (error)")
    assert share.max == config.thresholds["raw"]["quarantined_share_error"]
    mostly = next(e for e in raw_orders.expectations if e.name.startswith("order_id is present (share"))
    assert mostly.kwargs["mostly"] == pytest.approx(1 - config.thresholds["raw"]["missing_key_share_error"])


def test_an_unknown_threshold_is_refused(tmp_path: Path):
    from orchestration.quality import QualityConfigError

    shutil.copy(Path(load_config().directory) / "thresholds.yml", tmp_path / "thresholds.yml")
    (tmp_path / "raw.yml").write_text(
        "layer: raw\ngates:\n  - table: orders\n    asset: raw/orders\n    relation: raw.orders\n"
        "    month_column: _month\n    expectations:\n      - type: expect_column_values_to_not_be_null\n"
        "        column: order_id\n        mostly: ${raw.no_such_threshold}\n        severity: error\n"
    )
    with pytest.raises(QualityConfigError, match="no_such_threshold"):
        load_config(tmp_path)


def test_a_clean_warehouse_passes_every_gate_of_every_month(warehouse: Path):
    for gate in load_config().gates:
        for month in (MONTHS if gate.partitioned else (None,)):
            result = validate_gate(warehouse, gate.id, month)
            assert result.status == "passed", (gate.id, month, [(o.name, o.summary()) for o in result.failed])
            assert result.outcomes


def test_gates_run_as_asset_checks_of_the_month_being_built(graph, warehouse: Path):
    result = run_graph(graph, warehouse, MONTHS)
    assert result.success
    found = evaluations(result)
    gated = [k for k in GRAPH if not k.startswith("report/")]
    for key in gated:
        for month in MONTHS:  # one evaluation per month of the range, each its own partition
            assert found[(key, month)].passed, (key, month)
            assert found[(key, month)].check_name == GATE_CHECK_NAME
            assert found[(key, month)].target_materialization_data is not None  # linked in the UI
    assert "report/monthly_summary" in materialized(result)
    checks = {spec.asset_key.to_user_string(): spec for c in graph[1] for spec in c.check_specs}
    assert checks["marts/monthly_revenue"].blocking
    assert checks["marts/monthly_revenue"].partitions_def == PARTITIONS


def test_an_error_gate_fails_its_month_names_the_expectation_and_blocks_downstream(graph, warehouse: Path):
    # the mart no longer reconciles with the clean layer in February
    execute(warehouse, "update marts.monthly_revenue set gross_revenue = gross_revenue + 0.01 "
                       "where month = date '2024-02-01'")

    february = run_graph(graph, warehouse, ("2024-02",))
    assert not february.success
    evaluation = evaluations(february)[("marts/monthly_revenue", "2024-02")]
    assert not evaluation.passed and evaluation.severity.value == "ERROR"
    failed = evaluation.metadata["failed_expectations"].value
    assert failed == ["gross_revenue reconciles with clean"]
    observed = evaluation.metadata["observed_values"].value["gross_revenue reconciles with clean"]
    assert observed["observed"] == pytest.approx(0.01)
    assert "clean_gross_revenue" in evaluation.metadata["example_rows"].value
    assert "report/monthly_summary" not in materialized(february)  # downstream of the failed gate
    summary = failed_gates_summary(february)
    assert summary and summary[0].startswith("ERROR marts/monthly_revenue 2024-02: gross_revenue reconciles")

    january = run_graph(graph, warehouse, ("2024-01",))  # the other month is not affected
    assert january.success and "report/monthly_summary" in materialized(january)


def test_in_a_range_run_a_failed_month_is_held_back_and_the_others_go_on(graph, warehouse: Path):
    """Dagster blocks whole steps: with two months in the step, February's failure must not stop
    January. The gate records it without blocking the step; the steps downstream hold it back."""
    execute(warehouse, "update marts.monthly_revenue set gross_revenue = gross_revenue + 0.01 "
                       "where month = date '2024-02-01'")
    instance = DagsterInstance.ephemeral()
    result = run_graph(graph, warehouse, MONTHS, instance)
    assert result.success and "report/monthly_summary" in materialized(result)
    found = evaluations(result)
    february = found[("marts/monthly_revenue", "2024-02")]
    assert not february.passed and february.severity.value == "ERROR" and not february.blocking
    assert found[("marts/monthly_revenue", "2024-01")].passed
    assert failed_gate_months(instance, result.run_id) == {"2024-02": ["marts/monthly_revenue"]}
    assert failed_gates_summary(result)[0].startswith("ERROR marts/monthly_revenue 2024-02")


def test_a_range_where_every_month_fails_blocks_the_step(graph, warehouse: Path):
    execute(warehouse, "update marts.monthly_revenue set gross_revenue = gross_revenue + 0.01")
    result = run_graph(graph, warehouse, MONTHS)
    assert not result.success and "report/monthly_summary" not in materialized(result)
    assert all(e.blocking for e in result.get_asset_check_evaluations()
               if e.asset_key.to_user_string() == "marts/monthly_revenue")


def test_a_held_month_is_put_back_as_published_in_every_layer(warehouse: Path, tmp_path: Path):
    build = tmp_path / "build" / "nexcart.duckdb"
    build.parent.mkdir()
    shutil.copyfile(warehouse, build)
    monthly = {"raw.orders": "_month = '2024-02'", "clean.order_items": "_month = '2024-02'",
               "marts.monthly_revenue": "month = date '2024-02-01'"}
    con = duckdb.connect(str(build))
    try:
        def state() -> dict:
            return {t: con.execute(f"select * from {t} where {w} order by all").fetchall() for t, w in monthly.items()}

        published_february = state()
        con.execute("delete from raw.orders where _month = '2024-02'")  # what a bad run did to February
        con.execute("update clean.order_items set quantity = 99 where _month = '2024-02'")
        con.execute("update marts.monthly_revenue set gross_revenue = 0")  # ... and to January
        restored = restore_months(con, warehouse, ["2024-02"])
        assert restored > 0 and state() == published_february
        # other months are left as the run made them
        assert con.execute("select gross_revenue from marts.monthly_revenue where month = date '2024-01-01'"
                           ).fetchone()[0] == 0
        assert con.execute("select count(*) from clean.customers").fetchone()[0] == 3  # reference untouched
        restore_months(con, tmp_path / "none.duckdb", ["2024-02"])  # nothing published: the month is emptied
        assert all(rows == [] for rows in state().values())
    finally:
        con.close()


def test_a_broken_clean_layer_stops_the_month_before_the_marts(graph, warehouse: Path):
    execute(warehouse, "insert into clean.orders select * from clean.orders where order_id = 'O4'")
    result = run_graph(graph, warehouse, ("2024-02",))
    evaluation = evaluations(result)[("clean/orders", "2024-02")]
    assert not evaluation.passed and evaluation.severity.value == "ERROR"
    assert "column_values_to_be_unique (order_id)" in evaluation.metadata["failed_expectations"].value
    assert "O4" in evaluation.metadata["example_rows"].value
    assert not {"marts/monthly_revenue", "report/monthly_summary"} & materialized(result)


def test_warn_level_failures_are_reported_but_do_not_block(graph, warehouse: Path):
    # an order line of an unknown order: the orphan rate is over its (warn) threshold
    execute(warehouse, "insert into clean.order_items select 'O9', 1, 'P1', 1, 10, 0, 10, '2024-02', "
                       "'order_items/2024-02.csv', 99")
    result = run_graph(graph, warehouse, ("2024-02",))
    assert result.success
    evaluation = evaluations(result)[("clean/order_items", "2024-02")]
    assert not evaluation.passed and evaluation.severity.value == "WARN"
    assert evaluation.metadata["failed_expectations"].value == ["orphan line rate (unknown order)"]
    assert "O9" in evaluation.metadata["example_rows"].value
    assert {"marts/monthly_revenue", "report/monthly_summary"} <= materialized(result)
    assert failed_gates_summary(result)[0].startswith("WARN clean/order_items 2024-02")


def test_raw_gate_warns_then_stops_on_the_share_of_quarantined_lines(warehouse: Path):
    """Above the warn share a month is flagged; above the error share it stops, but only once at
    least raw.quarantined_lines_min_error lines are unreadable: one odd line never holds a month."""
    thresholds = load_config().thresholds["raw"]
    assert thresholds["quarantined_lines_min_error"] == 3
    assert thresholds["quarantined_share_warn"] < 1 / 4 > thresholds["quarantined_share_error"]

    def reject(line: int) -> None:
        execute(warehouse, "insert into raw.orders_rejected_lines values "
                           f"('orders/2024-01.csv', {line}, '2024-01', null, 'wrong_field_count', 'O8,,', now()::timestamp)")

    reject(9)
    result = validate_gate(warehouse, "raw.orders", "2024-01")  # 1 rejected of 4 lines: a share, not a count
    assert result.status == "warn"
    assert {o.name for o in result.failed} == {"quarantined line share (warn)"}
    reject(10)
    reject(11)
    result = validate_gate(warehouse, "raw.orders", "2024-01")  # 3 rejected of 6 lines
    assert result.status == "error"
    assert {o.name for o in result.failed} == {"quarantined line share (warn)", "quarantined line share (error)"}
    assert validate_gate(warehouse, "raw.orders", "2024-02").status == "passed"


def test_docs_are_offline_and_the_landing_page_lists_every_month_layer_and_gate(warehouse: Path, tmp_path: Path):
    execute(warehouse, "update marts.monthly_revenue set orders = orders + 1 where month = date '2024-02-01'")
    for gate in load_config().gates:
        for month in (MONTHS if gate.partitioned else (None,)):
            validate_gate(warehouse, gate.id, month)

    index = build_quality_docs(warehouse)
    out = index.parent
    assert index == tmp_path / "docs" / "quality" / "index.html"
    landing = index.read_text()
    for gate in load_config().gates:
        assert gate.table in landing and "/".join(gate.asset_key) in landing
    for heading in ("raw", "clean", "marts", "2024-01", "2024-02", "Reference snapshots"):
        assert heading in landing
    assert "orders reconcile with clean" in landing and "FAILED (blocks)" in landing

    pages = list(out.rglob("*.html"))
    assert len(pages) > 10 and (out / "gx" / "index.html").exists()
    cdn = re.compile(r"https?://[^\"'\s]*(cdn|unpkg|jsdelivr|cdnjs|bootstrapcdn|jquery\.com|amazonaws)", re.I)
    for page in pages:
        text = page.read_text()
        assert not cdn.search(text), (page, cdn.search(text).group(0))
        assert not re.search(r"https?://(?!www\.w3\.org/)", text), page
        for ref in re.findall(r"(?:src|href)=\"([^\"#?]+)\"", text):  # every local asset exists
            if not ref.startswith(("mailto:", "javascript:")):
                assert (page.parent / ref).exists(), (page, ref)
    assert (out / "gx" / "static" / "vendor" / CDN_ASSETS["https://code.jquery.com/jquery-3.7.1.min.js"]).exists()

    server = make_docs_server(out, port=0)
    import threading
    import urllib.request

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert server.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/index.html") as response:
            assert response.status == 200 and b"NexCart data quality" in response.read()
    finally:
        server.shutdown()
        server.server_close()


def test_old_validation_results_are_pruned_by_the_retention_setting(warehouse: Path):
    keep = load_config().thresholds["docs"]["keep_results_per_gate_month"]
    for _ in range(keep + 2):
        validate_gate(warehouse, "clean.channels")
    validations = QualityPaths.from_settings().validations_dir
    stored = lambda: sorted(validations.glob("clean/channels/snapshot/*/*.json"))  # noqa: E731
    assert len(stored()) == keep + 2
    newest = stored()[-1]
    build_quality_docs(warehouse)
    assert len(stored()) == keep and stored()[-1] == newest


def test_a_docs_build_renders_only_the_results_it_has_no_page_for(warehouse: Path):
    validate_gate(warehouse, "clean.channels")
    validate_gate(warehouse, "marts.monthly_revenue", "2024-01")
    build_quality_docs(warehouse)
    pages = QualityPaths.from_settings().site_dir / "gx" / "validations"
    channels = next(pages.glob("clean/channels/snapshot/*/*.html"))
    revenue = next(pages.glob("marts/monthly_revenue/2024-01/*/*.html"))
    channels.unlink()  # as if its result were new
    revenue_written = revenue.stat().st_mtime_ns
    validate_gate(warehouse, "marts.monthly_revenue", "2024-02")  # a new result

    build_quality_docs(warehouse)
    assert channels.exists() and next(pages.glob("marts/monthly_revenue/2024-02/*/*.html"), None)
    assert revenue.stat().st_mtime_ns == revenue_written  # an old page is not rendered again
    index = (pages.parent / "index.html").read_text(encoding="utf-8")
    assert "2024-01" in index and "2024-02" in index  # the GX index still lists every result


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="no headless chromium")
def test_docs_render_in_a_browser_without_network(warehouse: Path):
    validate_gate(warehouse, "marts.monthly_revenue", "2024-01")
    index = build_quality_docs(warehouse)
    page = next((index.parent / "gx" / "validations").rglob("*.html"))
    offline = ["--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]

    def dom(path: Path) -> str:
        completed = subprocess.run(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", *offline,
             "--virtual-time-budget=5000", "--dump-dom", path.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
        return completed.stdout

    rendered = dom(page)
    assert "marts.monthly_revenue" in rendered
    assert 'class="bootstrap-table' in rendered  # the vendored jQuery + bootstrap-table ran
    assert "monthly_revenue" in dom(index)


# ------------------------------------------- detection against the generator's ground truth
# These run the real pipeline (`nexcart generate` + `nexcart run`: ingest and the dbt models),
# then the gates on what it built.


def _run_sample(pipeline, *generate_args: str):
    pipeline.nexcart("generate", "--orders", "1500", "--months", "2", "--start-month", "2024-01",
                     "--out", str(pipeline.raw), *generate_args)
    pipeline.nexcart("run")
    results = []
    for gate in load_config().gates:
        for month in (MONTHS if gate.partitioned else (None,)):
            results.append(validate_gate(pipeline.warehouse, gate.id, month))
    return results


@pytest.mark.pipeline
def test_every_injected_defect_kind_is_caught_and_the_sample_only_warns(pipeline):
    from orchestration.quality.detection import measure_detection

    results = _run_sample(pipeline, "--seed", "7")
    report = measure_detection(pipeline.warehouse, pipeline.raw)
    assert len(report.injected) >= 10, report.describe()  # the generator's defect kinds
    for kind, recall in report.recall_by_kind().items():
        assert recall >= 0.99, (kind, report.describe(), report.missed_examples.get(kind))
    assert report.recall >= 0.99
    # injected defects are data problems: recorded as warnings, they never stop a month
    assert not [(r.gate_id, r.month, [o.name for o in r.failed]) for r in results if r.status == "error"]
    assert any(r.status == "warn" for r in results)


@pytest.mark.pipeline
def test_a_defect_free_sample_has_no_false_positive(pipeline):
    from orchestration.quality.detection import measure_detection

    results = _run_sample(pipeline, "--seed", "7", "--defect-rate", "0")
    report = measure_detection(pipeline.warehouse, pipeline.raw)
    assert sum(report.injected.values()) == 0
    assert report.flagged_rows == 0, "rows flagged in quality.quarantine / quality.issues of a clean sample"
    assert not [(r.gate_id, r.month, [(o.name, o.summary()) for o in r.failed]) for r in results if r.failed]


def test_a_thresholds_file_of_the_shops_own_replaces_the_projects(tmp_path, monkeypatch):
    """NEXCART_THRESHOLDS: a shop tunes what holds a month back without editing the project."""
    import yaml

    from orchestration.quality.suites import load_thresholds

    default = load_config()
    path = tmp_path / "my-thresholds.yml"
    path.write_text(yaml.safe_dump({"clean": {"quarantined_share_error": 0.2}}))
    monkeypatch.setenv("NEXCART_THRESHOLDS", str(path))
    tuned = load_config()
    assert tuned.setting("clean", "quarantined_share_error") == 0.2
    assert default.setting("clean", "quarantined_share_error") == 0.05
    # every other threshold is the project's
    assert {k: v for k, v in tuned.thresholds.items() if k != "clean"} == \
        {k: v for k, v in load_thresholds().items() if k != "clean"} != {}
    assert tuned.setting("clean", "orphan_rate_warn") == default.setting("clean", "orphan_rate_warn")
    [share] = [c for c in tuned.gate("clean.order_items").sql_checks if c.name == "quarantined row share (error)"]
    assert share.max == 0.2
    from orchestration.quality import QualityConfigError

    path.write_text(yaml.safe_dump({"clean": {"quarantined_share_eror": 0.2}}))
    with pytest.raises(QualityConfigError, match="unknown threshold 'quarantined_share_eror'"):
        load_config()
    monkeypatch.setenv("NEXCART_THRESHOLDS", str(tmp_path / "missing.yml"))
    with pytest.raises(QualityConfigError, match="missing.yml .NEXCART_THRESHOLDS. is missing"):
        load_config()
