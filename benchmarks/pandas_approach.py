"""The usual approach: the three headline marts with plain pandas, as a typical portfolio pipeline
computes them (read every CSV, dedupe, merge, group by month), with the contract's rules.

    .venv/bin/python benchmarks/pandas_approach.py RAW_ROOT OUT_DIR

Writes OUT_DIR/monthly_revenue.pkl, monthly_top_products.pkl and customer_rfm.pkl (pandas
pickles); benchmarks/harness.py times it in its own process and compares them with the marts.

Money is held as integer ten-thousandths (the contract's 4 decimals), so sums are exact and the
one rounding to the cent (half away from zero) matches the marts'; money columns come out as
floats of whole cents. Assumes what floor.sql assumes of the files (nexcart generate's output:
comma-separated, contract column order, UTF-8, .csv, store time zone UTC). A line with more or
fewer fields than the header is skipped: pandas would pad a short line silently, so the lines are
counted first (quoted fields spanning lines are not supported).
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

MONTH_FILE = re.compile(r"^(\d{4}-\d{2})\.csv$")
NO_VALUE = {"NULL", "N/A", "NA", "NONE", "-"}
DECIMAL_RE = r"[+-]?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)"
INTEGER_RE = r"[+-]?[0-9]+"
LOCAL_TS_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.][0-9]{1,6})?)?"
OFFSET_TS_RE = rf"({LOCAL_TS_RE})(Z|([+-])(0[0-9]|1[0-4]):?([0-5][0-9])?)"
ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "completed", "cancelled", "returned")
MONTHLY_TABLES = ("orders", "order_items", "transactions", "inventory_snapshots")


def read_file(path: Path) -> pd.DataFrame:
    """One CSV as text columns, '' for an empty field, without the lines whose field count is not
    the header's; _line is the record's position in the file."""
    with open(path, encoding="utf-8-sig", newline="") as stream:
        header = next(csv.reader(stream))
    lines = pd.read_csv(path, sep="\x1f", header=None, names=["text"], dtype=str, quoting=csv.QUOTE_NONE,
                        keep_default_na=False, skip_blank_lines=True, encoding="utf-8-sig")["text"]
    fields = lines.str.replace(r'"(?:[^"]|"")*"', "", regex=True).str.count(",") + 1
    bad = [int(i) for i in np.flatnonzero((fields != len(header)).to_numpy()) if i > 0]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, skiprows=bad, encoding="utf-8-sig")
    frame["_line"] = np.arange(len(frame))
    return frame


def read_table(raw: Path, table: str) -> pd.DataFrame:
    """Every monthly file of a table, with its month (_month) and file (_file)."""
    frames = []
    for path in sorted((raw / table).glob("*.csv")):
        month = MONTH_FILE.match(path.name)
        if month:
            frame = read_file(path)
            frame["_month"], frame["_file"] = month.group(1), f"{table}/{path.name}"
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def clean_text(s: pd.Series) -> pd.Series:
    s = s.str.strip(" \t\n\f\r")  # what RE2's \s matches (the pipeline's clean_text); '' is no value
    return s.where(s != "")


def typed_text(s: pd.Series) -> pd.Series:
    s = clean_text(s)
    return s.where(~s.str.upper().isin(NO_VALUE))


def parse_money(s: pd.Series) -> pd.Series:
    """Decimal text -> integer ten-thousandths (Int64), <NA> when not a contract decimal."""
    ok = s.str.fullmatch(DECIMAL_RE).fillna(False).astype(bool)
    values = pd.to_numeric(s.where(ok), errors="coerce")
    return (values * 10_000).round().astype("Int64")


def parse_integer(s: pd.Series) -> pd.Series:
    ok = s.str.fullmatch(INTEGER_RE).fillna(False).astype(bool)
    values = pd.to_numeric(s.where(ok), errors="coerce")
    return values.where(values.abs() < 2**31).astype("Int64")


def parse_timestamp(s: pd.Series) -> pd.Series:
    """Contract timestamps; one with a UTC offset is moved to UTC (the store's time zone)."""
    local = s.str.fullmatch(LOCAL_TS_RE).fillna(False).astype(bool)
    result = pd.to_datetime(s.where(local).str.replace("T", " ", regex=False), format="ISO8601", errors="coerce")
    offset = s.str.fullmatch(OFFSET_TS_RE).fillna(False).astype(bool)
    if offset.any():
        parts = s[offset].str.extract(f"^{OFFSET_TS_RE}$")
        wall = pd.to_datetime(parts[0].str.replace("T", " ", regex=False), format="ISO8601", errors="coerce")
        minutes = np.where(parts[1] == "Z", 0, np.where(parts[2] == "-", -1, 1)
                           * (pd.to_numeric(parts[3], errors="coerce").fillna(0) * 60
                              + pd.to_numeric(parts[4], errors="coerce").fillna(0)))
        result[offset] = wall - pd.to_timedelta(minutes, unit="min")
    return result


def last_wins(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """One row per key: the latest file's, then its last line (the contract's rule)."""
    return frame.sort_values(["_month", "_file", "_line"]).drop_duplicates(key, keep="last")


def cents(ten_thousandths) -> np.ndarray:
    """Round integer ten-thousandths to whole cents, half away from zero (exact)."""
    v = np.asarray(ten_thousandths, dtype="int64")
    return np.sign(v) * ((np.abs(v) + 50) // 100)


def money(ten_thousandths) -> np.ndarray:
    return cents(ten_thousandths) / 100


def ntile5(frame: pd.DataFrame, by: list[str], ascending: list[bool]) -> pd.Series:
    """SQL's ntile(5) over (partition by month order by ...): the first n % 5 tiles get a row more."""
    ordered = frame.sort_values(["month", *by], ascending=[True, *ascending])
    position = ordered.groupby("month").cumcount().to_numpy()
    n = ordered.groupby("month")["month"].transform("size").to_numpy()
    q, r = n // 5, n % 5
    big = r * (q + 1)
    tile = np.where(position < big, position // np.maximum(q + 1, 1), r + (position - big) // np.maximum(q, 1))
    return pd.Series(tile + 1, index=ordered.index).reindex(frame.index)


def compute(raw: Path) -> dict[str, pd.DataFrame]:
    # orders: valid rows, deduplicated
    o = read_table(raw, "orders")
    o["order_id"], o["customer_id"] = clean_text(o["order_id"]), clean_text(o["customer_id"])
    ts_text = typed_text(o["order_ts"])
    o["order_ts"] = parse_timestamp(ts_text)
    ship_text = typed_text(o["shipping_amount"])
    valid = (o["order_id"].notna() & ts_text.notna() & o["order_ts"].notna()
             & ~(ship_text.notna() & parse_money(ship_text).isna())
             & (o["order_ts"].dt.strftime("%Y-%m") == o["_month"]))
    o = last_wins(o[valid.fillna(False)], ["order_id"])
    status = clean_text(o["status"]).str.lower()
    o["status"] = status.where(status.isin(ORDER_STATUSES), "placed")
    o["order_date"] = o["order_ts"].dt.normalize()
    o["month"] = o["order_ts"].dt.to_period("M").dt.to_timestamp()
    orders = o[["order_id", "customer_id", "order_date", "month", "status", "_month"]]

    # products (reference snapshot, last line wins)
    p = read_file(raw / "products.csv")
    p["_month"], p["_file"] = "", "products.csv"
    p["product_id"] = clean_text(p["product_id"])
    cost_text, price_text = typed_text(p["unit_cost"]), typed_text(p["list_price"])
    p["unit_cost"], p["list_price"] = parse_money(cost_text), parse_money(price_text)
    p = p[p["product_id"].notna() & ~(cost_text.notna() & p["unit_cost"].isna())
          & ~(price_text.notna() & p["list_price"].isna())]
    p = last_wins(p, ["product_id"])
    p["product_name"] = clean_text(p["product_name"])
    p["category"] = clean_text(p["category"]).fillna("Unknown")
    products = p[["product_id", "product_name", "category", "unit_cost", "list_price"]]

    # order lines: valid, deduplicated, of counted (known, not cancelled) orders
    i = read_table(raw, "order_items")
    i["order_id"], i["product_id"] = clean_text(i["order_id"]), clean_text(i["product_id"])
    texts = {c: typed_text(i[c]) for c in ("line_number", "quantity", "unit_price", "discount_amount")}
    i["line_number"], i["quantity"] = parse_integer(texts["line_number"]), parse_integer(texts["quantity"])
    i["unit_price"], discount = parse_money(texts["unit_price"]), parse_money(texts["discount_amount"])
    i["discount"] = discount.fillna(0)
    gross = i["quantity"] * i["unit_price"]
    valid = (i["order_id"].notna() & texts["line_number"].notna() & i["product_id"].notna()
             & texts["quantity"].notna() & texts["unit_price"].notna() & i["line_number"].notna()
             & i["quantity"].notna() & i["unit_price"].notna()
             & ~(texts["discount_amount"].notna() & discount.isna())
             & (i["quantity"] > 0) & (i["unit_price"] > 0) & (i["discount"] >= 0) & (i["discount"] <= gross))
    i = last_wins(i[valid.fillna(False)], ["order_id", "line_number"])
    i["line_revenue"] = i["quantity"] * i["unit_price"] - i["discount"]
    lines = i.merge(orders[orders["status"] != "cancelled"], on="order_id", how="inner", suffixes=("", "_order"))
    lines = lines.merge(products, on="product_id", how="left")
    lines["category"] = lines["category"].fillna("Unknown")
    lines["line_cogs"] = lines["quantity"] * lines["unit_cost"]
    lines["is_outlier"] = ((lines["list_price"] > 0)
                           & ((lines["unit_price"] > 10 * lines["list_price"])
                              | (lines["unit_price"] * 10 < lines["list_price"]))).fillna(False).astype(bool)
    lines["costed_revenue"] = lines["line_revenue"].where(lines["line_cogs"].notna())
    lines["flagged_revenue"] = lines["line_revenue"].where(lines["is_outlier"])

    counted = lines.groupby("order_id").agg(
        units=("quantity", "sum"), gross=("line_revenue", "sum"), discounts=("discount", "sum"),
        cogs=("line_cogs", "sum"), costed=("costed_revenue", "sum"), costed_lines=("line_cogs", "count"),
        flagged=("flagged_revenue", "sum"),
    ).reset_index().merge(orders[["order_id", "customer_id", "order_date", "month"]], on="order_id")
    first = counted.dropna(subset=["customer_id"]).groupby("customer_id")["month"].min().rename("first_month")
    counted = counted.merge(first, left_on="customer_id", right_index=True, how="left")

    # refunds: succeeded refunds and chargebacks of valid, deduplicated transactions
    t = read_table(raw, "transactions")
    t["transaction_id"], t["order_id"] = clean_text(t["transaction_id"]), clean_text(t["order_id"])
    ts_text, amount_text = typed_text(t["transaction_ts"]), typed_text(t["amount"])
    t["ts"], t["amount"] = parse_timestamp(ts_text), parse_money(amount_text)
    t["kind"], t["status"] = clean_text(t["kind"]).str.lower(), clean_text(t["status"]).str.lower()
    valid = (t["transaction_id"].notna() & t["order_id"].notna() & ts_text.notna() & t["ts"].notna()
             & ~(amount_text.notna() & t["amount"].isna()) & ~(t["amount"] < 0).fillna(False)
             & (t["kind"].isin(["payment", "refund", "chargeback"]) | t["kind"].isna())
             & (t["status"].isin(["succeeded", "failed", "pending"]) | t["status"].isna())
             & (t["ts"].dt.strftime("%Y-%m") == t["_month"]))
    t = last_wins(t[valid.fillna(False)], ["transaction_id"])
    t = t[(t["status"] == "succeeded") & t["kind"].isin(["refund", "chargeback"])]
    refunds = t.groupby(t["ts"].dt.to_period("M").dt.to_timestamp())["amount"].sum().rename("refunds")

    # the month spine, and which months had a monthly file delivered
    delivered = {pd.Timestamp(f"{m.group(1)}-01") for table in MONTHLY_TABLES if (raw / table).is_dir()
                 for f in (raw / table).glob("*.csv") if (m := MONTH_FILE.match(f.name))}
    file_months = pd.to_datetime(orders["_month"].drop_duplicates() + "-01")
    known = [file_months.min(), file_months.max(), orders["month"].min(), orders["month"].max(), *delivered]
    known = [k for k in known if pd.notna(k)]
    months = pd.date_range(min(known), max(known), freq="MS")

    sales = counted.groupby("month").agg(
        orders=("order_id", "size"), units=("units", "sum"), gross=("gross", "sum"), discounts=("discounts", "sum"),
        cogs=("cogs", "sum"), costed=("costed", "sum"), costed_lines=("costed_lines", "sum"),
        flagged=("flagged", "sum"),
    )
    with_customer = counted.dropna(subset=["customer_id"])
    new = with_customer[with_customer["first_month"] == with_customer["month"]].groupby("month")["customer_id"].nunique()
    returning = with_customer[with_customer["first_month"] < with_customer["month"]].groupby("month")["customer_id"].nunique()
    m = pd.DataFrame(index=months).join(sales).join(refunds).join(new.rename("new")).join(returning.rename("returning"))
    for column in ("orders", "units", "gross", "discounts", "flagged", "refunds", "new", "returning"):
        m[column] = m[column].fillna(0).astype("int64")
    gross_v, refunds_v, orders_v = m["gross"].to_numpy(), m["refunds"].to_numpy(), m["orders"].to_numpy()
    costed_lines = m["costed_lines"].fillna(0).to_numpy() > 0  # cogs is NULL when no line has a cost
    cogs_v = m["cogs"].fillna(0).astype("int64").to_numpy()
    costed_v = m["costed"].fillna(0).astype("int64").to_numpy()
    prev_month = m["gross"].reindex(months - pd.DateOffset(months=1)).to_numpy(dtype=float)
    prev_year = m["gross"].reindex(months - pd.DateOffset(months=12)).to_numpy(dtype=float)
    # aov to the cent, half away from zero, in exact integers (gross is in ten-thousandths)
    aov = [np.nan if d == 0 else int(np.sign(a)) * ((2 * abs(int(a)) + 100 * int(d)) // (200 * int(d))) / 100
           for a, d in zip(gross_v, orders_v)]

    def ratio(num, den):
        den = np.asarray(den, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where((den == 0) | np.isnan(den), np.nan, np.asarray(num, dtype=float) / den)

    revenue = pd.DataFrame({
        "month": months,
        "orders": orders_v, "units": m["units"].to_numpy(),
        "gross_revenue": money(gross_v), "discounts": money(m["discounts"]), "refunds": money(refunds_v),
        "net_revenue": money(gross_v - refunds_v), "aov": aov,
        "cogs": np.where(costed_lines, money(cogs_v), np.nan),
        "gross_margin": np.where(costed_lines, money(costed_v - cogs_v), np.nan),
        "new_customers": m["new"].to_numpy(), "returning_customers": m["returning"].to_numpy(),
        "mom_growth": ratio(gross_v - prev_month, prev_month),
        "yoy_growth": ratio(gross_v - prev_year, prev_year),
        "flagged_revenue": money(m["flagged"]),
        "flagged_revenue_share": ratio(m["flagged"].to_numpy(), gross_v),
        "data_delivered": [month in delivered for month in months],
    })

    top = lines.groupby(["month", "product_id"]).agg(
        product_name=("product_name", "first"), category=("category", "first"),  # one per product
        units=("quantity", "sum"), gross=("line_revenue", "sum")).reset_index()
    top["gross_revenue_cents"] = cents(top["gross"])
    top = top.sort_values(["month", "gross_revenue_cents", "product_id"], ascending=[True, False, True])
    top["rank"] = top.groupby("month").cumcount() + 1
    top["gross_revenue"] = top["gross_revenue_cents"] / 100
    top = top[["month", "rank", "product_id", "product_name", "category", "units", "gross_revenue"]]

    # RFM as of each month's last day: the customers' counted orders up to then, month by month
    cm = with_customer.groupby(["customer_id", "month"]).agg(
        orders=("order_id", "size"), last_date=("order_date", "max"), gross=("gross", "sum")).reset_index()
    state = pd.DataFrame(columns=["orders", "last_date", "gross"]).astype(
        {"orders": "int64", "last_date": "datetime64[us]", "gross": "int64"})
    frames = []
    for month in months:
        new_rows = cm[cm["month"] == month].set_index("customer_id")[["orders", "last_date", "gross"]]
        joined = state.join(new_rows, how="outer", suffixes=("", "_new"))
        state = pd.DataFrame({
            "orders": joined["orders"].fillna(0).astype("int64") + joined["orders_new"].fillna(0).astype("int64"),
            "last_date": joined[["last_date", "last_date_new"]].max(axis=1),
            "gross": joined["gross"].fillna(0).astype("int64") + joined["gross_new"].fillna(0).astype("int64"),
        })
        if state.empty:
            continue
        month_end = month + pd.offsets.MonthEnd(0)
        frames.append(pd.DataFrame({
            "month": month, "customer_id": state.index.to_numpy(),
            "recency_days": (month_end - state["last_date"]).dt.days.to_numpy(),
            "frequency": state["orders"].to_numpy(), "monetary_cents": cents(state["gross"]),
        }))
    rfm = pd.concat(frames, ignore_index=True)
    rfm["r_score"] = ntile5(rfm, ["recency_days", "customer_id"], [False, True])
    rfm["f_score"] = ntile5(rfm, ["frequency", "customer_id"], [True, True])
    rfm["m_score"] = ntile5(rfm, ["monetary_cents", "customer_id"], [True, True])
    r, f = rfm["r_score"], rfm["f_score"]
    rfm["segment"] = np.select(
        [(r == 5) & (f >= 4), (r >= 3) & (f >= 4), (r >= 4) & (f == 1), r >= 4, (r == 3) & (f == 3), r == 3,
         f == 5, f >= 3, r == 2],
        ["Champions", "Loyal", "New Customers", "Potential Loyalists", "Potential Loyalists", "Hibernating",
         "Cannot Lose Them", "At Risk", "Hibernating"], "Lost")
    rfm["monetary"] = rfm["monetary_cents"] / 100
    rfm = rfm[["month", "customer_id", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score",
               "segment"]]
    return {"monthly_revenue": revenue, "monthly_top_products": top, "customer_rfm": rfm}


def main(argv: list[str]) -> int:
    raw, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in compute(raw).items():
        frame.to_pickle(out / f"{name}.pkl")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
