"""`nexcart bench` / `make bench`: the pipeline measured side by side with the floor.

For each size (orders over --months months of generated data, seed 42), `--repeat` times, the
approaches taking turns (the order rotates every repetition, so a change of load on the machine
hits them alike); medians reported:

- pipeline: `nexcart run` from an empty warehouse, in a subprocess with its own raw root,
  warehouse, NEXCART_OUTPUT_DIR and DAGSTER_HOME (benchmarks/common.py). Per-step wall time from the
  run's own Dagster events (STEP_START to STEP_SUCCESS), dbt's per-node timing from the
  run_results.json of each dbt invocation (dagster-dbt writes them to dbt_project/target/
  <step>-<run id[:7]>-<uuid>/; read, then removed), the peak RSS of the whole process tree (polled
  every 0.2 s, summed), and the time before the run's first event (start-up: imports, definitions)
  and after its end (the data-quality docs build, the summary).
- new month: the first months-1 months built (a run, not timed as a measurement), then the last
  month's files delivered (copied in) and run the way raw_files_sensor launches it
  (orchestration/sensors.py run_requests_for: one run from the changed month to the last month,
  i.e. `nexcart run --month <last>`); each repetition starts again from the months-1 warehouse.
- floor: benchmarks/floor.sql, one DuckDB CLI process reading the same CSVs and computing
  monthly_revenue, monthly_top_products and customer_rfm with the contract's rules.
- pandas: benchmarks/pandas_approach.py, the same in plain pandas (the usual portfolio pipeline).

The floor's and pandas' tables are compared with the pipeline's marts, every column to the cent
(money), to 1e-9 (ratios) or exactly. Results: benchmarks/results/<date>.json (a second bench on
the same day replaces the sizes it measured), a log-log chart <date>.png (matplotlib, when
installed: the `bench` extra), and Markdown tables (--readme writes them into benchmarks/README.md
between the bench markers). The issue's targets, as ratios to the floor of the same bench, are
judged in the report only: thresholds never go into tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    PROJECT_ROOT, dagster_home, generate_sample, nexcart_run_measured, run_measured, run_timeline,
)
from orchestration.settings import DBT_TARGET_DIR as DBT_TARGET  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
README = BENCH_DIR / "README.md"
FLOOR_SQL = BENCH_DIR / "floor.sql"
PANDAS_SCRIPT = BENCH_DIR / "pandas_approach.py"
MONTHLY_TABLES = ("orders", "order_items", "transactions", "inventory_snapshots")
APPROACHES = ("pipeline", "new_month", "floor", "pandas")
DEFAULT_SIZES = "50k"
DEFAULT_REPEAT = "3"
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"

# The targets (#13), each against the floor measured in the same bench. Report only.
TARGET_GATE_SHARE = 0.15
TARGET_RSS_BYTES = 2 * 1024**3


# ----------------------------------------------------------------------------------------------
# Sizes and arguments
# ----------------------------------------------------------------------------------------------

def parse_size(text: str) -> int:
    """'50k' -> 50000, '1m' -> 1000000, '2000' -> 2000."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmM]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size: use e.g. 2000, 50k, 1m")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * {"": 1, "k": 1_000, "m": 1_000_000}[unit])


def size_label(orders: int) -> str:
    if orders >= 1_000_000 and orders % 1_000_000 == 0:
        return f"{orders // 1_000_000}M"
    if orders >= 1_000 and orders % 1_000 == 0:
        return f"{orders // 1_000}k"
    return f"{orders:,}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help="comma-separated numbers of orders, e.g. 50k,1m,5m (default 50k: the default "
                        "bench, 3 repetitions, takes about 10 minutes on 2 idle cores; a 1M repetition takes "
                        "about 6 minutes more, a 5M one over 20)")
    parser.add_argument("--months", type=int, default=24, help="months of generated data (default 24)")
    parser.add_argument("--repeat", default=DEFAULT_REPEAT,
                        help="repetitions per size, one number or one per size, e.g. 3 or 3,1 (default 3)")
    parser.add_argument("--out", default=str(RESULTS_DIR),
                        help="where <date>.json and <date>.png go (default benchmarks/results)")
    parser.add_argument("--readme", action="store_true",
                        help="write the tables into benchmarks/README.md between the bench markers")
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temp folder, removed)")


