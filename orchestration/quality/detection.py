"""How well the pipeline catches the defects the sample-data generator injected.

The generator records every defective line in <raw root>/_ground_truth/defects.csv
(table_name, month, record_key, kind, source_file, source_line). A defect is caught when
quality.quarantine or quality.issues holds a row of the same table, for the same line (or, for
duplicates, the same record key: the contract's winner rule may keep the injected copy and flag
the original), with a reason of that kind. Anything flagged on a defect-free sample is a false
positive.

<raw root>/_ground_truth/real_world.csv lists, with the same columns, the real-world shape the
generator writes at every defect rate (an empty month, orders cancelled before any line, zero-value
voucher payments and their fully discounted lines). Those are valid: a flag on one of their lines
is a false positive too, counted in flagged_real_world.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestration.settings import duckdb_config

GROUND_TRUTH = Path("_ground_truth") / "defects.csv"
REAL_WORLD_TRUTH = Path("_ground_truth") / "real_world.csv"

# defect kind -> how the pipeline reports it: (source, reason prefix); source 'ingest' = a line
# the CSV reader could not read (quarantine stage ingest, any reason)
EXPECTED_FLAGS: dict[str, tuple[str, str]] = {
    "unparsable_row": ("ingest", ""),
    "unparsable_value": ("quarantine", "unparsable"),
    "missing_value": ("quarantine", "missing"),
    "non_positive_quantity": ("quarantine", "non_positive_quantity"),
    "non_positive_price": ("quarantine", "non_positive_price"),
    "bad_discount": ("quarantine", "bad_discount"),
    "outside_file_month": ("quarantine", "outside_file_month"),
    "duplicate": ("issue", "duplicate"),
    "conflicting_duplicate": ("issue", "conflicting_duplicate"),
}
# any other kind (orphan_*, invalid_email, invalid_phone, non_canonical_value, price_outlier,
# unknown_status) is expected as an issue of the same name


@dataclass
class DetectionReport:
    injected: Counter = field(default_factory=Counter)
    caught: Counter = field(default_factory=Counter)
    missed_examples: dict[str, list[dict]] = field(default_factory=dict)
    flagged_rows: int = 0
    flagged_real_world: Counter = field(default_factory=Counter)  # real-world case -> its lines flagged

    @property
    def recall(self) -> float:
        total = sum(self.injected.values())
        return 1.0 if total == 0 else sum(self.caught.values()) / total

    def recall_by_kind(self) -> dict[str, float]:
        return {k: self.caught[k] / n for k, n in sorted(self.injected.items())}

    def describe(self) -> str:
        lines = [f"{k:24s} {self.caught[k]:6d} / {n:6d} caught ({self.caught[k] / n:.2%})"
                 for k, n in sorted(self.injected.items())]
        lines.append(f"{'all':24s} {sum(self.caught.values()):6d} / {sum(self.injected.values()):6d} "
                     f"caught ({self.recall:.2%}); {self.flagged_rows} rows flagged in quarantine + issues")
        lines += [f"{case:24s} {n:6d} valid lines flagged (false positives)"
                  for case, n in sorted(self.flagged_real_world.items())]
        return "\n".join(lines)


def read_ground_truth(raw_root: Path, relative_path: Path = GROUND_TRUTH) -> list[dict]:
    path = Path(raw_root) / relative_path
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def measure_detection(warehouse: Path, raw_root: Path, examples: int = 5) -> DetectionReport:
    truth = read_ground_truth(raw_root)
    con = duckdb.connect(str(warehouse), read_only=True, config=duckdb_config())
    try:
        flagged = con.execute(
            """
            select table_name, source_file, source_line, record_key,
                   case when stage = 'ingest' then 'ingest' else 'quarantine' end as source,
                   trim(split_part(reason, ':', 1)) as reason
            from quality.quarantine
            union all
            select table_name, source_file, source_line, record_key, 'issue', issue from quality.issues
            """
        ).fetchall()
    finally:
        con.close()

    by_line: dict[tuple, list[tuple[str, str]]] = {}
    by_key: dict[tuple, list[tuple[str, str]]] = {}
    for table, source_file, source_line, record_key, source, reason in flagged:
        by_line.setdefault((table, source_file, int(source_line)), []).append((source, reason))
        if record_key is not None:
            by_key.setdefault((table, record_key), []).append((source, reason))

    report = DetectionReport(flagged_rows=len(flagged))
    for defect in truth:
        kind = defect["kind"]
        want_source, want_reason = EXPECTED_FLAGS.get(kind, ("issue", kind))
        report.injected[kind] += 1
        candidates = list(by_line.get((defect["table_name"], defect["source_file"], int(defect["source_line"])), []))
        if kind in ("duplicate", "conflicting_duplicate"):
            candidates += by_key.get((defect["table_name"], defect["record_key"]), [])
        hit = any(
            source == want_source and (reason or "").startswith(want_reason)
            or (want_source == "ingest" and source == "ingest")
            for source, reason in candidates
        )
        if hit:
            report.caught[kind] += 1
        else:
            report.missed_examples.setdefault(kind, [])
            if len(report.missed_examples[kind]) < examples:
                report.missed_examples[kind].append({**defect, "flagged_as": candidates})
    for case in read_ground_truth(raw_root, REAL_WORLD_TRUTH):
        if case["source_line"] and (case["table_name"], case["source_file"], int(case["source_line"])) in by_line:
            report.flagged_real_world[case["kind"]] += 1
    return report
