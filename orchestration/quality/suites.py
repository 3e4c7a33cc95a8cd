"""The quality gates as data, read from the suite files in expectations/ (the source of truth).

expectations/raw.yml, clean.yml and marts.yml hold one gate per table: GX expectations run on
the month's rows as a pandas DataFrame, and SQL checks run in DuckDB (reconciliation,
referential coverage, month completeness), each with a severity (error blocks the month, warn
does not). expectations/thresholds.yml holds every threshold; suites refer to them as ${...}.

This module only reads and checks the files (no Great Expectations import: it is slow, and
the Dagster code location loads this at start-up); gx_project.py turns a Gate into GX objects.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from orchestration.settings import PROJECT_ROOT

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
LAYERS = ("raw", "clean", "marts")
SEVERITIES = ("error", "warn")

# Month parameters an expectation may use ($month_start...), passed to GX at validation time.
GX_MONTH_PARAMETERS = ("month_start", "next_month_start")
# Month parameters a SQL check may use ($month...), bound by DuckDB.
SQL_MONTH_PARAMETERS = ("month", "month_date", "next_month_date")

_THRESHOLD_RE = re.compile(r"\$\{([^}]+)\}")
_SQL_PARAM_RE = re.compile(r"\$([a-z_]+)\b")
# Keys of an expectation entry that are ours, not arguments of the GX expectation.
_OWN_KEYS = {"type", "name", "severity", "why"}


class QualityConfigError(ValueError):
    """A suite or the thresholds file is not valid; the message names the file and entry."""


@dataclass(frozen=True)
class Expectation:
    """One GX expectation of a gate, run on the month's rows."""

    name: str
    type: str  # snake case GX name, e.g. expect_column_values_to_be_unique
    kwargs: dict[str, Any]  # thresholds resolved; $month_start kept as a GX parameter
    severity: str
    why: str | None = None

    @property
    def columns(self) -> list[str]:
        cols = [self.kwargs[k] for k in ("column", "column_A", "column_B") if k in self.kwargs]
        cols += list(self.kwargs.get("column_list", []))
        return cols

    @property
    def gx_class_name(self) -> str:
        return "".join(part.capitalize() for part in self.type.split("_"))


@dataclass(frozen=True)
class SqlCheck:
    """A check run in DuckDB: `metric` gives one number that must lie in [min, max].

    NULL means "not applicable" (e.g. shares of a month without revenue) and passes.
    """

    name: str
    severity: str
    metric_sql: str
    min: float | None = None
    max: float | None = None
    examples_sql: str | None = None
    why: str | None = None

    @property
    def parameters(self) -> list[str]:
        found = set(_SQL_PARAM_RE.findall(self.metric_sql))
        if self.examples_sql:
            found |= set(_SQL_PARAM_RE.findall(self.examples_sql))
        return sorted(found)

    def bounds_text(self) -> str:
        if self.min is not None and self.max is not None:
            return f"= {self.min:g}" if self.min == self.max else f"within [{self.min:g}, {self.max:g}]"
        if self.min is not None:
            return f">= {self.min:g}"
        return f"<= {self.max:g}"


@dataclass(frozen=True)
class Gate:
    """The quality gate of one asset: its expectations and SQL checks, one month at a time."""

    layer: str
    table: str
    asset_key: tuple[str, ...]
    relation: str
    month_column: str | None  # None: a reference snapshot, validated whole
    month_type: str  # 'text' ('YYYY-MM') or 'date' (first day of the month)
    example_columns: tuple[str, ...]
    expectations: tuple[Expectation, ...]
    sql_checks: tuple[SqlCheck, ...]
    source_file: str

    @property
    def id(self) -> str:
        """e.g. clean.orders (also the GX suite name)."""
        return self.relation

    @property
    def partitioned(self) -> bool:
        return self.month_column is not None

    @property
    def has_error_severity(self) -> bool:
        return any(e.severity == "error" for e in (*self.expectations, *self.sql_checks))

    @property
    def columns(self) -> list[str]:
        """Columns read from the warehouse: those the expectations and examples use."""
        wanted: list[str] = []
        for col in [*self.example_columns, *(c for e in self.expectations for c in e.columns)]:
            if col not in wanted:
                wanted.append(col)
        return wanted


@dataclass(frozen=True)
class QualityConfig:
    gates: tuple[Gate, ...]
    thresholds: dict[str, Any] = field(default_factory=dict)
    directory: Path = EXPECTATIONS_DIR

    def gate(self, gate_id: str) -> Gate:
        for g in self.gates:
            if g.id == gate_id:
                return g
        raise KeyError(f"no quality gate {gate_id!r} in {self.directory}")

    def setting(self, section: str, name: str, default: Any = None) -> Any:
        return (self.thresholds.get(section) or {}).get(name, default)

    @property
    def example_rows(self) -> int:
        return int(self.setting("report", "example_rows", 5))


