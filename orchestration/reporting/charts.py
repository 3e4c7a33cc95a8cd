"""Vega-Lite specs for the report's charts, as plain dicts (serialised to JSON in the page).

Every chart: SVG renderer, width of its container, hover tooltips with formatted values.
Filters are Vega-Lite variable params (`channel_filter`, `region_filter`) that the page's
<select> elements set through the Vega view API (assets/report.js), so one select can drive
several charts. No spec names a URL: data is inlined as values.
"""

from __future__ import annotations

from typing import Any

MONEY = ",.2f"
PERCENT = ".1%"
ACCENT = "#2563eb"
MUTED = "#93c5fd"
HEIGHT = 240

Spec = dict[str, Any]


def _base(values: list[dict[str, Any]], height: int | dict[str, int] = HEIGHT, **extra: Any) -> Spec:
    """Width: the container's (fit-x); height: the plot area's, or {"step": n} per category."""
    spec: Spec = {
        "width": "container",
        "height": height,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "data": {"values": values},
        "config": {
            "view": {"stroke": None},
            "axis": {"labelFontSize": 11, "titleFontSize": 11, "gridColor": "#eef0f3"},
            "legend": {"labelFontSize": 11, "titleFontSize": 11, "orient": "bottom", "columns": 4,
                       "labelLimit": 220},
            "font": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
        },
    }
    spec.update(extra)
    return spec


def _filter_param(name: str) -> dict[str, Any]:
    return {"name": name, "value": None}


def revenue_trend(values: list[dict[str, Any]], currency: str) -> Spec:
    """Bars: gross revenue per month (this month highlighted); line: net revenue."""
    tooltip = [
        {"field": "label", "title": "Month"},
        {"field": "gross", "type": "quantitative", "format": MONEY, "title": f"Gross revenue ({currency})"},
        {"field": "net", "type": "quantitative", "format": MONEY, "title": f"Net revenue ({currency})"},
        {"field": "orders", "type": "quantitative", "format": ",", "title": "Orders"},
        {"field": "mom", "type": "quantitative", "format": "+.1%", "title": "vs previous month"},
    ]
    x = {"field": "month", "type": "ordinal", "title": None, "axis": {"labelAngle": -45}}
    return _base(values, layer=[
        {"mark": {"type": "bar", "tooltip": True},
         "encoding": {
             "x": x,
             "y": {"field": "gross", "type": "quantitative", "title": f"Revenue ({currency})",
                   "axis": {"format": "~s"}},
             "color": {"condition": {"test": "datum.current", "value": ACCENT}, "value": MUTED},
             "tooltip": tooltip}},
        {"mark": {"type": "line", "color": "#f97316", "point": True, "tooltip": True},
         "encoding": {"x": x, "y": {"field": "net", "type": "quantitative"}, "tooltip": tooltip}},
    ])


def daily_revenue(values: list[dict[str, Any]], currency: str) -> Spec:
    """Bars: gross revenue per day; line: the 7-day moving average."""
    x = {"field": "date", "type": "ordinal", "title": None,
         "axis": {"labelExpr": "slice(datum.value, 8, 10)", "labelAngle": 0}}
    tooltip = [
        {"field": "label", "title": "Day"},
        {"field": "gross", "type": "quantitative", "format": MONEY, "title": f"Gross revenue ({currency})"},
        {"field": "avg7", "type": "quantitative", "format": MONEY, "title": f"7-day average ({currency})"},
        {"field": "orders", "type": "quantitative", "format": ",", "title": "Orders"},
    ]
    return _base(values, layer=[
        {"mark": {"type": "bar", "color": MUTED, "tooltip": True},
         "encoding": {"x": x, "y": {"field": "gross", "type": "quantitative",
                                    "title": f"Revenue ({currency})", "axis": {"format": "~s"}},
                      "tooltip": tooltip}},
        {"mark": {"type": "line", "color": ACCENT, "strokeWidth": 2.5, "tooltip": True},
         "encoding": {"x": x, "y": {"field": "avg7", "type": "quantitative"}, "tooltip": tooltip}},
    ])


def channel_share(values: list[dict[str, Any]], currency: str, channels: list[str]) -> Spec:
    return _base(values, height={"step": 30}, mark={"type": "bar", "tooltip": True},
                 encoding={
                     "y": {"field": "channel", "type": "nominal", "sort": "-x", "title": None},
                     "x": {"field": "share", "type": "quantitative", "title": "Share of gross revenue",
                           "axis": {"format": "%"}},
                     "color": {"field": "channel", "type": "nominal", "legend": None,
                               "scale": {"domain": channels}},
                     "tooltip": [
                         {"field": "channel", "title": "Channel"},
                         {"field": "gross", "type": "quantitative", "format": MONEY,
                          "title": f"Gross revenue ({currency})"},
                         {"field": "share", "type": "quantitative", "format": PERCENT, "title": "Share"},
                         {"field": "orders", "type": "quantitative", "format": ",", "title": "Orders"},
                         {"field": "mom", "type": "quantitative", "format": "+.1%",
                          "title": "vs previous month"},
                     ]})


