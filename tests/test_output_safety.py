"""What the pipeline writes for people to open is safe to open (issue #11): values from the data
never run as script in the quality docs or the monthly report (real GX, real DuckDB, headless
Chromium with networking off), the quarantine export runs no formula in a spreadsheet and replays
exactly, replay reads regular files only, and `nexcart docs` serves files only.
"""

from __future__ import annotations

import csv
import http.client
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import duckdb
import pytest
import requests

from orchestration.contract import TABLES
from orchestration.ingest import ensure_raw_schema
from orchestration.quality import build_quality_docs, load_config
from orchestration.quality.docs import make_docs_server
from orchestration.quality.gates import run_gate
from orchestration.quality.gx_project import QualityPaths
from orchestration.quality.suites import EXPECTATIONS_DIR
from orchestration.quarantine import LINEAGE_COLUMNS, NOTE_COLUMNS
from orchestration.reporting import render_index, render_month_report
from tests.conftest import write_csv
from tests.test_quality import build_small_warehouse
from tests.test_quarantine_replay import ORDER_HEADER
from tests.test_report import MONTH as REPORT_MONTH
from tests.test_report import make_warehouse

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium): apt-get install -y chromium")

# Script that marks <body> when it runs; the mark's name is not in the payload's text ('pw' + 'ned'),
# so the dumped DOM has it only if the script ran. It closes an attribute first, in case the value
# lands in one, and tries an event handler and a <script> element.
PAYLOAD = ("\"'><img src=x onerror=\"document.body.setAttribute('data-pw'+'ned','img')\">"
           "<script>document.body.setAttribute('data-pw'+'ned','script')</script>")
RAN = "data-pwned"
# How the payload shows when it is text: Chromium's DOM dump escapes '<' and '>' in text nodes.
AS_TEXT = "&lt;img src=x onerror="


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def chromium_dom(page: Path | str, tmp: Path, budget_ms: int = 5000) -> str:
    """The DOM of a page after its scripts ran, in headless Chromium with networking off."""
    profile = tmp / "chromium-profile"
    profile.mkdir(exist_ok=True)
    url = page if isinstance(page, str) else page.resolve().as_uri()
    completed = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--proxy-server=127.0.0.1:9",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1400,3000",
         f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
        capture_output=True, text=True, timeout=180, env={**os.environ, "HOME": str(tmp)},
    )
    assert "</body>" in completed.stdout, (page, completed.stderr[-2000:])
    return completed.stdout


# ------------------------------------------------------------------------ the quality docs

PROBE_NAME = PAYLOAD + "name"  # a text column
PROBE_CODE = PAYLOAD + "code"  # a text column whose *name* is a payload
PROBE_QTY = PAYLOAD + "qty"  # a numeric column whose name is a payload


def _probe_gate_yaml() -> str:
    """A gate on clean.probe (a table of payloads) with the expectation kinds the suites use, a
    few more, and a SQL check whose name and examples carry payloads. JSON strings are YAML."""
    j = json.dumps
    examples = f"select name, {_quote(PROBE_CODE)}, {_quote(PROBE_QTY)} as {_quote(PAYLOAD)} from clean.probe"
    return f"""
  - table: probe
    asset: clean/probe
    relation: clean.probe
    example_columns: [name]
    expectations:
      - type: expect_column_values_to_be_in_set
        column: name
        value_set: [ok]
        severity: warn
      - type: expect_column_values_to_match_regex
        name: {j(PAYLOAD + " regex")}
        column: {j(PROBE_CODE)}
        regex: "^[A-Z]+$"
        severity: warn
      - type: expect_column_values_to_be_between
        column: {j(PROBE_QTY)}
        min_value: 0
        max_value: 1
        severity: warn
      - type: expect_column_max_to_be_between
        column: {j(PROBE_QTY)}
        max_value: 1
        severity: warn
      - type: expect_column_values_to_be_unique
        column: name
        severity: warn
      - type: expect_compound_columns_to_be_unique
        column_list: [name, {j(PROBE_CODE)}]
        severity: warn
      - type: expect_column_values_to_not_be_in_set
        column: {j(PROBE_CODE)}
        value_set: [{j(PROBE_CODE)}]
        severity: warn
      - type: expect_column_most_common_value_to_be_in_set
        column: name
        value_set: [ok]
        severity: warn
    sql_checks:
      - name: {j(PAYLOAD + " sql check")}
        severity: warn
        metric: select count(*) from clean.probe
        max: 0
        examples: {j(examples)}
"""


