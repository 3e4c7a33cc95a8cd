"""The data-quality docs in data/docs/quality/: GX Data Docs, readable offline, and a landing page.

build_quality_docs() runs once at the end of a run:
  1. prunes old validation results (expectations/thresholds.yml, section docs), since a Data
     Docs build renders every stored result;
  2. builds the GX Data Docs once, into data/docs/quality/gx/, with the views and renderers of
     gx_views.py: every value from the data (unexpected values, failing rows, observed values,
     column names) is shown as text, never as markup;
  3. makes them work offline: GX's pages load CSS/JS from CDNs (jsdelivr, unpkg, cdnjs,
     bootstrapcdn, code.jquery.com) and a logo from S3; the same files, at the same versions,
     are vendored in orchestration/quality/static/vendor/ (fetched from npm, see VENDORED.md)
     and copied next to the pages, and every page is rewritten to load them by relative path
     (integrity/crossorigin attributes removed: a browser refuses those on file:// URLs);
     links to greatexpectations.io are dropped. No http(s) URL of a fetched resource remains;
  4. writes the landing page data/docs/quality/index.html: every month, layer and gate with its
     result, the failed expectations with observed values and examples, and links to the GX pages.

serve_docs() serves them on 127.0.0.1 (`nexcart docs`): files only (a folder is its index.html,
never a listing; nothing outside the folder); opening index.html from disk works too.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import shutil
from collections import defaultdict
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from functools import partial
from pathlib import Path

from orchestration.quality.gates import SNAPSHOT, GateResult, load_results
from orchestration.quality.gx_project import QualityPaths, get_project
from orchestration.quality.suites import LAYERS, QualityConfig, load_config

SITE_NAME = "nexcart_quality"
GX_SUBDIR = "gx"  # the GX site inside the docs folder; the landing page is the folder's index.html
VENDOR_DIR = Path(__file__).parent / "static" / "vendor"
# The GX site is rendered by the views and renderers of gx_views.py, which escape every value
# from the data. A site whose stamp differs was rendered otherwise (a build renders only the
# results that have no page yet, so older pages would stay as they are): the next build renders
# all of its pages.
RENDERING = "escaped-values-2"
RENDERING_STAMP = ".rendering"


def _gx_views(class_name: str) -> dict:
    return {"module_name": "orchestration.quality.gx_views", "class_name": class_name}


# Every asset GX 1.24's Data Docs templates load from a CDN -> its vendored copy (same version).
CDN_ASSETS: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap-4.3.1/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap-4.3.1/js/bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table-1.19.1/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table-1.19.1/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table-1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker-1.9.0/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker-1.9.0/js/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark-1.1.0/css/bootstrap-prefers-dark.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome-free-6.6.0/css/all.min.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js-1.12.9/umd/popper.min.js",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega-5.33.1/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite-5.23.0/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed-6.29.0/vega-embed.min.js",
}
# GX's logo is loaded from S3 (with a tracking query string): use the copy GX ships in static/.
_GX_IMAGES = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/[^\"')\s]*")
_NEWSLETTER = re.compile(r"<footer>\s*<p>Stay current on everything GX.*?</footer>", re.DOTALL)
_INTEGRITY = re.compile(r"\s+(integrity|crossorigin)=\"[^\"]*\"")
_EXTERNAL_ANCHOR = re.compile(r"<a\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*>(.*?)</a>", re.DOTALL)
# A URL the browser would fetch or follow; XML namespaces (w3.org) are names, not requests.
_ANY_URL = re.compile(r"https?://(?!www\.w3\.org/)[^\s\"'<>)]+")
_FETCHING_ATTR = re.compile(r"(\b(?:src|href)=\")https?://(?!www\.w3\.org/)[^\"]*(\")")
_STATIC_REF = re.compile(r"(\b(?:src|href)=\")(?:\.\./)*static/([^\"]+)(\")")
_CSS_URL = re.compile(r"url\((['\"]?)https?://[^)'\"]*\1\)")


# --- 1. pruning old results ------------------------------------------------------------------------


def prune_validation_results(paths: QualityPaths, config: QualityConfig, now: dt.datetime | None = None) -> int:
    """Delete stored GX validation results beyond the retention settings; returns how many.

    Per suite and run name (= month): keep the newest `keep_results_per_gate_month`, and drop
    those older than `max_result_age_days`, except the newest one, which is always kept.
    """
    keep = int(config.setting("docs", "keep_results_per_gate_month", 3))
    max_age = config.setting("docs", "max_result_age_days", None)
    now = now or dt.datetime.now(dt.timezone.utc)
    root = paths.validations_dir
    if not root.exists():
        return 0
    groups: dict[tuple, list[tuple[str, Path]]] = defaultdict(list)
    for path in root.rglob("*.json"):
        parts = path.relative_to(root).parts
        if len(parts) < 4:
            continue
        suite, run_name, run_time = parts[:-3], parts[-3], parts[-2]
        groups[(suite, run_name)].append((run_time, path))
    removed = 0
    for results in groups.values():
        results.sort(reverse=True)  # run_time 20240322T101010.000000Z sorts by time
        for position, (run_time, path) in enumerate(results):
            if position == 0:
                continue
            too_many = position >= keep
            too_old = False
            if max_age is not None:
                try:
                    when = dt.datetime.strptime(run_time, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=dt.timezone.utc)
                    too_old = (now - when).days > int(max_age)
                except ValueError:
                    pass
            if too_many or too_old:
                path.unlink()
                removed += 1
                _remove_empty_parents(path.parent, root)
    return removed


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _remove_stale_pages(site: Path, paths: QualityPaths) -> None:
    pages = site / "validations"
    if not pages.exists():
        return
    for page in pages.rglob("*.html"):
        result = paths.validations_dir / page.relative_to(pages).with_suffix(".json")
        if not result.exists():
            page.unlink()
            _remove_empty_parents(page.parent, pages)


def _pages_to_render(site: Path, paths: QualityPaths) -> list | None:
    """The results with no page yet, and every suite: a build renders only those (the index lists
    all). GX renders every stored result otherwise, so each run would pay for all earlier ones.
    None (render everything) when the site was never built."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    pages = site / "validations"
    if not (site / "index.html").exists() or not pages.exists():
        return None
    stamp = site / RENDERING_STAMP
    if not stamp.exists() or stamp.read_text(encoding="utf-8") != RENDERING:
        return None  # pages rendered by an older view (e.g. with unescaped values) are rendered again
    new = []
    for result in paths.validations_dir.rglob("*.json"):
        relative = result.relative_to(paths.validations_dir)
        if not (pages / relative.parent / f"{relative.stem}.html").exists():
            new.append(ValidationResultIdentifier.from_tuple((*relative.parent.parts, relative.stem)))
    suite_dir = paths.gx_dir / "expectations"  # clean/orders.json is the suite clean.orders
    suites = [ExpectationSuiteIdentifier(name=".".join(p.relative_to(suite_dir).with_suffix("").parts))
              for p in suite_dir.rglob("*.json")]
    return new + suites  # never empty (an empty list would make GX render everything)


