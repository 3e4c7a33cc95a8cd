"""The gates as Dagster asset checks: one check `gx_gate` per gated asset.

- blocking when the gate has an error-level expectation: a failed error-level expectation
  fails the check with severity ERROR and stops what is downstream of it for that month: Dagster
  skips the downstream steps when every month of the run failed (a one-month run), and otherwise
  the downstream steps hold the failed months back and build the others (holds.py); warn-level
  failures give severity WARN and block nothing;
- partitioned like its asset (monthly): it validates only the month(s) of the run, each month
  separately, and reports one evaluation per month (a single-run backfill of a range gives one
  evaluation per month of the range, so the UI shows which month failed);
- in the pool 'warehouse', with a read-only connection opened and closed inside the check.

The metadata of a failed evaluation names the failed expectations, their observed values and a
few example rows.
"""


import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetKey,
    AssetsDefinition,
    MetadataValue,
    Output,
    PartitionsDefinition,
    asset_check,
    get_dagster_logger,
)

from orchestration.quality.gates import GateResult, months_present, run_gate_months
from orchestration.quality.gx_project import QualityPaths
from orchestration.quality.holds import GATE_CHECK_NAME, held_upstream_months
from orchestration.quality.suites import LAYERS, Gate, QualityConfig, load_config
from orchestration.resources import WAREHOUSE_POOL, WarehouseResource



# --- metadata the UI shows -----------------------------------------------------------------------


def _md_cell(value: Any) -> str:
    """A value from the data as Markdown table text: HTML-escaped (the UI must show a value such
    as '<img onerror=...>' as text), pipes escaped, one line, cut to 200 characters."""
    text = "" if value is None else str(value)
    return html.escape(text[:200]).replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _examples_md(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(_md_cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_md_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def result_metadata(result: GateResult) -> dict[str, Any]:
    failed = result.failed
    meta: dict[str, Any] = {
        "gate": MetadataValue.text(result.gate_id),
        "month": MetadataValue.text(result.month or "reference snapshot"),
        "status": MetadataValue.text(result.status),
        "expectations_evaluated": MetadataValue.int(len(result.outcomes)),
        "failed_errors": MetadataValue.int(len(result.failed_errors)),
        "failed_warnings": MetadataValue.int(len(result.failed_warnings)),
        "failed_expectations": MetadataValue.json([o.name for o in failed]),
    }
    if result.rows is not None:
        meta["rows_validated"] = MetadataValue.int(result.rows)
    if failed:
        table = ["| expectation | severity | observed | expected |", "|---|---|---|---|"]
        table += [
            f"| {_md_cell(o.name)} | {o.severity} | {_md_cell(o.error or o.summary())} | {_md_cell(o.expected)} |"
            for o in failed
        ]
        meta["failures"] = MetadataValue.md("\n".join(table))
        meta["observed_values"] = MetadataValue.json(
            {o.name: {"observed": o.observed, "unexpected_count": o.unexpected_count,
                      "element_count": o.element_count, "expected": o.expected, "error": o.error}
             for o in failed}
        )
        examples = [f"**{o.name}** ({o.severity})\n\n{_examples_md(o.examples)}" for o in failed if o.examples]
        if examples:
            meta["example_rows"] = MetadataValue.md("\n\n".join(examples))
    return meta


def _description(result: GateResult) -> str:
    if result.status == "passed":
        return f"{result.gate_id} {result.month or ''}: all {len(result.outcomes)} expectations passed".strip()
    names = ", ".join(o.name for o in result.failed)
    level = "error-level (blocks the month)" if result.status == "error" else "warn-level"
    return f"{result.gate_id} {result.month or ''}: {len(result.failed)} {level} failure(s): {names}"


def _severity(result: GateResult) -> AssetCheckSeverity:
    return AssetCheckSeverity.ERROR if result.status == "error" else AssetCheckSeverity.WARN


# --- the check factory -----------------------------------------------------------------------------


def _run_months(context: AssetCheckExecutionContext, gate: Gate, con) -> list[str | None]:
    if not gate.partitioned:
        return [None]
    if context.has_partition_key or context.has_partition_key_range:
        held = held_upstream_months(context.instance, context.run.run_id, gate.layer, LAYERS)
        if held & set(context.partition_keys):
            context.log.info(f"not validated again, held back by an earlier layer's gate: {sorted(held)}")
        return [month for month in context.partition_keys if month not in held]
    # run without a partition (e.g. "execute check" on the whole asset): every month in the table
    return months_present(con, gate) or []


def _materializations(context: AssetCheckExecutionContext, key: AssetKey, months: list[str]) -> dict:
    """The newest materialization of each month, which each evaluation is about (for the UI;
    one query for the whole range; best effort)."""
    try:
        from dagster._core.definitions.asset_checks.asset_check_evaluation import (
            AssetCheckEvaluationTargetMaterializationData,
        )
        from dagster._core.storage.event_log.base import AssetRecordsFilter

        records = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=months), limit=len(months) * 4
        ).records
        found = {}
        for rec in records:  # newest first
            partition = rec.partition_key
            if partition not in found:
                found[partition] = AssetCheckEvaluationTargetMaterializationData(
                    run_id=rec.event_log_entry.run_id, storage_id=rec.storage_id, timestamp=rec.timestamp
                )
        return found
    except Exception:  # noqa: BLE001 - only decorates the UI
        return {}


