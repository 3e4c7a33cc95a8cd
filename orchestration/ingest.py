"""Load a retailer's CSV files into the raw layer of the warehouse.

Every contract column is loaded as text, so no value is lost before the staging layer decides
what it means, plus lineage (_source_file, _source_line, _month, _loaded_at) and the unknown
extra columns as JSON (_extra). DuckDB's own CSV reader does the reading; Python looks at the
header and the bytes, to give structural errors a file, line and column, and maps every record
to the physical line it starts on (the line number an editor shows).

Only regular files are read (a FIFO would block forever), and limits in Settings (max_columns,
max_file_bytes once decompressed, max_line_bytes) bound the memory and time one file can cost.

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
import os
import re
import stat
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from orchestration.contract import MONTH_FILE_RE, TABLES, RawTable
from orchestration.settings import Settings, load_settings

CHUNK = 1 << 20
# A .csv.gz is held to Settings.max_gzip_ratio only past this expanded size: a small file costs
# nothing whatever its ratio, and real exports compress 5-20 times.
GZIP_RATIO_FLOOR = 64 << 20
SUPPORTED_DELIMITERS = (",", ";", "\t")
# An extra column this close to a contract column the file lacks is a misspelling, not an extra:
# loading it would silently default the contract column (a discount of 0, say).
MISSPELT_CUTOFF = 0.85

CORRECTIONS_DIR = "corrections"
CORRECTION_BASIS_CHARS = 16  # hex digits of the delivery's sha256 a correction file names
CORRECTION_FILE_RE = re.compile(r"^(?P<stamp>\d{8}T\d{12}Z)-for-(?P<basis>[0-9a-f]{16})\.csv\Z")  # \Z: no final newline
SHOWN_NAME_CHARS = 80  # a header name is cut to this in messages (a hostile header can be megabytes)
SHOWN_NAMES = 20  # header names listed in a message, at most

# Python's csv module guards against runaway fields at 128 KiB; DuckDB's limit is the one that
# decides (Settings.max_line_bytes), so the line mapping must never stop earlier than the reader.
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
    """The file's records as DuckDB's reader splits it, header first. DuckDB numbers its lines
    counting blank lines (entry number + 1 = DuckDB's line number, header = entry 0), which is
    what ties its rejects to lines. Blank lines are counted but never stored, so a file of
    millions of empty lines costs no memory here."""

    entries: np.ndarray  # int64, entry number of record i (record 0 = the header, entry 0)
    starts: np.ndarray  # int64, physical line where record i starts
    header_lines: int  # physical lines the header spans
    # (record index, fields found, last physical line) of records with more fields than the
    # header. DuckDB's reader loads such a record if the extra fields are empty (it drops them),
    # so an extra empty field in the middle shifts the values after it into the wrong columns:
    # the line mapping is what catches it.
    too_many_fields: list[tuple[int, int, int]] = field(default_factory=list)


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
    # lexists: a dangling link or a link loop is a delivery that cannot be read (an error), not
    # an absent file (which would empty the table)
    candidates = [p for p in (data_dir / f"{table.name}.csv", data_dir / f"{table.name}.csv.gz")
                  if os.path.lexists(p)]
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


def _shown_name(name: str, limit: int = SHOWN_NAME_CHARS) -> str:
    """A header name (or other text from the file) as it can be printed in a message: escaped
    like a file name, and cut, since a hostile header name can be megabytes long."""
    if len(_shown(name[:limit + 1])) <= limit:
        return _shown(name)
    # the longest prefix whose escaped form fits (escapes make a NUL four characters)
    low, high = 0, limit
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if len(_shown(name[:mid])) <= limit else (low, mid - 1)
    return _shown(name[:low]) + f"... ({len(name)} characters)"


def _shown_names(names: list[str]) -> str:
    shown = ", ".join(_shown_name(n) for n in names[:SHOWN_NAMES])
    return shown + (f", ... ({len(names) - SHOWN_NAMES} more)" if len(names) > SHOWN_NAMES else "")


def _check_inside_root(data_dir: Path, path: Path, rel: str) -> Path:
    """Refuse a file (or a symlink) that resolves outside the raw root, and anything that is not
    a regular file."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # Python 3.11 raises RuntimeError for a symlink loop
        raise IngestError(f"{_shown(rel)}: cannot be read: it is a symbolic link loop. Replace it with the file.") from exc
    if not resolved.is_relative_to(data_dir.resolve()):
        raise IngestError(f"{_shown(rel)}: points outside the raw root ({_shown(str(resolved))}); refused.")
    _check_regular(resolved, rel)
    return resolved


_FILE_KINDS = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a named pipe (FIFO)", stat.S_ISSOCK: "a socket",
               stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}


