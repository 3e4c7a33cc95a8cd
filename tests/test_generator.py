"""The sample-data generator: contract layout, determinism, realism, and an exact ground truth.

The defect checks read the written files with an independent checker (below) and compare what it
finds, line by line, with `_ground_truth/defects.csv`: every listed line must show its defect, and
no unlisted line may show one. The generator's own bookkeeping is never trusted.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from orchestration.contract import TABLES
from orchestration.sample_data import generate
from orchestration.sample_data.generator import window_start_month
from orchestration.settings import PROJECT_ROOT

SMALL = {"orders": 2_000, "months": 3, "start_month": "2024-01"}
DEFECT_KINDS = {
    "duplicate", "conflicting_duplicate", "unparsable_row", "unparsable_value", "missing_value",
    "invalid_email", "invalid_phone", "orphan_order_item", "orphan_customer", "orphan_transaction",
    "non_positive_quantity", "non_positive_price", "price_outlier", "non_canonical_value", "unknown_status",
}
REAL_WORLD_CASES = {"empty_month", "month_without_lines", "cancelled_without_lines", "zero_value_payment",
                    "fully_discounted_line"}
# Issues #11/#12: price outliers stay well under 1 % of a month's gross revenue, as in real exports.
MAX_OUTLIER_REVENUE_SHARE = Decimal("0.01")
CATEGORICAL = {
    ("orders", "status"): {"placed", "paid", "shipped", "delivered", "completed", "cancelled", "returned"},
    ("channels", "channel_type"): {"web", "mobile", "marketplace", "social", "retail", "other"},
    ("transactions", "kind"): {"payment", "refund", "chargeback"},
    ("transactions", "status"): {"succeeded", "failed", "pending"},
    ("transactions", "payment_method"): {
        "credit_card", "debit_card", "paypal", "apple_pay", "bank_transfer", "gift_card", "voucher"},
}
TIMESTAMP_COLUMNS = {"order_ts", "transaction_ts"}
DATE_COLUMNS = {"signup_date", "snapshot_date"}
INTEGER_COLUMNS = {"line_number", "quantity", "on_hand_qty", "reserved_qty", "reorder_point"}
DECIMAL_COLUMNS = {"shipping_amount", "unit_price", "discount_amount", "amount", "unit_cost", "list_price"}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()\-]{5,}[0-9]$")


# ----------------------------------------------------------------------------------------------
# Reading the files back, and an independent defect checker
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    table: str
    source_file: str
    number: int
    fields: list[str]

    @property
    def month(self) -> str:
        return Path(self.source_file).stem if TABLES[self.table].monthly else ""

    @property
    def record(self) -> dict[str, str] | None:
        columns = TABLES[self.table].columns
        return dict(zip(columns, self.fields)) if len(self.fields) == len(columns) else None

    @property
    def key(self) -> str:
        columns = TABLES[self.table].columns
        return "|".join(self.fields[columns.index(name)] for name in TABLES[self.table].key)


def table_files(root: Path, name: str) -> list[Path]:
    return sorted((root / name).glob("*.csv")) if TABLES[name].monthly else [root / f"{name}.csv"]


def read_table_lines(root: Path, name: str) -> list[Line]:
    """Every data line of a table, with its 1-based line number (header = line 1)."""
    lines = []
    for path in table_files(root, name):
        text = path.read_text(encoding="utf-8")
        records = list(csv.reader(io.StringIO(text, newline="")))
        assert len(records) == len(text.splitlines()), f"{path}: a record spans lines"
        assert tuple(records[0]) == TABLES[name].columns, f"{path}: header differs from the contract"
        relative = path.relative_to(root).as_posix()
        lines += [Line(name, relative, number, fields) for number, fields in enumerate(records[1:], 2)]
    return lines


def read_lines(root: Path) -> dict[str, list[Line]]:
    return {name: read_table_lines(root, name) for name in TABLES}


def parse_timestamp(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


def parses(column: str, value: str) -> bool:
    if column in TIMESTAMP_COLUMNS:
        return parse_timestamp(value) is not None
    if column in DATE_COLUMNS:
        try:
            date.fromisoformat(value)
            return True
        except ValueError:
            return False
    if column in INTEGER_COLUMNS:
        return re.fullmatch(r"-?\d+", value) is not None
    if column in DECIMAL_COLUMNS:
        try:
            Decimal(value)
            return re.fullmatch(r"-?\d+(\.\d+)?", value) is not None
        except InvalidOperation:
            return False
    return True


def canonical(value: str) -> str:
    return re.sub(r"[\s\-]+", "_", value.strip().lower())


@dataclass(frozen=True)
class Known:
    """What the other tables say: the references a record is checked against."""
    customer_ids: set[str]
    order_month: dict[str, str]
    order_ts: dict[str, datetime | None]
    list_price: dict[str, Decimal]  # the last line of a product wins

    @classmethod
    def of(cls, lines: dict[str, list[Line]]) -> Known:
        records = {name: [line for line in table_lines if line.record] for name, table_lines in lines.items()}
        return cls(
            customer_ids={line.key for line in records["customers"]},
            order_month={line.key: line.month for line in records["orders"]},
            order_ts={line.key: parse_timestamp(line.record["order_ts"]) for line in records["orders"]},
            list_price={line.key: Decimal(line.record["list_price"]) for line in records["products"]},
        )


def find_anomalies(root: Path) -> dict[tuple[str, int], set[str]]:
    """(source_file, line) -> what is wrong with that line, judged from the files alone.

    Besides the injected kinds it reports realism faults ('wrong_month', 'off_list_price', ...)
    that must never occur."""
    lines = read_lines(root)
    found: dict[tuple[str, int], set[str]] = defaultdict(set)
    known = Known.of(lines)

    for name, table_lines in lines.items():
        first_seen: dict[tuple[str, str], list[str]] = {}
        for line in table_lines:
            flag = found[(line.source_file, line.number)].add
            record = line.record
            if record is None:
                flag("unparsable_row")
                continue
            earlier = first_seen.setdefault((line.source_file, line.key), line.fields)
            if earlier is not line.fields:
                flag("duplicate" if earlier == line.fields else "conflicting_duplicate")
            if any(record[column] == "" for column in TABLES[name].required_columns):
                flag("missing_value")
            if any(value and not parses(column, value) for column, value in record.items()):
                flag("unparsable_value")
                continue
            for column, value in record.items():
                allowed = CATEGORICAL.get((name, column))
                if allowed and value not in allowed:
                    if canonical(value) in allowed:
                        flag("non_canonical_value")
                    else:  # the contract flags an order status outside its list; nothing else may be
                        flag("unknown_status" if (name, column) == ("orders", "status") else "unknown_value")
            check_record = RECORD_CHECKS.get(name)
            if check_record:
                check_record(line, flag, known)
    return {where: kinds for where, kinds in found.items() if kinds}


def check_order(line, flag, known):
    record = line.record
    if record["customer_id"] and record["customer_id"] not in known.customer_ids:
        flag("orphan_customer")
    if record["order_ts"] and record["order_ts"][:7] != line.month:
        flag("wrong_month")
    if bool(record["ship_country"]) != bool(record["ship_city"]):
        flag("partial_address")


def check_order_item(line, flag, known):
    record = line.record
    if record["order_id"] not in known.order_month:
        flag("orphan_order_item")
    elif known.order_month[record["order_id"]] != line.month:
        flag("wrong_month")
    if not (record["quantity"] and record["unit_price"] and record["product_id"]):
        return
    quantity, price = int(record["quantity"]), Decimal(record["unit_price"])
    discount = Decimal(record["discount_amount"] or 0)
    if quantity <= 0:
        flag("non_positive_quantity")
    if price <= 0:
        flag("non_positive_price")
    if record["product_id"] not in known.list_price:
        flag("unknown_product")
    elif price > 0:
        ratio = price / known.list_price[record["product_id"]]
        if ratio > 10:  # the pipeline's rule: over 10x the list price
            flag("price_outlier")
        elif not Decimal("0.5") <= ratio <= 1:
            flag("off_list_price")
    if quantity > 0 and price > 0 and not 0 <= discount <= quantity * price:
        flag("bad_discount")


def check_transaction(line, flag, known):
    record = line.record
    if record["transaction_ts"][:7] != line.month:
        flag("wrong_month")
    if Decimal(record["amount"]) < 0:  # 0.00 is valid (a voucher): a real-world case, not a defect
        flag("negative_amount")
    if record["order_id"] not in known.order_month:
        flag("orphan_transaction")
    elif parse_timestamp(record["transaction_ts"]) < known.order_ts[record["order_id"]]:
        flag("before_order")


def check_customer(line, flag, known):
    if not EMAIL_RE.match(line.record["email"]):
        flag("invalid_email")
    phone = line.record["phone"]
    if phone and not (PHONE_RE.match(phone) and 7 <= sum(c.isdigit() for c in phone) <= 15):
        flag("invalid_phone")


def check_product(line, flag, known):
    cost, price = line.record["unit_cost"], Decimal(line.record["list_price"])
    if price <= 0 or (cost and Decimal(cost) >= price):
        flag("cost_not_below_price")


def check_inventory(line, flag, known):
    on_hand, reserved = int(line.record["on_hand_qty"]), int(line.record["reserved_qty"])
    if on_hand < 0 or not 0 <= reserved <= on_hand:
        flag("impossible_stock")
    if line.record["snapshot_date"][:7] != line.month:
        flag("wrong_month")


RECORD_CHECKS = {
    "orders": check_order, "order_items": check_order_item, "transactions": check_transaction,
    "customers": check_customer, "products": check_product, "inventory_snapshots": check_inventory,
}


def read_ground_truth(root: Path, name: str = "defects.csv") -> list[dict[str, str]]:
    with (root / "_ground_truth" / name).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == (
            "table_name", "month", "record_key", "kind", "source_file", "source_line")
        return list(reader)


def read_real_world_truth(root: Path) -> list[dict[str, str]]:
    return read_ground_truth(root, "real_world.csv")


def is_clean_record(line: Line) -> bool:
    """A line the pipeline would load as it is: it splits into the contract's fields, every value
    parses, the required ones are there."""
    record = line.record
    return record is not None and all(not value or parses(column, value) for column, value in record.items()) and all(
        record[column] for column in TABLES[line.table].required_columns)


def find_real_world_cases(root: Path) -> set[tuple[str, str, int | None]]:
    """(case, source_file or month, line) of every real-world case, judged from the files alone:
    a month between the first and the last without any monthly file; a month with orders and no
    order lines; a cancelled order no line refers to; a payment of 0.00; a line discounted by its
    whole amount."""
    cases: set[tuple[str, str, int | None]] = set()
    monthly = [name for name, table in TABLES.items() if table.monthly]
    delivered = {path.stem for name in monthly for path in table_files(root, name)}
    first, last = min(delivered), max(delivered)
    month = date.fromisoformat(first + "-01")
    while month.isoformat()[:7] < last:
        if month.isoformat()[:7] not in delivered:
            cases.add(("empty_month", month.isoformat()[:7], None))
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)

    lines = read_lines(root)
    months_with_orders = {line.month for line in lines["orders"]}
    for month in months_with_orders - {line.month for line in lines["order_items"]}:
        cases.add(("month_without_lines", month, None))
    ordered = {line.fields[0] for line in lines["order_items"]}  # order_id comes first, even in a broken line
    for line in lines["orders"]:
        if is_clean_record(line) and line.record["status"] == "cancelled" and line.key not in ordered:
            cases.add(("cancelled_without_lines", line.source_file, line.number))
    for line in filter(is_clean_record, lines["transactions"]):
        if Decimal(line.record["amount"]) == 0:
            cases.add(("zero_value_payment", line.source_file, line.number))
    for line in filter(is_clean_record, lines["order_items"]):
        quantity, price = int(line.record["quantity"]), Decimal(line.record["unit_price"])
        if quantity > 0 and price > 0 and Decimal(line.record["discount_amount"] or 0) == quantity * price:
            cases.add(("fully_discounted_line", line.source_file, line.number))
    return cases


def real_world_truth_places(truth: list[dict[str, str]]) -> set[tuple[str, str, int | None]]:
    return {(row["kind"], row["source_file"], int(row["source_line"])) if row["source_file"]
            else (row["kind"], row["month"], None) for row in truth}


def gross_revenue_by_month(root: Path) -> dict[str, Decimal]:
    """docs/metrics.md's gross revenue per month, from the files: valid lines (the last of a
    duplicated key) of orders that are not cancelled (an unknown status counts as placed)."""
    lines = read_lines(root)
    status = {line.key: canonical(line.record["status"]) for line in filter(is_clean_record, lines["orders"])}
    kept: dict[str, dict[str, str]] = {}
    for line in filter(is_clean_record, lines["order_items"]):
        kept[line.key] = line.record | {"_month": line.month}
    revenue: Counter[str] = Counter()
    for record in kept.values():
        quantity, price = int(record["quantity"]), Decimal(record["unit_price"])
        discount = Decimal(record["discount_amount"] or 0)
        valid = quantity > 0 and price > 0 and 0 <= discount <= quantity * price
        if valid and status.get(record["order_id"], "cancelled") != "cancelled":
            revenue[record["_month"]] += quantity * price - discount
    return dict(revenue)


def read_table(root: Path, name: str) -> list[dict[str, str]]:
    return [line.record for line in read_table_lines(root, name) if line.record]


# ----------------------------------------------------------------------------------------------
# Samples (module scope: each is generated once)
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def defective(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("defective")
    return root, generate(root, seed=7, **SMALL)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clean")
    generate(root, seed=7, defect_rate=0, **SMALL)
    return root


@pytest.fixture(scope="module")
def year(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("year")
    generate(root, orders=20_000, months=12, start_month="2024-01", seed=11, defect_rate=0)
    return root


@pytest.fixture(scope="module")
def default_sample(tmp_path_factory) -> tuple[Path, dict]:
    """What `generate` writes with its defaults (50,000 orders over 24 months from 2024-01)."""
    root = tmp_path_factory.mktemp("default")
    return root, generate(root)


def file_bytes(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


# ----------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path, defective):
    root, _ = defective
    again = tmp_path / "again"
    generate(again, seed=7, **SMALL)
    assert file_bytes(again) == file_bytes(root)

    other = tmp_path / "other"
    generate(other, seed=8, **SMALL)
    other_files, first_files = file_bytes(other), file_bytes(root)
    assert other_files.keys() == first_files.keys()
    assert other_files["orders/2024-01.csv"] != first_files["orders/2024-01.csv"]
    assert other_files["_ground_truth/defects.csv"] != first_files["_ground_truth/defects.csv"]


def test_every_contract_table_is_written_with_the_contract_header(defective):
    root, summary = defective
    assert (summary["first_month"], summary["last_month"], summary["empty_month"]) == ("2024-01", "2024-03", "2024-02")
    for name, table in TABLES.items():  # the shop was closed in February: no file of any monthly table
        expected = [f"{name}/2024-0{m}.csv" for m in (1, 3)] if table.monthly else [f"{name}.csv"]
        assert [p.relative_to(root).as_posix() for p in table_files(root, name)] == expected
        assert summary["paths"][name] == expected
        for path in expected:
            header = (root / path).read_text(encoding="utf-8").splitlines()[0]
            assert tuple(next(csv.reader([header]))) == table.columns
        assert summary["rows"][name] == len(read_table_lines(root, name)) > 0


def test_every_defect_kind_is_injected_at_about_the_requested_rate(defective):
    root, summary = defective
    truth = read_ground_truth(root)
    assert {row["kind"] for row in truth} == DEFECT_KINDS
    assert summary["defects"] == dict(Counter(row["kind"] for row in truth)) | {
        kind: 0 for kind in DEFECT_KINDS - {row["kind"] for row in truth}}
    defect_tables = {"orders", "order_items", "transactions", "customers", "products"}
    rows = sum(summary["rows"][name] for name in defect_tables)
    in_those = sum(1 for row in truth if row["table_name"] in defect_tables)
    assert 0.02 <= in_those / rows <= 0.04


def test_ground_truth_lists_exactly_the_lines_that_show_a_defect(defective):
    root, _ = defective
    truth = read_ground_truth(root)
    listed = {(row["source_file"], int(row["source_line"])): row["kind"] for row in truth}
    assert len(listed) == len(truth), "a line is listed twice"
    found = find_anomalies(root)
    assert found == {where: {kind} for where, kind in listed.items()}


def test_ground_truth_rows_name_table_month_and_record_key_of_their_line(defective):
    root, _ = defective
    lines = [line for table_lines in read_lines(root).values() for line in table_lines]
    by_place = {(line.source_file, line.number): line for line in lines}
    first_line_of_key: dict[tuple[str, str], int] = {}
    for line in lines:
        first_line_of_key.setdefault((line.source_file, line.key), line.number)
    for row in read_ground_truth(root):
        line = by_place[(row["source_file"], int(row["source_line"]))]
        assert (row["table_name"], row["month"], row["record_key"]) == (line.table, line.month, line.key)
        if row["kind"] in {"duplicate", "conflicting_duplicate"}:
            assert first_line_of_key[(line.source_file, line.key)] < line.number


def test_clean_sample_has_no_defects_in_its_files(clean):
    assert read_ground_truth(clean) == []
    assert find_anomalies(clean) == {}


def test_clean_sample_keeps_the_real_world_shape(clean):
    """Real-world shape is not a defect: a defect rate of 0 keeps it, and records it."""
    truth = read_real_world_truth(clean)
    assert real_world_truth_places(truth) == find_real_world_cases(clean)
    assert ("empty_month", "2024-02", None) in real_world_truth_places(truth)
    assert any(row["kind"] == "cancelled_without_lines" for row in truth)
    assert not any(row["kind"] == "month_without_lines" for row in truth)  # 3 months: too short for it


def test_regenerating_replaces_its_own_files_and_keeps_everything_else(tmp_path):
    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / "2019-01.csv").write_text("stale month\n")
    (tmp_path / "orders" / "README.txt").write_text("mine\n")
    (tmp_path / "notes.txt").write_text("mine\n")
    generate(tmp_path, orders=200, months=2, seed=1)
    generate(tmp_path, orders=100, months=1, seed=2, start_month="2024-05")
    assert sorted(p.name for p in (tmp_path / "orders").iterdir()) == ["2024-05.csv", "README.txt"]
    assert sorted(p.name for p in (tmp_path / "transactions").iterdir()) == ["2024-05.csv"]
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_top_fifth_of_products_makes_most_of_the_revenue(year):
    revenue: Counter[str] = Counter()
    for item in read_table(year, "order_items"):
        revenue[item["product_id"]] += int(item["quantity"]) * Decimal(item["unit_price"]) - Decimal(
            item["discount_amount"])
    catalogue = len(read_table(year, "products"))
    top = sorted(revenue.values(), reverse=True)[: math.ceil(0.2 * catalogue)]
    assert sum(top) / sum(revenue.values()) >= 0.7


def test_q4_months_have_more_orders_than_the_average_month(year):
    per_month = Counter(order["order_ts"][:7] for order in read_table(year, "orders"))
    average = sum(per_month.values()) / len(per_month)
    assert all(per_month[f"2024-{m}"] > average for m in ("10", "11", "12"))
    assert per_month["2024-12"] > 1.3 * average


def test_orders_show_weekly_and_daily_rhythm(year):
    stamps = [parse_timestamp(order["order_ts"]) for order in read_table(year, "orders")]
    by_weekday = Counter(stamp.weekday() for stamp in stamps)
    by_hour = Counter(stamp.hour for stamp in stamps)
    assert by_weekday[5] < by_weekday[6]  # quieter Saturday, busy Sunday evening
    assert by_hour[20] > 5 * by_hour[4]


def test_orders_payments_and_stock_follow_the_business_rules(year):
    orders = {order["order_id"]: order for order in read_table(year, "orders")}
    statuses = Counter(order["status"] for order in orders.values())
    assert set(statuses) == CATEGORICAL[("orders", "status")]
    assert 0.05 <= sum(1 for o in orders.values() if not o["customer_id"]) / len(orders) <= 0.25
    assert len({o["channel_id"] for o in orders.values()}) >= 5
    assert len({o["ship_country"] for o in orders.values()} - {""}) == 6

    lines_per_order = Counter(item["order_id"] for item in read_table(year, "order_items"))
    assert set(lines_per_order.values()) == {1, 2, 3, 4, 5}
    cancelled_without_lines = {row["record_key"] for row in read_real_world_truth(year)
                               if row["kind"] == "cancelled_without_lines"}
    assert cancelled_without_lines and lines_per_order.keys() == orders.keys() - cancelled_without_lines

    by_order: dict[str, list[dict[str, str]]] = defaultdict(list)
    for transaction in read_table(year, "transactions"):
        by_order[transaction["order_id"]].append(transaction)
    for order_id, order in orders.items():
        events = sorted(by_order[order_id], key=lambda t: t["transaction_ts"])
        payments = [t for t in events if t["kind"] == "payment"]
        if order["status"] == "cancelled":
            assert events == []
            continue
        assert [t["status"] for t in payments] in (["succeeded"], ["failed", "succeeded"], ["pending"])
        assert (order["status"] == "placed") == (payments[-1]["status"] == "pending")
        assert (order["status"] == "returned") == any(t["kind"] == "refund" for t in events)
    assert CATEGORICAL[("transactions", "payment_method")] - {"voucher"} <= {
        t["payment_method"] for ts in by_order.values() for t in ts} <= CATEGORICAL[("transactions", "payment_method")]

    stock = read_table(year, "inventory_snapshots")
    products = {row["product_id"] for row in stock}
    assert 30 <= len(products) <= 60 and len({row["warehouse_id"] for row in stock}) >= 3
    [empty_month] = [row["month"] for row in read_real_world_truth(year) if row["kind"] == "empty_month"]
    closed_days = sum(1 for day in range(1, 32) if _is_date(f"{empty_month}-{day:02d}"))
    assert len(stock) == len(products) * len({row["warehouse_id"] for row in stock}) * (366 - closed_days)
    stockouts = sum(1 for row in stock if int(row["on_hand_qty"]) - int(row["reserved_qty"]) <= 0)
    assert 0 < stockouts / len(stock) < 0.1


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
        return True
    except ValueError:
        return False


# ----------------------------------------------------------------------------------------------
# Real exports' shape (issues #11 and #12): the default window, an empty month, abandoned
# orders, zero-value payments, unknown statuses and rare, small price outliers
# ----------------------------------------------------------------------------------------------


def _month_after(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _month_before(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def test_default_window_is_the_months_ending_with_the_last_complete_month():
    assert window_start_month(24, date(2026, 12, 2)) == "2024-12"  # 2024-12 .. 2026-11
    assert window_start_month(24, date(2026, 11, 30)) == "2024-11"  # November is not complete yet
    assert window_start_month(24, date(2026, 1, 1)) == "2024-01"
    assert window_start_month(1, date(2026, 3, 31)) == "2026-02"


@pytest.mark.parametrize("timezone", ["UTC", "Pacific/Kiritimati"])
def test_nexcart_generate_without_start_month_ends_with_the_last_complete_month_in_the_store_time_zone(
        tmp_path, timezone):
    before = datetime.now(ZoneInfo(timezone)).date()
    subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "generate", "--orders", "300", "--months", "3",
         "--out", str(tmp_path)],
        cwd=PROJECT_ROOT, env=os.environ | {"NEXCART_TIMEZONE": timezone}, check=True, capture_output=True,
    )
    after = datetime.now(ZoneInfo(timezone)).date()
    windows = set()
    for today in (before, after):  # the date may turn while the command runs
        last = _month_before(today.replace(day=1))
        windows.add((_month_before(_month_before(last)).isoformat()[:7], last.isoformat()[:7]))
    delivered = sorted(path.stem for path in (tmp_path / "orders").glob("*.csv"))
    assert (delivered[0], delivered[-1]) in windows
    assert len(delivered) == 2  # the middle month is the shop's empty month


def test_the_empty_month_is_inside_the_window_and_follows_the_seed(tmp_path):
    empty = {seed: generate(tmp_path / f"s{seed}", orders=300, months=24, seed=seed)["empty_month"]
             for seed in (1, 2, 3, 4, 5)}
    assert generate(tmp_path / "again", orders=300, months=24, seed=3)["empty_month"] == empty[3]
    assert all("2024-01" < month < "2025-12" for month in empty.values())
    assert len(set(empty.values())) > 1
    for seed, month in empty.items():
        assert all(not (tmp_path / f"s{seed}" / name / f"{month}.csv").exists()
                   for name, table in TABLES.items() if table.monthly)
        assert ("empty_month", month, None) in real_world_truth_places(read_real_world_truth(tmp_path / f"s{seed}"))

    two_months = generate(tmp_path / "short", orders=300, months=2, seed=1)  # no month strictly inside
    assert two_months["empty_month"] is None and two_months["month_without_lines"] is None
    assert [path.stem for path in sorted((tmp_path / "short" / "orders").glob("*.csv"))] == ["2024-01", "2024-02"]


def test_default_sample_has_every_real_world_case_and_the_ground_truth_lists_exactly_them(default_sample):
    root, summary = default_sample
    truth = read_real_world_truth(root)
    assert real_world_truth_places(truth) == find_real_world_cases(root)
    counts = Counter(row["kind"] for row in truth)
    assert summary["real_world"] == dict(counts) and set(counts) == REAL_WORLD_CASES
    assert counts["empty_month"] == 1
    payments = sum(1 for t in read_table(root, "transactions") if t["kind"] == "payment")
    assert 3 <= counts["zero_value_payment"] <= 0.0003 * payments  # a few among thousands
    assert 3 <= counts["cancelled_without_lines"] <= 0.002 * summary["rows"]["orders"]

    lines = {(line.source_file, line.number): line for table_lines in read_lines(root).values()
             for line in table_lines}
    for row in truth:
        if row["source_file"]:  # the month-level cases name only their month
            line = lines[(row["source_file"], int(row["source_line"]))]
            assert (row["table_name"], row["month"], row["record_key"]) == (line.table, line.month, line.key)
    [empty_month] = [row["month"] for row in truth if row["kind"] == "empty_month"]
    assert summary["first_month"] < empty_month == summary["empty_month"] < summary["last_month"]
    cancelled_months = {row["month"] for row in truth if row["kind"] == "cancelled_without_lines"}
    assert cancelled_months and empty_month not in cancelled_months

    # The soft reopening: the month after the empty one has only orders cancelled before a line.
    [reopening] = [row["month"] for row in truth if row["kind"] == "month_without_lines"]
    assert reopening == summary["month_without_lines"] and reopening[:7] > empty_month
    assert date.fromisoformat(reopening + "-01") == _month_after(date.fromisoformat(empty_month + "-01"))
    orders = read_table_lines(root, "orders")
    reopening_orders = {(line.source_file, line.number) for line in orders if line.month == reopening}
    assert reopening_orders and reopening_orders <= {(row["source_file"], int(row["source_line"])) for row in truth
                                                     if row["kind"] == "cancelled_without_lines"}
    assert (root / "order_items" / f"{reopening}.csv").read_text(encoding="utf-8").count("\n") == 1  # header only


def test_zero_value_payments_are_vouchers_for_fully_discounted_orders(default_sample):
    root, _ = default_sample
    truth = read_real_world_truth(root)
    transactions = {t["transaction_id"]: t for t in read_table(root, "transactions")}
    orders = {o["order_id"]: o for o in read_table(root, "orders")}
    voucher_orders = set()
    for row in truth:
        if row["kind"] == "zero_value_payment":
            payment = transactions[row["record_key"]]
            assert (payment["kind"], payment["status"], payment["amount"]) == ("payment", "succeeded", "0.00")
            assert payment["payment_method"] in {"gift_card", "voucher"}
            voucher_orders.add(payment["order_id"])
    for order_id in voucher_orders:
        assert orders[order_id]["status"] != "cancelled" and orders[order_id]["shipping_amount"] == "0.00"
        assert [t["transaction_id"] for t in transactions.values() if t["order_id"] == order_id] == [
            row["record_key"] for row in truth if row["kind"] == "zero_value_payment"
            and transactions[row["record_key"]]["order_id"] == order_id]  # no refund, no failed attempt
    discounted = [row["record_key"] for row in truth if row["kind"] == "fully_discounted_line"]
    assert {key.split("|")[0] for key in discounted} == voucher_orders
    line_count = Counter(item["order_id"] for item in read_table(root, "order_items"))
    assert len(discounted) == sum(line_count[order_id] for order_id in voucher_orders)  # every line of them


def test_cancelled_orders_without_lines_have_no_payment(default_sample):
    root, _ = default_sample
    abandoned = {row["record_key"] for row in read_real_world_truth(root) if row["kind"] == "cancelled_without_lines"}
    orders = {o["order_id"]: o for o in read_table(root, "orders")}
    assert abandoned and all(orders[order_id]["status"] == "cancelled" for order_id in abandoned)
    assert all(orders[order_id]["shipping_amount"] == "0.00" for order_id in abandoned)
    assert not abandoned & {t["order_id"] for t in read_table(root, "transactions")}


def test_a_few_orders_have_a_status_outside_the_contract_list(default_sample):
    root, summary = default_sample
    unknown = [row for row in read_ground_truth(root) if row["kind"] == "unknown_status"]
    assert 3 <= len(unknown) <= 0.002 * summary["rows"]["orders"]
    statuses = {o["order_id"]: o["status"] for o in read_table(root, "orders")}
    assert {statuses[row["record_key"]] for row in unknown} <= {"on_hold", "awaiting_payment", "backordered"}


def test_price_outliers_make_well_under_one_percent_of_every_months_gross_revenue(default_sample):
    root, _ = default_sample
    gross = gross_revenue_by_month(root)
    items = {(line.source_file, line.number): line.record for line in read_table_lines(root, "order_items")}
    list_price = {p["product_id"]: Decimal(p["list_price"]) for p in read_table(root, "products")}
    outliers = [row for row in read_ground_truth(root) if row["kind"] == "price_outlier"]
    assert outliers  # the pipeline must still have outliers to flag
    outlier_revenue: Counter[str] = Counter()
    for row in outliers:
        item = items[(row["source_file"], int(row["source_line"]))]
        assert Decimal(item["unit_price"]) > 10 * list_price[item["product_id"]]
        outlier_revenue[row["month"]] += int(item["quantity"]) * Decimal(item["unit_price"]) - Decimal(
            item["discount_amount"] or 0)
    share = {month: outlier_revenue[month] / revenue for month, revenue in gross.items()}
    assert set(outlier_revenue) <= set(gross)
    assert max(share.values()) < MAX_OUTLIER_REVENUE_SHARE, {m: f"{v:.3%}" for m, v in share.items()}
