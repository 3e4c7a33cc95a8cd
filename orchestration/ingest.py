"""Load a retailer's CSV files into the raw layer of the warehouse.

Every contract column is loaded as text, so no value is lost before the staging layer decides
what it means, plus lineage (_source_file, _source_line, _month, _loaded_at) and the unknown
extra columns as JSON (_extra). DuckDB's own CSV reader does the reading; Python looks at the
header and the bytes, to give structural errors a file, line and column, and maps every record
to the physical line it starts on (the line number an editor shows).

Structural problems fail the load with an IngestError naming the file and the problem. Lines
that cannot be read as a record (wrong field count, broken quoting, too long) go to
raw.<table>_rejected_lines with their line number and reason, and the load goes on. Every line
is accounted for: loaded rows + rejected lines = the file's records (blank lines are not records).

A month is its delivery (<table>/YYYY-MM.csv) plus the corrections replayed for that delivery
(<table>/corrections/YYYY-MM/<UTC time>-for-<sha256 prefix>.csv, written by
`nexcart quarantine replay`). A correction belongs to the delivery whose checksum prefix its
name carries: re-ingesting the month keeps it, a new delivery of the month supersedes it.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import errno
import gzip
import hashlib
import io
import itertools
import re
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from orchestration.contract import MONTH_FILE_RE, TABLES, RawTable

CHUNK = 1 << 20
SUPPORTED_DELIMITERS = (",", ";", "\t")
MAX_LINE_SIZE = 16 << 20  # bytes; a longer line is rejected (line_too_long), the file still loads
# An extra column this close to a contract column the file lacks is a misspelling, not an extra:
# loading it would silently default the contract column (a discount of 0, say).
MISSPELT_CUTOFF = 0.85

CORRECTIONS_DIR = "corrections"
CORRECTION_BASIS_CHARS = 16  # hex digits of the delivery's sha256 a correction file names
CORRECTION_FILE_RE = re.compile(r"^(?P<stamp>\d{8}T\d{12}Z)-for-(?P<basis>[0-9a-f]{16})\.csv\Z")  # \Z: no final newline

# Python's csv module guards against runaway fields at 128 KiB; DuckDB's limit is the one that
# decides (MAX_LINE_SIZE), so the line mapping must never stop earlier than the reader.
csv.field_size_limit(2**31 - 1)


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
    ends_with_newline: bool = True


@dataclass
class RecordMap:
    """The file as DuckDB's reader splits it: one entry per record or blank line, header first,
    with the physical line it starts on. DuckDB numbers rejected records the same way (entry
    number = DuckDB's line number), which is what ties its rejects to lines."""

    starts: np.ndarray  # int64, physical line where entry i starts (entry 0 = header)
    blank: np.ndarray  # bool, entry i is an empty line


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
    correction_files: list[str] = field(default_factory=list)
    failed: str | None = None  # why the month's file could not be loaded (it kept its previous rows)


@dataclass
class StagedFile:
    """One file read into a temp table, ready to be published into its raw table."""

    rel: str
    checksum: str
    temp_table: str
    rows_loaded: int
    rejected_lines: list[tuple[int, str | None, str, str]]  # line, column, reason, record
    extra_columns: list[str]
    notes: list[str]


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
    # What happened to each (table, month) at its last load: a warehouse built before these
    # columns existed gets them here (NULL outcome on old rows = loaded).
    con.execute("alter table raw._ingest_log add column if not exists outcome VARCHAR")
    con.execute("alter table raw._ingest_log add column if not exists message VARCHAR")


# What a load of one (table, month) did, in raw._ingest_log.outcome. The newest rows of a
# (table, month) are its current state; the raw gates and the marts read them.
LOADED = "loaded"  # a file was loaded (rows may be 0: a header-only file is an empty drop)
NOT_DELIVERED = "not_delivered"  # no file for the table and month
FAILED = "failed"  # the file could not be loaded (or a required one is missing): month held back


def log_ingest(con: duckdb.DuckDBPyConnection, table: RawTable, month: str | None, outcome: str, *,
               source_file: str | None = None, checksum: str | None = None, rows_loaded: int = 0,
               lines_rejected: int = 0, message: str | None = None) -> None:
    con.execute(
        "insert into raw._ingest_log (table_name, _month, source_file, checksum, rows_loaded, lines_rejected, "
        "_loaded_at, outcome, message) values (?, ?, ?, ?, ?, ?, current_timestamp::timestamp, ?, ?)",
        [table.name, month, source_file, checksum, rows_loaded, lines_rejected, outcome, message],
    )


# --- finding files ----------------------------------------------------------------------------


def monthly_files(data_dir: Path, table: RawTable) -> dict[str, Path]:
    """The monthly files of a table by month; a file not named after a month is an error."""
    folder = data_dir / table.name
    if not folder.is_dir():
        return {}
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "_")) or (path.name == CORRECTIONS_DIR and path.is_dir()):
            continue
        match = MONTH_FILE_RE.match(path.name)
        if not match:
            raise IngestError(
                f"{_shown(_rel(data_dir, path))}: not a monthly file name; monthly drops are named "
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


def corrections_folder(data_dir: Path, table: RawTable, month: str) -> Path:
    return data_dir / table.name / CORRECTIONS_DIR / month


def correction_file_name(delivery_checksum: str, stamp: str) -> str:
    """The name of a correction of the delivery with this checksum, made at `stamp`
    (UTC, YYYYMMDDTHHMMSSffffff + 'Z'): names sort in the order the corrections were made."""
    return f"{stamp}-for-{delivery_checksum[:CORRECTION_BASIS_CHARS]}.csv"


def correction_files(data_dir: Path, table: RawTable, month: str) -> list[Path]:
    """The month's correction files, oldest first; a file not named as one is an error."""
    folder = corrections_folder(data_dir, table, month)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "_")):
            continue
        if not CORRECTION_FILE_RE.match(path.name):
            raise IngestError(
                f"{_shown(_rel(data_dir, path))}: not a correction file name; corrections are written "
                "by `nexcart quarantine replay` as <UTC time>-for-<delivery checksum>.csv. Move it out "
                "of the raw root and replay it instead."
            )
        found.append(path)
    return found


