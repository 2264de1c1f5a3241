"""JSON from outside the API (request bodies, entries anyone with Redis access could write) parsed so that every
malformed document is a ValueError: one nested deeper than the interpreter's recursion limit raises RecursionError
in `json.loads`, which no route would catch (a 500). `JSONProvider` does the same for Flask's `request.get_json`.
"""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider


def loads(data: str | bytes | bytearray, **kwargs: Any) -> Any:
    """`json.loads`, with nesting too deep to parse reported as invalid JSON (ValueError)."""
    try:
        return json.loads(data, **kwargs)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


class JSONProvider(DefaultJSONProvider):
    """Flask's default provider; `request.get_json` sees too-deep nesting as the invalid JSON it is (silent: None,
    else a 400)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s, **kwargs)
