"""The benchmark harness never rots: `nexcart bench` end to end on a tiny sample (2,000 orders over
3 months, one repetition). It checks the results file has every stage of every approach, that the
floor and pandas gave the marts' numbers, that a wrong number would be caught, and that the
README's tables render. No timing is asserted: thresholds live in benchmarks/README.md only."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import duckdb
import pytest

from orchestration.cli import build_parser

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks import harness  # noqa: E402

STAGES = {"startup", "planning", "ingest", "dbt", "gates", "other_steps", "dagster_between_steps", "after_run"}


@pytest.mark.pipeline
def test_bench_smoke_end_to_end(tmp_path: Path) -> None:
    out, work = tmp_path / "results", tmp_path / "work"
    args = build_parser().parse_args(["bench", "--sizes", "2000", "--months", "3", "--repeat", "1",
                                      "--out", str(out), "--keep", str(work)])
    assert args.func(args) == 0

    (results_file,) = out.glob("*.json")
    result = json.loads(results_file.read_text())
    (size,) = result["sizes"]
    assert size["orders"] == 2000 and size["rows"]["orders"] > 0 and size["csv_mb"] > 0
    assert size["last_month"] == "2024-03"
    for approach in harness.APPROACHES:
        (run,) = size["runs"][approach]
        assert run["wall_s"] > 0 and run["peak_rss_mb"] > 0 and run["rss_samples"] >= 1, approach
        assert size["median"][approach]["wall_s"] == run["wall_s"]

    for approach in ("pipeline", "new_month"):
        run = size["runs"][approach][0]
        assert set(run["stages"]) == STAGES
        assert run["stages"]["ingest"] > 0 and run["stages"]["dbt"] > 0 and run["stages"]["gates"] > 0
        assert run["gate_steps"] > 0 and {"raw__orders", "dbt_monthly_marts"} <= set(run["steps"])
        # every dbt invocation's run_results.json was found, with the models it built
        assert {inv["step"] for inv in run["dbt"]} == {"dbt_reference", "dbt_monthly_clean", "dbt_monthly_marts",
                                                       "dbt_summary"}
        assert all(inv["nodes"]["model"]["count"] > 0 for inv in run["dbt"])
        assert run["dbt_nodes_s"] > 0
        # the run's events and the process's clock line up: no stage is negative
        assert min(run["stages"].values()) >= 0, run["stages"]
        # dagster-dbt's per-invocation target folders were read, then removed
        assert not list(harness.DBT_TARGET.glob(f"*-{run['run_id'][:7]}-*"))
    # the months-1 warehouse was built first; the new month's run did not rebuild every month
    assert size["new_month_setup"]["months"] == 2 and size["new_month_setup"]["wall_s"] > 0
    assert set(size["runs"]["new_month"][0]["steps"]) <= set(size["runs"]["pipeline"][0]["steps"])

    for approach in ("floor", "pandas"):
        check = size["checks"][approach]
        assert check["match"], (approach, check)
        assert set(check["tables"]) == set(harness.COMPARED)
        for table, (_, columns) in harness.COMPARED.items():
            assert check["tables"][table]["columns"] == list(columns)
            assert check["tables"][table]["rows"] == check["tables"][table]["mart_rows"] > 0
    assert size["targets"] == []  # the targets are for 50k, 1M and 5M orders only

    # the check can fail: one cent off in the floor's output is caught, in that column only
    warehouse = work / "2k" / "pipeline-1" / "warehouse" / "nexcart.duckdb"
    floor_db = work / "2k" / "floor" / "floor.duckdb"
    con = duckdb.connect(str(floor_db))
    con.execute("update monthly_revenue set net_revenue = net_revenue + 0.01 where month = '2024-03-01'")
    con.close()
    wrong = harness.compare_with_marts(warehouse, "floor", str(floor_db))
    assert not wrong["match"]
    assert wrong["tables"]["monthly_revenue"]["mismatched_rows_by_column"] == {"net_revenue": 1}

    markdown = harness.render_markdown(result)
    row = next(line for line in markdown.splitlines() if line.startswith(f"| {size['label']} | {size['rows']['orders']:,} |"))
    assert row.count("|") == 14
    assert f"- {size['label']}, floor: match" in markdown and f"- {size['label']}, pandas: match" in markdown
    assert "Targets" not in markdown
    if importlib.util.find_spec("matplotlib"):
        assert (out / results_file.name.replace(".json", ".png")).stat().st_size > 0
