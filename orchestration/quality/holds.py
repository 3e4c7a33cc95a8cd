"""Month holds: a failed error-level gate stops what is downstream of it for that month only.

Dagster blocks at the step, and a step of a run over a range of months builds every month of the
range at once (one dbt invocation), so a blocking check would stop every month for one bad month.
So a gate blocks the step only when every month of the run failed it (a one-month run included);
when only some did, it records their failures and the steps downstream hold those months back:

- the month is put back in every monthly table of the run's build as the published warehouse has
  it (raw, clean, marts; `restore_months`), so it stays at its last good state, whole;
- dbt leaves it out (the month window's held months, macro run_window) and the report
  skips it; later gates validate it as restored;
- the step's output names the held months (metadata `held_back_months`). Dagster still records
  the output for the whole range: it cannot mark one partition of a single-run backfill as not
  materialized (dagster-io/dagster#17836), and a step that yields no output skips everything
  downstream of it, every month included. The month's failed gate, shown on its partition, says
  why it was held.

`nexcart run` exits non-zero and names the gate and month; the other months are published.
"""

from __future__ import annotations

from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    MetadataValue,
    OpExecutionContext,
)

from orchestration.resources import WarehouseResource, restore_months

GATE_CHECK_NAME = "gx_gate"  # the name of every quality gate's asset check


def failed_gate_months(instance: DagsterInstance, run_id: str) -> dict[str, list[str]]:
    """Months of a run with a failed error-level gate so far -> the assets whose gates failed.

    The layers run in order (raw -> clean -> marts -> reports) and a step waits for its upstream
    blocking gates, so at a step's start these are the failures upstream of it.
    """
    records = instance.get_records_for_run(run_id=run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    failed: dict[str, list[str]] = {}
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if (evaluation.check_name == GATE_CHECK_NAME and not evaluation.passed
                and evaluation.severity == AssetCheckSeverity.ERROR and evaluation.partition):
            failed.setdefault(evaluation.partition, []).append(evaluation.asset_key.to_user_string())
    return failed


def held_upstream_months(instance: DagsterInstance, run_id: str, layer: str, layers: tuple[str, ...]) -> set[str]:
    """Months of a run already held back by a failed error gate of an earlier layer than `layer`:
    a gate does not validate them again (its failure would only echo the first one)."""
    earlier = set(layers[: layers.index(layer)])
    return {month for month, keys in failed_gate_months(instance, run_id).items()
            if any(key.split("/")[0] in earlier for key in keys)}


def hold_back_failed_months(context: OpExecutionContext, warehouse: WarehouseResource) -> list[str]:
    """The months of this step to hold back (see the module doc); puts them back as published."""
    if context.assets_def.partitions_def is None:
        months: set[str] | None = None  # an unpartitioned step (whole history): every failed month
    else:
        months = set(context.partition_keys)
    failed = failed_gate_months(context.instance, context.run.run_id)
    held = sorted(m for m in failed if months is None or m in months)
    if not held:
        return []
    with warehouse.connect() as con:
        restored = restore_months(con, warehouse.published_path, held)
    for month in held:
        context.log.warning(f"{month} held back: error gate failed on {', '.join(sorted(set(failed[month])))}; "
                            "the month keeps its last published state")
    context.log.info(f"put {restored} rows of the held-back months back as published")
    return held


def held_metadata(held: list[str]) -> dict[str, MetadataValue]:
    """Metadata of a step's output naming the months it held back."""
    return {"held_back_months": MetadataValue.text(", ".join(held) + " (failed error gate: last published "
                                                   "state kept, not rebuilt)")}