def _corrects(path: Path, delivery_checksum: str) -> bool:
    """Was this correction made for the delivery with this checksum?"""
    return CORRECTION_FILE_RE.match(path.name)["basis"] == delivery_checksum[:CORRECTION_BASIS_CHARS]


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


def _shown(name: str) -> str:
    """A file name as it can be printed: one with control characters (a newline, an escape
    sequence) is shown quoted and escaped, so it cannot garble or forge a message line."""
    return name if name.isprintable() else ascii(name)


def _check_inside_root(data_dir: Path, path: Path, rel: str) -> Path:
    """Refuse a file (or a symlink) that resolves outside the raw root."""
    resolved = path.resolve()
    if not resolved.is_relative_to(data_dir.resolve()):
        raise IngestError(f"{rel}: points outside the raw root ({resolved}); refused.")
    return resolved


# --- reading the bytes ------------------------------------------------------------------------


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def file_checksum(path: Path) -> str:
    """sha256 of the file's bytes as delivered (compressed, for a .csv.gz)."""
    sha = hashlib.sha256()
    with open(path, "rb") as raw:
        for chunk in iter(lambda: raw.read(CHUNK), b""):
            sha.update(chunk)
    return sha.hexdigest()


def scan_file(path: Path, rel: str) -> FileScan:
    """One streaming pass: checksum of the bytes as delivered, UTF-8 validity with the line and
    column of the first bad byte, the number of lines, and the header."""
    checksum = file_checksum(path)
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
    header_text = bytes(first_line).decode("utf-8").lstrip("\ufeff").removesuffix("\r")
    if "\r" in header_text:
        raise IngestError(
            f"{rel}, line 1: the lines end with a bare carriage return (CR, the old Mac format), which "
            "the reader cannot split reliably. Save the file again with LF or CRLF line ends."
        )
    if not header_text.strip():
        raise IngestError(f"{rel}, line 1: the header row is empty.")
    delimiter = _detect_delimiter(header_text)
    header = next(csv.reader([header_text], delimiter=delimiter))
    physical_lines = newlines + (0 if last_byte == b"\n" else 1)
    return FileScan(checksum, physical_lines, header, delimiter, total, ends_with_newline=last_byte == b"\n")


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


