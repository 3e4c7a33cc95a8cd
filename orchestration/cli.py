"""The `nexcart` command: generate sample data, and materialize the asset graph headless.

`nexcart run` runs the same Dagster assets the UI runs, in-process, in the order the graph
needs: raw reference tables, dbt reference models, the monthly range (raw + dbt), then the
models over the whole history. Runs are recorded in DAGSTER_HOME, so they show in the UI too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from orchestration.contract import MONTH_RE
from orchestration.settings import PROJECT_ROOT, load_settings

DEFAULT_DAGSTER_HOME = PROJECT_ROOT / "dagster_home"


def _month(text: str) -> str:
    if not MONTH_RE.match(text):
        raise argparse.ArgumentTypeError(f"'{text}' is not a month: use YYYY-MM, e.g. 2024-03")
    return text


def cmd_generate(args: argparse.Namespace) -> int:
    from orchestration.sample_data import generate

    out = Path(args.out) if args.out else load_settings().data_dir
    started = time.perf_counter()
    summary = generate(
        out, orders=args.orders, months=args.months, start_month=args.start_month,
        seed=args.seed, defect_rate=args.defect_rate,
    )
    print(f"Sample data written to {out} in {time.perf_counter() - started:.1f}s: "
          f"{summary['first_month']}..{summary['last_month']}, seed {summary['seed']}")
    for table, rows in summary["rows"].items():
        print(f"  {table}: {rows} rows")
    injected = sum(summary["defects"].values())
    print(f"  injected defects: {injected} (ground truth in {out / summary['ground_truth']})")
    return 0


def _dagster_instance():
    from dagster import DagsterInstance

    os.environ.setdefault("DAGSTER_HOME", str(DEFAULT_DAGSTER_HOME))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return DagsterInstance.get()


def _stages(months: list[str]):
    """(label, selection, tags) in graph order; the monthly stage spans the month range."""
    from dagster import AssetSelection

    from orchestration.assets.dbt import dbt_monthly, dbt_reference, dbt_summary
    from orchestration.assets.raw import raw_assets
    from orchestration.assets.reports import report_assets

    raw_reference = [a for a in raw_assets if a.partitions_def is None]
    raw_monthly = [a for a in raw_assets if a.partitions_def is not None]
    range_tags = {
        "dagster/asset_partition_range_start": months[0],
        "dagster/asset_partition_range_end": months[-1],
    }
    span = months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"
    return [
        ("raw reference snapshots", AssetSelection.assets(*raw_reference), {}),
        ("dbt reference models", AssetSelection.assets(dbt_reference), {}),
        (f"raw monthly drops {span}", AssetSelection.assets(*raw_monthly), range_tags),
        (f"dbt monthly models {span}", AssetSelection.assets(dbt_monthly), range_tags),
        ("dbt whole-history models", AssetSelection.assets(dbt_summary), {}),
        (f"monthly reports {span}", AssetSelection.assets(*report_assets), range_tags),
    ]


def _failure_reason(result) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause and "IngestError" not in error.cls_name and error.cause.message:
                error = error.cause
            return f"{event.step_key}: {error.message.strip()}"
    return "the run failed (see the Dagster UI for details)"


def cmd_run(args: argparse.Namespace) -> int:
    from dagster import materialize

    from orchestration.definitions import defs
    from orchestration.ingest import discover_months

    settings = load_settings()
    months = [args.month] if args.month else discover_months(settings.data_dir)
    if not months:
        print(f"No monthly files under {settings.data_dir}: run `nexcart generate` or put the "
              "retailer's exports there (see docs/raw-data-contract.md).", file=sys.stderr)
        return 2

    instance = _dagster_instance()
    assets = list(defs.assets)
    resources = dict(defs.resources)
    print(f"NexCart run: {len(months)} month(s), raw root {settings.data_dir}, warehouse {settings.warehouse}")
    stages = _stages(months)
    started = time.perf_counter()
    for number, (label, selection, tags) in enumerate(stages, start=1):
        stage_started = time.perf_counter()
        print(f"[{number}/{len(stages)}] {label} ...", flush=True)
        result = materialize(assets, selection=selection, resources=resources, instance=instance,
                             tags=tags, raise_on_error=False)
        materialized = result.get_asset_materialization_events()
        checks = result.get_asset_check_evaluations()
        failed_checks = [c for c in checks if not c.passed]
        print(f"      {len(materialized)} materialization(s), {len(checks)} check(s) "
              f"({len(failed_checks)} failed) in {time.perf_counter() - stage_started:.1f}s", flush=True)
        for check in failed_checks:
            print(f"      check failed: {check.asset_key.to_user_string()} {check.check_name}")
        if not result.success:
            print(f"\nRun FAILED at stage {number} ({label}): {_failure_reason(result)}", file=sys.stderr)
            print(f"Run id {result.run_id}; see it in the UI (`make ui`).", file=sys.stderr)
            return 1
    print(f"\nDone in {time.perf_counter() - started:.1f}s.")
    _print_summary(settings.warehouse)
    return 0


def _print_summary(warehouse: Path) -> None:
    from orchestration.resources import connect_with_retry

    con = connect_with_retry(warehouse, read_only=True)
    try:
        counts = con.execute(
            """
            select schema_name || '.' || table_name, estimated_size
            from duckdb_tables() where schema_name in ('raw', 'clean', 'quality', 'marts')
              and not starts_with(table_name, '_')
            order by schema_name, table_name
            """
        ).fetchall()
    finally:
        con.close()
    print(f"Warehouse: {warehouse}")
    print("  query it: duckdb -readonly " + str(warehouse) + " -c 'select * from marts.monthly_revenue'")
    print("  tables (approximate rows): " + ", ".join(f"{name} {rows}" for name, rows in counts))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nexcart", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a realistic sample data set (with injected defects)",
                         description="Write every table of the raw data contract, deterministic for a seed.")
    gen.add_argument("--orders", type=int, default=50_000, help="number of orders (default 50000)")
    gen.add_argument("--months", type=int, default=24, help="number of months (default 24)")
    gen.add_argument("--start-month", type=_month, default="2024-01", help="first month, YYYY-MM (default 2024-01)")
    gen.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    gen.add_argument("--defect-rate", type=float, default=0.03,
                     help="share of rows with an injected data-quality defect (default 0.03; 0 = clean)")
    gen.add_argument("--out", help="raw root to write (default NEXCART_DATA_DIR, i.e. data/raw)")
    gen.set_defaults(func=cmd_generate)

    run = sub.add_parser("run", help="materialize the whole asset graph, headless",
                         description="Materialize every asset for every month found in the raw root "
                         "(or one month and what it needs), in-process, and exit non-zero on failure.")
    run.add_argument("--month", type=_month, help="only this month, YYYY-MM (and the reference tables)")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
