"""data/logs/runs.log: one line per finished run (and a reason for a failed one), readable
without the UI. Written by `nexcart run` and, for runs launched in the UI, by a sensor."""

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
