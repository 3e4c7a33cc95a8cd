"""data/logs/runs.log: one line per finished run (and a reason for a failed one), readable
without the UI. Written by `nexcart run` and, for runs launched in the UI, by a sensor. And the
bounded run history of the Dagster instance."""

import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from orchestration.settings import DBT_TARGET_DIR, load_settings

# dagster-dbt's folder for one dbt invocation: <step>-<run id, 7 chars>-<random, 7 chars>
_DBT_INVOCATION_FOLDER = re.compile(r"^(?P<step>.+)-(?P<run>[0-9a-f]{7})-[0-9a-f]{7}$")


def write_run_log(line: str) -> Path:
    log = load_settings().logs_dir / "runs.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    with open(log, "a", encoding="utf-8") as stream:
        stream.write(f"{stamp} {' '.join(line.split())}\n")
    return log


def prune_run_history(instance, keep: int, dbt_target: Path = DBT_TARGET_DIR) -> int:
    """Keep the newest `keep` runs of the Dagster instance (NEXCART_KEEP_RUNS) and delete the
    older ones with their event logs: a run's events take megabytes (every dbt node, every gate
    and month), so an unbounded history fills DAGSTER_HOME (150 MB in four runs of the sample).
    The dbt folders of the runs go the same way (prune_dbt_invocations).
    Returns how many runs were deleted; keep <= 0 keeps everything."""
    if keep <= 0:
        return 0
    old = instance.get_run_ids(limit=None)[keep:]  # newest first
    for run_id in old:
        instance.delete_run(run_id)
        # the run's captured stdout/stderr (compute logs) live in a folder of their own
        shutil.rmtree(Path(instance.root_directory) / "storage" / run_id, ignore_errors=True)
    prune_dbt_invocations(keep, dbt_target)
    return len(old)


def prune_dbt_invocations(keep: int, target: Path = DBT_TARGET_DIR) -> int:
    """Keep the dbt folders (manifest, compiled SQL, run_results.json, dbt.log; ~7 MB each, four
    a run) of the newest `keep` runs that wrote any, whichever Dagster instance ran them, and
    delete the others: dagster-dbt gives every invocation a folder and never removes one.
    Returns how many folders were deleted."""
    if keep <= 0 or not target.is_dir():
        return 0
    runs: dict[str, list[Path]] = {}
    for folder in target.iterdir():
        match = _DBT_INVOCATION_FOLDER.match(folder.name)
        if match and folder.is_dir() and not folder.is_symlink():
            runs.setdefault(match["run"], []).append(folder)

    def newest(folders: list[Path]) -> float:
        return max(f.stat().st_mtime for f in folders)

    old = sorted(runs.values(), key=newest, reverse=True)[keep:]
    for folders in old:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    return sum(len(folders) for folders in old)
