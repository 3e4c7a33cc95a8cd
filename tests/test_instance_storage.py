"""The Dagster instance of dagster_home/dagster.yaml: Dagster's SQLite storage in the instance's own
folder, with the pooled event log (orchestration/dagster_storage.py); same files as Dagster's
default storage, so either reads what the other wrote."""

import shutil
import sqlite3

from dagster import AssetKey, DagsterInstance, asset, materialize

from tests.conftest import PROJECT_ROOT

PROJECT_YAML = PROJECT_ROOT / "dagster_home" / "dagster.yaml"


@asset
def tiny():
    return 1


def _home(path):
    path.mkdir()
    shutil.copyfile(PROJECT_YAML, path / "dagster.yaml")
    return path


def test_the_project_instance_stores_in_its_own_folder_whatever_dagster_home_says(tmp_path, monkeypatch):
    from orchestration.dagster_storage import NexcartInstance, PooledSqliteEventLogStorage

    home = _home(tmp_path / "home")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance, NexcartInstance)
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        run_ids = [materialize([tiny], instance=instance).run_id for _ in range(3)]
        assert instance.get_latest_materialization_event(AssetKey("tiny")).run_id == run_ids[-1]
    assert not (tmp_path / "elsewhere").exists()
    for run_id in run_ids:  # one SQLite file per run, as Dagster's default storage lays them out
        with sqlite3.connect(home / "history" / "runs" / f"{run_id}.db") as con:
            assert con.execute("select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'").fetchone() == (1,)


def test_dagsters_default_storage_reads_what_the_pooled_one_wrote_and_back(tmp_path):
    home = _home(tmp_path / "home")
    with DagsterInstance.from_config(str(home)) as pooled:
        first = materialize([tiny], instance=pooled).run_id
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # Dagster's defaults
    with DagsterInstance.from_config(str(home)) as default:
        assert type(default).__name__ == "DagsterInstance"
        assert default.get_run_by_id(first).is_success
        assert len(default.get_records_for_run(first).records) > 5
        second = materialize([tiny], instance=default).run_id
    shutil.copyfile(PROJECT_YAML, home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as pooled:
        assert pooled.get_latest_materialization_event(AssetKey("tiny")).run_id == second
        pooled.delete_run(first)  # the history pruning of `nexcart run`
        assert pooled.get_run_by_id(first) is None and pooled.get_records_for_run(first).records == []


def test_nexcart_run_sets_up_a_new_dagster_home_with_the_project_settings(tmp_path, monkeypatch):
    from orchestration.cli import _dagster_instance

    home = tmp_path / "new"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = _dagster_instance()
    try:
        assert (home / "dagster.yaml").read_text() == PROJECT_YAML.read_text()
        assert type(instance).__name__ == "NexcartInstance"
    finally:
        instance.dispose()

    used = tmp_path / "used"
    used.mkdir()
    (used / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(used))
    instance = _dagster_instance()
    try:  # a home with anything in it is the user's: left as it is
        assert (used / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
        assert type(instance).__name__ == "DagsterInstance"
    finally:
        instance.dispose()