def channel_trend(values: list[dict[str, Any]], currency: str, channels: list[str]) -> Spec:
    """Monthly gross revenue per channel; the page's channel select filters it."""
    return _base(values, params=[_filter_param("channel_filter")],
                 transform=[{"filter": "channel_filter == null || datum.channel == channel_filter"}],
                 mark={"type": "line", "point": True, "tooltip": True},
                 encoding={
                     "x": {"field": "month", "type": "ordinal", "title": None, "axis": {"labelAngle": -45}},
                     "y": {"field": "gross", "type": "quantitative", "title": f"Revenue ({currency})",
                           "axis": {"format": "~s"}},
                     "color": {"field": "channel", "type": "nominal", "title": "Channel",
                               "scale": {"domain": channels}},
                     "tooltip": [
                         {"field": "label", "title": "Month"},
                         {"field": "channel", "title": "Channel"},
                         {"field": "gross", "type": "quantitative", "format": MONEY,
                          "title": f"Gross revenue ({currency})"},
                         {"field": "share", "type": "quantitative", "format": PERCENT, "title": "Share"},
                         {"field": "orders", "type": "quantitative", "format": ",", "title": "Orders"},
                     ]})


def top_products(values: list[dict[str, Any]], currency: str) -> Spec:
    return _base(values, height={"step": 20}, mark={"type": "bar", "tooltip": True},
                 encoding={
                     "y": {"field": "product", "type": "nominal", "sort": {"field": "rank"}, "title": None,
                           "axis": {"labelLimit": 200}},
                     "x": {"field": "gross", "type": "quantitative", "title": f"Gross revenue ({currency})",
                           "axis": {"format": "~s"}},
                     "color": {"field": "category", "type": "nominal", "title": "Category"},
                     "tooltip": [
                         {"field": "rank", "title": "Rank"},
                         {"field": "product", "title": "Product"},
                         {"field": "category", "title": "Category"},
                         {"field": "units", "type": "quantitative", "format": ",", "title": "Units"},
                         {"field": "gross", "type": "quantitative", "format": MONEY,
                          "title": f"Gross revenue ({currency})"},
                         {"field": "share", "type": "quantitative", "format": PERCENT, "title": "Share"},
                     ]})


def pareto(values: list[dict[str, Any]], top_share: float) -> Spec:
    """Cumulative share of revenue against the share of products (ranked by revenue)."""
    return _base(values, layer=[
        {"mark": {"type": "area", "line": {"color": ACCENT}, "color": "#dbeafe", "tooltip": True},
         "encoding": {
             "x": {"field": "products", "type": "quantitative", "title": "Share of products (best first)",
                   "axis": {"format": "%"}, "scale": {"domain": [0, 1]}},
             "y": {"field": "revenue", "type": "quantitative", "title": "Cumulative share of revenue",
                   "axis": {"format": "%"}, "scale": {"domain": [0, 1]}},
             "tooltip": [
                 {"field": "n", "type": "quantitative", "title": "Top products"},
                 {"field": "products", "type": "quantitative", "format": PERCENT, "title": "Share of products"},
                 {"field": "revenue", "type": "quantitative", "format": PERCENT, "title": "Share of revenue"},
             ]}},
        {"data": {"values": [{"x": 0.2, "y": top_share}]},
         "layer": [
             {"mark": {"type": "rule", "strokeDash": [4, 4], "color": "#ef4444"},
              "encoding": {"x": {"field": "x", "type": "quantitative"}}},
             {"mark": {"type": "point", "filled": True, "color": "#ef4444", "size": 60, "tooltip": True},
              "encoding": {"x": {"field": "x", "type": "quantitative"},
                           "y": {"field": "y", "type": "quantitative"},
                           "tooltip": [{"field": "y", "type": "quantitative", "format": PERCENT,
                                        "title": "Revenue share of the top 20%"}]}},
             {"mark": {"type": "text", "align": "left", "dx": 6, "dy": 12, "color": "#b91c1c"},
              "encoding": {"x": {"field": "x", "type": "quantitative"},
                           "y": {"field": "y", "type": "quantitative"},
                           "text": {"field": "y", "type": "quantitative", "format": PERCENT}}},
         ]},
    ])


