"""The Dagster code location loads, with the groups, partitions and metadata users see in the UI."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import PROJECT_ROOT, write_csv

INSPECT = """
import json
from orchestration.definitions import defs
graph = defs.resolve_asset_graph()
out = {}
for key in graph.get_all_asset_keys():
    node = graph.get(key)
    pdef = node.partitions_def
    out[key.to_user_string()] = {
        "group": node.group_name,
        "first_partition": pdef.get_first_partition_key() if pdef else None,
    }
print("JSON" + json.dumps(out))
"""


def test_definitions_load_with_groups_and_partitions_from_the_data(pipeline):
    write_csv(pipeline.raw / "orders/2023-07.csv", "order_id,order_ts", "O1,2023-07-02 10:00")
    completed = subprocess.run([sys.executable, "-c", INSPECT], cwd=PROJECT_ROOT, env=pipeline.env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assets = json.loads(completed.stdout.split("JSON", 1)[1])

    assert assets["raw/orders"] == {"group": "raw", "first_partition": "2023-07"}
    assert assets["raw/customers"] == {"group": "raw", "first_partition": None}
    assert assets["staging/stg_orders"]["group"] == "staging"
    assert assets["clean/orders"] == {"group": "clean", "first_partition": "2023-07"}
    assert assets["clean/customers"] == {"group": "clean", "first_partition": None}
    assert assets["quality/quarantine"]["group"] == "quality"
    assert assets["marts/monthly_revenue"] == {"group": "marts", "first_partition": "2023-07"}


def test_raw_asset_reports_rows_quarantine_and_checksum(pipeline):
    """Materialize raw/order_items through Dagster for one month and read what the UI shows."""
    write_csv(pipeline.raw / "order_items/2024-01.csv", "order_id,line_number,product_id,quantity,unit_price",
              "O1,1,P1,1,2.00", "O1,2,P2", "O2,1,P1,1,2.00")
    script = """
from dagster import materialize
from orchestration.definitions import defs
from orchestration.assets.raw import raw_assets
items = [a for a in raw_assets if a.key.to_user_string() == "raw/order_items"]
result = materialize(items, partition_key="2024-01", resources=dict(defs.resources))
meta = result.get_asset_materialization_events()[0].materialization.metadata
print("META", meta["rows_loaded"].value, meta["rows_quarantined"].value, "order_items/2024-01.csv" in meta["files"].value)
"""
    completed = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=pipeline.env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert "META 2 1 True" in completed.stdout
    assert pipeline.query("select source_line from raw.order_items_rejected_lines") == [(3,)]


def test_quality_docs_sensor_skips_runs_without_a_gate_or_from_the_cli_and_logs_a_failed_build(
        pipeline, monkeypatch):
    """The sensor's function on real runs: a gate run rebuilds (here the build fails: logged to
    runs.log and returned, not raised); a run with no gate or from `nexcart run` is skipped."""
    from dagster import (AssetCheckResult, DagsterInstance, asset, asset_check,
                         build_run_status_sensor_context, materialize)

    from orchestration import sensors
    from orchestration.quality import GATE_CHECK_NAME

    monkeypatch.setenv("NEXCART_WAREHOUSE", str(pipeline.warehouse))
    monkeypatch.setenv("NEXCART_OUTPUT_DIR", str(pipeline.root))
    builds = []

    def failing_build(warehouse):
        builds.append(warehouse)
        raise OSError("No space left on device")

    monkeypatch.setattr(sensors, "build_quality_docs", failing_build)

    @asset
    def orders():
        return 1

    @asset_check(asset=orders, name=GATE_CHECK_NAME)
    def gate():
        return AssetCheckResult(passed=False)

    def sensor_on(assets, tags=None):
        with DagsterInstance.ephemeral() as instance:
            result = materialize(assets, instance=instance, tags=tags)
            context = build_run_status_sensor_context(
                sensor_name="quality_docs_on_success", dagster_event=result.get_run_success_event(),
                dagster_instance=instance, dagster_run=instance.get_run_by_id(result.run_id))
            return result.run_id, sensors.rebuild_quality_docs(context).skip_message

    _, message = sensor_on([orders])
    assert "evaluated no quality gate" in message
    _, message = sensor_on([orders, gate], tags={"nexcart/cli-run": "token"})
    assert "`nexcart run` builds the quality docs itself" in message
    assert builds == []

    run_id, message = sensor_on([orders, gate])
    assert builds == [pipeline.warehouse]
    assert "build failed" in message
    log = (pipeline.root / "logs" / "runs.log").read_text()
    assert f"quality docs NOT rebuilt after run {run_id}" in log and "No space left on device" in log


def test_the_dbt_resource_knows_the_dbt_it_runs_without_asking_it():
    """NexcartDbtCliResource skips dagster-dbt's `dbt --version` subprocess before every dbt step:
    the version it gives instead must be what that very executable reports."""
    import re

    from orchestration.dbt_project import DBT_EXECUTABLE, NexcartDbtCliResource, nexcart_dbt_project

    resource = NexcartDbtCliResource(project_dir=nexcart_dbt_project, dbt_executable=DBT_EXECUTABLE)
    reported = subprocess.run([DBT_EXECUTABLE, "--version"], capture_output=True, text=True, timeout=120).stdout
    assert f"installed: {resource._cli_version}" in re.sub(r"\s+", " ", reported)
    assert resource._initialize_dbt_core_adapter(["build"]) is None

    from orchestration.definitions import build_definitions

    assert isinstance(build_definitions().resources["dbt"], NexcartDbtCliResource)  # what the steps get
