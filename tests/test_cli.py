"""The `nexcart` command and `make run` as a new user meets them: what they refuse, and how a
run's outcome reads (held-back months with their reasons, each warning once)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from orchestration.cli import held_back_lines, warning_lines
from orchestration.quality.checks import GateFailure
from tests.conftest import PROJECT_ROOT


def _make_run(tmp_path: Path, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NEXCART_DATA_DIR": str(data_dir), "NEXCART_WAREHOUSE": str(tmp_path / "wh" / "nexcart.duckdb"),
           "NEXCART_OUTPUT_DIR": str(tmp_path / "out"), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    return subprocess.run(["make", "--no-print-directory", "run"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.pipeline
def test_make_run_with_a_mistyped_data_dir_refuses_instead_of_building_a_sample(tmp_path):
    """A typo in NEXCART_DATA_DIR must never put generated orders into a warehouse: the folder is
    not created, nothing is generated or built, and the message says the folder does not exist."""
    typo = tmp_path / "exprots"
    completed = _make_run(tmp_path, typo)
    assert completed.returncode != 0
    assert f"The raw root {typo} does not exist (NEXCART_DATA_DIR)" in completed.stderr
    assert not typo.exists()
    assert not (tmp_path / "wh").exists()


@pytest.mark.pipeline
def test_make_run_on_an_empty_data_dir_refuses_and_generates_nothing_there(tmp_path):
    empty = tmp_path / "exports"
    empty.mkdir()
    completed = _make_run(tmp_path, empty)
    assert completed.returncode != 0
    assert f"No monthly files under {empty}" in completed.stderr
    assert list(empty.iterdir()) == []
    assert not (tmp_path / "wh" / "nexcart.duckdb").exists()


def _failure(level, asset, month, expectation, bad=None, total=None, observed=None):
    return GateFailure(level, asset, month, expectation,
                       {"unexpected_count": bad, "element_count": total, "observed": observed})


def test_warnings_are_named_once_with_their_rows_summed_over_the_months():
    failures = [_failure("WARN", "raw/orders", f"2024-{m:02d}", "order_ts is present (any missing)", 1, 160)
                for m in range(1, 13)]
    failures.append(_failure("WARN", "clean/orders", "2024-03", "orphan share", observed=0.02))
    failures += [GateFailure("WARN", "clean/transactions", month, "quarantined row share (warn)",
                             {"observed": share, "expected": "<= 0.005"})
                 for month, share in (("2024-02", 0.0061), ("2024-05", 0.0164038))]
    assert warning_lines(failures) == [
        "raw/orders gx_gate: order_ts is present (any missing) (12 of 1,920 rows, in 12 months (2024-01..2024-12))",
        "clean/orders gx_gate: orphan share (observed 0.02, in 1 month (2024-03))",
        "clean/transactions gx_gate: quarantined row share (warn) (observed up to 0.0164, expected <= 0.005, "
        "in 2 months (2024-02..2024-05))",
    ]


def test_held_back_months_list_the_file_message_once_and_each_other_failed_error():
    ingest = {("order_items", "2024-03"): "order_items/2024-03.csv is missing: order_items is a required monthly table"}
    failures = [
        _failure("ERROR", "raw/order_items", "2024-03", "the month's file loaded", observed=1),  # echoes the file
        _failure("ERROR", "clean/transactions", "2024-05", "negative amount share", observed=0.3),
        _failure("WARN", "raw/orders", "2024-05", "order_ts is present (any missing)", 1, 10),
    ]
    assert held_back_lines(failures, ingest) == {
        "2024-03": ["order_items/2024-03.csv is missing: order_items is a required monthly table"],
        "2024-05": ["clean/transactions gx_gate: negative amount share (observed 0.3)"],
    }


@pytest.mark.parametrize("keep", [2, 0])
def test_the_run_history_keeps_the_newest_runs(tmp_path, keep):
    from dagster import DagsterInstance, asset, materialize

    from orchestration.run_log import prune_run_history

    @asset
    def tiny():
        return 1

    with DagsterInstance.from_config(str(tmp_path)) as instance:
        run_ids = [materialize([tiny], instance=instance).run_id for _ in range(4)]
        logs = [tmp_path / "storage" / run_id for run_id in run_ids]
        for folder in logs:  # as a run's captured output (compute logs) leaves it
            folder.mkdir(parents=True, exist_ok=True)
        deleted = prune_run_history(instance, keep, dbt_target=tmp_path / "target")
        kept = instance.get_run_ids(limit=None)
        if keep:
            assert deleted == 2 and kept == run_ids[:-3:-1]  # the two newest, newest first
            assert instance.get_records_for_run(run_ids[0]).records == []  # their events are gone too
            assert [folder.exists() for folder in logs] == [False, False, True, True]
        else:
            assert deleted == 0 and len(kept) == 4


def test_the_dbt_folders_of_the_newest_runs_are_kept(tmp_path):
    """dagster-dbt writes a folder per dbt invocation (~7 MB) and never deletes one: only the
    folders of the newest `keep` runs stay, whatever else is in dbt's target folder."""
    import os

    from orchestration.run_log import prune_dbt_invocations

    target = tmp_path / "target"
    for age, run in enumerate(["aaaaaaa", "bbbbbbb", "ccccccc"]):  # aaaaaaa the newest
        for step in ("dbt_reference", "dbt_monthly_clean"):
            folder = target / f"{step}-{run}-{age}{age}{age}{age}abc"
            (folder / "compiled").mkdir(parents=True)
            (folder / "run_results.json").write_text("{}")
            os.utime(folder, (1_700_000_000 - age * 3600,) * 2)
    for kept in ("manifest.json", "partial_parse.msgpack", "compiled", "run"):
        (target / kept).mkdir(parents=True) if "." not in kept else (target / kept).write_text("x")

    assert prune_dbt_invocations(2, target) == 2
    left = sorted(p.name for p in target.iterdir())
    assert left == ["compiled", "dbt_monthly_clean-aaaaaaa-0000abc", "dbt_monthly_clean-bbbbbbb-1111abc",
                    "dbt_reference-aaaaaaa-0000abc", "dbt_reference-bbbbbbb-1111abc",
                    "manifest.json", "partial_parse.msgpack", "run"]
    assert prune_dbt_invocations(0, target) == 0 and len(list(target.iterdir())) == 8


