"""End to end on a tiny hand-made dataset: `nexcart run` (real Dagster, real dbt, real DuckDB),
and every mart value below computed by hand from metrics.md.

January 2024 (store time zone UTC):
  O1  C1  CH1 completed  lines: P1 2 x 10.00 - 1.00 discount = 19.00 ; P2 1 x 20.00 = 20.00
  O2  -   CH2 cancelled  line:  P1 1 x 10.00                    (not counted)
  O3  C2  CH1 returned   line:  P2 1 x 20.00 = 20.00            (counted; refunded 20.00)
  O4  -   CH2 paid       lines: P1 1 x 0.00 (quarantined: non_positive_price) ; P1 3 x 10.00 = 30.00
  O1 is delivered twice (identical), and order line (O1, 1) too: each counts once.
  -> orders 3, units 2+1+1+3 = 7, gross 89.00, discounts 1.00, refunds 20.00, net 69.00,
     aov 29.67, cogs (P1 only: 2*4 + 3*4) 20.00, gross_margin (19 + 30) - 20 = 29.00,
     new customers C1, C2 = 2, returning 0.
February 2024:
  O5  C1  CH1 delivered  line: P1 1 x 10.00
  -> orders 1, units 1, gross 10.00, cogs 4.00, margin 6.00, new 0, returning 1 (C1),
     mom_growth (10 - 89) / 89.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tests.conftest import write_csv

D = Decimal


def write_dataset(raw, february_quantity: int = 1) -> None:
    write_csv(raw / "customers.csv", "customer_id,email,phone,first_name,last_name,city,region,country,signup_date",
              "C1,ann@example.com,+1 555 0100,Ann,Lee,Austin,TX,US,2023-06-01",
              "C2,not-an-email,+44 20 7946 0000,Bob,Ray,Leeds,ENG,GB,2023-07-15")
    write_csv(raw / "products.csv", "product_id,product_name,category,brand,unit_cost,list_price",
              "P1,Mug,Kitchen,Acme,4.00,10.00",
              "P2,Lamp,Home,Lumo,,20.00")
    write_csv(raw / "channels.csv", "channel_id,channel_name,channel_type",
              "CH1,Web shop,web", "CH2,App,mobile")
    write_csv(raw / "orders/2024-01.csv",
              "order_id,customer_id,channel_id,order_ts,status,currency,ship_city,ship_region,ship_country,shipping_amount",
              "O1,C1,CH1,2024-01-05 10:00:00,completed,USD,Austin,TX,US,5.00",
              "O2,,CH2,2024-01-10 12:00:00,cancelled,USD,Paris,IDF,FR,0",
              "O3,C2,CH1,2024-01-20 09:00:00,returned,USD,,,,0",
              "O4,,CH2,2024-01-31 23:00:00,paid,USD,London,LDN,GB,0",
              "O1,C1,CH1,2024-01-05 10:00:00,completed,USD,Austin,TX,US,5.00")
    write_csv(raw / "order_items/2024-01.csv",
              "order_id,line_number,product_id,quantity,unit_price,discount_amount",
              "O1,1,P1,2,10.00,1.00", "O1,2,P2,1,20.00,0", "O2,1,P1,1,10.00,0", "O3,1,P2,1,20.00,",
              "O4,1,P1,1,0.00,0", "O4,2,P1,3,10.00,0", "O1,1,P1,2,10.00,1.00")
    write_csv(raw / "transactions/2024-01.csv",
              "transaction_id,order_id,transaction_ts,kind,payment_method,status,amount,currency",
              "T1,O1,2024-01-05 10:01:00,payment,credit_card,succeeded,39.00,USD",
              "T2,O3,2024-01-20 09:01:00,payment,Credit Card,failed,20.00,USD",
              "T3,O3,2024-01-20 09:05:00,payment,paypal,succeeded,20.00,USD",
              "T4,O3,2024-01-25 14:00:00,refund,paypal,succeeded,20.00,USD",
              "T5,O4,2024-01-31 23:05:00,payment,credit_card,succeeded,30.00,USD")
    write_csv(raw / "orders/2024-02.csv",
              "order_id,customer_id,channel_id,order_ts,status,currency,ship_city,ship_region,ship_country,shipping_amount",
              "O5,C1,CH1,2024-02-03 08:00:00,delivered,USD,Austin,TX,US,0")
    write_csv(raw / "order_items/2024-02.csv",
              "order_id,line_number,product_id,quantity,unit_price,discount_amount",
              f"O5,1,P1,{february_quantity},10.00,0")


REVENUE_COLUMNS = ("month, orders, units, gross_revenue, discounts, refunds, net_revenue, aov, cogs, "
                   "gross_margin, new_customers, returning_customers")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from tests.conftest import Pipeline

    pipeline = Pipeline(tmp_path_factory.mktemp("marts"))
    write_dataset(pipeline.raw)
    pipeline.nexcart("run")
    return pipeline


def test_monthly_revenue_matches_hand_computation(built):
    rows = built.query(f"select {REVENUE_COLUMNS}, mom_growth, yoy_growth from marts.monthly_revenue order by month")
    jan, feb = rows
    assert jan[1:12] == (3, 7, D("89.00"), D("1.00"), D("20.00"), D("69.00"), D("29.67"), D("20.00"), D("29.00"), 2, 0)
    assert jan[12] is None and jan[13] is None
    assert feb[1:12] == (1, 1, D("10.00"), D("0.00"), D("0.00"), D("10.00"), D("10.00"), D("4.00"), D("6.00"), 0, 1)
    assert feb[12] == pytest.approx((10 - 89) / 89)


def test_channel_performance(built):
    rows = built.query("select channel_id, channel_name, orders, gross_revenue, revenue_share "
                       "from marts.monthly_channel_performance where month = date '2024-01-01' order by channel_id")
    assert [r[:4] for r in rows] == [("CH1", "Web shop", 2, D("59.00")), ("CH2", "App", 1, D("30.00"))]
    assert rows[0][4] == pytest.approx(59 / 89) and rows[1][4] == pytest.approx(30 / 89)


def test_top_products_rank_every_product_sold(built):
    rows = built.query("select rank, product_id, product_name, category, units, gross_revenue "
                       "from marts.monthly_top_products where month = date '2024-01-01' order by rank")
    assert rows == [(1, "P1", "Mug", "Kitchen", 5, D("49.00")), (2, "P2", "Lamp", "Home", 2, D("40.00"))]


def test_geo_sales_falls_back_to_customer_geography(built):
    rows = built.query("select country, region, orders, customers, gross_revenue from marts.monthly_geo_sales "
                       "where month = date '2024-01-01' order by country, region")
    # O3 has no shipping address: C2's country/region (GB/ENG) is used.
    assert rows == [("GB", "ENG", 1, 1, D("20.00")), ("GB", "LDN", 1, 0, D("30.00")), ("US", "TX", 1, 1, D("39.00"))]


def test_payment_methods(built):
    rows = built.query("select payment_method, payments, succeeded_amount, amount_share, failed, failure_rate, "
                       "refunds, chargebacks from marts.monthly_payment_methods "
                       "where month = date '2024-01-01' order by payment_method")
    card, paypal = rows
    assert card[:3] == ("credit_card", 3, D("69.00")) and card[4] == 1
    assert card[3] == pytest.approx(69 / 89) and card[5] == pytest.approx(1 / 3)
    assert paypal[:3] == ("paypal", 1, D("20.00")) and paypal[6] == D("20.00") and paypal[7] == D("0.00")


def test_every_raw_row_is_accounted_for(built):
    quarantined = built.query("select table_name, reason from quality.quarantine")
    assert [(t, r.split(":")[0]) for t, r in quarantined] == [("order_items", "non_positive_price")]
    duplicates = built.query("select table_name, record_key, issue from quality.issues "
                             "where issue in ('duplicate', 'conflicting_duplicate') order by 1")
    assert duplicates == [("order_items", "O1|1", "duplicate"), ("orders", "O1", "duplicate")]
    assert built.query("select count(*) from clean.order_items where _month = '2024-01'") == [(5,)]
    assert built.query("select count(*) from clean.orders where _month = '2024-01'") == [(4,)]


def test_invalid_email_is_flagged_and_marts_carry_no_personal_data(built):
    assert built.query("select record_key from quality.issues where issue = 'invalid_email'") == [("C2",)]
    columns = {r[0] for r in built.query("select column_name from duckdb_columns() where schema_name = 'marts'")}
    assert not columns & {"email", "phone", "first_name", "last_name"}


def _all_marts(pipeline) -> dict[str, list[tuple]]:
    tables = [r[0] for r in pipeline.query("select table_name from duckdb_tables() where schema_name = 'marts' order by 1")]
    return {t: pipeline.query(f"select * from marts.{t} order by all") for t in tables}


def test_category_rank_is_per_region_within_its_country(built):
    """O3 has no shipping address: the customer's GB/ENG. A region is ranked within its country,
    since the same code exists in several (WA: Washington, Western Australia)."""
    rows = built.query("select country, region, category, gross_revenue, rank from marts.monthly_category_region_rank "
                       "where month = date '2024-01-01' order by country, region, rank")
    assert rows == [("GB", "ENG", "Home", D("20.00"), 1), ("GB", "LDN", "Kitchen", D("30.00"), 1),
                    ("US", "TX", "Home", D("20.00"), 1), ("US", "TX", "Kitchen", D("19.00"), 2)]


def test_rerunning_a_month_changes_nothing_and_a_correction_replaces_it(built):
    before = _all_marts(built)
    assert {"monthly_revenue", "daily_revenue", "customer_rfm", "cohort_retention", "fct_order_lines"} <= set(before)
    built.nexcart("run", "--month", "2024-02")
    assert _all_marts(built) == before
    built.nexcart("run")
    assert _all_marts(built) == before

    write_dataset(built.raw, february_quantity=2)  # a corrected February export
    built.nexcart("run", "--month", "2024-02")
    feb = built.query("select orders, units, gross_revenue from marts.monthly_revenue where month = date '2024-02-01'")
    assert feb == [(1, 2, D("20.00"))]
    jan = built.query("select gross_revenue from marts.monthly_revenue where month = date '2024-01-01'")
    assert jan == [(D("89.00"),)]


def test_dbt_build_on_its_own_builds_its_own_file_and_never_touches_the_published_one(built):
    """`cd dbt_project && dbt build` as an analyst runs it (and `dbt docs generate`), while another
    process holds the published warehouse open read-only, as `duckdb -readonly` does: the dev target
    builds its own file from the published raw layer, with the same marts; the published file is
    neither changed nor locked."""
    import hashlib
    import subprocess
    import sys

    from orchestration.dbt_project import DBT_EXECUTABLE as dbt
    from tests.conftest import PROJECT_ROOT, Pipeline

    before = _all_marts(built)
    digest = hashlib.sha256(built.warehouse.read_bytes()).hexdigest()
    dev = built.root / "dev" / "dev.duckdb"
    dev.parent.mkdir()  # DuckDB creates the file, not its folder
    reader = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1], "
                               "read_only=True); con.execute('select 1'); sys.stdin.read()", str(built.warehouse)],
                              stdin=subprocess.PIPE)
    try:
        for command in (["build"], ["docs", "generate"]):
            completed = subprocess.run([dbt, *command, "--profiles-dir", "."], cwd=PROJECT_ROOT / "dbt_project",
                                       # dbt's artifacts in the test's folder: the other test worker's
                                       # runs read dbt_project/target/manifest.json meanwhile
                                       env={**built.env, "NEXCART_DBT_DEV_WAREHOUSE": str(dev),
                                            "DBT_TARGET_PATH": str(built.root / "dev-target"),
                                            "DBT_LOG_PATH": str(built.root / "dev-target")},
                                       capture_output=True, text=True, timeout=900)
            assert completed.returncode == 0, completed.stdout[-3000:]
        assert reader.poll() is None  # the reader was never disturbed
    finally:
        reader.communicate(b"", timeout=60)
    assert hashlib.sha256(built.warehouse.read_bytes()).hexdigest() == digest
    dev_pipeline = Pipeline(built.root)
    dev_pipeline.warehouse = dev
    assert _all_marts(dev_pipeline) == before


@pytest.mark.pipeline
def test_a_failed_error_gate_holds_back_its_month_only_and_the_run_names_it(pipeline):
    """A month whose orders file is mostly unreadable lines breaks the raw gate (error level):
    `nexcart run` exits non-zero naming the gate and the month; that month is held back at its
    last published state in every layer, and the other months of the run are built and published."""
    def break_february() -> None:
        orders = pipeline.raw / "orders/2024-02.csv"
        orders.write_text(orders.read_text() + "O6,C1\nO7,C1\nO8,C1\n")  # 3 of 4 lines unreadable

    def february_rows() -> dict[str, int]:
        return {table: pipeline.query(f"select count(*) from {table} where {column}")[0][0]
                for table, column in (("raw.orders", "_month = '2024-02'"),
                                      ("raw.orders_rejected_lines", "_month = '2024-02'"),
                                      ("clean.orders", "_month = '2024-02'"),
                                      ("marts.monthly_revenue", "month = date '2024-02-01'"),
                                      ("marts.fct_order_lines", "month = date '2024-02-01'"))}

    # 1. first delivery: February broken, January fine
    write_dataset(pipeline.raw)
    break_february()
    completed = pipeline.nexcart("run", check=False)
    assert completed.returncode == 1
    assert "2024-02: raw/orders gx_gate: quarantined line share (error)" in completed.stderr
    assert "1 HELD BACK (2024-02)" in completed.stdout
    revenue = "select month, gross_revenue from marts.monthly_revenue order by month"
    assert pipeline.query(revenue) == [(date(2024, 1, 1), D("89.00"))]  # January published
    assert set(february_rows().values()) == {0}  # nothing of February anywhere, raw included
    assert (pipeline.root / "reports/2024-01.html").exists()
    held_report = (pipeline.root / "reports/2024-02.html").read_text()  # a banner says why, no figures
    assert "Held back: the latest delivery of 2024-02 failed an error-level quality gate (raw/orders)" in held_report
    assert "Nothing of this month has been published yet" in held_report
    # in the UI, the steps' outputs name the held month
    from dagster import AssetKey, DagsterInstance

    with DagsterInstance.from_config(str(pipeline.dagster_home)) as instance:
        revenue_output = instance.get_latest_materialization_event(AssetKey(["marts", "monthly_revenue"]))
    assert revenue_output.asset_materialization.metadata["held_back_months"].value.startswith("2024-02 ")

    # 2. February corrected: built and published like any month
    write_dataset(pipeline.raw)
    pipeline.nexcart("run")
    good_february = february_rows()
    assert good_february["marts.monthly_revenue"] == 1 and good_february["raw.orders_rejected_lines"] == 0
    marts_before = _all_marts(pipeline)

    # 3. a broken re-delivery of February: the month keeps its last good state in every layer
    break_february()
    completed = pipeline.nexcart("run", check=False)
    assert completed.returncode == 1 and "1 HELD BACK (2024-02)" in completed.stdout
    assert february_rows() == good_february
    assert _all_marts(pipeline) == marts_before


def _declared_constraints() -> dict[str, set[tuple[str, str]]]:
    """(column, 'not_null' | 'check') of each contracted model's columns, from dbt's manifest."""
    import json

    from orchestration.dbt_project import ensure_manifest

    declared = {}
    for node in json.loads(ensure_manifest().read_text())["nodes"].values():
        if node["resource_type"] == "model" and node["config"]["contract"]["enforced"]:
            declared[node["name"]] = {(name, c["type"]) for name, column in node["columns"].items()
                                      for c in column["constraints"] if c["type"] in ("not_null", "check")}
    return declared


def _table_constraints(con, table: str) -> set[tuple[str, str]]:
    rows = con.execute(
        "select column_name, 'not_null' from duckdb_columns() where schema_name = ? and table_name = ? "
        "and not is_nullable union all select unnest(constraint_column_names), 'check' from duckdb_constraints() "
        "where schema_name = ? and table_name = ? and constraint_type = 'CHECK'", [*table.split("."), *table.split(".")])
    return set(rows.fetchall())


def test_the_marts_tables_enforce_their_contracts_constraints(built, tmp_path):
    """The NOT NULL and range rules of the marts' contracts are the tables' own constraints
    (DuckDB refuses a breaking row on insert), not test queries after the build."""
    import shutil

    import duckdb

    declared = _declared_constraints()
    assert len(declared) >= 15 and sum(map(len, declared.values())) >= 100
    copy = tmp_path / "copy.duckdb"  # the module's warehouse stays as built
    shutil.copyfile(built.warehouse, copy)
    con = duckdb.connect(str(copy))
    try:
        schemas = dict(con.execute("select table_name, schema_name from duckdb_tables()").fetchall())
        for model, constraints in declared.items():
            assert _table_constraints(con, f"{schemas[model]}.{model}") == constraints, model
        with pytest.raises(duckdb.ConstraintException, match="NOT NULL constraint failed: monthly_revenue.orders"):
            con.execute("update marts.monthly_revenue set orders = null")
        with pytest.raises(duckdb.ConstraintException, match="CHECK constraint failed"):
            con.execute("update marts.customer_rfm set r_score = 6")
    finally:
        con.close()


def test_a_table_built_by_an_older_version_is_named_and_full_refresh_rebuilds_it(built):
    """An upgrade that changes a monthly table's columns, or adds a constraint to its contract
    that the existing table lacks: the run stops with what to do, and `nexcart run --full-refresh`
    rebuilds every table to the same marts, with their constraints."""
    import duckdb

    before = _all_marts(built)
    con = duckdb.connect(str(built.warehouse))
    try:  # the tables as an older version built them
        con.execute("alter table marts.monthly_category_region_rank drop column country")
        con.execute("alter table marts.monthly_revenue alter column orders drop not null")
    finally:
        con.close()
    completed = built.nexcart("run", check=False)
    assert completed.returncode == 1
    assert "run `nexcart run --full-refresh` once" in completed.stderr
    assert ('"marts"."monthly_revenue" is out of sync with its model\'s contract: it was built without the '
            "constraints orders not_null") in completed.stderr
    assert built.nexcart("run", "--month", "2024-01", "--full-refresh", check=False).returncode == 2
    built.nexcart("run", "--full-refresh")
    assert _all_marts(built) == before
    con = duckdb.connect(str(built.warehouse), read_only=True)
    try:
        assert _table_constraints(con, "marts.monthly_revenue") == _declared_constraints()["monthly_revenue"]
    finally:
        con.close()



def test_the_dbt_steps_of_a_run_reuse_the_saved_parse(built, tmp_path):
    """The month window reaches dbt in environment variables, not --vars, and the newest parse is
    kept for each dbt profile (i.e. warehouse): every dbt step of a warehouse's next run parses
    nothing again, even when a run on another warehouse came in between and left its parse where
    dagster-dbt looks (dbt logs why it cannot, e.g. 'because profile has changed')."""
    import os
    import shutil
    import subprocess

    from dagster import DagsterInstance

    from orchestration.dbt_project import DBT_EXECUTABLE
    from orchestration.settings import DBT_PROJECT_DIR, DBT_TARGET_DIR

    other = {**built.env, "NEXCART_WAREHOUSE": str(tmp_path / "other.duckdb"), "DBT_TARGET_PATH": str(tmp_path / "t"),
             "DBT_LOG_PATH": str(tmp_path / "t")}
    parsed = subprocess.run([DBT_EXECUTABLE, "parse", "--profiles-dir", ".", "--target", "pipeline"],
                            cwd=DBT_PROJECT_DIR, env=other, capture_output=True, text=True, timeout=600)
    assert parsed.returncode == 0, parsed.stdout[-2000:]
    shutil.copyfile(tmp_path / "t" / "partial_parse.msgpack", tmp_path / "other.msgpack")
    os.replace(tmp_path / "other.msgpack", DBT_TARGET_DIR / "partial_parse.msgpack")

    built.nexcart("run", "--month", "2024-02")
    with DagsterInstance.from_config(str(built.dagster_home)) as instance:
        run_id = instance.get_run_ids(limit=1)[0]
    folders = sorted(DBT_TARGET_DIR.glob(f"dbt_*-{run_id[:7]}-*"), key=lambda f: (f / "dbt.log").stat().st_mtime)
    assert [f.name.rsplit("-", 2)[0] for f in folders] == ["dbt_reference", "dbt_monthly_clean",
                                                          "dbt_monthly_marts", "dbt_summary"]
    for folder in folders:
        log = (folder / "dbt.log").read_text()
        assert "Partial parsing enabled" in log and "Unable to do partial parsing" not in log, folder.name
