"""Running one gate for one month: read the month's rows from DuckDB into pandas, validate them
with Great Expectations, run the gate's SQL checks in DuckDB, and keep the result.

Only the month being built is read (never a whole monthly table); a reference snapshot is
validated whole. GX runs on pandas DataFrames, not through SQLAlchemy (GX 1.x loses results
when it closes a DuckDB connection), and checks across rows or tables stay in SQL.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from orchestration.quality.gx_project import SQL_SUFFIX as SQL_SUITE_SUFFIX
from orchestration.quality.gx_project import QualityPaths, get_project, sql_metric_column
from orchestration.quality.suites import Gate, QualityConfig, SqlCheck

SNAPSHOT = "snapshot"  # the run name / record name of a reference snapshot's result


@dataclass
class Outcome:
    """The result of one expectation or SQL check."""

    name: str
    kind: str  # 'expectation' or 'sql'
    type: str  # GX expectation type, or 'sql'
    severity: str
    success: bool
    observed: Any = None
    unexpected_count: int | None = None
    element_count: int | None = None
    examples: list[dict] = field(default_factory=list)
    error: str | None = None
    expected: str | None = None

    def summary(self) -> str:
        if self.error:
            return f"error: {self.error}"
        parts = []
        if self.observed is not None:
            parts.append(f"observed {_short(self.observed)}")
        if self.unexpected_count is not None:
            parts.append(f"{self.unexpected_count} of {self.element_count} rows unexpected")
        if self.expected:
            parts.append(f"expected {self.expected}")
        return ", ".join(parts) or ("passed" if self.success else "failed")


@dataclass
class GateResult:
    gate_id: str
    layer: str
    table: str
    asset_key: str
    month: str | None
    checked_at: str
    rows: int | None
    outcomes: list[Outcome]
    run_id: str | None = None
    gx_runs: list[dict] = field(default_factory=list)  # {suite, run_name, run_time}

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def failed_errors(self) -> list[Outcome]:
        return [o for o in self.failed if o.severity == "error"]

    @property
    def failed_warnings(self) -> list[Outcome]:
        return [o for o in self.failed if o.severity == "warn"]

    @property
    def status(self) -> str:
        """'passed', 'warn' (only warn-level failures) or 'error' (the month is blocked)."""
        return "error" if self.failed_errors else "warn" if self.failed_warnings else "passed"

    def to_json(self) -> dict:
        return {**asdict(self), "status": self.status}

    @classmethod
    def from_json(cls, data: dict) -> GateResult:
        data = {k: v for k, v in data.items() if k != "status"}
        data["outcomes"] = [Outcome(**o) for o in data.get("outcomes", [])]
        return cls(**data)


# --- values as JSON / text ---------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A JSON-safe copy of a value from pandas, numpy, DuckDB or GX."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        try:
            return plain(value.item())
        except (ValueError, TypeError):
            pass
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _short(value: Any, limit: int = 80) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = value if isinstance(value, str) else json.dumps(plain(value), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- months --------------------------------------------------------------------------------------


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    year, mon = int(month[:4]), int(month[5:7])
    start = dt.date(year, mon, 1)
    nxt = dt.date(year + (mon == 12), 1 if mon == 12 else mon + 1, 1)
    return start, nxt


def sql_parameters(month: str | None) -> dict[str, Any]:
    if month is None:
        return {}
    start, nxt = month_bounds(month)
    return {"month": month, "month_date": start, "next_month_date": nxt}


def gx_parameters(month: str | None) -> dict[str, Any]:
    if month is None:
        return {}
    start, nxt = month_bounds(month)
    return {"month_start": dt.datetime.combine(start, dt.time()), "next_month_start": dt.datetime.combine(nxt, dt.time())}


def _bind(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters a query uses (DuckDB refuses parameters a query does not use)."""
    used = set(re.findall(r"\$([a-z_]+)\b", sql))
    return {k: v for k, v in params.items() if k in used}


