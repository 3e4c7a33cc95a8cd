"""Freshness of the marts: last month's partition must be materialized by a day of the month
(NEXCART_FRESHNESS_DAY, default the 5th); a failing check shows on the mart in the UI."""

from dagster import AssetKey, build_sensor_for_freshness_checks, build_time_partition_freshness_checks

from orchestration.settings import load_settings


def build_freshness(mart_keys: list[AssetKey]):
    settings = load_settings()
    checks = build_time_partition_freshness_checks(
        assets=mart_keys,
        deadline_cron=f"0 0 {settings.freshness_day} * *",
        timezone=settings.timezone,
    )
    return checks, build_sensor_for_freshness_checks(freshness_checks=checks, name="marts_freshness_sensor")