# --- thresholds: ${raw.quarantined_share_warn}, ${1 - raw.missing_key_share_error} -------------

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _lookup(thresholds: dict, dotted: str, where: str) -> float:
    node: Any = thresholds
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise QualityConfigError(f"{where}: unknown threshold '{dotted}' (not in thresholds.yml)")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        raise QualityConfigError(f"{where}: threshold '{dotted}' is not a number")
    return node


def evaluate_threshold(expression: str, thresholds: dict, where: str) -> float:
    """A number, a threshold name, or + - * / of those (nothing else is evaluated)."""

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, (ast.Name, ast.Attribute)):
            parts = []
            while isinstance(node, ast.Attribute):
                parts.append(node.attr)
                node = node.value
            if not isinstance(node, ast.Name):
                raise QualityConfigError(f"{where}: cannot read '${{{expression}}}'")
            parts.append(node.id)
            return _lookup(thresholds, ".".join(reversed(parts)), where)
        raise QualityConfigError(f"{where}: '${{{expression}}}' is not a threshold expression")

    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise QualityConfigError(f"{where}: '${{{expression}}}' is not a threshold expression") from exc
    value = ev(tree)
    return round(value, 12) if isinstance(value, float) else value


def _resolve(value: Any, thresholds: dict, where: str, *, in_sql: bool = False) -> Any:
    """Replace ${...} by threshold values, and (outside SQL) $month_start by a GX parameter."""
    if isinstance(value, list):
        return [_resolve(v, thresholds, where, in_sql=in_sql) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, thresholds, where, in_sql=in_sql) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    whole = _THRESHOLD_RE.fullmatch(value.strip())
    if whole and not in_sql:
        return evaluate_threshold(whole.group(1), thresholds, where)
    if not in_sql and value.startswith("$") and value[1:] in GX_MONTH_PARAMETERS:
        return {"$PARAMETER": value[1:]}
    return _THRESHOLD_RE.sub(lambda m: repr(evaluate_threshold(m.group(1), thresholds, where)), value)


# --- loading -----------------------------------------------------------------------------------


def _expectation(raw: dict, gate_where: str, thresholds: dict, partitioned: bool) -> Expectation:
    if not isinstance(raw, dict) or "type" not in raw:
        raise QualityConfigError(f"{gate_where}: every expectation needs a `type`")
    etype = str(raw["type"])
    where = f"{gate_where}, {etype}"
    if not etype.startswith("expect_"):
        raise QualityConfigError(f"{where}: `type` is a GX expectation name, e.g. expect_column_values_to_be_unique")
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        raise QualityConfigError(f"{where}: severity must be one of {SEVERITIES}, not {severity!r}")
    kwargs = _resolve({k: v for k, v in raw.items() if k not in _OWN_KEYS}, thresholds, where)
    uses_month = any(isinstance(v, dict) and "$PARAMETER" in v for v in kwargs.values())
    if uses_month and not partitioned:
        raise QualityConfigError(f"{where}: $month_start / $next_month_start need a month_column")
    column = kwargs.get("column") or ", ".join(kwargs.get("column_list", []))
    default_name = etype.removeprefix("expect_") + (f" ({column})" if column else "")
    return Expectation(name=str(raw.get("name") or default_name), type=etype, kwargs=kwargs,
                       severity=severity, why=raw.get("why"))


def _sql_check(raw: dict, gate_where: str, thresholds: dict, table: str, relation: str,
               partitioned: bool) -> SqlCheck:
    if not isinstance(raw, dict) or "name" not in raw or "metric" not in raw:
        raise QualityConfigError(f"{gate_where}: every sql check needs a `name` and a `metric`")
    where = f"{gate_where}, sql check '{raw['name']}'"
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        raise QualityConfigError(f"{where}: severity must be one of {SEVERITIES}, not {severity!r}")

    def sql(text: str | None) -> str | None:
        if text is None:
            return None
        text = _resolve(str(text), thresholds, where, in_sql=True)
        return text.replace("{table}", table).replace("{relation}", relation).strip().rstrip(";")

    bounds = {}
    for bound in ("min", "max"):
        if raw.get(bound) is not None:
            value = _resolve(raw[bound], thresholds, where)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise QualityConfigError(f"{where}: `{bound}` must be a number or ${{threshold}}")
            bounds[bound] = float(value)
    if not bounds:
        raise QualityConfigError(f"{where}: give `min`, `max` or both")
    check = SqlCheck(name=str(raw["name"]), severity=severity, metric_sql=sql(raw["metric"]),
                     examples_sql=sql(raw.get("examples")), why=raw.get("why"), **bounds)
    unknown = [p for p in check.parameters if p not in SQL_MONTH_PARAMETERS]
    if unknown:
        raise QualityConfigError(f"{where}: unknown parameter(s) {unknown}; use {SQL_MONTH_PARAMETERS}")
    if check.parameters and not partitioned:
        raise QualityConfigError(f"{where}: month parameters need a month_column")
    return check


