"""Store "Report incorrect answer" reports as rows of one CSV file that several gunicorn workers share.

One report is one line (the original app's contract: no header row; the columns are COLUMNS), so line breaks in a
value become spaces. Safety: an exclusive fcntl lock around each append (processes never interleave rows), the
whole row written in one call, spreadsheet formulas neutralised, and fields over FEEDBACK_MAX_FIELD characters
rejected.
"""

import ast
import csv
import fcntl
import io
import json
import os
from datetime import datetime, UTC
from typing import Any
from collections.abc import Mapping

import settings

FIELDS = ("filename", "prediction", "score")
COLUMNS = ("timestamp",) + FIELDS  # of each row; the file has no header row
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class FeedbackError(ValueError):
    """The report cannot be stored as sent (too long, unreadable)."""


def parse(form: Mapping[str, Any], body: Any = None) -> dict[str, str] | None:
    """Merge the page's hidden `report` field (JSON) with explicit fields; None when nothing was sent."""
    report: dict[str, Any] = {}
    source = dict(body) if isinstance(body, dict) else {}
    source.update({k: v for k, v in form.items()})
    raw = source.get("report")
    if raw:
        report.update(_decode_report(str(raw)))
    for field in FIELDS:
        value = source.get(field)
        if value not in (None, ""):
            report[field] = value
    values = {field: "" if report.get(field) is None else str(report[field]) for field in FIELDS}
    if not any(values.values()):
        return None
    limit = settings.FEEDBACK_MAX_FIELD
    for field, value in values.items():
        if len(value) > limit:
            raise FeedbackError(f"field {field!r} is longer than {limit} characters")
    return values


def _decode_report(raw: str) -> dict[str, Any]:
    """The page sends JSON; the original app's page sent a Python dict literal — accept both, nothing executable."""
    if len(raw) > 4 * settings.FEEDBACK_MAX_FIELD:
        raise FeedbackError("report is too long")
    for decode in (json.loads, ast.literal_eval):
        try:
            value = decode(raw)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    raise FeedbackError("report is not readable")


def neutralise(value: str) -> str:
    """Make a cell inert for spreadsheets (OWASP CSV injection): prefix a quote to formula-like values; keep it on
    one line."""
    value = value.replace("\x00", "").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return "'" + value if value.startswith(FORMULA_START) else value


def store(values: Mapping[str, str], path: str | None = None) -> list[str]:
    """Append one row (timestamp first) under an exclusive lock; returns the row as written."""
    path = path or settings.FEEDBACK_FILEPATH
    row = [datetime.now(UTC).isoformat(timespec="seconds")] + [neutralise(values.get(f, "")) for f in FIELDS]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", newline="", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(row)
            fh.write(buffer.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return row