@pytest.fixture
def payload_docs(tmp_path: Path) -> Path:
    """The quality docs of a warehouse whose data carries payloads: clean.orders (currency: a
    regex expectation; status: a value set; customer_id: an example row of a SQL check), and the
    probe gate (column names, a between expectation, compound keys, observed values)."""
    warehouse = build_small_warehouse(tmp_path / "warehouse" / "nexcart.duckdb")
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("update clean.orders set currency = ?, status = ? where order_id = 'O1'",
                    [PAYLOAD + "currency", PAYLOAD + "status"])
        con.execute("update clean.orders set customer_id = ? where order_id = 'O2'", [PAYLOAD + "customer"])
        con.execute(f"create table clean.probe (name varchar, {_quote(PROBE_CODE)} varchar, {_quote(PROBE_QTY)} integer)")
        con.executemany("insert into clean.probe values (?, ?, ?)",
                        [[PROBE_NAME, PROBE_CODE, 2], [PROBE_NAME, PROBE_CODE, 3], ["ok", "ABC", 1]])
    finally:
        con.close()

    suites = tmp_path / "expectations"
    shutil.copytree(EXPECTATIONS_DIR, suites)
    with open(suites / "clean.yml", "a", encoding="utf-8") as stream:
        stream.write(_probe_gate_yaml())
    config = load_config(suites)
    paths = QualityPaths.from_settings()
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        orders = run_gate(con, config.gate("clean.orders"), "2024-01", config=config, paths=paths)
        probe = run_gate(con, config.gate("clean.probe"), None, config=config, paths=paths)
    finally:
        con.close()
    # the payloads did reach the results: each kind of check failed on them
    failed = {o.name for o in orders.failed}
    assert {"column_values_to_be_in_set (status)", "currency is an ISO 4217 code",
            "orphan order rate (unknown customer)"} <= failed, failed
    assert len(probe.failed) == 9, [(o.name, o.summary()) for o in probe.failed]
    return build_quality_docs(warehouse, config=config)


def test_quality_docs_hold_no_markup_from_the_data(payload_docs: Path):
    """Fast, and names the place: no page has the payload's markup as markup."""
    out = payload_docs.parent
    pages = [p for p in out.rglob("*.html") if "vendor" not in p.parts]
    assert len(pages) >= 8
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for markup in ("<img src=x onerror", "<script>document.body"):
            assert markup not in text, (page.relative_to(out), text[max(0, text.find(markup) - 300):][:400])


@pytest.mark.browser
@needs_chromium
def test_quality_docs_run_no_script_from_the_data_in_a_browser(payload_docs: Path, tmp_path: Path):
    out = payload_docs.parent
    pages = sorted(p for p in out.rglob("*.html") if "vendor" not in p.parts)
    doms = {page.relative_to(out).as_posix(): chromium_dom(page, tmp_path) for page in pages}
    for name, dom in doms.items():
        assert RAN not in dom, f"{name}: a value from the data ran as script"

    def dom_of(pattern: str) -> str:
        (page,) = [p for p in pages if p.match(pattern)]
        return doms[page.relative_to(out).as_posix()]

    # ... and the values are shown, as text, where people look for them
    orders_page = dom_of("gx/validations/clean/orders/2024-01/*/*.html")
    assert orders_page.count(AS_TEXT) >= 2  # the unexpected currency and status
    assert 'class="bootstrap-table' in orders_page  # the page's own scripts still ran
    probe_page = dom_of("gx/validations/clean/probe/snapshot/*/*.html")
    assert probe_page.count(AS_TEXT) >= 8  # column names, unexpected values, observed values
    assert dom_of("gx/expectations/clean/probe.html").count(AS_TEXT) >= 2  # column names in the suite
    landing = doms["index.html"]
    assert landing.count(AS_TEXT) >= 6  # failed expectations, observed values, example rows
    assert "&lt;/script&gt;customer</td>" in landing  # the SQL check's example row
    assert "gx/index.html" in doms and "gx/expectations/clean/orders.html" in doms