def _kind(mode: int) -> str:
    return next((kind for test, kind in _FILE_KINDS.items() if test(mode)), "not a regular file")


def _check_regular(path: Path, rel: str) -> None:
    """Only regular files are read: opening a FIFO would wait forever for a writer, a device
    could be endless."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as exc:
        raise IngestError(f"{_shown(rel)}: cannot be read: it does not exist (a symbolic link to a missing "
                          "file?). Replace it with the file.") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IngestError(f"{_shown(rel)}: cannot be read: it is a symbolic link loop. Replace it with "
                              "the file.") from exc
        raise IngestError(f"{_shown(rel)}: cannot be read ({exc.strerror}).") from exc
    if not stat.S_ISREG(mode):
        raise IngestError(f"{_shown(rel)}: is {_kind(mode)}, not a regular file; only regular files are read. "
                          "Replace it with the exported file or move it out of the raw root.")


# --- reading the bytes ------------------------------------------------------------------------


def _open_regular(path: Path):
    """The file opened for reading, if it is a regular file. Opened non-blocking and checked on
    the open descriptor, so a FIFO put in its place meanwhile cannot make the open wait forever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"{_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@contextmanager
def _open_bytes(path: Path) -> Iterator[io.BufferedIOBase]:
    with _open_regular(path) as raw:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream
        else:
            yield raw


def file_checksum(path: Path) -> str:
    """sha256 of the file's bytes as delivered (compressed, for a .csv.gz)."""
    sha = hashlib.sha256()
    with _open_regular(path) as raw:
        for chunk in iter(lambda: raw.read(CHUNK), b""):
            sha.update(chunk)
    return sha.hexdigest()


def scan_file(path: Path, rel: str, limits: Settings | None = None) -> FileScan:
    """One streaming pass: checksum of the bytes as delivered, UTF-8 validity with the line and
    column of the first bad byte, the number of lines, and the header. Stops at the first limit
    the file breaks (expanded size, header length, columns), so a bomb costs little."""
    limits = limits or load_settings()
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines, total, last_byte = 0, 0, b""
    first_line, header_done = bytearray(), False
    try:
        size = os.stat(path).st_size
        if size > limits.max_file_bytes:  # refused before hashing it
            raise _too_big(path, rel, limits)
        gzipped = path.name.endswith(".gz")
        checksum = file_checksum(path)
        with _open_bytes(path) as stream:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                if not header_done:
                    end = chunk.find(b"\n")
                    first_line += chunk if end < 0 else chunk[:end]
                    header_done = end >= 0
                    if len(first_line) > limits.max_line_bytes:
                        raise IngestError(
                            f"{rel}, line 1: the header row is longer than {limits.max_line_bytes} bytes "
                            "(NEXCART_MAX_LINE_BYTES); this is not a CSV header. Check the file is the export."
                        )
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    _raise_encoding_error(path, rel, total + exc.start, limits)
                newlines += chunk.count(b"\n")
                total += len(chunk)
                last_byte = chunk[-1:]
                if total > limits.max_file_bytes:
                    raise _too_big(path, rel, limits)
                if gzipped and total > GZIP_RATIO_FLOOR and total > limits.max_gzip_ratio * size:
                    raise IngestError(
                        f"{rel}: expands more than {limits.max_gzip_ratio} times its {size} bytes "
                        "(NEXCART_MAX_GZIP_RATIO), like a gzip bomb, not an export; refused unread. "
                        "Check the file, or raise the limit if it is genuine."
                    )
            decoder.decode(b"", final=True)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise IngestError(f"{rel}: cannot be read ({reason}).") from exc
    except UnicodeDecodeError:
        _raise_encoding_error(path, rel, total, limits)

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
    if len(header) > limits.max_columns:
        # before any SQL is built: the reader's column list and the shaping query grow with it
        raise IngestError(
            f"{rel}, line 1: the header has {len(header)} columns; at most {limits.max_columns} are read "
            "(NEXCART_MAX_COLUMNS). Check the delimiter and the file, or raise the limit."
        )
    physical_lines = newlines + (0 if last_byte == b"\n" else 1)
    return FileScan(checksum, physical_lines, header, delimiter, total, ends_with_newline=last_byte == b"\n")


