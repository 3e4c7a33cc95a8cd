"""The raw layer: DuckDB's CSV reader into raw.<table>, lineage, quarantine of unreadable lines,
idempotent re-ingest and clear structural errors. Real DuckDB files in temp dirs."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from orchestration.contract import TABLES
from orchestration.ingest import (
    IngestError,
    discover_months,
    ingest_month,
    ingest_reference,
)

ORDERS = TABLES["orders"]
ITEMS = TABLES["order_items"]


@pytest.fixture
def raw_root(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    (root / "orders").mkdir(parents=True)
    (root / "order_items").mkdir()
    return root


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def rows(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_every_raw_table_exists_even_without_files(con):
    tables = {r[0] for r in rows(con, "select table_name from duckdb_tables() where schema_name = 'raw'")}
    for name in TABLES:
        assert name in tables and f"{name}_rejected_lines" in tables


def test_loads_every_column_as_text_with_lineage(con, raw_root):
    write(raw_root / "orders/2024-01.csv",
          "order_id,order_ts,status,shipping_amount,customer_id\n"
          "O1,2024-01-05 10:00:00,paid,4.50,C1\n"
          "O2,2024-01-06 11:00,shipped,,\n")
    result = ingest_month(con, ORDERS, raw_root, "2024-01")
    assert (result.rows_loaded, result.lines_rejected) == (2, 0)
    assert len(result.checksum) == 64
    got = rows(con, "select order_id, customer_id, order_ts, shipping_amount, channel_id, _source_file, "
                    "_source_line, _month from raw.orders order by order_id")
    assert got == [
        ("O1", "C1", "2024-01-05 10:00:00", "4.50", None, "orders/2024-01.csv", 2, "2024-01"),
        ("O2", None, "2024-01-06 11:00", None, None, "orders/2024-01.csv", 3, "2024-01"),
    ]
    types = {r[0]: r[1] for r in rows(con, "select column_name, data_type from duckdb_columns() "
                                          "where schema_name='raw' and table_name='orders'")}
    assert all(types[c] == "VARCHAR" for c in ORDERS.columns)
    assert rows(con, "select rows_loaded, checksum from raw._ingest_log") == [(2, result.checksum)]


def test_header_is_matched_case_insensitively_in_any_order_and_extras_are_kept(con, raw_root):
    write(raw_root / "orders/2024-01.csv",
          "\ufeff Status ,Order_TS,coupon_code,ORDER_ID\r\n"
          "paid,2024-01-05 10:00,WELCOME10,O1\r\n")
    result = ingest_month(con, ORDERS, raw_root, "2024-01")
    assert result.extra_columns == ["coupon_code"]
    assert rows(con, "select order_id, status, order_ts, _extra from raw.orders") == [
        ("O1", "paid", "2024-01-05 10:00", '{"coupon_code":"WELCOME10"}')
    ]


def test_reingest_replaces_the_month_and_leaves_others(con, raw_root):
    write(raw_root / "orders/2024-01.csv", "order_id,order_ts\nO1,2024-01-05 10:00\nO2,2024-01-06 10:00\n")
    write(raw_root / "orders/2024-02.csv", "order_id,order_ts\nO3,2024-02-05 10:00\n")
    for month in ("2024-01", "2024-02", "2024-01", "2024-01"):
        ingest_month(con, ORDERS, raw_root, month)
    assert rows(con, "select _month, count(*) from raw.orders group by 1 order by 1") == [("2024-01", 2), ("2024-02", 1)]

    # a corrected re-delivery replaces the month, never adds to it
    write(raw_root / "orders/2024-01.csv", "order_id,order_ts\nO1,2024-01-05 10:00\n")
    ingest_month(con, ORDERS, raw_root, "2024-01")
    assert rows(con, "select order_id from raw.orders order by 1") == [("O1",), ("O3",)]


def test_a_broken_line_is_quarantined_with_its_line_number_and_the_rest_loads(con, raw_root):
    write(raw_root / "order_items/2024-01.csv",
          "order_id,line_number,product_id,quantity,unit_price\n"
          "O1,1,P1,2,9.99\n"
          "O1,2,P2,1\n"                      # line 3: a field short
          'O2,1,P3,1,"5.00",surplus\n'       # line 4: a field too many
          "O3,1,P4,1,3.00\n")
    result = ingest_month(con, ITEMS, raw_root, "2024-01")
    assert (result.rows_loaded, result.lines_rejected) == (2, 2)
    assert rows(con, "select order_id, _source_line from raw.order_items order by 2") == [("O1", 2), ("O3", 5)]
    rejected = rows(con, "select source_file, source_line, reason, record from raw.order_items_rejected_lines order by 2")
    assert [(r[0], r[1]) for r in rejected] == [("order_items/2024-01.csv", 3), ("order_items/2024-01.csv", 4)]
    assert all(r[2].startswith("wrong_field_count") for r in rejected)
    assert rejected[0][3] == "O1,2,P2,1"


def test_an_unterminated_quote_loses_no_line(con, raw_root):
    write(raw_root / "orders/2024-01.csv",
          "order_id,order_ts,status\n"
          'O1,2024-01-05 10:00,"multi\nline"\n'
          'O2,2024-01-06 10:00,"paid\n'
          "O3,2024-01-07 10:00,paid\n")
    result = ingest_month(con, ORDERS, raw_root, "2024-01")
    assert result.rows_loaded == 1
    reasons = rows(con, "select source_line, reason, record from raw.orders_rejected_lines order by 1")
    assert [r[2] for r in reasons] == ['O2,2024-01-06 10:00,"paid', "O3,2024-01-07 10:00,paid"]
    assert all(r[1].startswith("unterminated_quote") for r in reasons)


def test_semicolon_delimited_export_is_read_right(con, raw_root):
    write(raw_root / "orders/2024-01.csv", "order_id;order_ts;status\nO1;2024-01-05 10:00;paid\n")
    ingest_month(con, ORDERS, raw_root, "2024-01")
    assert rows(con, "select order_id, status from raw.orders") == [("O1", "paid")]


def test_gzip_file_is_supported(con, raw_root):
    path = raw_root / "orders/2024-01.csv.gz"
    path.write_bytes(gzip.compress(b"order_id,order_ts\nO1,2024-01-05 10:00\n"))
    assert ingest_month(con, ORDERS, raw_root, "2024-01").rows_loaded == 1


def test_values_that_look_like_sql_are_data(con, raw_root):
    write(raw_root / "orders/2024-01.csv",
          "order_id,order_ts,ship_city\nO1,2024-01-05 10:00,\"'; drop table raw.orders; --\"\n")
    ingest_month(con, ORDERS, raw_root, "2024-01")
    assert rows(con, "select ship_city from raw.orders") == [("'; drop table raw.orders; --",)]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", r"orders/2024-01\.csv: the file is empty"),
        (b"order_ts,status\n2024-01-05 10:00,paid\n", r"orders/2024-01\.csv, line 1: missing required column 'order_id'"),
        (b"ordr_id,order_ts\nO1,2024-01-05 10:00\n", r"missing required column 'order_id' \(found 'ordr_id': misspelt\?\)"),
        (b"order_id,order_ts\nO1,S\xe3o Paulo\n", r"orders/2024-01\.csv, line 2, column 2 'order_ts' \(byte 5 of the line\): byte 0xe3 is not UTF-8"),
        (b"order_id,order_ts,order_id\nO1,x,O1\n", r"line 1, column 3: column 'order_id' appears twice"),
    ],
    ids=["empty", "missing-column", "misspelt-column", "latin1", "duplicate-column"],
)
def test_structural_errors_name_the_file_and_the_problem(con, raw_root, content, expected):
    (raw_root / "orders/2024-01.csv").write_bytes(content)
    with pytest.raises(IngestError, match=expected):
        ingest_month(con, ORDERS, raw_root, "2024-01")
    assert rows(con, "select count(*) from raw.orders") == [(0,)]


def test_missing_required_monthly_file_is_an_error_for_that_month(con, raw_root):
    """Order lines delivered for March but no orders file: March cannot be built."""
    write(raw_root / "order_items/2024-03.csv", "order_id,line_number,product_id,quantity,unit_price\n")
    with pytest.raises(IngestError, match=r"orders/2024-03\.csv is missing: orders is a required monthly table "
                                          r"and other tables were delivered for 2024-03"):
        ingest_month(con, ORDERS, raw_root, "2024-03")


def test_a_month_with_no_file_of_any_table_is_an_empty_month(con, raw_root):
    """The shop sold nothing in March (no file of any table): March holds no rows, and the log
    says every table was not delivered, which is how the marts mark it."""
    write(raw_root / "orders/2024-02.csv", "order_id,order_ts\nO1,2024-02-05 10:00\n")
    for table in ("orders", "order_items", "transactions", "inventory_snapshots"):
        result = ingest_month(con, TABLES[table], raw_root, "2024-03")
        assert result.rows_loaded == 0 and result.source_file is None
    assert rows(con, "select table_name, outcome, source_file from raw._ingest_log where _month = '2024-03' "
                     "order by table_name") == [("inventory_snapshots", "not_delivered", None),
                                                ("order_items", "not_delivered", None),
                                                ("orders", "not_delivered", None),
                                                ("transactions", "not_delivered", None)]


def test_the_ingest_log_says_what_each_load_did(con, raw_root):
    write(raw_root / "orders/2024-01.csv", "order_id,order_ts\nO1,2024-01-05 10:00\nO2,2024-01-06 10:00\n")
    write(raw_root / "order_items/2024-01.csv", "order_id,line_number,product_id,quantity,unit_price\n")
    ingest_month(con, ORDERS, raw_root, "2024-01")
    ingest_month(con, TABLES["order_items"], raw_root, "2024-01")
    assert rows(con, "select table_name, outcome, rows_loaded, source_file from raw._ingest_log order by 1") == [
        ("order_items", "loaded", 0, "order_items/2024-01.csv"),  # a header-only file: an empty drop
        ("orders", "loaded", 2, "orders/2024-01.csv"),
    ]


def test_missing_optional_tables_are_empty_not_errors(con, raw_root):
    result = ingest_month(con, TABLES["transactions"], raw_root, "2024-01")
    assert result.rows_loaded == 0 and "optional" in result.notes[0]
    assert ingest_reference(con, TABLES["customers"], raw_root).notes == ["no customers.csv delivered (optional table)"]


def test_a_file_name_that_is_not_a_month_is_refused(con, raw_root):
    write(raw_root / "orders/2024-01.csv", "order_id,order_ts\nO1,2024-01-05 10:00\n")
    write(raw_root / "orders/latest.csv", "order_id,order_ts\nO2,2024-01-05 10:00\n")
    with pytest.raises(IngestError, match=r"orders/latest\.csv: not a monthly file name"):
        ingest_month(con, ORDERS, raw_root, "2024-01")
    assert discover_months(raw_root) == ["2024-01"]


def test_a_symlink_outside_the_raw_root_is_refused(con, raw_root, tmp_path):
    outside = write(tmp_path / "elsewhere.csv", "order_id,order_ts\nO1,2024-01-05 10:00\n")
    (raw_root / "orders/2024-01.csv").symlink_to(outside)
    with pytest.raises(IngestError, match="points outside the raw root"):
        ingest_month(con, ORDERS, raw_root, "2024-01")


def test_reference_snapshot_replaces_the_previous_one(con, raw_root):
    write(raw_root / "channels.csv", "channel_id,channel_name,channel_type\nCH1,Web,web\nCH2,App,mobile\n")
    ingest_reference(con, TABLES["channels"], raw_root)
    write(raw_root / "channels.csv", "channel_id,channel_name,channel_type\nCH1,Web shop,web\n")
    ingest_reference(con, TABLES["channels"], raw_root)
    assert rows(con, "select channel_id, channel_name, _month from raw.channels") == [("CH1", "Web shop", None)]