def _line_end(line: str) -> str:
    if line.endswith("\r\n"):
        return "CRLF"
    return "LF" if line.endswith("\n") else ""


def map_records(path: Path, rel: str, delimiter: str) -> RecordMap:
    """Split the file into records the way DuckDB's reader does (a quoted field may span lines;
    a quote opens a field only at its start, after optional spaces) and note where each starts.

    Also refuses a file whose records end with different line ends (CRLF here, LF there): the
    reader fixes one kind of line end per file and cannot read the other.
    """
    starts, blank = array("q"), array("b")
    last_line = [""]

    def remembering(lines: Iterator[str]) -> Iterator[str]:
        for line in lines:
            last_line[0] = line
            yield line

    with _open_bytes(path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="\n")
        reader = csv.reader(remembering(text), delimiter=delimiter, quotechar='"', doublequote=True,
                            skipinitialspace=True, strict=False)
        first_end, line = None, 1
        try:
            for row in reader:
                starts.append(line)
                blank.append(not row)
                end = _line_end(last_line[0])
                first_end = first_end or end
                if end and end != first_end:
                    raise IngestError(
                        f"{rel}, line {reader.line_num}: this line ends with {end} but line 1 with "
                        f"{first_end}; a file must use one kind of line end. Save it again from an "
                        "editor or spreadsheet (it writes one kind), or convert it with `dos2unix`."
                    )
                line = reader.line_num + 1
        except csv.Error as exc:
            raise IngestError(
                f"{rel}, line {reader.line_num}: cannot be split into records ({exc}); a carriage "
                "return inside an unquoted field does this: quote the field or remove the character."
            ) from exc
    return RecordMap(np.frombuffer(starts, dtype=np.int64).copy(), np.frombuffer(blank, dtype=np.int8).astype(bool))


# --- the header -------------------------------------------------------------------------------


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
    extras = [n for n in names if n not in table.columns]
    missing = [c for c in table.required_columns if c not in seen]
    if missing:
        hints = []
        for col in missing:
            close = difflib.get_close_matches(col, extras, n=1)
            hints.append(f"'{col}'" + (f" (found '{close[0]}': misspelt?)" if close else ""))
        raise IngestError(
            f"{rel}, line 1: missing required column {', '.join(hints)}. "
            f"{table.name} needs {', '.join(table.required_columns)}; the header has {', '.join(names)}."
        )
    for col in (c for c in table.columns if c not in seen):
        close = difflib.get_close_matches(col, extras, n=1, cutoff=MISSPELT_CUTOFF)
        if close:
            raise IngestError(
                f"{rel}, line 1, column {seen[close[0]] + 1}: '{close[0]}' looks like the contract column "
                f"'{col}' misspelt. Loaded as an extra column it would leave '{col}' empty (its default "
                f"would be used instead of your values): rename the column to '{col}'."
            )
    contract = {c: seen[c] for c in table.columns if c in seen}
    extra = {n: p for n, p in seen.items() if n not in table.columns}
    return contract, extra