def _repeats(text: str, count: int) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if len(values) == 1:
        values *= count
    if len(values) != count or min(values) < 1:
        raise SystemExit(f"--repeat {text}: give one number, or one per size ({count})")
    return values


# ----------------------------------------------------------------------------------------------
# One measurement of each approach
# ----------------------------------------------------------------------------------------------

def _stage(step: str) -> str:
    if step.endswith("gx_gate"):
        return "gates"
    if step.startswith("dbt_"):
        return "dbt"
    if step.startswith("raw"):
        return "ingest"
    return "other_steps"


def _dbt_invocations(run_id: str) -> list[dict]:
    """Each dbt invocation of the run, from its run_results.json (the folder is removed after)."""
    invocations = []
    for folder in sorted(DBT_TARGET.glob(f"*-{run_id[:7]}-*")):
        results_file = folder / "run_results.json"
        if results_file.is_file():
            data = json.loads(results_file.read_text())
            nodes = data.get("results", [])
            by_type: dict[str, dict] = {}
            for node in nodes:
                kind = node["unique_id"].split(".", 1)[0]
                entry = by_type.setdefault(kind, {"count": 0, "seconds": 0.0})
                entry["count"] += 1
                entry["seconds"] += node.get("execution_time") or 0.0
            slowest = sorted(nodes, key=lambda n: -(n.get("execution_time") or 0.0))[:8]
            invocations.append({
                "step": folder.name.rsplit("-", 2)[0],
                "elapsed_s": round(data.get("elapsed_time") or 0.0, 2),
                "nodes": {k: {"count": v["count"], "seconds": round(v["seconds"], 2)} for k, v in by_type.items()},
                "slowest": {n["unique_id"].split(".", 2)[-1]: round(n.get("execution_time") or 0.0, 2) for n in slowest},
                "models_s": {n["unique_id"].split(".", 2)[-1]: round(n.get("execution_time") or 0.0, 2)
                             for n in nodes if n["unique_id"].startswith("model.")},
            })
        shutil.rmtree(folder, ignore_errors=True)
    return invocations


def _docs_finished_at(output_dir: Path) -> float | None:
    docs = output_dir / "docs"
    stamps = [p.stat().st_mtime for p in docs.rglob("*") if p.is_file()] if docs.is_dir() else []
    return max(stamps) if stamps else None


def measure_pipeline(root: Path, raw: Path, *run_args: str) -> dict:
    """One `nexcart run` (args) in root with raw root `raw`, and what its events say."""
    process = nexcart_run_measured(root, *run_args, raw=raw)
    timeline = run_timeline(root / "dagster_home")
    steps = timeline["steps"]
    run_s = timeline["run_end_at"] - timeline["run_start_at"]
    # start-up: imports and definitions, up to the run's first event; planning: the planned
    # materialization and check events written before RUN_START
    stages = {"startup": timeline["first_event_at"] - process["started_at"],
              "planning": timeline["run_start_at"] - timeline["first_event_at"]}
    for name in ("ingest", "dbt", "gates", "other_steps"):
        stages[name] = sum(seconds for step, seconds in steps.items() if _stage(step) == name)
    # in-process executor: steps run one after another; the rest of the run is Dagster's own work
    # (resource set-up and tear-down: the warehouse copy and publish, events between steps)
    stages["dagster_between_steps"] = run_s - sum(steps.values())
    stages["after_run"] = process["ended_at"] - timeline["run_end_at"]
    docs_done = _docs_finished_at(root)
    docs_s = max(0.0, docs_done - timeline["run_end_at"]) if docs_done else 0.0
    dbt = _dbt_invocations(timeline["run_id"])
    return {
        "run_id": timeline["run_id"], "wall_s": process["wall_s"], "peak_rss_mb": process["peak_rss_bytes"] / 2**20,
        "rss_samples": process["rss_samples"], "run_in_dagster_s": run_s, "docs_build_s": docs_s,
        "stages": stages, "steps": steps, "dbt": dbt, "event_counts": timeline["event_counts"],
        "events": sum(timeline["event_counts"].values()),
        # dbt's own elapsed time per invocation (its nodes run in threads: their times overlap)
        "dbt_elapsed_s": sum(inv["elapsed_s"] for inv in dbt),
        "dbt_nodes_s": sum(n["seconds"] for inv in dbt for n in inv["nodes"].values()),
        "gate_steps": sum(1 for s in steps if _stage(s) == "gates"),
    }


