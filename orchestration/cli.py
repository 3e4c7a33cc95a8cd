"""The `nexcart` command: generate sample data, and materialize the asset graph headless.

`nexcart run` runs the same Dagster assets the UI runs, in-process, as one run over the month
range (each monthly asset handles the range in one step, dbt in one invocation). Runs are
recorded in DAGSTER_HOME, so they show in the UI too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path

from orchestration.contract import MONTH_RE
from orchestration.quarantine import add_quarantine_commands
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
    """The Dagster instance of DAGSTER_HOME (default dagster_home/, the one `make ui` shows).

    A new (missing or empty) DAGSTER_HOME gets the project's instance settings, dagster_home/
    dagster.yaml (the warehouse pool, bounded history, the pooled event log); a home that has
    anything in it is used as it is. A lock around the first opening: two first-ever runs started
    together would both create the instance's SQLite schema and leave it unreadable.
    """
    import fcntl

    from dagster import DagsterInstance

    os.environ.setdefault("DAGSTER_HOME", str(DEFAULT_DAGSTER_HOME))
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if home.resolve() != DEFAULT_DAGSTER_HOME.resolve() and {p.name for p in home.iterdir()} <= {".init.lock"}:
            shutil.copyfile(DEFAULT_DAGSTER_HOME / "dagster.yaml", home / "dagster.yaml")
        return DagsterInstance.get()


class _Progress(threading.Thread):
    """Prints a line per step and per failed check of the run, read from the Dagster instance
    while the run executes in the main thread (dbt's own output goes to the run's log file)."""

    KINDS = ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "ASSET_CHECK_EVALUATION")

    def __init__(self, instance, token: str, out):
        super().__init__(daemon=True)
        self.instance, self.token, self.out = instance, token, out
        self.done = threading.Event()
        self.started: dict[str, float] = {}
        self.failed_checks: list[str] = []

    def run(self) -> None:
        from dagster import DagsterEventType, RunsFilter

        run_id, cursor = None, None
        kinds = {DagsterEventType(k) for k in self.KINDS}
        while True:
            finished = self.done.is_set()
            if run_id is None:
                runs = self.instance.get_runs(RunsFilter(tags={"nexcart/cli-run": self.token}), limit=1)
                run_id = runs[0].run_id if runs else None
            if run_id is not None:
                records = self.instance.get_records_for_run(run_id, cursor=cursor, limit=1000)
                cursor = records.cursor if records.records else cursor
                for record in records.records:
                    event = record.event_log_entry.dagster_event
                    if event is not None and event.event_type in kinds:
                        self._print(event)
                if records.has_more:
                    continue
            if finished:
                return
            self.done.wait(0.5)

    def _print(self, event) -> None:
        step = event.step_key or ""
        if event.event_type_value == "STEP_START":
            self.started[step] = time.perf_counter()
            print(f"  - {step} ...", file=self.out, flush=True)
        elif event.event_type_value == "STEP_SUCCESS":
            took = time.perf_counter() - self.started.get(step, time.perf_counter())
            print(f"    {step} done in {took:.1f}s", file=self.out, flush=True)
        elif event.event_type_value == "STEP_FAILURE":
            print(f"    {step} FAILED", file=self.out, flush=True)
        elif not event.event_specific_data.passed:
            evaluation = event.event_specific_data
            name = f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}"
            self.failed_checks.append(name)
            if evaluation.severity.value == "ERROR":  # warnings are summed up at the end, once each
                month = f" {evaluation.partition}" if evaluation.partition else ""
                print(f"    check failed: {name}{month} (error: the month is held back)", file=self.out, flush=True)


def _failure_reason(result) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            # unwrap to our own message (a file problem, a locked warehouse), not DuckDB's
            while (error.cause and error.cause.message
                   and not any(name in error.cls_name for name in ("IngestError", "WarehouseLockedError"))):
                error = error.cause
            reason = f"{event.step_key}: {error.message.strip()}"
            # dbt, or macro assert_table_enforces_its_contract: an incremental table's columns or
            # constraints are not those of its model any more (an upgrade)
            if "out of sync" in reason:
                reason += ("\nA table's columns or constraints changed since it was built (a new version of the "
                           "project?): run `nexcart run --full-refresh` once to rebuild the tables.")
            return reason
    return "the run failed (see the Dagster UI for details)"


def _only_gates_blocked(result) -> bool:
    """Did the run fail only because a gate blocked its step (every month it validated failed)?
    Then every month of the run is held back: an outcome of the data, reported as held months."""
    failures = [e for e in result.all_events if e.is_step_failure]
    return bool(failures) and all(
        e.step_failure_data and e.step_failure_data.error
        and "DagsterAssetCheckFailedError" in e.step_failure_data.error.cls_name for e in failures)


def _span(months: list[str]) -> str:
    months = sorted(m for m in months if m)
    if not months:
        return "the reference snapshot"
    return f"{len(months)} month{'s' if len(months) > 1 else ''} ({months[0]}{'..' + months[-1] if len(months) > 1 else ''})"


def held_back_lines(failures, ingest_failures: dict[tuple[str, str], str]) -> dict[str, list[str]]:
    """Why each held-back month was held: the file that could not be loaded (its own message),
    then each failed error-level expectation once."""
    held: dict[str, list[str]] = {}
    for (table, month), message in sorted(ingest_failures.items(), key=lambda item: (item[0][1], item[0][0])):
        held.setdefault(month, []).append(message)
    for f in failures:
        if f.level != "ERROR":
            continue
        if f.asset.startswith("raw/") and (f.asset.split("/", 1)[1], f.month) in ingest_failures:
            continue  # the gate only echoes the file's own message, shown above
        held.setdefault(f.month, []).append(f"{f.asset} gx_gate: {f.expectation} ({f.detail})")
    return held


def warning_lines(failures) -> list[str]:
    """Each failed warn-level expectation once, with its rows summed over the months it failed in:
    'raw/orders gx_gate: order_ts present (20 of 3,840 rows, in 24 months (2024-01..2025-12))'."""
    grouped: dict[tuple[str, str], list] = {}
    for f in failures:
        if f.level == "WARN":
            grouped.setdefault((f.asset, f.expectation), []).append(f)
    lines = []
    for (asset, expectation), group in grouped.items():
        counts = [(f.observed.get("unexpected_count"), f.observed.get("element_count")) for f in group]
        observed = [f.observed.get("observed") for f in group]
        if all(bad is not None and total is not None for bad, total in counts):
            detail = f"{sum(b for b, _ in counts):,} of {sum(t for _, t in counts):,} rows"
        elif len(group) > 1 and all(isinstance(o, (int, float)) for o in observed):
            expected = group[0].observed.get("expected")
            detail = f"observed up to {max(observed):.3g}" + (f", expected {expected}" if expected else "")
        else:
            detail = group[0].detail
        lines.append(f"{asset} gx_gate: {expectation} ({detail}, in {_span([f.month for f in group])})")
    return lines


def other_check_lines(result) -> list[str]:
    """Failed checks that are not quality gates (the marts' freshness), once per check name with
    the assets it failed on."""
    from orchestration.quality.holds import GATE_CHECK_NAME

    failed: dict[str, list[str]] = {}
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.check_name != GATE_CHECK_NAME:
            failed.setdefault(evaluation.check_name, []).append(evaluation.asset_key.to_user_string())
    return [f"{name} failed on {len(assets)} asset(s): {', '.join(sorted(assets)[:4])}"
            + (", ..." if len(assets) > 4 else "") for name, assets in failed.items()]


def _ingest_failures(result) -> dict[tuple[str, str], str]:
    """(table, month) -> the message of a monthly file the raw step could not load."""
    failed: dict[tuple[str, str], str] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        key = materialization.asset_key.path
        meta = materialization.metadata.get("failed_ingest")
        if key[0] == "raw" and meta is not None:
            failed.update({(key[1], month): message for month, message in meta.value.items()})
    return failed


def cmd_run(args: argparse.Namespace) -> int:
    import warnings

    from dagster import BetaWarning, PreviewWarning, SupersessionWarning, materialize

    for category in (BetaWarning, PreviewWarning, SupersessionWarning):  # API notes, not news for users
        warnings.filterwarnings("ignore", category=category)

    from orchestration.ingest import discover_months
    from orchestration.warehouse_health import WarehouseCorruptError, check_warehouse

    settings = load_settings()
    if args.full_refresh and args.month:
        print("--full-refresh rebuilds every month from scratch: run it without --month.", file=sys.stderr)
        return 2
    if not settings.data_dir.is_dir():
        print(f"The raw root {settings.data_dir} does not exist"
              + (" (NEXCART_DATA_DIR)" if os.environ.get("NEXCART_DATA_DIR", "").strip() else "")
              + ": check the path, or put the retailer's exports there (see docs/raw-data-contract.md).",
              file=sys.stderr)
        return 2
    months = [args.month] if args.month else discover_months(settings.data_dir)
    if not months:
        print(f"No monthly files under {settings.data_dir}: run `nexcart generate` or put the "
              "retailer's exports there (see docs/raw-data-contract.md).", file=sys.stderr)
        return 2

    try:
        check_warehouse(settings.warehouse)
    except WarehouseCorruptError as exc:
        print(str(exc), file=sys.stderr)
        return 1

    # Loading the definitions takes seconds: only once the run is known to go ahead.
    from orchestration.assets.dbt import FULL_REFRESH_TAG
    from orchestration.definitions import defs
    from orchestration.quality import build_quality_docs, gate_failures
    from orchestration.quality.holds import failed_gate_months
    from orchestration.run_log import prune_run_history, write_run_log

    instance = _dagster_instance()
    span = months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"
    token = uuid.uuid4().hex
    tags = {
        # one run over the month range: every monthly asset handles the whole range in one step
        "dagster/asset_partition_range_start": months[0],
        "dagster/asset_partition_range_end": months[-1],
        "nexcart/cli-run": token,
        **({FULL_REFRESH_TAG: "true"} if args.full_refresh else {}),
    }
    log_path = settings.logs_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"NexCart run {span}: raw root {settings.data_dir}, warehouse {settings.warehouse}")
    print(f"  (full log: {log_path})", flush=True)
    progress = _Progress(instance, token, sys.stdout)
    progress.start()
    started = time.perf_counter()
    # Dagster's and dbt's own output, tracebacks included, go to the run's log file; the terminal
    # gets the progress lines and, at the end, one line per failure.
    with open(log_path, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        # the quality gates are asset checks: materialize() runs only the checks it is given
        result = materialize(
            [*defs.assets, *defs.asset_checks], resources=dict(defs.resources), instance=instance, tags=tags,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
    progress.done.set()
    progress.join()
    failures = gate_failures(result)
    held_reasons = held_back_lines(failures, _ingest_failures(result))
    warned = warning_lines(failures) + other_check_lines(result)
    docs = build_quality_docs(settings.warehouse)  # once per run, failed runs included
    elapsed = time.perf_counter() - started
    prune_run_history(instance, settings.keep_runs)
    if not result.success and not _only_gates_blocked(result):
        reason = _failure_reason(result)
        _print_held(held_reasons)
        print(f"\nRun FAILED after {elapsed:.1f}s: {reason}", file=sys.stderr)
        print(f"The published warehouse is unchanged. Run id {result.run_id} (see it in the UI: make ui); "
              f"log {log_path}; quality docs {docs}", file=sys.stderr)
        write_run_log(f"FAILED nexcart run {span} (run {result.run_id}): {reason}")
        return 1
    run_months = _months_between(months[0], months[-1])
    if result.success:
        held = sorted(set(failed_gate_months(instance, result.run_id)) | set(held_reasons))
    else:  # a gate blocked a step: the run published nothing, so every month of it is held back
        held = run_months
    published = [m for m in run_months if m not in held]
    _print_held(held_reasons)
    if warned:
        print(f"\nWarnings ({len(warned)}; recorded in the quality docs, the months were published):")
        for line in warned:
            print(f"  {line}")
    print(f"\n{'Finished' if held else 'Done'} in {elapsed:.1f}s: {len(published)} month(s) published"
          + (f", {len(held)} HELD BACK ({', '.join(held)})" if held else "")
          + (f", {len(warned)} warning(s)" if warned else ", no warnings") + ".")
    _print_summary(settings.warehouse)
    if held:
        print(f"\nMonths HELD BACK keep their last published state; the other months were published. Fix the "
              f"data (see above and the quality docs {docs}) and run again.", file=sys.stderr)
        write_run_log(f"HELD BACK {', '.join(held)} in nexcart run {span} (run {result.run_id}): "
                      + " | ".join(f"{m}: {'; '.join(held_reasons.get(m, ['error gate failed']))}" for m in held))
        return 1
    write_run_log(f"SUCCEEDED nexcart run {span} (run {result.run_id}) in {elapsed:.0f}s")
    return 0


def _print_held(held_reasons: dict[str, list[str]]) -> None:
    if not held_reasons:
        return
    print(f"\nHeld back ({len(held_reasons)} month(s), error gates):", file=sys.stderr)
    for month, reasons in sorted(held_reasons.items()):
        for reason in reasons:
            print(f"  {month or 'reference'}: {reason}", file=sys.stderr)


def _months_between(first: str, last: str) -> list[str]:
    from dagster import PartitionKeyRange

    from orchestration.partitions import monthly_partitions

    return monthly_partitions.get_partition_keys_in_range(PartitionKeyRange(first, last))


def _print_summary(warehouse: Path) -> None:
    from orchestration.resources import connect_with_retry

    if not warehouse.exists():
        print(f"Warehouse:    {warehouse} (not built yet: nothing has been published)")
        return
    con = connect_with_retry(warehouse, read_only=True)
    try:
        counts = con.execute(
            """
            select schema_name || '.' || table_name, estimated_size
            from duckdb_tables() where schema_name in ('clean', 'quality', 'marts')
            order by schema_name, table_name
            """
        ).fetchall()
    finally:
        con.close()
    settings = load_settings()
    print(f"Warehouse:    {warehouse}")
    print(f"  query it:   .venv/bin/duckdb -readonly {warehouse} -c 'select * from marts.monthly_revenue'")
    print("  tables:     " + ", ".join(f"{name} ({rows} rows)" for name, rows in counts))
    for label, path in (("Reports:", settings.reports_dir / "index.html"),
                        ("Quality docs:", settings.docs_dir / "quality" / "index.html")):
        if path.exists():
            print(f"{label:<13} {path}")
    print(f"Run history:  {settings.logs_dir / 'runs.log'} (and the Dagster UI: make ui)")


def cmd_docs(args: argparse.Namespace) -> int:
    from orchestration.quality import serve_docs

    serve_docs(args.port)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.harness import run as run_bench

    run_bench(args)
    return 0


def _add_bench_command(sub) -> None:
    """`nexcart bench` (benchmarks/harness.py): a development tool, there in a checkout only."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.append(str(PROJECT_ROOT))
    try:
        from benchmarks.harness import add_arguments
    except ImportError:
        return
    bench = sub.add_parser(
        "bench", help="measure `nexcart run` against the floor (one DuckDB script) and plain pandas",
        description="Generate samples and time, side by side: a full `nexcart run` (per step, per dbt node, "
        "peak RSS), one new month delivered and run as the sensor would, the floor (one DuckDB SQL script over "
        "the same CSVs) and plain pandas, each checked to give the marts' numbers. The default (50k orders, "
        "3 repetitions) finishes in about 10 minutes on 2 idle cores, under 15. Writes "
        "benchmarks/results/<date>.json and a chart; see benchmarks/README.md.")
    add_arguments(bench)
    bench.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nexcart", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a realistic sample data set (with injected defects)",
                         description="Write every table of the raw data contract, deterministic for a seed.")
    gen.add_argument("--orders", type=int, default=50_000, help="number of orders (default 50000)")
    gen.add_argument("--months", type=int, default=24, help="number of months (default 24)")
    gen.add_argument("--start-month", type=_month, default=None,
                     help="first month, YYYY-MM (default: the --months months ending with the last complete "
                     "month before today, in the store's time zone NEXCART_TIMEZONE)")
    gen.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    gen.add_argument("--defect-rate", type=float, default=0.03,
                     help="share of rows with an injected data-quality defect (default 0.03; 0 = clean)")
    gen.add_argument("--out", help="raw root to write (default NEXCART_DATA_DIR, i.e. data/raw)")
    gen.set_defaults(func=cmd_generate)

    run = sub.add_parser("run", help="materialize the whole asset graph, headless",
                         description="Materialize every asset for every month found in the raw root "
                         "(or one month and what it needs), in-process, and exit non-zero on failure.")
    run.add_argument("--month", type=_month, help="only this month, YYYY-MM (and the reference tables)")
    run.add_argument("--full-refresh", action="store_true",
                     help="rebuild every dbt table from scratch (after an upgrade changed a table's columns)")
    run.set_defaults(func=cmd_run)

    docs = sub.add_parser("docs", help="serve the data-quality docs on http://127.0.0.1:PORT",
                          description="Serve data/docs/quality (built by every run) on 127.0.0.1.")
    docs.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    docs.set_defaults(func=cmd_docs)

    add_quarantine_commands(sub)
    _add_bench_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
