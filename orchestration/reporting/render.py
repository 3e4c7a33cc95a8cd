"""Rendering the monthly report and the index page to static HTML files.

    out_dir/
      YYYY-MM.html      one self-contained page per month (data inlined; ≤ 1 MB)
      index.html        every month found in out_dir, newest first
      assets/           the vendored chart library (Vega, Vega-Lite, vega-embed), CSS and JS,
                        copied from this package once and shared by every page

Nothing in a page points outside out_dir: the pages open from disk with networking off.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from orchestration.reporting import formatting as fmt
from orchestration.reporting.data import MartReader, open_warehouse
from orchestration.reporting.sections import Banner, Kpi, ReportBuilder

PACKAGE_ASSETS = Path(__file__).resolve().parent / "assets"
SCRIPTS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "report.js")
MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
REPORT_NAME_RE = re.compile(r"^(\d{4}-(?:0[1-9]|1[0-2]))\.html$")
SUMMARY_RE = re.compile(r'<script type="application/json" id="nexcart-summary">(.*?)</script>', re.S)
MAX_REPORT_BYTES = 1_000_000


@dataclass
class ReportResult:
    """What one render produced: the file, its size, the KPI header and which sections showed."""

    month: str
    path: Path
    size_bytes: int
    kpis: list[Kpi]
    sections: dict[str, bool]  # section id -> shown
    notes: dict[str, str] = field(default_factory=dict)  # section id -> note of a hidden section
    summary: dict[str, Any] = field(default_factory=dict)
    banners: list[Banner] = field(default_factory=list)  # shown at the top of the page

    def kpi_markdown(self) -> str:
        """The KPI header as a markdown table (for the Dagster UI)."""
        banners = [f"**{b.text}**" for b in self.banners]
        if not self.kpis:
            return "\n\n".join([*banners, f"No KPI figures for {self.month}."])
        lines = ["| Measure | Value | vs previous month | vs a year ago |", "|---|---:|---:|---:|"]
        for k in self.kpis:
            lines.append(f"| {k.label} | {k.text} | {fmt.change(k.mom)} | {fmt.change(k.yoy)} |")
        notes = [f"{k.label}: {k.sub}" for k in self.kpis if k.key == "gross_revenue" and k.sub]
        return "\n\n".join([*banners, "\n".join(lines), *notes])


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("orchestration.reporting", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["change"] = fmt.change
    env.filters["month_label"] = fmt.month_label
    return env


def _json_for_script(data: Any) -> str:
    """JSON safe inside <script>: no '</script>' or '<!--' can close or confuse the element."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def copy_assets(out_dir: Path) -> Path:
    """Copy the package's shared assets into out_dir/assets (only files that changed)."""
    target = Path(out_dir) / "assets"
    target.mkdir(parents=True, exist_ok=True)
    for source in sorted(PACKAGE_ASSETS.iterdir()):
        if not source.is_file():
            continue
        dest = target / source.name
        if not dest.exists() or not filecmp.cmp(source, dest, shallow=False):
            tmp = dest.with_suffix(dest.suffix + ".tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
    return target


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _quality_docs_href(out_dir: Path, quality_docs: Path | None) -> str | None:
    if quality_docs is None or not Path(quality_docs).is_file():
        return None
    return Path(os.path.relpath(Path(quality_docs).resolve(), Path(out_dir).resolve())).as_posix()


def _flagged_share_warn() -> float | None:
    """The marts gate's threshold for the share of revenue from flagged lines (thresholds.yml)."""
    from orchestration.quality.suites import load_thresholds

    value = (load_thresholds().get("marts") or {}).get("flagged_revenue_share_warn")
    return None if value is None else float(value)


def render_month_report(
    warehouse_path: Path,
    month: str,
    out_dir: Path,
    *,
    currency: str = "USD",
    at_risk_days: float = 14.0,
    quality_docs: Path | None = None,
    generated_at: datetime | None = None,
    notice: str | None = None,
    flagged_share_warn: float | None = None,
) -> ReportResult:
    """Render out_dir/<month>.html from the marts of the warehouse at warehouse_path.

    The warehouse is opened read-only and closed before anything is written. Sections without
    data (e.g. no inventory or payments) are replaced by a one-line note. `notice` is shown as a
    warning banner at the top of the page (e.g. "held back: ..." for a month a quality gate held
    back); a month for which nothing was delivered gets a "no data delivered" banner.
    flagged_share_warn (default: marts.flagged_revenue_share_warn in expectations/thresholds.yml):
    above this share of gross revenue from flagged lines, the key figures say so.
    """
    if not MONTH_RE.match(month):
        raise ValueError(f"'{month}' is not a month: use YYYY-MM, e.g. 2024-03")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_warehouse(Path(warehouse_path)) as con:
        builder = ReportBuilder(MartReader(con), month, currency=currency, at_risk_days=at_risk_days,
                                quality_docs_href=_quality_docs_href(out_dir, quality_docs),
                                flagged_share_warn=_flagged_share_warn() if flagged_share_warn is None
                                else flagged_share_warn)
        sections, summary = builder.build()
    banners = [Banner("warning", notice)] if notice else []
    banners += builder.banners
    if notice:
        summary["notice"] = notice
    copy_assets(out_dir)

    specs = {chart.id: chart.spec for s in sections if s.shown for chart in s.charts}
    kpi_section = sections[0]
    generated = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    html = _environment().get_template("month.html.j2").render(
        month=month,
        month_label=fmt.parse_month(month).strftime("%B %Y"),
        currency=builder.currency,
        sections=sections,
        kpi_section=kpi_section,
        banners=banners,
        charts_json=_json_for_script(specs),
        summary_json=_json_for_script(summary),
        generated=generated,
        scripts=SCRIPTS,
    )
    path = out_dir / f"{month}.html"
    _write_atomic(path, html)
    return ReportResult(
        month=month,
        path=path,
        size_bytes=len(html.encode("utf-8")),
        kpis=kpi_section.kpis,
        sections={s.id: s.shown for s in sections},
        notes={s.id: s.note for s in sections if not s.shown and s.note},
        summary=summary,
        banners=banners,
    )


def _read_summary(path: Path) -> dict[str, Any]:
    match = SUMMARY_RE.search(path.read_text(encoding="utf-8", errors="replace"))
    if not match:
        return {}
    try:
        return json.loads(match.group(1))
    except ValueError:
        return {}


def render_index(out_dir: Path) -> Path:
    """(Re)write out_dir/index.html listing every YYYY-MM.html report in out_dir, newest first."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_assets(out_dir)
    reports = []
    for path in sorted(out_dir.iterdir(), reverse=True):
        match = REPORT_NAME_RE.match(path.name)
        if not match:
            continue
        summary = _read_summary(path)
        reports.append({
            "month": match.group(1),
            "label": fmt.parse_month(match.group(1)).strftime("%B %Y"),
            "href": path.name,
            "gross": summary.get("gross_text", fmt.NA),
            "net": summary.get("net_text", fmt.NA),
            "orders": fmt.integer(summary.get("orders")),
            "aov": summary.get("aov_text", fmt.NA),
            "mom": summary.get("mom_growth"),
            "yoy": summary.get("yoy_growth"),
            "takeaway": summary.get("takeaway", ""),
            "notice": summary.get("notice"),
        })
    years: dict[str, list[dict[str, Any]]] = {}
    for report in reports:
        years.setdefault(report["month"][:4], []).append(report)
    html = _environment().get_template("index.html.j2").render(
        reports=reports, years=years, latest=reports[0] if reports else None,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
    path = out_dir / "index.html"
    _write_atomic(path, html)
    return path
