"""The Dagster UI, for real (issue 5): `dagster dev` with the project's workspace.yaml and
dagster.yaml on 127.0.0.1 and a free port, asked through its GraphQL API for the asset graph, the
checks, the schedule and the sensors; one month launched and followed to success, then the quality
docs rebuilt by the daemon's sensor; the server stopped by its PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import requests

from tests.conftest import PROJECT_ROOT

DAGSTER = Path(sys.executable).parent / "dagster"
REPOSITORY = {"repositoryLocationName": "nexcart", "repositoryName": "__repository__"}
START_TIMEOUT = 300
RUN_TIMEOUT = 900
DOCS_TIMEOUT = 120


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a listening TCP socket on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as stream:
            next(stream)
            for line in stream:
                local, state = line.split()[1], line.split()[3]
                address, port_hex = local.rsplit(":", 1)
                if state == "0A" and int(port_hex, 16) == port:
                    found.add(address)
    return found


class DagsterDev:
    """`dagster dev -w workspace.yaml -h 127.0.0.1 -p <port>`, in its own session."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "dagster-dev.log"
        self.stream = open(self.log, "w")
        self.process = subprocess.Popen(
            [str(DAGSTER), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=PROJECT_ROOT, env=env, stdout=self.stream, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output(self) -> str:
        self.stream.flush()
        return self.log.read_text()[-6000:]

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"dagster dev exited:\n{self.output()}"
            try:
                if requests.get(f"{self.url}/server_info", timeout=5).ok and self.location_loaded():
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise AssertionError(f"dagster dev did not come up in {START_TIMEOUT} s:\n{self.output()}")

    def location_loaded(self) -> bool:
        """True once the code location `nexcart` has loaded; fails if it loaded with an error."""
        data = self.graphql("""{ workspaceOrError { __typename ... on Workspace { locationEntries {
            name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }""")
        for entry in data["workspaceOrError"].get("locationEntries", []):
            if entry["name"] == "nexcart" and entry["loadStatus"] == "LOADED":
                loaded = entry["locationOrLoadError"] or {}
                assert loaded.get("__typename") == "RepositoryLocation", (
                    f"the code location failed to load: {loaded.get('message')}\n{self.output()}")
                return True
        return False

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                 timeout=120)
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def stop(self) -> int | None:
        """SIGINT to dagster dev's PID (it stops the webserver, the daemon and the code server),
        then the whole session if it does not exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=30)
        self.stream.close()
        return self.process.returncode


@pytest.fixture
def ui(tmp_path):
    from orchestration.sample_data import generate

    raw = tmp_path / "raw"
    generate(raw, orders=600, months=2, start_month="2024-01", seed=3, defect_rate=0.0)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "NEXCART_DATA_DIR": str(raw),
        "NEXCART_WAREHOUSE": str(tmp_path / "warehouse" / "nexcart.duckdb"),
        "NEXCART_OUTPUT_DIR": str(tmp_path),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    server = DagsterDev(tmp_path, env)
    try:
        server.wait_until_ready()
        yield server
    finally:
        server.stop()
        assert server.process.poll() is not None, "dagster dev is still running"


ASSETS = """{ assetNodes { assetKey { path } groupName
    assetChecksOrError { __typename ... on AssetChecks { checks { name } } } } }"""

AUTOMATION = """query($repo: RepositorySelector!) {
  schedulesOrError(repositorySelector: $repo) { __typename
    ... on Schedules { results { name cronSchedule executionTimezone pipelineName
                                 scheduleState { status } } } }
  sensorsOrError(repositorySelector: $repo) { __typename
    ... on Sensors { results { name sensorState { status } } } } }"""

LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message } } }"""

RUN = """query($runId: ID!) { runOrError(runId: $runId) { __typename
    ... on Run { status tags { key value } } } }"""

FAILURE_EVENTS = """query($runId: ID!) { logsForRun(runId: $runId, limit: 5000) { __typename
    ... on EventConnection { events { __typename ... on MessageEvent { message } } } } }"""


def test_the_ui_serves_the_graph_and_runs_a_month(ui, tmp_path):
    # It listens on the loopback interface only.
    assert listening_addresses(ui.port) == {"0100007F"}

    nodes = ui.graphql(ASSETS)["assetNodes"]
    groups = {node["groupName"] for node in nodes}
    assert {"raw", "staging", "clean", "marts"} <= groups
    by_key = {"/".join(node["assetKey"]["path"]): node for node in nodes}
    assert {"raw/orders", "staging/stg_orders", "clean/orders", "marts/monthly_revenue"} <= set(by_key)
    checks = {key: {c["name"] for c in node["assetChecksOrError"].get("checks", [])} for key, node in by_key.items()}
    assert "freshness_check" in checks["marts/monthly_revenue"]
    assert sum(len(names) for names in checks.values()) > 10, "the dbt tests show as asset checks"

    automation = ui.graphql(AUTOMATION, {"repo": REPOSITORY})
    schedules = {s["name"]: s for s in automation["schedulesOrError"]["results"]}
    schedule = schedules["monthly_refresh_schedule"]
    assert (schedule["pipelineName"], schedule["cronSchedule"]) == ("monthly_refresh", "0 6 1 * *")
    assert schedule["scheduleState"]["status"] in ("STOPPED", "RUNNING")
    sensors = {s["name"]: s["sensorState"]["status"] for s in automation["sensorsOrError"]["results"]}
    assert {"raw_files_sensor", "run_failure_log"} <= set(sensors)
    assert sensors["quality_docs_on_success"] == sensors["quality_docs_on_failure"] == "RUNNING"

    month = "2024-02"
    launched_at = time.time()
    launched = ui.graphql(LAUNCH, {"params": {
        "selector": {**REPOSITORY, "jobName": "monthly_refresh"},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": month}]},
    }})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    deadline = time.monotonic() + RUN_TIMEOUT
    status = None
    while time.monotonic() < deadline:
        status = ui.graphql(RUN, {"runId": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    if status != "SUCCESS":
        events = ui.graphql(FAILURE_EVENTS, {"runId": run_id})["logsForRun"].get("events", [])
        messages = "\n".join(e.get("message", "") for e in events[-40:])
        raise AssertionError(f"run {run_id} ended {status}:\n{messages}\n{ui.output()}")

    # The run published the month to the warehouse users query.
    con = duckdb.connect(str(tmp_path / "warehouse" / "nexcart.duckdb"), read_only=True)
    try:
        months = con.execute("select distinct strftime(month, '%Y-%m') from marts.monthly_revenue").fetchall()
    finally:
        con.close()
    assert (month,) in months

    # The daemon's sensor rebuilt the quality docs after the run, with the month it validated.
    docs = tmp_path / "docs" / "quality" / "index.html"
    deadline = time.monotonic() + DOCS_TIMEOUT
    while not (docs.exists() and docs.stat().st_mtime > launched_at) and time.monotonic() < deadline:
        time.sleep(2)
    assert docs.exists() and docs.stat().st_mtime > launched_at, (
        f"no quality docs {DOCS_TIMEOUT} s after the run:\n{ui.output()}")
    assert f"<th>{month}</th>" in docs.read_text(encoding="utf-8")

    assert ui.stop() is not None


def test_make_ui_binds_to_loopback():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    recipe = makefile.split("\nui:", 1)[1].split("\n\n", 1)[0]
    assert "dagster dev -w workspace.yaml -h 127.0.0.1" in recipe
