"""Each section of the monthly report: the numbers (tables), the charts, and a one-line
plain-language takeaway computed from the same numbers.

A section whose data is missing (no table, or no rows for the month) is built with
shown=False and a one-line note, and the page shows only that note.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from orchestration.reporting import charts
from orchestration.reporting import formatting as fmt
from orchestration.reporting.data import MartReader

TREND_MONTHS = 24
CHANNEL_TREND_MONTHS = 12
INVENTORY_TREND_MONTHS = 12
COHORT_MONTHS = 12
TOP_SKUS = 8


@dataclass
class Chart:
    id: str
    title: str
    spec: dict[str, Any]
    wide: bool = False


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)  # column indexes aligned right
    caption: str | None = None
    wide: bool = False  # the full width of the section


@dataclass
class Filter:
    signal: str
    label: str
    options: list[tuple[str, str]]  # (value, label); value "" = all


@dataclass
class Kpi:
    key: str
    label: str
    value: Any  # the mart's value (Decimal, int)
    text: str
    mom: float | None
    yoy: float | None
    higher_is_better: bool = True
    sub: str | None = None

    def change_class(self, ratio: float | None) -> str:
        if ratio is None or abs(ratio) < 0.0005:
            return "flat"
        good = (ratio > 0) == self.higher_is_better
        return "good" if good else "bad"


@dataclass
class Banner:
    """A message at the top of the report: 'empty' (no data delivered for the month) or
    'warning' (e.g. a month held back by a quality gate)."""

    kind: str
    text: str


@dataclass
class Section:
    id: str
    title: str
    shown: bool = True
    note: str | None = None
    takeaway: str | None = None
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    kpis: list[Kpi] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (relative href, text)


def _hidden(section_id: str, title: str, note: str) -> Section:
    return Section(id=section_id, title=title, shown=False, note=note)


def _moved(ratio: float | None, against: str) -> str | None:
    """'up 12.4% on last month', 'flat on a year ago', None when there is nothing to compare."""
    if ratio is None:
        return None
    if abs(ratio) < 0.0005:
        return f"flat on {against}"
    return f"{'up' if ratio > 0 else 'down'} {abs(ratio) * 100:.1f}% on {against}"


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _dec(value: Any) -> Decimal:
    return Decimal(0) if value is None else fmt.to_decimal(value)


class ReportBuilder:
    """Builds every section of one month's report from the marts."""

    def __init__(self, reader: MartReader, month: str, currency: str = "USD",
                 at_risk_days: float = 14.0, quality_docs_href: str | None = None,
                 flagged_share_warn: float | None = None):
        self.r = reader
        self.month = month
        self.day = fmt.parse_month(month)
        self.prev = fmt.add_months(self.day, -1)
        self.year_ago = fmt.add_months(self.day, -12)
        self.currency = currency.upper()
        self.sym = fmt.currency_symbol(currency)
        self.at_risk_days = at_risk_days
        self.quality_docs_href = quality_docs_href
        # above this share of gross revenue from flagged lines, the key figures say so
        # (thresholds.yml marts.flagged_revenue_share_warn, the marts gate's threshold)
        self.flagged_share_warn = flagged_share_warn
        self.banners: list[Banner] = []
        self._product_names: dict[str, str] | None = None
        self._warehouse_names: dict[str, str] | None = None

    # -- helpers ---------------------------------------------------------------------------
    def money(self, value: Any) -> str:
        return fmt.money(value, self.sym)

    def short(self, value: Any) -> str:
        return fmt.money_short(value, self.sym)

    def product_names(self) -> dict[str, str]:
        """product_id -> name, from the products sold in any month (ids are shown otherwise)."""
        if self._product_names is None:
            names: dict[str, str] = {}
            if self.r.has("dim_product") and {"product_id", "product_name"} <= self.r.columns("dim_product"):
                names.update({row["product_id"]: row["product_name"] for row in self.r.rows(
                    "select product_id, product_name from marts.dim_product where product_name is not null")})
            if self.r.has("monthly_top_products"):
                names.update({row["product_id"]: row["name"] for row in self.r.rows(
                    "select product_id, max(product_name) as name from marts.monthly_top_products "
                    "where product_name is not null group by product_id")})
            self._product_names = names
        return self._product_names

    def sku_label(self, product_id: str) -> str:
        name = self.product_names().get(product_id)
        return f"{name} ({product_id})" if name and name != product_id else str(product_id)

    def warehouse_label(self, warehouse_id: str) -> str:
        if self._warehouse_names is None:
            self._warehouse_names = {}
            if self.r.has("dim_warehouse") and {"warehouse_id", "warehouse_name"} <= self.r.columns("dim_warehouse"):
                self._warehouse_names = {row["warehouse_id"]: row["warehouse_name"] for row in self.r.rows(
                    "select warehouse_id, warehouse_name from marts.dim_warehouse where warehouse_name is not null")}
        name = self._warehouse_names.get(warehouse_id)
        return f"{name} ({warehouse_id})" if name and name != warehouse_id else str(warehouse_id)

    def build(self) -> tuple[list[Section], dict[str, Any]]:
        kpi_section, summary = self.kpis()
        sections = [
            kpi_section,
            self.revenue_trend(),
            self.daily(),
            self.channels(),
            self.products(),
            self.geography(),
            self.inventory(),
            self.payments(),
            self.rfm(),
            self.cohorts(),
            self.quality(),
        ]
        return sections, summary

    # -- KPI header --------------------------------------------------------------------------
    KPI_DEFS = [
        ("gross_revenue", "Gross revenue", "money", True),
        ("net_revenue", "Net revenue", "money", True),
        ("orders", "Orders", "int", True),
        ("aov", "Average order value", "money", True),
        ("gross_margin", "Gross margin", "money", True),
        ("refunds", "Refunds & chargebacks", "money", False),
        ("new_customers", "New customers", "int", True),
        ("returning_customers", "Returning customers", "int", True),
    ]

    def kpis(self) -> tuple[Section, dict[str, Any]]:
        title = "Key figures"
        rows = {r["month"]: r for r in self.r.mart(
            "monthly_revenue", "month in (?, ?, ?)", (self.day, self.prev, self.year_ago))}
        cur = rows.get(self.day)
        summary: dict[str, Any] = {"month": self.month}
        if cur is None:
            note = ("No sales figures for this month: marts.monthly_revenue has no row for "
                    f"{fmt.month_label(self.day)}.")
            return _hidden("kpis", title, note), summary
        prev, ago = rows.get(self.prev), rows.get(self.year_ago)
        if cur.get("data_delivered") is False:
            return self._empty_month(cur, summary)
        kpis = []
        for key, label, kind, higher_is_better in self.KPI_DEFS:
            value = cur.get(key)
            if key == "gross_revenue":
                mom, yoy = _f(cur.get("mom_growth")), _f(cur.get("yoy_growth"))
            else:
                mom = fmt.pct_change(value, prev.get(key)) if prev else None
                yoy = fmt.pct_change(value, ago.get(key)) if ago else None
            text = self.money(value) if kind == "money" else fmt.integer(value)
            kpis.append(Kpi(key, label, value, text, mom, yoy, higher_is_better))
        by_key = {k.key: k for k in kpis}
        gm, cogs = cur.get("gross_margin"), cur.get("cogs")
        if gm is not None and cogs is not None and (gm + cogs) != 0:
            by_key["gross_margin"].sub = f"{fmt.pct(float(gm / (gm + cogs)))} of costed revenue"
        elif gm is None:
            by_key["gross_margin"].sub = "no product costs known"
        buyers = (cur.get("new_customers") or 0) + (cur.get("returning_customers") or 0)
        if buyers:
            by_key["new_customers"].sub = f"{fmt.pct(cur['new_customers'] / buyers)} of buyers"
            by_key["returning_customers"].sub = f"{fmt.pct(cur['returning_customers'] / buyers)} of buyers"
        gross = by_key["gross_revenue"]
        if cur.get("refunds") and cur.get("gross_revenue"):
            by_key["refunds"].sub = f"{fmt.pct(float(cur['refunds'] / cur['gross_revenue']))} of gross revenue"

        flagged_note = self.flagged_note(cur)
        if flagged_note:
            gross.sub = flagged_note

        moves = [m for m in (_moved(gross.mom, "last month"), _moved(gross.yoy, "a year ago")) if m]
        takeaway = f"Gross revenue of {self.money(cur['gross_revenue'])}"
        takeaway += f" is {' and '.join(moves)}" if moves else " (no earlier month to compare)"
        takeaway += f", from {fmt.integer(cur['orders'])} orders (average {self.money(cur['aov'])})"
        if buyers:
            takeaway += f"; {fmt.pct(cur['new_customers'] / buyers, 0)} of buyers were new"
        takeaway += "."
        if flagged_note:
            takeaway += f" {flagged_note[0].upper()}{flagged_note[1:]}."

        summary.update({
            "gross_revenue": str(cur["gross_revenue"]), "net_revenue": str(cur["net_revenue"]),
            "orders": int(cur["orders"]), "aov": None if cur["aov"] is None else str(cur["aov"]),
            "mom_growth": _f(cur.get("mom_growth")), "yoy_growth": _f(cur.get("yoy_growth")),
            "gross_text": gross.text, "net_text": by_key["net_revenue"].text,
            "aov_text": by_key["aov"].text, "takeaway": takeaway, "data_delivered": True,
            "flagged_revenue_share": _f(cur.get("flagged_revenue_share")), "flagged_note": flagged_note,
        })
        section = Section(id="kpis", title=title, takeaway=takeaway, kpis=kpis)
        section.tables.append(Table(
            "Key figures", ["Measure", fmt.month_label(self.day), "vs previous month", "vs a year ago"],
            [[k.label, k.text, fmt.change(k.mom), fmt.change(k.yoy)] for k in kpis], {1, 2, 3}))
        return section, summary

    def flagged_note(self, cur: dict[str, Any]) -> str | None:
        """'of which $1,200.00 (24.0%) from lines flagged price_outlier ...' when the month's share
        of gross revenue from flagged lines is above the threshold; None otherwise."""
        share = _f(cur.get("flagged_revenue_share"))
        if share is None or self.flagged_share_warn is None or share <= self.flagged_share_warn:
            return None
        return (f"of which {self.money(cur.get('flagged_revenue'))} ({fmt.pct(share)}) from order lines flagged "
                "price_outlier (unit price over 10x or under 1/10 of the list price): counted, but check them "
                "in the data-quality docs")

    def _empty_month(self, cur: dict[str, Any], summary: dict[str, Any]) -> tuple[Section, dict[str, Any]]:
        """A month for which no file of any table was delivered: zero figures, said plainly."""
        text = (f"No data delivered for this month: no file of any table arrived for "
                f"{fmt.month_label(self.day)}, so every figure is zero (an empty month, not a failure).")
        self.banners.append(Banner("empty", text))
        takeaway = f"No data delivered for {fmt.month_label(self.day)}: no sales to report."
        summary.update({
            "gross_revenue": str(cur["gross_revenue"]), "net_revenue": str(cur["net_revenue"]),
            "orders": int(cur["orders"]), "aov": None, "mom_growth": None, "yoy_growth": None,
            "gross_text": self.money(cur["gross_revenue"]), "net_text": self.money(cur["net_revenue"]),
            "aov_text": fmt.NA, "takeaway": takeaway, "data_delivered": False,
        })
        section = _hidden("kpis", "Key figures", text)
        return section, summary

    # -- revenue trend -------------------------------------------------------------------------
    def revenue_trend(self) -> Section:
        title = f"Revenue trend, last {TREND_MONTHS} months"
        first = fmt.add_months(self.day, -(TREND_MONTHS - 1))
        rows = self.r.mart("monthly_revenue", "month between ? and ?", (first, self.day), "month")
        if not rows:
            return _hidden("trend", title, "No monthly revenue in marts.monthly_revenue yet.")
        values = [{
            "month": fmt.month_key(r["month"]), "label": fmt.month_label(r["month"]),
            "gross": _f(r["gross_revenue"]), "net": _f(r["net_revenue"]), "orders": r["orders"],
            "mom": _f(r["mom_growth"]), "current": r["month"] == self.day,
        } for r in rows]
        ranked = sorted(rows, key=lambda r: _dec(r["gross_revenue"]), reverse=True)
        best = ranked[0]
        position = next(i for i, r in enumerate(ranked, 1) if r["month"] == self.day) \
            if any(r["month"] == self.day for r in rows) else None
        if len(rows) == 1 and position == 1:
            takeaway = (f"{fmt.month_label(self.day)} is the first month of data "
                        f"({self.short(best['gross_revenue'])} gross): no trend yet.")
        elif position == 1:
            takeaway = (f"{fmt.month_label(self.day)} is the best month of the last {len(rows)} "
                        f"({self.short(best['gross_revenue'])} gross).")
        elif position:
            takeaway = (f"{fmt.month_label(self.day)} ranks #{position} of the last {len(rows)} months; "
                        f"the best was {fmt.month_label(best['month'])} ({self.short(best['gross_revenue'])}).")
        else:
            takeaway = f"The best of the last {len(rows)} months was {fmt.month_label(best['month'])}."
        if len(rows) >= 24:
            last12 = sum(_dec(r["gross_revenue"]) for r in rows[-12:])
            prior12 = sum(_dec(r["gross_revenue"]) for r in rows[-24:-12])
            growth = fmt.pct_change(last12, prior12)
            if growth is not None:
                takeaway = takeaway[:-1] + (f"; the last 12 months brought {self.short(last12)}, "
                                            f"{fmt.change(growth)} on the 12 before.")
        table = Table("Monthly revenue", ["Month", "Orders", "Gross revenue", "Refunds", "Net revenue",
                                          "AOV", "vs previous month", "vs a year ago"],
                      [[fmt.month_label(r["month"]), fmt.integer(r["orders"]), self.money(r["gross_revenue"]),
                        self.money(r["refunds"]), self.money(r["net_revenue"]), self.money(r["aov"]),
                        fmt.change(_f(r["mom_growth"])), fmt.change(_f(r["yoy_growth"]))]
                       for r in reversed(rows)], set(range(1, 8)))
        return Section("trend", title, takeaway=takeaway, tables=[table], charts=[Chart(
            "chart-trend", "Gross revenue per month (bars, this month highlighted) and net revenue (line)",
            charts.revenue_trend(values, self.currency), wide=True)])

    # -- daily ---------------------------------------------------------------------------------
    def daily(self) -> Section:
        title = "Daily revenue and its 7-day average"
        nxt = fmt.add_months(self.day, 1)
        rows = self.r.mart("daily_revenue", "date >= ? and date < ?", (self.day, nxt), "date")
        if not rows:
            return _hidden("daily", title, "No daily revenue for this month in marts.daily_revenue.")
        values = [{
            "date": r["date"].isoformat(), "label": r["date"].strftime("%a %d %b %Y"),
            "gross": _f(r["gross_revenue"]), "avg7": _f(r["revenue_7d_avg"]), "orders": r["orders"],
        } for r in rows]
        total = sum(_dec(r["gross_revenue"]) for r in rows)
        mean = total / len(rows)
        best = max(rows, key=lambda r: (_dec(r["gross_revenue"]), -r["date"].toordinal()))
        parts = []
        if best["gross_revenue"] and mean:
            parts.append(f"Busiest day: {best['date'].strftime('%a %d %b')} with {self.money(best['gross_revenue'])} "
                         f"({float(_dec(best['gross_revenue']) / mean):.1f}× the daily average of {self.money(mean)})")
        else:
            parts.append("No sales on any day of this month")
        # the month's last 7-day average against the one after its first week
        first_week = rows[min(6, len(rows) - 1)]
        start, end = first_week["revenue_7d_avg"], rows[-1]["revenue_7d_avg"]
        trend = fmt.pct_change(end, start)
        if trend is not None and first_week is not rows[-1]:
            parts.append(f"the 7-day average ended the month at {self.money(end)}, {fmt.change(trend)} on "
                         f"the first week's {self.money(start)}")
        takeaway = "; ".join(parts) + "."
        table = Table("Daily revenue", ["Day", "Orders", "Gross revenue", "7-day average"],
                      [[r["date"].strftime("%a %d %b"), fmt.integer(r["orders"]), self.money(r["gross_revenue"]),
                        self.money(r["revenue_7d_avg"])] for r in rows], {1, 2, 3})
        return Section("daily", title, takeaway=takeaway, tables=[table], charts=[Chart(
            "chart-daily", "Gross revenue per day (bars) and 7-day moving average (line)",
            charts.daily_revenue(values, self.currency), wide=True)])

    # -- channels ------------------------------------------------------------------------------
    def channels(self) -> Section:
        title = "Sales channels"
        first = fmt.add_months(self.day, -(CHANNEL_TREND_MONTHS - 1))
        trend_rows = self.r.mart("monthly_channel_performance", "month between ? and ?", (first, self.day),
                                 "month, gross_revenue desc")
        rows = [r for r in trend_rows if r["month"] == self.day]
        if not rows:
            return _hidden("channels", title, "No channel figures for this month "
                           "(marts.monthly_channel_performance).")
        rows.sort(key=lambda r: (-_dec(r["gross_revenue"]), r["channel_name"] or ""))
        prev = {r["channel_id"]: r for r in trend_rows if r["month"] == self.prev}

        def name(r: dict[str, Any]) -> str:
            return r["channel_name"] or r["channel_id"]

        growth = {r["channel_id"]: fmt.pct_change(r["gross_revenue"], prev[r["channel_id"]]["gross_revenue"])
                  if r["channel_id"] in prev else None for r in rows}
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for r in trend_rows:
            totals[name(r)] += _dec(r["gross_revenue"])
        channel_names = sorted(totals, key=lambda n: -totals[n])
        top = rows[0]
        takeaway = f"{name(top)} brought the most revenue ({fmt.pct(_f(top['revenue_share']))} of gross)"
        growing = [(g, r) for r in rows if (g := growth[r["channel_id"]]) is not None]
        if len(growing) > 1:
            g, fastest = max(growing, key=lambda x: x[0])
            verb = "grew fastest" if g > 0 else "fell least"
            takeaway += f"; {name(fastest)} {verb} ({fmt.change(g)} on last month)"
        takeaway += "."
        share_values = [{"channel": name(r), "gross": _f(r["gross_revenue"]), "share": _f(r["revenue_share"]),
                         "orders": r["orders"], "mom": growth[r["channel_id"]]} for r in rows]
        trend_values = [{"month": fmt.month_key(r["month"]), "label": fmt.month_label(r["month"]),
                         "channel": name(r), "gross": _f(r["gross_revenue"]), "share": _f(r["revenue_share"]),
                         "orders": r["orders"]} for r in trend_rows]
        table = Table("Channels this month", ["Channel", "Orders", "Gross revenue", "Share", "vs previous month"],
                      [[name(r), fmt.integer(r["orders"]), self.money(r["gross_revenue"]),
                        fmt.pct(_f(r["revenue_share"])), fmt.change(growth[r["channel_id"]])] for r in rows],
                      {1, 2, 3, 4})
        return Section(
            "channels", title, takeaway=takeaway, tables=[table],
            filters=[Filter("channel_filter", "Channel",
                            [("", "All channels")] + [(n, n) for n in channel_names])],
            charts=[
                Chart("chart-channel-share", "Share of gross revenue this month",
                      charts.channel_share(share_values, self.currency, channel_names)),
                Chart("chart-channel-trend", f"Gross revenue per channel, last {CHANNEL_TREND_MONTHS} months",
                      charts.channel_trend(trend_values, self.currency, channel_names)),
            ])

    # -- products ------------------------------------------------------------------------------
    def products(self) -> Section:
        title = "Top products"
        rows = self.r.mart("monthly_top_products", "month = ?", (self.day,), "rank")
        if not rows:
            return _hidden("products", title, "No product sales this month (marts.monthly_top_products).")
        total = sum(_dec(r["gross_revenue"]) for r in rows)
        n = len(rows)
        top_n = max(1, math.ceil(n * 0.2))
        top_revenue = sum(_dec(r["gross_revenue"]) for r in rows[:top_n])
        pareto_share = float(top_revenue / total) if total else None

        def share(r: dict[str, Any]) -> float | None:
            return float(_dec(r["gross_revenue"]) / total) if total else None

        best = rows[0]
        takeaway = (f"The top 20% of products ({fmt.integer(top_n)} of {fmt.integer(n)}) made "
                    f"{fmt.pct(pareto_share)} of revenue; the best seller was {best['product_name'] or best['product_id']} "
                    f"({self.money(best['gross_revenue'])}, {fmt.pct(share(best))}).")
        bars = [{"rank": r["rank"], "product": r["product_name"] or r["product_id"], "category": r["category"] or "Unknown",
                 "units": r["units"], "gross": _f(r["gross_revenue"]), "share": share(r)} for r in rows[:15]]
        curve = [{"n": 0, "products": 0.0, "revenue": 0.0}]
        step = max(1, n // 100)
        running = Decimal(0)
        for i, r in enumerate(rows, 1):
            running += _dec(r["gross_revenue"])
            if i % step == 0 or i == n or i == top_n:
                curve.append({"n": i, "products": i / n, "revenue": float(running / total) if total else 0.0})
        table = Table("Top 10 products", ["Rank", "Product", "Category", "Units", "Gross revenue", "Share"],
                      [[str(r["rank"]), r["product_name"] or r["product_id"], r["category"] or "",
                        fmt.integer(r["units"]), self.money(r["gross_revenue"]), fmt.pct(share(r))] for r in rows[:10]],
                      {0, 3, 4, 5})
        pareto_table = Table("Pareto", ["Products sold", "Top 20% of products", "Their revenue", "Share of revenue"],
                             [[fmt.integer(n), fmt.integer(top_n), self.money(top_revenue), fmt.pct(pareto_share)]],
                             {0, 1, 2, 3})
        return Section("products", title, takeaway=takeaway, tables=[table, pareto_table], charts=[
            Chart("chart-products", "Top 15 products by gross revenue", charts.top_products(bars, self.currency)),
            Chart("chart-pareto", "Pareto: cumulative share of revenue by share of products",
                  charts.pareto(curve, pareto_share or 0.0)),
        ])

    # -- geography -----------------------------------------------------------------------------
    def geography(self) -> Section:
        title = "Geography"
        rows = self.r.mart("monthly_geo_sales", "month = ?", (self.day,), "gross_revenue desc, country, region")
        if not rows:
            return _hidden("geo", title, "No geographic sales this month (marts.monthly_geo_sales).")
        ranks = self.r.mart("monthly_category_region_rank", "month = ?", (self.day,), "country, region, rank")
        total = sum(_dec(r["gross_revenue"]) for r in rows)

        def share(r: dict[str, Any]) -> float | None:
            return float(_dec(r["gross_revenue"]) / total) if total else None

        def place(r: dict[str, Any]) -> str:
            region, country = r["region"] or "Unknown", r["country"] or "Unknown"
            return region if region == country else f"{region}, {country}"

        top = rows[0]
        takeaway = f"{place(top)} led with {self.money(top['gross_revenue'])} ({fmt.pct(share(top))} of revenue)"
        countries: dict[str, Decimal] = defaultdict(Decimal)
        for r in rows:
            countries[r["country"] or "Unknown"] += _dec(r["gross_revenue"])
        if len(countries) > 1:
            c, v = max(countries.items(), key=lambda kv: kv[1])
            takeaway += f"; {c} is the biggest country ({fmt.pct(float(v / total) if total else None)})"
        winners = [r for r in ranks if r["rank"] == 1]
        if winners:
            counts: dict[str, int] = defaultdict(int)
            for r in winners:
                counts[r["category"]] += 1
            cat, k = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
            takeaway += f"; {cat} is the top category in {k} of {len(winners)} regions"
        takeaway += "."
        # a region is named with its country (place): the same code exists in several countries
        region_revenue: dict[str, Decimal] = defaultdict(Decimal)
        for r in ranks:
            region_revenue[place(r)] += _dec(r["gross_revenue"])
        regions = sorted(region_revenue, key=lambda k: (-region_revenue[k], k))
        section = Section("geo", title, takeaway=takeaway)
        section.filters.append(Filter("region_filter", "Region", [("", "All regions")] + [(g, g) for g in regions]))
        geo_values = [{"place": place(r), "country": r["country"] or "Unknown", "region": r["region"] or "Unknown",
                       "orders": r["orders"], "customers": r["customers"], "gross": _f(r["gross_revenue"]),
                       "share": share(r)} for r in rows[:25]]
        section.charts.append(Chart("chart-geo", "Gross revenue by region (top 25)",
                                    charts.geo_regions(geo_values, self.currency)))
        if ranks:
            category_revenue: dict[str, Decimal] = defaultdict(Decimal)
            for r in ranks:
                category_revenue[r["category"] or "Unknown"] += _dec(r["gross_revenue"])
            categories = sorted(category_revenue, key=lambda k: (-category_revenue[k], k))
            cat_values = [{"region": place(r), "category": r["category"] or "Unknown",
                           "gross": _f(r["gross_revenue"]), "rank": r["rank"],
                           "share": float(_dec(r["gross_revenue"]) / region_revenue[place(r)])
                           if region_revenue[place(r)] else None} for r in ranks]
            section.charts.append(Chart(
                "chart-category-region", "Each category's share of a region's revenue (top category in bold)",
                charts.category_by_region(cat_values, self.currency, regions, categories)))
        section.tables.append(Table(
            "Regions", ["Country", "Region", "Orders", "Customers", "Gross revenue", "Share"],
            [[r["country"] or "Unknown", r["region"] or "Unknown", fmt.integer(r["orders"]), fmt.integer(r["customers"]),
              self.money(r["gross_revenue"]), fmt.pct(share(r))] for r in rows[:15]], {2, 3, 4, 5},
            caption=None if len(rows) <= 15 else f"Top 15 of {len(rows)} regions."))
        if winners:
            winners.sort(key=lambda r: -region_revenue[place(r)])
            section.tables.append(Table(
                "Top category per region", ["Region", "Top category", "Its revenue", "Share of region"],
                [[place(r), r["category"], self.money(r["gross_revenue"]),
                  fmt.pct(float(_dec(r["gross_revenue"]) / region_revenue[place(r)])
                          if region_revenue[place(r)] else None)] for r in winners[:15]], {2, 3}))
        return section

    # -- inventory -----------------------------------------------------------------------------
    def inventory(self) -> Section:
        title = "Inventory"
        if not self.r.has("monthly_inventory"):
            return _hidden("inventory", title, "Inventory is not tracked in this warehouse "
                           "(no marts.monthly_inventory): section hidden.")
        rows = self.r.mart("monthly_inventory", "month = ?", (self.day,), "product_id, warehouse_id")
        if not rows:
            return _hidden("inventory", title, "No inventory snapshots for this month: section hidden.")
        by_product: dict[str, dict[str, Any]] = {}
        for r in rows:
            p = by_product.setdefault(r["product_id"], {"units_sold": 0, "on_hand": 0, "stockout_days": 0,
                                                        "warehouses": 0})
            p["units_sold"] = max(p["units_sold"], r["units_sold"] or 0)  # units sold are per product
            p["on_hand"] += r["month_end_on_hand"] or 0
            p["stockout_days"] += r["stockout_days"] or 0
            p["warehouses"] += 1 if (r["stockout_days"] or 0) > 0 else 0
        top = sorted(by_product, key=lambda k: (-by_product[k]["units_sold"], -by_product[k]["on_hand"], k))[:TOP_SKUS]
        first = fmt.add_months(self.day, -(INVENTORY_TREND_MONTHS - 1))
        placeholders = ", ".join("?" for _ in top)
        history = self.r.rows(
            "select month, product_id, sum(month_end_on_hand) as on_hand, max(units_sold) as units_sold, "
            "sum(stockout_days) as stockout_days from marts.monthly_inventory "
            f"where month between ? and ? and product_id in ({placeholders}) group by month, product_id "
            "order by month, product_id", [first, self.day, *top])
        level_values = [{"month": fmt.month_key(h["month"]), "label": fmt.month_label(h["month"]),
                         "product": self.sku_label(h["product_id"]), "on_hand": _f(h["on_hand"]),
                         "units_sold": _f(h["units_sold"]), "stockout_days": _f(h["stockout_days"])} for h in history]
        stocked_out = sorted((k for k in by_product if by_product[k]["stockout_days"] > 0),
                             key=lambda k: (-by_product[k]["stockout_days"], k))
        stockout_total = sum(by_product[k]["stockout_days"] for k in by_product)
        low = [r for r in rows if r["days_of_supply"] is not None and r["days_of_supply"] < self.at_risk_days]
        below = [r for r in rows if r["below_reorder_point"]]
        at_risk = sorted({id(r): r for r in low + below}.values(),
                         key=lambda r: (r["days_of_supply"] if r["days_of_supply"] is not None else math.inf,
                                        r["product_id"], r["warehouse_id"]))
        days = f"{self.at_risk_days:g}"
        if stocked_out or low or below:
            parts = []
            parts.append(f"{fmt.integer(len(stocked_out))} of {fmt.plural(len(by_product), 'SKU')} ran out of stock "
                         f"on at least one day ({fmt.plural(stockout_total, 'stockout day')} across warehouses)"
                         if stocked_out else "no SKU ran out of stock")
            parts.append(f"{fmt.plural(len(low), 'SKU-warehouse pair')} under {days} days of supply and "
                         f"{fmt.integer(len(below))} below the reorder point")
            takeaway = "; ".join(parts)
            takeaway = takeaway[0].upper() + takeaway[1:] + "."
        else:
            takeaway = (f"No stockouts this month, and none of the {fmt.integer(len(by_product))} SKUs is below its "
                        f"reorder point or under {days} days of supply.")
        section = Section("inventory", title, takeaway=takeaway)
        section.charts.append(Chart("chart-inventory", f"Month-end stock of the {len(top)} best-selling SKUs, "
                                    f"last {INVENTORY_TREND_MONTHS} months", charts.inventory_levels(level_values)))
        if stocked_out:
            section.charts.append(Chart("chart-stockouts", "Stockout days by SKU (top 15)", charts.stockout_days([
                {"product": self.sku_label(k), **by_product[k]} for k in stocked_out[:15]])))
        section.tables.append(Table("Stock summary", ["Measure", "Value"], [
            ["SKUs tracked", fmt.integer(len(by_product))],
            ["SKU-warehouse pairs", fmt.integer(len(rows))],
            ["SKUs with a stockout day", fmt.integer(len(stocked_out))],
            ["Stockout days (all warehouses)", fmt.integer(stockout_total)],
            [f"Pairs under {days} days of supply", fmt.integer(len(low))],
            ["Pairs below reorder point", fmt.integer(len(below))],
        ], {1}))
        if at_risk:
            section.tables.append(Table(
                "SKUs at risk", ["SKU", "Warehouse", "Month-end on hand", "Units sold", "Days of supply",
                                 "Below reorder point", "Stockout days"],
                [[self.sku_label(r["product_id"]), self.warehouse_label(r["warehouse_id"]),
                  fmt.integer(r["month_end_on_hand"]),
                  fmt.integer(r["units_sold"]), fmt.number(r["days_of_supply"]),
                  "yes" if r["below_reorder_point"] else "no", fmt.integer(r["stockout_days"])] for r in at_risk[:25]],
                {2, 3, 4, 6},
                caption=(f"Days of supply under {days}, or below the reorder point"
                         + (f"; the first 25 of {len(at_risk)}." if len(at_risk) > 25 else ".")), wide=True))
        return section

    # -- payments ------------------------------------------------------------------------------
    def payments(self) -> Section:
        title = "Payments"
        if not self.r.has("monthly_payment_methods"):
            return _hidden("payments", title, "Payments are not tracked in this warehouse "
                           "(no marts.monthly_payment_methods): section hidden.")
        rows = self.r.mart("monthly_payment_methods", "month = ?", (self.day,), "succeeded_amount desc, payment_method")
        if not rows:
            return _hidden("payments", title, "No payment transactions for this month: section hidden.")
        payments = sum(r["payments"] or 0 for r in rows)
        failed = sum(r["failed"] or 0 for r in rows)
        refunds = sum(_dec(r["refunds"]) for r in rows)
        chargebacks = sum(_dec(r["chargebacks"]) for r in rows)
        paid = sum(_dec(r["succeeded_amount"]) for r in rows)
        top = rows[0]
        takeaway = f"{fmt.method_label(top['payment_method'])} carried {fmt.pct(_f(top['amount_share']))} of the paid amount"
        rated = [r for r in rows if r["failure_rate"] is not None and (r["payments"] or 0) > 0]
        if rated:
            worst = max(rated, key=lambda r: (r["failure_rate"], r["payments"]))
            if worst["failure_rate"] > 0:
                takeaway += (f"; {fmt.method_label(worst['payment_method'])} failed most often "
                             f"({fmt.pct(worst['failure_rate'])} "
                             f"of {fmt.integer(worst['payments'])} payments)")
            else:
                takeaway += "; no payment failed"
        takeaway += f"; refunds came to {self.money(refunds)} and chargebacks to {self.money(chargebacks)}."
        values = [{"method": fmt.method_label(r["payment_method"]), "share": _f(r["amount_share"]) or 0.0,
                   "amount": _f(r["succeeded_amount"]), "payments": r["payments"], "failed": r["failed"],
                   "failure_rate": _f(r["failure_rate"]) or 0.0} for r in rows]
        table = Table("Payment methods", ["Method", "Payments", "Paid amount", "Share", "Failed", "Failure rate",
                                          "Refunds", "Chargebacks"],
                      [[fmt.method_label(r["payment_method"]), fmt.integer(r["payments"]), self.money(r["succeeded_amount"]),
                        fmt.pct(_f(r["amount_share"])), fmt.integer(r["failed"]), fmt.pct(_f(r["failure_rate"]), 2),
                        self.money(r["refunds"]), self.money(r["chargebacks"])] for r in rows]
                      + [["All methods", fmt.integer(payments), self.money(paid), fmt.pct(1.0 if paid else None),
                          fmt.integer(failed), fmt.pct(failed / payments if payments else None, 2),
                          self.money(refunds), self.money(chargebacks)]],
                      set(range(1, 8)), wide=True)
        return Section("payments", title, takeaway=takeaway, tables=[table], charts=[
            Chart("chart-payments", "Share of paid amount and failure rate by method",
                  charts.payment_mix(values, self.currency), wide=True)])

    # -- customers -----------------------------------------------------------------------------
    def rfm(self) -> Section:
        title = "Customer segments (RFM)"
        if not self.r.has("customer_rfm"):
            return _hidden("rfm", title, "No customer segments in this warehouse (marts.customer_rfm).")
        rows = self.r.rows(
            "select segment, count(*) as customers, avg(recency_days) as recency, avg(frequency) as frequency, "
            "sum(monetary) as monetary from marts.customer_rfm where month = ? group by segment "
            "order by customers desc, segment", [self.day])
        if not rows:
            return _hidden("rfm", title, "No customer segments for this month (marts.customer_rfm).")
        total = sum(r["customers"] for r in rows)
        by = {r["segment"]: r for r in rows}
        parts = [f"Of {fmt.plural(total, 'customer')} who have bought so far"]
        champions = by.get("Champions")
        parts[0] += f", {fmt.pct(champions['customers'] / total)} are Champions" if champions else \
            f", the largest segment is {rows[0]['segment']} ({fmt.pct(rows[0]['customers'] / total)})"
        risk = sum(by[s]["customers"] for s in ("At Risk", "Cannot Lose Them") if s in by)
        if risk:
            parts.append(f"{fmt.integer(risk)} ({fmt.pct(risk / total)}) are At Risk or Cannot Lose Them, "
                         "worth a win-back offer")
        takeaway = "; ".join(parts) + "."
        order = [s for s in charts.SEGMENT_ORDER if s in by] + sorted(set(by) - set(charts.SEGMENT_ORDER))
        values = [{"segment": s, "customers": by[s]["customers"], "share": by[s]["customers"] / total,
                   "recency": _f(by[s]["recency"]), "frequency": _f(by[s]["frequency"]),
                   "monetary": _f(by[s]["monetary"])} for s in order]
        table = Table("Segments", ["Segment", "Customers", "Share", "Avg days since last order", "Avg orders",
                                   "Lifetime revenue"],
                      [[s, fmt.integer(by[s]["customers"]), fmt.pct(by[s]["customers"] / total),
                        fmt.number(by[s]["recency"], 0), fmt.number(by[s]["frequency"]),
                        self.money(by[s]["monetary"])] for s in order], {1, 2, 3, 4, 5})
        return Section("rfm", title, takeaway=takeaway, tables=[table], charts=[
            Chart("chart-rfm", f"Customers by segment, as of {self.day.strftime('%B %Y')}'s end",
                  charts.rfm_segments(values, self.currency))])

    def cohorts(self) -> Section:
        title = "Cohort retention"
        first = fmt.add_months(self.day, -(COHORT_MONTHS - 1))
        if not self.r.has("cohort_retention"):
            return _hidden("cohorts", title, "No cohort table in this warehouse (marts.cohort_retention).")
        rows = self.r.rows(
            "select * from marts.cohort_retention where cohort_month between ? and ? "
            "and months_since_first <= ? order by cohort_month, months_since_first",
            [first, self.day, COHORT_MONTHS])
        rows = [r for r in rows if fmt.add_months(r["cohort_month"], r["months_since_first"]) <= self.day]
        if not rows:
            return _hidden("cohorts", title, "No customer cohorts up to this month (marts.cohort_retention).")
        values = [{"cohort": fmt.month_key(r["cohort_month"]), "cohort_label": fmt.month_label(r["cohort_month"]),
                   "k": r["months_since_first"], "customers": r["customers"],
                   "retention": _f(r["retention_rate"]) or 0.0} for r in rows if r["months_since_first"] >= 1]
        size = {r["cohort_month"]: r["customers"] for r in rows if r["months_since_first"] == 0}
        month1 = [r for r in rows if r["months_since_first"] == 1 and size.get(r["cohort_month"])]
        if month1:
            base = sum(size[r["cohort_month"]] for r in month1)
            avg = sum(r["customers"] for r in month1) / base if base else None
            best = max(month1, key=lambda r: (_f(r["retention_rate"]) or 0.0, r["cohort_month"]))
            takeaway = (f"On average {fmt.pct(avg)} of new customers bought again the month after their first "
                        f"order ({fmt.plural(len(month1), 'cohort')})")
            if len(month1) > 1:
                takeaway += (f"; the {fmt.month_label(best['cohort_month'])} cohort did best "
                             f"({fmt.pct(_f(best['retention_rate']))})")
            takeaway += "."
        else:
            takeaway = (f"{fmt.plural(size.get(self.day, 0), 'customer')} made their first order this month; "
                        "their retention shows from next month on.")
        cohorts = sorted(size)
        max_k = max(r["months_since_first"] for r in rows)
        grid = {(r["cohort_month"], r["months_since_first"]): r for r in rows}
        table_rows = []
        for c in reversed(cohorts):
            line = [fmt.month_label(c), fmt.integer(size[c])]
            for k in range(1, max_k + 1):
                cell = grid.get((c, k))
                line.append(fmt.pct(_f(cell["retention_rate"]), 0) if cell else "")
            table_rows.append(line)
        table = Table("Retention by cohort", ["Cohort", "Customers"] + [f"+{k}" for k in range(1, max_k + 1)],
                      table_rows, set(range(1, max_k + 2)),
                      caption="Share of each first-order cohort that ordered again k months later.")
        section = Section("cohorts", title, takeaway=takeaway, tables=[table])
        if values:
            section.charts.append(Chart("chart-cohorts", f"Retention of the last {len(cohorts)} cohorts, "
                                        "months after the first order", charts.cohort_heatmap(values), wide=True))
        return section

    # -- data quality --------------------------------------------------------------------------
    def quality(self) -> Section:
        title = "Data quality"
        links = [(self.quality_docs_href, "Open the data-quality docs")] if self.quality_docs_href else []
        if not self.r.has("data_quality_scorecard"):
            section = _hidden("quality", title, "No data-quality scorecard in this warehouse yet "
                              "(marts.data_quality_scorecard).")
            section.links = links
            return section
        like = f"{self.month}%"
        rows = self.r.rows("select * from marts.data_quality_scorecard where cast(month as varchar) like ? "
                           "order by all", [like])
        if not rows:
            section = _hidden("quality", title, "No data-quality scorecard for this month.")
            section.links = links
            return section
        section = Section("quality", title, links=links)
        columns = [c for c in rows[0] if c != "month"]
        scored = [r for r in rows if r.get("overall_score") is not None]
        if scored:
            avg = sum(float(r["overall_score"]) for r in scored) / len(scored)
            worst = min(scored, key=lambda r: (float(r["overall_score"]), str(r.get("table_name"))))
            section.takeaway = (f"Average quality score {avg:.1f} of 100 over {len(scored)} tables; lowest: "
                                f"{worst.get('table_name', '?')} at {float(worst['overall_score']):.1f}.")
            if "table_name" in rows[0]:
                section.charts.append(Chart("chart-quality", "Overall score by table", charts.quality_scores(
                    [{"table": str(r["table_name"]), "score": float(r["overall_score"])} for r in scored])))
        else:
            section.takeaway = f"The scorecard has {len(rows)} rows for this month."

        def cell(v: Any) -> str:
            if v is None:
                return ""
            if isinstance(v, float):
                return f"{v:,.4f}".rstrip("0").rstrip(".") if abs(v) < 1 else f"{v:,.1f}"
            if isinstance(v, int) and not isinstance(v, bool):
                return f"{v:,}"
            return str(v)

        numeric = {i for i, c in enumerate(columns) if isinstance(rows[0][c], (int, float, Decimal))
                   and not isinstance(rows[0][c], bool)}
        section.tables.append(Table("Scorecard", columns, [[cell(r[c]) for c in columns] for r in rows], numeric))
        if self.r.has("data_quality_issues"):
            issues = self.r.rows("select * from marts.data_quality_issues where cast(month as varchar) like ?",
                                 [like])
            if issues:
                cols = [c for c in issues[0] if c != "month"]
                count_col = next((c for c in cols if c in ("issues", "count", "rows", "records", "n")), None)
                if count_col:
                    issues.sort(key=lambda r: -(r[count_col] or 0))
                section.tables.append(Table(
                    "Warnings and quarantined records", cols, [[cell(r[c]) for c in cols] for r in issues[:15]],
                    {i for i, c in enumerate(cols) if isinstance(issues[0][c], (int, float, Decimal))},
                    caption=None if len(issues) <= 15 else f"The first 15 of {len(issues)}."))
        return section
