"""Store "Report incorrect answer" reports as rows of one CSV file that several gunicorn workers share.

One report is one line (the original app's contract: no header row; the columns are COLUMNS), so line breaks in a
value become spaces. Safety: an exclusive fcntl lock around each append (processes never interleave rows), the
whole row written in one call, every cell quoted and spreadsheet formulas neutralised wherever a cell could start
(at its start and after any delimiter a spreadsheet may split on), fields over FEEDBACK_MAX_FIELD characters
rejected, and the body at most MAX_BODY_BYTES (nginx refuses larger first).
"""

import ast
import csv
import fcntl
import io
import json
import os
import re
from datetime import datetime, UTC
from typing import Any
from collections.abc import Mapping

import settings

FIELDS = ("filename", "prediction", "score")
COLUMNS = ("timestamp",) + FIELDS  # of each row; the file has no header row
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_BODY_BYTES = 16 * 1024  # = nginx's client_max_body_size for /feedback
# Where a spreadsheet may start a cell: the value's start, or after a delimiter it may split on when importing.
_CELL_START_FORMULA = re.compile(r"(^|[,;|\t\r\n])(?=[=+\-@\t\r])")


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
    """Make a cell inert for spreadsheets (OWASP CSV injection), on one line: a quote before every formula-like
    start, at the value's start and after any delimiter ("a;=cmd" -> "a;'=cmd")."""
    value = value.replace("\x00", "").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return _CELL_START_FORMULA.sub(r"\1'", value)


def store(values: Mapping[str, str], path: str | None = None) -> list[str]:
    """Append one row (timestamp first) under an exclusive lock; returns the row as written."""
    path = path or settings.FEEDBACK_FILEPATH
    row = [datetime.now(UTC).isoformat(timespec="seconds")] + [neutralise(values.get(f, "")) for f in FIELDS]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", newline="", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            buffer = io.StringIO()
            writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
            writer.writerow(row)
            fh.write(buffer.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return row
