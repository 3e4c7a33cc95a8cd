"""`nexcart quarantine list|export|replay`: see what was quarantined, fix it, load the fix.

list    quarantined rows (quality.quarantine) counted by table, month and reason, and how many
        of them a replayed correction has since brought into the clean layer.
export  the open (not yet corrected) quarantined rows of one table and month as a CSV: the
        contract's columns as delivered, where each row came from and why it was quarantined;
        a cell a spreadsheet would run as a formula starts with a quote (neutralise_cell).
replay  checks a corrected CSV (a regular file) against the contract, gives neutralised cells
        their values back (restore_cell), and stores it in the raw root as a correction of that
        month's delivery (<table>/corrections/YYYY-MM/...); orchestration.ingest loads it with
        the month at the next `nexcart run --month YYYY-MM`.

Corrections live in the raw root, not in the warehouse: a rebuilt warehouse keeps them, and a
new delivery of the month supersedes them (see orchestration/ingest.py and docs/bad-input.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import stat
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from orchestration.contract import MONTH_FILE_RE, MONTH_RE, TABLES, RawTable
from orchestration.ingest import (
    CORRECTIONS_DIR,
    IngestError,
    correction_file_name,
    corrections_folder,
    file_checksum,
    monthly_files,
    scan_file,
    stage_file,
)
from orchestration.resources import WarehouseLockedError, connect_with_retry
from orchestration.settings import duckdb_config, load_settings

# Export columns after the contract's. The lineage pair stays in the stored correction (the raw
# layer keeps it in _extra), so each corrected row says which quarantined line it replaces; the
# notes are for the person fixing the rows and are dropped on replay.
LINEAGE_COLUMNS = ("source_file", "source_line")
NOTE_COLUMNS = ("quarantine_column", "quarantine_reason", "raw_line")

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection). The export
# prefixes such a cell with a single quote, as OWASP advises, and so also a cell that already
# starts with quotes followed by one of them ('=x is written ''=x); replay removes exactly one
# leading quote from a cell of that shape, so export -> replay gives every value back as it was.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: object) -> str:
    """A cell as the export writes it: "'" + value if a spreadsheet could read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.lstrip("'").startswith(FORMULA_TRIGGERS) else text


def restore_cell(value: str) -> str:
    """The value of a cell the export neutralised (the inverse of neutralise_cell)."""
    return value[1:] if value.startswith("'") and value.lstrip("'").startswith(FORMULA_TRIGGERS) else value


class QuarantineError(Exception):
    """A quarantine command cannot do what was asked; the message says why and what to do."""


@dataclass(frozen=True)
class QuarantineCount:
    table: str
    month: str | None
    reason: str
    rows: int
    corrected: int


@dataclass(frozen=True)
class ReplayResult:
    table: str
    month: str
    stored: Path
    rows: int
    delivery: str


# --- reading the warehouse --------------------------------------------------------------------


def _open_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    if not path.exists():
        raise QuarantineError(f"There is no warehouse at {path} yet: run `nexcart run` first.")
    con = connect_with_retry(path, read_only=True)
    found = con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'quality' and table_name = 'quarantine'"
    ).fetchone()[0]
    if not found:
        con.close()
        raise QuarantineError(f"The warehouse {path} has no quality.quarantine yet: run `nexcart run` first.")
    return con


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return con.execute(
        "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?", [schema, table]
    ).fetchone()[0] > 0


def _corrected_lines_sql(con: duckdb.DuckDBPyConnection) -> str:
    """(table_name, source_file, source_line) of every quarantined line that a replayed
    correction, now in the clean layer, stands in for (the correction names it in _extra)."""
    parts = [
        f"""
        select '{t}' as table_name,
               json_extract_string(r._extra, '$.source_file') as source_file,
               try_cast(json_extract_string(r._extra, '$.source_line') as bigint) as source_line
        from raw.{t} as r
        join clean.{t} as c on c._source_file = r._source_file and c._source_line = r._source_line
        where r._source_file like '{t}/{CORRECTIONS_DIR}/%'
        """
        for t in TABLES
        if _has_table(con, "clean", t)
    ]
    empty = "select null::varchar as table_name, null::varchar as source_file, null::bigint as source_line where false"
    return " union all ".join(parts) if parts else empty


def _quarantine_sql(con: duckdb.DuckDBPyConnection) -> str:
    """quality.quarantine with a column `corrected`."""
    return f"""
        with corrected_lines as ({_corrected_lines_sql(con)})
        select q.*, exists (
            select 1 from corrected_lines k
            where k.table_name = q.table_name and k.source_file = q.source_file and k.source_line = q.source_line
        ) as corrected
        from quality.quarantine as q
    """


