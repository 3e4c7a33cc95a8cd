"""Quarantined rows can be fixed and replayed without re-sending the month:
`nexcart quarantine list|export|replay`, then `nexcart run --month`.

The loop runs end to end once (real CLI, real dbt, real DuckDB); the rules of the correction
files (validation, where they are stored, re-ingest keeps them, a new delivery supersedes them)
are checked on orchestration.ingest / orchestration.quarantine directly.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from orchestration.contract import TABLES
from orchestration.ingest import IngestError, ensure_raw_schema, file_checksum, ingest_month
from orchestration.quarantine import (
    LINEAGE_COLUMNS,
    NOTE_COLUMNS,
    QuarantineError,
    add_quarantine_commands,
    replay_correction,
)
from tests.conftest import Pipeline, write_csv

ORDERS = TABLES["orders"]
ORDER_HEADER = "order_id,customer_id,channel_id,order_ts,status,currency,ship_city,ship_region,ship_country,shipping_amount"
EXPORT_HEADER = [*ORDERS.columns, *LINEAGE_COLUMNS, *NOTE_COLUMNS]
NOW = datetime(2024, 3, 2, 9, 30, 0, 123456, tzinfo=UTC)


# ------------------------------------------------------------------------------ the rules, fast


@pytest.fixture
def raw_root(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    write_csv(root / "orders/2024-01.csv", ORDER_HEADER,
              "O1,C1,CH1,2024-01-05 10:00:00,paid,USD,Austin,TX,US,5.00",
              'O2,C1,CH1,2024-01-06 10:00:00,paid,USD,Austin,TX,US,"12,50"')
    return root


def correction(path: Path, *rows: list[str], header: list[str] = EXPORT_HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def fixed_o2(source_line: str = "3") -> list[str]:
    return ["O2", "C1", "CH1", "2024-01-06 10:00:00", "paid", "USD", "Austin", "TX", "US", "12.50",
            "orders/2024-01.csv", source_line, "shipping_amount", "unparsable_decimal: ...", ""]


def test_replay_stores_a_correction_of_the_current_delivery(raw_root, tmp_path):
    fixed = correction(tmp_path / "fixed.csv", fixed_o2())
    result = replay_correction(raw_root, fixed, now=NOW)

    sha = file_checksum(raw_root / "orders/2024-01.csv")
    assert (result.table, result.month, result.rows, result.delivery) == ("orders", "2024-01", 1, "orders/2024-01.csv")
    assert result.stored == raw_root / f"orders/corrections/2024-01/20240302T093000123456Z-for-{sha[:16]}.csv"
    # the notes for the person fixing rows are dropped; the lineage of the row stays
    assert result.stored.read_text() == (
        ",".join([*ORDERS.columns, *LINEAGE_COLUMNS]) + "\n"
        "O2,C1,CH1,2024-01-06 10:00:00,paid,USD,Austin,TX,US,12.50,orders/2024-01.csv,3\n")
    assert [p.name for p in result.stored.parent.iterdir()] == [result.stored.name]  # no leftovers


def test_a_month_is_its_delivery_plus_its_corrections_and_a_new_delivery_supersedes_them(raw_root, tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_raw_schema(con)
    replay_correction(raw_root, correction(tmp_path / "fixed.csv", fixed_o2()), now=NOW)

    for _ in range(2):  # re-ingesting the same delivery keeps the correction
        result = ingest_month(con, ORDERS, raw_root, "2024-01")
        assert result.rows_loaded == 3 and len(result.correction_files) == 1
        assert con.execute("select order_id, shipping_amount, _source_line, _extra from raw.orders "
                           "where _source_file like 'orders/corrections/%'").fetchall() == [
            ("O2", "12.50", 2, '{"source_file":"orders/2024-01.csv","source_line":"3"}')]
        assert con.execute("select count(*) from raw._ingest_log where source_file like '%corrections%'").fetchone()[0] >= 1

    # the shop re-sends January in full: older corrections no longer apply
    write_csv(raw_root / "orders/2024-01.csv", ORDER_HEADER,
              "O1,C1,CH1,2024-01-05 10:00:00,paid,USD,Austin,TX,US,5.00",
              "O2,C1,CH1,2024-01-06 10:00:00,paid,USD,Austin,TX,US,12.00")
    result = ingest_month(con, ORDERS, raw_root, "2024-01")
    assert result.rows_loaded == 2 and result.correction_files == []
    assert any("made for an earlier delivery of orders/2024-01.csv and are superseded" in n for n in result.notes)
    assert con.execute("select order_id, shipping_amount, _source_file from raw.orders order by 1").fetchall() == [
        ("O1", "5.00", "orders/2024-01.csv"), ("O2", "12.00", "orders/2024-01.csv")]
    con.close()


def test_every_correction_of_the_delivery_is_loaded_oldest_first(raw_root, tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_raw_schema(con)
    first = replay_correction(raw_root, correction(tmp_path / "a.csv", fixed_o2()), now=NOW)
    second = replay_correction(raw_root, correction(tmp_path / "b.csv", fixed_o2()[:9] + ["12.55"] + fixed_o2()[10:]),
                               now=NOW.replace(hour=11))
    result = ingest_month(con, ORDERS, raw_root, "2024-01")
    assert result.correction_files == [first.stored.relative_to(raw_root).as_posix(),
                                       second.stored.relative_to(raw_root).as_posix()]
    assert sorted(result.correction_files) == result.correction_files  # names sort in the order they were made
    assert result.rows_loaded == 4
    con.close()


def test_a_stray_file_among_the_corrections_is_refused(raw_root, tmp_path):
    (raw_root / "orders/corrections/2024-01").mkdir(parents=True)
    (raw_root / "orders/corrections/2024-01/my-fixes.csv").write_text(ORDER_HEADER + "\n")
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_raw_schema(con)
    with pytest.raises(IngestError, match=r"orders/corrections/2024-01/my-fixes\.csv: not a correction file name"):
        ingest_month(con, ORDERS, raw_root, "2024-01")
    con.close()


@pytest.mark.parametrize(
    ("header", "rows", "options", "message"),
    [
        (EXPORT_HEADER + ["comment"], [fixed_o2() + ["fixed by Ann"]], {},
         r"fixed\.csv, line 1: column\(s\) 'comment' are not orders columns"),
        ([c for c in EXPORT_HEADER if c != "order_ts"], [fixed_o2()[:3] + fixed_o2()[4:]], {},
         r"fixed\.csv, line 1: missing required column 'order_ts'"),
        (EXPORT_HEADER, [fixed_o2(), fixed_o2()[:-1]], {}, r"fixed\.csv, line 3: 14 fields where the header has 15"),
        (EXPORT_HEADER, [fixed_o2()[:10] + ["orders/2024-02.csv", "2", "", "", ""]], {"table": "orders", "month": "2024-01"},
         r"fixed\.csv, line 2: this row comes from orders 2024-02, not orders 2024-01"),
        (list(ORDERS.columns), [fixed_o2()[:10]], {}, r"cannot tell which table and month these rows correct .*pass --table and --month"),
        (EXPORT_HEADER, [fixed_o2()[:10] + ["customers.csv", "2", "", "", ""]], {}, r"source_file 'customers\.csv' is not a monthly file"),
        (list(ORDERS.columns), [fixed_o2()[:10]], {"table": "orders", "month": "2024-03"}, r"There is no orders/2024-03\.csv in .* to correct"),
        (["customer_id", "email"], [["C1", "a@b.co"]], {"table": "customers", "month": "2024-01"},
         r"customers is not a monthly table: a reference snapshot is corrected by sending the whole file again"),
        (EXPORT_HEADER, [], {}, r"fixed\.csv: no rows to replay"),
    ],
    ids=["unknown-column", "missing-required-column", "wrong-field-count", "rows-of-another-month",
         "no-table-or-month", "not-a-monthly-source", "no-delivery-to-correct", "reference-table", "no-rows"],
)
def test_replay_refuses_a_file_that_does_not_fit_the_contract(raw_root, tmp_path, header, rows, options, message):
    with pytest.raises(QuarantineError, match=message):
        replay_correction(raw_root, correction(tmp_path / "fixed.csv", *rows, header=header), now=NOW, **options)
    assert not (raw_root / "orders/corrections/2024-01").exists() or not any((raw_root / "orders/corrections/2024-01").iterdir())


def test_replay_refuses_a_file_that_is_not_utf8(raw_root, tmp_path):
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes((ORDER_HEADER + "\nO2,C1,CH1,2024-01-06 10:00,paid,USD,S\xe3o Paulo,SP,BR,1.00\n").encode("latin-1"))
    with pytest.raises(QuarantineError, match=r"line 2, column 7 'ship_city' .*byte 0xe3 is not UTF-8"):
        replay_correction(raw_root, fixed, table="orders", month="2024-01", now=NOW)


# ------------------------------------------------------------------------------ the loop, end to end


def nexcart_quarantine(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess:
    """The real `nexcart quarantine ...` command."""
    return pipeline.nexcart("quarantine", *args, check=False, timeout=120)


def test_the_parser_offers_list_export_and_replay():
    parser = argparse.ArgumentParser(prog="nexcart")
    add_quarantine_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["quarantine", "export", "--table", "orders", "--month", "2024-01", "--out", "x.csv"])
    assert (args.command, args.quarantine_command, args.table, args.month, args.out) == (
        "quarantine", "export", "orders", "2024-01", "x.csv")
    with pytest.raises(SystemExit):
        parser.parse_args(["quarantine", "list", "--month", "2024-1"])


# Good orders of January that keep its share of unreadable lines (1 in 34) under the raw quality
# gate's error threshold (5 %, expectations/thresholds.yml), so the month is built.
FILLERS = 30


def write_shop(raw: Path) -> None:
    write_csv(raw / "products.csv", "product_id,product_name,category,brand,unit_cost,list_price",
              "P1,Mug,Kitchen,Acme,4.00,10.00")
    fillers = [f"OF{n},,CH1,2024-01-10 10:00:00,paid,USD,Austin,TX,US,0" for n in range(FILLERS)]
    write_csv(raw / "orders/2024-01.csv", ORDER_HEADER,
              "O1,,CH1,2024-01-05 10:00:00,paid,USD,Austin,TX,US,5.00",
              'O2,,CH1,2024-01-06 10:00:00,paid,USD,Austin,TX,US,"12,50"',     # line 3: decimal comma
              "O3,,CH1,31/01/2024 10:00,paid,USD,Austin,TX,US,0",              # line 4: DD/MM/YYYY
              "O4,,CH1,2024-01-20 10:00:00,paid,USD,Austin",                   # line 5: fields missing
              *fillers)
    write_csv(raw / "order_items/2024-01.csv", "order_id,line_number,product_id,quantity,unit_price",
              "O1,1,P1,1,10.00", "O2,1,P1,2,10.00", "O3,1,P1,3,10.00", "O4,1,P1,4,10.00",
              *[f"OF{n},1,P1,1,10.00" for n in range(FILLERS)])
    write_csv(raw / "orders/2024-02.csv", ORDER_HEADER, "O5,,CH1,2024-02-05 10:00:00,paid,USD,Austin,TX,US,0")
    write_csv(raw / "order_items/2024-02.csv", "order_id,line_number,product_id,quantity,unit_price", "O5,1,P1,1,10.00")


def fix_rows(exported: Path) -> Path:
    """What the user does in the exported file: correct each row's values."""
    with open(exported, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        if row["order_id"] == "O2":
            row["shipping_amount"] = "12.50"
        elif row["order_id"] == "O3":
            row["order_ts"] = "2024-01-31 10:00"
        else:  # the line that could not be read: its values are filled in from raw_line
            assert row["raw_line"] == "O4,,CH1,2024-01-20 10:00:00,paid,USD,Austin"
            row.update(order_id="O4", channel_id="CH1", order_ts="2024-01-20 10:00:00", status="paid",
                       currency="USD", ship_city="Austin", ship_region="TX", ship_country="US", shipping_amount="0")
    # a row that was not quarantined may be corrected too: O1's shipping was 5.00, it is 6.00
    rows.append(dict(zip(EXPORT_HEADER, ["O1", "", "CH1", "2024-01-05 10:00:00", "paid", "USD", "Austin", "TX", "US",
                                         "6.00", "orders/2024-01.csv", "2", "", "", ""])))
    with open(exported, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=EXPORT_HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return exported


@pytest.mark.pipeline
def test_export_fix_replay_run_brings_the_rows_into_clean_and_the_accounting_still_reconciles(tmp_path):
    pipeline = Pipeline(tmp_path)
    write_shop(pipeline.raw)
    pipeline.nexcart("run")
    assert pipeline.query("select orders from marts.monthly_revenue where month = date '2024-01-01'") == [(1 + FILLERS,)]

    listed = nexcart_quarantine(pipeline, "list", "--month", "2024-01")
    assert listed.returncode == 0, listed.stderr
    assert "orders  2024-01     1          0  unparsable_decimal: expected digits with '.'" in listed.stdout
    assert "orders  2024-01     1          0  unparsable_timestamp: expected YYYY-MM-DD HH:MM[:SS][+HH:MM]" in listed.stdout
    assert "orders  2024-01     1          0  wrong_field_count: expected fields: 10 found: 7" in listed.stdout
    assert "3 quarantined row(s), 0 corrected since, 3 open." in listed.stdout

    exported = tmp_path / "to-fix.csv"
    done = nexcart_quarantine(pipeline, "export", "--table", "orders", "--month", "2024-01", "--out", str(exported))
    assert done.returncode == 0, done.stderr
    assert f"Wrote 3 open quarantined row(s) of orders 2024-01 to {exported}." in done.stdout
    with open(exported, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == EXPORT_HEADER
    assert rows[1][:10] == ["O2", "", "CH1", "2024-01-06 10:00:00", "paid", "USD", "Austin", "TX", "US", "12,50"]
    assert rows[1][10:14] == ["orders/2024-01.csv", "3", "shipping_amount",
                              "unparsable_decimal: expected digits with '.' as decimal separator, e.g. 1234.56"]
    assert rows[3][:10] == [""] * 10 and rows[3][10:12] == ["orders/2024-01.csv", "5"]

    replayed = nexcart_quarantine(pipeline, "replay", str(fix_rows(exported)))
    assert replayed.returncode == 0, replayed.stderr
    assert "Stored 4 corrected row(s) of orders 2024-01 as orders/corrections/2024-01/" in replayed.stdout
    assert "Load them: nexcart run --month 2024-01." in replayed.stdout

    pipeline.nexcart("run", "--month", "2024-01")
    corrected = pipeline.query("select order_id, order_ts, shipping_amount from clean.orders "
                               "where _source_file like 'orders/corrections/2024-01/%' order by 1")
    assert corrected == [("O1", datetime(2024, 1, 5, 10), Decimal("6.00")),
                         ("O2", datetime(2024, 1, 6, 10), Decimal("12.50")),
                         ("O3", datetime(2024, 1, 31, 10), Decimal("0")),
                         ("O4", datetime(2024, 1, 20, 10), Decimal("0"))]
    assert pipeline.query("select orders, units from marts.monthly_revenue where month = date '2024-01-01'") == [
        (4 + FILLERS, 1 + 2 + 3 + 4 + FILLERS)]
    # the quarantined lines stay where they were (the delivery did not change), now marked corrected
    assert pipeline.query("select count(*) from quality.quarantine where month = '2024-01'") == [(3,)]
    assert all(r[0] for r in pipeline.query("select is_reconciled from quality.reconciliation"))
    # 4 + FILLERS delivered lines + 4 corrected rows = FILLERS + 4 clean (O1..O4 from the correction)
    # + 3 quarantined + the delivery's O1, collapsed into the correction's (which sorts after it)
    assert pipeline.query("select raw_rows + rejected_lines, clean_rows, quarantined_rows, duplicate_rows "
                          "from quality.reconciliation where table_name = 'orders' and month = '2024-01'") == [
        (8 + FILLERS, 4 + FILLERS, 3, 1)]
    assert pipeline.query("select issue, source_file, source_line from quality.issues where record_key = 'O1'") == [
        ("conflicting_duplicate", "orders/2024-01.csv", 2)]

    listed = nexcart_quarantine(pipeline, "list", "--table", "orders")
    assert "3 quarantined row(s), 3 corrected since, 0 open." in listed.stdout
    again = nexcart_quarantine(pipeline, "export", "--table", "orders", "--month", "2024-01", "--out", str(exported))
    assert "Wrote 0 open quarantined row(s)" in again.stdout