def _duckdb_cli() -> list[str]:
    spec = importlib.util.find_spec("duckdb_cli")
    if spec and spec.origin:
        binary = Path(spec.origin).parent / "duckdb"
        if binary.is_file():
            return [str(binary)]
    found = shutil.which("duckdb")
    if not found:
        raise SystemExit("the DuckDB CLI is needed for the floor (pip install duckdb-cli)")
    return [found]


def measure_floor(raw: Path, work: Path) -> dict:
    """floor.sql in one DuckDB CLI process on an empty database file work/floor.duckdb."""
    work.mkdir(parents=True, exist_ok=True)
    database = work / "floor.duckdb"
    database.unlink(missing_ok=True)
    script = work / "floor.sql"
    sql = FLOOR_SQL.read_text().replace("{raw}", str(raw).replace("'", "''"))
    script.write_text(".timer on\n" + sql)  # the CLI prints each statement's time
    process = run_measured([*_duckdb_cli(), "-bail", str(database)], stdin_path=script)
    if process["returncode"] != 0:
        raise SystemExit(f"the floor failed:\n{process['stdout'][-2000:]}\n{process['stderr'][-2000:]}")
    names = [m.group(1) if m else None for m in
             (re.search(r"create (?:or replace )?(?:temp )?table (\w+)", stmt) for stmt in _statements(sql))]
    times = [float(t) for t in re.findall(r"Run Time \(s\): real ([0-9.]+)", process["stdout"])]
    tables = {name: round(t, 2) for name, t in zip(names, times) if name} if len(names) == len(times) else {}
    return {"wall_s": process["wall_s"], "peak_rss_mb": process["peak_rss_bytes"] / 2**20,
            "rss_samples": process["rss_samples"], "tables_s": tables, "output": str(database)}


def _statements(sql: str) -> list[str]:
    """floor.sql's statements, in order (each ends with ';' at the end of a line)."""
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [stmt for stmt in re.split(r";[ \t]*(?:--[^\n]*)?\n", code + "\n") if stmt.strip()]


def measure_pandas(raw: Path, work: Path) -> dict:
    """pandas_approach.py in its own Python process, writing its tables under work/pandas."""
    out = work / "pandas"
    shutil.rmtree(out, ignore_errors=True)
    process = run_measured([sys.executable, str(PANDAS_SCRIPT), str(raw), str(out)])
    if process["returncode"] != 0:
        raise SystemExit(f"the pandas approach failed:\n{process['stdout'][-2000:]}\n{process['stderr'][-4000:]}")
    return {"wall_s": process["wall_s"], "peak_rss_mb": process["peak_rss_bytes"] / 2**20,
            "rss_samples": process["rss_samples"], "output": str(out)}


# ----------------------------------------------------------------------------------------------
# Same numbers? The floor's and pandas' tables against the marts
# ----------------------------------------------------------------------------------------------