def _too_big(path: Path, rel: str, limits: Settings) -> IngestError:
    expanded = " once decompressed" if path.name.endswith(".gz") else ""
    return IngestError(
        f"{rel}: holds more than {limits.max_file_bytes} bytes{expanded} (NEXCART_MAX_FILE_BYTES); "
        "refused unread. Split the export by month, or raise the limit if the file is genuine."
    )


def _raise_encoding_error(path: Path, rel: str, offset: int, limits: Settings) -> None:
    # Streams up to the bad byte keeping only the header and the current line (each at most
    # max_line_bytes), so a bad byte deep in a huge file costs no more memory than one line.
    line, line_start, header, current, too_long = 1, 0, None, bytearray(), False
    with _open_bytes(path) as stream:
        pos = 0
        while pos < offset and (chunk := stream.read(min(CHUNK, offset - pos))):
            end = chunk.rfind(b"\n")
            if end >= 0:
                if header is None:
                    header = bytes(current + chunk[:chunk.find(b"\n")])
                line += chunk.count(b"\n")
                line_start, current, too_long = pos + end + 1, bytearray(chunk[end + 1:]), False
            elif not too_long:
                current += chunk
            if len(current) > limits.max_line_bytes:
                current, too_long = bytearray(), True  # the column is not told for such a line
            pos += len(chunk)
        bad = stream.read(1)
    header_text = (header if header is not None else bytes(current)).decode("utf-8", "replace")
    header_text = header_text.lstrip("\ufeff").rstrip("\r")
    delimiter = _detect_delimiter(header_text)
    # the CSV column the bad byte sits in: fields before it on its line (quotes respected)
    field = len(next(csv.reader([bytes(current).decode("latin-1")], delimiter=delimiter), [""]))
    names = next(csv.reader([header_text], delimiter=delimiter), [])
    name = f" '{_shown_name(names[field - 1].strip())}'" if 0 < field <= len(names) else ""
    column = "" if too_long else f", column {field}{name}"
    raise IngestError(
        f"{rel}, line {line}{column} (byte {offset - line_start + 1} of the line): "
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


_QUOTE_FREE = re.compile(r'[^"]+')


@dataclass
class _LineFeed:
    """The file's physical lines for the csv module, with the counts the mapping needs. Between
    records, a run of blank lines is counted in one step and never reaches the csv module: a
    file of millions of empty lines costs a regex match per buffer, not a Python loop per line.
    Inside a multi-line quoted field, only the text from each quote on reaches it."""

    text: io.TextIOBase
    blank_run: re.Pattern | None = None  # set once the line end is known; None: no skipping
    lines: int = 0  # physical lines read so far
    skipped: int = 0  # blank lines skipped since the last record
    record_start: int = 1  # physical line where the record being read starts
    last: str = ""  # the last line handed to the csv module
    at_record_start: bool = True

    def __iter__(self) -> Iterator[str]:
        pending: list[str] = []  # pieces of a line longer than a buffer (joined once: no quadratic copying)
        while chunk := self.text.read(CHUNK):
            pos = 0
            while pos < len(chunk):
                if not pending and not self.at_record_start:
                    # Mid-record, so inside a quoted field (only there does a record go on past a
                    # line end): text before the next quote is literal and changes neither where
                    # the record ends nor its field count. Dropping it keeps a quote that is never
                    # closed from piling the rest of the file into one field.
                    if run := _QUOTE_FREE.match(chunk, pos):
                        self.lines += chunk.count("\n", pos, run.end())
                        # the line end of what was dropped, for the check of the record's last line
                        self.last = next((e for e in ("\r\n", "\n") if run.group().endswith(e)), "")
                        pos = run.end()
                        continue
                elif not pending and self.blank_run is not None:
                    run = self.blank_run.match(chunk, pos)
                    if run and run.end() > pos:
                        count = chunk.count("\n", pos, run.end())
                        self.lines += count
                        self.skipped += count
                        pos = run.end()
                        continue
                end = chunk.find("\n", pos)
                if end < 0:
                    pending.append(chunk[pos:])
                    break
                pending.append(chunk[pos:end + 1])
                pos = end + 1
                yield self._line("".join(pending))
                pending = []
        if pending:
            yield self._line("".join(pending))

    def _line(self, line: str) -> str:
        self.lines += 1
        if self.at_record_start:
            self.record_start = self.lines
            self.at_record_start = False
        self.last = line
        return line


def map_records(path: Path, rel: str, delimiter: str, n_fields: int) -> RecordMap:
    """Split the file into records the way DuckDB's reader does (a quoted field may span lines;
    a quote opens a field only at its start, after optional spaces) and note where each starts,
    and which records have more fields than the header.

    Also refuses a file whose records end with different line ends (CRLF here, LF there): the
    reader fixes one kind of line end per file and cannot read the other.
    """
    entries, starts = array("q"), array("q")
    too_many: list[tuple[int, int, int]] = []
    header_lines = 1
    # DuckDB reads a blank line of a one-column file as a NULL row: there it is a record
    blank_is_record = n_fields == 1

    with _open_bytes(path) as stream:
        feed = _LineFeed(io.TextIOWrapper(stream, encoding="utf-8-sig", newline="\n"))
        reader = csv.reader(feed, delimiter=delimiter, quotechar='"', doublequote=True,
                            skipinitialspace=True, strict=False)
        first_end, entry = None, 0
        try:
            for row in reader:
                entry += feed.skipped  # DuckDB numbers the skipped blank lines too
                feed.skipped = 0
                if row or blank_is_record:
                    entries.append(entry)
                    starts.append(feed.record_start)
                    if len(row) > n_fields:
                        too_many.append((len(entries) - 1, len(row), feed.lines))
                if entry == 0:
                    header_lines = feed.lines
                end = _line_end(feed.last)
                if first_end is None and end:
                    first_end = end
                    if not blank_is_record:  # only blank lines with the file's own line end are skipped
                        feed.blank_run = re.compile(r"(?:\r\n)+" if end == "CRLF" else r"\n+")
                if end and end != first_end:
                    raise IngestError(
                        f"{rel}, line {feed.lines}: this line ends with {end} but line 1 with "
                        f"{first_end}; a file must use one kind of line end. Save it again from an "
                        "editor or spreadsheet (it writes one kind), or convert it with `dos2unix`."
                    )
                entry += 1
                feed.at_record_start = True
        except csv.Error as exc:
            raise IngestError(
                f"{rel}, line {feed.lines}: cannot be split into records ({exc}); a carriage "
                "return inside an unquoted field does this: quote the field or remove the character."
            ) from exc
    return RecordMap(np.frombuffer(entries, dtype=np.int64), np.frombuffer(starts, dtype=np.int64), header_lines,
                     too_many)


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
                f"{rel}, line 1, column {pos + 1}: column '{_shown_name(name)}' appears twice "
                f"(also column {seen[name] + 1})."
            )
        seen[name] = pos
    extras = [n for n in names if n not in table.columns]
    missing = [c for c in table.required_columns if c not in seen]
    if missing:
        hints = []
        for col in missing:
            close = difflib.get_close_matches(col, extras, n=1)
            hints.append(f"'{col}'" + (f" (found '{_shown_name(close[0])}': misspelt?)" if close else ""))
        raise IngestError(
            f"{rel}, line 1: missing required column {', '.join(hints)}. "
            f"{table.name} needs {', '.join(table.required_columns)}; the header has {_shown_names(names)}."
        )
    for col in (c for c in table.columns if c not in seen):
        close = difflib.get_close_matches(col, extras, n=1, cutoff=MISSPELT_CUTOFF)
        if close:
            raise IngestError(
                f"{rel}, line 1, column {seen[close[0]] + 1}: '{_shown_name(close[0])}' looks like the contract column "
                f"'{col}' misspelt. Loaded as an extra column it would leave '{col}' empty (its default "
                f"would be used instead of your values): rename the column to '{col}'."
            )
    contract = {c: seen[c] for c in table.columns if c in seen}
    extra = {n: p for n, p in seen.items() if n not in table.columns}
    return contract, extra


