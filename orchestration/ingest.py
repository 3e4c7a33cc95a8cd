"""Load a retailer's CSV files into the raw layer of the warehouse.

Every contract column is loaded as text, so no value is lost before the staging layer decides
what it means, plus lineage (_source_file, _source_line, _month, _loaded_at) and the unknown
extra columns as JSON (_extra). DuckDB's own CSV reader does the reading; Python only looks at
the header and the bytes, to give structural errors a file, line and column.

Structural problems fail the load with an IngestError naming the file and the problem. Lines
that cannot be read as a record (wrong field count, broken quoting) go to
raw.<table>_rejected_lines with their line number and reason, and the load goes on. Every line
is accounted for: loaded rows + rejected lines = the file's records.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import gzip
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestration.contract import MONTH_FILE_RE, TABLES, RawTable

CHUNK = 1 << 20
SUPPORTED_DELIMITERS = (",", ";", "\t")


class IngestError(Exception):
    """A file the pipeline cannot load as a whole; the message says which file and why."""


@dataclass
class FileScan:
    """What one pass over a file's bytes tells: checksum, line count, header."""

    checksum: str
    physical_lines: int
    header: list[str]
    delimiter: str
    data_bytes: int


@dataclass
class IngestResult:
    table: str
    month: str | None
    source_file: str | None
    checksum: str | None = None
    rows_loaded: int = 0
    lines_rejected: int = 0
    extra_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- the raw layer's tables -------------------------------------------------------------------