COMPARED = {
    "monthly_revenue": (("month",), (
        "orders", "units", "gross_revenue", "discounts", "refunds", "net_revenue", "aov", "cogs", "gross_margin",
        "new_customers", "returning_customers", "mom_growth", "yoy_growth", "flagged_revenue",
        "flagged_revenue_share", "data_delivered")),
    "monthly_top_products": (("month", "product_id"), ("rank", "product_name", "category", "units", "gross_revenue")),
    "customer_rfm": (("month", "customer_id"), (
        "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "segment")),
}
MONEY = {"gross_revenue", "discounts", "refunds", "net_revenue", "aov", "cogs", "gross_margin", "flagged_revenue",
         "monetary"}
RATIOS = {"mom_growth", "yoy_growth", "flagged_revenue_share"}


def _same(column: str) -> str:
    a, b = f"m.{column}", f"o.{column}"
    if column in MONEY:  # to the cent
        return f"cast(round({a} * 100) as bigint) is not distinct from cast(round({b} * 100) as bigint)"
    if column in RATIOS:
        return (f"(({a} is null and {b} is null) or abs(cast({a} as double) - cast({b} as double))"
                f" <= 1e-9 * greatest(1, abs(cast({a} as double))))")
    return f"{a} is not distinct from {b}"


def compare_with_marts(warehouse: Path, approach: str, output: str) -> dict:
    """Rows missing or extra and, per column, rows whose value differs, for each compared table."""
    import duckdb
    import pandas as pd

    con = duckdb.connect()
    try:
        con.execute("set enable_progress_bar = false")
        con.execute(f"attach '{warehouse}' as marts_db (read_only)")
        if approach == "floor":
            con.execute(f"attach '{output}' as other (read_only)")
        tables = {}
        for table, (key, columns) in COMPARED.items():
            if approach == "floor":
                other = f"other.main.{table}"
            else:
                frame = pd.read_pickle(Path(output) / f"{table}.pkl")
                con.register(f"pandas_{table}", frame)
                other = f"pandas_{table}"
            key_cast = ", ".join(f"cast({k} as date) as {k}" if k == "month" else k for k in key)
            cols = ", ".join(columns)
            join = " and ".join(f"m.{k} = o.{k}" for k in key)
            checks = ", ".join(f"count(*) filter (where not ({_same(c)})) as {c}" for c in columns)
            row = con.execute(f"""
                with m as (select {key_cast}, {cols}, true as _m from marts_db.marts.{table}),
                     o as (select {key_cast}, {cols}, true as _o from {other})
                select count(m._m) as mart_rows, count(o._o) as other_rows,
                       count(*) filter (where o._o is null) as missing,
                       count(*) filter (where m._m is null) as extra,
                       {checks}
                from m full outer join o on {join}
            """).fetchone()
            mismatched = {c: int(v) for c, v in zip(columns, row[4:]) if v}
            tables[table] = {"mart_rows": row[0], "rows": row[1], "missing": row[2], "extra": row[3],
                             "columns": list(columns), "mismatched_rows_by_column": mismatched,
                             "match": row[2] == 0 and row[3] == 0 and not mismatched}
        return {"match": all(t["match"] for t in tables.values()), "tables": tables}
    finally:
        con.close()


# ----------------------------------------------------------------------------------------------
# A size: sample, the months-1 warehouse, repetitions
# ----------------------------------------------------------------------------------------------

def _month_files(raw: Path, month: str) -> list[Path]:
    return [raw / table / f"{month}.csv" for table in MONTHLY_TABLES if (raw / table / f"{month}.csv").is_file()]


def _copy_tree_without(source: Path, target: Path, leave_out: set[Path]) -> None:
    """Hard links (copies across file systems) of source's files, but those in leave_out."""
    for path in source.rglob("*"):
        if path.is_file() and path not in leave_out:
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, dest)
            except OSError:
                shutil.copy2(path, dest)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _summary(runs: list[dict]) -> dict:
    """Medians of the runs' numbers (and of their stages)."""
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    median = {k: _median([r[k] for r in runs]) for k in keys}
    if "stages" in runs[0]:
        median["stages"] = {s: _median([r["stages"][s] for r in runs]) for s in runs[0]["stages"]}
    return median


def bench_size(orders: int, months: int, repeat: int, work: Path, log) -> dict:
    label = size_label(orders)
    size_dir = work / label
    shutil.rmtree(size_dir, ignore_errors=True)
    size_dir.mkdir(parents=True)
    summary, generate_s = generate_sample(size_dir, orders, months)
    raw = size_dir / "raw"
    last = summary["last_month"]
    csv_bytes = sum(p.stat().st_size for p in raw.rglob("*.csv") if "_ground_truth" not in p.parts)
    log(f"[{label}] {summary['rows']['orders']:,} order rows, {csv_bytes / 1e6:,.0f} MB of CSV, "
        f"generated in {generate_s:.1f}s")

    # the months-1 warehouse the new month is delivered to (built once, restored before each repetition)
    month_root = size_dir / "new_month"
    raw_before = month_root / "raw"
    delivery = _month_files(raw, last)
    _copy_tree_without(raw, raw_before, set(delivery))
    dagster_home(month_root)
    log(f"[{label}] setting up the new month: nexcart run over the first {months - 1} months ...")
    setup = measure_pipeline(month_root, raw_before)
    log(f"[{label}]   {setup['wall_s']:.1f}s")
    for path in delivery:  # the delivery: the last month's files copied in
        shutil.copy2(path, raw_before / path.relative_to(raw))
    snapshot = size_dir / "new_month_warehouse"
    shutil.copytree(month_root / "warehouse", snapshot)

    runs: dict[str, list[dict]] = {a: [] for a in APPROACHES}
    check_warehouse = None
    outputs: dict[str, str] = {}
    for rep in range(repeat):
        order = APPROACHES[rep % len(APPROACHES):] + APPROACHES[:rep % len(APPROACHES)]
        for approach in order:
            log(f"[{label}] repetition {rep + 1}/{repeat}: {approach} ...")
            if approach == "pipeline":
                root = size_dir / f"pipeline-{rep + 1}"
                dagster_home(root)
                result = measure_pipeline(root, raw)
                if check_warehouse is None:
                    check_warehouse = root / "warehouse" / "nexcart.duckdb"
                else:
                    shutil.rmtree(root, ignore_errors=True)
            elif approach == "new_month":
                shutil.rmtree(month_root / "warehouse")
                shutil.copytree(snapshot, month_root / "warehouse")
                result = measure_pipeline(month_root, raw_before, "--month", last)
            elif approach == "floor":
                result = measure_floor(raw, size_dir / "floor")
                outputs["floor"] = result.pop("output")
            else:
                result = measure_pandas(raw, size_dir)
                outputs["pandas"] = result.pop("output")
            runs[approach].append(result)
            log(f"[{label}]   {result['wall_s']:.1f}s, peak RSS {result['peak_rss_mb']:,.0f} MB")

    checks = {a: compare_with_marts(check_warehouse, a, outputs[a]) for a in ("floor", "pandas")}
    for approach, check in checks.items():
        log(f"[{label}] {approach} matches the marts: {check['match']}")
    medians = {a: _summary(r) for a, r in runs.items()}
    pipeline, floor, pandas_ = medians["pipeline"], medians["floor"], medians["pandas"]
    gates_and_docs = pipeline["stages"]["gates"] + pipeline["docs_build_s"]
    return {
        "label": label, "orders": orders, "months": months, "repeat": repeat, "last_month": last,
        "rows": summary["rows"], "csv_mb": round(csv_bytes / 1e6, 1), "generate_s": round(generate_s, 1),
        "new_month_setup": {"months": months - 1, "wall_s": setup["wall_s"], "peak_rss_mb": setup["peak_rss_mb"]},
        "runs": runs, "median": medians, "checks": checks,
        "ratios": {
            "pipeline_over_floor": pipeline["wall_s"] / floor["wall_s"],
            "pandas_over_pipeline": pandas_["wall_s"] / pipeline["wall_s"],
            "pandas_over_floor": pandas_["wall_s"] / floor["wall_s"],
            "pipeline_rss_over_floor": pipeline["peak_rss_mb"] / max(floor["peak_rss_mb"], 1e-9),
        },
        # gate steps + the docs build, over the run in Dagster + the docs build (as gate_share.py)
        "gate_share": gates_and_docs / (pipeline["run_in_dagster_s"] + pipeline["docs_build_s"]),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


# ----------------------------------------------------------------------------------------------
# Targets, tables, chart
# ----------------------------------------------------------------------------------------------

def targets(size: dict) -> list[dict]:
    """The issue's targets that apply to this size, judged on its medians (report only)."""
    m = size["median"]
    floor, wall = m["floor"]["wall_s"], m["pipeline"]["wall_s"]
    found = []

    def add(name: str, limit: str, measured: str, met: bool) -> None:
        found.append({"size": size["label"], "target": name, "limit": limit, "measured": measured, "met": met})

    if size["orders"] == 50_000:
        add("`nexcart run` <= floor + 20 s", f"{floor + 20:.1f} s", f"{wall:.1f} s", wall <= floor + 20)
    if size["orders"] == 1_000_000:
        add("full run <= 3 x floor + 20 s", f"{3 * floor + 20:.1f} s", f"{wall:.1f} s", wall <= 3 * floor + 20)
        new = m["new_month"]["wall_s"]
        add("one new month <= 15 s", "15 s", f"{new:.1f} s", new <= 15)
        share = size["gate_share"]
        add("quality gates (docs build included) <= 15 % of a run", "15 %", f"{100 * share:.1f} %",
            share <= TARGET_GATE_SHARE)
    if size["orders"] == 5_000_000:
        add("full run <= 2 x floor + 20 s", f"{2 * floor + 20:.1f} s", f"{wall:.1f} s", wall <= 2 * floor + 20)
        rss = m["pipeline"]["peak_rss_mb"]
        add("peak RSS <= 2 GB", "2,048 MB", f"{rss:,.0f} MB", rss * 2**20 <= TARGET_RSS_BYTES)
    return found


def _s(x: float) -> str:
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def _x(ratio: float) -> str:
    return f"{ratio:,.0f} x" if ratio >= 10 else f"{ratio:.2f} x"


def render_markdown(result: dict) -> str:
    """The README's tables for a results file."""
    sizes = result["sizes"]
    out = [f"Measured {result['date']} on {result['machine']}; load average {result['load_average_before']} "
           f"before, {result['load_average_after']} after. Medians of the repetitions (n). Seconds.", ""]
    out += ["| size | order rows | CSV MB | n | `nexcart run` | one new month | floor (DuckDB) | pandas | "
            "pipeline / floor | pandas / pipeline | peak RSS pipeline | floor | pandas |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in sizes:
        m, r = s["median"], s["ratios"]
        out.append(
            f"| {s['label']} | {s['rows']['orders']:,} | {s['csv_mb']:,.0f} | {s['repeat']} | {_s(m['pipeline']['wall_s'])} "
            f"| {_s(m['new_month']['wall_s'])} | {_s(m['floor']['wall_s'])} | {_s(m['pandas']['wall_s'])} "
            f"| {_x(r['pipeline_over_floor'])} | {_x(r['pandas_over_pipeline'])} "
            f"| {m['pipeline']['peak_rss_mb']:,.0f} MB | {m['floor']['peak_rss_mb']:,.0f} MB "
            f"| {m['pandas']['peak_rss_mb']:,.0f} MB |")
    out += ["", "Where a `nexcart run` goes (median seconds; steps from the run's Dagster events, dbt nodes from "
            "its run_results.json):", "",
            "| size | run | start-up (imports, definitions) | planning (events before RUN_START) | ingest steps "
            "| dbt steps | of which dbt's elapsed (run_results) | gate steps | other steps | Dagster between steps "
            "| after the run (of which docs build) | total | events | gates + docs share |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in sizes:
        for approach, name in (("pipeline", "full"), ("new_month", "new month")):
            p = s["median"][approach]
            st = p["stages"]
            share = f"{100 * s['gate_share']:.1f} %" if approach == "pipeline" else ""
            out.append(
                f"| {s['label']} | {name} | {_s(st['startup'])} | {_s(st['planning'])} | {_s(st['ingest'])} "
                f"| {_s(st['dbt'])} | {_s(p['dbt_elapsed_s'])} | {_s(st['gates'])} | {_s(st['other_steps'])} "
                f"| {_s(st['dagster_between_steps'])} | {_s(st['after_run'])} ({_s(p['docs_build_s'])}) "
                f"| {_s(p['wall_s'])} | {p['events']:,.0f} | {share} |")
    found = [t for s in sizes for t in targets(s)]
    if found:
        out += ["", "Targets (issue #13), against the floor of the same bench:", "",
                "| size | target | limit | measured | |", "|---|---|---:|---:|---|"]
        out += [f"| {t['size']} | {t['target']} | {t['limit']} | {t['measured']} | {'met' if t['met'] else '**not met**'} |"
                for t in found]
    out += ["", "Same numbers as the marts (rows and columns compared; money to the cent):", ""]
    for s in sizes:
        for approach, check in s["checks"].items():
            tables = ", ".join(
                f"{name} ({t['rows']:,} rows, {len(t['columns'])} columns"
                + ("" if t["match"] else f": {t['missing']} missing, {t['extra']} extra, differing "
                   + (", ".join(f"{c} {n}" for c, n in t["mismatched_rows_by_column"].items()) or "none"))
                + ")"
                for name, t in check["tables"].items())
            out.append(f"- {s['label']}, {approach}: {'match' if check['match'] else '**MISMATCH**'}: {tables}")
    return "\n".join(out) + "\n"


def write_chart(result: dict, path: Path) -> Path | None:
    """Log-log: seconds against orders, one line per approach. None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    sizes = sorted(result["sizes"], key=lambda s: s["orders"])
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for approach, name, style in (("pipeline", "nexcart run (full)", "o-"), ("new_month", "one new month", "s--"),
                                  ("pandas", "pandas", "^-"), ("floor", "floor (one DuckDB script)", "D-")):
        xs = [s["orders"] for s in sizes]
        ys = [s["median"][approach]["wall_s"] for s in sizes]
        ax.plot(xs, ys, style, label=name)
        for x, y in zip(xs, ys):
            ax.annotate(_s(y), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"orders ({sizes[0]['months']} months)")
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"NexCart bench {result['date']}: time against size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def update_readme(markdown: str, readme: Path = README) -> None:
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise SystemExit(f"{readme} has no {README_START} ... {README_END} block")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{markdown}{README_END}{tail}")


# ----------------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------------

def run(args: argparse.Namespace, log=print) -> dict:
    """The bench as args say; returns the results (also written to args.out)."""
    orders = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    repeats = _repeats(str(args.repeat), len(orders))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    json_path = out / f"{date}.json"
    result = json.loads(json_path.read_text()) if json_path.is_file() else {"sizes": []}
    result.update({
        "date": date,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python "
                   f"{platform.python_version()}, {_versions()}",
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "command": "nexcart bench " + " ".join(f"--{k} {v}" for k, v in
                                               (("sizes", args.sizes), ("months", args.months), ("repeat", args.repeat))),
    })
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nexcart-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    timezone_before = os.environ.get("NEXCART_TIMEZONE")
    os.environ["NEXCART_TIMEZONE"] = "UTC"  # the runs' store time zone: the floor and pandas read UTC
    try:
        for size_orders, repeat in zip(orders, repeats):
            size = bench_size(size_orders, args.months, repeat, work, log)
            size["targets"] = targets(size)
            result["sizes"] = sorted([s for s in result["sizes"] if s["label"] != size["label"]] + [size],
                                     key=lambda s: s["orders"])
            result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
            result["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            json_path.write_text(json.dumps(result, indent=1) + "\n")  # after each size: a partial bench counts
            log(f"results: {json_path}")
            if not args.keep:
                shutil.rmtree(work / size["label"], ignore_errors=True)
    finally:
        if timezone_before is None:
            os.environ.pop("NEXCART_TIMEZONE", None)
        else:
            os.environ["NEXCART_TIMEZONE"] = timezone_before
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    chart = write_chart(result, out / f"{date}.png")
    markdown = render_markdown(result)
    if args.readme:
        update_readme(markdown)
    log("")
    log(markdown)
    log(f"results: {json_path}" + (f", chart: {chart}" if chart else " (no chart: matplotlib is not installed)"))
    return result


def _versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in ("duckdb", "dagster", "dbt-core", "great-expectations",
                                                            "pandas"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/harness.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
