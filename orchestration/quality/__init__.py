"""Data-quality gates on every layer (Great Expectations 1.x), and the offline quality docs.

For the Definitions (orchestration/definitions.py):

    from orchestration.quality import quality_checks          # one `gx_gate` check per gated asset
    Definitions(assets=[...], asset_checks=[*freshness_checks, *quality_checks], ...)

In `nexcart run` (materialize() only runs the checks it is given):

    from orchestration.quality import build_quality_docs, failed_gates_summary
    result = materialize([*defs.assets, *defs.asset_checks], ...)
    failed_gates_summary(result)            # lines naming failed gates, errors first
    build_quality_docs(settings.warehouse)  # once, success or not -> data/docs/quality/index.html

`nexcart docs`: serve_docs(port) serves data/docs/quality on 127.0.0.1.

The suites are the YAML files in expectations/ (suites.py reads them); gates.py runs one gate
for one month; checks.py makes the Dagster asset checks; docs.py builds the docs.
"""

from __future__ import annotations

from pathlib import Path

from orchestration.quality.checks import (
    GATE_CHECK_NAME,
    build_gate_check,
    build_quality_checks,
    failed_gates_summary,
    gate_failures,
)
from orchestration.quality.docs import build_quality_docs, serve_docs
from orchestration.quality.gates import GateResult
from orchestration.quality.suites import QualityConfigError, load_config

__all__ = [
    "GATE_CHECK_NAME",
    "GateResult",
    "QualityConfigError",
    "build_gate_check",
    "build_quality_checks",
    "build_quality_docs",
    "failed_gates_summary",
    "gate_failures",
    "load_config",
    "quality_checks",
    "serve_docs",
    "validate_gate",
]


def validate_gate(warehouse_path: str | Path, gate_id: str, month: str | None = None) -> GateResult:
    """Run one gate outside Dagster (e.g. `validate_gate(w, 'marts.monthly_revenue', '2024-02')`)."""
    from orchestration.quality.gates import run_gate
    from orchestration.quality.gx_project import QualityPaths
    from orchestration.resources import connect_with_retry

    config = load_config()
    con = connect_with_retry(Path(warehouse_path), read_only=True)
    try:
        return run_gate(con, config.gate(gate_id), month, config=config,
                        paths=QualityPaths.from_settings())
    finally:
        con.close()


def __getattr__(name: str):
    # `quality_checks` needs the asset definitions (and so the dbt manifest): built on first use,
    # not when orchestration.quality is imported.
    if name == "quality_checks":
        from orchestration.assets.dbt import dbt_asset_defs
        from orchestration.assets.raw import raw_assets

        checks = build_quality_checks([*raw_assets, *dbt_asset_defs])
        globals()["quality_checks"] = checks
        return checks
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