def quarantine_counts(con: duckdb.DuckDBPyConnection, table: str | None = None,
                      month: str | None = None) -> list[QuarantineCount]:
    rows = con.execute(
        f"""
        select table_name, month, reason, count(*), count(*) filter (where corrected)
        from ({_quarantine_sql(con)})
        where ($table is null or table_name = $table) and ($month is null or month = $month)
        group by all
        order by table_name, month nulls first, reason
        """,
        {"table": table, "month": month},
    ).fetchall()
    return [QuarantineCount(*row) for row in rows]


def export_quarantine(con: duckdb.DuckDBPyConnection, table: RawTable, month: str | None, out: Path) -> int:
    """Write the open quarantined rows of the table's month to `out`; the number of rows."""
    rows = con.execute(
        f"""
        select source_file, source_line, column_name, reason, record, stage
        from ({_quarantine_sql(con)})
        where table_name = $table and month is not distinct from $month and not corrected
        order by source_file, source_line
        """,
        {"table": table.name, "month": month},
    ).fetchall()
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="") as stream:
        _write_csv_rows(stream, [[*table.columns, *LINEAGE_COLUMNS, *NOTE_COLUMNS]])
        _write_csv_rows(stream, (
            [neutralise_cell(cell) for cell in [*_contract_values(table, record, stage), source_file, source_line,
                                                column or "", reason, record if stage == "ingest" else ""]]
            for source_file, source_line, column, reason, record, stage in rows
        ))
    return len(rows)


def _write_csv_rows(stream, rows) -> None:
    """CSV rows with '\n' line ends. The csv module quotes a value only for the line terminator's
    characters, so a bare carriage return in a value would end the record for every reader: a row
    with one is written with every value quoted."""
    plain = csv.writer(stream, lineterminator="\n")
    quoted = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        (quoted if any("\r" in str(value) for value in row) else plain).writerow(row)


def _contract_values(table: RawTable, record: str, stage: str) -> list[str]:
    """The row's values as delivered. A line the CSV reader could not split has none: its
    columns are left empty for the user to fill in from raw_line."""
    if stage == "ingest":
        return [""] * len(table.columns)
    values = json.loads(record)
    return ["" if values.get(c) is None else str(values[c]) for c in table.columns]


# --- replaying a corrected file ---------------------------------------------------------------


def _origin(source_file: str) -> tuple[str, str] | None:
    """(table, month) of a monthly file or of one of its corrections, from its path in the raw
    root: 'orders/2024-01.csv', 'orders/corrections/2024-01/...csv'."""
    parts = source_file.split("/")
    if len(parts) == 2 and (match := MONTH_FILE_RE.match(parts[1])):
        return parts[0], match["month"]
    if len(parts) == 4 and parts[1] == CORRECTIONS_DIR and MONTH_RE.match(parts[2]):
        return parts[0], parts[2]
    return None


def _check_regular_file(path: Path) -> None:
    """Replay reads a file: a FIFO, a device (/dev/zero) or a folder would block it or never end."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise QuarantineError(f"{path}: no such file.") from None
    except OSError as exc:
        raise QuarantineError(f"{path}: cannot be read ({exc.strerror}).") from exc
    if stat.S_ISREG(mode):
        return
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    raise QuarantineError(f"{path} is {kind}: replay reads a regular CSV file (an edited export).")


def _read_rows(path: Path, delimiter: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line, fields) of every non-empty record of the user's file, each with as many
    fields as the header; a cell the export neutralised as a formula gets its value back."""
    with open(path, encoding="utf-8-sig", newline="") as stream:
        reader = csv.reader(stream, delimiter=delimiter, strict=True)
        header = [name.strip().lower() for name in next(reader)]
        rows, line = [], 2
        try:
            for fields in reader:
                if any(value.strip() for value in fields):
                    if len(fields) != len(header):
                        raise QuarantineError(
                            f"{path}, line {line}: {len(fields)} fields where the header has {len(header)}.")
                    rows.append((line, [restore_cell(value) for value in fields]))
                line = reader.line_num + 1
        except csv.Error as exc:
            raise QuarantineError(f"{path}, line {reader.line_num}: not valid CSV ({exc}).") from exc
    return header, rows