@pytest.mark.pipeline
def test_a_broken_or_missing_monthly_file_holds_back_its_month_only(pipeline):
    """A wrong header in February's orders and no order lines for a March that has orders: each
    month is held back and named with its file's own message, January is published, the run
    exits 1, and the terminal shows one line per failure, no stack trace."""
    from datetime import date

    from tests.test_marts import write_dataset

    write_dataset(pipeline.raw)
    orders = pipeline.raw / "orders/2024-02.csv"
    orders.write_text(orders.read_text().replace("order_ts", "order_time", 1))
    (pipeline.raw / "orders/2024-03.csv").write_text("order_id,order_ts\nO9,2024-03-02 10:00\n")

    completed = pipeline.nexcart("run", check=False)
    assert completed.returncode == 1
    assert "2024-02: orders/2024-02.csv, line 1: missing required column 'order_ts'" in completed.stderr
    assert "2024-03: order_items/2024-03.csv is missing: order_items is a required monthly table" in completed.stderr
    assert "1 month(s) published, 2 HELD BACK (2024-02, 2024-03)" in completed.stdout
    terminal = completed.stdout + completed.stderr
    assert "Traceback" not in terminal and "dagster - ERROR" not in terminal and 'File "' not in terminal
    assert pipeline.query("select month from marts.monthly_revenue order by month") == [(date(2024, 1, 1),)]
    assert pipeline.query("select count(*) from raw.orders where _month <> '2024-01'") == [(0,)]


def test_failed_checks_other_than_the_gates_are_listed_once(tmp_path):
    """A freshness check failing on several marts reads as one line, not one per asset."""
    from dagster import AssetCheckResult, AssetCheckSeverity, DagsterInstance, asset, asset_check, materialize

    from orchestration.cli import other_check_lines

    checks = []
    for name in ("monthly_revenue", "daily_revenue"):
        @asset(name=name)
        def mart():
            return 1

        @asset_check(asset=mart, name="freshness_check")
        def stale():
            return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN)

        checks.append((mart, stale))
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        result = materialize([c for pair in checks for c in pair], instance=instance, raise_on_error=False)
    assert other_check_lines(result) == ["freshness_check failed on 2 asset(s): daily_revenue, monthly_revenue"]