def test_a_site_rendered_before_the_escaping_views_is_rendered_again(payload_docs: Path, tmp_path: Path):
    """Pages of older builds are kept (a build renders only new results): one rendered by the
    unescaping views must not stay. The site's stamp says how it was rendered."""
    page = next((payload_docs.parent / "gx" / "validations").glob("clean/orders/2024-01/*/*.html"))
    page.write_text("<html><body><img src=x onerror=alert(1)></body></html>", encoding="utf-8")
    (payload_docs.parent / "gx" / ".rendering").unlink(missing_ok=True)  # as a site built before the stamp
    build_quality_docs(tmp_path / "warehouse" / "nexcart.duckdb", config=load_config(tmp_path / "expectations"))
    assert "<img src=x onerror" not in page.read_text(encoding="utf-8")


# ------------------------------------------------------------------------ the monthly report


@pytest.mark.browser
@needs_chromium
def test_the_monthly_report_runs_no_script_from_the_data(tmp_path: Path):
    warehouse = make_warehouse(tmp_path / "data" / "warehouse" / "nexcart.duckdb")
    month = f"{REPORT_MONTH}-01"
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("update marts.monthly_top_products set product_name = ? || product_name, category = ? || category "
                    "where rank <= 3", [PAYLOAD + "product", PAYLOAD + "category"])
        con.execute("update marts.monthly_channel_performance set channel_name = ? || channel_name "
                    "where channel_id = 'web'", [PAYLOAD + "channel"])
        con.execute("update marts.monthly_geo_sales set region = ? || region where region = 'Texas'",
                    [PAYLOAD + "region"])
        con.execute("update marts.monthly_category_region_rank set region = ? || region, category = ? || category "
                    "where region = 'Texas'", [PAYLOAD + "region", PAYLOAD + "category"])
        assert con.execute("select count(*) from marts.monthly_top_products where month = ? and product_name like '%<img%'",
                           [month]).fetchone()[0] == 3
    finally:
        con.close()
    out = tmp_path / "reports"
    report = render_month_report(warehouse, REPORT_MONTH, out)
    index = render_index(out)

    dom = chromium_dom(report.path, tmp_path, budget_ms=20000)
    assert 'data-charts="done"' in dom  # the charts were drawn with the payloads in their data
    assert RAN not in dom
    assert dom.count(AS_TEXT) >= 3  # the top products table shows the names as text
    index_dom = chromium_dom(index, tmp_path)
    assert RAN not in index_dom and "</body>" in index_dom


# ------------------------------------------------------------------------ the quarantine export

# A cell starting with one of these is a formula to a spreadsheet (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Values of quarantined rows that a spreadsheet would run (or that look like the export's quote).
ORDER_VALUES = {"order_id": "O7", "customer_id": "=1+1", "channel_id": "+x", "order_ts": "2024-01-07 10:00:00",
                "status": "@SUM(A1)", "currency": "'=x", "ship_city": "\tAustin", "ship_region": "\rTX",
                "ship_country": "'plain", "shipping_amount": "-5"}
ITEM_VALUES = {"order_id": "O1", "line_number": "2", "product_id": "P1", "quantity": "-5", "unit_price": "10.00",
               "discount_amount": "-0.50"}
UNREADABLE_LINE = "=HYPERLINK(\"http://x\"),,"