def build_gate_check(gate: Gate, partitions_def: PartitionsDefinition | None,
                     config: QualityConfig | None = None) -> AssetChecksDefinition:
    key = AssetKey(list(gate.asset_key))
    blocking = gate.has_error_severity
    expectations = "\n".join(f"- [{e.severity}] {e.name}" for e in gate.expectations)
    sql = "\n".join(f"- [{c.severity}] {c.name} (SQL)" for c in gate.sql_checks)

    @asset_check(
        asset=key,
        name=GATE_CHECK_NAME,
        blocking=blocking,
        pool=WAREHOUSE_POOL,
        partitions_def=partitions_def,
        description=f"Great Expectations gate {gate.id} ({gate.source_file}), "
        f"{'the month being built' if gate.partitioned else 'the whole snapshot'}. "
        f"Error-level failures {'block downstream assets of the month' if blocking else '(none here)'}.\n\n"
        f"{expectations}\n{sql}".strip(),
        metadata={"gate": gate.id, "suite_file": f"expectations/{gate.source_file}"},
    )
    def _gate_check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> Iterator[Any]:
        cfg = config or load_config()
        paths = QualityPaths.from_settings()
        with warehouse.connect(read_only=True) as con:
            months = _run_months(context, gate, con)
            results = run_gate_months(con, gate, months, config=cfg, paths=paths,
                                      run_id=context.run.run_id) if months else []
        for result in results:
            context.log.info(_description(result))

        if not gate.partitioned:
            result = results[0]
            yield AssetCheckResult(passed=result.status == "passed", severity=_severity(result),
                                   metadata=result_metadata(result), description=_description(result))
            return
        if not results:
            yield AssetCheckResult(passed=True, severity=AssetCheckSeverity.WARN,
                                   metadata={"note": "no month to validate"})
            return
        # One evaluation per month (AssetCheckResult would record a range as one, unpartitioned).
        # Dagster blocks the whole downstream step, so it blocks only when every month of the run
        # failed; otherwise the failed months are held back month by month (holds.py).
        blocks_step = blocking and all(r.status == "error" for r in results)
        materializations = _materializations(context, key, [r.month for r in results])
        for result in results:
            yield AssetCheckEvaluation(
                asset_key=key, check_name=GATE_CHECK_NAME, passed=result.status == "passed",
                metadata=result_metadata(result), severity=_severity(result), description=_description(result),
                blocking=blocks_step, partition=result.month,
                target_materialization_data=materializations.get(result.month),
            )
        yield Output(None)

    return _gate_check


