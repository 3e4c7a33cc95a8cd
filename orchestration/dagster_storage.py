"""The Dagster instance's storage: Dagster's own SQLite storage, with an event log that keeps its
connections open.

Why: a `nexcart run` of 24 months writes ~3,500 events (1,152 of them "materialization planned"
before the first step starts), and Dagster's SqliteEventLogStorage opens a new SQLAlchemy engine
and SQLite connection for each event, commits with a full fsync and closes it again, twice for an
asset event (the run's file and the cross-run index). Measured on the default sample (one run,
benchmarks/README.md): 106 s with Dagster's storage, 85 s with this one. This storage keeps one connection per database file (the eight
most recently used) and commits with `synchronous=NORMAL`, which in the WAL mode Dagster already
uses is safe against a crash of the process (a power cut may lose the last events of the run
history, never the warehouse: that is written and published by the run itself).

Same files, same schema and same layout as Dagster's default `storage: sqlite`, so a DAGSTER_HOME
can switch between the two either way. dagster_home/dagster.yaml selects it with
`instance_class: NexcartInstance`: an instance class is the one place Dagster tells the folder of
the dagster.yaml it reads (a `storage:` entry would need DAGSTER_HOME set to that same folder).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

OPEN_DATABASES = 8  # a run writes two (its own file and the index); the UI reads a few more


def _commit_without_fsync(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage with one open connection per database file instead of one per event."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir, inst_data)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        # StaticPool: one connection, shared by the threads of the process; every use holds
        # self._db_lock (below), as Dagster's own storage does.
        engine = create_engine(
            self.conn_string_for_shard(shard), poolclass=StaticPool,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        event.listen(engine, "connect", _commit_without_fsync)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > OPEN_DATABASES:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            with self._engine(shard).connect() as conn, conn.begin():
                yield conn

    def dispose(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()
        super().dispose()


class NexcartSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (runs, schedules, event log) with the pooled event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data)
        self._event_log_storage.dispose()
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> NexcartSqliteStorage:
        # Dagster's own returns a DagsterSqliteStorage whatever the class it is called on
        return cls.from_local(inst_data=inst_data, **config_value)


class NexcartInstance(DagsterInstance):
    """A Dagster instance whose default storage (no `storage:` in dagster.yaml) is
    NexcartSqliteStorage in the instance's own folder; everything else as Dagster's default."""

    @classmethod
    def config_schema(cls) -> dict:
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> dict[str, ConfigurableClassData | None]:
        import yaml

        defaults = dict(InstanceRef.config_defaults(base_dir))
        defaults["storage"] = ConfigurableClassData(
            __name__, NexcartSqliteStorage.__name__, yaml.dump({"base_dir": base_dir}, default_flow_style=False))
        return defaults
