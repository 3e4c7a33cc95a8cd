"""The monthly business report: one offline HTML page per month rendered from the marts.

    from orchestration.reporting import render_month_report, render_index
    result = render_month_report(warehouse_path, "2024-03", out_dir)   # out_dir/2024-03.html
    render_index(out_dir)                                              # out_dir/index.html

Templates (Jinja2) are in templates/, the vendored chart library (Vega, Vega-Lite, vega-embed,
from npm; see VENDORED.md) and the stylesheet in assets/, copied to out_dir/assets/.
"""

from orchestration.reporting.render import ReportResult, copy_assets, render_index, render_month_report

__all__ = ["ReportResult", "copy_assets", "render_index", "render_month_report"]