def _resolve_target(header: list[str], rows: list[tuple[int, list[str]]], path: Path,
                    table: str | None, month: str | None) -> tuple[str, str]:
    """The table and month the correction is for: as given, or as its rows' source_file says.
    Every row naming a source file must name one of that table and month."""
    origins = {}
    if "source_file" in header:
        position = header.index("source_file")
        for line, fields in rows:
            if fields[position].strip():
                origin = _origin(fields[position].strip())
                if origin is None:
                    raise QuarantineError(f"{path}, line {line}: source_file '{fields[position]}' is not a monthly file.")
                origins[origin] = line
    if table is None or month is None:
        if len(origins) != 1:
            raise QuarantineError(
                f"{path}: cannot tell which table and month these rows correct "
                f"({'rows of ' + ', '.join(f'{t} {m}' for t, m in origins) if origins else 'no source_file column'}): "
                "pass --table and --month."
            )
        (found,) = origins
        table, month = table or found[0], month or found[1]
    for (other_table, other_month), line in origins.items():
        if (other_table, other_month) != (table, month):
            raise QuarantineError(
                f"{path}, line {line}: this row comes from {other_table} {other_month}, not {table} {month}; "
                "replay each month's rows in a file of their own."
            )
    return table, month


def _check_columns(table: RawTable, header: list[str], path: Path) -> None:
    known = {*table.columns, *LINEAGE_COLUMNS, *NOTE_COLUMNS}
    unknown = [name for name in header if name not in known]
    if unknown:
        raise QuarantineError(
            f"{path}, line 1: column(s) {', '.join(repr(n) for n in unknown)} are not {table.name} columns. "
            f"A correction has the contract's columns ({', '.join(table.columns)}) and optionally the "
            f"export's {', '.join(LINEAGE_COLUMNS + NOTE_COLUMNS)}."
        )


def _write_correction(target: Path, header: list[str], rows: list[tuple[int, list[str]]]) -> None:
    """The user's rows without the note columns, as comma-separated UTF-8."""
    keep = [i for i, name in enumerate(header) if name not in NOTE_COLUMNS]
    with open(target, "w", encoding="utf-8", newline="") as stream:
        _write_csv_rows(stream, [[header[i] for i in keep], *([fields[i] for i in keep] for _, fields in rows)])


def replay_correction(data_dir: Path, path: Path, table: str | None = None, month: str | None = None,
                      now: datetime | None = None) -> ReplayResult:
    """Validate the corrected CSV at `path` and store it as a correction of its month's current
    delivery; the month's next ingest loads it."""
    _check_regular_file(path)
    try:
        scan = scan_file(path, str(path))
    except IngestError as exc:
        raise QuarantineError(str(exc)) from exc
    header, rows = _read_rows(path, scan.delimiter)
    if not rows:
        raise QuarantineError(f"{path}: no rows to replay.")
    table, month = _resolve_target(header, rows, path, table, month)
    spec = TABLES.get(table)
    if spec is None or not spec.monthly:
        raise QuarantineError(
            f"{table} is not a monthly table: a reference snapshot is corrected by sending the whole "
            f"file again ({table}.csv)."
        )
    _check_columns(spec, header, path)
    delivery = monthly_files(data_dir, spec).get(month)
    if delivery is None:
        raise QuarantineError(f"There is no {table}/{month}.csv in {data_dir} to correct.")

    folder = corrections_folder(data_dir, spec, month)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / correction_file_name(file_checksum(delivery), stamp)
    # Written under a hidden name (ingest skips dot files), checked with the ingest's own reader,
    # then renamed: the month never sees a half-written or unreadable correction.
    pending = folder / f".{target.name}.pending"
    try:
        _write_correction(pending, header, rows)
        _check_with_reader(spec, pending, data_dir, month, path)
        os.replace(pending, target)
    finally:
        pending.unlink(missing_ok=True)
    return ReplayResult(table, month, target, len(rows), delivery.relative_to(data_dir).as_posix())


def _check_with_reader(table: RawTable, pending: Path, data_dir: Path, month: str, user_file: Path) -> None:
    """Read the pending correction exactly as the month's ingest will: the header rules of the
    contract, then every record."""
    pending_rel = pending.relative_to(data_dir).as_posix()
    con = duckdb.connect(config=duckdb_config())
    try:
        staged = stage_file(con, table, pending, data_dir, month, "_replay_check")
    except IngestError as exc:
        raise QuarantineError(str(exc).replace(pending_rel, str(user_file))) from exc
    finally:
        con.close()
    if staged.rejected_lines:
        _, _, reason, record = staged.rejected_lines[0]
        raise QuarantineError(f"{user_file}: the row {record[:80]!r} cannot be read ({reason}).")


