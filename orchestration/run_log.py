"""data/logs/runs.log: one line per finished run (and a reason for a failed one), readable
without the UI. Written by `nexcart run` and, for runs launched in the UI, by a sensor. And the
bounded run history of the Dagster instance."""

import shutil
from datetime import datetime, timezone
from pathlib import Path

from orchestration.settings import load_settings


def write_run_log(line: str) -> Path:
    log = load_settings().logs_dir / "runs.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    with open(log, "a", encoding="utf-8") as stream:
        stream.write(f"{stamp} {' '.join(line.split())}\n")
    return log


def prune_run_history(instance, keep: int) -> int:
    """Keep the newest `keep` runs of the Dagster instance (NEXCART_KEEP_RUNS) and delete the
    older ones with their event logs: a run's events take megabytes (every dbt node, every gate
    and month), so an unbounded history fills DAGSTER_HOME (150 MB in four runs of the sample).
    Returns how many runs were deleted; keep <= 0 keeps everything."""
    if keep <= 0:
        return 0
    old = instance.get_run_ids(limit=None)[keep:]  # newest first
    for run_id in old:
        instance.delete_run(run_id)
        # the run's captured stdout/stderr (compute logs) live in a folder of their own
        shutil.rmtree(Path(instance.root_directory) / "storage" / run_id, ignore_errors=True)
    return len(old)