# --- 3. offline pages ---------------------------------------------------------------------------------


def _rel(target: Path, page: Path) -> str:
    return Path(os.path.relpath(target, page.parent)).as_posix()


def make_offline(site: Path) -> list[str]:
    """Copy the vendored assets into the GX site and rewrite its pages and styles to use them.
    Returns the URLs that had no vendored copy (they are neutralised, and should be vendored)."""
    vendor = site / "static" / "vendor"
    shutil.copytree(VENDOR_DIR, vendor, ignore=shutil.ignore_patterns("*.md"), dirs_exist_ok=True)
    logo = site / "static" / "images" / "logo-long-vector.svg"
    unknown: set[str] = set()

    for page in [*site.rglob("*.html"), *(site / "static").rglob("*.css")]:
        if vendor in page.parents:
            continue
        text = original = page.read_text(encoding="utf-8")
        for url, local in CDN_ASSETS.items():
            if url in text:
                text = re.sub(re.escape(url) + r"(?=[\"'])", _rel(vendor / local, page), text)
        text = _GX_IMAGES.sub(_rel(logo, page), text)
        if page.suffix == ".html":  # GX gets the depth of some static links wrong (the favicon)
            text = _STATIC_REF.sub(lambda m: m.group(1) + _rel(site / "static" / m.group(2), page) + m.group(3), text)
        text = _INTEGRITY.sub("", text)
        text = _NEWSLETTER.sub("", text)
        text = _EXTERNAL_ANCHOR.sub(r"\1", text)
        unknown.update(_ANY_URL.findall(_strip_text_nodes(text)))
        text = _FETCHING_ATTR.sub(r"\1#\2", text)
        text = _CSS_URL.sub("none", text)
        if text != original:
            page.write_text(text, encoding="utf-8")
    return sorted(unknown)


