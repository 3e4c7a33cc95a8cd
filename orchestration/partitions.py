"""The monthly partitions, starting at the first month found in the raw root (not a constant),
so a retailer whose history starts in 2019 sees 2019 in the UI."""

from __future__ import annotations

from datetime import date

from dagster import MonthlyPartitionsDefinition

from orchestration.ingest import discover_months
from orchestration.settings import load_settings


def first_month() -> str:
    """The earliest month of any monthly file; with no data yet, last month (one partition)."""
    months = discover_months(load_settings().data_dir)
    if months:
        return months[0]
    today = date.today()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


# Months are the store's calendar months (NEXCART_TIMEZONE), like the order months in the marts.
monthly_partitions = MonthlyPartitionsDefinition(
    start_date=first_month(), fmt="%Y-%m", end_offset=0, timezone=load_settings().timezone
)