# --- staging one file -------------------------------------------------------------------------


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# DuckDB's error types, in the words of the contract's quarantine reasons.
_REJECT_KINDS = {
    "missing_columns": "wrong_field_count",
    "too_many_columns": "wrong_field_count",
    "unquoted_value": "broken_quoting",
    "line_size_over_maximum": "line_too_long",
    "invalid_unicode": "invalid_encoding",
}
UNTERMINATED_QUOTE = "unterminated_quote: a quoted field is never closed, so the rest of the file could not be read"


def _reject_reason(error_types: str, message: str) -> str:
    kinds = sorted({_REJECT_KINDS.get(t.strip(), t.strip()) for t in error_types.split(",")})
    detail = message.splitlines()[0].replace("Expected Number of Columns", "expected fields").replace("Found", "found")
    return f"{', '.join(kinds)}: {detail}"


def _physical_lines_from(path: Path, first: int) -> list[tuple[int, str]]:
    """(line number, text) of every non-empty line from line `first` to the end of the file."""
    with _open_bytes(path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="\n")
        tail = itertools.islice(text, first - 1, None)
        return [(n, t.rstrip("\r\n")) for n, t in enumerate(tail, start=first) if t.rstrip("\r\n")]


def _inconsistent(rel: str, detail: str) -> IngestError:
    # A guard, not an expected path: the line mapping and DuckDB's reader split the file
    # differently, and loading on would misplace or lose lines.
    return IngestError(
        f"{rel}: the file's records could not be matched to its lines ({detail}); nothing was loaded. "
        "Re-export the file (plain RFC 4180 CSV) and report this case."
    )


def stage_file(
    con: duckdb.DuckDBPyConnection,
    table: RawTable,
    path: Path,
    data_dir: Path,
    month: str | None,
    temp_table: str,
) -> StagedFile:
    """Read one file into the temp table `temp_table`, shaped like raw.<table>, and work out
    which lines could not be read as records. Writes nothing to the raw layer."""
    rel = _rel(data_dir, path)
    resolved = _check_inside_root(data_dir, path, rel)
    scan = scan_file(resolved, rel)
    contract_pos, extra_pos = _map_header(table, scan.header, rel)
    records = map_records(resolved, rel, scan.delimiter)
    if len(records.starts) > 1 and records.starts[1] != 2:
        raise IngestError(f"{rel}, line 1: the header row spans several lines (a quoted line break in a column name).")
    try:
        rejects, rows_loaded = _read_csv(con, resolved, rel, scan)
        row_lines, rejected_lines = _place_records(rel, resolved, records, rejects, rows_loaded, len(scan.header))
        _shape_rows(con, table, temp_table, contract_pos, extra_pos, row_lines, rel, month)
    finally:
        con.execute("drop table if exists _ingest_rejects; drop table if exists _ingest_scans; drop table if exists _ingest_read")

    names_by_pos = {p: n for n, p in {**contract_pos, **extra_pos}.items()}
    rejected = [(line, names_by_pos.get(col), reason, text) for line, col, reason, text in rejected_lines]
    return StagedFile(rel, scan.checksum, temp_table, rows_loaded, rejected, sorted(extra_pos),
                      _notes(rel, scan, rows_loaded, rejected))


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, rel: str, scan: FileScan) -> tuple[list[tuple], int]:
    """DuckDB's reader over the file into the temp table _ingest_read (c0, c1, ... and _rec, the
    record's position); the reader's rejects grouped by line, and the number of rows read."""
    columns_spec = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(scan.header))) + "}"
    con.execute("drop table if exists _ingest_rejects; drop table if exists _ingest_scans; drop table if exists _ingest_read")
    # Explicit dialect, no sniffing: a sniffer guesses wrong on exactly the broken files we must
    # explain. parallel=false keeps file order, so row_number() is the record's position.
    try:
        con.execute(
            f"""
            create temp table _ingest_read as
            select *, row_number() over () as _rec from read_csv($path,
                columns = {columns_spec}, header = false, skip = 1, auto_detect = false,
                delim = $delim, quote = '"', escape = '"', strict_mode = true, parallel = false,
                compression = $compression, max_line_size = {MAX_LINE_SIZE},
                store_rejects = true, rejects_table = '_ingest_rejects', rejects_scan = '_ingest_scans')
            """,
            {"path": str(path), "delim": scan.delimiter, "compression": "gzip" if path.name.endswith(".gz") else "none"},
        )
    except duckdb.InvalidInputException as exc:
        raise IngestError(f"{rel}: the CSV reader stopped: {str(exc).splitlines()[0]}") from exc
    rejects = con.execute(
        """
        select line, any_value(column_idx order by column_idx) as column_idx,
               string_agg(distinct lower(replace(error_type, ' ', '_')), ', ') as error_type,
               any_value(error_message) as message, any_value(csv_line) as csv_line
        from _ingest_rejects group by line order by line
        """
    ).fetchall()
    return rejects, con.execute("select count(*) from _ingest_read").fetchone()[0]


