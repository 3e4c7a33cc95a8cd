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
