"""Sensors: new or corrected raw files launch the runs they need; failed runs leave a reason in
data/logs/runs.log; every finished run that ran a quality gate rebuilds the data-quality docs.

Files are compared by SHA-256, not by modification time: touching a file or copying the same
export again launches nothing, while a corrected re-delivery of a past month re-runs that month.
Size and mtime only decide whether a file needs hashing again, so a tick stays cheap.
"""

import hashlib
import json
import os
import stat
from pathlib import Path

from dagster import (
    DagsterEventType,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from orchestration.contract import MONTH_FILE_RE, MONTH_RE, TABLES
from orchestration.ingest import discover_months
from orchestration.quality import GATE_CHECK_NAME, build_quality_docs
from orchestration.run_log import write_run_log
from orchestration.schedules import monthly_refresh_job
from orchestration.settings import load_settings


def _sha256(path: Path) -> str | None:
    """The file's sha256, or None if it is not a regular file. Opened non-blocking and checked
    on the descriptor: a FIFO put there meanwhile must not hang the tick."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        os.set_blocking(fd, True)
        digest = hashlib.sha256()
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def raw_files(data_dir: Path) -> dict[str, Path]:
    """Every contract file under the raw root, by its path relative to the root."""
    found: dict[str, Path] = {}
    for table in TABLES.values():
        if table.monthly:
            folder = data_dir / table.name
            if folder.is_dir():
                found.update({f"{table.name}/{p.name}": p for p in folder.iterdir() if MONTH_FILE_RE.match(p.name)})
                # replayed corrections (nexcart quarantine replay) belong to their month's delivery
                found.update({p.relative_to(data_dir).as_posix(): p
                              for p in folder.glob("corrections/*/*.csv") if MONTH_RE.match(p.parent.name)})
        else:
            for name in (f"{table.name}.csv", f"{table.name}.csv.gz"):
                if (data_dir / name).is_file():
                    found[name] = data_dir / name
    return found


def fingerprint(data_dir: Path, previous: dict[str, list]) -> dict[str, list]:
    """[size, mtime, sha256] per file, re-hashing only files whose size or mtime changed.

    Only regular files (or links to them) count: a FIFO would block the tick forever, and a
    dangling link, a link loop or a directory named like a file has no content. They are left
    out, so the tick goes on; the run that loads the month reports them.
    """
    state: dict[str, list] = {}
    for rel, path in raw_files(data_dir).items():
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                continue
            old = previous.get(rel)
            if old and old[0] == info.st_size and old[1] == info.st_mtime:
                state[rel] = old
            elif (digest := _sha256(path)) is not None:
                state[rel] = [info.st_size, info.st_mtime, digest]
        except OSError:  # gone, a dangling link or a loop (ELOOP), unreadable: no content to compare
            continue
    return state


def changed_files(previous: dict[str, list], current: dict[str, list]) -> list[str]:
    return sorted(rel for rel, entry in current.items() if rel not in previous or previous[rel][2] != entry[2])


def _month_of(rel: str) -> str:
    """'orders/2024-03.csv' and 'orders/corrections/2024-03/<file>.csv' are both March 2024."""
    parts = rel.split("/")
    return parts[2] if parts[1] == "corrections" else MONTH_FILE_RE.match(parts[1])["month"]


def _range_request(first: str, last: str, run_key: str, trigger: str) -> RunRequest:
    return RunRequest(
        run_key=run_key,
        job_name=monthly_refresh_job.name,
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
            "nexcart/trigger": trigger,
        },
    )


def run_requests_for(changed: list[str], all_months: list[str], version: str = "") -> list[RunRequest]:
    """One run (one dbt invocation) for everything the changes affect.

    A changed month re-runs from that month to the last one, since later months' growth rates,
    new-vs-returning customers, RFM and rolling averages read it; a changed reference snapshot
    re-runs every month, since every monthly mart joins the reference tables. `version` tells
    deliveries of the same files apart in the run key (Dagster launches a run key only once).
    """
    if not all_months or not changed:
        return []
    reference = [rel for rel in changed if "/" not in rel]
    months = sorted({_month_of(rel) for rel in changed if "/" in rel})
    first = all_months[0] if reference else months[0]
    trigger = "new or changed raw files: " + ", ".join(changed)
    run_key = ";".join(changed) + f"@{first}" + (f"#{version}" if version else "")
    return [_range_request(first, all_months[-1], run_key=run_key, trigger=trigger)]


@sensor(
    name="raw_files_sensor",
    job=monthly_refresh_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Launches a run for each month whose raw files are new or changed (by checksum); a "
    "changed reference snapshot re-runs every month.",
)
def raw_files_sensor(context: SensorEvaluationContext):
    data_dir = load_settings().data_dir
    previous = json.loads(context.cursor) if context.cursor else {}
    current = fingerprint(data_dir, previous)
    changed = changed_files(previous, current)
    cursor = json.dumps(current, sort_keys=True)
    if not changed:
        return SensorResult(skip_reason=SkipReason("no new or changed raw files"), cursor=cursor)
    context.log.info("new or changed: " + ", ".join(changed))
    # the files' previous and new [size, mtime, sha256]: a second correction of a file gets a new key
    version = hashlib.sha256(
        json.dumps({rel: [previous.get(rel), current[rel]] for rel in changed}, sort_keys=True).encode()
    ).hexdigest()[:16]
    return SensorResult(run_requests=run_requests_for(changed, discover_months(data_dir), version), cursor=cursor)


@run_failure_sensor(name="run_failure_log", default_status=DefaultSensorStatus.RUNNING,
                    monitor_all_code_locations=False)
def run_failure_log(context: RunFailureSensorContext):
    run = context.dagster_run
    partition = run.tags.get("dagster/partition") or run.tags.get("dagster/asset_partition_range_start", "")
    steps = [
        f"{event.step_key}: {event.event_specific_data.error.message.strip().splitlines()[0]}"
        for event in context.get_step_failure_events()
        if event.event_specific_data and event.event_specific_data.error
    ]
    reason = "; ".join(steps) or (context.failure_event.message or "unknown failure")
    write_run_log(f"FAILED run {run.run_id} ({run.job_name} {partition}): {reason}")


def rebuild_quality_docs(context: RunStatusSensorContext) -> SkipReason:
    """Rebuild data/docs/quality/ once after a finished run of this code location that ran a gate.

    Runs launched in the UI, by the schedule or by raw_files_sensor need this: only `nexcart run`
    builds the docs itself. Its in-process runs belong to no code location, so the sensor does not
    see them; their tag nexcart/cli-run is checked too, so a build never races the CLI's own.
    Failed runs count too: a failed gate is when people read the docs.
    A failed build is logged to the tick and data/logs/runs.log, not raised, and the run is not
    retried. Every branch returns a value, so Dagster hands the sensor one run per tick: a
    backlog of finished runs never stacks builds past the sensor's 60 s evaluation timeout.
    """
    run = context.dagster_run
    if "nexcart/cli-run" in run.tags:
        return SkipReason(f"run {run.run_id}: `nexcart run` builds the quality docs itself")
    checks = context.instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    if not any(record.event_log_entry.get_dagster_event().asset_check_evaluation_data.check_name == GATE_CHECK_NAME
               for record in checks.records):
        return SkipReason(f"run {run.run_id} evaluated no quality gate")
    try:
        docs = build_quality_docs(load_settings().warehouse)
    except Exception as exc:  # noqa: BLE001 - any failure is reported, never retried tick after tick
        context.log.exception(f"quality docs not rebuilt after run {run.run_id}")
        write_run_log(f"quality docs NOT rebuilt after run {run.run_id} ({run.job_name}): "
                      f"{type(exc).__name__}: {exc}")
        return SkipReason(f"quality docs build failed after run {run.run_id}: {exc}")
    context.log.info(f"quality docs rebuilt after run {run.run_id}: {docs}")
    return SkipReason(f"quality docs rebuilt after run {run.run_id} ({run.status.value}): {docs}")


quality_docs_sensors = [
    run_status_sensor(
        run_status=status, name=f"quality_docs_on_{status.value.lower()}",
        default_status=DefaultSensorStatus.RUNNING, monitor_all_code_locations=False,
        description=f"Rebuilds the data-quality docs (data/docs/quality/) after every {status.value} run "
        "that evaluated a quality gate.",
    )(rebuild_quality_docs)
    for status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)
]