@pytest.fixture
def quarantined(pipeline):
    """A raw root with January's deliveries and a warehouse whose quality.quarantine holds rows
    with such values (as the dbt model writes it), for the real `nexcart quarantine` CLI."""
    write_csv(pipeline.raw / "orders/2024-01.csv", ORDER_HEADER,
              "O1,C1,CH1,2024-01-05 10:00:00,paid,USD,Austin,TX,US,5.00")
    write_csv(pipeline.raw / "order_items/2024-01.csv", ",".join(TABLES["order_items"].columns),
              "O1,1,P1,2,10.00,0")
    pipeline.warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(pipeline.warehouse))
    try:
        ensure_raw_schema(con)
        con.execute("create schema quality")
        con.execute("create table quality.quarantine (table_name varchar, month varchar, source_file varchar, "
                    "source_line bigint, column_name varchar, reason varchar, record varchar, record_key varchar, "
                    "stage varchar)")
        con.executemany("insert into quality.quarantine values (?, '2024-01', ?, ?, ?, ?, ?, null, ?)", [
            ["orders", "orders/2024-01.csv", 3, "shipping_amount", "negative_amount", json.dumps(ORDER_VALUES), "clean"],
            ["orders", "orders/2024-01.csv", 4, None, "wrong_field_count", UNREADABLE_LINE, "ingest"],
            ["order_items", "order_items/2024-01.csv", 3, "quantity", "non_positive_quantity",
             json.dumps(ITEM_VALUES), "clean"],
        ])
    finally:
        con.close()
    return pipeline


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as stream:
        return list(csv.reader(stream))


def test_export_neutralises_formulas_and_replay_gives_the_values_back_exactly(quarantined, tmp_path: Path):
    exported = tmp_path / "orders-fix.csv"
    quarantined.nexcart("quarantine", "export", "--table", "orders", "--month", "2024-01", "--out", str(exported))
    header, *rows = read_csv(exported)
    cells = [cell for row in rows for cell in row]
    # no cell a spreadsheet would run: every one that starts like a formula is behind a quote
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)], cells
    by_line = {row[header.index("source_line")]: dict(zip(header, row)) for row in rows}
    clean_row = by_line["3"]
    assert clean_row["customer_id"] == "'=1+1" and clean_row["channel_id"] == "'+x"
    assert clean_row["status"] == "'@SUM(A1)" and clean_row["shipping_amount"] == "'-5"
    assert clean_row["ship_city"] == "'\tAustin" and clean_row["ship_region"] == "'\rTX"
    assert clean_row["currency"] == "''=x"  # a quote of its own: replay can tell it from the export's
    assert clean_row["ship_country"] == "'plain" and clean_row["order_id"] == "O7"  # left as they are
    assert by_line["4"]["raw_line"] == "'" + UNREADABLE_LINE

    # the user deletes the row they cannot fix (the unreadable line) and replays the rest as exported
    with open(exported, "w", encoding="utf-8", newline="") as stream:
        csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows([header, [*by_line["3"].values()]])
    done = quarantined.nexcart("quarantine", "replay", str(exported))
    assert "Stored 1 corrected row(s) of orders 2024-01" in done.stdout
    (stored,) = (quarantined.raw / "orders/corrections/2024-01").glob("*.csv")
    stored_header, stored_row = read_csv(stored)
    assert stored_header == [*TABLES["orders"].columns, *LINEAGE_COLUMNS]
    assert dict(zip(stored_header, stored_row)) == {**ORDER_VALUES, "source_file": "orders/2024-01.csv",
                                                    "source_line": "3"}


def test_a_negative_quantity_is_exported_quoted_and_replayed_as_the_number(quarantined, tmp_path: Path):
    exported = tmp_path / "items-fix.csv"
    quarantined.nexcart("quarantine", "export", "--table", "order_items", "--month", "2024-01", "--out",
                        str(exported))
    header, row = read_csv(exported)
    values = dict(zip(header, row))
    assert values["quantity"] == "'-5" and values["discount_amount"] == "'-0.50" and values["unit_price"] == "10.00"
    assert values["quarantine_reason"] == "non_positive_quantity"
    quarantined.nexcart("quarantine", "replay", str(exported))
    (stored,) = (quarantined.raw / "order_items/corrections/2024-01").glob("*.csv")
    stored_header, stored_row = read_csv(stored)
    assert dict(zip(stored_header, stored_row)) == {**ITEM_VALUES, "source_file": "order_items/2024-01.csv",
                                                    "source_line": "3"}
    assert not set(NOTE_COLUMNS) & set(stored_header)


