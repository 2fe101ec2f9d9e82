"""Customer import from any CSV: known columns become fields, `consent_<channel>` columns become
consent, every other column a custom attribute. Returns a report with CSV line numbers."""

import csv
import io
from typing import IO

from crm.models import Channel, Workspace
from crm.services import customer_bulk_upsert
from crm.services.customers import CUSTOMER_FIELDS

BATCH = 5000
MAX_ERRORS_REPORTED = 1000


def _row(record: dict[str, str], source: str) -> dict:
    row: dict = {}
    attributes: dict[str, str] = {}
    consent: dict[str, str] = {}
    for column, value in record.items():
        if column is None:  # more cells than headers
            row.setdefault("_extra", value)
            continue
        name = column.strip().lower()
        value = (value or "").strip()
        if not value:
            continue
        if name in CUSTOMER_FIELDS and name != "attributes":
            row[name] = value
        elif name == "external_id":
            row["external_id"] = value
            row.setdefault("source", source)
        elif name == "source":
            row["source"] = value
        elif name.startswith("consent_") and name[len("consent_") :] in Channel.values:
            consent[name[len("consent_") :]] = value
        else:
            attributes[column.strip()] = value
    if attributes:
        row["attributes"] = attributes
    if consent:
        row["consent"] = {
            channel: {"status": s, "source": "csv import"} for channel, s in consent.items()
        }
    return row


def import_customers_csv(*, workspace: Workspace, stream: IO[str], source: str = "csv") -> dict:
    """Upserts every row; good rows are kept, bad ones reported by line number (header = 1).

    The file is read through once before anything is written: one the CSV reader cannot read
    (a cell over its limit, `cell_limit()` characters, most often a quote that is never closed)
    imports nothing, and the report (`imported` False) names the line. Otherwise rows are
    written in batches of BATCH, each committed as it goes, and the counts and the rejected
    lines are what was written. Lines are the file's own, so a cell spanning lines counts them.
    """
    if not stream.seekable():
        stream = io.StringIO(stream.read(), newline="")
    problem = _unreadable(stream)
    if problem is not None:
        return {**_empty_report(), "imported": False, "errors": [problem]}
    reader = csv.reader(stream)
    header = next(reader, [])
    if not header:
        return {
            **_empty_report(),
            "imported": False,
            "errors": [{"line": 1, "errors": {"file": ["no header row"]}}],
        }
    report = {**_empty_report(), "imported": True}
    batch: list[tuple[int, dict]] = []

    def flush() -> None:
        rows = []
        for line, row in batch:
            if "_extra" in row:
                report["rejected"] += 1
                _add_error(report, line, {"non_field_errors": ["more cells than header columns"]})
            else:
                rows.append((line, row))
        result = customer_bulk_upsert(workspace=workspace, rows=[r for _, r in rows], source=source)
        report["created"] += result.created
        report["updated"] += result.updated
        report["unchanged"] += result.unchanged
        report["rejected"] += len(result.errors)
        for error in result.errors:
            _add_error(report, rows[error["index"]][0], error["errors"])
        batch.clear()

    start = reader.line_num + 1
    for cells in reader:
        line, start = start, reader.line_num + 1
        if not cells:  # a blank line
            continue
        record: dict = dict(zip(header, cells, strict=False))
        if len(cells) > len(header):
            record[None] = cells[len(header) :]
        batch.append((line, _row(record, source)))
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    report["errors"].sort(key=lambda e: e["line"])
    return report


def cell_limit() -> int:
    """The most characters a cell may hold: the CSV reader's limit (131,072 unless changed)."""
    return csv.field_size_limit()


def _unreadable(stream: IO[str]) -> dict | None:
    """The first record the CSV reader cannot read, as a report error naming the line it starts
    on, or None. Reads the whole stream and puts it back where it was."""
    start = stream.tell()
    reader = csv.reader(stream)
    line = 1
    try:
        for _ in reader:
            line = reader.line_num + 1
    except csv.Error as exc:
        if "field limit" in str(exc):
            reason = (
                f"a cell that starts on this line is longer than {cell_limit():,} "
                'characters (often a quote (") that is never closed)'
            )
        else:
            reason = f"the CSV cannot be read from this line on ({exc})"
        return {"line": line, "errors": {"file": [f"{reason}; nothing was imported"]}}
    finally:
        stream.seek(start)
    return None


def _empty_report() -> dict:
    return {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0, "errors": []}


def _add_error(report: dict, line: int, errors: dict) -> None:
    if len(report["errors"]) < MAX_ERRORS_REPORTED:
        report["errors"].append({"line": line, "errors": errors})


def decode_upload(data: bytes) -> io.StringIO:
    """Text of an uploaded file: UTF-8 (with or without BOM), else Windows-1252 as Excel writes."""
    try:
        return io.StringIO(data.decode("utf-8-sig"), newline="")
    except UnicodeDecodeError:
        return io.StringIO(data.decode("cp1252", errors="replace"), newline="")
