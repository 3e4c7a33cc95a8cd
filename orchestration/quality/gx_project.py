"""The Great Expectations project of the gates: a GX 1.x file context under data/docs/gx/
(git-ignored; regenerated from expectations/*.yml, which stay the source of truth).

One pandas data source `nexcart`; per gate two suites, each with a DataFrame asset, a
whole-DataFrame batch definition and a ValidationDefinition:
  <gate id>        (e.g. clean.orders)      the gate's expectations, on the month's rows;
  <gate id>.sql    (e.g. clean.orders.sql)  its SQL checks, as one row of computed metrics
                                             (one column per check), so that Data Docs show them.
Validation results are stored by ValidationDefinition.run (run name = the month); Data Docs are
built once per run by build_quality_docs (docs.py), never per validation.

GX is imported here only, lazily (the import takes seconds): loading the Dagster code location
does not pay for it, the first gate of a process does.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestration.quality.suites import Expectation, Gate, SqlCheck

DATASOURCE = "nexcart"
BATCH_DEFINITION = "whole"
SQL_SUFFIX = ".sql"

_lock = threading.Lock()
_projects: dict[str, GxProject] = {}


@dataclass(frozen=True)
class QualityPaths:
    """Where the gates keep their state, under the output root (NEXCART_OUTPUT_DIR, default data/):
    docs/gx (the GX project) and docs/quality (the docs people read)."""

    docs_root: Path

    @classmethod
    def from_settings(cls) -> QualityPaths:
        from orchestration.settings import load_settings

        return cls(load_settings().docs_dir)

    @property
    def gx_dir(self) -> Path:
        return self.docs_root / "gx"

    @property
    def validations_dir(self) -> Path:
        return self.gx_dir / "uncommitted" / "validations"

    @property
    def records_dir(self) -> Path:
        """The newest result of every gate and month, as JSON (the landing page reads them)."""
        return self.gx_dir / "uncommitted" / "gate_results"

    @property
    def site_dir(self) -> Path:
        return self.docs_root / "quality"


def sql_metric_column(check: SqlCheck) -> str:
    """The column of a SQL check in the metrics row: its name as an identifier."""
    return re.sub(r"[^a-z0-9]+", "_", check.name.lower()).strip("_")


def _notes(severity: str, why: str | None, sql: str | None = None) -> str:
    text = f"severity: {severity} ({'blocks the month' if severity == 'error' else 'recorded, does not block'})"
    if why:
        text += f". {why.strip()}"
    if sql:
        text += f"\n\nSQL: {' '.join(sql.split())}"
    return text


class GxProject:
    """The file context and the validation definitions of the gates (cached per process)."""

    def __init__(self, paths: QualityPaths):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.execution_engine import pandas_execution_engine

        # GX fingerprints every in-memory batch under 1 GB by hashing all of its values, for a
        # marker in the result's metadata only (`pandas_data_fingerprint`). That hashing was 16 %
        # of the gates' time at 1M orders (benchmarks/README.md); a batch here is named by its
        # gate, month and run already. 0 turns the fingerprint off (GX has no setting for it).
        pandas_execution_engine.HASH_THRESHOLD = 0

        self.gx = gx
        self.paths = paths
        paths.docs_root.mkdir(parents=True, exist_ok=True)
        self.context = gx.get_context(mode="file", project_root_dir=str(paths.docs_root))
        variables = self.context.variables
        if (variables.analytics_enabled is not False or variables.progress_bars is None
                or variables.config_variables_file_path is not None):
            variables.analytics_enabled = False
            variables.progress_bars = ProgressBarsConfig(globally=False)
            # no ${VARIABLE} substitution file: GX would re-read it at every validation
            variables.config_variables_file_path = None
            variables.save()
            self.context = gx.get_context(mode="file", project_root_dir=str(paths.docs_root))
        self.datasource = self._datasource()
        self._definitions: dict[str, tuple[str, Any]] = {}

    def _datasource(self):
        try:
            return self.context.data_sources.get(DATASOURCE)
        except (KeyError, ValueError, LookupError):
            return self.context.data_sources.add_pandas(DATASOURCE)

    def _batch_definition(self, asset_name: str):
        try:
            asset = self.datasource.get_asset(asset_name)
        except LookupError:
            asset = self.datasource.add_dataframe_asset(asset_name)
        try:
            return asset.get_batch_definition(BATCH_DEFINITION)
        except KeyError:
            return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)

    def _gx_expectation(self, expectation: Expectation):
        import great_expectations.expectations as gxe

        cls = getattr(gxe, expectation.gx_class_name, None)
        if cls is None:
            raise ValueError(f"{expectation.type} is not a Great Expectations 1.x expectation")
        return cls(**expectation.kwargs, meta={"name": expectation.name, "severity": expectation.severity},
                   notes=_notes(expectation.severity, expectation.why))

    def _sql_expectation(self, check: SqlCheck):
        import great_expectations.expectations as gxe

        return gxe.ExpectColumnValuesToBeBetween(
            column=sql_metric_column(check), min_value=check.min, max_value=check.max,
            meta={"name": check.name, "severity": check.severity},
            notes=_notes(check.severity, check.why, check.metric_sql),
        )

    def _definition(self, name: str, source: Any, build_expectations) -> Any:
        """The ValidationDefinition of a suite, (re)written when its source (the gate's
        expectations or SQL checks, as read from the YAML) changed."""
        fingerprint = hashlib.sha256(json.dumps(source, sort_keys=True, default=str).encode()).hexdigest()
        cached = self._definitions.get(name)
        if cached and cached[0] == fingerprint:
            return cached[1]
        expectations = build_expectations()
        suite = self.gx.ExpectationSuite(name=name, expectations=expectations, meta={"source": "expectations/*.yml"})
        suite = self.context.suites.add_or_update(suite)
        definition = self.context.validation_definitions.add_or_update(
            self.gx.ValidationDefinition(name=name, data=self._batch_definition(name), suite=suite)
        )
        self._definitions[name] = (fingerprint, definition)
        return definition

    def row_validation(self, gate: Gate):
        return self._definition(gate.id, [asdict(e) for e in gate.expectations],
                                lambda: [self._gx_expectation(e) for e in gate.expectations])

    def sql_validation(self, gate: Gate):
        return self._definition(gate.id + SQL_SUFFIX, [asdict(c) for c in gate.sql_checks],
                                lambda: [self._sql_expectation(c) for c in gate.sql_checks])


def get_project(paths: QualityPaths) -> GxProject:
    key = str(paths.docs_root.resolve())
    with _lock:
        project = _projects.get(key)
        if project is None or not (paths.gx_dir / "great_expectations.yml").exists():
            project = _projects[key] = GxProject(paths)
        return project