def raw_table_ddl(table: RawTable) -> list[str]:
    cols = ", ".join(f'"{c}" VARCHAR' for c in table.columns)
    return [
        f"create table if not exists raw.{table.name} ({cols}, _extra VARCHAR, _source_file VARCHAR, "
        "_source_line BIGINT, _month VARCHAR, _loaded_at TIMESTAMP)",
        f"create table if not exists raw.{table.name}_rejected_lines (source_file VARCHAR, "
        "source_line BIGINT, _month VARCHAR, column_name VARCHAR, reason VARCHAR, record VARCHAR, "
        "_loaded_at TIMESTAMP)",
    ]


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every raw table, so a table no file was delivered for is empty, not missing."""
    con.execute("create schema if not exists raw")
    for table in TABLES.values():
        for ddl in raw_table_ddl(table):
            con.execute(ddl)
    con.execute(
        "create table if not exists raw._ingest_log (table_name VARCHAR, _month VARCHAR, "
        "source_file VARCHAR, checksum VARCHAR, rows_loaded BIGINT, lines_rejected BIGINT, "
        "_loaded_at TIMESTAMP)"
    )


# --- finding files ----------------------------------------------------------------------------


def monthly_files(data_dir: Path, table: RawTable) -> dict[str, Path]:
    """The monthly files of a table by month; a file not named after a month is an error."""
    folder = data_dir / table.name
    if not folder.is_dir():
        return {}
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "_")):
            continue
        match = MONTH_FILE_RE.match(path.name)
        if not match:
            raise IngestError(
                f"{_rel(data_dir, path)}: not a monthly file name; monthly drops are named "
                f"YYYY-MM.csv or YYYY-MM.csv.gz (e.g. {table.name}/2024-01.csv). Rename it or move it "
                "out of the raw root."
            )
        month = match["month"]
        if month in found:
            raise IngestError(
                f"{table.name}/: both {found[month].name} and {path.name} hold {month}; keep one."
            )
        found[month] = path
    return found


def reference_file(data_dir: Path, table: RawTable) -> Path | None:
    candidates = [p for p in (data_dir / f"{table.name}.csv", data_dir / f"{table.name}.csv.gz") if p.exists()]
    if len(candidates) > 1:
        raise IngestError(f"both {table.name}.csv and {table.name}.csv.gz are in the raw root; keep one.")
    return candidates[0] if candidates else None


def discover_months(data_dir: Path) -> list[str]:
    """Every month that has a file of any monthly table (names that are not months are skipped
    here; loading them is what reports them)."""
    months: set[str] = set()
    for table in TABLES.values():
        folder = data_dir / table.name
        if table.monthly and folder.is_dir():
            months.update(m["month"] for p in folder.iterdir() if (m := MONTH_FILE_RE.match(p.name)))
    return sorted(months)


def _rel(data_dir: Path, path: Path) -> str:
    try:
        return path.relative_to(data_dir).as_posix()
    except ValueError:
        return str(path)


def _check_inside_root(data_dir: Path, path: Path, rel: str) -> Path:
    """Refuse a file (or a symlink) that resolves outside the raw root."""
    resolved = path.resolve()
    if not resolved.is_relative_to(data_dir.resolve()):
        raise IngestError(f"{rel}: points outside the raw root ({resolved}); refused.")
    return resolved


# --- reading the bytes ------------------------------------------------------------------------


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def scan_file(path: Path, rel: str) -> FileScan:
    """One streaming pass: checksum of the bytes as delivered, UTF-8 validity with the line and
    column of the first bad byte, the number of lines, and the header."""
    sha = hashlib.sha256()
    with open(path, "rb") as raw:
        for chunk in iter(lambda: raw.read(CHUNK), b""):
            sha.update(chunk)

    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines, total, last_byte = 0, 0, b""
    first_line = bytearray()
    try:
        with _open_bytes(path) as stream:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                if newlines == 0 and len(first_line) < CHUNK:
                    first_line += chunk.split(b"\n", 1)[0]
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    _raise_encoding_error(path, rel, total + exc.start)
                newlines += chunk.count(b"\n")
                total += len(chunk)
                last_byte = chunk[-1:]
            decoder.decode(b"", final=True)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IngestError(f"{rel}: cannot be read ({exc}).") from exc
    except UnicodeDecodeError:
        _raise_encoding_error(path, rel, total)

    if total == 0:
        raise IngestError(f"{rel}: the file is empty (not even a header row).")
    header_text = bytes(first_line).decode("utf-8").lstrip("\ufeff").rstrip("\r")
    if not header_text.strip():
        raise IngestError(f"{rel}, line 1: the header row is empty.")
    delimiter = _detect_delimiter(header_text)
    header = next(csv.reader([header_text], delimiter=delimiter))
    physical_lines = newlines + (0 if last_byte == b"\n" else 1)
    return FileScan(sha.hexdigest(), physical_lines, header, delimiter, total)


def _raise_encoding_error(path: Path, rel: str, offset: int) -> None:
    with _open_bytes(path) as stream:
        before = stream.read(offset)
        bad = stream.read(1)
    line_start = before.rfind(b"\n") + 1
    line = before.count(b"\n") + 1
    header = before.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r")
    delimiter = _detect_delimiter(header)
    # the CSV column the bad byte sits in: fields before it on its line (quotes respected)
    field = len(next(csv.reader([before[line_start:].decode("latin-1")], delimiter=delimiter), [""]))
    names = next(csv.reader([header], delimiter=delimiter), [])
    name = f" '{names[field - 1].strip()}'" if 0 < field <= len(names) else ""
    raise IngestError(
        f"{rel}, line {line}, column {field}{name} (byte {offset - line_start + 1} of the line): "
        f"byte 0x{bad.hex()} is not UTF-8. The contract asks for UTF-8; the file looks like "
        "Latin-1/Windows-1252. Re-export it as UTF-8 (e.g. `iconv -f cp1252 -t utf-8`)."
    )


def _detect_delimiter(header_text: str) -> str:
    """The contract says comma; a semicolon or tab export (a spreadsheet's locale) is read right
    rather than loaded as one column."""
    counts = {d: header_text.count(d) for d in SUPPORTED_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _map_header(table: RawTable, header: list[str], rel: str) -> tuple[dict[str, int], dict[str, int]]:
    """Contract columns and extra columns by their position in the file. Names are matched
    case-insensitively after trimming, as the contract says."""
    names = [h.strip().lower() for h in header]
    seen: dict[str, int] = {}
    for pos, name in enumerate(names):
        if not name:
            raise IngestError(f"{rel}, line 1, column {pos + 1}: a header name is empty.")
        if name in seen:
            raise IngestError(
                f"{rel}, line 1, column {pos + 1}: column '{name}' appears twice "
                f"(also column {seen[name] + 1})."
            )
        seen[name] = pos
    missing = [c for c in table.required_columns if c not in seen]
    if missing:
        hints = []
        for col in missing:
            close = difflib.get_close_matches(col, [n for n in names if n not in table.columns], n=1)
            hints.append(f"'{col}'" + (f" (found '{close[0]}': misspelt?)" if close else ""))
        raise IngestError(
            f"{rel}, line 1: missing required column {', '.join(hints)}. "
            f"{table.name} needs {', '.join(table.required_columns)}; the header has {', '.join(names)}."
        )
    contract = {c: seen[c] for c in table.columns if c in seen}
    extra = {n: p for n, p in seen.items() if n not in table.columns}
    return contract, extra


# --- loading ----------------------------------------------------------------------------------


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    table: RawTable,
    path: Path,
    data_dir: Path,
    month: str | None,
) -> IngestResult:
    """Replace the table's month (or the whole reference table) with the file's content, in one
    transaction."""
    rel = _rel(data_dir, path)
    resolved = _check_inside_root(data_dir, path, rel)
    scan = scan_file(resolved, rel)
    contract_pos, extra_pos = _map_header(table, scan.header, rel)
    result = IngestResult(table.name, month, rel, scan.checksum, extra_columns=sorted(extra_pos))

    n_fields = len(scan.header)
    columns_spec = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(n_fields)) + "}"
    select_contract = ", ".join(
        f"c{contract_pos[c]}" if c in contract_pos else "cast(null as varchar)" for c in table.columns
    )
    select_extra = (
        "json_object(" + ", ".join(f"{_quote_literal(n)}, c{p}" for n, p in extra_pos.items()) + ")::varchar"
        if extra_pos
        else "cast(null as varchar)"
    )
    names_by_pos = {p: n for n, p in {**contract_pos, **extra_pos}.items()}
    newline_count = " + ".join(f"coalesce(length(c{i}) - length(replace(c{i}, chr(10), '')), 0)" for i in range(n_fields))

    con.execute("drop table if exists _ingest_rejects; drop table if exists _ingest_scans; drop table if exists _ingest_rows")
    # Explicit dialect, no sniffing: a sniffer guesses wrong on exactly the broken files we must
    # explain. parallel=false keeps file order, so row_number() is the record's position.
    con.execute(
        f"""
        create temp table _ingest_rows as
        select *, row_number() over () as _rec from read_csv($path,
            columns = {columns_spec}, header = false, skip = 1, auto_detect = false,
            delim = $delim, quote = '"', escape = '"', strict_mode = true, parallel = false,
            compression = $compression, max_line_size = 16777216,
            store_rejects = true, rejects_table = '_ingest_rejects', rejects_scan = '_ingest_scans')
        """,
        {
            "path": str(resolved),
            "delim": scan.delimiter,
            "compression": "gzip" if path.name.endswith(".gz") else "none",
        },
    )
    rejects = con.execute(
        """
        select line, any_value(column_idx order by column_idx) as column_idx,
               string_agg(distinct lower(replace(error_type, ' ', '_')), ', ') as error_type,
               any_value(error_message) as message, any_value(csv_line) as csv_line
        from _ingest_rejects group by line order by line
        """
    ).fetchall()
    loaded = con.execute(f"select count(*), coalesce(sum({newline_count}), 0) from _ingest_rows").fetchone()
    rows_loaded, newlines_in_rows = int(loaded[0]), int(loaded[1])

    # Record positions: the header is line 1; the reader reports rejected records by the same
    # numbering, so loaded rows take the remaining numbers in order.
    rejected_lines = [
        (int(line), names_by_pos.get(int(col) if col is not None else -1), _reject_reason(etype, msg),
         (text or "").strip("\r\n"))
        for line, col, etype, msg, text in rejects
    ]
    covered = 1 + rows_loaded + newlines_in_rows + sum(1 + (t or "").count("\n") for *_, t in rejected_lines)
    records = rows_loaded + len(rejected_lines)
    tail = _unread_tail(resolved, covered, scan.physical_lines)
    for offset, text in enumerate(tail):
        rejected_lines.append(
            (records + 2 + offset, None,
             "unterminated_quote: a quoted field is never closed, so the rest of the file could not be read",
             text)
        )

    con.execute("begin transaction")
    try:
        where = "_month = $month" if table.monthly else "true"
        params = {"month": month} if table.monthly else {}
        con.execute(f"delete from raw.{table.name} where {where}", params)
        con.execute(f"delete from raw.{table.name}_rejected_lines where {where}", params)
        con.execute("create temp table _rejected_numbers as select unnest($lines::bigint[]) as line",
                    {"lines": [r[0] for r in rejected_lines if r[0] <= records + 1]})
        con.execute(
            f"""
            insert into raw.{table.name}
            with numbers as (
                select line, row_number() over (order by line) as _rec
                from range(2, $records + 2) t(line)
                where line not in (select line from _rejected_numbers)
            )
            select {select_contract}, {select_extra}, $rel, numbers.line, $month, current_timestamp::timestamp
            from _ingest_rows join numbers using (_rec)
            order by numbers.line
            """,
            {"records": records, "rel": rel, "month": month},
        )
        if rejected_lines:
            con.executemany(
                f"insert into raw.{table.name}_rejected_lines values (?, ?, ?, ?, ?, ?, current_timestamp::timestamp)",
                [(rel, line, month, col, reason, text) for line, col, reason, text in rejected_lines],
            )
        con.execute(
            "insert into raw._ingest_log values (?, ?, ?, ?, ?, ?, current_timestamp::timestamp)",
            [table.name, month, rel, scan.checksum, rows_loaded, len(rejected_lines)],
        )
        con.execute("drop table _rejected_numbers")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.execute("drop table if exists _ingest_rejects; drop table if exists _ingest_scans; drop table if exists _ingest_rows")

    result.rows_loaded = rows_loaded
    result.lines_rejected = len(rejected_lines)
    if rows_loaded == 0 and not rejected_lines:
        result.notes.append(f"{rel} has a header but no rows")
    return result


# DuckDB's error types, in the words of the contract's quarantine reasons.
_REJECT_KINDS = {
    "missing_columns": "wrong_field_count",
    "too_many_columns": "wrong_field_count",
    "unquoted_value": "broken_quoting",
    "line_size_over_maximum": "line_too_long",
    "invalid_unicode": "invalid_encoding",
}


def _reject_reason(error_types: str, message: str) -> str:
    kinds = sorted({_REJECT_KINDS.get(t.strip(), t.strip()) for t in error_types.split(",")})
    detail = message.splitlines()[0].replace("Expected Number of Columns", "expected fields").replace("Found", "found")
    return f"{', '.join(kinds)}: {detail}"


def _unread_tail(path: Path, covered_lines: int, physical_lines: int) -> list[str]:
    """Lines the reader silently dropped: DuckDB stops at an unterminated quote without a reject,
    so compare the lines it accounted for with the lines in the file."""
    if covered_lines >= physical_lines:
        return []
    with _open_bytes(path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        lines = text.read().splitlines()
    return lines[covered_lines:]


def clear_month(con: duckdb.DuckDBPyConnection, table: RawTable, month: str) -> None:
    """An optional monthly file that is no longer delivered: its month holds no rows."""
    con.execute("begin transaction")
    con.execute(f"delete from raw.{table.name} where _month = ?", [month])
    con.execute(f"delete from raw.{table.name}_rejected_lines where _month = ?", [month])
    con.execute("commit")


def clear_table(con: duckdb.DuckDBPyConnection, table: RawTable) -> None:
    con.execute("begin transaction")
    con.execute(f"delete from raw.{table.name}")
    con.execute(f"delete from raw.{table.name}_rejected_lines")
    con.execute("commit")


def ingest_month(con: duckdb.DuckDBPyConnection, table: RawTable, data_dir: Path, month: str) -> IngestResult:
    """Load one month of a monthly table; a missing required file is an error for that month."""
    path = monthly_files(data_dir, table).get(month)
    if path is None:
        if table.required:
            raise IngestError(
                f"{table.name}/{month}.csv is missing: {table.name} is a required monthly table "
                f"(looked in {data_dir / table.name})."
            )
        clear_month(con, table, month)
        return IngestResult(table.name, month, None, notes=[f"no {table.name} file for {month} (optional table)"])
    return ingest_file(con, table, path, data_dir, month)


def ingest_reference(con: duckdb.DuckDBPyConnection, table: RawTable, data_dir: Path) -> IngestResult:
    """Load a reference snapshot, replacing the previous one; an absent optional file empties it."""
    path = reference_file(data_dir, table)
    if path is None:
        clear_table(con, table)
        return IngestResult(table.name, None, None, notes=[f"no {table.name}.csv delivered (optional table)"])
    return ingest_file(con, table, path, data_dir, None)