def _strip_text_nodes(text: str) -> str:
    """Only URLs in attributes and CSS matter for fetching; ignore prose between tags."""
    return " ".join(re.findall(r"(?:src|href)=\"[^\"]*\"|url\([^)]*\)", text))


def remaining_urls(folder: Path) -> list[str]:
    """Every http(s) URL (XML namespaces aside) left in the HTML of a folder: must be empty."""
    found = []
    for page in folder.rglob("*.html"):
        found += [f"{page.relative_to(folder)}: {u}" for u in _ANY_URL.findall(page.read_text(encoding="utf-8"))]
    return found


# --- 4. the landing page ----------------------------------------------------------------------------

_STATUS_LABEL = {"passed": "passed", "warn": "warning", "error": "FAILED (blocks)", None: "not run"}
_STATUS_MARK = {"passed": "&#10003;", "warn": "!", "error": "&#10007;", None: "&middot;"}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1d2330;background:#fff}
h1{margin-bottom:.2rem} .sub{color:#5b6474;margin-top:0}
table{border-collapse:collapse;margin:1rem 0} th,td{border:1px solid #d6dae1;padding:.3rem .55rem;font-size:.9rem;vertical-align:top}
th{background:#f3f5f8;text-align:left;white-space:nowrap} .matrix td{text-align:center;min-width:2.2rem}
.matrix th{font-size:.8rem} .matrix td a{text-decoration:none;display:block}
.passed{background:#e3f6e8;color:#17692e} .warn{background:#fff4d6;color:#8a5a00} .error{background:#fde2e1;color:#a11a12;font-weight:600}
.none{color:#9aa3b2} a{color:#1f5fbf} code{background:#f3f5f8;padding:0 .25rem}
.layer{font-size:.75rem;text-transform:uppercase;color:#5b6474;text-align:center} details{margin:.4rem 0 .8rem 1rem}
.pill{display:inline-block;border-radius:.7rem;padding:0 .5rem;font-size:.8rem} .examples td{font-size:.8rem}
@media (prefers-color-scheme: dark){body{background:#14171c;color:#dfe3ea} th{background:#232831} th,td{border-color:#39404c}
.passed{background:#143a20;color:#9be3ae} .warn{background:#443510;color:#ffd98a} .error{background:#4a1714;color:#ffb3ad} a{color:#8ab4ff}}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _gx_pages(site: Path, result: GateResult) -> list[tuple[str, Path]]:
    pages = []
    for run in result.gx_runs:
        folder = site / "validations" / Path(*run["suite"].split(".")) / run["run_name"] / run["run_time"]
        pages += [(run["suite"], p) for p in sorted(folder.glob("*.html"))]
    return pages


def _examples_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_e(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f'<table class="examples"><tr>{head}</tr>{body}</table>'


def write_landing_page(out_dir: Path, config: QualityConfig, results: list[GateResult]) -> Path:
    site = out_dir / GX_SUBDIR
    gates = sorted(config.gates, key=lambda g: LAYERS.index(g.layer))  # suite-file order within a layer
    by_key = {(r.gate_id, r.month or SNAPSHOT): r for r in results}
    months = sorted({r.month for r in results if r.month}, reverse=True)
    monthly_gates = [g for g in gates if g.partitioned]
    reference_gates = [g for g in gates if not g.partitioned]
    latest = [r for r in results if any(g.id == r.gate_id for g in gates)]
    counts = {s: sum(1 for r in latest if r.status == s) for s in ("passed", "warn", "error")}

    def cell(gate, month_key) -> str:
        result = by_key.get((gate.id, month_key))
        status = result.status if result else None
        css = status or "none"
        mark = _STATUS_MARK[status]
        title = f"{gate.id} {month_key}: {_STATUS_LABEL[status]}"
        if result:
            return f'<td class="{css}" title="{_e(title)}"><a href="#{_e(gate.id)}-{_e(month_key)}">{mark}</a></td>'
        return f'<td class="{css}" title="{_e(title)}">{mark}</td>'

    def header(gate_list, first: str) -> str:
        spans = [(layer, sum(1 for g in gate_list if g.layer == layer)) for layer in LAYERS]
        layers = "".join(f'<th class="layer" colspan="{n}">{_e(layer)}</th>' for layer, n in spans if n)
        names = "".join(f'<th title="{_e(g.id)}">{_e(g.table)}</th>' for g in gate_list)
        return f"<tr><th></th>{layers}</tr><tr><th>{first}</th>{names}</tr>"

    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<title>NexCart data quality</title><style>{_CSS}</style></head><body>",
        "<h1>NexCart data quality</h1>",
        f'<p class="sub">Built {_e(dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))} from the newest '
        f"result of every gate and month. Gates: {counts['passed']} passed, {counts['warn']} with warnings, "
        f"{counts['error']} failed.</p>",
        "<p>Every layer is gated: <b>raw</b> (files as delivered), <b>clean</b> and <b>marts</b>. A gate is a "
        "Dagster asset check (<code>gx_gate</code>) running the suite in <code>expectations/&lt;layer&gt;.yml</code> on "
        "the month being built. <span class=\"pill error\">&#10007; failed</span> an error-level expectation failed: "
        "that month stopped there and its downstream assets were not built. <span class=\"pill warn\">! warning"
        "</span> only warn-level expectations failed: recorded, the month went on. <span class=\"pill passed\">"
        "&#10003; passed</span>. Click a cell for details; the full Great Expectations report of every validation "
        f'is in the <a href="{GX_SUBDIR}/index.html">Data Docs</a>.</p>',
    ]
    if monthly_gates:
        parts.append("<h2>Monthly gates</h2><table class=\"matrix\">" + header(monthly_gates, "month"))
        for month in months:
            parts.append(f"<tr><th>{_e(month)}</th>" + "".join(cell(g, month) for g in monthly_gates) + "</tr>")
        if not months:
            parts.append(f'<tr><td colspan="{len(monthly_gates) + 1}">No month validated yet.</td></tr>')
        parts.append("</table>")
    if reference_gates:
        parts.append("<h2>Reference snapshots</h2><table class=\"matrix\">" + header(reference_gates, ""))
        parts.append("<tr><th>snapshot</th>" + "".join(cell(g, SNAPSHOT) for g in reference_gates) + "</tr></table>")

    parts.append("<h2>Details</h2>")
    for month_key in [*months, SNAPSHOT]:
        section = [r for g in gates if (r := by_key.get((g.id, month_key)))]
        if not section:
            continue
        parts.append(f"<h3>{_e('Reference snapshots' if month_key == SNAPSHOT else month_key)}</h3>"
                     "<table><tr><th>layer</th><th>gate</th><th>result</th><th>failed expectations</th>"
                     "<th>checked</th><th>Data Docs</th></tr>")
        for result in section:
            anchor = f"{result.gate_id}-{month_key}"
            failed = "".join(
                f"<details><summary>[{_e(o.severity)}] {_e(o.name)}: {_e(o.error or o.summary())}</summary>"
                f"{_examples_table(o.examples)}</details>"
                for o in result.failed
            ) or "&mdash;"
            links = " ".join(
                f'<a href="{_e(_rel(page, out_dir / "index.html"))}">{_e("SQL checks" if suite.endswith(".sql") else "expectations")}</a>'
                for suite, page in _gx_pages(site, result)
            ) or "&mdash;"
            parts.append(
                f'<tr id="{_e(anchor)}"><td>{_e(result.layer)}</td><td><code>{_e(result.asset_key)}</code></td>'
                f'<td class="{_e(result.status)}">{_e(_STATUS_LABEL[result.status])}'
                f"{'' if result.rows is None else f'<br><small>{_e(result.rows)} rows</small>'}</td>"
                f"<td>{failed}</td><td><small>{_e(result.checked_at)}</small></td><td>{links}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index


# --- the entry points ---------------------------------------------------------------------------------


def build_quality_docs(warehouse_path: str | Path, out_dir: str | Path | None = None,
                       config: QualityConfig | None = None) -> Path:
    """Build the data-quality docs once (end of a run); returns the landing page's path.

    The gates' state is under the output root (docs/gx); out_dir defaults to docs/quality there,
    i.e. data/docs/quality.
    """
    config = config or load_config()
    paths = QualityPaths.from_settings()
    out = Path(out_dir) if out_dir else paths.site_dir
    site = out / GX_SUBDIR
    prune_validation_results(paths, config)

    project = get_project(paths)
    site_config = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site.resolve())},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "view": _gx_views("EscapingIndexPageView")},
        "site_section_builders": {
            "expectations": {"view": _gx_views("EscapingPageView"), "renderer": {
                "class_name": "ExpectationSuitePageRenderer",
                "column_section_renderer": _gx_views("EscapingExpectationSuiteColumnSectionRenderer")}},
            "validations": {"view": _gx_views("EscapingPageView"), "renderer": {
                "class_name": "ValidationResultsPageRenderer",
                "column_section_renderer": _gx_views("EscapingValidationResultsColumnSectionRenderer")}},
            "profiling": "False",  # no profiling results here: its pages are not rendered at all
        },
    }
    sites = project.context.variables.data_docs_sites or {}
    if sites != {SITE_NAME: site_config}:
        project.context.variables.data_docs_sites = {SITE_NAME: site_config}
        project.context.variables.save()
    project.context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=_pages_to_render(site, paths))
    (site / RENDERING_STAMP).write_text(RENDERING, encoding="utf-8")
    _remove_stale_pages(site, paths)  # pages of pruned results
    unknown = make_offline(site)
    if unknown:
        from dagster import get_dagster_logger

        get_dagster_logger().warning(f"Data Docs referenced URLs with no vendored copy (neutralised): {unknown}")
    return write_landing_page(out, config, load_results(paths))


class DocsRequestHandler(SimpleHTTPRequestHandler):
    """Serves the files of the docs folder, and nothing else: a folder is its index.html (or 404),
    never a listing; a path that leads outside the folder (a symlink) is 404 too."""

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def send_head(self):
        root = Path(self.directory).resolve()
        path = Path(self.translate_path(self.path))
        target = path / "index.html" if path.is_dir() else path
        try:
            resolved = target.resolve(strict=True)
        except (OSError, RuntimeError):
            resolved = None
        if resolved is None or not resolved.is_relative_to(root) or not resolved.is_file():
            self.send_error(404, "File not found")
            return None
        return super().send_head()  # a folder without a trailing slash is redirected to it

    def list_directory(self, path):
        self.send_error(404, "File not found")
        return None


def make_docs_server(directory: str | Path, port: int = 8000) -> ThreadingHTTPServer:
    """An HTTP server of the docs folder on 127.0.0.1 (port 0: any free port)."""
    return ThreadingHTTPServer(("127.0.0.1", port), partial(DocsRequestHandler, directory=str(directory)))


def serve_docs(port: int = 8000, warehouse_path: str | Path | None = None, out_dir: str | Path | None = None,
               open_browser: bool = False) -> None:
    """Serve the data-quality docs on http://127.0.0.1:<port>/ until interrupted (`nexcart docs`).
    Builds them first if they were never built."""
    from orchestration.settings import load_settings

    warehouse_path = warehouse_path or load_settings().warehouse
    out = Path(out_dir) if out_dir else QualityPaths.from_settings().site_dir
    if not (out / "index.html").exists():
        build_quality_docs(warehouse_path, out)
    server = make_docs_server(out, port)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"Data-quality docs: {url}  (offline copy: {out / 'index.html'}); Ctrl-C to stop.", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