# ------------------------------------------------------------------------ replay reads files only


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_replay_refuses_what_is_not_a_regular_file_and_names_it(quarantined, tmp_path: Path, kind: str):
    if kind == "fifo":
        target = tmp_path / "fix.csv"
        os.mkfifo(target)  # no writer: opening it for reading would block for ever
    elif kind == "device":
        target = Path("/dev/zero")  # endless: reading it would never end
    else:
        target = tmp_path / "folder"
        target.mkdir()
    try:
        # a regression hangs: the timeout kills the command and fails the test
        done = quarantined.nexcart("quarantine", "replay", str(target), check=False, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"nexcart quarantine replay {target} did not return")
    assert done.returncode == 1, done.stdout + done.stderr
    assert str(target) in done.stderr
    expected = {"fifo": "a FIFO", "device": "a device", "directory": "a directory"}[kind]
    assert expected in done.stderr and "regular" in done.stderr
    assert not (quarantined.raw / "orders" / "corrections").exists()


# ------------------------------------------------------------------------ `nexcart docs`


@pytest.fixture
def docs_server(tmp_path: Path):
    """The real docs server on an ephemeral port of 127.0.0.1, over a folder shaped like the docs
    (a landing page, the GX site with its index, folders without one) and a secret next to it."""
    out = tmp_path / "docs" / "quality"
    write_csv(out / "index.html", "<html><body>NexCart data quality</body></html>")
    write_csv(out / "gx" / "index.html", "<html><body>GX index</body></html>")
    write_csv(out / "gx" / "validations" / "clean" / "orders" / "page.html", "<html><body>a page</body></html>")
    (out / "gx" / "static").mkdir()
    write_csv(tmp_path / "secret.txt", "do not serve")
    (out / "gx" / "outside").symlink_to(tmp_path)  # a link out of the docs folder
    (out / "gx" / "secret.txt").symlink_to(tmp_path / "secret.txt")
    server = make_docs_server(out, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_docs_server_serves_files_and_index_pages_only(docs_server):
    host, port = docs_server.server_address
    assert host == "127.0.0.1"
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> requests.Response:
        return requests.get(base + path, timeout=10, allow_redirects=True)

    assert get("/").status_code == 200 and "NexCart data quality" in get("/").text
    assert get("/gx/").status_code == 200 and "GX index" in get("/gx/").text
    assert get("/gx").text.strip().endswith("GX index</body></html>")  # redirected to /gx/
    assert get("/gx/validations/clean/orders/page.html").status_code == 200
    for folder in ("/gx/validations/", "/gx/validations", "/gx/validations/clean/orders/", "/gx/static/"):
        response = get(folder)
        assert response.status_code == 404, folder
        assert "Directory listing" not in response.text and "page.html" not in response.text, folder
    for outside in ("/gx/outside/secret.txt", "/gx/secret.txt", "/gx/outside/"):
        response = get(outside)
        assert response.status_code == 404 and "do not serve" not in response.text, outside


def test_docs_server_never_serves_a_path_outside_the_folder(docs_server):
    """Raw request targets, as a client that does not normalise the path would send them."""
    port = docs_server.server_address[1]
    for target in ("/../../secret.txt", "/%2e%2e/%2e%2e/secret.txt", "/gx/../../../secret.txt",
                   "//etc/passwd", "/..%2f..%2fsecret.txt"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", target)
            response = connection.getresponse()
            body = response.read().decode("utf-8", "replace")
        finally:
            connection.close()
        assert "do not serve" not in body and "root:" not in body, target
        assert response.status in (404, 301), (target, response.status)


def test_gate_metadata_shown_in_the_dagster_ui_escapes_values_from_the_data():
    """The failures and example rows of a gate are Markdown in the UI: a value (or a column name)
    from the data is text there, never markup."""
    from orchestration.quality.checks import result_metadata
    from orchestration.quality.gates import GateResult, Outcome

    payload = "<img src=x onerror=alert(1)>"
    outcome = Outcome(name="currency is an ISO 4217 code", kind="expectation", type="expect_column_values_to_match_regex",
                      severity="warn", success=False, observed=payload, unexpected_count=1, element_count=3,
                      examples=[{"currency": payload, payload: "x|y"}], expected="^[A-Z]{3}$")
    result = GateResult("clean.orders", "clean", "orders", "clean/orders", "2024-01", "now", 3, [outcome])
    meta = result_metadata(result)
    for key in ("failures", "example_rows"):
        text = meta[key].value
        assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "x\\|y" in meta["example_rows"].value