# --- reading the month ---------------------------------------------------------------------------


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def relation_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    schema, name = relation.split(".", 1)
    rows = con.execute(
        "select column_name from duckdb_columns() where schema_name = ? and table_name = ? order by column_index",
        [schema, name],
    ).fetchall()
    return [r[0] for r in rows]


def month_filter(gate: Gate, month: str | None) -> tuple[str, dict]:
    if not gate.partitioned or month is None:
        return "", {}
    if gate.month_type == "date":
        return f" where {_quote(gate.month_column)} = $month_date", {"month_date": month_bounds(month)[0]}
    return f" where {_quote(gate.month_column)} = $month", {"month": month}


def read_frame(con: duckdb.DuckDBPyConnection, gate: Gate, month: str | None, existing: list[str]):
    """The rows of the month (or the whole snapshot), only the columns the gate uses."""
    columns = [c for c in gate.columns if c in existing]
    select = ", ".join(_quote(c) for c in columns) if columns else "1 as _row"
    where, params = month_filter(gate, month)
    frame = con.execute(f"select {select} from {gate.relation}{where}", params).df()
    if not columns:
        frame = frame.drop(columns=["_row"])
    return _gx_friendly(frame)


def _gx_friendly(frame):
    """GX's pandas metrics are vectorised only for int64 / float64 and datetime64[ns] columns;
    on DuckDB's int32 or datetime64[us] they fall back to a Python call per value (~10x slower)."""
    import numpy as np
    import pandas as pd

    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_datetime64_any_dtype(dtype) and not isinstance(dtype, pd.DatetimeTZDtype):
            frame[name] = frame[name].astype("datetime64[ns]")
        elif pd.api.types.is_integer_dtype(dtype) and dtype != np.int64:
            series = frame[name]
            frame[name] = series.astype("float64") if series.isna().any() else series.astype("int64")
        elif pd.api.types.is_float_dtype(dtype) and dtype != np.float64:
            frame[name] = frame[name].astype("float64")
    return frame


def months_present(con: duckdb.DuckDBPyConnection, gate: Gate) -> list[str]:
    """Every month found in a partitioned gate's table (for a check run without a partition)."""
    if not gate.partitioned or not relation_columns(con, gate.relation):
        return []
    col = _quote(gate.month_column)
    expr = f"strftime({col}, '%Y-%m')" if gate.month_type == "date" else col
    rows = con.execute(f"select distinct {expr} from {gate.relation} where {col} is not null order by 1").fetchall()
    return [r[0] for r in rows]


# --- validating ------------------------------------------------------------------------------------


def _examples(frame, index_list, columns: list[str], limit: int) -> list[dict]:
    if frame is None or not index_list:
        return []
    cols = [c for c in columns if c in frame.columns]
    try:
        picked = frame.loc[[i for i in index_list[:limit] if i in frame.index], cols]
    except (KeyError, TypeError):
        return []
    return [{k: plain(v) for k, v in row.items()} for row in picked.to_dict(orient="records")]


def _gx_outcomes(result, by_name: dict[str, Any], kind: str, frame, gate: Gate, limit: int) -> list[Outcome]:
    outcomes = []
    for res in result.results:
        config = res.expectation_config
        name = (config.meta or {}).get("name") or config.type
        spec = by_name.get(name)
        severity = (config.meta or {}).get("severity") or (spec.severity if spec else "error")
        info = res.exception_info or {}
        error = None
        if info.get("raised_exception"):
            error = info.get("exception_message")
        else:  # GX keeps per-metric exceptions in a nested dict
            for value in info.values():
                if isinstance(value, dict) and value.get("raised_exception"):
                    error = value.get("exception_message")
                    break
        details = res.result or {}
        outcome = Outcome(
            name=name, kind=kind, type=config.type, severity=severity,
            success=bool(res.success) and error is None,
            observed=plain(details.get("observed_value")),
            unexpected_count=plain(details.get("unexpected_count")),
            element_count=plain(details.get("element_count")),
            error=error,
        )
        if kind == "expectation" and spec is not None:
            values = [v for v in (details.get("partial_unexpected_list") or []) if plain(v) is not None]
            if outcome.observed is None and values:  # e.g. the out-of-range values themselves
                outcome.observed = plain(values[:limit])
            if not outcome.success:
                columns = [*gate.example_columns, *(c for c in spec.columns if c not in gate.example_columns)]
                outcome.examples = _examples(frame, details.get("partial_unexpected_index_list"), columns, limit)
            outcome.expected = _expected_text(spec.kwargs)
        outcomes.append(outcome)
    return outcomes