def _gate(raw: dict, layer: str, path: Path, thresholds: dict) -> Gate:
    where = f"{path.name}, gate '{raw.get('table', '?')}'"
    for key in ("table", "asset", "relation"):
        if key not in raw:
            raise QualityConfigError(f"{where}: `{key}` is required")
    month_column = raw.get("month_column")
    month_type = raw.get("month_type", "text")
    if month_type not in ("text", "date"):
        raise QualityConfigError(f"{where}: month_type is 'text' ('YYYY-MM') or 'date'")
    partitioned = month_column is not None
    expectations = tuple(_expectation(e, where, thresholds, partitioned) for e in raw.get("expectations") or [])
    sql_checks = tuple(
        _sql_check(c, where, thresholds, raw["table"], raw["relation"], partitioned)
        for c in raw.get("sql_checks") or []
    )
    for kind, names in (("expectation", [e.name for e in expectations]), ("sql check", [c.name for c in sql_checks])):
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise QualityConfigError(f"{where}: {kind} names must be unique, repeated: {dupes}")
    return Gate(
        layer=layer,
        table=str(raw["table"]),
        asset_key=tuple(str(raw["asset"]).split("/")),
        relation=str(raw["relation"]),
        month_column=month_column,
        month_type=month_type,
        example_columns=tuple(raw.get("example_columns") or ()),
        expectations=expectations,
        sql_checks=sql_checks,
        source_file=path.name,
    )


def threshold_overrides_path(directory: Path = EXPECTATIONS_DIR) -> Path | None:
    """The file NEXCART_THRESHOLDS names: a shop's own values for some thresholds, kept outside the
    project, laid over the project's suites (not over another suites folder, e.g. a test's)."""
    if Path(directory) != EXPECTATIONS_DIR:
        return None
    from orchestration.settings import load_settings

    return load_settings().threshold_overrides


def _overlay(base: dict, override: dict, where: str) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if key not in base:
            raise QualityConfigError(f"{where}: unknown threshold '{key}' (thresholds.yml has no such entry)")
        merged[key] = _overlay(base[key], value, f"{where}.{key}") if isinstance(value, dict) else value
    return merged


def load_thresholds(directory: Path = EXPECTATIONS_DIR) -> dict:
    path = Path(directory) / "thresholds.yml"
    if not path.exists():
        raise QualityConfigError(f"{path} is missing: every threshold of the quality gates lives there")
    thresholds = yaml.safe_load(path.read_text()) or {}
    overrides = threshold_overrides_path(directory)
    if overrides is None:
        return thresholds
    if not overrides.is_file():
        raise QualityConfigError(f"{overrides} (NEXCART_THRESHOLDS) is missing")
    return _overlay(thresholds, yaml.safe_load(overrides.read_text()) or {}, overrides.name)


def _load(directory: Path) -> QualityConfig:
    thresholds = load_thresholds(directory)
    gates: list[Gate] = []
    for layer in LAYERS:
        # raw.yml, or several files raw*.yml (e.g. raw_orders.yml) for the layer
        for path in sorted(directory.glob(f"{layer}*.yml")):
            doc = yaml.safe_load(path.read_text()) or {}
            if doc.get("layer", layer) != layer:
                raise QualityConfigError(f"{path.name}: layer is '{doc.get('layer')}', expected '{layer}'")
            gates.extend(_gate(g, layer, path, thresholds) for g in doc.get("gates") or [])
    ids = [g.id for g in gates]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise QualityConfigError(f"{directory}: one gate per relation, repeated: {dupes}")
    return QualityConfig(gates=tuple(gates), thresholds=thresholds, directory=directory)


@lru_cache(maxsize=8)
def _load_cached(directory: str, stamp: tuple) -> QualityConfig:
    return _load(Path(directory))


def load_config(directory: Path | None = None) -> QualityConfig:
    """The gates and thresholds (re-read when a file changed)."""
    directory = Path(directory or EXPECTATIONS_DIR)
    overrides = threshold_overrides_path(directory)
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in directory.glob("*.yml"))) + (
        (str(overrides), overrides.stat().st_mtime_ns if overrides.is_file() else 0) if overrides else (),)
    return _load_cached(str(directory), stamp)
