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
    """Upserts every row; good rows are kept, bad ones reported by line number (header = 1)."""
    reader = csv.DictReader(stream)
    if not reader.fieldnames:
        return {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0,
                "errors": [{"line": 1, "errors": {"file": ["no header row"]}}]}  # fmt: skip
    report = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0, "errors": []}
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

    for number, record in enumerate(reader, start=2):
        batch.append((number, _row(record, source)))
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    report["errors"].sort(key=lambda e: e["line"])
    return report


def _add_error(report: dict, line: int, errors: dict) -> None:
    if len(report["errors"]) < MAX_ERRORS_REPORTED:
        report["errors"].append({"line": line, "errors": errors})


def decode_upload(data: bytes) -> io.StringIO:
    """Text of an uploaded file: UTF-8 (with or without BOM), else Windows-1252 as Excel writes."""
    try:
        return io.StringIO(data.decode("utf-8-sig"), newline="")
    except UnicodeDecodeError:
        return io.StringIO(data.decode("cp1252", errors="replace"), newline="")