def _expected_text(kwargs: dict) -> str | None:
    shown = {k: v for k, v in kwargs.items() if k not in ("column", "column_list", "column_A", "column_B")}
    if not shown:
        return None
    return ", ".join(
        f"{k}={v['$PARAMETER'] if isinstance(v, dict) and '$PARAMETER' in v else v}" for k, v in shown.items()
    )


def _run_sql_check(con, check: SqlCheck, params: dict) -> tuple[float | None, str | None]:
    """(metric value or None, error message or None)."""
    try:
        row = con.execute(check.metric_sql, _bind(check.metric_sql, params)).fetchone()
        value = None if row is None or row[0] is None else float(row[0])
    except duckdb.Error as exc:
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return value, None


def _sql_examples(con, check: SqlCheck, params: dict, limit: int) -> list[dict]:
    if not check.examples_sql:
        return []
    try:
        cursor = con.execute(f"select * from ({check.examples_sql}) limit {int(limit)}",
                             _bind(check.examples_sql, params))
        names = [d[0] for d in cursor.description]
        return [{n: plain(v) for n, v in zip(names, row)} for row in cursor.fetchall()]
    except duckdb.Error as exc:
        return [{"examples query failed": str(exc).splitlines()[0]}]


def _sql_passes(check: SqlCheck, value: float | None) -> bool:
    """NULL = not applicable (passes); bounds are inclusive, like GX's between."""
    if value is None:
        return True
    return (check.min is None or value >= check.min) and (check.max is None or value <= check.max)


def run_gate(con: duckdb.DuckDBPyConnection, gate: Gate, month: str | None, *, config: QualityConfig,
             paths: QualityPaths, run_id: str | None = None) -> GateResult:
    """Validate one month of a gate (month None: a whole reference snapshot) and record it."""
    return run_gate_months(con, gate, [month], config=config, paths=paths, run_id=run_id)[0]