def _shape_rows(con: duckdb.DuckDBPyConnection, table: RawTable, temp_table: str, contract_pos: dict[str, int],
                extra_pos: dict[str, int], row_lines: np.ndarray, rel: str, month: str | None) -> None:
    """_ingest_read as the rows of raw.<table> (without _loaded_at), each with its line."""
    select_contract = ", ".join(
        f'c{contract_pos[c]} as "{c}"' if c in contract_pos else f'cast(null as varchar) as "{c}"'
        for c in table.columns
    )
    select_extra = (
        "json_object(" + ", ".join(f"{_quote_literal(n)}, c{p}" for n, p in extra_pos.items()) + ")::varchar"
        if extra_pos
        else "cast(null as varchar)"
    )
    con.register("_ingest_lines", pd.DataFrame({"_rec": np.arange(1, len(row_lines) + 1), "line": row_lines}))
    try:
        con.execute(
            f"""
            create or replace temp table {temp_table} as
            select {select_contract}, {select_extra} as _extra, $rel as _source_file,
                   _ingest_lines.line as _source_line, $month as _month
            from _ingest_read join _ingest_lines using (_rec)
            order by _source_line
            """,
            {"rel": rel, "month": month},
        )
    finally:
        con.unregister("_ingest_lines")


def _notes(rel: str, scan: FileScan, rows_loaded: int, rejected: list) -> list[str]:
    if rows_loaded == 0 and not rejected:
        return [f"{rel} has a header but no rows"]
    if not scan.ends_with_newline:
        # A cut inside the last value leaves a well-formed but wrong line: say where to look.
        return [f"{rel} does not end with a line break: if the export was cut off, its last line "
                f"(line {scan.physical_lines}) may be incomplete; check it"]
    return []


def _place_records(
    rel: str, path: Path, records: RecordMap, rejects: list[tuple], rows_loaded: int, n_fields: int
) -> tuple[np.ndarray, list[tuple[int, int | None, str, str]]]:
    """The physical line of every loaded row (in read order), and the rejected lines as
    (line, column index, reason, text): the reader's rejects, plus the lines it silently left
    unread after an unterminated quote."""
    entries = len(records.starts)
    # DuckDB skips blank lines but numbers them; a one-column file reads a blank line as a NULL row.
    is_record = ~records.blank if n_fields > 1 else np.ones(entries, dtype=bool)
    is_record[0] = False  # the header
    rejected = []
    for line, col, etype, message, text in rejects:
        entry = int(line) - 1
        if not 0 < entry < entries or not is_record[entry]:
            raise _inconsistent(rel, f"a rejected record at reader line {line}")
        is_record[entry] = False
        rejected.append((int(records.starts[entry]), col, _reject_reason(etype, message), (text or "").strip("\r\n")))

    candidates = np.flatnonzero(is_record)
    if len(candidates) < rows_loaded:
        raise _inconsistent(rel, f"{rows_loaded} rows read, {len(candidates)} records found")
    loaded, unread = candidates[:rows_loaded], candidates[rows_loaded:]
    if len(unread):
        # The reader stops at a quote that is never closed, without a reject: everything from the
        # first record it did not read is quarantined line by line, so nothing disappears.
        if rejected and unread[0] < max(int(line) - 1 for line, *_ in rejects):
            raise _inconsistent(rel, "unread records before the last rejected one")
        first_unread = int(records.starts[unread[0]])
        rejected += [(n, None, UNTERMINATED_QUOTE, t) for n, t in _physical_lines_from(path, first_unread)]
    return records.starts[loaded], sorted(rejected)