# --- the commands -----------------------------------------------------------------------------


def _month_arg(text: str) -> str:
    if not MONTH_RE.match(text):
        raise argparse.ArgumentTypeError(f"'{text}' is not a month: use YYYY-MM, e.g. 2024-03")
    return text


def _format_counts(counts: list[QuarantineCount]) -> str:
    header = ("table", "month", "rows", "corrected", "reason")
    lines = [(c.table, c.month or "-", str(c.rows), str(c.corrected), c.reason) for c in counts]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(4)]
    out = io.StringIO()
    for row in [header, *lines]:
        out.write("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
        out.write(f"  {row[4]}\n")
    total, corrected = sum(c.rows for c in counts), sum(c.corrected for c in counts)
    out.write(f"{total} quarantined row(s), {corrected} corrected since, {total - corrected} open.\n")
    return out.getvalue()


def cmd_list(args: argparse.Namespace) -> int:
    con = _open_warehouse(load_settings().warehouse)
    try:
        counts = quarantine_counts(con, args.table, args.month)
    finally:
        con.close()
    if not counts:
        print("Nothing is quarantined" + (" for that selection." if args.table or args.month else "."))
        return 0
    print(_format_counts(counts), end="")
    print("Fix rows: nexcart quarantine export --table TABLE --month YYYY-MM, correct the file, "
          "then nexcart quarantine replay FILE.")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    table = TABLES[args.table]
    if table.monthly and not args.month:
        raise QuarantineError(f"{table.name} is a monthly table: pass --month YYYY-MM.")
    month = args.month if table.monthly else None
    out = Path(args.out) if args.out else Path(f"quarantine-{table.name}-{month or 'reference'}.csv")
    con = _open_warehouse(load_settings().warehouse)
    try:
        written = export_quarantine(con, table, month, out)
    finally:
        con.close()
    print(f"Wrote {written} open quarantined row(s) of {table.name}{' ' + month if month else ''} to {out}.")
    if written:
        print("Correct the values in the contract's columns (for a line that could not be read, fill them "
              f"in from raw_line; delete a row to leave it quarantined), then: nexcart quarantine replay {out}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    data_dir = load_settings().data_dir
    result = replay_correction(data_dir, Path(args.file), args.table, args.month)
    print(f"Stored {result.rows} corrected row(s) of {result.table} {result.month} as "
          f"{result.stored.relative_to(data_dir).as_posix()} (a correction of {result.delivery}).")
    print(f"Load them: nexcart run --month {result.month}. A new delivery of {result.delivery} "
          "supersedes this correction.")
    return 0


def _reporting_errors(command):
    """Run a command; a QuarantineError or a locked warehouse is a message and exit status 1."""
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (QuarantineError, IngestError, WarehouseLockedError) as exc:
            print(f"nexcart quarantine {args.quarantine_command}: {exc}", file=sys.stderr)
            return 1
    return run


def add_quarantine_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `quarantine list|export|replay` to the `nexcart` command's subparsers."""
    parser = subparsers.add_parser(
        "quarantine", help="list, export and replay quarantined rows",
        description="See what was quarantined (list), write a table's open rows of a month as CSV to "
        "correct (export), and store the corrected CSV as a correction of that month (replay).",
    )
    commands = parser.add_subparsers(dest="quarantine_command", required=True)

    listing = commands.add_parser("list", help="counts of quarantined rows by table, month and reason")
    listing.add_argument("--table", choices=sorted(TABLES), help="only this table")
    listing.add_argument("--month", type=_month_arg, help="only this month, YYYY-MM")
    listing.set_defaults(func=_reporting_errors(cmd_list))

    export = commands.add_parser("export", help="write a table's open quarantined rows of a month as CSV")
    export.add_argument("--table", choices=sorted(TABLES), required=True)
    export.add_argument("--month", type=_month_arg, help="YYYY-MM (required for a monthly table)")
    export.add_argument("--out", help="the CSV to write (default quarantine-<table>-<month>.csv)")
    export.set_defaults(func=_reporting_errors(cmd_export))

    replay = commands.add_parser("replay", help="store a corrected CSV as a correction of its month")
    replay.add_argument("file", help="the corrected CSV (an edited export)")
    replay.add_argument("--table", choices=sorted(TABLES), help="default: from the rows' source_file")
    replay.add_argument("--month", type=_month_arg, help="default: from the rows' source_file")
    replay.set_defaults(func=_reporting_errors(cmd_replay))