def _partitions_by_key(assets: Sequence[AssetsDefinition]) -> dict[AssetKey, PartitionsDefinition | None]:
    found: dict[AssetKey, PartitionsDefinition | None] = {}
    for assets_def in assets:
        for spec in getattr(assets_def, "specs", []):
            found[spec.key] = getattr(spec, "partitions_def", None) or assets_def.partitions_def
    return found


def build_quality_checks(assets: Sequence[AssetsDefinition], config: QualityConfig | None = None) -> list[AssetChecksDefinition]:
    """One `gx_gate` check per gate whose asset is among `assets` (gates of assets that do not
    exist yet, e.g. a dbt model not written, are skipped with a warning)."""
    config = config or load_config()
    partitions = _partitions_by_key(assets)
    checks = []
    for gate in config.gates:
        key = AssetKey(list(gate.asset_key))
        if key not in partitions:
            get_dagster_logger().warning(f"quality gate {gate.id}: no asset {key.to_user_string()}, gate skipped")
            continue
        pdef = partitions[key]
        if gate.partitioned != (pdef is not None):
            raise ValueError(
                f"quality gate {gate.id} ({gate.source_file}) is "
                f"{'monthly' if gate.partitioned else 'a whole snapshot'} but asset {key.to_user_string()} is "
                f"{'partitioned' if pdef is not None else 'not partitioned'}: fix month_column in the suite"
            )
        checks.append(build_gate_check(gate, pdef, config))
    return checks


def _number(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


def _observed_text(values: dict) -> str:
    if values.get("error"):
        return f"error: {values['error']}"
    parts = []
    if values.get("unexpected_count") is not None:
        parts.append(f"{values['unexpected_count']} of {values.get('element_count')} rows")
    if values.get("observed") is not None:
        parts.append(f"observed {_number(values['observed'])}")
    if values.get("expected"):
        parts.append(f"expected {values['expected']}")
    return ", ".join(parts) or "failed"


@dataclass(frozen=True)
class GateFailure:
    """One failed expectation of one gate evaluation (a month, or a reference snapshot)."""

    level: str  # 'ERROR' (the month is held back) or 'WARN'
    asset: str  # e.g. 'raw/orders'
    month: str  # '' for a reference snapshot
    expectation: str
    observed: dict  # observed, unexpected_count, element_count, expected, error

    @property
    def detail(self) -> str:
        return _observed_text(self.observed)


def gate_failures(result) -> list[GateFailure]:
    """Every failed expectation of a Dagster run result (ExecuteInProcessResult from
    `materialize`), errors first."""
    failures: list[GateFailure] = []
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed or evaluation.check_name != GATE_CHECK_NAME:
            continue
        meta = evaluation.metadata or {}
        names = meta.get("failed_expectations")
        observed = meta.get("observed_values")
        observed = observed.value if observed is not None else {}
        level = "ERROR" if evaluation.severity == AssetCheckSeverity.ERROR else "WARN"
        month = evaluation.partition or (meta["month"].value if "month" in meta else "")
        failures += [GateFailure(level, evaluation.asset_key.to_user_string(), month, name, observed.get(name) or {})
                     for name in (names.value if names is not None else [])]
    return sorted(failures, key=lambda f: f.level != "ERROR")


def failed_gates_summary(result) -> list[str]:
    """A line per failed gate evaluation, errors first.

    e.g. "ERROR marts/monthly_revenue 2024-02: gross_revenue reconciles with clean (observed 0.01, ...)"
    """
    lines: dict[tuple[str, str, str], list[str]] = {}
    for failure in gate_failures(result):
        lines.setdefault((failure.level, failure.asset, failure.month), []).append(
            f"{failure.expectation} ({failure.detail})")
    return [f"{level} {asset} {month}: {'; '.join(details)}".replace("  ", " ")
            for (level, asset, month), details in lines.items()]