# --- publishing into the raw layer ------------------------------------------------------------


def _is_out_of_space(exc: BaseException) -> bool:
    return (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "no space left on device" in str(exc).lower()


@contextmanager
def _warehouse_writes(what: str) -> Iterator[None]:
    """Turn a full disk into an IngestError that says what happened and that nothing changed
    (the write is one transaction, which DuckDB rolls back)."""
    try:
        yield
    except (duckdb.Error, OSError) as exc:
        if not _is_out_of_space(exc):
            raise
        raise IngestError(
            f"{what}: the warehouse's disk is full ({str(exc).splitlines()[0]}). Nothing was changed: "
            "the warehouse still holds what it held before this load. Free some space and run again."
        ) from exc


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("rollback")
    except duckdb.TransactionException:
        pass  # a failed COMMIT has already rolled the transaction back


def publish(con: duckdb.DuckDBPyConnection, table: RawTable, month: str | None, staged: list[StagedFile]) -> None:
    """Replace the table's month (or the whole reference table) with the staged files, in one
    transaction: the raw layer holds either the old or the new content, never a mix."""
    where = "_month = $month" if table.monthly else "true"
    params = {"month": month} if table.monthly else {}
    con.execute("begin transaction")
    try:
        con.execute(f"delete from raw.{table.name} where {where}", params)
        con.execute(f"delete from raw.{table.name}_rejected_lines where {where}", params)
        for file in staged:
            con.execute(
                f"insert into raw.{table.name} select *, current_timestamp::timestamp from {file.temp_table}"
            )
            if file.rejected_lines:
                con.executemany(
                    f"insert into raw.{table.name}_rejected_lines values (?, ?, ?, ?, ?, ?, current_timestamp::timestamp)",
                    [(file.rel, line, month, col, reason, text) for line, col, reason, text in file.rejected_lines],
                )
            log_ingest(con, table, month, LOADED, source_file=file.rel, checksum=file.checksum,
                       rows_loaded=file.rows_loaded, lines_rejected=len(file.rejected_lines))
        con.execute("commit")
    except BaseException:
        _rollback(con)
        raise


@contextmanager
def _publishing(con: duckdb.DuckDBPyConnection, table: RawTable, month: str | None) -> Iterator[list[StagedFile]]:
    """Collect the files staged in the block and publish them together when it ends; their temp
    tables are dropped whatever happens, and a full disk becomes an IngestError."""
    staged: list[StagedFile] = []
    try:
        with _warehouse_writes(f"{table.name} {month}" if month else table.name):
            yield staged
            publish(con, table, month, staged)
    finally:
        for file in staged:
            con.execute(f"drop table if exists {file.temp_table}")


def _stage_into(staged: list[StagedFile], con: duckdb.DuckDBPyConnection, table: RawTable, path: Path,
                data_dir: Path, month: str | None) -> StagedFile:
    staged.append(stage_file(con, table, path, data_dir, month, f"_ingest_staged_{len(staged)}"))
    return staged[-1]


def _result(table: RawTable, month: str | None, delivery: StagedFile, corrections: list[StagedFile]) -> IngestResult:
    files = [delivery, *corrections]
    result = IngestResult(
        table.name, month, delivery.rel, delivery.checksum,
        rows_loaded=sum(f.rows_loaded for f in files),
        lines_rejected=sum(len(f.rejected_lines) for f in files),
        extra_columns=delivery.extra_columns,
        notes=[n for f in files for n in f.notes],
        correction_files=[f.rel for f in corrections],
    )
    if corrections:
        result.notes.append(
            f"{len(corrections)} correction file(s) loaded with {delivery.rel}: "
            f"{sum(f.rows_loaded for f in corrections)} corrected row(s)"
        )
    return result


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    table: RawTable,
    path: Path,
    data_dir: Path,
    month: str | None,
) -> IngestResult:
    """Replace the table's month (or the whole reference table) with the file's content, in one
    transaction."""
    with _publishing(con, table, month) as staged:
        delivery = _stage_into(staged, con, table, path, data_dir, month)
    return _result(table, month, delivery, [])