def geo_regions(values: list[dict[str, Any]], currency: str) -> Spec:
    """Gross revenue per region (country/region), coloured by country; filtered by region."""
    return _base(values, height={"step": 24}, params=[_filter_param("region_filter")],
                 transform=[{"filter": "region_filter == null || datum.place == region_filter"}],
                 mark={"type": "bar", "tooltip": True},
                 encoding={
                     "y": {"field": "place", "type": "nominal", "sort": "-x", "title": None,
                           "axis": {"labelLimit": 200}},
                     "x": {"field": "gross", "type": "quantitative", "title": f"Gross revenue ({currency})",
                           "axis": {"format": "~s"}},
                     "color": {"field": "country", "type": "nominal", "title": "Country"},
                     "tooltip": [
                         {"field": "country", "title": "Country"},
                         {"field": "region", "title": "Region"},
                         {"field": "orders", "type": "quantitative", "format": ",", "title": "Orders"},
                         {"field": "customers", "type": "quantitative", "format": ",", "title": "Customers"},
                         {"field": "gross", "type": "quantitative", "format": MONEY,
                          "title": f"Gross revenue ({currency})"},
                         {"field": "share", "type": "quantitative", "format": PERCENT, "title": "Share"},
                     ]})


def category_by_region(values: list[dict[str, Any]], currency: str, regions: list[str],
                       categories: list[str]) -> Spec:
    """Heatmap: each category's share of a region's revenue (rows: regions by revenue); the
    page's region select filters the rows."""
    xy = {
        "x": {"field": "category", "type": "nominal", "sort": categories, "title": None,
              "axis": {"labelAngle": -30, "labelLimit": 120, "orient": "top"}},
        "y": {"field": "region", "type": "nominal", "sort": regions, "title": None},
    }
    tooltip = [
        {"field": "region", "title": "Region"},
        {"field": "category", "title": "Category"},
        {"field": "gross", "type": "quantitative", "format": MONEY, "title": f"Gross revenue ({currency})"},
        {"field": "share", "type": "quantitative", "format": PERCENT, "title": "Share of the region"},
        {"field": "rank", "type": "quantitative", "title": "Rank in region"},
    ]
    return _base(values, height={"step": 18}, params=[_filter_param("region_filter")],
                 transform=[{"filter": "region_filter == null || datum.region == region_filter"}],
                 layer=[
                     {"mark": {"type": "rect", "tooltip": True},
                      "encoding": {**xy, "tooltip": tooltip,
                                   "color": {"field": "share", "type": "quantitative", "title": "Share of region",
                                             "scale": {"scheme": "blues", "domainMin": 0},
                                             "legend": {"format": ".0%"}}}},
                     {"mark": {"type": "text", "fontSize": 9.5},
                      "encoding": {**xy, "tooltip": tooltip,
                                   "text": {"field": "share", "type": "quantitative", "format": ".0%"},
                                   "fontWeight": {"condition": {"test": "datum.rank == 1", "value": "bold"},
                                                  "value": "normal"},
                                   "color": {"condition": [{"test": "datum.share > 0.55", "value": "white"},
                                                           {"test": "datum.rank == 1", "value": "#7c2d12"}],
                                             "value": "#1f2937"}}},
                 ])


def inventory_levels(values: list[dict[str, Any]]) -> Spec:
    return _base(values, mark={"type": "line", "point": True, "tooltip": True}, encoding={
        "x": {"field": "month", "type": "ordinal", "title": None, "axis": {"labelAngle": -45}},
        "y": {"field": "on_hand", "type": "quantitative", "title": "Units on hand"},
        "color": {"field": "product", "type": "nominal", "title": "SKU", "legend": {"columns": 2}},
        "tooltip": [
            {"field": "label", "title": "Month"},
            {"field": "product", "title": "SKU"},
            {"field": "on_hand", "type": "quantitative", "format": ",", "title": "Month-end on hand"},
            {"field": "units_sold", "type": "quantitative", "format": ",", "title": "Units sold"},
            {"field": "stockout_days", "type": "quantitative", "format": ",", "title": "Stockout days"},
        ]})


def stockout_days(values: list[dict[str, Any]]) -> Spec:
    return _base(values, height={"step": 22}, mark={"type": "bar", "color": "#ef4444", "tooltip": True}, encoding={
        "y": {"field": "product", "type": "nominal", "sort": "-x", "title": None, "axis": {"labelLimit": 280}},
        "x": {"field": "stockout_days", "type": "quantitative",
              "title": "Stockout days (summed over warehouses)",
              "axis": {"tickMinStep": 1, "format": "d"}},
        "tooltip": [
            {"field": "product", "title": "SKU"},
            {"field": "stockout_days", "type": "quantitative", "title": "Stockout days"},
            {"field": "warehouses", "type": "quantitative", "title": "Warehouses with a stockout"},
            {"field": "units_sold", "type": "quantitative", "format": ",", "title": "Units sold"},
        ]})


