"""The monthly refresh: one job over the whole graph, partitioned by month, and the schedule
that runs it on the 1st for the month that just ended."""

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from orchestration.partitions import monthly_partitions
from orchestration.settings import load_settings

monthly_refresh_job = define_asset_job(
    "monthly_refresh",
    selection=AssetSelection.all(),
    partitions_def=monthly_partitions,
    description="Ingest, dbt layers, quality gates and reports for a month (or a range of months).",
)


def _schedule():
    settings = load_settings()
    hour, minute = settings.schedule_hour_minute
    # A partitioned schedule targets the last complete partition: on 1 March, February.
    return build_schedule_from_partitioned_job(
        monthly_refresh_job,
        name="monthly_refresh_schedule",
        # the time zone is the partitions' (the store's, NEXCART_TIMEZONE)
        day_of_month=1,
        hour_of_day=hour,
        minute_of_hour=minute,
        description=f"On the 1st at {settings.schedule_time} ({settings.timezone}), refresh the month that "
        "just ended (NEXCART_SCHEDULE_TIME, NEXCART_TIMEZONE).",
    )


monthly_refresh_schedule = _schedule()