# --- staging one file -------------------------------------------------------------------------


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
    limits = load_settings()
    scan = scan_file(resolved, rel, limits)
    contract_pos, extra_pos = _map_header(table, scan.header, rel)
    records = map_records(resolved, rel, scan.delimiter, len(scan.header))
    if records.header_lines != 1:
        raise IngestError(f"{rel}, line 1: the header row spans several lines (a quoted line break in a column name).")
    try:
        rejects, rows_read = _read_csv(con, resolved, rel, scan, limits)
        row_recs, row_lines, rejected_lines = _place_records(rel, resolved, records, rejects, rows_read, len(scan.header))
        _shape_rows(con, table, temp_table, contract_pos, extra_pos, row_recs, row_lines, rel, month)
        rows_loaded = len(row_recs)
    finally:
        con.execute("drop table if exists _ingest_rejects; drop table if exists _ingest_scans; drop table if exists _ingest_read")

    names_by_pos = {p: n for n, p in {**contract_pos, **extra_pos}.items()}
    rejected = [(line, names_by_pos.get(col), reason, text) for line, col, reason, text in rejected_lines]
    return StagedFile(rel, scan.checksum, temp_table, rows_loaded, rejected, sorted(extra_pos),
                      _notes(rel, scan, rows_loaded, rejected))


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, rel: str, scan: FileScan,
              limits: Settings) -> tuple[list[tuple], int]:
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
                compression = $compression, max_line_size = {int(limits.max_line_bytes)},
                store_rejects = true, rejects_table = '_ingest_rejects', rejects_scan = '_ingest_scans')
            """,
            {"path": str(path), "delim": scan.delimiter, "compression": "gzip" if path.name.endswith(".gz") else "none"},
        )
    except duckdb.InvalidInputException as exc:
        # the reader's first line only, cut: the rest can quote the file's content at length
        raise IngestError(f"{rel}: the CSV reader stopped: {_shown_name(str(exc).splitlines()[0], 300)}") from exc
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
                extra_pos: dict[str, int], row_recs: np.ndarray, row_lines: np.ndarray, rel: str,
                month: str | None) -> None:
    """The rows of _ingest_read numbered in row_recs as the rows of raw.<table> (without
    _loaded_at), each with its line. Header names reach the query only as bound parameters:
    the SQL text names columns by position (c0, c1, ...) and contract names."""
    select_contract = ", ".join(
        f'c{contract_pos[c]} as "{c}"' if c in contract_pos else f'cast(null as varchar) as "{c}"'
        for c in table.columns
    )
    extra_names = {f"extra_name_{k}": n for k, n in enumerate(extra_pos)}
    select_extra = (
        "json_object(" + ", ".join(f"${k}, c{extra_pos[n]}" for k, n in extra_names.items()) + ")::varchar"
        if extra_pos
        else "cast(null as varchar)"
    )
    con.register("_ingest_lines", pd.DataFrame({"_rec": row_recs, "line": row_lines}))
    try:
        con.execute(
            f"""
            create or replace temp table {temp_table} as
            select {select_contract}, {select_extra} as _extra, $rel as _source_file,
                   _ingest_lines.line as _source_line, $month as _month
            from _ingest_read join _ingest_lines using (_rec)
            order by _source_line
            """,
            {"rel": rel, "month": month, **extra_names},
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
    rel: str, path: Path, records: RecordMap, rejects: list[tuple], rows_read: int, n_fields: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int | None, str, str]]]:
    """The loaded rows, as their number in read order (_rec) and their physical line, and the
    rejected lines as (line, column index, reason, text): the reader's rejects, the records it
    read though they have more fields than the header, and the lines it silently left unread
    after an unterminated quote."""
    n_records = len(records.entries)
    is_record = np.ones(n_records, dtype=bool)
    is_record[0] = False  # the header
    rejected = []
    for line, col, etype, message, text in rejects:
        entry = int(line) - 1
        i = int(np.searchsorted(records.entries, entry))
        if not 0 < i < n_records or records.entries[i] != entry or not is_record[i]:
            raise _inconsistent(rel, f"a rejected record at reader line {line}")
        is_record[i] = False
        rejected.append((int(records.starts[i]), col, _reject_reason(etype, message), (text or "").strip("\r\n")))

    candidates = np.flatnonzero(is_record)
    if len(candidates) < rows_read:
        raise _inconsistent(rel, f"{rows_read} rows read, {len(candidates)} records found")
    loaded, unread = candidates[:rows_read], candidates[rows_read:]
    if len(unread):
        # The reader stops at a quote that is never closed, without a reject: everything from the
        # first record it did not read is quarantined line by line, so nothing disappears.
        if rejected and records.entries[unread[0]] < max(int(line) - 1 for line, *_ in rejects):
            raise _inconsistent(rel, "unread records before the last rejected one")
        first_unread = int(records.starts[unread[0]])
        rejected += [(n, None, UNTERMINATED_QUOTE, t) for n, t in _physical_lines_from(path, first_unread)]

    keep = np.ones(rows_read, dtype=bool)
    # The reader drops empty fields past the header's count and loads the rest as if nothing
    # happened ('...,USD,,Lyon,ARA,,' puts Lyon in the region): such a record is quarantined as
    # the wrong field count it is.
    shifted = []
    for i, found, last_line in records.too_many_fields:
        pos = int(np.searchsorted(loaded, i))
        if pos < rows_read and loaded[pos] == i:
            keep[pos] = False
            shifted.append((int(records.starts[i]), last_line, found))
    texts = _line_texts(path, [(first, last) for first, last, _ in shifted])
    rejected += [(first, n_fields, f"wrong_field_count: expected fields: {n_fields} found: {found}", text)
                 for (first, _, found), text in zip(shifted, texts)]
    recs = np.arange(1, rows_read + 1, dtype=np.int64)
    return recs[keep], records.starts[loaded][keep], sorted(rejected)


def _line_texts(path: Path, spans: list[tuple[int, int]]) -> list[str]:
    """The text of each (first line, last line) span of the file, in one pass; spans in order."""
    texts: list[str] = []
    if not spans:
        return texts
    with _open_bytes(path) as stream:
        lines = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="\n")
        current, span = [], iter(spans)
        first, last = next(span)
        for number, text in enumerate(lines, start=1):
            if number >= first:
                current.append(text)
            if number == last:
                texts.append("".join(current).rstrip("\r\n"))
                current = []
                if (nxt := next(span, None)) is None:
                    break
                first, last = nxt
    return texts


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


def _insert_rejected_lines(con: duckdb.DuckDBPyConnection, table: RawTable, month: str | None,
                           file: StagedFile) -> None:
    """One insert from a registered frame: executemany costs milliseconds a row, so the lines after
    an unclosed quote in a big file would take hours."""
    frame = pd.DataFrame(file.rejected_lines, columns=["source_line", "column_name", "reason", "record"])
    con.register("_ingest_rejected", frame)
    try:
        con.execute(
            f"insert into raw.{table.name}_rejected_lines select $rel, source_line, $month, "
            "cast(column_name as varchar), reason, record, current_timestamp::timestamp "
            "from _ingest_rejected order by source_line",
            {"rel": file.rel, "month": month},
        )
    finally:
        con.unregister("_ingest_rejected")


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
                _insert_rejected_lines(con, table, month, file)
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