def clear_month(con: duckdb.DuckDBPyConnection, table: RawTable, month: str) -> None:
    """A month with no file of this table: it holds no rows (logged as not delivered)."""
    con.execute("begin transaction")
    con.execute(f"delete from raw.{table.name} where _month = ?", [month])
    con.execute(f"delete from raw.{table.name}_rejected_lines where _month = ?", [month])
    log_ingest(con, table, month, NOT_DELIVERED)
    con.execute("commit")


def clear_table(con: duckdb.DuckDBPyConnection, table: RawTable) -> None:
    con.execute("begin transaction")
    con.execute(f"delete from raw.{table.name}")
    con.execute(f"delete from raw.{table.name}_rejected_lines")
    log_ingest(con, table, None, NOT_DELIVERED)
    con.execute("commit")


def month_delivered(data_dir: Path, month: str) -> bool:
    """Did the month get a file of any monthly table? A month with none is an empty month (the
    shop sold nothing), not a missing delivery."""
    return month in discover_months(data_dir)


def ingest_month(con: duckdb.DuckDBPyConnection, table: RawTable, data_dir: Path, month: str) -> IngestResult:
    """Load one month of a monthly table (its delivery and the corrections made for that
    delivery). A month without a file of this table holds no rows; for a required table that is
    an error of the month, unless no table was delivered for the month at all (an empty month)."""
    path = monthly_files(data_dir, table).get(month)
    if path is None:
        if table.required and month_delivered(data_dir, month):
            raise IngestError(
                f"{table.name}/{month}.csv is missing: {table.name} is a required monthly table and "
                f"other tables were delivered for {month} (looked in {data_dir / table.name})."
            )
        clear_month(con, table, month)
        what = "optional table" if not table.required else "no file of any table: an empty month"
        return IngestResult(table.name, month, None, notes=[f"no {table.name} file for {month} ({what})"])

    corrections = correction_files(data_dir, table, month)
    with _publishing(con, table, month) as staged:
        delivery = _stage_into(staged, con, table, path, data_dir, month)
        current = [c for c in corrections if _corrects(c, delivery.checksum)]
        applied = [_stage_into(staged, con, table, c, data_dir, month) for c in current]
    result = _result(table, month, delivery, applied)
    superseded = len(corrections) - len(current)
    if superseded:
        result.notes.append(
            f"{superseded} correction file(s) in {_rel(data_dir, corrections_folder(data_dir, table, month))} "
            f"were made for an earlier delivery of {delivery.rel} and are superseded by this one (not loaded)"
        )
    return result


def ingest_reference(con: duckdb.DuckDBPyConnection, table: RawTable, data_dir: Path) -> IngestResult:
    """Load a reference snapshot, replacing the previous one; an absent optional file empties it."""
    path = reference_file(data_dir, table)
    if path is None:
        clear_table(con, table)
        return IngestResult(table.name, None, None, notes=[f"no {table.name}.csv delivered (optional table)"])
    return ingest_file(con, table, path, data_dir, None)
