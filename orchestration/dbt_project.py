"""The dbt project as Dagster sees it (kept apart from the @dbt_assets, as dagster-dbt advises).

Every process that loads the definitions (`dagster dev`, the CLI, `make ui`, the tests, CI) calls
ensure_manifest(), which runs `dbt parse` when the manifest is missing or older than the models.
dagster-dbt's own prepare_if_dev() is not used: it runs the `dbt` found on PATH, and there is none
unless the virtualenv is activated, so `dagster dev` could not load the code location.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from dagster_dbt.compat import DBT_PYTHON_VERSION
from packaging.version import Version

from orchestration.settings import DBT_PROJECT_DIR

# The dbt next to this interpreter, so nothing depends on an activated virtualenv.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")

# The profile's target for orchestrated runs (profiles.yml): it writes NEXCART_WAREHOUSE, which a
# run points at its build copy. `dev`, the default, is the analyst's own file.
DBT_PIPELINE_TARGET = "pipeline"

nexcart_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR,
                                 target=DBT_PIPELINE_TARGET)


class NexcartDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource without two costs it pays before every dbt step (~3 s of each,
    measured on the sample; benchmarks/README.md):
    - `dbt --version` in a subprocess (~2 s), to learn which dbt it runs: DBT_EXECUTABLE is the dbt
      of this interpreter's environment, so its version is the installed dbt-core's;
    - a dbt adapter opened in this process (~1 s), which dagster-dbt uses only for
      `fetch_row_counts()` / `fetch_column_metadata()`: the assets do not call them, they count
      rows themselves once dbt has exited (orchestration/assets/dbt.py).
    """

    @cached_property
    def _cli_version(self) -> Version:
        return DBT_PYTHON_VERSION

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


def _newest_source_mtime() -> float:
    paths = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        paths.extend(p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.is_file())
    return max(p.stat().st_mtime for p in paths if p.exists())


def ensure_manifest() -> Path:
    """Parse into a private folder and move the manifest into place in one step, so a process
    loading the definitions never reads a half-written manifest from another one."""
    manifest = nexcart_dbt_project.manifest_path
    if manifest.exists() and manifest.stat().st_mtime >= _newest_source_mtime():
        return manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=manifest.parent, prefix=".parse-") as scratch:
        completed = subprocess.run(
            [DBT_EXECUTABLE, "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR),
             "--profiles-dir", str(DBT_PROJECT_DIR), "--target", DBT_PIPELINE_TARGET, "--target-path", scratch],
            cwd=DBT_PROJECT_DIR,
            capture_output=True,
            text=True,
            env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        )
        if completed.returncode != 0:
            raise RuntimeError(f"dbt parse failed:\n{completed.stdout}\n{completed.stderr}")
        os.replace(Path(scratch) / "manifest.json", manifest)
    return manifest