def run_gate_months(con: duckdb.DuckDBPyConnection, gate: Gate, months: list[str | None], *,
                    config: QualityConfig, paths: QualityPaths, run_id: str | None = None) -> list[GateResult]:
    """Validate a gate for each month (each month's rows on their own) and record the results.

    The expectations run once per month on that month's rows. The SQL checks run per month in
    DuckDB; their values are then validated by GX once for all the months (one row per month),
    which gives the same verdicts and keeps a backfill of many months from paying GX's fixed
    cost per validation twice per month.
    """
    import pandas as pd
    from great_expectations.core.run_identifier import RunIdentifier

    limit = config.example_rows
    months = [m if gate.partitioned else None for m in months]
    now = dt.datetime.now(dt.timezone.utc)
    results = [
        GateResult(gate_id=gate.id, layer=gate.layer, table=gate.table, asset_key="/".join(gate.asset_key),
                   month=month, checked_at=now.isoformat(timespec="seconds"), rows=None, outcomes=[], run_id=run_id)
        for month in months
    ]
    existing = relation_columns(con, gate.relation)
    if not existing:
        for result in results:
            result.outcomes.append(Outcome(
                name="table exists", kind="sql", type="sql", severity="error", success=False,
                error=f"{gate.relation} does not exist in the warehouse (was its asset materialized?)",
            ))
            record_result(paths, result)
        return results

    project = get_project(paths)
    by_name = {c.name: c for c in gate.sql_checks}
    metric_rows: list[dict] = []
    for result in results:
        month = result.month
        if gate.expectations:
            frame = read_frame(con, gate, month, existing)
            result.rows = len(frame)
            gx_run = RunIdentifier(run_name=month or SNAPSHOT, run_time=dt.datetime.now(dt.timezone.utc))

            def validate(result_format: str):
                return project.row_validation(gate).run(
                    batch_parameters={"dataframe": frame},
                    expectation_parameters=gx_parameters(month) or None,
                    result_format={"result_format": result_format, "partial_unexpected_count": max(limit, 1)},
                    run_id=gx_run,
                )

            # BASIC has the counts and observed values; only SUMMARY has the failing rows' index,
            # for the examples, and costs ~20 % more: asked for only when something failed. Same
            # run id, so the SUMMARY result replaces the BASIC one in the store.
            gx_result = validate("BASIC")
            if not gx_result.success:
                gx_result = validate("SUMMARY")
            run_name, run_time = gx_run.to_tuple()
            result.gx_runs.append({"suite": gate.id, "run_name": run_name, "run_time": run_time})
            result.outcomes += _gx_outcomes(gx_result, {e.name: e for e in gate.expectations}, "expectation",
                                            frame, gate, limit)
            del frame

        params = sql_parameters(month)
        metrics: dict[str, float | None] = {"month": month or SNAPSHOT}
        for check in gate.sql_checks:
            value, error = _run_sql_check(con, check, params)
            outcome = Outcome(name=check.name, kind="sql", type="sql", severity=check.severity,
                              success=error is None and _sql_passes(check, value),
                              observed="not applicable" if value is None and error is None else value,
                              error=error, expected=check.bounds_text())
            if not outcome.success and not error:
                outcome.examples = _sql_examples(con, check, params, limit)
            result.outcomes.append(outcome)
            # a failing query must fail in the docs too: a value outside the bounds
            metrics[sql_metric_column(check)] = (math.inf if check.max is not None else -math.inf) if error else value
        metric_rows.append(metrics)

    if gate.sql_checks:
        labels = [r.month or SNAPSHOT for r in results]
        gx_run = RunIdentifier(run_name=labels[0] if len(labels) == 1 else f"{labels[0]}..{labels[-1]}",
                               run_time=dt.datetime.now(dt.timezone.utc))
        metric_frame = pd.DataFrame(metric_rows)
        for column in metric_frame.columns.drop("month"):
            metric_frame[column] = metric_frame[column].astype("float64")
        gx_result = project.sql_validation(gate).run(
            batch_parameters={"dataframe": metric_frame},
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": len(metric_rows),
                           "unexpected_index_column_names": ["month"]},
            run_id=gx_run,
        )
        run_name, run_time = gx_run.to_tuple()
        verdicts = {res.expectation_config.meta.get("name"): res.success for res in gx_result.results}
        for result in results:
            result.gx_runs.append({"suite": gate.id + SQL_SUITE_SUFFIX, "run_name": run_name, "run_time": run_time})
        mine = all(o.success for r in results for o in r.outcomes if o.kind == "sql")
        if all(verdicts.get(name, True) for name in by_name) != mine:  # both read the same bounds
            logging.getLogger(__name__).warning("%s: GX and the gate disagree on the SQL checks: %s", gate.id, verdicts)

    for result in results:
        record_result(paths, result)
    return results


# --- the newest result of every gate and month ----------------------------------------------------


def _record_path(paths: QualityPaths, gate_id: str, month: str | None) -> Path:
    return paths.records_dir / gate_id / f"{month or SNAPSHOT}.json"


def record_result(paths: QualityPaths, result: GateResult) -> None:
    path = _record_path(paths, result.gate_id, result.month)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=1, default=str))
    tmp.replace(path)


def load_results(paths: QualityPaths) -> list[GateResult]:
    results = []
    if not paths.records_dir.exists():
        return results
    for path in sorted(paths.records_dir.glob("*/*.json")):
        try:
            results.append(GateResult.from_json(json.loads(path.read_text())))
        except (ValueError, TypeError):
            continue
    return results