def payment_mix(values: list[dict[str, Any]], currency: str) -> Spec:
    """Share of the succeeded payment amount per method, with its failure rate as a second bar."""
    tooltip = [
        {"field": "method", "title": "Method"},
        {"field": "share", "type": "quantitative", "format": PERCENT, "title": "Share of paid amount"},
        {"field": "amount", "type": "quantitative", "format": MONEY, "title": f"Paid ({currency})"},
        {"field": "payments", "type": "quantitative", "format": ",", "title": "Payments"},
        {"field": "failed", "type": "quantitative", "format": ",", "title": "Failed"},
        {"field": "failure_rate", "type": "quantitative", "format": ".2%", "title": "Failure rate"},
    ]
    long = []
    for row in values:
        long.append({**row, "measure": "Share of paid amount", "value": row["share"]})
        long.append({**row, "measure": "Failure rate", "value": row["failure_rate"]})
    return _base(long, height=max(60, 40 * len(values)), mark={"type": "bar", "tooltip": True}, encoding={
        "y": {"field": "method", "type": "nominal", "title": None,
              "sort": {"field": "share", "order": "descending"}},
        "yOffset": {"field": "measure", "type": "nominal"},
        "x": {"field": "value", "type": "quantitative", "title": None, "axis": {"format": "%"}},
        "color": {"field": "measure", "type": "nominal", "title": None,
                  "scale": {"domain": ["Share of paid amount", "Failure rate"], "range": [ACCENT, "#ef4444"]}},
        "tooltip": tooltip,
    })


SEGMENT_ORDER = ["Champions", "Loyal", "Potential Loyalists", "New Customers", "At Risk",
                 "Cannot Lose Them", "Hibernating", "Lost"]


def rfm_segments(values: list[dict[str, Any]], currency: str) -> Spec:
    order = [s for s in SEGMENT_ORDER if any(v["segment"] == s for v in values)]
    order += sorted({v["segment"] for v in values} - set(order))
    return _base(values, height={"step": 24}, mark={"type": "bar", "tooltip": True}, encoding={
        "y": {"field": "segment", "type": "nominal", "sort": order, "title": None},
        "x": {"field": "customers", "type": "quantitative", "title": "Customers"},
        "color": {"field": "segment", "type": "nominal", "legend": None, "sort": order,
                  "scale": {"scheme": "tableau10"}},
        "tooltip": [
            {"field": "segment", "title": "Segment"},
            {"field": "customers", "type": "quantitative", "format": ",", "title": "Customers"},
            {"field": "share", "type": "quantitative", "format": PERCENT, "title": "Share of customers"},
            {"field": "recency", "type": "quantitative", "format": ",.0f", "title": "Avg days since last order"},
            {"field": "frequency", "type": "quantitative", "format": ",.1f", "title": "Avg orders"},
            {"field": "monetary", "type": "quantitative", "format": MONEY,
             "title": f"Lifetime revenue ({currency})"},
        ]})


def cohort_heatmap(values: list[dict[str, Any]]) -> Spec:
    encoding_xy = {
        "x": {"field": "k", "type": "ordinal", "title": "Months since first order", "axis": {"labelAngle": 0}},
        "y": {"field": "cohort", "type": "ordinal", "title": "First-order month"},
    }
    tooltip = [
        {"field": "cohort_label", "title": "Cohort"},
        {"field": "k", "title": "Months since first order"},
        {"field": "customers", "type": "quantitative", "format": ",", "title": "Active customers"},
        {"field": "retention", "type": "quantitative", "format": PERCENT, "title": "Retention"},
    ]
    return _base(values, height={"step": 22}, layer=[
        {"mark": {"type": "rect", "tooltip": True},
         "encoding": {**encoding_xy,
                      "color": {"field": "retention", "type": "quantitative", "title": "Retention",
                                "scale": {"scheme": "blues", "domainMin": 0},
                                "legend": {"format": ".0%"}},
                      "tooltip": tooltip}},
        {"mark": {"type": "text", "fontSize": 10},
         "encoding": {**encoding_xy,
                      "text": {"field": "retention", "type": "quantitative", "format": ".0%"},
                      "color": {"value": "#1f2937"},
                      "tooltip": tooltip}},
    ])


def quality_scores(values: list[dict[str, Any]]) -> Spec:
    return _base(values, height={"step": 24}, mark={"type": "bar", "tooltip": True}, encoding={
        "y": {"field": "table", "type": "nominal", "sort": "x", "title": None},
        "x": {"field": "score", "type": "quantitative", "title": "Overall score (0–100)",
              "scale": {"domain": [0, 100]}},
        "color": {"field": "score", "type": "quantitative", "legend": None,
                  "scale": {"domain": [80, 100], "range": ["#ef4444", "#22c55e"], "clamp": True}},
        "tooltip": [
            {"field": "table", "title": "Table"},
            {"field": "score", "type": "quantitative", "format": ".1f", "title": "Overall score"},
        ]})
